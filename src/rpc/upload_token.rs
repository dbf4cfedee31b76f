//! The opaque `upload_id` of a resumable write: everything needed to continue it (bucket,
//! key, OSS UploadId, part size, completion options), serialised and protected by an
//! HMAC-SHA256, so the gateway keeps no state and any replica holding the same secret can
//! resume, while a caller can neither read nor forge one.

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Token format version, first byte of the payload.
const VERSION: &str = "1";

/// What a resumable write needs to continue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumableUpload {
    /// Destination bucket.
    pub bucket: String,
    /// Destination key.
    pub key: String,
    /// The OSS multipart UploadId.
    pub upload_id: String,
    /// Bytes per part (fixed for the whole upload, so offsets map to parts).
    pub part_size: u64,
    /// The declared object size, if any.
    pub object_size: Option<u64>,
    /// `x-oss-forbid-overwrite` for the completion.
    pub forbid_overwrite: bool,
    /// `x-oss-object-acl` for the completion.
    pub acl: Option<String>,
    /// The tags StartResumableWrite set on the upload (applied at completion): finishing the
    /// write needs the `tag` operation, and is audited as a tag mutation. Absent in ids
    /// issued before this field existed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// Signs and checks upload tokens.
#[derive(Clone)]
pub struct UploadTokenKey {
    key: Vec<u8>,
}

impl std::fmt::Debug for UploadTokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UploadTokenKey(<redacted>)")
    }
}

/// Why a token was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token at all.
    #[error("upload_id is not a resumable write id")]
    Malformed,
    /// Changed, or made with another secret.
    #[error("upload_id was not issued by this service (or its secret changed)")]
    BadSignature,
}

impl UploadTokenKey {
    /// A key from the configured secret.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: secret.to_vec(),
        }
    }

    /// A random key for this process only (tokens die with it).
    pub fn random() -> Self {
        use rand::RngCore;
        let mut key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self { key }
    }

    #[allow(clippy::expect_used, reason = "HMAC accepts keys of any length")]
    fn mac(&self, payload: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }

    /// `v1.{base64url(json)}.{base64url(hmac)}`.
    #[allow(clippy::expect_used, reason = "serialising plain data cannot fail")]
    pub fn issue(&self, upload: &ResumableUpload) -> String {
        let json = serde_json::to_vec(upload).expect("serialising plain data cannot fail");
        let payload = format!("{VERSION}.{}", URL_SAFE_NO_PAD.encode(json));
        let mac = self.mac(payload.as_bytes());
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    /// Checks the signature, then decodes.
    pub fn open(&self, token: &str) -> Result<ResumableUpload, TokenError> {
        let (payload, mac) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (version, body) = payload.split_once('.').ok_or(TokenError::Malformed)?;
        if version != VERSION {
            return Err(TokenError::Malformed);
        }
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| TokenError::Malformed)?;
        let expected = self.mac(payload.as_bytes());
        if mac.len() != expected.len() || !bool::from(mac.as_slice().ct_eq(&expected)) {
            return Err(TokenError::BadSignature);
        }
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TokenError::Malformed)?;
        serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload() -> ResumableUpload {
        ResumableUpload {
            bucket: "bucket".into(),
            key: "dir/file name.bin".into(),
            upload_id: "0004B9894A22E5B1888A1E29F823****".into(),
            part_size: 8 * 1024 * 1024,
            object_size: Some(123),
            forbid_overwrite: true,
            acl: Some("private".into()),
            tags: [("team".to_string(), "a b".to_string())].into(),
        }
    }

    #[test]
    fn tokens_round_trip_across_replicas_with_the_same_secret() {
        let token = UploadTokenKey::new(b"shared secret").issue(&upload());
        assert_eq!(
            UploadTokenKey::new(b"shared secret").open(&token),
            Ok(upload())
        );
        assert!(!token.contains("bucket"), "the token is opaque: {token}");
    }

    #[test]
    fn ids_without_tags_still_open() {
        // An id issued before `tags` existed (same secret): opens, with no tags.
        let key = UploadTokenKey::new(b"shared secret");
        let mut old = upload();
        old.tags.clear();
        let token = key.issue(&old);
        let json = URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap();
        assert!(!String::from_utf8(json).unwrap().contains("tags"));
        assert_eq!(key.open(&token), Ok(old));
    }

    #[test]
    fn tampered_or_foreign_tokens_are_refused() {
        let key = UploadTokenKey::new(b"shared secret");
        let token = key.issue(&upload());
        assert_eq!(
            UploadTokenKey::new(b"other secret").open(&token),
            Err(TokenError::BadSignature)
        );
        // Flip one character of the payload.
        let mut bytes = token.clone().into_bytes();
        bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(key.open(&tampered), Err(TokenError::BadSignature));
        for junk in ["", "x", "1.x", "2.e30.AAAA", "1..", "..."] {
            assert!(key.open(junk).is_err(), "{junk:?}");
        }
    }
}
