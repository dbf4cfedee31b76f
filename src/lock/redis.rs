//! [`RedisLocks`]: a lease lock per object in Redis (or Tair), shared by every replica.
//!
//! * Take: `SET ossgate:taglock:<object> <token> NX PX <lease>`, retried with a short,
//!   growing, jittered pause until the bounded wait is over. `token` is random per take.
//! * Fencing: `INCR ossgate:tagfence` after a take; one counter for all objects, so it never
//!   expires and never goes back. OSS cannot check it; it orders writes in the audit trail.
//! * Hold: a task renews the lease every third of it (`PEXPIRE` only while the key still
//!   holds our token); when a renewal finds the key gone or Redis unreachable the guard
//!   reports the lock lost and the write does not happen.
//! * Release: delete the key only while it holds our token (one Lua script, so a lock
//!   that expired and was taken by another replica is never deleted by us).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use redis::{AsyncCommands, Script, aio::ConnectionManager};
use tokio::task::JoinHandle;

use super::{Acquiring, Held as GuardHeld, LockError, LockKey, TagWriteGuard, TagWriteLock};

/// Prefix of the lock keys.
const LOCK_PREFIX: &str = "ossgate:taglock:";
/// The fencing counter.
const FENCE_KEY: &str = "ossgate:tagfence";
/// First pause between takes; doubles up to [`MAX_RETRY_PAUSE`], each with jitter.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(1);
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(5);
/// Longest a single Redis command may take before the lock reports Redis unavailable.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Deletes KEYS[1] only while it holds ARGV[1] (our token).
const RELEASE_SCRIPT: &str = r#"
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
"#;

/// Extends KEYS[1]'s lease to ARGV[2] ms only while it holds ARGV[1] (our token).
const RENEW_SCRIPT: &str = r#"
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0
"#;

/// Lease locks in one Redis.
pub struct RedisLocks {
    connection: ConnectionManager,
    wait: Duration,
    lease: Duration,
    release: Arc<Script>,
    renew: Arc<Script>,
}

impl std::fmt::Debug for RedisLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLocks")
            .field("wait", &self.wait)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

fn unavailable(err: impl std::fmt::Display) -> LockError {
    LockError::Unavailable(err.to_string())
}

/// Runs one Redis command with [`COMMAND_TIMEOUT`].
async fn bounded<T>(command: impl Future<Output = redis::RedisResult<T>>) -> Result<T, LockError> {
    tokio::time::timeout(COMMAND_TIMEOUT, command)
        .await
        .map_err(|_| unavailable(format!("no answer from Redis in {COMMAND_TIMEOUT:?}")))?
        .map_err(unavailable)
}

impl RedisLocks {
    /// Connects to `url` (and checks it answers PING); callers wait at most `wait` for a
    /// lock, which is leased for `lease` at a time.
    pub async fn connect(url: &str, wait: Duration, lease: Duration) -> Result<Self, LockError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT));
        let mut connection = bounded(client.get_connection_manager_with_config(config)).await?;
        let _: String = bounded(redis::cmd("PING").query_async(&mut connection)).await?;
        Ok(Self {
            connection,
            wait,
            lease,
            release: Arc::new(Script::new(RELEASE_SCRIPT)),
            renew: Arc::new(Script::new(RENEW_SCRIPT)),
        })
    }

    /// One `SET NX PX`: true when we took it.
    async fn try_take(&self, lock_key: &str, token: &str) -> Result<bool, LockError> {
        let mut connection = self.connection.clone();
        let lease_ms = u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX);
        let answer: Option<String> = bounded(
            redis::cmd("SET")
                .arg(lock_key)
                .arg(token)
                .arg("NX")
                .arg("PX")
                .arg(lease_ms)
                .query_async(&mut connection),
        )
        .await?;
        Ok(answer.is_some())
    }

    async fn take(&self, key: &LockKey) -> Result<TagWriteGuard, LockError> {
        let lock_key = format!("{LOCK_PREFIX}{key}");
        let token = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let mut pause = FIRST_RETRY_PAUSE;
        loop {
            if self.try_take(&lock_key, &token).await? {
                break;
            }
            let waited = started.elapsed();
            if waited >= self.wait {
                return Err(LockError::Busy { waited });
            }
            let jitter = rand::random_range(0..=pause.as_micros() as u64);
            let sleep = (pause + Duration::from_micros(jitter)).min(self.wait - waited);
            tokio::time::sleep(sleep).await;
            pause = (pause * 2).min(MAX_RETRY_PAUSE);
        }
        let held = Held {
            connection: self.connection.clone(),
            lock_key,
            token,
            release: self.release.clone(),
            lost: Arc::new(AtomicBool::new(false)),
            renewal: None,
        };
        // Taken: from here on a failure must release it (dropping `held` does).
        let mut connection = self.connection.clone();
        let fencing_token: u64 = bounded(connection.incr(FENCE_KEY, 1u64)).await?;
        let held = held.renewing(self.renew.clone(), self.lease);
        Ok(TagWriteGuard {
            fencing_token: Some(fencing_token),
            held: GuardHeld::Redis(held),
        })
    }
}

