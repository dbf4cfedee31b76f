//! ListMultipartUploads and AbortMultipartUpload: finding and cleaning up multipart uploads
//! that were left behind (a process killed mid-write, OSS unreachable when an abort was due;
//! the gateway logs each one it could not abort, with its UploadId).

use crate::oss::protocol::limit::MAX_LIST_PAGE;
use tonic::Status;
use tracing::info;

use super::{
    convert::{storage_class_to_proto, timestamp},
    status::oss_status,
    validate::Validation,
};
use crate::{
    oss::{Client, ListMultipartUploadsInput, MultipartUploadId},
    proto,
};

/// The longest upload ID or marker accepted (OSS's are 32 hex digits).
const MAX_UPLOAD_ID_BYTES: usize = 256;

/// Checks an upload ID (or marker): visible ASCII, at most [`MAX_UPLOAD_ID_BYTES`]; empty
/// only when `optional`.
fn upload_id(v: &mut Validation, field: &str, value: &str, optional: bool) -> Option<String> {
    if value.is_empty() && !optional {
        v.violation(field, "is required");
        return None;
    }
    if value.len() > MAX_UPLOAD_ID_BYTES || !value.bytes().all(|b| b.is_ascii_graphic()) {
        v.violation(
            field,
            format!("must be at most {MAX_UPLOAD_ID_BYTES} visible ASCII characters"),
        );
        return None;
    }
    Some(value.to_string())
}

/// An optional key-shaped field (a prefix or a key marker): empty, or a valid key.
fn optional_key(v: &mut Validation, field: &str, value: &str) -> Option<Option<String>> {
    if value.is_empty() {
        return Some(None);
    }
    v.key(field, value).map(|key| Some(key.to_string()))
}

/// ListMultipartUploads: one page of a bucket's unfinished uploads under `prefix` (the
/// caller's `read` on the prefix is checked by the service).
pub async fn list(
    client: &Client,
    req: proto::ListMultipartUploadsRequest,
) -> Result<proto::ListMultipartUploadsResponse, Status> {
    let mut v = Validation::new();
    let bucket = v.bucket("bucket", &req.bucket);
    let prefix = optional_key(&mut v, "prefix", &req.prefix);
    let key_marker = optional_key(&mut v, "key_marker", &req.key_marker);
    let upload_id_marker = upload_id(&mut v, "upload_id_marker", &req.upload_id_marker, true);
    let max_uploads = match u32::try_from(req.max_uploads) {
        Ok(0) => Some(MAX_LIST_PAGE),
        Ok(n) if n <= MAX_LIST_PAGE => Some(n),
        _ => {
            v.violation(
                "max_uploads",
                format!(
                    "{} is outside 1..={MAX_LIST_PAGE} (0 means {MAX_LIST_PAGE})",
                    req.max_uploads
                ),
            );
            None
        }
    };
    let input = v.conclude((|| {
        Some(ListMultipartUploadsInput {
            bucket: bucket?,
            prefix: prefix?,
            key_marker: key_marker?,
            upload_id_marker: Some(upload_id_marker?).filter(|m| !m.is_empty()),
            max_uploads: Some(max_uploads?),
        })
    })())?;
    let page = client
        .list_multipart_uploads(&input)
        .await
        .map_err(oss_status)?;
    Ok(proto::ListMultipartUploadsResponse {
        uploads: page
            .uploads
            .into_iter()
            .map(|upload| proto::MultipartUpload {
                key: upload.key,
                upload_id: upload.upload_id,
                initiated: upload.initiated.map(timestamp),
                storage_class: storage_class_to_proto(upload.storage_class).into(),
            })
            .collect(),
        is_truncated: page.is_truncated,
        next_key_marker: page.next_key_marker.unwrap_or_default(),
        next_upload_id_marker: page.next_upload_id_marker.unwrap_or_default(),
    })
}

/// AbortMultipartUpload (the caller's `write` on the key is checked by the service). An
/// upload OSS does not know is NOT_FOUND, so a caller can tell "aborted now" from "was not
/// there".
pub async fn abort(
    client: &Client,
    req: proto::AbortMultipartUploadRequest,
) -> Result<proto::AbortMultipartUploadResponse, Status> {
    let mut v = Validation::new();
    let bucket = v.bucket("bucket", &req.bucket);
    let key = v.key("key", &req.key);
    let id = upload_id(&mut v, "upload_id", &req.upload_id, false);
    let upload = v.conclude((|| Some(MultipartUploadId::new(bucket?, key?, id?)))())?;
    client
        .abort_multipart_upload(&upload)
        .await
        .map_err(oss_status)?;
    info!(
        bucket = %upload.bucket,
        key = %upload.key,
        upload_id = %upload.upload_id,
        "multipart upload aborted on request"
    );
    Ok(proto::AbortMultipartUploadResponse {})
}
