//! [`InProcessLocks`]: one async mutex per object, in a sharded map. An entry lives while a
//! call holds or waits for it, and is removed by the last one out, so the map holds only the
//! objects being written right now.

use std::{
    collections::{HashMap, hash_map::DefaultHasher},
    hash::{Hash, Hasher},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use super::{Acquiring, Held as GuardHeld, LockError, LockKey, TagWriteGuard, TagWriteLock};

/// Shards of the map: enough that calls on different objects rarely meet on a shard's
/// (synchronous, briefly held) mutex.
const SHARDS: usize = 64;

type Shard = Mutex<HashMap<LockKey, Arc<AsyncMutex<()>>>>;

/// Per-object locks held in this process.
#[derive(Debug)]
pub struct InProcessLocks {
    shards: Arc<[Shard]>,
    wait: Duration,
}

impl InProcessLocks {
    /// Locks whose callers wait at most `wait` for an object's lock.
    pub fn new(wait: Duration) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            wait,
        }
    }

    fn shard_of(&self, key: &LockKey) -> usize {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        (hasher.finish() % SHARDS as u64) as usize
    }

    /// Objects with an entry (held or waited for): for tests of the idle removal.
    pub fn entries(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.len()))
            .sum()
    }
}

/// A held in-process lock: removes the object's entry when it is the last user.
pub(super) struct Held {
    guard: Option<OwnedMutexGuard<()>>,
    key: LockKey,
    shards: Arc<[Shard]>,
    shard: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(guard) = self.guard.take() else {
            return;
        };
        // Under the shard's mutex, where waiters clone the entry: the map's Arc plus the
        // guard's are the only ones left when nobody else holds or waits for the object.
        if let Ok(mut map) = self.shards[self.shard].lock()
            && Arc::strong_count(OwnedMutexGuard::mutex(&guard)) == 2
        {
            map.remove(&self.key);
        }
        drop(guard);
    }
}

/// Removes an entry nobody uses any more after a wait that timed out or was cancelled.
struct WaitCleanup<'a> {
    locks: &'a InProcessLocks,
    key: &'a LockKey,
    shard: usize,
    entry: Option<Arc<AsyncMutex<()>>>,
}

impl Drop for WaitCleanup<'_> {
    fn drop(&mut self) {
        let Some(entry) = self.entry.take() else {
            return;
        };
        if let Ok(mut map) = self.locks.shards[self.shard].lock()
            && Arc::strong_count(&entry) == 2
        {
            map.remove(self.key);
        }
    }
}

impl TagWriteLock for InProcessLocks {
    fn acquire<'a>(&'a self, key: &'a LockKey) -> Acquiring<'a> {
        Box::pin(async move {
            let shard = self.shard_of(key);
            let entry = {
                let mut map = self.shards[shard]
                    .lock()
                    .map_err(|_| LockError::Unavailable("lock map poisoned".into()))?;
                map.entry(key.clone()).or_default().clone()
            };
            let mut cleanup = WaitCleanup {
                locks: self,
                key,
                shard,
                entry: Some(entry.clone()),
            };
            let guard = tokio::time::timeout(self.wait, entry.lock_owned())
                .await
                .map_err(|_| LockError::Busy { waited: self.wait })?;
            // The guard's own Arc keeps the entry; the cleanup's clone goes without removing.
            cleanup.entry = None;
            Ok(TagWriteGuard {
                fencing_token: None,
                held: GuardHeld::InProcess(Held {
                    guard: Some(guard),
                    key: key.clone(),
                    shards: self.shards.clone(),
                    shard,
                }),
            })
        })
    }

    fn is_shared(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn one_holder_per_object_and_idle_entries_are_removed() {
        let locks = Arc::new(InProcessLocks::new(Duration::from_secs(5)));
        let key = LockKey::new("b", "k", None);
        let inside = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (locks, key, inside) = (locks.clone(), key.clone(), inside.clone());
            tasks.push(tokio::spawn(async move {
                let guard = locks.acquire(&key).await.unwrap();
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                tokio::time::sleep(Duration::from_millis(2)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                guard.release().await;
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(locks.entries(), 0);
    }

    #[tokio::test]
    async fn other_objects_and_versions_do_not_wait() {
        let locks = InProcessLocks::new(Duration::from_millis(50));
        let held = locks.acquire(&LockKey::new("b", "k", None)).await.unwrap();
        let other = locks.acquire(&LockKey::new("b", "k2", None)).await.unwrap();
        let version = locks
            .acquire(&LockKey::new("b", "k", Some("v1")))
            .await
            .unwrap();
        assert_eq!(locks.entries(), 3);
        drop((other, version));
        assert_eq!(locks.entries(), 1);
        held.release().await;
        assert_eq!(locks.entries(), 0);
    }

    #[tokio::test]
    async fn the_wait_is_bounded_and_leaves_no_entry() {
        let locks = InProcessLocks::new(Duration::from_millis(30));
        let key = LockKey::new("b", "k", None);
        let held = locks.acquire(&key).await.unwrap();
        let err = locks.acquire(&key).await.err().unwrap();
        assert!(matches!(err, LockError::Busy { .. }), "{err}");
        assert_eq!(locks.entries(), 1);
        drop(held);
        assert_eq!(locks.entries(), 0);
        assert!(locks.acquire(&key).await.is_ok());
    }
}
