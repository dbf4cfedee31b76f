//! The MetaQuery data index of a bucket (OpenMetaQuery, GetMetaQueryStatus, DoMetaQuery,
//! CloseMetaQuery).
//!
//! While a bucket's index is open, the store calls [`Bucket::reindex`] after every commit
//! of an object (put, append, copy, multipart complete, symlink, tagging, metadata update,
//! delete), under the same lock, so the index never lags behind the objects. (OSS's index
//! lags; the emulator's does not.)
//!
//! The index holds only what narrows a search: tag key → tag value → object keys. Every
//! other field is read from the live current version when a candidate is checked, so it
//! can never be stale. A query on a tag (`eq`, a range, `prefix`) or on `Filename` (`eq`,
//! `prefix`) reads only its candidates; anything else scans the bucket's objects.
//!
//! The index is opened in state Ready (Phase FullScanning) and reports Running (Phase
//! IncrementalScanning) after [`PREPARATION`], like OSS's start-up, which clients poll
//! for; it answers DoMetaQuery in both states. Its mode and creation time survive a restart
//! in `buckets/<bucket>/metaquery.json`; the index itself is rebuilt from the objects.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::meta_query::{
    Aggregation, AggregationResult, Cond, Field, LeafOp, Order, PageToken, SortPosition,
};
use super::version::{Version, now_ms};
use super::{Bucket, ObjectEntry, Store, lock, write_atomic};
use crate::emulator::error::ApiError;

/// How long a newly opened index reports Ready before Running.
pub const PREPARATION: Duration = Duration::from_millis(300);

/// Most results a DoMetaQuery page holds (and the page size when none is asked for).
pub const MAX_RESULTS: usize = 100;

/// The file that keeps an open index's mode and creation time.
const STATE_FILE: &str = "metaquery.json";

/// What survives a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IndexState {
    mode: String,
    created_ms: u64,
}

/// The index of one bucket.
#[derive(Debug)]
pub(super) struct MetaIndex {
    state: IndexState,
    updated_ms: u64,
    /// Tag key → tag value → keys of the objects whose current version has that tag.
    by_tag: HashMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// The tags indexed for each key, to remove them when the object changes.
    tags_of: HashMap<String, Vec<(String, String)>>,
}

impl MetaIndex {
    fn build(state: IndexState, objects: &BTreeMap<String, ObjectEntry>) -> Self {
        let mut index = Self {
            state,
            updated_ms: now_ms(),
            by_tag: HashMap::new(),
            tags_of: HashMap::new(),
        };
        for (key, entry) in objects {
            index.update(key, live(entry));
        }
        index
    }

    /// Replaces what the index holds for `key` with its current version's tags.
    fn update(&mut self, key: &str, current: Option<&Version>) {
        if let Some(old) = self.tags_of.remove(key) {
            for (k, v) in old {
                if let Some(values) = self.by_tag.get_mut(&k) {
                    if let Some(keys) = values.get_mut(&v) {
                        keys.remove(key);
                        if keys.is_empty() {
                            values.remove(&v);
                        }
                    }
                    if values.is_empty() {
                        self.by_tag.remove(&k);
                    }
                }
            }
        }
        let Some(v) = current else {
            return;
        };
        if v.tags.is_empty() {
            return;
        }
        let mut indexed = Vec::with_capacity(v.tags.len());
        for (k, val) in &v.tags {
            self.by_tag
                .entry(k.clone())
                .or_default()
                .entry(val.clone())
                .or_default()
                .insert(key.to_owned());
            indexed.push((k.clone(), val.clone()));
        }
        self.tags_of.insert(key.to_owned(), indexed);
    }

