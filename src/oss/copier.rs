//! The copy engine: copies an object of any size, keeping its tags and metadata exactly as
//! the directives say.
//!
//! [`plan`] reads the source's HeadObject (the version asked for, else the current one) and
//! decides how it is copied: a source no larger than [`CopyOptions::multipart_threshold`],
//! an empty one, or a symlink (a copy of a symlink is a copy of the link; part copies would
//! read its target) with one CopyObject, anything larger with a multipart upload of
//! parallel UploadPartCopy. [`PlannedCopy::run`] then copies. Between the two the caller may
//! look at the destination as it is before the copy (the audit reads its tags there).
//!
//! A multipart copy runs as:
//!
//! 1. **Pin the source.** The HEAD [`plan`] made is the source's. Every UploadPartCopy
//!    names the version HEAD reported (versioned buckets), and every part also carries
//!    `x-oss-copy-source-if-match: <HEAD's ETag>` (unless the caller gave its own if-match),
//!    so a source overwritten mid-copy fails the copy (`Conflict`, code `SourceChanged`)
//!    instead of producing a destination stitched from two objects. The caller's own
//!    source conditions are checked against the HEAD first (`PreconditionFailed` before any
//!    upload exists) and sent with every part as well.
//! 2. **Resolve tags and metadata.** Under [`CopyTagging::Copy`] the source's tags are read
//!    with GetObjectTagging on the pinned version; under [`CopyMetadata::Copy`] its user
//!    metadata and content headers come from the HEAD. They go to InitiateMultipartUpload,
//!    whose `x-oss-tagging` header is percent-encoded by [`crate::model::TagSet`] (every
//!    allowed character, spaces and non-ASCII included). Without an explicit storage class
//!    the destination keeps the source's (as a single CopyObject does).
//! 3. **Copy the parts** `bytes=a-b` in parallel (at most `parallelism` at once). The part
//!    size is the configured one, grown by [`plan_copy_part_size`] so 10,000 parts always suffice.
//! 4. **Complete** (with the ACL and forbid-overwrite), then check OSS's CRC-64 of the
//!    result against the source's and the parts' combined CRC.
//! 5. **Reconcile tags.** Tags can change without changing the ETag, so under `Copy` the
//!    source's tags are read again after Complete; if they differ from what Initiate used,
//!    the destination (the exact version just created) gets the new set with
//!    PutObjectTagging and the output says [`CopyOutput::source_tags_changed`].
//!    The destination therefore ends with the source's tags as they were when the copy
//!    finished, not as they were minutes earlier.
//!
//! **Retries.** The client already retries retryable failures of one request (3 attempts,
//! 100 ms / 400 ms). A copy of many parts runs for minutes, long enough for a brief outage
//! to outlast that, so each part gets up to [`CopyOptions::part_attempts`] rounds of those
//! attempts, with exponential backoff and jitter between rounds. UploadPartCopy is
//! idempotent (re-copying a part number replaces it). Only retryable failures (throttling,
//! 5xx, transport errors, timeouts) are retried; a 4xx ends the copy at once.
//!
//! **Failure and cancellation.** Any failure stops the parts in flight and aborts the
//! upload before returning; if the copy's future is dropped (the gRPC caller went away), an
//! [`AbortOnDrop`](super::upload::AbortOnDrop) guard aborts it in the background. The
//! Initiate itself runs detached ([`initiate_upload`]), so an upload that OSS creates after
//! the caller went away is aborted too. Nothing is left behind either way, unless the abort
//! itself fails (OSS unreachable): then a WARN line names the upload (see
//! [`abort_upload`](super::upload::abort_upload)).
//!
//! **Progress** is reported as `tracing` INFO events, target `ossgate::oss::copier`: one when
//! the copy starts (`copy started`: size, part size, parts), one each time another tenth of
//! the parts is done (`copy progress`: parts done/total, bytes done/total, percent), and one
//! at the end (`copy finished`).

