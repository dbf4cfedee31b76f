//! FindObjects: the objects under a prefix whose tags (and key, size, modification time)
//! satisfy a query in the tag query language (`model::query`, docs/query.md).
//!
//! Two engines produce the matches ([`metaquery`]: the bucket's OSS data index, post-filtered
//! with the whole query; [`scan`]: ListObjectsV2 plus GetObjectTagging per object), and one
//! [`sink::Sink`] turns them into the response stream: batches of matches and progress, sent
//! through a bounded channel, so an engine waits for a slow reader instead of buffering.
//!
//! Engine choice (`AUTO`): the data index when GetMetaQueryStatus says it is `Running`, else the
//! scan. A forced `METAQUERY` on a bucket without an index is FAILED_PRECONDITION.

mod metaquery;
mod scan;
mod sink;

use std::{num::NonZeroU32, pin::Pin, sync::Arc, time::SystemTime};

use futures_util::Stream;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status};

use super::{
    convert::{tagging_to_proto, timestamp},
    status::{gateway_error, oss_status},
    validate::Validation,
};
use crate::{
    config::FindSettings,
    model::{
        BucketName, ObjectKey, TagSet,
        query::{ObjectFacts, Query},
    },
    oss::{Client, OssErrorKind},
    proto,
};
use sink::{Halt, Sink};

/// The response stream of FindObjects.
pub type FindObjectsStream =
    Pin<Box<dyn Stream<Item = Result<proto::FindObjectsResponse, Status>> + Send>>;

/// Matches per message when the request leaves `batch_size` at 0.
const DEFAULT_BATCH: usize = 100;
/// Largest `batch_size`.
const MAX_BATCH: usize = 1000;
/// Messages waiting for the reader: with a slow reader the engine stops here, so a find
/// holds at most this many batches (plus what the engine has in flight).
const CHANNEL_DEPTH: usize = 2;

/// What the progress says about the data index's answers.
const INDEX_NOTE: &str = "results follow the bucket's MetaQuery index, which can lag behind \
    recent writes: a new object or tag may be missing, a deleted one still listed";
/// What the progress says when AUTO fell back to the scan.
const SCAN_FALLBACK_NOTE: &str = "the bucket's MetaQuery index is not running: scanning";

/// Which keys the caller may see (the policy's `list` and `read`); nothing outside is
/// returned, nor its tags fetched.
pub type KeyFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// What every find shares: the scan engine's parallelism and the one rate limit on the
/// OSS requests of all scans together.
#[derive(Clone)]
pub struct FindConfig {
    parallelism: usize,
    limiter: Arc<DefaultDirectRateLimiter>,
}

impl FindConfig {
    /// From the `[find]` settings (validated: both at least 1).
    pub fn new(settings: &FindSettings) -> Self {
        let rate = NonZeroU32::new(settings.scan_ops_per_second).unwrap_or(NonZeroU32::MIN);
        Self {
            parallelism: settings.scan_parallelism.max(1),
            limiter: Arc::new(RateLimiter::direct(Quota::per_second(rate))),
        }
    }
}

impl std::fmt::Debug for FindConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FindConfig")
            .field("parallelism", &self.parallelism)
            .finish_non_exhaustive()
    }
}

/// A validated request.
#[derive(Debug)]
struct FindPlan {
    bucket: BucketName,
    /// Where to look, and nothing outside it is returned: the request's prefix, or the
    /// longer one every match needs (the query's `@key STARTS_WITH`); `None` when the two
    /// exclude each other.
    scope: Option<String>,
    query: Query,
    engine: proto::FindEngine,
    batch_size: usize,
    limit: Option<u64>,
}

fn plan(req: proto::FindObjectsRequest) -> Result<FindPlan, Status> {
    let mut v = Validation::new();
    let bucket = v.bucket("bucket", &req.bucket);
    if req.prefix.len() > ObjectKey::MAX_BYTES {
        v.violation(
            "prefix",
            format!(
                "is {} bytes; the limit is {}",
                req.prefix.len(),
                ObjectKey::MAX_BYTES
            ),
        );
    }
    let query = if req.query.trim().is_empty() {
        v.violation("query", "is empty");
        None
    } else {
        match Query::parse(&req.query) {
            Ok(q) => Some(q),
            Err(e) => {
                // `at <position>: <reason>`, the position in characters from 0.
                v.violation("query", e.to_string());
                None
            }
        }
    };
    let engine = match proto::FindEngine::try_from(req.engine) {
        Ok(proto::FindEngine::Unspecified) => Some(proto::FindEngine::Auto),
        Ok(e) => Some(e),
        Err(_) => {
            v.violation("engine", format!("{} is not a FindEngine", req.engine));
            None
        }
    };
    let batch_size = match req.batch_size {
        0 => Some(DEFAULT_BATCH),
        n if (1..=MAX_BATCH as i32).contains(&n) => Some(n as usize),
        n => {
            v.violation("batch_size", format!("{n} is outside 1..={MAX_BATCH}"));
            None
        }
    };
    let limit = match req.limit {
        0 => Some(None),
        n if n > 0 => Some(Some(n as u64)),
        n => {
            v.violation("limit", format!("{n} is negative"));
            None
        }
    };
    let parsed = (|| Some((bucket?, query?, engine?, batch_size?, limit?)))();
    let (bucket, query, engine, batch_size, limit) = v.conclude(parsed)?;
    let scope = narrowest_scope(&req.prefix, query.expr().required_key_prefix());
    Ok(FindPlan {
        bucket,
        scope,
        query,
        engine,
        batch_size,
        limit,
    })
}

