//! The multipart upload engine: bytes arrive in chunks of any size, are re-blocked into
//! parts, and go to OSS as parallel UploadParts, with memory bounded per upload and across
//! uploads by a shared [`MemoryBudget`].
//!
//! Why a stream reserves its working set up front, all or nothing: when writers took budget
//! chunk by chunk and waited for more, enough streams could each hold half a part and wait
//! for room that only another waiting stream could free (hold and wait): no stream ever
//! completed. Now a stream is admitted with a [`Reservation`] big enough to make progress on
//! its own (one part filling while one uploads), grows it only with non-blocking
//! [`MemoryBudget::try_reserve`]s for more parallelism, and otherwise waits only for its own
//! parts to finish, which depends on OSS and never on another stream's memory.

use crate::oss::protocol::limit::{MAX_PART_BYTES, MAX_PART_NUMBER, MIN_PART_BYTES};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, oneshot},
    task::JoinSet,
};
use tracing::{debug, info, warn};

use super::{
    Client, CompleteMultipartUploadInput, CompleteMultipartUploadOutput, CompletedPart,
    InitiateMultipartUploadInput, InitiateMultipartUploadOutput, MultipartUploadId, OssError,
    OssErrorKind, UploadPartInput,
};
use crate::model::crc64_combine;

/// Part sizes are rounded up to a multiple of this, so they stay tidy.
const PART_SIZE_ALIGN: u64 = 1024 * 1024;

/// The part size for an upload: the configured default, grown so that `size_hint` bytes fit
/// in [`MAX_PART_NUMBER`] parts, never below [`MIN_PART_BYTES`] nor above [`MAX_PART_BYTES`].
pub fn plan_part_size(size_hint: Option<u64>, default_part_size: u64) -> u64 {
    let needed = size_hint.map_or(0, |size| size.div_ceil(u64::from(MAX_PART_NUMBER)));
    let part = if needed > default_part_size {
        // Grown parts are rounded up to whole MiB; the configured size is kept as it is.
        needed.div_ceil(PART_SIZE_ALIGN) * PART_SIZE_ALIGN
    } else {
        default_part_size
    };
    part.clamp(MIN_PART_BYTES, MAX_PART_BYTES)
}

/// The memory a streamed upload is admitted with: two parts, one filling while the other
/// uploads, so the stream keeps reading while OSS stores the previous part (a writer's part
/// buffer is allocated whole, so a shorter last part still takes a part). A declared
/// `object_size` of at most one part needs only its size (one PutObject; the stream cannot
/// carry more). Never more than the whole budget: one part at a time then, still
/// progressing.
pub fn working_set(part_size: u64, object_size: Option<u64>, budget_total: usize) -> usize {
    let bytes = match object_size {
        Some(size) if size <= part_size => size,
        _ => part_size.saturating_mul(2),
    };
    usize::try_from(bytes)
        .unwrap_or(usize::MAX)
        .min(budget_total)
}

/// Bytes that all uploads together may hold in memory. Nobody waits for it: a stream is
/// admitted with a [`Reservation`] it gets at once or not at all.
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    semaphore: Arc<Semaphore>,
    total: usize,
}

impl MemoryBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Self {
        let bytes = bytes.min(Semaphore::MAX_PERMITS).min(u32::MAX as usize);
        Self {
            semaphore: Arc::new(Semaphore::new(bytes)),
            total: bytes,
        }
    }

    /// The budget's size in bytes.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes held right now.
    pub fn in_use(&self) -> usize {
        self.total - self.semaphore.available_permits()
    }

    /// `bytes` of the budget if they are free right now, else `None` (never waits: a caller
    /// that waited while holding memory could deadlock with others doing the same).
    pub fn try_reserve(&self, bytes: usize) -> Option<Reservation> {
        if bytes == 0 {
            return Some(Reservation::default());
        }
        let permits = u32::try_from(bytes).ok()?;
        self.semaphore
            .clone()
            .try_acquire_many_owned(permits)
            .ok()
            .map(|permit| Reservation {
                permit: Some(permit),
            })
    }
}

/// Bytes of a [`MemoryBudget`] held until dropped.
#[derive(Debug, Default)]
pub struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
}

