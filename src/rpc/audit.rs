//! Tag audit trail: one structured event (target [`TARGET`]) per call that changes an
//! object's tags, with the principal, the object, the tags after (and before, when known),
//! the OSS request id of a failure and the outcome.

use std::collections::BTreeMap;

use tonic::{Request, Response, Status};
use tonic_types::StatusExt;

use super::auth::Access;

/// The tracing target of audit events.
pub const TARGET: &str = "ossgate::audit";

/// One tag mutation being audited; [`TagAudit::finish`] emits the event.
#[derive(Debug, Clone)]
pub struct TagAudit {
    method: &'static str,
    principal: String,
    bucket: String,
    key: String,
    /// JSON object of the tags before, when known.
    tags_before: Option<String>,
    /// JSON object of the tags the call sets.
    tags_after: String,
}

/// Tags as a JSON object (sorted keys).
pub fn tags_json<'a>(tags: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let map: BTreeMap<&str, &str> = tags
        .into_iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    serde_json::to_string(&map).unwrap_or_default()
}

impl TagAudit {
    /// Starts an audit record for `request`'s caller (`-` when auth is not configured).
    pub fn new<T>(
        method: &'static str,
        request: &Request<T>,
        bucket: &str,
        key: &str,
        tags_after: String,
    ) -> Self {
        let principal = request
            .extensions()
            .get::<Access>()
            .and_then(Access::caller)
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        Self {
            method,
            principal,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            tags_before: None,
            tags_after,
        }
    }

    /// Records the tags the object had before the call.
    pub fn with_tags_before(mut self, tags_before: Option<String>) -> Self {
        self.tags_before = tags_before;
        self
    }

    /// Emits the event for the call's result; `version` picks the version id of a success.
    pub fn finish<T>(self, result: &Result<Response<T>, Status>, version: impl Fn(&T) -> &str) {
        let (outcome, code, version_id, request_id) = match result {
            Ok(response) => ("ok", "OK".to_owned(), version(response.get_ref()), None),
            Err(status) => (
                "failed",
                format!("{:?}", status.code()),
                "",
                status
                    .get_details_error_info()
                    .and_then(|info| info.metadata.get("request_id").cloned()),
            ),
        };
        tracing::info!(
            target: TARGET,
            method = self.method,
            principal = %self.principal,
            bucket = %self.bucket,
            key = %self.key,
            version_id,
            tags_before = self.tags_before.as_deref().unwrap_or("unknown"),
            tags_after = %self.tags_after,
            oss_request_id = request_id.as_deref().unwrap_or(""),
            outcome,
            code = %code,
            "tag mutation"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io,
        sync::{Arc, Mutex},
    };

    use super::*;
    use crate::rpc::auth::{Policy, Principal};

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn captured(run: impl FnOnce()) -> Vec<serde_json::Value> {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, run);
        let bytes = capture.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn events_carry_principal_object_tags_and_outcome() {
        let mut request = Request::new(());
        request.extensions_mut().insert(Access::principal(
            Principal::new("alice"),
            Arc::new(Policy::default()),
        ));
        let tags: BTreeMap<String, String> = [("team".to_string(), "storage".to_string())].into();
        let events = captured(|| {
            TagAudit::new(
                "PutObjectTagging",
                &request,
                "b1",
                "logs/a",
                tags_json(&tags),
            )
            .finish(&Ok(Response::new("v-1".to_string())), |v| v.as_str());
            let mut failed = Status::not_found("gone");
            let details = tonic_types::ErrorDetails::with_error_info(
                "NoSuchKey",
                "oss.aliyuncs.com",
                [("request_id".to_string(), "REQ-9".to_string())]
                    .into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            );
            failed = Status::with_error_details(failed.code(), failed.message(), details);
            TagAudit::new(
                "DeleteObjectTagging",
                &Request::new(()),
                "b1",
                "k",
                "{}".into(),
            )
            .with_tags_before(Some("{\"a\":\"1\"}".into()))
            .finish::<String>(&Err(failed), |v| v.as_str());
        });
        assert_eq!(events.len(), 2, "{events:?}");
        let ok = &events[0];
        assert_eq!(ok["target"], TARGET);
        let f = &ok["fields"];
        assert_eq!(f["message"], "tag mutation");
        assert_eq!(f["principal"], "alice");
        assert_eq!(f["bucket"], "b1");
        assert_eq!(f["key"], "logs/a");
        assert_eq!(f["version_id"], "v-1");
        assert_eq!(f["tags_after"], "{\"team\":\"storage\"}");
        assert_eq!(f["tags_before"], "unknown");
        assert_eq!(f["outcome"], "ok");
        let f = &events[1]["fields"];
        assert_eq!(f["principal"], "-");
        assert_eq!(f["outcome"], "failed");
        assert_eq!(f["code"], "NotFound");
        assert_eq!(f["oss_request_id"], "REQ-9");
        assert_eq!(f["tags_before"], "{\"a\":\"1\"}");
    }
}
