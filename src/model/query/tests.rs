//! The query table (parse results and errors with positions), evaluation against tag sets,
//! the pushdown split, the limits, and the properties (canonical text reparses to the same
//! tree; no input makes the parser panic).

use proptest::prelude::*;
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

fn tags(pairs: &[(&str, &str)]) -> TagSet {
    TagSet::from_pairs(pairs.iter().copied()).unwrap()
}

fn facts(key: &str) -> ObjectFacts<'_> {
    ObjectFacts {
        key,
        size: 1000,
        modified: datetime!(2024-05-01 08:00:00 UTC),
    }
}

fn parse(text: &str) -> Query {
    Query::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn error(text: &str) -> QueryError {
    Query::parse(text).expect_err(text)
}

// ---- parsing ---------------------------------------------------------------------------------

#[test]
fn parses_to_canonical_text() {
    let table: &[(&str, &str)] = &[
        // Azure's filter, as Azure writes it.
        (r#""team" = 'storage'"#, r#""team" = 'storage'"#),
        (
            r#""a" = '1' AND "b" <> '2' AND "c" > '3' AND "d" >= '4' AND "e" < '5' AND "f" <= '6'"#,
            r#""a" = '1' AND "b" <> '2' AND "c" > '3' AND "d" >= '4' AND "e" < '5' AND "f" <= '6'"#,
        ),
        // Bare keys, keywords in any case, blanks anywhere.
        (
            "team='storage'and env starts_with 'prod'",
            r#""team" = 'storage' AND "env" STARTS_WITH 'prod'"#,
        ),
        (
            "app.kubernetes.io/name = 'x' Or k-8:s_ <> ''",
            r#""app.kubernetes.io/name" = 'x' OR "k-8:s_" <> ''"#,
        ),
        ("\t(a = '1')\n", r#""a" = '1'"#),
        // Precedence: NOT > AND > OR; grouping kept where written.
        (
            "a = '1' OR b = '2' AND c = '3'",
            r#""a" = '1' OR "b" = '2' AND "c" = '3'"#,
        ),
        (
            "(a = '1' OR b = '2') AND c = '3'",
            r#"("a" = '1' OR "b" = '2') AND "c" = '3'"#,
        ),
        (
            "(a = '1' AND b = '2') AND c = '3'",
            r#"("a" = '1' AND "b" = '2') AND "c" = '3'"#,
        ),
        (
            "NOT a = '1' AND NOT (b = '2' OR c = '3')",
            r#"NOT "a" = '1' AND NOT ("b" = '2' OR "c" = '3')"#,
        ),
        ("not not exists a", r#"NOT NOT EXISTS "a""#),
        // Quoting: doubled quotes; keys with spaces and symbols; keywords as quoted keys.
        (r#""with space+=" = 'a b'"#, r#""with space+=" = 'a b'"#),
        (r#""AND" = 'or'"#, r#""AND" = 'or'"#),
        (r#"EXISTS "NOT""#, r#"EXISTS "NOT""#),
        (
            "\"\u{4e2d}\u{6587}\" = '\u{e9}t\u{e9}'",
            "\"\u{4e2d}\u{6587}\" = '\u{e9}t\u{e9}'",
        ),
        ("\u{4e2d}\u{6587} = 'x'", "\"\u{4e2d}\u{6587}\" = 'x'"),
        // Attributes.
        (
            "@key STARTS_WITH 'logs/2024/' AND @size >= 1048576",
            "@key STARTS_WITH 'logs/2024/' AND @size >= 1048576",
        ),
        ("@KEY = 'a''b\"c%_'", "@key = 'a''b\"c%_'"),
        (
            "@modified < '2024-05-01T10:00:00+02:00'",
            "@modified < '2024-05-01T10:00:00+02:00'",
        ),
        (
            "@Modified >= '2024-05-01T08:00:00.5Z'",
            "@modified >= '2024-05-01T08:00:00.5Z'",
        ),
        ("@size = 0", "@size = 0"),
        (
            "@size < 18446744073709551615",
            "@size < 18446744073709551615",
        ),
        // An empty value (the tag rules allow it; the longest key and value are tested below).
        ("k = ''", r#""k" = ''"#),
        ("k STARTS_WITH ''", r#""k" STARTS_WITH ''"#),
    ];
    for (text, canonical) in table {
        let query = parse(text);
        assert_eq!(query.to_string(), *canonical, "{text:?}");
        assert_eq!(parse(canonical), query, "{canonical:?}");
        assert_eq!(text.parse::<Query>().as_ref(), Ok(&query));
    }
}

#[test]
fn syntax_tree_shape() {
    let tag = |key: &str, op, value: &str| {
        Expr::Predicate(Predicate::Tag {
            key: key.into(),
            op,
            value: value.into(),
        })
    };
    assert_eq!(
        parse("a = '1' OR b <> '2' AND NOT EXISTS c").expr(),
        &Expr::Or(vec![
            tag("a", Op::Eq, "1"),
            Expr::And(vec![
                tag("b", Op::Ne, "2"),
                Expr::Not(Box::new(Expr::Predicate(Predicate::TagExists {
                    key: "c".into()
                }))),
            ]),
        ])
    );
    assert_eq!(
        parse("@modified = '2024-05-01T10:00:00+02:00'").expr(),
        &Expr::Predicate(Predicate::Modified {
            op: Op::Eq,
            value: datetime!(2024-05-01 08:00:00 UTC),
        })
    );
}

#[test]
fn errors_have_positions_and_reasons() {
    let table: &[(&str, usize, &str)] = &[
        ("", 0, "the query is empty"),
        ("   ", 0, "the query is empty"),
        (
            r#""team" = "storage""#,
            9,
            "expected a quoted value after '='; values take single quotes ('...'), keys double",
        ),
        ("team = storage", 7, "expected a quoted value after '='"),
        ("\"project\" = ", 12, "expected a quoted value after '='"),
        (
            "team 'x'",
            5,
            "expected an operator (= <> < <= > >= STARTS_WITH) after the tag key \"team\"",
        ),
        (
            "team",
            4,
            "expected an operator (= <> < <= > >= STARTS_WITH) after the tag key \"team\"",
        ),
        ("team != 'x'", 5, "'!=' is not an operator; write '<>'"),
        (
            "team = 'x",
            7,
            "unterminated quoted value: no closing ' (a ' inside is written '')",
        ),
        (
            "\"team = 'x'",
            0,
            "unterminated quoted key: no closing \" (a \" inside is written \"\")",
        ),
        (
            "a = '1' AND",
            11,
            "expected a condition at the end of the query",
        ),
        (
            "a = '1' AND OR b = '2'",
            12,
            "expected a condition, found the keyword OR; a tag key spelled so must be double-quoted",
        ),
        (
            "and = '1'",
            0,
            "expected a condition, found the keyword AND; a tag key spelled so must be double-quoted",
        ),
        (
            "a = '1' b = '2'",
            8,
            "expected AND, OR or the end of the query",
        ),
        ("a = '1')", 7, "')' without a matching '('"),
        (
            "(a = '1'",
            8,
            "expected ')' to close the '(' at 0, or AND, OR",
        ),
        ("()", 1, "expected a condition before ')'"),
        ("= 'x'", 0, "expected a tag key or @attribute before '='"),
        (
            "'x' = a",
            0,
            "expected a condition; tag keys take double quotes (\"key\"), values single quotes",
        ),
        (
            "2024 = 'x'",
            0,
            "expected a condition; a tag key starting with a digit must be double-quoted",
        ),
        (
            "a = '1' & b = '2'",
            8,
            "unexpected '&'; quote tag keys with \"...\" and values with '...'",
        ),
        ("EXISTS", 6, "expected a tag key after EXISTS"),
        ("EXISTS @size", 7, "expected a tag key after EXISTS"),
        ("EXISTS 'a'", 7, "expected a tag key after EXISTS"),
        // Tag rules, at the key or at the value.
        (
            "\"a&b\" = 'x'",
            0,
            "tag key \"a&b\" contains '&'; allowed are letters, digits, space and + - = . _ : /",
        ),
        (
            "\"\" = 'x'",
            0,
            "tag key is empty; it must be 1 to 128 characters",
        ),
        (
            "EXISTS \"a?\"",
            7,
            "tag key \"a?\" contains '?'; allowed are letters, digits, space and + - = . _ : /",
        ),
        (
            "k = 'x*'",
            4,
            "value of tag \"k\" contains '*'; allowed are letters, digits, space and + - = . _ : /",
        ),
        (
            "k = 'it''s'",
            4,
            "value of tag \"k\" contains '\\''; allowed are letters, digits, space and + - = . _ : /",
        ),
        (
            "k STARTS_WITH 'abc%'",
            14,
            "value of tag \"k\" contains '%'; allowed are letters, digits, space and + - = . _ : /",
        ),
        // Positions count characters, not bytes.
        (
            "\u{4e2d}\u{6587} = x",
            5,
            "expected a quoted value after '='",
        ),
        // Attributes.
        (
            "@",
            0,
            "expected an attribute name after '@' (@key, @size or @modified)",
        ),
        (
            "@owner = 'x'",
            0,
            "unknown attribute @owner; the attributes are @key, @size and @modified",
        ),
        (
            "@size > '10'",
            8,
            "expected a whole number of bytes after '>' (@size compares numbers)",
        ),
        (
            "@size > 10KB",
            8,
            "expected a whole number (a tag key starting with a digit must be double-quoted)",
        ),
        (
            "@size > 18446744073709551616",
            8,
            "18446744073709551616 is too large a number",
        ),
        (
            "@size STARTS_WITH 1",
            6,
            "STARTS_WITH applies to tag values and @key, not to @size",
        ),
        (
            "@modified STARTS_WITH '2024'",
            10,
            "STARTS_WITH applies to tag values and @key, not to @modified",
        ),
        (
            "@modified > '2024-05-01'",
            12,
            "\"2024-05-01\" is not an RFC 3339 time such as '2024-05-01T08:00:00Z'",
        ),
        ("@modified > 5", 12, "expected a quoted value after '>'"),
        (
            "@key",
            4,
            "expected an operator (= <> < <= > >= STARTS_WITH) after @key",
        ),
    ];
    for (text, position, reason) in table {
        let e = error(text);
        assert_eq!(
            (e.position, e.reason.as_str()),
            (*position, *reason),
            "{text:?}"
        );
        assert_eq!(e.to_string(), format!("at {position}: {reason}"));
    }
}

#[test]
fn key_values_limited_to_object_key_length() {
    parse(&format!("@key STARTS_WITH '{}'", "k".repeat(1023)));
    let e = error(&format!("@key STARTS_WITH '{}'", "k".repeat(1024)));
    assert_eq!(e.position, 17);
    assert_eq!(
        e.reason,
        "the @key value is 1024 bytes; object keys are at most 1023 bytes"
    );
}

#[test]
fn tag_key_and_value_lengths() {
    let longest = format!("\"{}\" = '{}'", "k".repeat(128), "v".repeat(256));
    assert_eq!(parse(&longest).to_string(), longest);
    let e = error(&format!("\"{}\" = 'v'", "k".repeat(129)));
    assert_eq!(e.position, 0);
    assert!(
        e.reason.ends_with("is 129 characters; the limit is 128"),
        "{e}"
    );
    let e = error(&format!("k = '{}'", "v".repeat(257)));
    assert_eq!(e.position, 4);
    assert_eq!(
        e.reason,
        "value of tag \"k\" is 257 characters; the limit is 256"
    );
}

// ---- limits ----------------------------------------------------------------------------------

#[test]
fn length_limit_in_bytes() {
    let long_key = "k".repeat(100);
    let term = format!("\"{long_key}\" STARTS_WITH ''");
    let mut text = vec![term.clone(); 32].join(" OR ");
    // Pad with blanks up to the limit exactly: accepted.
    text.push_str(&" ".repeat(MAX_QUERY_BYTES - text.len()));
    assert_eq!(text.len(), MAX_QUERY_BYTES);
    parse(&text);
    text.push(' ');
    let e = error(&text);
    assert_eq!(e.position, MAX_QUERY_BYTES);
    assert_eq!(e.reason, "the query is 4097 bytes long; the limit is 4096");
    // With multi-byte characters the position is still a character offset.
    let e = error(&"\u{e9}".repeat(2049));
    assert_eq!(
        (e.position, e.reason.as_str()),
        (2048, "the query is 4098 bytes long; the limit is 4096")
    );
}

#[test]
fn depth_limit() {
    let nested = |n: usize| format!("{}a = '1'{}", "(".repeat(n), ")".repeat(n));
    parse(&nested(MAX_DEPTH));
    let e = error(&nested(MAX_DEPTH + 1));
    assert_eq!(
        (e.position, e.reason.as_str()),
        (32, "parentheses and NOTs nest more than 32 deep")
    );
    let nots = |n: usize| format!("{}a = '1'", "NOT ".repeat(n));
    parse(&nots(MAX_DEPTH));
    assert_eq!(error(&nots(MAX_DEPTH + 1)).position, 128);
    // Parentheses and NOTs count together; closing a level frees it.
    parse(&format!("{} AND {}", nested(MAX_DEPTH), nested(MAX_DEPTH)));
    assert_eq!(error(&format!("NOT {}", nested(MAX_DEPTH))).position, 35);
    // A wall of parentheses stops at the limit, long before the stack would.
    assert_eq!(error(&"(".repeat(4000)).position, 32);
}

#[test]
fn term_limit() {
    let terms = |n: usize| {
        (0..n)
            .map(|i| format!("k{i} = 'v'"))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    parse(&terms(MAX_TERMS));
    let text = terms(MAX_TERMS + 1);
    let e = error(&text);
    assert_eq!(e.position, text.rfind("k64").unwrap());
    assert_eq!(
        e.reason,
        "the query has more than 64 conditions; the limit is 64"
    );
}

// ---- evaluation ------------------------------------------------------------------------------

#[test]
fn evaluation_table() {
    let set = tags(&[
        ("team", "storage"),
        ("env", "prod-eu"),
        ("count", "10"),
        ("empty", ""),
        ("Case", "Upper"),
        ("\u{4e2d}", "\u{e9}"),
    ]);
    let table: &[(&str, bool)] = &[
        ("team = 'storage'", true),
        ("team = 'Storage'", false),
        ("Team = 'storage'", false),
        ("team <> 'storage'", false),
        ("team <> 'other'", true),
        // A comparison on an absent tag is false, whatever the operator; NOT is plain negation.
        ("missing <> 'x'", false),
        ("missing < 'x'", false),
        ("NOT missing = 'x'", true),
        ("NOT missing <> 'x'", true),
        ("EXISTS missing", false),
        ("NOT EXISTS missing", true),
        ("EXISTS empty", true),
        ("empty = ''", true),
        ("empty STARTS_WITH ''", true),
        ("missing STARTS_WITH ''", false),
        // Lexicographic by bytes: "10" < "9", upper case before lower, 'é' (C3 A9) after 'z'.
        ("count < '9'", true),
        ("count > '9'", false),
        ("count >= '10'", true),
        ("count <= '10'", true),
        ("count < '10'", false),
        ("Case < 'upper'", true),
        ("\"\u{4e2d}\" > 'z'", true),
        ("env STARTS_WITH 'prod'", true),
        ("env STARTS_WITH 'prod-eu'", true),
        ("env STARTS_WITH 'prod-eu-1'", false),
        ("env STARTS_WITH 'Prod'", false),
        // Boolean structure.
        ("team = 'storage' AND env = 'prod-eu'", true),
        ("team = 'storage' AND env = 'dev'", false),
        ("team = 'x' OR env = 'prod-eu'", true),
        ("team = 'x' OR env = 'y'", false),
        ("NOT (team = 'x' OR env = 'y')", true),
        ("team = 'x' OR team = 'storage' AND env = 'y'", false),
        ("(team = 'x' OR team = 'storage') AND env = 'prod-eu'", true),
        // Attributes: key "logs/2024/a.gz", size 1000, modified 2024-05-01T08:00:00Z.
        ("@key STARTS_WITH 'logs/'", true),
        ("@key STARTS_WITH 'logs/2025/'", false),
        ("@key = 'logs/2024/a.gz'", true),
        ("@key > 'logs/2024/'", true),
        ("@size = 1000", true),
        ("@size > 999 AND @size < 1001", true),
        ("@size >= 1001", false),
        ("@size <> 1000", false),
        ("@modified = '2024-05-01T10:00:00+02:00'", true),
        ("@modified < '2024-05-01T08:00:00.000000001Z'", true),
        ("@modified >= '2024-05-01T08:00:01Z'", false),
        ("@modified > '2024-04-30T23:59:59-23:59'", false),
        (
            "team = 'storage' AND @key STARTS_WITH 'logs/' AND @size <= 1000",
            true,
        ),
    ];
    for (text, expected) in table {
        let query = parse(text);
        assert_eq!(
            query.matches(&set, &facts("logs/2024/a.gz")),
            *expected,
            "{text:?}"
        );
    }
    // No tags at all.
    assert!(!parse("EXISTS team").matches(&TagSet::empty(), &facts("k")));
    assert!(parse("NOT EXISTS team").matches(&TagSet::empty(), &facts("k")));
}

#[test]
fn uses_attributes() {
    assert!(!parse("a = '1' OR NOT EXISTS b").uses_attributes());
    assert!(parse("a = '1' OR NOT @size > 1").uses_attributes());
    assert!(parse("(@key = 'x')").uses_attributes());
    assert!(parse("@modified > '2024-01-01T00:00:00Z'").uses_attributes());
    let set = tags(&[("a", "1")]);
    assert_eq!(
        parse("a = '1' AND NOT EXISTS b").matches_tags(&set),
        Some(true)
    );
    assert_eq!(parse("a = '2'").matches_tags(&set), Some(false));
    assert_eq!(parse("a = '1' AND @size > 1").matches_tags(&set), None);
}

// ---- pushdown --------------------------------------------------------------------------------

fn term(text: &str) -> Filter {
    match parse(text).expr() {
        Expr::Predicate(p) => Filter::Term(p.clone()),
        other => panic!("not one predicate: {other}"),
    }
}

fn pushdown(text: &str) -> Pushdown {
    parse(text).expr().pushdown()
}

#[test]
fn pushdown_table() {
    let exact = |filter| Pushdown {
        filter: Some(filter),
        exact: true,
    };
    let inexact = |filter| Pushdown {
        filter,
        exact: false,
    };
    let table: Vec<(&str, Pushdown)> = vec![
        ("a = '1'", exact(term("a = '1'"))),
        ("a STARTS_WITH 'x'", exact(term("a STARTS_WITH 'x'"))),
        (
            "a <> '1'",
            exact(Filter::Any(vec![term("a < '1'"), term("a > '1'")])),
        ),
        (
            "a = '1' AND (b >= '2' OR @size < 10)",
            exact(Filter::All(vec![
                term("a = '1'"),
                Filter::Any(vec![term("b >= '2'"), term("@size < 10")]),
            ])),
        ),
        // Negated attributes flip their operator.
        ("NOT @size > 10", exact(term("@size <= 10"))),
        (
            "NOT (@size < 10 OR @key = 'x')",
            exact(Filter::All(vec![
                term("@size >= 10"),
                Filter::Any(vec![term("@key < 'x'"), term("@key > 'x'")]),
            ])),
        ),
        (
            "NOT @modified = '2024-01-01T00:00:00Z'",
            exact(Filter::Any(vec![
                term("@modified < '2024-01-01T00:00:00Z'"),
                term("@modified > '2024-01-01T00:00:00Z'"),
            ])),
        ),
        // Not pushable: existence, negated tag tests, negated STARTS_WITH. Under AND the rest
        // still narrows the search; under OR nothing can.
        ("EXISTS a", inexact(None)),
        ("NOT a = '1'", inexact(None)),
        ("NOT @key STARTS_WITH 'x'", inexact(None)),
        ("a = '1' AND NOT EXISTS b", inexact(Some(term("a = '1'")))),
        (
            "a = '1' AND b = '2' AND NOT c = '3'",
            inexact(Some(Filter::All(vec![term("a = '1'"), term("b = '2'")]))),
        ),
        ("a = '1' OR EXISTS b", inexact(None)),
        (
            "(a = '1' AND EXISTS b) OR c = '3'",
            inexact(Some(Filter::Any(vec![term("a = '1'"), term("c = '3'")]))),
        ),
        // NOT over AND becomes OR of negations.
        ("NOT (@size > 1 AND EXISTS a)", inexact(None)),
        ("NOT NOT a = '1'", exact(term("a = '1'"))),
    ];
    for (text, expected) in table {
        assert_eq!(pushdown(text), expected, "{text:?}");
    }
}

#[test]
fn required_key_prefix() {
    let table: &[(&str, Option<&str>)] = &[
        ("a = '1'", None),
        ("@key STARTS_WITH 'logs/'", Some("logs/")),
        ("@key = 'logs/a'", Some("logs/a")),
        ("@key > 'logs/'", None),
        (
            "a = '1' AND @key STARTS_WITH 'logs/' AND @key STARTS_WITH 'logs/2024/'",
            Some("logs/2024/"),
        ),
        (
            "@key STARTS_WITH 'logs/2024/' OR @key STARTS_WITH 'logs/2025/'",
            Some("logs/202"),
        ),
        ("@key STARTS_WITH 'logs/' OR a = '1'", None),
        ("@key STARTS_WITH 'a/' OR @key STARTS_WITH 'b/'", Some("")),
        ("NOT @key STARTS_WITH 'logs/'", None),
        // Common prefixes end on a character boundary.
        (
            "@key STARTS_WITH '\u{e9}a' OR @key STARTS_WITH '\u{e8}a'",
            Some(""),
        ),
        (
            "@key STARTS_WITH '\u{e9}a' OR @key STARTS_WITH '\u{e9}b'",
            Some("\u{e9}"),
        ),
    ];
    for (text, expected) in table {
        assert_eq!(
            parse(text).expr().required_key_prefix().as_deref(),
            *expected,
            "{text:?}"
        );
    }
}

// ---- properties ------------------------------------------------------------------------------

/// What generated predicates draw their keys, values, sizes and times from.
#[derive(Clone, Copy)]
enum Domain {
    /// Everything the grammar allows (for the text properties).
    Wide,
    /// A few values, so that random objects often match (for the evaluation properties):
    /// tags and keys over `a b /`, sizes 0-3, times within 3 seconds of [`SMALL_EPOCH`].
    Small,
}

const SMALL_EPOCH: OffsetDateTime = datetime!(2024-05-01 08:00:00 UTC);

fn predicate(domain: Domain) -> impl Strategy<Value = Predicate> {
    let (key, value, object_key, max_size, seconds) = match domain {
        Domain::Wide => (
            "[a-zA-Z0-9 +=._:/\\-\u{e9}\u{4e2d}]{1,12}",
            "[a-zA-Z0-9 +=._:/\\-\u{e9}\u{4e2d}]{0,12}",
            "[a-z0-9/'\"% _\u{e9}]{0,12}",
            u64::MAX,
            0i64..253_402_300_800,
        ),
        Domain::Small => {
            let epoch = SMALL_EPOCH.unix_timestamp();
            ("[ab]{1,2}", "[ab]{0,2}", "[ab/]{0,3}", 3, epoch..epoch + 3)
        }
    };
    let op = prop_oneof![
        Just(Op::Eq),
        Just(Op::Ne),
        Just(Op::Lt),
        Just(Op::Le),
        Just(Op::Gt),
        Just(Op::Ge),
    ];
    let text_op = prop_oneof![op.clone(), Just(Op::StartsWith)];
    let nanos = match domain {
        Domain::Wide => 0u32..1_000_000_000,
        Domain::Small => 0u32..1,
    };
    let instant = (seconds, nanos, -23i8..=23).prop_map(|(seconds, nanos, hours)| {
        let utc = OffsetDateTime::from_unix_timestamp(seconds).unwrap()
            + time::Duration::nanoseconds(i64::from(nanos));
        let offset = time::UtcOffset::from_hms(hours, 0, 0).unwrap();
        utc.to_offset(offset)
    });
    prop_oneof![
        (key, text_op.clone(), value).prop_map(|(key, op, value)| Predicate::Tag {
            key,
            op,
            value
        }),
        key.prop_map(|key| Predicate::TagExists { key }),
        (text_op, object_key).prop_map(|(op, value)| Predicate::Key { op, value }),
        (op.clone(), 0..=max_size).prop_map(|(op, value)| Predicate::Size { op, value }),
        (op, instant).prop_map(|(op, value)| Predicate::Modified { op, value }),
    ]
    // Years past 9999 after the offset shift do not format as RFC 3339.
    .prop_filter("RFC 3339 years", |p| match p {
        Predicate::Modified { value, .. } => (0..=9999).contains(&value.year()),
        _ => true,
    })
}

/// A tree of at most [`MAX_TERMS`] predicates from `domain`.
fn expr(domain: Domain) -> impl Strategy<Value = Expr> {
    predicate(domain)
        .prop_map(Expr::Predicate)
        .prop_recursive(5, 40, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 2..5).prop_map(Expr::And),
                proptest::collection::vec(inner.clone(), 2..5).prop_map(Expr::Or),
                inner.prop_map(|e| Expr::Not(Box::new(e))),
            ]
        })
        .prop_filter("term limit", |e| terms(e) <= MAX_TERMS)
}

/// An object from [`Domain::Small`]: its tags, key, size and modified time.
fn small_object() -> impl Strategy<Value = (TagSet, String, u64, OffsetDateTime)> {
    (
        proptest::collection::btree_map("[ab]{1,2}", "[ab]{0,2}", 0..=6),
        "[ab/]{0,3}",
        0u64..=3,
        0i64..3,
    )
        .prop_map(|(tags, key, size, seconds)| {
            (
                TagSet::from_pairs(tags).unwrap(),
                key,
                size,
                SMALL_EPOCH + time::Duration::seconds(seconds),
            )
        })
}

/// Conditions in `expr`, to keep generated trees within [`MAX_TERMS`].
fn terms(expr: &Expr) -> usize {
    match expr {
        Expr::And(operands) | Expr::Or(operands) => operands.iter().map(terms).sum(),
        Expr::Not(operand) => terms(operand),
        Expr::Predicate(_) => 1,
    }
}

proptest! {
    #[test]
    fn display_reparses_to_the_same_tree(expr in expr(Domain::Wide)) {
        let text = expr.to_string();
        let query = Query::parse(&text).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(query.expr(), &expr, "{}", text);
        prop_assert_eq!(query.to_string(), text);
    }

    #[test]
    fn parser_never_panics(text in any::<String>()) {
        if let Err(e) = Query::parse(&text) {
            prop_assert!(e.position <= text.chars().count());
        }
    }

    #[test]
    fn parser_never_panics_on_query_like_text(text in "[()\"' a-zA-Z0-9=<>!@&%_.\u{e9}-]{0,80}") {
        match Query::parse(&text) {
            Ok(query) => prop_assert_eq!(Query::parse(&query.to_string()), Ok(query)),
            Err(e) => prop_assert!(e.position <= text.chars().count()),
        }
    }

    #[test]
    fn pushdown_is_necessary_and_exact_when_it_says_so(
        expr in expr(Domain::Small),
        (set, key, size, modified) in small_object(),
    ) {
        let facts = ObjectFacts { key: &key, size, modified };
        let matched = expr.matches(&set, &facts);
        let pushed = expr.pushdown();
        let passes = pushed.filter.as_ref().is_none_or(|f| filter_matches(f, &set, &facts));
        prop_assert!(!matched || passes, "a match the backend filter would drop");
        if pushed.exact {
            prop_assert_eq!(matched, passes);
        }
        if matched && let Some(prefix) = expr.required_key_prefix() {
            prop_assert!(key.starts_with(&prefix), "{key:?} lacks the required {prefix:?}");
        }
    }

    #[test]
    fn evaluation_follows_the_boolean_structure(
        expr in expr(Domain::Small),
        (set, key, size, modified) in small_object(),
    ) {
        let facts = ObjectFacts { key: &key, size, modified };
        let matched = expr.matches(&set, &facts);
        let negation = Expr::Not(Box::new(expr.clone()));
        prop_assert_eq!(negation.matches(&set, &facts), !matched);
        // The canonical text evaluates the same.
        let reparsed = Query::parse(&expr.to_string()).unwrap();
        prop_assert_eq!(reparsed.matches(&set, &facts), matched);
    }
}

/// The backend's reading of a [`Filter`] (absent tags match no term), for the property above.
fn filter_matches(filter: &Filter, set: &TagSet, facts: &ObjectFacts<'_>) -> bool {
    match filter {
        Filter::All(filters) => filters.iter().all(|f| filter_matches(f, set, facts)),
        Filter::Any(filters) => filters.iter().any(|f| filter_matches(f, set, facts)),
        Filter::Term(p) => {
            assert!(!matches!(p, Predicate::TagExists { .. }));
            p.matches(set, facts)
        }
    }
}

// ---- the documentation -----------------------------------------------------------------------

/// The `| `query` | … |` rows of the section of docs/query.md headed `heading`: the query and
/// the rest of the row.
fn doc_rows(heading: &str) -> Vec<(String, String)> {
    let doc = include_str!("../../../docs/query.md");
    let section = doc.split("\n## ").find(|s| s.starts_with(heading)).unwrap();
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .map(|row| {
            let (query, rest) = row.split_once("` | ").unwrap();
            (query.to_owned(), rest.trim_end_matches(" |").to_owned())
        })
        .collect()
}

#[test]
fn documented_examples_parse() {
    let rows = doc_rows("Examples");
    assert!(rows.len() >= 10);
    for (query, _) in rows {
        parse(&query);
    }
}

#[test]
fn documented_errors_are_the_errors() {
    let rows = doc_rows("Errors");
    assert!(rows.len() >= 9);
    for (query, message) in rows {
        assert_eq!(format!("`{}`", error(&query)), message, "{query:?}");
    }
}
