//! Captures the tag audit trail in end-to-end tests: audit events (target `ossgate::audit`),
//! multipart-upload outcomes (target `ossgate::oss::upload`) and the emulator's request log
//! (target `ossgate::emulator`, debug, with each request's `x-oss-request-id`), as JSON lines
//! from a subscriber on the test's thread. A `#[tokio::test]` runs on a current-thread
//! runtime, so the gateway's and the emulator's tasks log on that thread, and an event's
//! `oss_request_id` can be checked against the OSS request that made the change (see
//! [`keep_callsites_enabled`] for why this holds while other tests run in parallel without a
//! subscriber).

use std::io;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tracing_subscriber::{Layer as _, filter::Targets, layer::SubscriberExt};

/// The captured log lines.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The events captured: audit events, the emulator's request log, and what became of
/// multipart uploads (`ossgate::oss::upload`: aborted, or left behind).
pub fn captured_targets() -> Targets {
    Targets::new()
        .with_target("ossgate::audit", tracing::Level::INFO)
        .with_target("ossgate::emulator", tracing::Level::DEBUG)
        .with_target("ossgate::oss::upload", tracing::Level::INFO)
}

/// tracing caches whether a callsite is enabled when it is first hit, and while at most
/// one dispatcher is registered it asks only the hitting thread's own subscriber: a test
/// thread without one would then disable the callsite for every thread. Two dispatchers
/// that live as long as the process (and are nobody's default) keep the captured targets'
/// callsites enabled whichever thread hits them first.
fn keep_callsites_enabled() {
    static KEEP: std::sync::OnceLock<[tracing::Dispatch; 2]> = std::sync::OnceLock::new();
    KEEP.get_or_init(|| {
        let dispatch = || {
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(io::sink)
                .with_filter(captured_targets());
            tracing::Dispatch::new(tracing_subscriber::registry().with(layer))
        };
        [dispatch(), dispatch()]
    });
}

impl Capture {
    /// Starts capturing this thread's audit events and the emulator's request log.
    pub fn start() -> (Self, tracing::subscriber::DefaultGuard) {
        keep_callsites_enabled();
        let capture = Self::default();
        let writer = capture.clone();
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .with_writer(move || writer.clone())
            .with_filter(captured_targets());
        let subscriber = tracing_subscriber::registry().with(layer);
        (capture, tracing::subscriber::set_default(subscriber))
    }

    /// Everything captured, as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    pub fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The audit events so far (their fields), oldest first.
    pub fn audit(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["target"] == "ossgate::audit")
            .map(|l| l["fields"].clone())
            .collect()
    }

    /// Request ids of the emulator's requests with this method on this object.
    pub fn oss_requests(&self, method: &str, bucket: &str, key: &str) -> Vec<String> {
        let path = format!("/{bucket}/{key}");
        self.lines()
            .into_iter()
            .filter(|l| {
                l["fields"]["message"] == "request"
                    && l["fields"]["method"] == method
                    && l["fields"]["path"] == path.as_str()
            })
            .map(|l| l["fields"]["request_id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The multipart-upload events so far (level and fields), oldest first.
    pub fn upload_events(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["target"] == "ossgate::oss::upload")
            .map(|l| {
                let mut fields = l["fields"].clone();
                fields["level"] = l["level"].clone();
                fields
            })
            .collect()
    }

    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// The single audit event captured since the last clear.
pub fn only_event(capture: &Capture) -> Value {
    let events = capture.audit();
    assert_eq!(events.len(), 1, "{events:#?} in {:#?}", capture.lines());
    events.into_iter().next().unwrap()
}