impl Reservation {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.permit.as_ref().map_or(0, |p| p.num_permits())
    }

    /// Adds `other`'s bytes to this reservation.
    fn merge(&mut self, other: Reservation) {
        match (&mut self.permit, other.permit) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (mine @ None, theirs) => *mine = theirs,
            (_, None) => {}
        }
    }

    /// Gives `bytes` back to the budget (at most what is held).
    fn release(&mut self, bytes: usize) {
        let Some(permit) = self.permit.as_mut() else {
            return;
        };
        if bytes >= permit.num_permits() {
            self.permit = None;
        } else {
            // Dropping the split-off part returns it to the budget.
            drop(permit.split(bytes));
        }
    }
}

/// How an upload runs.
#[derive(Clone, Debug)]
pub struct UploadOptions {
    /// Bytes per part (the last may be smaller).
    pub part_size: u64,
    /// Parts uploading at the same time.
    pub parallelism: usize,
    /// The shared memory budget.
    pub budget: MemoryBudget,
}

/// A part that OSS has stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPart {
    /// 1-based part number.
    pub part_number: u32,
    /// The ETag OSS returned.
    pub etag: String,
    /// Bytes in the part.
    pub size: u64,
    /// CRC-64 of the part.
    pub crc64: u64,
}

fn options_part_size(options: &UploadOptions) -> usize {
    usize::try_from(options.part_size).unwrap_or(usize::MAX)
}

/// Feeds one multipart upload. Call [`MultipartWriter::write`] with chunks, then
/// [`MultipartWriter::finish`]; on any failure call [`MultipartWriter::abort`] (or let the
/// caller decide to keep the upload for a resumable write).
///
/// Memory: the buffer being filled and every part in flight take one part's worth of the
/// writer's [`Reservation`]. Before a new part starts filling the writer makes room: it
/// takes one more part from the budget if one is free and the parallelism allows, otherwise
/// it waits for one of its own parts to finish. It never waits for the budget.
pub struct MultipartWriter {
    client: Client,
    upload: MultipartUploadId,
    options: UploadOptions,
    next_part: u32,
    buffer: BytesMut,
    /// Budget held for the buffer and the parts in flight.
    reservation: Reservation,
    /// What the writer was admitted with: never given back before the writer ends.
    admitted_bytes: usize,
    in_flight: JoinSet<Result<StoredPart, OssError>>,
    /// Bytes of the parts in flight.
    in_flight_bytes: usize,
    stored: Vec<StoredPart>,
}

impl MultipartWriter {
    /// A writer for an upload that OSS already knows, continuing after `stored` parts
    /// (empty for a new upload), with the memory it was admitted with.
    pub fn new(
        client: Client,
        upload: MultipartUploadId,
        options: UploadOptions,
        stored: Vec<StoredPart>,
        reservation: Reservation,
    ) -> Self {
        let next_part = stored.iter().map(|p| p.part_number).max().unwrap_or(0) + 1;
        Self {
            client,
            upload,
            options,
            next_part,
            // Allocated when the first part starts filling, within the reservation.
            buffer: BytesMut::new(),
            admitted_bytes: reservation.bytes(),
            reservation,
            in_flight: JoinSet::new(),
            in_flight_bytes: 0,
            stored,
        }
    }

    /// The client this writer sends with.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The upload this writer feeds.
    pub fn upload(&self) -> &MultipartUploadId {
        &self.upload
    }

    /// Bytes OSS has stored so far (finished parts only).
    pub fn stored_bytes(&self) -> u64 {
        self.stored.iter().map(|p| p.size).sum()
    }

    /// Adds bytes; full parts are sent as they fill. Waits for its own parts in flight when
    /// its memory or the parallelism is used up. Fails with the first part failure.
    pub async fn write(&mut self, mut data: Bytes) -> Result<(), OssError> {
        let part_size = options_part_size(&self.options);
        while !data.is_empty() {
            if self.buffer.is_empty() {
                self.make_room_for_a_part().await?;
                // The part fills a buffer of its final size: no reallocation while chunks
                // arrive.
                self.buffer.reserve(part_size);
            }
            let room = part_size - self.buffer.len();
            let take = room.min(data.len());
            let chunk = data.split_to(take);
            self.buffer.extend_from_slice(&chunk);
            if self.buffer.len() == part_size {
                self.send_buffer().await?;
            }
        }
        Ok(())
    }

