//! Request addressing: which bucket and key a request names, and its decoded query.
//!
//! Path style is `/bucket/key`. Virtual-host style puts the bucket in the first label of
//! `Host` (`feas-bucket.oss-cn-hangzhou.aliyuncs.com`, path `/key`). ali-oss with
//! `sldEnable` sends the bucket in both places; the rule that tells these apart:
//!
//! * the Host's first label is used as the bucket only when the Host is a DNS name with at
//!   least one dot (not an IP literal) and that label names an existing bucket;
//! * then, if the path's first segment is that same bucket name, the request is read as
//!   path style (the `sldEnable` form). So with virtual-host addressing a key that starts
//!   with `<bucket>/` cannot be reached; use path style for such keys.
//!
//! Keys are always percent-decoded (oss2 sends `/` inside a key as `%2F`); `+` stays `+`.

use percent_encoding::percent_decode_str;

use super::error::ApiError;

/// What a request addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// The bucket, if any (`None` = service level).
    pub bucket: Option<String>,
    /// The decoded object key, if any (`None` = bucket or service level).
    pub key: Option<String>,
}

/// Decodes a raw query string into `(key, value)` pairs; `""` = bare parameter.
/// `+` is kept as `+` (OSS signers never send it for a space).
pub fn parse_query(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    let Some(raw) = raw else { return Ok(out) };
    for segment in raw.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = segment.split_once('=').unwrap_or((segment, ""));
        // A literal '+' in a query is a space (oss2 sends `prefix=a+b`); SDKs send a real '+'
        // as %2B, so this is how the server must read them for signatures to match.
        let (k, v) = (k.replace('+', " "), v.replace('+', " "));
        let (k, v) = (k.as_str(), v.as_str());
        let k = decode(k).ok_or_else(|| {
            ApiError::invalid_argument("A query parameter name is not valid UTF-8.")
        })?;
        let v = decode(v).ok_or_else(|| {
            ApiError::invalid_argument(format!(
                "The value of query parameter {k:?} is not valid UTF-8."
            ))
        })?;
        out.push((k, v));
    }
    Ok(out)
}