    /// The keys that can satisfy `cond` (a superset), or `None` when only a scan can tell.
    fn candidates<'a>(
        &'a self,
        cond: &Cond,
        objects: &'a BTreeMap<String, ObjectEntry>,
    ) -> Option<BTreeSet<&'a str>> {
        match cond {
            Cond::Leaf {
                field: Field::Tag(tag),
                op,
                value,
            } => {
                let text = value.text();
                let Some(values) = self.by_tag.get(tag) else {
                    return Some(BTreeSet::new());
                };
                let range: Box<dyn Iterator<Item = (&String, &BTreeSet<String>)>> = match op {
                    LeafOp::Eq => Box::new(values.get_key_value(&text).into_iter()),
                    LeafOp::Gt => Box::new(
                        values.range::<String, _>((Bound::Excluded(&text), Bound::Unbounded)),
                    ),
                    LeafOp::Gte => Box::new(values.range::<String, _>(&text..)),
                    LeafOp::Lt => Box::new(values.range::<String, _>(..&text)),
                    LeafOp::Lte => Box::new(values.range::<String, _>(..=&text)),
                    LeafOp::Prefix => {
                        let prefix = text.clone();
                        Box::new(
                            values
                                .range::<String, _>(&text..)
                                .take_while(move |(v, _)| v.starts_with(prefix.as_str())),
                        )
                    }
                    LeafOp::Match => Box::new(values.iter()),
                };
                Some(
                    range
                        .flat_map(|(_, keys)| keys.iter().map(String::as_str))
                        .collect(),
                )
            }
            Cond::Leaf {
                field: Field::Filename,
                op: LeafOp::Eq,
                value,
            } => Some(
                objects
                    .get_key_value(&value.text())
                    .map(|(k, _)| k.as_str())
                    .into_iter()
                    .collect(),
            ),
            Cond::Leaf {
                field: Field::Filename,
                op: LeafOp::Prefix,
                value,
            } => {
                let prefix = value.text();
                Some(
                    objects
                        .range::<String, _>(&prefix..)
                        .take_while(|(k, _)| k.starts_with(prefix.as_str()))
                        .map(|(k, _)| k.as_str())
                        .collect(),
                )
            }
            Cond::Leaf { .. } | Cond::Not(_) => None,
            Cond::And(subs) => subs
                .iter()
                .filter_map(|c| self.candidates(c, objects))
                .reduce(|a, b| {
                    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
                    small.into_iter().filter(|k| large.contains(k)).collect()
                }),
            Cond::Or(subs) => {
                let mut all = BTreeSet::new();
                for c in subs {
                    all.extend(self.candidates(c, objects)?);
                }
                Some(all)
            }
        }
    }
}

/// The live current version of an entry (none for a delete marker on top).
fn live(entry: &ObjectEntry) -> Option<&Version> {
    entry.versions.last().filter(|v| !v.is_delete_marker())
}

/// The live current version of an entry if it satisfies `cond`.
fn matching<'a>(cond: &Cond, key: &str, entry: &'a ObjectEntry) -> Option<&'a Version> {
    live(entry).filter(|v| cond.matches(key, v))
}

impl Bucket {
    /// Brings the index (if open) up to date with `key`'s current version. The store calls
    /// this after every successful commit of an object.
    pub(super) fn reindex(&mut self, key: &str) {
        if let Some(index) = &mut self.meta_index {
            index.update(key, self.objects.get(key).and_then(live));
            index.updated_ms = now_ms();
        }
    }
}

/// Loads an open index's state from a bucket directory and builds it (at start).
pub(super) fn load(dir: &Path, objects: &BTreeMap<String, ObjectEntry>) -> Option<MetaIndex> {
    let bytes = std::fs::read(dir.join(STATE_FILE)).ok()?;
    let state: IndexState = serde_json::from_slice(&bytes).ok()?;
    Some(MetaIndex::build(state, objects))
}

/// GetMetaQueryStatus's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaQueryStatus {
    /// `Ready` or `Running`.
    pub state: &'static str,
    /// `FullScanning` or `IncrementalScanning`.
    pub phase: &'static str,
    /// `basic` or `semantic`.
    pub mode: String,
    /// When the index was opened (Unix ms).
    pub created_ms: u64,
    /// When it last changed (Unix ms).
    pub updated_ms: u64,
}

