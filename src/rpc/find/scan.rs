//! The scan engine: ListObjectsV2 under the scope (1000 keys a page, the next page listed
//! while the current one is read) and one GetObjectTagging per object, `parallelism` at a
//! time, every OSS request waiting for the shared rate limiter first. Retries happen inside
//! the client (its retry budget). Matches go to the sink as they are found, in completion
//! order.
//!
//! Memory: one page waits in the channel, one is being consumed, `parallelism` tag reads are in
//! flight; when the reader is slow the sink's send waits, nothing is polled, and the lister
//! waits on its full channel.

use std::sync::Arc;

use futures_util::{StreamExt, stream};
use governor::DefaultDirectRateLimiter;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::sink::{Halt, Sink};
use super::{Candidate, FindConfig, FindPlan, KeyFilter, failed};
use crate::model::{BucketName, ObjectKey};
use crate::oss::{
    Client, ListObjectsV2Input, ListScope, ListedObject, ObjectId, OssError, OssErrorKind,
};
use crate::proto;

/// Keys per ListObjectsV2 page (OSS's largest).
const LIST_PAGE: u32 = 1000;

pub(super) async fn run(
    client: &Client,
    config: &FindConfig,
    plan: &FindPlan,
    scope: &str,
    allowed: &KeyFilter,
    sink: &mut Sink,
) -> Result<(), Halt> {
    let (pages_tx, pages_rx) = mpsc::channel(1);
    let lister = tokio::spawn(list_pages(
        client.clone(),
        config.limiter.clone(),
        plan.bucket.clone(),
        scope.to_owned(),
        pages_tx,
    ));
    // Stops the lister when the find ends early (limit, failure, reader gone).
    let _stop_lister = AbortOnDrop(lister);
    let objects = ReceiverStream::new(pages_rx).flat_map(|page| {
        let items: Vec<Result<ListedObject, OssError>> = match page {
            Ok(objects) => objects.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
        stream::iter(items)
    });
    let mut looked_at = objects
        .map(|listed| look_at(client, &config.limiter, plan, allowed, listed))
        .buffer_unordered(config.parallelism);
    while let Some(outcome) = looked_at.next().await {
        match outcome.map_err(failed)? {
            Outcome::Hidden => {}
            Outcome::Checked(found) => {
                sink.scanned().await?;
                if let Some(found) = found {
                    sink.matched(found).await?;
                }
            }
        }
    }
    Ok(())
}

/// What became of one listed object.
enum Outcome {
    /// Outside the caller's prefixes: neither read nor counted.
    Hidden,
    /// Checked against the query; the match, if it is one.
    Checked(Option<proto::FoundObject>),
}

/// Reads one listed object's tags and checks it against the query.
async fn look_at(
    client: &Client,
    limiter: &DefaultDirectRateLimiter,
    plan: &FindPlan,
    allowed: &KeyFilter,
    listed: Result<ListedObject, OssError>,
) -> Result<Outcome, OssError> {
    let listed = listed?;
    if !allowed(&listed.key) {
        return Ok(Outcome::Hidden);
    }
    // A key the gateway's rules refuse (written by another client) cannot be addressed.
    let Ok(key) = ObjectKey::parse(&listed.key) else {
        tracing::debug!(key = %listed.key, "listed key not addressable; skipped");
        return Ok(Outcome::Checked(None));
    };
    limiter.until_ready().await;
    let object = ObjectId {
        bucket: plan.bucket.clone(),
        key,
        version_id: None,
    };
    let tagging = match client.get_object_tagging(&object).await {
        Ok(tagging) => tagging,
        // Deleted since it was listed: not a match.
        Err(e) if e.kind == OssErrorKind::NotFound => return Ok(Outcome::Checked(None)),
        Err(e) => return Err(e),
    };
    let candidate = Candidate {
        key: listed.key,
        version_id: tagging.version_id.map(|v| v.as_str().to_owned()),
        size: listed.size,
        etag: listed.etag,
        modified: listed.last_modified,
        tags: tagging.tags,
    };
    Ok(Outcome::Checked(candidate.into_match(&plan.query)))
}

/// Lists every page under `scope` into `pages`, stopping at the first failure (sent on) or
/// when nobody reads any more.
async fn list_pages(
    client: Client,
    limiter: Arc<DefaultDirectRateLimiter>,
    bucket: BucketName,
    scope: String,
    pages: mpsc::Sender<Result<Vec<ListedObject>, OssError>>,
) {
    let mut input = ListObjectsV2Input {
        scope: ListScope {
            prefix: (!scope.is_empty()).then_some(scope),
            max_keys: Some(LIST_PAGE),
            ..ListScope::new(bucket)
        },
        continuation_token: None,
        start_after: None,
    };
    loop {
        limiter.until_ready().await;
        let page = match client.list_objects_v2(&input).await {
            Ok(page) => page,
            Err(e) => {
                let _ = pages.send(Err(e)).await;
                return;
            }
        };
        if pages.send(Ok(page.objects)).await.is_err() {
            return;
        }
        match page.next_continuation_token {
            Some(token) if page.is_truncated => input.continuation_token = Some(token),
            _ => return,
        }
    }
}

/// Aborts the task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