use crate::oss::protocol::limit::{MAX_PART_BYTES, MAX_PART_NUMBER, MIN_PART_BYTES};
use std::time::Duration;

use tokio::task::JoinSet;
use tracing::{info, warn};

use super::upload::{abort_upload, initiate_upload};
use super::{
    ByteRange, Client, CompleteMultipartUploadInput, CompleteParts, CompletedPart, CopyMetadata,
    CopyObjectInput, CopySource, CopySourceConditions, CopyTagging, InitiateMultipartUploadInput,
    MultipartUploadId, ObjectAttributes, ObjectHead, ObjectId, OssError, OssErrorKind,
    PutObjectTaggingInput, UploadPartCopyInput,
};
use crate::model::{ObjectType, TagSet, VersionId, crc64_combine};

/// How copies run.
#[derive(Clone, Debug)]
pub struct CopyOptions {
    /// Sources larger than this are copied part by part; others with one CopyObject.
    pub multipart_threshold: u64,
    /// Bytes per part before planning (grown so the source fits in 10,000 parts).
    pub part_size: u64,
    /// Parts copied at the same time.
    pub parallelism: usize,
    /// Rounds of client attempts per part (1 = no retry beyond the client's own).
    pub part_attempts: u32,
    /// Backoff before the second round; doubled for each further round, jittered (a random delay between half of it and all of it).
    pub retry_base: Duration,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            multipart_threshold: 1024 * 1024 * 1024,
            part_size: 64 * 1024 * 1024,
            parallelism: 8,
            part_attempts: 3,
            retry_base: Duration::from_millis(500),
        }
    }
}

/// A copy whose source has been read, and how it will be copied (see [`plan`]).
#[derive(Clone, Debug)]
pub struct PlannedCopy {
    input: CopyObjectInput,
    head: ObjectHead,
    multipart: bool,
    options: CopyOptions,
}

/// Reads the source's HeadObject and decides how `input` is copied (see the module
/// documentation). `input.storage_class` `None` keeps the source's; a multipart copy sends
/// `input.conditions` with every part, and checks its forbid-overwrite at Initiate and
/// Complete.
pub async fn plan(
    client: &Client,
    input: CopyObjectInput,
    options: &CopyOptions,
) -> Result<PlannedCopy, OssError> {
    let source = ObjectId::new(input.source.bucket.clone(), input.source.key.clone())
        .with_version(input.source.version_id.clone());
    let head = client.head_object(&source).await?;
    let multipart = head.size > options.multipart_threshold
        && head.size > 0
        && head.object_type != Some(ObjectType::Symlink);
    Ok(PlannedCopy {
        input,
        head,
        multipart,
        options: options.clone(),
    })
}

impl PlannedCopy {
    /// The copy's destination (its current version).
    pub fn destination(&self) -> ObjectId {
        ObjectId::new(self.input.bucket.clone(), self.input.key.clone())
    }

    /// The source as copied: the version HEAD reported (the one the copy is pinned to), or
    /// the version asked for.
    pub fn source(&self) -> ObjectId {
        let source = &self.input.source;
        ObjectId::new(source.bucket.clone(), source.key.clone()).with_version(
            self.head
                .version_id
                .clone()
                .or_else(|| source.version_id.clone()),
        )
    }

    /// Copies the source: with one CopyObject, or part by part.
    pub async fn run(self, client: &Client) -> Result<CopyOutput, OssError> {
        if self.multipart {
            return copy_multipart(client, &self.input, &self.head, &self.options).await;
        }
        let out = client.copy_object(&self.input).await?;
        Ok(CopyOutput {
            etag: out.etag,
            version_id: out.version_id,
            source_version_id: out.source_version_id.or(self.head.version_id),
            crc64: out.crc64,
            size: self.head.size,
            parts: 0,
            source_tags_changed: false,
            request_id: out.request_id,
        })
    }
}

