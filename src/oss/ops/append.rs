//! AppendObject (docs/oss-protocol.md, "AppendObject").

use bytes::Bytes;
use http::HeaderMap;

use super::{ObjectAttributes, OssOperation, OssRequest, Payload, Resp};
use crate::model::{BucketName, ObjectKey, VersionId, crc64_combine};
use crate::oss::client::{BoxError, Client};
use crate::oss::error::{OssError, OssErrorKind};
use crate::oss::protocol::header;
use crate::oss::protocol::query;

/// Input of AppendObject: `body` is appended at `position`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendObjectInput {
    /// The bucket.
    pub bucket: BucketName,
    /// The object key.
    pub key: ObjectKey,
    /// Where the bytes go: 0 creates the object, later appends use the
    /// current length (the previous `next_position`).
    pub position: u64,
    /// The bytes to append.
    pub body: Bytes,
    /// MD5 of `body`, sent as `Content-MD5`.
    pub content_md5: Option<[u8; 16]>,
    /// CRC-64 of the object before this append (0 or `None` at position 0):
    /// with it the whole-object CRC OSS returns is checked. `None` at a
    /// later position = not checked.
    pub previous_crc64: Option<u64>,
    /// What the object gets; OSS applies it when the append creates the object.
    /// `forbid_overwrite` is not sent: AppendObject has no such header (an append at
    /// position 0 onto an existing object already fails by its position).
    pub attributes: ObjectAttributes,
}

impl AppendObjectInput {
    /// Appends `body` at `position` with no options.
    pub fn new(bucket: BucketName, key: ObjectKey, position: u64, body: Bytes) -> Self {
        AppendObjectInput {
            bucket,
            key,
            position,
            body,
            content_md5: None,
            previous_crc64: None,
            attributes: ObjectAttributes::default(),
        }
    }
}

/// Result of AppendObject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendObjectOutput {
    /// `x-oss-next-append-position`: the object's new length.
    pub next_position: u64,
    /// `x-oss-hash-crc64ecma`: CRC-64 of the whole object after this append.
    pub crc64: Option<u64>,
    /// CRC-64/XZ of the bytes this call appended.
    pub sent_crc64: u64,
    /// `x-oss-version-id` (versioned buckets).
    pub version_id: Option<VersionId>,
    /// `x-oss-request-id`.
    pub request_id: Option<String>,
}

/// Builds `POST /{key}?append&position={n}`. The body is sent once (the
/// request is not replayable: a lost response may hide a stored append).
pub fn build_append_object(input: &AppendObjectInput) -> OssRequest {
    let mut req = OssRequest::new(OssOperation::AppendObject, &input.bucket, Some(&input.key));
    req.query_set(query::APPEND, "");
    req.query_set(query::POSITION, input.position.to_string());
    input.attributes.push_without_forbid_overwrite(&mut req);
    if let Some(md5) = &input.content_md5 {
        use base64::Engine as _;
        req.header_set(
            "content-md5",
            base64::engine::general_purpose::STANDARD.encode(md5),
        );
    }
    req.header_set("content-length", input.body.len().to_string());
    req.payload = Payload::Stream;
    req
}

/// Parses an AppendObject success and checks it against what was sent:
/// `next_position` must be `position + sent_bytes`, and with a known
/// previous CRC the whole-object CRC must match (`ChecksumMismatch`).
pub fn parse_append_object(
    input: &AppendObjectInput,
    status: u16,
    headers: &HeaderMap,
    sent_bytes: u64,
    sent_crc64: u64,
) -> Result<AppendObjectOutput, OssError> {
    let r = Resp::new(status, headers);
    let next_position = r
        .u64(header::NEXT_APPEND_POSITION)?
        .ok_or_else(|| r.invalid("AppendObject response without x-oss-next-append-position"))?;
    let expected_next = input.position.checked_add(sent_bytes);
    if expected_next != Some(next_position) {
        return Err(r.invalid(format!(
            "OSS reports next append position {next_position} after appending {sent_bytes} bytes at {}",
            input.position
        )));
    }
    let crc = r.crc64()?;
    let previous = if input.position == 0 {
        Some(0)
    } else {
        input.previous_crc64
    };
    if let (Some(server), Some(previous)) = (crc, previous) {
        let expected = crc64_combine(previous, sent_crc64, sent_bytes);
        if server != expected {
            return Err(OssError {
                http_status: Some(status),
                request_id: r.request_id(),
                ..OssError::client(
                    OssErrorKind::ChecksumMismatch,
                    format!(
                        "OSS reports CRC-64 {server} for the object after the append, expected {expected}"
                    ),
                )
            });
        }
    }
    Ok(AppendObjectOutput {
        next_position,
        crc64: crc,
        sent_crc64,
        version_id: r.version_id()?,
        request_id: r.request_id(),
    })
}

