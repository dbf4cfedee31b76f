//! Tag audit trail: one structured event (target [`TARGET`], message `tag mutation`) per
//! call that changes an object's tags: PutObjectTagging, DeleteObjectTagging, WriteObject
//! with tags (single, multipart, and the finishing stream of a resumable write whose
//! StartResumableWrite had tags), AppendObject's first append with tags, PutSymlink with
//! tags, CopyObject with tagging REPLACE and UpdateObjectMetadata with tagging.
//!
//! Fields: `method`, `principal` (`-` without auth), `bucket`, `key`, `version_id` (of a
//! success), `tags_before` and `tags_before_source`, `tags_after` (JSON objects), the
//! `oss_request_id` of the OSS request that made the change (or that failed), `outcome`
//! (`ok`/`failed`) and `code` (the gRPC code). Refused calls (PERMISSION_DENIED,
//! INVALID_ARGUMENT) are logged too, as `failed`.
//!
//! `tags_before` rule:
//! * A call that creates the object had none: `{}` (`new_object`). That is the append at
//!   position 0, and a write, symlink or copy with `forbid_overwrite` that succeeded in an
//!   unversioned bucket. Such calls never read the tags first. (OSS ignores
//!   forbid-overwrite in versioned buckets; there a forbid-overwrite call leaves them
//!   `unknown`, `not_read`.)
//! * Any other audited call, with `[audit] read_tags_before = true`, reads them with one
//!   GetObjectTagging just before the change (`read`; `{}` when there was no object). That
//!   costs one OSS request per audited mutation (PutObjectTagging then makes two), and it is
//!   racy: a concurrent writer may change the tags between the read and the change. A failed
//!   read does not fail the call (`read_failed`, `unknown`).
//! * With the setting off (the default) they are `unknown` (`not_read`): the event records
//!   the request, as object-level audit logs usually do, and the gateway adds no request.
//! * Calls that read the tags under the object's tag-write lock (PatchObjectTagging, and
//!   PutObjectTagging and DeleteObjectTagging with `if_tags` or `read_tags_before`) record
//!   them as `read_under_lock`: exact for writers that go through ossgate.
//!
//! PatchObjectTagging and conditional calls add `if_tags` (the condition in canonical form,
//! empty when none) and `fencing_token` (of the Redis lock, `0` in process); a patch's
//! `tags_after` is the resulting tag set.

use std::collections::BTreeMap;

use tonic::{Request, Response, Status};
use tonic_types::StatusExt;

use super::auth::Access;
use crate::{
    config::AuditSettings,
    model::clip,
    oss::{Client, ObjectId},
};

/// The tracing target of audit events.
pub const TARGET: &str = "ossgate::audit";

/// Longest bucket, key or tag set an event records, in bytes: more than any valid value
/// needs (a key is at most 1023 bytes, ten tags at most about 16 KiB of JSON).
const MAX_LOGGED_BYTES: usize = 32 * 1024;

/// What the event says about the tags before the call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Before {
    /// Not read (`[audit] read_tags_before` is off, or the call was refused first).
    NotRead,
    /// Read with one GetObjectTagging just before the mutation (JSON object); `{}` when
    /// there was no object.
    Read(String),
    /// The read failed; the mutation went on.
    ReadFailed,
    /// The call created the object (forbid-overwrite write, first append): no tags before.
    NewObject,
    /// Read while the object's tag-write lock was held (JSON object): exact for every
    /// writer that goes through ossgate.
    ReadUnderLock(String),
}

impl Before {
    /// `tags_before` and `tags_before_source` of the event.
    fn fields(&self) -> (&str, &'static str) {
        match self {
            Self::NotRead => ("unknown", "not_read"),
            Self::Read(json) => (json.as_str(), "read"),
            Self::ReadFailed => ("unknown", "read_failed"),
            Self::NewObject => ("{}", "new_object"),
            Self::ReadUnderLock(json) => (json.as_str(), "read_under_lock"),
        }
    }
}

/// One tag mutation being audited.
#[derive(Debug, Clone)]
struct TagAudit {
    method: &'static str,
    bucket: String,
    key: String,
    before: Before,
    /// JSON object of the tags the call sets.
    tags_after: String,
    /// `x-oss-request-id` of the OSS request that made the change.
    request_id: Option<String>,
    /// The `if_tags` condition (canonical form), empty when none.
    condition: String,
    /// The Redis lock's fencing token; 0 in process or without a lock.
    fencing_token: u64,
}

/// Tags as a JSON object (sorted keys).
pub fn tags_json<K: AsRef<str>, V: AsRef<str>>(tags: impl IntoIterator<Item = (K, V)>) -> String {
    let map: BTreeMap<String, String> = tags
        .into_iter()
        .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
        .collect();
    serde_json::to_string(&map).unwrap_or_default()
}

