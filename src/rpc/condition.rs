//! `if_tags`: a tag condition in the query language of [`crate::model::query`] (docs/query.md)
//! that must hold for the object's current tags (and, when it names them, its key, size and
//! last-modified time) for the call to go ahead. On tag writes it is checked while the
//! object's tag-write lock is held, so the check and the write are one compare-and-swap for
//! every writer that goes through ossgate.

use tonic::{Code, Status};

use super::{status::oss_status, validate::Validation};
use crate::{
    model::{
        TagSet,
        query::{ObjectFacts, Query},
    },
    oss::{Client, ObjectId},
};

/// `ErrorInfo.reason` of a false condition.
pub const TAG_CONDITION_FAILED: &str = "TAG_CONDITION_FAILED";

/// A parsed `if_tags`.
#[derive(Debug, Clone)]
pub struct TagCondition {
    query: Query,
}

impl Validation {
    /// The `if_tags` field `field`: empty (or blank) is no condition; a query that does not
    /// parse is a violation carrying the parser's `at <position>: <reason>`.
    pub fn if_tags(&mut self, field: &str, text: &str) -> Option<Option<TagCondition>> {
        if text.trim().is_empty() {
            return Some(None);
        }
        match Query::parse(text) {
            Ok(query) => Some(Some(TagCondition { query })),
            Err(err) => {
                self.violation(field, err.to_string());
                None
            }
        }
    }
}

impl TagCondition {
    /// The condition in canonical form (for logs and the audit trail).
    pub fn text(&self) -> String {
        self.query.to_string()
    }

    /// Checks the condition against `tags` (the object's current tags, as OSS returned
    /// them) and, when the query needs them, the object's attributes from one HEAD.
    /// FAILED_PRECONDITION with reason [`TAG_CONDITION_FAILED`] when it is false.
    pub async fn check(
        &self,
        client: &Client,
        object: &ObjectId,
        tags: &[(String, String)],
    ) -> Result<(), Status> {
        // Tags set outside ossgate may break ossgate's rules; the condition cannot then be
        // evaluated faithfully, so it does not hold.
        let Ok(tags) = TagSet::from_pairs(tags.iter().cloned()) else {
            return Err(self.failed("the object's current tags are not valid tags"));
        };
        let holds = match self.query.matches_tags(&tags) {
            Some(holds) => holds,
            None => {
                let head = client.head_object(object).await.map_err(oss_status)?;
                let modified = head
                    .last_modified
                    .map_or(time::OffsetDateTime::UNIX_EPOCH, Into::into);
                let facts = ObjectFacts {
                    key: object.key.as_str(),
                    size: head.size,
                    modified,
                };
                self.query.matches(&tags, &facts)
            }
        };
        if holds {
            Ok(())
        } else {
            Err(self.failed("the object's tags do not match"))
        }
    }

    /// Checks the condition against the object's current state: one GetObjectTagging (and a
    /// HEAD when the query needs attributes). For calls that read, delete or overwrite an
    /// object; a missing object answers NOT_FOUND.
    pub async fn check_current(&self, client: &Client, object: &ObjectId) -> Result<(), Status> {
        let current = client
            .get_object_tagging(object)
            .await
            .map_err(oss_status)?;
        self.check(client, object, &current.tags).await
    }

    /// For a write that overwrites `object`: [`Self::check_current`], where a missing object
    /// fails the condition (there is nothing whose tags could match) instead of NOT_FOUND.
    pub async fn check_overwritten(
        &self,
        client: &Client,
        object: &ObjectId,
    ) -> Result<(), Status> {
        match client.get_object_tagging(object).await {
            Ok(current) => self.check(client, object, &current.tags).await,
            Err(err) if err.code == "NoSuchKey" => {
                Err(self.failed("there is no object to overwrite, so"))
            }
            Err(err) => Err(oss_status(err)),
        }
    }

    fn failed(&self, why: &str) -> Status {
        super::status::gateway_error(
            Code::FailedPrecondition,
            TAG_CONDITION_FAILED,
            format!("if_tags is false: {why} {}", self.query),
        )
    }
}