impl Client {
    /// AppendObject: appends `input.body` at `input.position`. Never retried.
    /// When the position is not the object's length OSS answers
    /// `PositionNotEqualToLength` (kind `PreconditionFailed`); the error's
    /// [`OssError::next_append_position`] then holds the position to use.
    pub async fn append_object(
        &self,
        input: &AppendObjectInput,
    ) -> Result<AppendObjectOutput, OssError> {
        let req = build_append_object(input);
        let body = futures_util::stream::iter([Ok::<Bytes, BoxError>(input.body.clone())]);
        let (resp, sent) = self
            .send_stream(&req, Some(input.body.len() as u64), Box::pin(body))
            .await?;
        parse_append_object(
            input,
            resp.status().as_u16(),
            resp.headers(),
            sent.bytes,
            sent.crc64,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::capture_sign::signature;
    use super::super::test_support::*;
    use crate::model::{ObjectAcl, StorageClass, TagSet, UserMetadata};
    use http::Method;

    use super::*;
    use crate::model::crc64;
    use crate::oss::sign::SignatureVersion::{V1, V4};

    #[test]
    fn append_matches_both_captures() {
        // CAP pyv2-v4-AppendObject.http / oss2-v4-AppendObject.http: same signature
        let mut input = AppendObjectInput::new(
            bucket(),
            key("logs/app.log"),
            1024,
            Bytes::from_static(b"line 2\n"),
        );
        input.attributes.content.content_type = Some("text/plain".into());
        let req = build_append_object(&input);
        assert_eq!(req.method, Method::POST);
        assert_eq!(
            req.query,
            vec![
                ("append".to_string(), String::new()),
                ("position".to_string(), "1024".to_string())
            ]
        );
        assert_eq!(
            sorted(&req),
            owned(&[("content-length", "7"), ("content-type", "text/plain")])
        );
        assert_eq!(req.payload, Payload::Stream);
        assert!(!req.is_replayable(), "AppendObject must never be retried");
        assert_eq!(
            signature(&req, V4),
            "02e684748809a92046190c55cd3c0116912cc737bcb0ece2eec0c76a871db124"
        );
        assert_eq!(signature(&req, V1), "s2Dd25TFdiTLnbGSDGlDmSIyRXY=");
    }

    #[test]
    fn first_append_headers() {
        let mut input = AppendObjectInput::new(bucket(), key("k"), 0, Bytes::from_static(b"x"));
        input.attributes.metadata = UserMetadata::from_pairs([("a", "b")]).unwrap();
        input.attributes.tags = TagSet::from_pairs([("t", "v w")]).unwrap();
        input.attributes.storage_class = Some(StorageClass::Ia);
        input.attributes.acl = Some(ObjectAcl::Private);
        input.attributes.content.cache_control = Some("no-cache".into());
        input.content_md5 = Some([0u8; 16]);
        let req = build_append_object(&input);
        assert_eq!(req.query_param("position"), Some("0"));
        assert_eq!(
            sorted(&req),
            owned(&[
                ("cache-control", "no-cache"),
                ("content-length", "1"),
                ("content-md5", "AAAAAAAAAAAAAAAAAAAAAA=="),
                ("x-oss-meta-a", "b"),
                ("x-oss-object-acl", "private"),
                ("x-oss-storage-class", "IA"),
                ("x-oss-tagging", "t=v%20w"),
            ])
        );
    }

    #[test]
    fn append_result_checks_position_and_crc() {
        let first = b"hello ";
        let second = b"world";
        let whole = crc64(b"hello world");
        let mut input = AppendObjectInput::new(bucket(), key("k"), 6, Bytes::from_static(second));
        input.previous_crc64 = Some(crc64(first));
        let ok = headers(&[
            ("x-oss-next-append-position", "11"),
            ("x-oss-hash-crc64ecma", &whole.to_string()),
            ("x-oss-version-id", "V"),
            ("x-oss-request-id", "R"),
        ]);
        let out = parse_append_object(&input, 200, &ok, 5, crc64(second)).unwrap();
        assert_eq!(out.next_position, 11);
        assert_eq!(out.crc64, Some(whole));
        assert_eq!(out.sent_crc64, crc64(second));
        assert_eq!(out.version_id.as_ref().map(|v| v.as_str()), Some("V"));
        // a wrong previous CRC exposes the mismatch
        input.previous_crc64 = Some(crc64(b"HELLO "));
        let err = parse_append_object(&input, 200, &ok, 5, crc64(second)).unwrap_err();
        assert_eq!(err.kind, OssErrorKind::ChecksumMismatch);
        assert_eq!(err.request_id.as_deref(), Some("R"));
        // unknown previous CRC: not checked
        input.previous_crc64 = None;
        assert!(parse_append_object(&input, 200, &ok, 5, crc64(second)).is_ok());
        // position 0: the whole object is the bytes sent
        let zero = AppendObjectInput::new(bucket(), key("k"), 0, Bytes::from_static(first));
        let h = headers(&[
            ("x-oss-next-append-position", "6"),
            ("x-oss-hash-crc64ecma", &crc64(first).to_string()),
        ]);
        assert!(parse_append_object(&zero, 200, &h, 6, crc64(first)).is_ok());
        let h = headers(&[
            ("x-oss-next-append-position", "6"),
            ("x-oss-hash-crc64ecma", "1"),
        ]);
        let err = parse_append_object(&zero, 200, &h, 6, crc64(first)).unwrap_err();
        assert_eq!(err.kind, OssErrorKind::ChecksumMismatch);
        // next position missing, malformed or inconsistent
        for bad in [
            headers(&[]),
            headers(&[("x-oss-next-append-position", "x")]),
            headers(&[("x-oss-next-append-position", "7")]),
        ] {
            let err = parse_append_object(&zero, 200, &bad, 6, crc64(first)).unwrap_err();
            assert_eq!(err.kind, OssErrorKind::InvalidResponse);
        }
    }

    #[test]
    fn position_error_exposes_next_position() {
        let body = b"<Error><Code>PositionNotEqualToLength</Code><Message>Position is not equal to file length</Message><RequestId>R</RequestId><EC>0026-00000016</EC></Error>";
        let err = OssError::from_response(
            409,
            &headers(&[("x-oss-next-append-position", "1024")]),
            body,
        );
        assert_eq!(err.kind, OssErrorKind::PreconditionFailed);
        assert_eq!(err.code, "PositionNotEqualToLength");
        assert_eq!(err.next_append_position, Some(1024));
        let err = OssError::from_response(409, &HeaderMap::new(), body);
        assert_eq!(err.next_append_position, None);
    }
}

#[cfg(test)]
mod send_tests {
    use super::super::test_support::loopback::{Server, response};
    use super::*;
    use crate::model::crc64;

    #[tokio::test]
    async fn append_is_never_retried_and_exposes_the_position() {
        let server = Server::start(|i, s| match i {
            0 => response(503, &[], ""),
            1 => response(
                409,
                &[("x-oss-next-append-position", "3"), ("x-oss-request-id", "R")],
                "<Error><Code>PositionNotEqualToLength</Code><Message>Position is not equal to file length</Message></Error>",
            ),
            _ => response(
                200,
                &[
                    ("x-oss-next-append-position", "6"),
                    ("x-oss-hash-crc64ecma", &crc64(b"abcdef").to_string()),
                ],
                &String::from_utf8_lossy(&s.body),
            ),
        })
        .await;
        let client = server.client();
        let bucket = BucketName::parse("examplebucket").unwrap();
        let key = ObjectKey::parse("logs/app.log").unwrap();
        let mut input = AppendObjectInput::new(bucket, key, 0, Bytes::from_static(b"abc"));
        let err = client.append_object(&input).await.unwrap_err();
        assert_eq!(err.kind, OssErrorKind::ServerError);
        assert_eq!(server.seen().len(), 1, "a 503 append is not retried");
        let err = client.append_object(&input).await.unwrap_err();
        assert_eq!(err.code, "PositionNotEqualToLength");
        assert_eq!(err.kind, OssErrorKind::PreconditionFailed);
        assert_eq!(err.next_append_position, Some(3));
        input.position = err.next_append_position.unwrap();
        input.body = Bytes::from_static(b"def");
        input.previous_crc64 = Some(crc64(b"abc"));
        let out = client.append_object(&input).await.unwrap();
        assert_eq!(out.next_position, 6);
        assert_eq!(out.crc64, Some(crc64(b"abcdef")));
        let seen = server.seen();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[2].method, "POST");
        assert_eq!(
            seen[2].target,
            "/examplebucket/logs/app.log?append=&position=3"
        );
        assert_eq!(seen[2].headers["content-length"], "3");
        assert_eq!(&seen[2].body[..], b"def");
    }
}