/// What a copy produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyOutput {
    /// ETag of the destination.
    pub etag: Option<String>,
    /// The destination's new version (versioned buckets).
    pub version_id: Option<VersionId>,
    /// The source version that was copied (versioned buckets).
    pub source_version_id: Option<VersionId>,
    /// CRC-64 of the destination as OSS reported it (else the parts' combined CRC, if known).
    pub crc64: Option<u64>,
    /// Bytes copied.
    pub size: u64,
    /// Parts used (0: one CopyObject).
    pub parts: u32,
    /// Under [`CopyTagging::Copy`]: the source's tags changed during the copy and the
    /// destination was given the new set.
    pub source_tags_changed: bool,
    /// `x-oss-request-id` of the request that created the destination (the CopyObject, or
    /// the CompleteMultipartUpload).
    pub request_id: Option<String>,
}

/// The part size for a `size`-byte source: `configured`, grown (to whole MiB) only when
/// 10,000 parts of it would not hold the source; within OSS's 100 KiB ..= 5 GiB.
pub fn plan_copy_part_size(size: u64, configured: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    let needed = size.div_ceil(u64::from(MAX_PART_NUMBER));
    let part = if needed > configured {
        needed.div_ceil(MIB).saturating_mul(MIB)
    } else {
        configured
    };
    part.clamp(MIN_PART_BYTES, MAX_PART_BYTES)
}

/// Whether `etag` is named by an `If-Match`-style list (`*`, quoted or bare, `W/` ignored).
fn etag_listed(list: &str, etag: &str) -> bool {
    let bare = |t: &str| {
        t.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_string()
    };
    let etag = bare(etag);
    list.split(',')
        .map(bare)
        .any(|t| t == "*" || t.eq_ignore_ascii_case(&etag))
}

/// Checks the caller's source conditions against the source's HEAD (before any upload
/// exists); the same conditions are sent with every part too.
fn check_conditions(conditions: &CopySourceConditions, head: &ObjectHead) -> Result<(), OssError> {
    let failed = |what: &str| {
        Err(OssError {
            code: "PreconditionFailed".into(),
            ..OssError::client(
                OssErrorKind::PreconditionFailed,
                format!("the copy source does not satisfy {what}"),
            )
        })
    };
    let secs = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    if let (Some(list), Some(etag)) = (&conditions.if_match, &head.etag)
        && !etag_listed(list, etag)
    {
        return failed("if-match");
    }
    if let (Some(list), Some(etag)) = (&conditions.if_none_match, &head.etag)
        && etag_listed(list, etag)
    {
        return failed("if-none-match");
    }
    if let Some(modified) = head.last_modified.map(secs) {
        if let Some(since) = conditions.if_modified_since.map(secs)
            && modified <= since
        {
            return failed("if-modified-since");
        }
        if let Some(since) = conditions.if_unmodified_since.map(secs)
            && modified > since
        {
            return failed("if-unmodified-since");
        }
    }
    Ok(())
}

/// Where each part of a `size`-byte source starts and ends (inclusive), for parts of
/// `part_size` bytes (the last may be shorter). Empty for an empty source.
pub fn part_ranges(size: u64, part_size: u64) -> Vec<(u64, u64)> {
    let part_size = part_size.max(1);
    let mut ranges = Vec::new();
    let mut start = 0;
    while start < size {
        let end = start.saturating_add(part_size).min(size) - 1;
        ranges.push((start, end));
        start = end + 1;
    }
    ranges
}

/// Whether another round of attempts may help a failed part.
fn worth_retrying(err: &OssError) -> bool {
    err.retryable || matches!(err.kind, OssErrorKind::Timeout | OssErrorKind::Transport)
}

