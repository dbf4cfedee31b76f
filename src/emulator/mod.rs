//! An OSS-compatible HTTP server for tests and local development.
//!
//! The official SDKs (alibabacloud-oss-v2, oss2, ali-oss) run against it with signature
//! checking on; see `tests/interop`.
//!
//! * **Operations:** PutObject (Content-Length or chunked; Content-MD5 checked; nothing is
//!   stored unless the whole body arrived), GetObject (Range, versionId, `response-*`,
//!   If-* conditions), HeadObject, GetObjectMeta (`HEAD ?objectMeta`), DeleteObject
//!   (delete markers and versionId in versioned buckets), Put/Get/DeleteObjectTagging
//!   (versionId), PutSymlink/GetSymlink (GET/HEAD on a link resolve the target). PutObject and
//!   PutSymlink take `x-oss-tagging`, `x-oss-meta-*`, `x-oss-forbid-overwrite`,
//!   `x-oss-storage-class`, `x-oss-object-acl`. ListObjects (V1 and V2) and
//!   ListObjectVersions (`encoding-type=url`, delimiters, markers), DeleteMultipleObjects,
//!   Get/PutObjectAcl, RestoreObject (archive objects are readable only once restored;
//!   [`EmulatorHandle::set_restore_delay`]), the multipart operations and their listings.
//!   Everything else answers NotImplemented (501) or MethodNotAllowed (405).
//! * **MetaQuery** ([`store::meta_query`]): OpenMetaQuery, GetMetaQueryStatus, DoMetaQuery
//!   (mode `basic`) and CloseMetaQuery; the index is updated with every write, never lags.
//! * **Errors:** OSS-shaped XML (`Code`, `Message`, `RequestId`, `HostId`, `EC` where one is
//!   documented); HEAD errors have no body but `x-oss-err` (base64 XML) and `x-oss-ec`.
//! * **Authentication** ([`auth`]): V1/V4 header signatures and presigned URLs, verified
//!   with [`crate::oss::sign`]; STS tokens; 15-minute clock skew.
//! * **Addressing** ([`route`]): path style, virtual-host style, ali-oss `sldEnable`.
//! * **Operations** ([`ops`]): one file per group; [`faults`] injects failures for tests.
//! * **Storage** ([`store`]): in memory, or durable under a directory (atomic writes).
//! * **Slow clients** ([`serve`]): request headers must arrive within
//!   [`HEADER_READ_TIMEOUT`] and bodies at [`BODY_MIN_BYTES_PER_SEC`] after
//!   [`BODY_GRACE`]; otherwise the connection is closed, so slow-header and trickling-body
//!   clients cannot hold connections forever.

pub mod auth;
mod cli;
pub mod error;
pub mod faults;
mod ops;
pub mod route;
mod serve;
pub mod store;
pub mod sts;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use cli::{EmulatorArgs, run_cli};
pub use error::ApiError;
pub use faults::{Fault, FaultKind, FaultOp, Faults};
pub use serve::{BODY_GRACE, BODY_MIN_BYTES_PER_SEC, HEADER_READ_TIMEOUT};

use crate::oss::credentials::Credentials;

/// Locks a mutex of the emulator's state. A request that panicked while holding it leaves
/// data that is still consistent (every update is applied whole), so the poison is ignored
/// rather than failing every later request.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How long [`EmulatorHandle::shutdown`] waits for in-flight requests.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A bucket created at start: `name` or `name:versioned`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSpec {
    /// Bucket name.
    pub name: String,
    /// Whether versioning is on.
    pub versioned: bool,
}

impl FromStr for BucketSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, versioned) = match s.split_once(':') {
            Some((name, "versioned")) => (name, true),
            Some((_, other)) => {
                return Err(format!(
                    "bucket spec {s:?}: unknown option {other:?} (only \"versioned\")"
                ));
            }
            None => (s, false),
        };
        crate::model::BucketName::parse(name).map_err(|v| format!("bucket {name:?}: {v}"))?;
        Ok(Self {
            name: name.to_owned(),
            versioned,
        })
    }
}

/// How to run an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Where to listen (tests use `127.0.0.1:0`).
    pub listen: SocketAddr,
    /// Directory for durable storage; `None` = in memory.
    pub data_dir: Option<PathBuf>,
    /// Accepted keys; a key with a `security_token` requires that token on every request.
    pub credentials: Vec<Credentials>,
    /// Buckets created at start if missing.
    pub buckets: Vec<BucketSpec>,
    /// Region for V4 signatures (`cn-hangzhou`).
    pub region: String,
    /// Whether to check signatures (and reject anonymous requests).
    pub verify_signatures: bool,
}