/// The audit trail of one call: the caller, and the event of its tag mutation once the call
/// knows it makes one ([`Trail::begin`]). The handler ends it with [`Trail::finish`]; a
/// streamed call may end it earlier, where the mutation happens (AppendObject's first
/// append).
#[derive(Debug)]
pub struct Trail {
    principal: String,
    read_tags_before: bool,
    event: Option<TagAudit>,
}

impl Trail {
    /// A trail for `access`'s caller (`-` when auth is not configured or unknown).
    pub fn new(access: Option<&Access>, settings: &AuditSettings) -> Self {
        let principal = access
            .and_then(Access::caller)
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        Self {
            principal,
            read_tags_before: settings.read_tags_before,
            event: None,
        }
    }

    /// A trail for the caller of `request`.
    pub fn of<T>(request: &Request<T>, settings: &AuditSettings) -> Self {
        Self::new(request.extensions().get::<Access>(), settings)
    }

    /// The call changes the tags of `bucket`/`key` to `tags_after` (a JSON object, see
    /// [`tags_json`]).
    ///
    /// Refused calls are audited too, with names and tags as the caller sent them: each is
    /// clipped to [`MAX_LOGGED_BYTES`] so a huge name cannot blow up the log.
    pub fn begin(&mut self, method: &'static str, bucket: &str, key: &str, tags_after: String) {
        self.event = Some(TagAudit {
            method,
            bucket: clip(bucket, MAX_LOGGED_BYTES).into_owned(),
            key: clip(key, MAX_LOGGED_BYTES).into_owned(),
            before: Before::NotRead,
            tags_after: clip(&tags_after, MAX_LOGGED_BYTES).into_owned(),
            request_id: None,
            condition: String::new(),
            fencing_token: 0,
        });
    }

    /// Whether the open event wants the tags before (`[audit] read_tags_before`).
    pub fn wants_tags_before(&self) -> bool {
        self.read_tags_before && self.event.is_some()
    }

    /// The tags before, read while the object's lock was held.
    pub fn read_under_lock(&mut self, tags: &[(String, String)]) {
        if let Some(event) = self.event.as_mut() {
            event.before = Before::ReadUnderLock(tags_json(tags.iter().map(|(k, v)| (k, v))));
        }
    }

    /// The tags the call left (a patch's result), replacing those given at [`Trail::begin`].
    pub fn tags_after(&mut self, tags: &[(String, String)]) {
        if let Some(event) = self.event.as_mut() {
            event.tags_after = tags_json(tags.iter().map(|(k, v)| (k, v)));
        }
    }

    /// The call's `if_tags` condition, in canonical form.
    pub fn condition(&mut self, text: String) {
        if let Some(event) = self.event.as_mut() {
            event.condition = clip(&text, MAX_LOGGED_BYTES).into_owned();
        }
    }

    /// The fencing token of the lock the call held (`None` in process).
    pub fn fencing_token(&mut self, token: Option<u64>) {
        if let Some(event) = self.event.as_mut() {
            event.fencing_token = token.unwrap_or(0);
        }
    }

    /// Whether an event is open.
    pub fn is_open(&self) -> bool {
        self.event.is_some()
    }

    /// When an event is open and `[audit] read_tags_before` is on: reads the current tags of
    /// `object` (one GetObjectTagging) as the tags before. No object is `{}`; a failed read
    /// is logged and leaves them unknown; nothing fails the call.
    pub async fn read_before(&mut self, client: &Client, object: &ObjectId) {
        if !self.read_tags_before {
            return;
        }
        let Some(event) = self.event.as_mut() else {
            return;
        };
        event.before = match client.get_object_tagging(object).await {
            Ok(out) => Before::Read(tags_json(out.tags)),
            Err(err) if err.code == "NoSuchKey" => Before::Read("{}".to_owned()),
            Err(err) => {
                tracing::warn!(
                    bucket = %object.bucket,
                    key = %object.key,
                    error = %err,
                    "could not read the tags before a tag mutation for the audit trail"
                );
                Before::ReadFailed
            }
        };
    }

    /// The call created the object, so it had no tags before: an append at position 0, or a
    /// forbid-overwrite write that succeeded without a version id. (OSS ignores
    /// forbid-overwrite in versioned buckets, whose answers carry a version id: there it
    /// proves nothing, and the tags before stay unknown.)
    pub fn created_object(&mut self) {
        if let Some(event) = self.event.as_mut() {
            event.before = Before::NewObject;
        }
    }

    /// The request id of the OSS request that changed the tags.
    pub fn request_id(&mut self, request_id: Option<&str>) {
        if let Some(event) = self.event.as_mut() {
            event.request_id = request_id.map(str::to_owned);
        }
    }

    /// Drops the open event: the call ended without changing anything.
    pub fn discard(&mut self) {
        self.event = None;
    }