/// The backoff before round `round + 1` (round >= 1): `base * 2^(round-1)`, jittered (a random delay between half of it and all of it).
fn backoff(base: Duration, round: u32) -> Duration {
    let ceiling = base.saturating_mul(2u32.saturating_pow(round.saturating_sub(1).min(16)));
    let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::random_range(ms / 2..=ms.max(1)))
}

/// The source's tags as a validated set (what Initiate and PutObjectTagging need).
async fn source_tags(client: &Client, source: &ObjectId) -> Result<TagSet, OssError> {
    let out = client.get_object_tagging(source).await?;
    TagSet::from_pairs(out.tags).map_err(|violations| {
        let why = violations
            .into_iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect::<Vec<_>>()
            .join("; ");
        OssError::client(
            OssErrorKind::InvalidResponse,
            format!("the source's tags cannot be copied: {why}"),
        )
    })
}

/// One copied part.
struct CopiedPart {
    part_number: u32,
    etag: String,
    size: u64,
    crc64: Option<u64>,
}

/// The metric label of UploadPartCopy (`OssOperation::metric_label`), so a
/// part-copy round is counted under the same operation as its HTTP attempts.
const PART_COPY_OPERATION: &str = "PUT ?partNumber";

/// Copies one part, with rounds of retries for retryable failures.
async fn copy_part(
    client: Client,
    input: UploadPartCopyInput,
    size: u64,
    options: CopyOptions,
) -> Result<CopiedPart, OssError> {
    let mut round = 1;
    loop {
        match client.upload_part_copy(&input).await {
            Ok(out) => {
                return Ok(CopiedPart {
                    part_number: input.part_number,
                    etag: out.etag,
                    size,
                    crc64: out.crc64,
                });
            }
            Err(err)
                if worth_retrying(&err)
                    && round < options.part_attempts
                    && client.allow_retry(PART_COPY_OPERATION, &err) =>
            {
                crate::telemetry::metrics().record_retry(PART_COPY_OPERATION);
                let delay = backoff(options.retry_base, round);
                warn!(
                    part_number = input.part_number,
                    round,
                    delay_ms = delay.as_millis() as u64,
                    error = %err,
                    "part copy failed; retrying"
                );
                tokio::time::sleep(delay).await;
                round += 1;
            }
            Err(err) => return Err(err),
        }
    }
}