impl EmulatorConfig {
    /// An in-memory emulator on `127.0.0.1:0` with one key pair, region `cn-hangzhou`,
    /// signature checking on, and no buckets.
    pub fn new(access_key_id: &str, access_key_secret: &str) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: None,
            credentials: vec![Credentials {
                access_key_id: access_key_id.to_owned(),
                access_key_secret: access_key_secret.to_owned(),
                security_token: None,
            }],
            buckets: Vec::new(),
            region: "cn-hangzhou".to_owned(),
            verify_signatures: true,
        }
    }
}

/// Shared state of a running emulator.
pub(crate) struct State {
    pub(crate) store: Arc<store::Store>,
    pub(crate) credentials: Vec<Credentials>,
    pub(crate) region: String,
    pub(crate) verify_signatures: bool,
    pub(crate) requests: AtomicU64,
    /// The STS endpoint for tests ([`sts`]).
    pub(crate) sts: sts::Sts,
    /// The fault injector and its counters.
    pub(crate) faults: faults::Faults,
    /// Open multipart uploads.
    pub(crate) uploads: ops::multipart::Uploads,
    /// How long a RestoreObject takes, in milliseconds (see [`ops`]'s restore).
    restore_delay_ms: AtomicU64,
}

impl State {
    /// How long a RestoreObject takes before the object is readable.
    pub(crate) fn restore_delay(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.restore_delay_ms.load(Ordering::Relaxed))
    }
}

/// A running emulator. Dropping it without [`shutdown`](Self::shutdown) stops it too.
pub struct EmulatorHandle {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl EmulatorHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many HTTP requests reached the emulator.
    pub fn request_count(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Sets how long a RestoreObject of an archive object runs before the object can be
    /// read (1 s by default; OSS takes minutes to hours).
    pub fn set_restore_delay(&self, delay: std::time::Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.state.restore_delay_ms.store(ms, Ordering::Relaxed);
    }

    /// The STS endpoint (off until configured; see [`sts`]).
    pub fn sts(&self) -> &sts::Sts {
        &self.state.sts
    }

    /// Stops accepting, lets in-flight requests finish (at most 10 s, then they are cut),
    /// and waits for the server to end.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    /// [`shutdown`](Self::shutdown) through a reference: the handle stays, serving nothing
    /// (tests stop a backend mid-call, then start another on the same address and data).
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts an emulator: opens the store, creates the configured buckets, binds, serves.
pub async fn start(config: EmulatorConfig) -> anyhow::Result<EmulatorHandle> {
    use anyhow::Context as _;
    if config.verify_signatures && config.credentials.is_empty() {
        anyhow::bail!("the emulator needs at least one access key when signatures are checked");
    }
    let store = match &config.data_dir {
        Some(dir) => {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || store::Store::open(&dir))
                .await
                .context("store loader panicked")??
        }
        None => store::Store::in_memory(),
    };
    for bucket in &config.buckets {
        store
            .ensure_bucket(&bucket.name, bucket.versioned)
            .with_context(|| format!("cannot create bucket {}", bucket.name))?;
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let state = Arc::new(State {
        store: Arc::new(store),
        credentials: config.credentials,
        region: config.region,
        verify_signatures: config.verify_signatures,
        requests: AtomicU64::new(0),
        sts: sts::Sts::default(),
        faults: faults::Faults::default(),
        uploads: ops::multipart::Uploads::open(config.data_dir.as_deref())
            .context("cannot open the multipart upload store")?,
        restore_delay_ms: AtomicU64::new(ops::DEFAULT_RESTORE_DELAY.as_millis() as u64),
    });
    let app = axum::Router::new()
        .fallback(ops::handle)
        .with_state(state.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve::serve(listener, app, async move {
        let _ = stop_rx.await;
    }));
    tracing::info!("OSS emulator listening on http://{addr}");
    Ok(EmulatorHandle {
        addr,
        state,
        stop: Some(stop_tx),
        task: Some(task),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_spec() {
        assert_eq!(
            "a-b".parse::<BucketSpec>().unwrap(),
            BucketSpec {
                name: "a-b".into(),
                versioned: false
            }
        );
        assert!("abc:versioned".parse::<BucketSpec>().unwrap().versioned);
        assert!("abc:other".parse::<BucketSpec>().is_err());
        assert!("A".parse::<BucketSpec>().is_err());
    }
}