impl TagWriteLock for RedisLocks {
    fn acquire<'a>(&'a self, key: &'a LockKey) -> Acquiring<'a> {
        Box::pin(self.take(key))
    }

    fn is_shared(&self) -> bool {
        true
    }
}

/// A held Redis lock and its renewal task.
pub(super) struct Held {
    connection: ConnectionManager,
    lock_key: String,
    token: String,
    release: Arc<Script>,
    /// Set by the renewal task when the lease could not be extended.
    lost: Arc<AtomicBool>,
    renewal: Option<JoinHandle<()>>,
}

impl Held {
    /// Starts the task that extends the lease every third of it while the guard lives.
    fn renewing(mut self, renew: Arc<Script>, lease: Duration) -> Self {
        let mut connection = self.connection.clone();
        let (lock_key, token, lost) =
            (self.lock_key.clone(), self.token.clone(), self.lost.clone());
        let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
        self.renewal = Some(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(lease / 3);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let renewed: Result<i64, _> = bounded(
                    renew
                        .key(&lock_key)
                        .arg(&token)
                        .arg(lease_ms)
                        .invoke_async(&mut connection),
                )
                .await;
                if !matches!(renewed, Ok(1)) {
                    tracing::warn!(lock = %lock_key, result = ?renewed, "tag-write lock lease lost");
                    lost.store(true, Ordering::SeqCst);
                    return;
                }
            }
        }));
        self
    }

    pub(super) fn still_held(&self) -> bool {
        !self.lost.load(Ordering::SeqCst)
    }

    /// Compare-and-delete, so the next writer can take it at once.
    async fn delete(&self) {
        let mut connection = self.connection.clone();
        let deleted: Result<i64, _> = bounded(
            self.release
                .key(&self.lock_key)
                .arg(&self.token)
                .invoke_async(&mut connection),
        )
        .await;
        if let Err(err) = deleted {
            // The lease frees the object after at most `lock.lease_ms`.
            tracing::warn!(lock = %self.lock_key, error = %err, "could not release a tag-write lock");
        }
    }

    pub(super) async fn release(mut self) {
        if let Some(renewal) = self.renewal.take() {
            renewal.abort();
        }
        self.delete().await;
        // Released: the drop below has nothing left to do.
        self.token.clear();
    }
}

impl Drop for Held {
    /// A guard dropped without `release` (an error path, a cancelled call) still releases
    /// the lock, in the background.
    fn drop(&mut self) {
        if let Some(renewal) = self.renewal.take() {
            renewal.abort();
        }
        if self.token.is_empty() {
            return;
        }
        let held = Held {
            connection: self.connection.clone(),
            lock_key: std::mem::take(&mut self.lock_key),
            token: std::mem::take(&mut self.token),
            release: self.release.clone(),
            lost: self.lost.clone(),
            renewal: None,
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { held.release().await });
        }
    }
}