fn decode(s: &str) -> Option<String> {
    percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// The host name without the port (`[::1]:80` → `::1`).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

/// The bucket named by a virtual-host style `Host`, if the rules above say so.
fn vhost_bucket(host: Option<&str>, is_bucket: &dyn Fn(&str) -> bool) -> Option<String> {
    let name = host_name(host?.trim());
    if name.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let (label, _) = name.split_once('.')?;
    let label = label.to_ascii_lowercase();
    is_bucket(&label).then_some(label)
}

/// Works out the bucket and key of a request from its `Host` header and raw path.
pub fn resolve(
    host: Option<&str>,
    raw_path: &str,
    is_bucket: &dyn Fn(&str) -> bool,
) -> Result<Target, ApiError> {
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    let decode_key = |raw: &str| -> Result<Option<String>, ApiError> {
        if raw.is_empty() {
            return Ok(None);
        }
        decode(raw).map(Some).ok_or_else(|| {
            ApiError::invalid_object_name("The object key is not valid UTF-8 after decoding.")
                .ec("0016-00000002")
        })
    };
    let (first_raw, rest_raw) = match path.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (path, None),
    };
    if let Some(bucket) = vhost_bucket(host, is_bucket) {
        let first = decode(first_raw).unwrap_or_default();
        if first != bucket {
            return Ok(Target {
                bucket: Some(bucket),
                key: decode_key(path)?,
            });
        }
        // sldEnable: the bucket is in the path as well; fall through to path style.
    }
    if first_raw.is_empty() {
        return Ok(Target::default());
    }
    let bucket = decode(first_raw)
        .ok_or_else(|| ApiError::invalid_argument("The bucket name is not valid UTF-8."))?;
    Ok(Target {
        bucket: Some(bucket),
        key: decode_key(rest_raw.unwrap_or(""))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(b: &str) -> bool {
        b == "feas-bucket"
    }

    fn t(bucket: Option<&str>, key: Option<&str>) -> Target {
        Target {
            bucket: bucket.map(str::to_owned),
            key: key.map(str::to_owned),
        }
    }

    #[test]
    fn path_style() {
        let r = resolve(
            Some("127.0.0.1:18080"),
            "/feas-bucket/dir/obj%201.txt",
            &known,
        );
        assert_eq!(r.unwrap(), t(Some("feas-bucket"), Some("dir/obj 1.txt")));
        let r = resolve(
            Some("localhost:1"),
            "/feas-bucket/dir%2Fobj%201.txt",
            &known,
        );
        assert_eq!(r.unwrap(), t(Some("feas-bucket"), Some("dir/obj 1.txt")));
        let r = resolve(None, "/feas-bucket/a+b", &known);
        assert_eq!(r.unwrap(), t(Some("feas-bucket"), Some("a+b")));
        assert_eq!(
            resolve(None, "/feas-bucket/", &known).unwrap(),
            t(Some("feas-bucket"), None)
        );
        assert_eq!(
            resolve(None, "/feas-bucket", &known).unwrap(),
            t(Some("feas-bucket"), None)
        );
        assert_eq!(resolve(None, "/", &known).unwrap(), t(None, None));
    }

    #[test]
    fn virtual_host_and_sld() {
        let host = Some("feas-bucket.oss-cn-hangzhou.aliyuncs.com");
        assert_eq!(
            resolve(host, "/dir/obj%201.txt", &known).unwrap(),
            t(Some("feas-bucket"), Some("dir/obj 1.txt"))
        );
        assert_eq!(
            resolve(host, "/feas-bucket/dir/obj%201.txt", &known).unwrap(),
            t(Some("feas-bucket"), Some("dir/obj 1.txt"))
        );
        assert_eq!(
            resolve(host, "/", &known).unwrap(),
            t(Some("feas-bucket"), None)
        );
        // Unknown first label: path style.
        assert_eq!(
            resolve(Some("oss-cn-hangzhou.aliyuncs.com"), "/other/k", &known).unwrap(),
            t(Some("other"), Some("k"))
        );
    }

    #[test]
    fn bad_encoding_is_an_error_not_a_panic() {
        assert!(resolve(None, "/feas-bucket/%FF%FE", &known).is_err());
        assert!(parse_query(Some("a=%FF")).is_err());
        // A lone '%' is kept literally by percent-decoding.
        assert_eq!(
            resolve(None, "/feas-bucket/100%", &known).unwrap(),
            t(Some("feas-bucket"), Some("100%"))
        );
    }

    #[test]
    fn query_pairs() {
        assert_eq!(
            parse_query(Some("tagging=&versionId=CAE%2Aa&x")).unwrap(),
            vec![
                ("tagging".to_owned(), String::new()),
                ("versionId".to_owned(), "CAE*a".to_owned()),
                ("x".to_owned(), String::new())
            ]
        );
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn resolve_and_parse_query_never_panic(
            host in proptest::option::of(".{0,40}"),
            path in "/[a-z%0-9/+. -]{0,40}",
            query in ".{0,60}",
        ) {
            let _ = resolve(host.as_deref(), &path, &|b| b == "feas-bucket");
            let _ = parse_query(Some(&query));
        }

        #[test]
        fn path_style_keys_round_trip(key in "[a-zA-Z0-9 /+%=&?#ü日-]{1,40}") {
            let encoded = crate::oss::sign::uri_encode(&key, true);
            let target = resolve(Some("127.0.0.1:1"), &format!("/feas-bucket/{encoded}"), &|_| true)
                .unwrap();
            prop_assert_eq!(target.bucket.as_deref(), Some("feas-bucket"));
            prop_assert_eq!(target.key.as_deref(), Some(key.as_str()));
            // oss2 style: '/' encoded too.
            let encoded = crate::oss::sign::uri_encode(&key, false);
            let target = resolve(None, &format!("/feas-bucket/{encoded}"), &|_| true).unwrap();
            prop_assert_eq!(target.key.as_deref(), Some(key.as_str()));
        }
    }
}