    /// Makes sure one more part fits in the reservation next to the parts in flight.
    async fn make_room_for_a_part(&mut self) -> Result<(), OssError> {
        let part_size = options_part_size(&self.options);
        loop {
            let free = self
                .reservation
                .bytes()
                .saturating_sub(self.in_flight_bytes);
            if free >= part_size {
                return Ok(());
            }
            let parallelism = self.options.parallelism.max(1);
            if self.in_flight.len() < parallelism
                && let Some(more) = self.options.budget.try_reserve(part_size - free)
            {
                self.reservation.merge(more);
                return Ok(());
            }
            if self.in_flight.is_empty() {
                // Admission gives every multipart writer at least one part (or the whole
                // budget, which is checked to hold a part); this is a bug, not load.
                return Err(OssError::client(
                    OssErrorKind::Other,
                    format!(
                        "the upload holds {} bytes of memory, less than one part of {part_size}",
                        self.reservation.bytes()
                    ),
                ));
            }
            self.collect_one().await?;
        }
    }

    /// Sends what is buffered as the next part, first waiting for a free slot.
    async fn send_buffer(&mut self) -> Result<(), OssError> {
        while self.in_flight.len() >= self.options.parallelism.max(1) {
            self.collect_one().await?;
        }
        let body = self.buffer.split().freeze();
        let part_number = self.next_part;
        self.next_part += 1;
        if part_number > MAX_PART_NUMBER {
            return Err(OssError::invalid_argument(format!(
                "the object needs more than {MAX_PART_NUMBER} parts of {} bytes",
                self.options.part_size
            )));
        }
        self.in_flight_bytes += body.len();
        let client = self.client.clone();
        let upload = self.upload.clone();
        // The part's bytes are dropped when its task ends (stored, failed or aborted); until
        // then they count against the writer's reservation through in_flight_bytes.
        let part = async move {
            let size = body.len() as u64;
            let out = client
                .upload_part(&UploadPartInput {
                    upload,
                    part_number,
                    body,
                    content_md5: None,
                })
                .await?;
            debug!(part_number, size, "part stored");
            Ok(StoredPart {
                part_number,
                etag: out.etag,
                size,
                // The CRC-64 of the bytes sent: upload_part computes it once and has
                // checked it against OSS's CRC of the part.
                crc64: out.sent_crc64,
            })
        };
        // In the caller's span: each part's OSS request is a child of the call.
        self.in_flight
            .spawn(tracing::Instrument::in_current_span(part));
        Ok(())
    }

    /// Waits for one in-flight part, then gives memory beyond what the writer was admitted
    /// with and still needs (one part filling next to those in flight) back to the budget.
    async fn collect_one(&mut self) -> Result<(), OssError> {
        let outcome = match self.in_flight.join_next().await {
            Some(Ok(Ok(part))) => {
                self.in_flight_bytes -= part.size as usize;
                self.stored.push(part);
                Ok(())
            }
            Some(Ok(Err(err))) => Err(err),
            Some(Err(join)) => Err(OssError::client(
                OssErrorKind::Other,
                format!("a part upload task failed: {join}"),
            )),
            None => Ok(()),
        };
        let needed = self.in_flight_bytes + options_part_size(&self.options);
        let keep = needed.max(self.admitted_bytes);
        let surplus = self.reservation.bytes().saturating_sub(keep);
        self.reservation.release(surplus);
        outcome
    }

    /// Waits for every part in flight.
    pub async fn flush(&mut self) -> Result<(), OssError> {
        while !self.in_flight.is_empty() {
            self.collect_one().await?;
        }
        Ok(())
    }

    /// Sends the last (possibly short) part, waits for all parts, completes the upload and
    /// checks OSS's whole-object CRC-64 against the parts' combined CRC.
    pub async fn finish(
        mut self,
        complete: impl FnOnce(MultipartUploadId, Vec<CompletedPart>) -> CompleteMultipartUploadInput,
    ) -> Result<(CompleteMultipartUploadOutput, FinishedUpload), OssError> {
        if !self.buffer.is_empty() || self.stored.is_empty() && self.in_flight.is_empty() {
            self.send_buffer().await?;
        }
        self.flush().await?;
        self.stored.sort_by_key(|p| p.part_number);
        let size = self.stored.iter().map(|p| p.size).sum();
        let crc64 = self
            .stored
            .iter()
            .fold(0, |crc, part| crc64_combine(crc, part.crc64, part.size));
        let parts = self
            .stored
            .iter()
            .map(|p| CompletedPart {
                part_number: p.part_number,
                etag: p.etag.clone(),
            })
            .collect();
        let input = complete(self.upload.clone(), parts);
        let out = self.client.complete_multipart_upload(&input).await?;
        if let Some(stored) = out.crc64
            && stored != crc64
        {
            return Err(OssError::client(
                OssErrorKind::ChecksumMismatch,
                format!(
                    "OSS reports CRC-64 {stored} for the completed object; its parts add up to {crc64}"
                ),
            ));
        }
        Ok((
            out,
            FinishedUpload {
                size,
                crc64,
                parts: self.stored.len() as u32,
            },
        ))
    }

