//! Taking an object's tag-write lock ([`crate::lock`]) from a call that changes its tags,
//! and reading the tags under it.

use tonic::Status;

use super::{
    audit::Trail,
    status::{lock_status, oss_status},
};
use crate::{
    lock::{LockError, LockKey, TagWriteGuard, TagWriteLock},
    oss::{Client, ObjectId},
};

/// The lock key of `object`: bucket, key and version (none = the current version).
pub fn lock_key(object: &ObjectId) -> LockKey {
    LockKey::new(
        object.bucket.as_str(),
        object.key.as_str(),
        object.version_id.as_ref().map(|v| v.as_str()),
    )
}

/// Takes `object`'s lock (bounded wait).
pub async fn acquire(locks: &dyn TagWriteLock, object: &ObjectId) -> Result<TagWriteGuard, Status> {
    locks.acquire(&lock_key(object)).await.map_err(lock_status)
}

/// Takes `object`'s lock (bounded wait), recording its fencing token in the audit trail.
pub async fn lock(
    locks: &dyn TagWriteLock,
    object: &ObjectId,
    trail: &mut Trail,
) -> Result<TagWriteGuard, Status> {
    let guard = acquire(locks, object).await?;
    trail.fencing_token(guard.fencing_token());
    Ok(guard)
}

/// ABORTED (`TAG_LOCK_LOST`) when a Redis lease ran out while the call read and checked:
/// another replica may hold the object now, so the write must not happen.
pub fn ensure_held(guard: &TagWriteGuard) -> Result<(), Status> {
    if guard.still_held() {
        Ok(())
    } else {
        Err(lock_status(LockError::LeaseLost))
    }
}

/// The object's current tags (one GetObjectTagging), as OSS returned them; a missing object
/// (or version) is NOT_FOUND.
pub async fn current_tags(
    client: &Client,
    object: &ObjectId,
) -> Result<Vec<(String, String)>, Status> {
    client
        .get_object_tagging(object)
        .await
        .map(|out| out.tags)
        .map_err(oss_status)
}

/// For a call that writes `bucket`/`key` and sets its tags as it does (a copy with tagging
/// REPLACE, UpdateObjectMetadata with tagging, a symlink with tags): the lock of the current
/// version, held for the whole call; `None` when `sets_tags` is false. Taken on the names as
/// sent: the call validates them next, and a refused name only held a lock nobody else uses.
pub async fn lock_for_tagged_write(
    locks: &dyn TagWriteLock,
    sets_tags: bool,
    bucket: &str,
    key: &str,
    trail: &mut Trail,
) -> Result<Option<TagWriteGuard>, Status> {
    if !sets_tags {
        return Ok(None);
    }
    let guard = locks
        .acquire(&LockKey::new(bucket, key, None))
        .await
        .map_err(lock_status)?;
    trail.fencing_token(guard.fencing_token());
    Ok(Some(guard))
}
