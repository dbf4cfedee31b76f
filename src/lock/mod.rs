//! The per-object tag-write lock: every call that changes an object's tags through ossgate
//! (PutObjectTagging, DeleteObjectTagging, PatchObjectTagging, writes and copies that set
//! tags, UpdateObjectMetadata with tagging) holds it for that object while it reads, checks
//! and writes, so a read → merge → write (a patch, an `if_tags` condition) is atomic with
//! respect to every other tag write through ossgate.
//!
//! Two implementations of [`TagWriteLock`]:
//! * [`InProcessLocks`]: a sharded map of async mutexes, one per object, removed when idle.
//!   Atomic within one replica only.
//! * [`RedisLocks`]: a lease lock in Redis shared by every replica (`SET NX PX`, renewed
//!   while held, released by compare-and-delete), with a fencing token from `INCR`.
//!
//! Writers that bypass ossgate take no lock; nothing here can serialize them.
//!
//! Nothing here knows about gRPC: the callers map [`LockError`] to a status.

mod local;
mod redis;

use std::{fmt, future::Future, pin::Pin, sync::Arc, time::Duration};

pub use local::InProcessLocks;
pub use redis::RedisLocks;

/// Which object a lock serializes: bucket, key and version (`None` = the current version).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LockKey {
    bucket: String,
    key: String,
    version: Option<String>,
}

impl LockKey {
    /// The lock of `bucket`/`key` at `version` (`None`: the current version, which is what a
    /// call without a version id changes).
    pub fn new(bucket: &str, key: &str, version: Option<&str>) -> Self {
        Self {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version: version.map(str::to_owned),
        }
    }
}

impl fmt::Display for LockKey {
    /// `bucket/version/key` with `-` for the current version: unambiguous, since bucket
    /// names hold no `/` and version ids no `/` either, while the key (last) may.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.bucket,
            self.version.as_deref().unwrap_or("-"),
            self.key
        )
    }
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another tag write held the object's lock for the whole bounded wait.
    #[error("another tag write to this object held its lock for {waited:?}; retry")]
    Busy {
        /// How long the call waited.
        waited: Duration,
    },
    /// The lock service could not be reached or answered an error.
    #[error("the tag-write lock service failed: {0}")]
    Unavailable(String),
    /// The lease ran out (renewals failed) before the write happened.
    #[error("the tag-write lock's lease was lost before the write")]
    LeaseLost,
}

/// A held lock. Dropping it releases it; [`TagWriteGuard::release`] releases it and waits
/// until the lock service has (so the next writer does not wait for the release).
pub struct TagWriteGuard {
    fencing_token: Option<u64>,
    held: Held,
}

/// What a guard holds, per implementation.
enum Held {
    InProcess(local::Held),
    Redis(redis::Held),
}

impl TagWriteGuard {
    /// The fencing token of a Redis lock: strictly increasing across every lock ever granted
    /// by that Redis, so a log can order the writes. `None` in process.
    pub fn fencing_token(&self) -> Option<u64> {
        self.fencing_token
    }

    /// Whether the lock is still held: false once a Redis lease ran out (its renewals
    /// failed). A writer checks this just before it writes.
    pub fn still_held(&self) -> bool {
        match &self.held {
            Held::InProcess(_) => true,
            Held::Redis(held) => held.still_held(),
        }
    }

    /// Releases the lock and waits until it is released.
    pub async fn release(self) {
        match self.held {
            Held::InProcess(held) => drop(held),
            Held::Redis(held) => held.release().await,
        }
    }
}

/// The boxed future [`TagWriteLock::acquire`] returns (the trait is used as `dyn`).
pub type Acquiring<'a> =
    Pin<Box<dyn Future<Output = Result<TagWriteGuard, LockError>> + Send + 'a>>;

/// A lock per object, taken before a tag write and released after it.
pub trait TagWriteLock: Send + Sync + fmt::Debug {
    /// Waits at most the configured bounded wait for `key`'s lock.
    fn acquire<'a>(&'a self, key: &'a LockKey) -> Acquiring<'a>;

    /// Whether the lock is shared by every replica (Redis) or held in this process only.
    fn is_shared(&self) -> bool;
}

/// The lock the settings ask for, as the service holds it.
pub type SharedTagWriteLock = Arc<dyn TagWriteLock>;
