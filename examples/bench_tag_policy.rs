//! The cost of the tag policy (`[[tag_policy.rules]]`) on one call: `TagPolicy::check` on a
//! full tag set (10 tags) against a policy of `--rules` rules that all apply (each with
//! required keys, allowed keys, a value list, a prefix wildcard, a regex, case rules and a
//! maximum), for a set that passes and one that fails every rule (the refusal's status is
//! built too). Latencies of single evaluations in a histogram, printed as one JSON line.
//!
//! ```text
//! cargo build --release --example bench_tag_policy
//! target/release/examples/bench_tag_policy --rules 50 --iterations 200000
//! ```

use std::{hint::black_box, time::Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use ossgate::{
    config::tag_policy::{Case, TagPolicySettings, TagRule, ValuePattern},
    model::TagSet,
    rpc::{auth::Principal, tag_policy::TagPolicy},
};

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Tag policy evaluation latency (one JSON line)")]
struct Args {
    /// Rules in the policy, all of which apply to the object checked.
    #[arg(long, default_value_t = 50)]
    rules: usize,
    /// Evaluations per tag set.
    #[arg(long, default_value_t = 200_000)]
    iterations: usize,
}

fn strings(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

fn pattern(text: &str) -> ValuePattern {
    ValuePattern::try_from(text.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

/// `count` rules that all apply to `bench-bucket`/`reports/2026/q1.csv` for `bench-bot`.
fn settings(count: usize) -> TagPolicySettings {
    let keys = [
        "team", "env", "owner", "cost", "app", "tier", "region", "data", "ttl", "ticket",
    ];
    let rules = (0..count)
        .map(|i| TagRule {
            name: format!("rule-{i}"),
            buckets: strings(&["other-bucket", "bench-bucket"]),
            prefixes: strings(&["logs/", "reports/"]),
            principals: if i % 2 == 0 {
                Vec::new()
            } else {
                strings(&["bench-bot"])
            },
            required_keys: strings(&["team", "env", "owner"]),
            allowed_keys: strings(&keys),
            allowed_values: [
                (
                    "team".to_string(),
                    vec![pattern("storage"), pattern("web-*"), pattern("data-*")],
                ),
                ("env".to_string(), vec![pattern("~dev|staging|prod[0-9]*")]),
                ("ticket".to_string(), vec![pattern("~[a-z]+-[0-9]{1,6}")]),
            ]
            .into(),
            key_case: Case::Lower,
            value_case: Case::Lower,
            max_tags: Some(10),
        })
        .collect();
    TagPolicySettings { rules }
}

fn tag_set(pairs: &[(&str, &str)]) -> TagSet {
    TagSet::from_pairs(pairs.iter().copied()).unwrap_or_else(|v| panic!("{v:?}"))
}

/// Latencies (ns) of `iterations` single evaluations; the number refused.
fn measure(policy: &TagPolicy, tags: &TagSet, iterations: usize) -> (Histogram<u64>, usize) {
    let principal = Principal::new("bench-bot");
    // 1 ns .. 10 s, 3 significant digits.
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap_or_else(|e| panic!("{e}"));
    let mut refused = 0;
    for _ in 0..iterations {
        let started = Instant::now();
        let result = black_box(policy.check(
            "tagging",
            black_box("bench-bucket"),
            black_box("reports/2026/q1.csv"),
            Some(&principal),
            black_box(tags),
        ));
        let elapsed = started.elapsed().as_nanos() as u64;
        refused += usize::from(result.is_err());
        histogram.saturating_record(elapsed.max(1));
    }
    (histogram, refused)
}

fn summary(name: &str, histogram: &Histogram<u64>, refused: usize) -> String {
    let us = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    format!(
        "\"{name}\": {{\"p50_us\": {:.2}, \"p99_us\": {:.2}, \"p999_us\": {:.2}, \"max_us\": {:.2}, \"refused\": {refused}}}",
        us(0.5),
        us(0.99),
        us(0.999),
        histogram.max() as f64 / 1000.0
    )
}

fn main() {
    let args = Args::parse();
    let policy = TagPolicy::new(&settings(args.rules));
    let valid = tag_set(&[
        ("team", "web-frontend"),
        ("env", "prod2"),
        ("owner", "alice"),
        ("cost", "cc-1234"),
        ("app", "reports"),
        ("tier", "gold"),
        ("region", "cn-hangzhou"),
        ("data", "internal"),
        ("ttl", "30d"),
        ("ticket", "ops-4711"),
    ]);
    // Breaks every rule several ways: a value off the list, the regex, the case, an unknown
    // key, a missing required key.
    let invalid = tag_set(&[
        ("team", "ops"),
        ("env", "qa"),
        ("Cost", "X"),
        ("color", "red"),
    ]);
    // Warm up (regex caches, allocator).
    measure(&policy, &valid, 1000);
    let (passing, refused_valid) = measure(&policy, &valid, args.iterations);
    let (failing, refused_invalid) = measure(&policy, &invalid, args.iterations);
    let empty = TagPolicy::default();
    let (none, _) = measure(&empty, &valid, args.iterations);
    assert_eq!(refused_valid, 0, "the valid set was refused");
    assert_eq!(refused_invalid, args.iterations, "the invalid set passed");
    println!(
        "{{\"rules\": {}, \"iterations\": {}, {}, {}, {}}}",
        args.rules,
        args.iterations,
        summary("valid_10_tags", &passing, refused_valid),
        summary("refused_4_tags", &failing, refused_invalid),
        summary("no_rules", &none, 0),
    );
}