/// A DoMetaQuery request, parsed.
#[derive(Debug, Clone)]
pub struct MetaSearch {
    /// The condition.
    pub cond: Cond,
    /// The sort field (`Filename` when none was given).
    pub sort: Field,
    /// The order.
    pub order: Order,
    /// Results per page (1 to [`MAX_RESULTS`]).
    pub max_results: usize,
    /// Where the previous page ended.
    pub after: Option<SortPosition>,
    /// Aggregations over all matches.
    pub aggregations: Vec<Aggregation>,
}

/// One page of DoMetaQuery.
#[derive(Debug, Clone)]
pub struct MetaPage {
    /// `(key, current version)` of each result, in order.
    pub files: Vec<(String, Version)>,
    /// The token for the next page, when there are more results.
    pub next_token: Option<String>,
    /// The aggregations, over every match (not only this page).
    pub aggregations: Vec<AggregationResult>,
}

impl Store {
    /// OpenMetaQuery: builds the bucket's index. MetaQueryAlreadyExist if it is open.
    pub fn open_meta_query(&self, bucket: &str, mode: &str) -> Result<(), ApiError> {
        let mut buckets = lock(&self.buckets);
        let b = buckets
            .get_mut(bucket)
            .ok_or_else(|| ApiError::no_such_bucket(bucket))?;
        if b.meta_index.is_some() {
            return Err(already_exists());
        }
        let state = IndexState {
            mode: mode.to_owned(),
            created_ms: now_ms(),
        };
        if let Some(root) = &self.root {
            let dir = root.join("buckets").join(bucket);
            let json = serde_json::to_vec(&state).map_err(|e| ApiError::internal(e.to_string()))?;
            write_atomic(&dir, STATE_FILE, &json, true)
                .map_err(|e| ApiError::internal(format!("cannot write the index state: {e}")))?;
        }
        b.meta_index = Some(MetaIndex::build(state, &b.objects));
        Ok(())
    }

    /// GetMetaQueryStatus. MetaQueryNotExist when the index is not open.
    pub fn meta_query_status(&self, bucket: &str) -> Result<MetaQueryStatus, ApiError> {
        let buckets = lock(&self.buckets);
        let b = buckets
            .get(bucket)
            .ok_or_else(|| ApiError::no_such_bucket(bucket))?;
        let index = b.meta_index.as_ref().ok_or_else(not_exist)?;
        let ready_at = index.state.created_ms + PREPARATION.as_millis() as u64;
        let running = now_ms() >= ready_at;
        Ok(MetaQueryStatus {
            state: if running { "Running" } else { "Ready" },
            phase: if running {
                "IncrementalScanning"
            } else {
                "FullScanning"
            },
            mode: index.state.mode.clone(),
            created_ms: index.state.created_ms,
            updated_ms: index.updated_ms.max(index.state.created_ms),
        })
    }

