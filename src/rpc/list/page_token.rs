//! ListObjects' opaque `page_token`: where the next page starts (OSS's continuation token,
//! or the key and version-id markers of a version listing) and a digest of the query it
//! continues, so a token is refused with any other bucket, prefix, delimiter, start_after or
//! listing kind instead of silently listing something else.
//!
//! The token is not signed: it grants nothing. OSS still scopes the listing by the request's
//! prefix and checks its own continuation token, and the caller's permissions are checked on
//! the request, not on the token.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Token format version.
const FORMAT: u8 = 1;
/// The longest token accepted (OSS continuation tokens and 1023-byte key markers fit).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The query a listing answers; the page token belongs to exactly one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListingQuery<'a> {
    pub bucket: &'a str,
    pub prefix: &'a str,
    pub delimiter: &'a str,
    pub start_after: &'a str,
    pub versions: bool,
}

impl ListingQuery<'_> {
    /// SHA-256 over the fields, each length-prefixed so no two queries share an encoding;
    /// the first 16 bytes, in hex.
    fn digest(&self) -> String {
        let mut h = Sha256::new();
        for field in [self.bucket, self.prefix, self.delimiter, self.start_after] {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field.as_bytes());
        }
        h.update([u8::from(self.versions)]);
        hex::encode(&h.finalize()[..16])
    }
}

/// Where the next page starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resume {
    /// ListObjectsV2's `NextContinuationToken`.
    Continuation(String),
    /// ListObjectVersions' `NextKeyMarker` and `NextVersionIdMarker`.
    Markers {
        key_marker: String,
        version_id_marker: Option<String>,
    },
}

#[derive(Serialize, Deserialize)]
struct Wire {
    f: u8,
    q: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v: Option<String>,
}

/// The token for the page after this one.
pub fn encode(query: &ListingQuery<'_>, resume: &Resume) -> String {
    let (c, k, v) = match resume {
        Resume::Continuation(token) => (Some(token.clone()), None, None),
        Resume::Markers {
            key_marker,
            version_id_marker,
        } => (None, Some(key_marker.clone()), version_id_marker.clone()),
    };
    let wire = Wire {
        f: FORMAT,
        q: query.digest(),
        c,
        k,
        v,
    };
    // Serialising a struct of strings cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
}

/// Why a page token was refused (the description of its field violation).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("is not a page token of ListObjects")]
    Malformed,
    #[error(
        "belongs to another listing: pass the same bucket, prefix, delimiter, start_after and versions as the call that returned it"
    )]
    OtherQuery,
}

/// Reads a token issued for `query`.
pub fn decode(query: &ListingQuery<'_>, token: &str) -> Result<Resume, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| TokenError::Malformed)?;
    let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    if wire.f != FORMAT {
        return Err(TokenError::Malformed);
    }
    if wire.q != query.digest() {
        return Err(TokenError::OtherQuery);
    }
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    match (
        query.versions,
        non_empty(wire.c),
        non_empty(wire.k),
        non_empty(wire.v),
    ) {
        (false, Some(c), None, None) => Ok(Resume::Continuation(c)),
        (true, None, Some(key_marker), version_id_marker) => Ok(Resume::Markers {
            key_marker,
            version_id_marker,
        }),
        _ => Err(TokenError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(versions: bool) -> ListingQuery<'static> {
        ListingQuery {
            bucket: "b",
            prefix: "team-a/",
            delimiter: "/",
            start_after: "",
            versions,
        }
    }

    #[test]
    fn round_trips_and_binds_the_query() {
        let resume = Resume::Continuation("CgJiYw--".into());
        let token = encode(&query(false), &resume);
        assert_eq!(decode(&query(false), &token), Ok(resume));
        let markers = Resume::Markers {
            key_marker: "team-a/x y".into(),
            version_id_marker: Some("CAEQ".into()),
        };
        let token = encode(&query(true), &markers);
        assert_eq!(decode(&query(true), &token), Ok(markers));
        // any other field of the query refuses it
        for other in [
            ListingQuery {
                bucket: "c",
                ..query(true)
            },
            ListingQuery {
                prefix: "team-a",
                ..query(true)
            },
            ListingQuery {
                delimiter: "",
                ..query(true)
            },
            ListingQuery {
                start_after: "team-a/0",
                ..query(true)
            },
            query(false),
        ] {
            assert_eq!(
                decode(&other, &token),
                Err(TokenError::OtherQuery),
                "{other:?}"
            );
        }
        // length prefixes: moving a byte between fields is another query
        let a = ListingQuery {
            prefix: "ab",
            delimiter: "",
            ..query(false)
        };
        let b = ListingQuery {
            prefix: "a",
            delimiter: "b",
            ..query(false)
        };
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn refuses_garbage() {
        let long = "A".repeat(MAX_TOKEN_BYTES + 1);
        for bad in ["x", "!!!", "e30", long.as_str()] {
            assert_eq!(
                decode(&query(false), bad),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
        // a continuation token presented to a version listing (same digest forged) is refused
        let q = query(false).digest();
        let forged = URL_SAFE_NO_PAD.encode(format!(r#"{{"f":1,"q":"{q}","k":"x"}}"#));
        assert_eq!(decode(&query(false), &forged), Err(TokenError::Malformed));
        let empty = URL_SAFE_NO_PAD.encode(format!(r#"{{"f":1,"q":"{q}","c":""}}"#));
        assert_eq!(decode(&query(false), &empty), Err(TokenError::Malformed));
    }
}