/// Copies `request.source` (whose HeadObject is `head`: a non-empty object that is not a
/// symlink, as [`plan`] decided) with a multipart upload.
async fn copy_multipart(
    client: &Client,
    request: &CopyObjectInput,
    head: &ObjectHead,
    options: &CopyOptions,
) -> Result<CopyOutput, OssError> {
    let mut source = request.source.clone();
    if source.version_id.is_none() {
        source.version_id = head.version_id.clone();
    }
    let pinned = ObjectId::new(source.bucket.clone(), source.key.clone())
        .with_version(source.version_id.clone());
    check_conditions(&request.conditions, head)?;
    let mut conditions = request.conditions.clone();
    if conditions.if_match.is_none() {
        conditions.if_match = head.etag.clone();
    }

    let initial_tags = match &request.tagging {
        CopyTagging::Copy => source_tags(client, &pinned).await?,
        CopyTagging::Replace(tags) => tags.clone(),
    };
    let (metadata, content) = match &request.metadata {
        CopyMetadata::Copy => (head.metadata.clone(), head.content.clone()),
        CopyMetadata::Replace { metadata, content } => (metadata.clone(), content.clone()),
    };
    let part_size = plan_copy_part_size(head.size, options.part_size);
    let ranges = part_ranges(head.size, part_size);
    if ranges.len() as u64 > u64::from(MAX_PART_NUMBER) {
        return Err(OssError::invalid_argument(format!(
            "{} bytes need more than {MAX_PART_NUMBER} parts",
            head.size
        )));
    }

    // The guard aborts the upload if the copy's future is dropped, even one dropped while
    // the Initiate was still on its way.
    let (initiated, mut guard) = initiate_upload(
        client,
        &InitiateMultipartUploadInput {
            bucket: request.bucket.clone(),
            key: request.key.clone(),
            attributes: ObjectAttributes {
                content,
                metadata,
                tags: initial_tags.clone(),
                storage_class: request.storage_class.or(head.storage_class),
                // Set at completion (`complete.acl`), where OSS documents it.
                acl: None,
                forbid_overwrite: request.forbid_overwrite,
            },
        },
    )
    .await?;
    let upload = initiated.upload;
    info!(
        source_bucket = %source.bucket,
        source_key = %source.key,
        bucket = %upload.bucket,
        key = %upload.key,
        size = head.size,
        part_size,
        parts = ranges.len(),
        "copy started"
    );

    let result = copy_parts(client, &upload, &source, &conditions, &ranges, options).await;
    let parts = match result {
        Ok(parts) => parts,
        Err(err) => {
            abort_upload(client, &upload).await;
            guard.disarm();
            return Err(source_changed(err));
        }
    };

    let combined_crc = parts.iter().try_fold(0u64, |crc, p| {
        p.crc64.map(|c| crc64_combine(crc, c, p.size))
    });
    let completed: Vec<CompletedPart> = parts
        .iter()
        .map(|p| CompletedPart {
            part_number: p.part_number,
            etag: p.etag.clone(),
        })
        .collect();
    let mut complete =
        CompleteMultipartUploadInput::new(upload.clone(), CompleteParts::List(completed));
    complete.acl = request.acl;
    complete.forbid_overwrite = request.forbid_overwrite;
    let out = match client.complete_multipart_upload(&complete).await {
        Ok(out) => out,
        Err(err) => {
            abort_upload(client, &upload).await;
            guard.disarm();
            return Err(err);
        }
    };
    guard.disarm();

    let expected_crc = head.crc64.or(combined_crc);
    if let (Some(stored), Some(expected)) = (out.crc64, expected_crc)
        && stored != expected
    {
        return Err(OssError::client(
            OssErrorKind::ChecksumMismatch,
            format!(
                "OSS reports CRC-64 {stored} for the copy of {}/{}, the source's is {expected}",
                source.bucket, source.key
            ),
        ));
    }

    let mut source_tags_changed = false;
    if request.tagging == CopyTagging::Copy {
        let now = source_tags(client, &pinned).await?;
        if now != initial_tags {
            let mut put = PutObjectTaggingInput::new(
                request.bucket.clone(),
                request.key.clone(),
                now.clone(),
            );
            put.version_id = out.version_id.clone();
            client.put_object_tagging(&put).await?;
            source_tags_changed = true;
            info!(
                bucket = %request.bucket,
                key = %request.key,
                tags = now.len(),
                "the source's tags changed during the copy; the destination has the new set"
            );
        }
    }

    info!(
        bucket = %request.bucket,
        key = %request.key,
        size = head.size,
        parts = parts.len(),
        source_tags_changed,
        "copy finished"
    );
    Ok(CopyOutput {
        etag: out.etag,
        version_id: out.version_id,
        source_version_id: source.version_id,
        crc64: out.crc64.or(combined_crc),
        size: head.size,
        parts: parts.len() as u32,
        source_tags_changed,
        request_id: out.request_id,
    })
}

/// The caller's conditions held at HEAD time and every part is pinned to HEAD's ETag, so a
/// precondition failure on a part means the source was overwritten during the copy.
fn source_changed(err: OssError) -> OssError {
    if err.kind == OssErrorKind::PreconditionFailed {
        OssError {
            kind: OssErrorKind::Conflict,
            code: "SourceChanged".into(),
            message: format!(
                "the source object changed while it was being copied ({}); retry the copy",
                err.message
            ),
            retryable: false,
            ..err
        }
    } else {
        err
    }
}