    /// Stops everything in flight and aborts the upload on OSS; the outcome is logged (see
    /// [`abort_upload`]).
    pub async fn abort(mut self) -> AbortOutcome {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        abort_upload(&self.client, &self.upload).await
    }

    /// Stops everything in flight but keeps the upload (a resumable write continues later).
    pub async fn suspend(mut self) {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
    }
}

/// What a finished multipart upload stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FinishedUpload {
    /// Bytes in the object.
    pub size: u64,
    /// CRC-64 of the object, combined from its parts.
    pub crc64: u64,
    /// Parts used.
    pub parts: u32,
}

/// The longest a request that runs detached from its call may take, retries included: an
/// abort, or the Initiate of a call that may go away. The call's deadline no longer bounds
/// it (its result must not be lost with the call), so this does, on top of the client's
/// connect and read timeouts. (A constant, not a setting: it only has to end a request that
/// OSS never answers; 120 s is the default `oss.read_timeout_ms`.)
pub const DETACHED_REQUEST_LIMIT: Duration = Duration::from_secs(120);

/// Runs `request` under [`DETACHED_REQUEST_LIMIT`]. Meant for a spawned task, which does not
/// inherit the call's deadline (it is task-local).
async fn detached<F: Future>(request: F) -> F::Output {
    super::retry::with_deadline(Instant::now() + DETACHED_REQUEST_LIMIT, request).await
}

/// Initiates a multipart upload so that the call going away cannot orphan it.
///
/// InitiateMultipartUpload runs in a task of its own, unbounded by the call's deadline (but
/// within [`DETACHED_REQUEST_LIMIT`] and the client's timeouts), and hands the new upload
/// over together with an armed [`AbortOnDrop`] guard. If the caller is gone by the time OSS
/// answers (its deadline passed or the call was dropped), nobody takes the upload over: the
/// task aborts it, or the guard does when the unread answer is dropped. The caller keeps the
/// guard armed until the upload is completed, aborted, or handed to someone who will finish
/// it (a resumable write's id returned to its caller).
///
/// The caller still waits no longer than its deadline: then this fails with `Timeout`, as
/// any OSS request cut off by the deadline does.
pub async fn initiate_upload(
    client: &Client,
    input: &InitiateMultipartUploadInput,
) -> Result<(InitiateMultipartUploadOutput, AbortOnDrop), OssError> {
    if client.owned_uploads().is_closed() {
        // The shutdown is aborting this client's uploads: one started now could outlive it.
        return Err(OssError::client(
            OssErrorKind::Cancelled,
            "the gateway is shutting down and starts no new multipart upload",
        ));
    }
    let (answer, answered) = oneshot::channel();
    let (client, input) = (client.clone(), input.clone());
    // In the caller's span: the Initiate stays a child of the call in traces.
    tokio::spawn(tracing::Instrument::in_current_span(async move {
        let result = detached(client.initiate_multipart_upload(&input))
            .await
            .map(|out| {
                let guard = AbortOnDrop::new(client.clone(), out.upload.clone());
                (out, guard)
            });
        // Nobody took the answer: its guard, dropped here, aborts the upload.
        if let Err(Ok((out, _guard))) = answer.send(result) {
            info!(
                bucket = %out.upload.bucket,
                key = %out.upload.key,
                "the call ended while its multipart upload was being initiated; aborting the upload"
            );
        }
    }));
    let received = match super::retry::deadline() {
        Some(deadline) => match tokio::time::timeout_at(deadline.into(), answered).await {
            Ok(received) => received,
            Err(_) => {
                return Err(OssError::client(
                    OssErrorKind::Timeout,
                    "the call's deadline passed before OSS answered InitiateMultipartUpload \
                     (the upload is aborted if OSS creates it)",
                ));
            }
        },
        None => answered.await,
    };
    received.unwrap_or_else(|_| {
        Err(OssError::client(
            OssErrorKind::Other,
            "the task initiating the multipart upload ended without an answer",
        ))
    })
}