    /// Emits the open event (if any) for the call's outcome; `version` picks the version id
    /// of a success. The OSS request id is the recorded one, or for a failure the one in
    /// the status's ErrorInfo.
    pub fn finish<T>(&mut self, result: Result<&T, &Status>, version: impl FnOnce(&T) -> &str) {
        let Some(event) = self.event.take() else {
            return;
        };
        let (outcome, code, version_id, request_id) = match result {
            Ok(response) => ("ok", "OK".to_owned(), version(response), event.request_id),
            Err(status) => (
                "failed",
                format!("{:?}", status.code()),
                "",
                status
                    .get_details_error_info()
                    .and_then(|info| info.metadata.get("request_id").cloned())
                    .or(event.request_id),
            ),
        };
        let (tags_before, tags_before_source) = event.before.fields();
        tracing::info!(
            target: TARGET,
            method = event.method,
            principal = %self.principal,
            bucket = %event.bucket,
            key = %event.key,
            version_id,
            tags_before,
            tags_before_source,
            tags_after = %event.tags_after,
            oss_request_id = request_id.as_deref().unwrap_or(""),
            if_tags = %event.condition,
            fencing_token = event.fencing_token,
            outcome,
            code = %code,
            "tag mutation"
        );
    }

    /// [`Trail::finish`] for a handler's result.
    pub fn finish_call<T>(
        &mut self,
        result: &Result<Response<T>, Status>,
        version: impl FnOnce(&T) -> &str,
    ) {
        self.finish(result.as_ref().map(Response::get_ref), version);
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::{Read, Seek},
        sync::Arc,
    };

    use super::*;
    use crate::rpc::auth::{Policy, Principal};

    /// The JSON events `run` logs (into an unnamed temporary file, which tracing-subscriber
    /// writes to as it is).
    fn captured(run: impl FnOnce()) -> Vec<serde_json::Value> {
        let log = Arc::new(tempfile::tempfile().unwrap());
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(log.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, run);
        let mut text = String::new();
        let mut file = &*log;
        file.rewind().unwrap();
        file.read_to_string(&mut text).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn events_carry_principal_object_tags_request_id_and_outcome() {
        let mut request = Request::new(());
        request.extensions_mut().insert(Access::principal(
            Principal::new("alice"),
            Arc::new(Policy::default()),
        ));
        let tags: BTreeMap<String, String> = [("team".to_string(), "storage".to_string())].into();
        let settings = AuditSettings::default();
        let events = captured(|| {
            let mut trail = Trail::of(&request, &settings);
            trail.begin("PutObjectTagging", "b1", "logs/a", tags_json(&tags));
            trail.request_id(Some("REQ-OK"));
            trail.finish_call(&Ok(Response::new("v-1".to_string())), |v| v.as_str());
            // Finished: a second finish emits nothing.
            trail.finish_call(&Ok(Response::new("v-2".to_string())), |v| v.as_str());

            let details = tonic_types::ErrorDetails::with_error_info(
                "NoSuchKey",
                "oss.aliyuncs.com",
                [("request_id".to_string(), "REQ-9".to_string())]
                    .into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            );
            let failed = Status::with_error_details(tonic::Code::NotFound, "gone", details);
            let mut trail = Trail::of(&Request::new(()), &settings);
            trail.begin("WriteObject", "b1", "k", "{}".into());
            trail.created_object();
            trail.finish::<String>(Err(&failed), |v| v.as_str());

            // No event begun: nothing is logged; a discarded one neither.
            let mut trail = Trail::of(&request, &settings);
            trail.finish::<String>(Err(&failed), |v| v.as_str());
            trail.begin("AppendObject", "b1", "k", "{}".into());
            assert!(trail.is_open());
            trail.discard();
            trail.finish::<String>(Ok(&"v".to_string()), |v| v.as_str());
        });
        assert_eq!(events.len(), 2, "{events:?}");
        let ok = &events[0];
        assert_eq!(ok["target"], TARGET);
        let f = &ok["fields"];
        assert_eq!(f["message"], "tag mutation");
        assert_eq!(f["method"], "PutObjectTagging");
        assert_eq!(f["principal"], "alice");
        assert_eq!(f["bucket"], "b1");
        assert_eq!(f["key"], "logs/a");
        assert_eq!(f["version_id"], "v-1");
        assert_eq!(f["tags_after"], "{\"team\":\"storage\"}");
        assert_eq!(f["tags_before"], "unknown");
        assert_eq!(f["tags_before_source"], "not_read");
        assert_eq!(f["oss_request_id"], "REQ-OK");
        assert_eq!(f["outcome"], "ok");
        let f = &events[1]["fields"];
        assert_eq!(f["principal"], "-");
        assert_eq!(f["outcome"], "failed");
        assert_eq!(f["code"], "NotFound");
        assert_eq!(f["oss_request_id"], "REQ-9");
        assert_eq!(f["tags_before"], "{}");
        assert_eq!(f["tags_before_source"], "new_object");
    }
}
