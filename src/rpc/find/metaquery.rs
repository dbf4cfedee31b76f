//! The metaquery engine: the query's pushdown (`Expr::pushdown`) as a DoMetaQuery condition
//! (scoped to the prefix with `Filename prefix`), paged through `NextToken` 100 files at a
//! time, each file checked against the whole query (what the index cannot express, and any
//! difference in its semantics, is settled here). Each page's matches are sent at once.

use super::sink::{Halt, Sink};
use super::{Candidate, FindPlan, KeyFilter, failed};
use crate::oss::{
    Client, DoMetaQueryInput, MetaQueryCondition, ops::metaquery::MAX_META_QUERY_RESULTS,
};

pub(super) async fn run(
    client: &Client,
    plan: &FindPlan,
    scope: &str,
    allowed: &KeyFilter,
    sink: &mut Sink,
) -> Result<(), Halt> {
    let mut input = DoMetaQueryInput {
        bucket: plan.bucket.clone(),
        query: condition(plan, scope),
        next_token: None,
        max_results: MAX_META_QUERY_RESULTS,
    };
    loop {
        let page = client.do_meta_query(&input).await.map_err(failed)?;
        for file in page.files {
            // The condition names the scope; the index's answer is checked anyway, and
            // nothing outside the caller's prefixes is returned.
            if !file.key.starts_with(scope) || !allowed(&file.key) {
                continue;
            }
            sink.scanned().await?;
            let candidate = Candidate {
                key: file.key,
                version_id: None,
                size: file.size,
                etag: file.etag,
                modified: file.modified,
                tags: file.tags,
            };
            if let Some(found) = candidate.into_match(&plan.query) {
                sink.matched(found).await?;
            }
        }
        sink.flush().await?;
        match page.next_token {
            Some(token) => input.next_token = Some(token),
            None => return Ok(()),
        }
    }
}

/// The index condition: what the query lets the index filter, under the scope.
fn condition(plan: &FindPlan, scope: &str) -> MetaQueryCondition {
    let pushed = plan
        .query
        .expr()
        .pushdown()
        .filter
        .map(|f| MetaQueryCondition::from_filter(&f));
    match (pushed, scope.is_empty()) {
        (Some(c), true) => c,
        (Some(c), false) => c.and(MetaQueryCondition::key_prefix(scope)),
        (None, false) => MetaQueryCondition::key_prefix(scope),
        (None, true) => MetaQueryCondition::every_object(),
    }
}