/// How an attempt to abort a multipart upload ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbortOutcome {
    /// OSS answered 204, or NoSuchUpload (the upload was already gone).
    Aborted,
    /// The abort failed (OSS unreachable, an error answer, the time limit): the upload is
    /// left behind, and a WARN line names its bucket, key and UploadId.
    LeftBehind,
}

/// Aborts a multipart upload and logs the truth about it: INFO `multipart upload aborted`
/// only when OSS answered 204 (or NoSuchUpload), otherwise WARN `multipart upload left
/// behind` with the bucket, key and UploadId, so that an operator can find it
/// (ListMultipartUploads) and abort it. Used on error paths, where the original error is
/// what the caller must see, so the outcome is returned, not an error.
///
/// The abort runs in a task of its own, so neither the call's deadline (an abort racing it
/// would be cut short) nor the call being dropped while it waits stops the clean-up. It is
/// bounded by [`DETACHED_REQUEST_LIMIT`] instead.
pub async fn abort_upload(client: &Client, upload: &MultipartUploadId) -> AbortOutcome {
    let (client, upload) = (client.clone(), upload.clone());
    let abort = tokio::spawn(tracing::Instrument::in_current_span({
        let upload = upload.clone();
        async move {
            match detached(client.abort_multipart_upload(&upload)).await {
                Err(err) if !err.is_not_found() => {
                    left_behind(&upload, &err.to_string());
                    AbortOutcome::LeftBehind
                }
                answered => {
                    info!(
                        bucket = %upload.bucket,
                        key = %upload.key,
                        upload_id = %upload.upload_id,
                        // OSS no longer knew it: aborted or completed already.
                        no_such_upload = answered.is_err(),
                        "multipart upload aborted"
                    );
                    AbortOutcome::Aborted
                }
            }
        }
    }));
    // A panic in the task has been reported by the runtime; the upload may still be there.
    abort.await.unwrap_or_else(|join| {
        left_behind(&upload, &format!("the abort task failed: {join}"));
        AbortOutcome::LeftBehind
    })
}

/// The WARN line for an upload that could not be aborted.
fn left_behind(upload: &MultipartUploadId, why: &str) {
    warn!(
        bucket = %upload.bucket,
        key = %upload.key,
        upload_id = %upload.upload_id,
        error = why,
        "multipart upload left behind: it could not be aborted; find it with \
         ListMultipartUploads and abort it with AbortMultipartUpload (or a lifecycle rule)"
    );
}

/// The multipart uploads a [`Client`] has started and that are still to be completed or
/// aborted: each armed [`AbortOnDrop`] guard is registered here until it is disarmed or has
/// aborted its upload. At shutdown, [`OwnedUploads::abort_all`] aborts what the calls still
/// running could not finish, so a process that exits normally leaves no upload behind.
#[derive(Debug, Default)]
pub struct OwnedUploads {
    /// By UploadId (unique within OSS).
    open: std::sync::Mutex<std::collections::HashMap<String, MultipartUploadId>>,
    /// Set by [`OwnedUploads::abort_all`]: [`initiate_upload`] starts no new upload.
    closed: std::sync::atomic::AtomicBool,
}

impl OwnedUploads {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, MultipartUploadId>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, upload: &MultipartUploadId) {
        self.lock().insert(upload.upload_id.clone(), upload.clone());
    }

    fn remove(&self, upload: &MultipartUploadId) {
        self.lock().remove(&upload.upload_id);
    }

    /// The uploads registered now.
    pub fn list(&self) -> Vec<MultipartUploadId> {
        self.lock().values().cloned().collect()
    }

    /// True once [`OwnedUploads::abort_all`] has begun: no new upload may start.
    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stops new uploads from starting, then aborts every registered upload (in parallel),
    /// in rounds until none is left (an Initiate still on its way registers its upload
    /// late), for at most `limit` in all. Uploads that could not be aborted in time are
    /// logged at WARN with bucket, key and UploadId. Returns how many are left behind.
    pub async fn abort_all(&self, client: &Client, limit: Duration) -> usize {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + limit;
        let too_late = format!("the abort did not finish within {} ms", limit.as_millis());
        let mut left = 0;
        loop {
            let uploads = self.list();
            if uploads.is_empty() {
                return left;
            }
            if tokio::time::Instant::now() >= deadline {
                for upload in &uploads {
                    left_behind(upload, &too_late);
                    self.remove(upload);
                }
                return left + uploads.len();
            }
            info!(
                uploads = uploads.len(),
                "aborting the multipart uploads of calls that did not finish"
            );
            let mut aborts = JoinSet::new();
            for upload in uploads.iter().cloned() {
                let client = client.clone();
                aborts.spawn(async move {
                    let outcome = abort_upload(&client, &upload).await;
                    client.owned_uploads().remove(&upload);
                    (upload.upload_id, outcome)
                });
            }
            let mut finished = std::collections::HashMap::new();
            let _ = tokio::time::timeout_at(deadline, async {
                while let Some(joined) = aborts.join_next().await {
                    if let Ok((id, outcome)) = joined {
                        finished.insert(id, outcome);
                    }
                }
            })
            .await;
            for upload in &uploads {
                match finished.get(&upload.upload_id) {
                    Some(AbortOutcome::Aborted) => {}
                    // Logged by abort_upload already.
                    Some(AbortOutcome::LeftBehind) => left += 1,
                    None => {
                        left += 1;
                        left_behind(upload, &too_late);
                        self.remove(upload);
                    }
                }
            }
        }
    }
}