/// The prefix to look under: the longer of the request's prefix and the one the query
/// requires when one extends the other; `None` when no key can have both.
fn narrowest_scope(prefix: &str, required: Option<String>) -> Option<String> {
    match required {
        None => Some(prefix.to_owned()),
        Some(r) if r.starts_with(prefix) => Some(r),
        Some(r) if prefix.starts_with(r.as_str()) => Some(prefix.to_owned()),
        Some(_) => None,
    }
}

/// Runs a find: validates the request, picks the engine (a GetMetaQueryStatus call for AUTO
/// and METAQUERY, whose failure is the call's status), then streams from a task.
pub async fn find(
    client: &Client,
    config: &FindConfig,
    allowed: KeyFilter,
    req: proto::FindObjectsRequest,
) -> Result<FindObjectsStream, Status> {
    let plan = plan(req)?;
    let (engine, note) = choose_engine(client, &plan).await?;
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let mut sink = Sink::new(tx, plan.batch_size, plan.limit, engine, note);
    let (client, config) = (client.clone(), config.clone());
    tokio::spawn(async move {
        let outcome = match (&plan.scope, engine) {
            // No key can be under both prefixes.
            (None, _) => Ok(()),
            (Some(scope), proto::FindEngine::Metaquery) => {
                metaquery::run(&client, &plan, scope, &allowed, &mut sink).await
            }
            (Some(scope), _) => {
                scan::run(&client, &config, &plan, scope, &allowed, &mut sink).await
            }
        };
        sink.close(outcome).await;
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

/// The engine that runs, and the note its progress carries.
async fn choose_engine(
    client: &Client,
    plan: &FindPlan,
) -> Result<(proto::FindEngine, &'static str), Status> {
    use proto::FindEngine as E;
    if plan.engine == E::Scan {
        return Ok((E::Scan, ""));
    }
    let status = client.get_meta_query_status(&plan.bucket).await;
    match (plan.engine, status) {
        (E::Metaquery, Ok(_)) => Ok((E::Metaquery, INDEX_NOTE)),
        (_, Ok(s)) if s.is_queryable() => Ok((E::Metaquery, INDEX_NOTE)),
        (_, Ok(_)) => Ok((E::Scan, SCAN_FALLBACK_NOTE)),
        // MetaQueryNotExist: the bucket has no index (a missing bucket is NoSuchBucket).
        (E::Metaquery, Err(e)) if is_missing_index(&e) => Err(gateway_error(
            Code::FailedPrecondition,
            "METAQUERY_NOT_ENABLED",
            format!(
                "bucket {} has no MetaQuery index: open one, or use engine SCAN or AUTO",
                plan.bucket.as_str()
            ),
        )),
        (_, Err(e)) if is_missing_index(&e) => Ok((E::Scan, SCAN_FALLBACK_NOTE)),
        (_, Err(e)) => Err(oss_status(e)),
    }
}

fn is_missing_index(e: &crate::oss::OssError) -> bool {
    e.kind == OssErrorKind::NotFound && e.code == "MetaQueryNotExist"
}

/// An object an engine found, before the query is checked against it.
struct Candidate {
    key: String,
    version_id: Option<String>,
    size: u64,
    etag: Option<String>,
    modified: Option<SystemTime>,
    tags: Vec<(String, String)>,
}

impl Candidate {
    /// The match, when the object satisfies the whole query. A tag set that breaks the
    /// gateway's tag rules (OSS holds what other clients wrote) cannot be evaluated: it does
    /// not match, and is logged.
    fn into_match(self, query: &Query) -> Option<proto::FoundObject> {
        let tags = match TagSet::from_pairs(self.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        {
            Ok(tags) => tags,
            Err(violations) => {
                tracing::debug!(key = %self.key, ?violations, "tag set not evaluated");
                return None;
            }
        };
        let facts = ObjectFacts {
            key: &self.key,
            size: self.size,
            modified: self
                .modified
                .map_or(OffsetDateTime::UNIX_EPOCH, OffsetDateTime::from),
        };
        if !query.matches(&tags, &facts) {
            return None;
        }
        Some(proto::FoundObject {
            key: self.key,
            version_id: self.version_id.unwrap_or_default(),
            size: i64::try_from(self.size).unwrap_or(i64::MAX),
            etag: self.etag.unwrap_or_default(),
            last_modified: self.modified.map(timestamp),
            tags: Some(tagging_to_proto(self.tags)),
        })
    }
}

/// Stops an engine with the status of an OSS failure.
fn failed(e: crate::oss::OssError) -> Halt {
    Halt::Failed(oss_status(e))
}

#[cfg(test)]
mod tests;