    /// CloseMetaQuery: drops the index; nothing to close is no error (as OSS documents).
    pub fn close_meta_query(&self, bucket: &str) -> Result<(), ApiError> {
        let mut buckets = lock(&self.buckets);
        let b = buckets
            .get_mut(bucket)
            .ok_or_else(|| ApiError::no_such_bucket(bucket))?;
        if b.meta_index.take().is_some()
            && let Some(root) = &self.root
        {
            let dir = root.join("buckets").join(bucket);
            match std::fs::remove_file(dir.join(STATE_FILE)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(ApiError::internal(format!(
                        "cannot remove the index state: {e}"
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// DoMetaQuery: one page of the objects matching `search`, in its order.
    pub fn meta_query(&self, bucket: &str, search: &MetaSearch) -> Result<MetaPage, ApiError> {
        let buckets = lock(&self.buckets);
        let b = buckets
            .get(bucket)
            .ok_or_else(|| ApiError::no_such_bucket(bucket))?;
        let index = b.meta_index.as_ref().ok_or_else(not_exist)?;
        let check = |key: &str, entry| matching(&search.cond, key, entry);
        let mut matches: Vec<(&str, &Version)> = match index.candidates(&search.cond, &b.objects) {
            Some(keys) => keys
                .into_iter()
                .filter_map(|k| {
                    let (key, entry) = b.objects.get_key_value(k)?;
                    Some((key.as_str(), check(key, entry)?))
                })
                .collect(),
            None => b
                .objects
                .iter()
                .filter_map(|(key, entry)| Some((key.as_str(), check(key, entry)?)))
                .collect(),
        };
        let aggregations = search
            .aggregations
            .iter()
            .map(|a| {
                let values: Vec<_> = matches
                    .iter()
                    .filter_map(|(k, v)| a.field.value_of(k, v))
                    .collect();
                a.compute(&values)
            })
            .collect();
        let position = |key: &str, v: &Version| SortPosition {
            value: search.sort.value_of(key, v),
            key: key.to_owned(),
        };
        // Candidates and the scan both come in key order: Filename ascending needs no sort.
        let by_key_asc = search.sort == Field::Filename && search.order == Order::Asc;
        let mut ordered: Vec<(SortPosition, &Version)> = Vec::new();
        if by_key_asc {
            if let Some(after) = &search.after {
                matches.retain(|(k, _)| *k > after.key.as_str());
            }
            ordered.extend(
                matches
                    .iter()
                    .take(search.max_results + 1)
                    .map(|(k, v)| (position(k, v), *v)),
            );
        } else {
            ordered = matches.iter().map(|(k, v)| (position(k, v), *v)).collect();
            if let Some(after) = &search.after {
                ordered.retain(|(p, _)| p.cmp_in(after, search.order).is_gt());
            }
            ordered.sort_by(|(a, _), (b, _)| a.cmp_in(b, search.order));
        }
        let more = ordered.len() > search.max_results;
        ordered.truncate(search.max_results);
        let next_token = match ordered.last() {
            Some((last, _)) if more => Some(
                PageToken {
                    sort: search.sort.name(),
                    order: search.order,
                    after: last.clone(),
                }
                .encode(),
            ),
            _ => None,
        };
        Ok(MetaPage {
            files: ordered
                .into_iter()
                .map(|(p, v)| (p.key, v.clone()))
                .collect(),
            next_token,
            aggregations,
        })
    }
}

/// 404 MetaQueryNotExist: the bucket has no open index. (The Java SDK's error list names
/// the code; the status follows NoSuchBucket's family, see docs/oss-protocol.md.)
pub fn not_exist() -> ApiError {
    ApiError::new(
        http::StatusCode::NOT_FOUND,
        "MetaQueryNotExist",
        "The metadata index library does not exist in the bucket.",
    )
}

/// 400 MetaQueryAlreadyExist (the Go SDK v2's tests answer OpenMetaQuery with it).
fn already_exists() -> ApiError {
    ApiError::new(
        http::StatusCode::BAD_REQUEST,
        "MetaQueryAlreadyExist",
        "The metadata index library already exists in the bucket.",
    )
}

#[cfg(test)]
mod tests {
    use super::super::meta_query::FieldValue;
    use super::super::version::Kind;
    use super::*;

    fn version(size: u64, tags: &[(&str, &str)]) -> Version {
        let mut v = Version::new(Kind::Data {
            object_type: "Normal".into(),
            blob: format!("blob-{size}"),
            size,
            etag: "E".into(),
            crc64: 1,
        });
        v.tags = tags
            .iter()
            .map(|(k, val)| ((*k).to_owned(), (*val).to_owned()))
            .collect();
        v
    }

    fn search(query: &str, sort: Field, order: Order, max: usize) -> MetaSearch {
        MetaSearch {
            cond: Cond::parse(query).unwrap(),
            sort,
            order,
            max_results: max,
            after: None,
            aggregations: Vec::new(),
        }
    }

    fn keys(page: &MetaPage) -> Vec<&str> {
        page.files.iter().map(|(k, _)| k.as_str()).collect()
    }

    const TEAM_A: &str = r#"{"Field":"OSSTagging.team","Value":"a","Operation":"eq"}"#;

    #[test]
    fn every_write_updates_the_index() {
        let store = Store::in_memory();
        store.ensure_bucket("b", false).unwrap();
        store
            .put("b", "k1", version(1, &[("team", "a")]), None, false)
            .unwrap();
        store.open_meta_query("b", "basic").unwrap();
        assert_eq!(
            store.open_meta_query("b", "basic").unwrap_err().code,
            "MetaQueryAlreadyExist"
        );
        let find = |q: &str| {
            keys(
                &store
                    .meta_query("b", &search(q, Field::Filename, Order::Asc, 100))
                    .unwrap(),
            )
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
        };
        // Built from what was there, then kept up to date by put, tagging and delete.
        assert_eq!(find(TEAM_A), ["k1"]);
        store
            .put("b", "k2", version(2, &[("team", "a")]), None, false)
            .unwrap();
        assert_eq!(find(TEAM_A), ["k1", "k2"]);
        store
            .set_tags("b", "k1", None, [("team".into(), "b".into())].into())
            .unwrap();
        assert_eq!(find(TEAM_A), ["k2"]);
        store.put("b", "k2", version(3, &[]), None, false).unwrap();
        assert!(find(TEAM_A).is_empty());
        store.delete("b", "k1", None).unwrap();
        assert!(find(r#"{"Field":"OSSTagging.team","Value":"b","Operation":"eq"}"#).is_empty());
        assert_eq!(
            find(r#"{"Field":"Size","Value":"3","Operation":"eq"}"#),
            ["k2"]
        );
        store.close_meta_query("b").unwrap();
        store.close_meta_query("b").unwrap();
        assert_eq!(
            store.meta_query_status("b").unwrap_err().code,
            "MetaQueryNotExist"
        );
        let err = store
            .meta_query("b", &search(TEAM_A, Field::Filename, Order::Asc, 1))
            .unwrap_err();
        assert_eq!(err.code, "MetaQueryNotExist");
    }

    #[test]
    fn versioned_buckets_index_the_current_version_only() {
        let store = Store::in_memory();
        store.ensure_bucket("v", true).unwrap();
        store.open_meta_query("v", "basic").unwrap();
        store
            .put("v", "k", version(1, &[("team", "a")]), None, false)
            .unwrap();
        store
            .put("v", "k", version(2, &[("team", "b")]), None, false)
            .unwrap();
        let page = store
            .meta_query("v", &search(TEAM_A, Field::Filename, Order::Asc, 10))
            .unwrap();
        assert!(page.files.is_empty());
        store.delete("v", "k", None).unwrap();
        let any = r#"{"Field":"Size","Value":"0","Operation":"gte"}"#;
        let page = store
            .meta_query("v", &search(any, Field::Filename, Order::Asc, 10))
            .unwrap();
        assert!(page.files.is_empty(), "a delete marker hides the object");
    }

    #[test]
    fn paging_is_stable_while_objects_change() {
        let store = Store::in_memory();
        store.ensure_bucket("b", false).unwrap();
        store.open_meta_query("b", "basic").unwrap();
        for i in 0..10u64 {
            let key = format!("k{i}");
            store
                .put("b", &key, version(i % 3, &[("team", "a")]), None, false)
                .unwrap();
        }
        for (sort, order) in [
            (Field::Filename, Order::Asc),
            (Field::Filename, Order::Desc),
            (Field::Size, Order::Asc),
            (Field::Size, Order::Desc),
        ] {
            let mut s = search(TEAM_A, sort.clone(), order, 3);
            let mut seen = Vec::new();
            let mut pages = 0;
            loop {
                let page = store.meta_query("b", &s).unwrap();
                seen.extend(keys(&page).into_iter().map(str::to_owned));
                pages += 1;
                if pages == 1 {
                    // A write before the token's place and a delete after it change
                    // nothing on the pages still to come except the deleted object.
                    store
                        .put("b", "a-first", version(0, &[("team", "a")]), None, false)
                        .unwrap();
                    store.delete("b", "a-first", None).unwrap();
                }
                match page.next_token {
                    Some(t) => s.after = Some(PageToken::decode(&t, &sort, order).unwrap().after),
                    None => break,
                }
            }
            let mut expected: Vec<_> = (0..10).map(|i| format!("k{i}")).collect();
            let mut sorted = seen.clone();
            sorted.sort();
            expected.sort();
            assert_eq!(sorted, expected, "{sort:?} {order:?}: each object once");
            assert_eq!(pages, 4);
            if sort == Field::Size {
                let sizes: Vec<u64> = seen
                    .iter()
                    .map(|k| k[1..].parse::<u64>().unwrap() % 3)
                    .collect();
                let mut want = sizes.clone();
                want.sort();
                if order == Order::Desc {
                    want.reverse();
                }
                assert_eq!(sizes, want);
            }
        }
    }

    #[test]
    fn index_state_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.ensure_bucket("b", false).unwrap();
            store
                .put("b", "k", version(5, &[("team", "a")]), None, false)
                .unwrap();
            store.open_meta_query("b", "semantic").unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.meta_query_status("b").unwrap().mode, "semantic");
        let page = store
            .meta_query("b", &search(TEAM_A, Field::Filename, Order::Asc, 10))
            .unwrap();
        assert_eq!(keys(&page), ["k"]);
        store.close_meta_query("b").unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.meta_query_status("b").is_err());
    }

    /// 100,000 objects, 1% tagged `team=a`: a tag query reads its 1,000 candidates, not
    /// the bucket; a Size query scans. Prints the times (`--nocapture`); the bound is loose
    /// so a loaded machine or a debug build still passes.
    #[test]
    fn a_tag_query_on_100k_objects_reads_only_its_candidates() {
        let store = Store::in_memory();
        store.ensure_bucket("b", false).unwrap();
        store.open_meta_query("b", "basic").unwrap();
        for i in 0..100_000u64 {
            let team = if i % 100 == 0 { "a" } else { "other" };
            let tags = [
                ("team", team),
                ("env", if i % 2 == 0 { "prod" } else { "dev" }),
            ];
            store
                .put("b", &format!("obj/{i:06}"), version(i, &tags), None, false)
                .unwrap();
        }
        let time = |query: &str| {
            let started = std::time::Instant::now();
            let mut s = search(query, Field::Filename, Order::Asc, 100);
            let mut found = 0;
            loop {
                let page = store.meta_query("b", &s).unwrap();
                found += page.files.len();
                match page.next_token {
                    Some(t) => {
                        s.after = Some(
                            PageToken::decode(&t, &Field::Filename, Order::Asc)
                                .unwrap()
                                .after,
                        );
                    }
                    None => break,
                }
            }
            (found, started.elapsed())
        };
        let (found, by_tag) = time(TEAM_A);
        assert_eq!(found, 1000);
        let (found, by_scan) = time(r#"{"Field":"Size","Value":"99000","Operation":"gte"}"#);
        assert_eq!(found, 1000);
        println!("100k objects, 1,000 matches in 10 pages: tag index {by_tag:?}, scan {by_scan:?}");
        assert!(by_tag < by_scan, "the index must beat the scan");
        let size = Field::Size
            .value_of("obj/000001", &version(1, &[]))
            .unwrap();
        assert_eq!(size, FieldValue::Number(1));
    }
}