/// Aborts `upload` when dropped unless disarmed: a write whose future is dropped (the caller
/// cancelled) leaves no orphaned multipart upload behind. While armed, the upload is
/// registered in its client's [`OwnedUploads`], so a shutdown can abort it too.
pub struct AbortOnDrop {
    armed: Option<(Client, MultipartUploadId)>,
}

impl AbortOnDrop {
    /// Arms the guard for `upload`.
    pub fn new(client: Client, upload: MultipartUploadId) -> Self {
        client.owned_uploads().insert(&upload);
        Self {
            armed: Some((client, upload)),
        }
    }

    /// The upload completed (or is kept on purpose, or its abort was tried): do nothing on
    /// drop.
    pub fn disarm(&mut self) {
        if let Some((client, upload)) = self.armed.take() {
            client.owned_uploads().remove(&upload);
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some((client, upload)) = self.armed.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(tracing::Instrument::in_current_span(async move {
                abort_upload(&client, &upload).await;
                client.owned_uploads().remove(&upload);
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn part_size_grows_so_10000_parts_are_never_exceeded() {
        assert_eq!(plan_part_size(None, 8 * MIB), 8 * MIB);
        assert_eq!(plan_part_size(Some(1024), 8 * MIB), 8 * MIB);
        // 1 TiB needs parts of at least 1 TiB / 10,000 = 104.9 MiB, rounded up to 105 MiB.
        let size = 1024 * 1024 * MIB;
        let part = plan_part_size(Some(size), 8 * MIB);
        assert_eq!(part, 105 * MIB);
        assert!(size.div_ceil(part) <= u64::from(MAX_PART_NUMBER));
        // A small configured size is kept when the object fits (no rounding up to 1 MiB).
        assert_eq!(plan_part_size(Some(700 * 1024), 128 * 1024), 128 * 1024);
        // The floor and the ceiling hold.
        assert_eq!(plan_part_size(None, 1), MIN_PART_BYTES);
        assert_eq!(plan_part_size(Some(u64::MAX), 8 * MIB), MAX_PART_BYTES);
        for size in [
            0,
            1,
            80 * 1024 * MIB,
            81 * 1024 * MIB,
            48 * 1024 * 1024 * MIB,
        ] {
            let part = plan_part_size(Some(size), 8 * MIB);
            assert!(
                size.div_ceil(part) <= u64::from(MAX_PART_NUMBER),
                "{size} bytes in parts of {part}"
            );
        }
    }

    #[tokio::test]
    async fn an_abort_is_neither_bounded_by_the_calls_deadline_nor_dropped_with_it() {
        use crate::model::{BucketName, ObjectKey};
        use crate::oss::ops::test_support::loopback::{Server, response};
        use std::time::{Duration, Instant};

        let server = Server::start(|_, _| response(204, &[], "")).await;
        let client = server.client();
        let upload = MultipartUploadId::new(
            BucketName::parse("examplebucket").unwrap(),
            ObjectKey::parse("k").unwrap(),
            "UP1",
        );
        // The call's deadline has already passed: the abort is still sent.
        let past = Instant::now();
        crate::oss::retry::with_deadline(past, abort_upload(&client, &upload)).await;
        assert_eq!(server.seen().len(), 1);
        assert_eq!(server.seen()[0].method, "DELETE");
        assert!(server.seen()[0].target.contains("uploadId=UP1"));

        // The waiting call is dropped at once: the abort still reaches OSS.
        let dropped = abort_upload(&client, &upload);
        {
            let mut dropped = Box::pin(dropped);
            // One poll starts the abort task, then the call goes away.
            let _ = futures_util::poll!(dropped.as_mut());
        }
        for _ in 0..100 {
            if server.seen().len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(server.seen().len(), 2);
    }

    /// An emulator with bucket `examplebucket`, and a client of it.
    async fn emulator() -> (crate::emulator::EmulatorHandle, Client) {
        use crate::emulator::{BucketSpec, EmulatorConfig};
        let (id, secret) = ("LTAI5tExampleKey", "ExampleSecret0123456789");
        let mut config = EmulatorConfig::new(id, secret);
        config.buckets = vec![BucketSpec {
            name: "examplebucket".into(),
            versioned: false,
        }];
        let emulator = crate::emulator::start(config).await.unwrap();
        let client = Client::new(crate::oss::ClientConfig {
            endpoint: emulator.endpoint(),
            region: "cn-hangzhou".into(),
            signature_version: crate::oss::sign::SignatureVersion::V4,
            addressing: crate::oss::Addressing::Auto,
            credentials: crate::oss::credentials::Credentials {
                access_key_id: id.into(),
                access_key_secret: secret.into(),
                security_token: None,
            },
            connect_timeout: std::time::Duration::from_secs(2),
            request_timeout: Some(std::time::Duration::from_secs(10)),
        })
        .unwrap();
        (emulator, client)
    }

    fn initiate_input(key: &str) -> InitiateMultipartUploadInput {
        use crate::model::{BucketName, ObjectKey};
        InitiateMultipartUploadInput::new(
            BucketName::parse("examplebucket").unwrap(),
            ObjectKey::parse(key).unwrap(),
        )
    }

    /// Waits (boundedly) until the emulator has received `aborts` aborts and holds no open
    /// upload; panics with what is left otherwise.
    async fn wait_for_aborts(emulator: &crate::emulator::EmulatorHandle, aborts: u64) {
        use crate::emulator::FaultOp;
        let faults = emulator.faults();
        for _ in 0..250 {
            if faults.count(FaultOp::AbortMultipartUpload) >= aborts
                && emulator.open_uploads().is_empty()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "open uploads {:?}, requests {:?}",
            emulator.open_uploads(),
            faults.counts()
        );
    }

    fn slow_initiate(emulator: &crate::emulator::EmulatorHandle, delay: Duration) {
        use crate::emulator::{Fault, FaultKind, FaultOp};
        emulator.faults().inject(Fault {
            op: FaultOp::InitiateMultipartUpload,
            kind: FaultKind::Delay(delay),
            times: 1,
        });
    }

    #[tokio::test]
    async fn an_initiate_answered_in_time_hands_the_upload_over_with_an_armed_guard() {
        let (emulator, client) = emulator().await;
        let later = Instant::now() + Duration::from_secs(30);
        let (out, guard) =
            crate::oss::retry::with_deadline(later, initiate_upload(&client, &initiate_input("a")))
                .await
                .unwrap();
        assert_eq!(out.upload.key.as_str(), "a");
        let open = emulator.open_uploads();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].2, out.upload.upload_id);
        // Whoever holds the upload and drops the guard armed gets it aborted.
        drop(guard);
        wait_for_aborts(&emulator, 1).await;

        // A failed Initiate is the caller's error, unchanged.
        let mut missing = initiate_input("b");
        missing.bucket = crate::model::BucketName::parse("no-such-bucket").unwrap();
        let err = initiate_upload(&client, &missing).await.err().unwrap();
        assert!(err.is_not_found(), "{err:?}");
    }

    #[tokio::test]
    async fn an_upload_initiated_after_the_deadline_is_aborted_not_orphaned() {
        let (emulator, client) = emulator().await;
        slow_initiate(&emulator, Duration::from_millis(400));
        let soon = Instant::now() + Duration::from_millis(50);
        let err = crate::oss::retry::with_deadline(
            soon,
            initiate_upload(&client, &initiate_input("late")),
        )
        .await
        .err()
        .unwrap();
        // The caller stops waiting at its deadline.
        assert_eq!(err.kind, OssErrorKind::Timeout, "{err:?}");
        // OSS creates the upload after the caller gave up; the detached Initiate (not cut
        // by the deadline) learns its id and aborts it.
        wait_for_aborts(&emulator, 1).await;
    }

    #[tokio::test]
    async fn an_upload_initiated_after_the_call_was_dropped_is_aborted_not_orphaned() {
        let (emulator, client) = emulator().await;
        slow_initiate(&emulator, Duration::from_millis(200));
        {
            let input = initiate_input("dropped");
            let mut call = Box::pin(initiate_upload(&client, &input));
            // One poll sends the Initiate, then the call goes away.
            assert!(futures_util::poll!(call.as_mut()).is_pending());
        }
        wait_for_aborts(&emulator, 1).await;
    }

    #[tokio::test]
    async fn a_shutdown_aborts_the_uploads_still_owned_and_counts_those_it_cannot() {
        let (emulator, client) = emulator().await;
        let owned = client.owned_uploads();
        let (done, mut completed) = initiate_upload(&client, &initiate_input("done"))
            .await
            .unwrap();
        let (stuck, _stuck_guard) = initiate_upload(&client, &initiate_input("stuck"))
            .await
            .unwrap();
        assert_eq!(owned.list().len(), 2);
        // A disarmed guard (its upload completed or handed over) is no longer owned.
        completed.disarm();
        assert_eq!(owned.list(), vec![stuck.upload.clone()]);
        // The call holding `stuck` never finishes: the shutdown aborts its upload.
        assert_eq!(owned.abort_all(&client, Duration::from_secs(5)).await, 0);
        let open: Vec<String> = emulator.open_uploads().into_iter().map(|u| u.2).collect();
        assert_eq!(open, vec![done.upload.upload_id.clone()]);
        assert!(owned.list().is_empty());

        // OSS is gone: the upload cannot be aborted, and is counted as left behind.
        let (gone, client) = self::emulator().await;
        let (_stranded, _stranded_guard) = initiate_upload(&client, &initiate_input("stranded"))
            .await
            .unwrap();
        gone.shutdown().await;
        let owned = client.owned_uploads();
        assert_eq!(owned.abort_all(&client, Duration::from_secs(5)).await, 1);
        assert!(owned.list().is_empty());
    }

    #[tokio::test]
    async fn once_the_shutdown_aborts_uploads_no_new_upload_starts() {
        let (emulator, client) = emulator().await;
        assert_eq!(
            client
                .owned_uploads()
                .abort_all(&client, Duration::from_secs(5))
                .await,
            0
        );
        let err = initiate_upload(&client, &initiate_input("late"))
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind, OssErrorKind::Cancelled, "{err:?}");
        assert!(emulator.open_uploads().is_empty());
        assert_eq!(
            emulator
                .faults()
                .count(crate::emulator::FaultOp::InitiateMultipartUpload),
            0
        );
    }

    #[test]
    fn the_budget_is_reserved_all_or_nothing_and_never_waited_for() {
        let budget = MemoryBudget::new(100);
        let mut first = budget.try_reserve(80).unwrap();
        assert_eq!((first.bytes(), budget.in_use()), (80, 80));
        // What does not fit is refused at once, and takes nothing.
        assert!(budget.try_reserve(40).is_none());
        assert_eq!(budget.in_use(), 80);
        first.merge(budget.try_reserve(20).unwrap());
        assert_eq!((first.bytes(), budget.in_use()), (100, 100));
        first.release(30);
        assert_eq!((first.bytes(), budget.in_use()), (70, 70));
        assert_eq!(budget.try_reserve(0).unwrap().bytes(), 0);
        drop(first);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn a_stream_is_admitted_with_two_parts_or_what_its_declared_size_needs() {
        const PART: u64 = 8 * MIB;
        let total = 192 * MIB as usize;
        assert_eq!(working_set(PART, None, total), 16 * MIB as usize);
        assert_eq!(working_set(PART, Some(3 * MIB), total), 3 * MIB as usize);
        assert_eq!(working_set(PART, Some(PART), total), PART as usize);
        assert_eq!(working_set(PART, Some(12 * MIB), total), 16 * MIB as usize);
        assert_eq!(
            working_set(PART, Some(1024 * MIB), total),
            16 * MIB as usize
        );
        // Parts grown past half the budget: the whole budget, one part at a time.
        assert_eq!(working_set(150 * MIB, None, total), total);
    }
}