/// Copies every range as a part, `options.parallelism` at a time; the parts sorted by number.
async fn copy_parts(
    client: &Client,
    upload: &MultipartUploadId,
    source: &CopySource,
    conditions: &CopySourceConditions,
    ranges: &[(u64, u64)],
    options: &CopyOptions,
) -> Result<Vec<CopiedPart>, OssError> {
    let total = ranges.len();
    let total_bytes: u64 = ranges.iter().map(|(a, b)| b - a + 1).sum();
    let report_every = total.div_ceil(10).max(1);
    let parallelism = options.parallelism.max(1);
    let mut in_flight: JoinSet<Result<CopiedPart, OssError>> = JoinSet::new();
    let mut done: Vec<CopiedPart> = Vec::with_capacity(total);
    let mut done_bytes = 0u64;
    let mut next = ranges.iter().enumerate();
    loop {
        while in_flight.len() < parallelism {
            let Some((i, &(start, end))) = next.next() else {
                break;
            };
            let part_number = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let input = UploadPartCopyInput {
                upload: upload.clone(),
                part_number,
                source: source.clone(),
                range: Some(ByteRange {
                    start,
                    end: Some(end),
                }),
                conditions: conditions.clone(),
            };
            in_flight.spawn(tracing::Instrument::in_current_span(copy_part(
                client.clone(),
                input,
                end - start + 1,
                options.clone(),
            )));
        }
        let Some(joined) = in_flight.join_next().await else {
            break;
        };
        let part = match joined {
            Ok(Ok(part)) => part,
            Ok(Err(err)) => {
                in_flight.abort_all();
                while in_flight.join_next().await.is_some() {}
                return Err(err);
            }
            Err(join) => {
                in_flight.abort_all();
                while in_flight.join_next().await.is_some() {}
                return Err(OssError::client(
                    OssErrorKind::Other,
                    format!("a part copy task failed: {join}"),
                ));
            }
        };
        done_bytes += part.size;
        done.push(part);
        if done.len().is_multiple_of(report_every) || done.len() == total {
            info!(
                key = %upload.key,
                parts_done = done.len(),
                parts_total = total,
                bytes_done = done_bytes,
                bytes_total = total_bytes,
                percent = (done_bytes as f64 * 100.0 / total_bytes.max(1) as f64).round() as u64,
                "copy progress"
            );
        }
    }
    done.sort_by_key(|p| p.part_number);
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserMetadata;
    use crate::oss::ContentHeaders;

    #[test]
    fn part_copy_rounds_use_the_label_of_their_http_attempts() {
        assert_eq!(
            PART_COPY_OPERATION,
            crate::oss::OssOperation::UploadPartCopy.metric_label()
        );
    }

    #[test]
    fn ranges_cover_the_source_exactly() {
        assert!(part_ranges(0, 10).is_empty());
        assert_eq!(part_ranges(1, 10), vec![(0, 0)]);
        assert_eq!(part_ranges(10, 10), vec![(0, 9)]);
        assert_eq!(part_ranges(25, 10), vec![(0, 9), (10, 19), (20, 24)]);
        assert_eq!(part_ranges(3, 0), vec![(0, 0), (1, 1), (2, 2)]);
        for (size, part) in [(1u64, 1u64), (100, 7), (1 << 30, 64 << 20), (12345, 12345)] {
            let ranges = part_ranges(size, part);
            assert_eq!(ranges.first().map(|r| r.0), Some(0));
            assert_eq!(ranges.last().map(|r| r.1), Some(size - 1));
            for w in ranges.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0);
            }
            assert!(ranges.iter().all(|(a, b)| b - a < part));
        }
    }

    #[test]
    fn huge_sources_fit_in_10000_parts() {
        let size = 48u64 << 40; // 48 TiB
        let part = plan_copy_part_size(size, 64 << 20);
        assert!(part_ranges(size, part).len() as u64 <= u64::from(MAX_PART_NUMBER));
    }

    #[test]
    fn backoff_is_jittered_and_grows() {
        let base = Duration::from_millis(100);
        for _ in 0..50 {
            let first = backoff(base, 1);
            assert!(first >= Duration::from_millis(50) && first <= base);
            let third = backoff(base, 3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
        }
        // Absurd rounds neither overflow nor panic.
        let _ = backoff(Duration::from_secs(u64::MAX / 4), u32::MAX);
        let _ = backoff(Duration::ZERO, 1);
    }

    #[test]
    fn retry_classes() {
        assert!(worth_retrying(&OssError::client(
            OssErrorKind::Timeout,
            "t"
        )));
        assert!(worth_retrying(&OssError::client(
            OssErrorKind::Transport,
            "t"
        )));
        assert!(!worth_retrying(&OssError::invalid_argument("bad")));
    }

    #[test]
    fn precondition_failures_on_an_etag_pin_mean_the_source_changed() {
        let failed = || OssError {
            kind: OssErrorKind::PreconditionFailed,
            code: "PreconditionFailed".into(),
            ..OssError::client(OssErrorKind::PreconditionFailed, "412")
        };
        let err = source_changed(failed());
        assert_eq!(err.kind, OssErrorKind::Conflict);
        assert_eq!(err.code, "SourceChanged");
        let other = source_changed(OssError::invalid_argument("x"));
        assert_eq!(other.kind, OssErrorKind::InvalidArgument);
    }

    #[test]
    fn part_size_is_the_configured_one_unless_too_small() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(plan_copy_part_size(700 * 1024, 100 * 1024), 100 * 1024);
        assert_eq!(plan_copy_part_size(3 << 30, 64 * MIB), 64 * MIB);
        // 1 TiB needs 104.9 MiB parts: rounded up to 105 MiB.
        assert_eq!(plan_copy_part_size(1 << 40, 64 * MIB), 105 * MIB);
        assert_eq!(plan_copy_part_size(10, 1), MIN_PART_BYTES);
        assert_eq!(plan_copy_part_size(u64::MAX, 64 * MIB), MAX_PART_BYTES);
    }

    #[test]
    fn conditions_are_checked_against_the_head() {
        use std::time::{Duration, UNIX_EPOCH};
        let head = ObjectHead {
            size: 1,
            etag: Some("\"ABC\"".into()),
            crc64: None,
            object_type: None,
            storage_class: None,
            metadata: UserMetadata::empty(),
            tag_count: 0,
            version_id: None,
            last_modified: Some(UNIX_EPOCH + Duration::from_secs(1000)),
            content: ContentHeaders::default(),
            next_append_position: None,
            request_id: None,
        };
        let check = |c: CopySourceConditions| check_conditions(&c, &head).is_ok();
        let at = |s: u64| Some(UNIX_EPOCH + Duration::from_secs(s));
        assert!(check(CopySourceConditions::default()));
        for (list, ok) in [
            ("\"abc\"", true),
            ("ABC", true),
            ("*", true),
            ("\"x\", W/\"ABC\"", true),
            ("\"x\"", false),
        ] {
            assert_eq!(
                check(CopySourceConditions {
                    if_match: Some(list.into()),
                    ..Default::default()
                }),
                ok,
                "{list}"
            );
            assert_eq!(
                check(CopySourceConditions {
                    if_none_match: Some(list.into()),
                    ..Default::default()
                }),
                !ok,
                "{list}"
            );
        }
        assert!(check(CopySourceConditions {
            if_modified_since: at(999),
            ..Default::default()
        }));
        assert!(!check(CopySourceConditions {
            if_modified_since: at(1000),
            ..Default::default()
        }));
        assert!(check(CopySourceConditions {
            if_unmodified_since: at(1000),
            ..Default::default()
        }));
        assert!(!check(CopySourceConditions {
            if_unmodified_since: at(999),
            ..Default::default()
        }));
    }
}
