//! Endpoints, addressing styles, region derivation and URL building.
//!
//! Every wire URL is generated here from the caller's own model (bucket,
//! decoded key, decoded query pairs), with the same rules the signer uses
//! (`docs/oss-protocol.md`, "Rules ossgate's signer follows"), so the server's
//! decoding always agrees with the signature.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Percent-encodes every byte outside `A-Z a-z 0-9 - _ . ~` as `%XX` (upper-case
/// hex); keeps `/` when `keep_slash`. A space becomes `%20` and `+` becomes
/// `%2B`, so the result never contains a literal `+`. This is the signer's own
/// encoder ([`crate::oss::sign::uri_encode`]), so wire URLs and canonical
/// requests always agree.
pub fn percent_encode(s: &str, keep_slash: bool) -> String {
    crate::oss::sign::uri_encode(s, keep_slash)
}

/// The wire form of an object key in a URL path (without the leading `/`).
///
/// `/` is kept literally and every other byte outside the unreserved set is
/// percent-encoded. URL parsers resolve `.` and `..` path segments (also in
/// their `%2E` forms), which would silently change the key; when the key has
/// such a segment, `/` is sent as `%2F` too (the signature covers the decoded
/// key, so it does not change). A key that is exactly `.` or `..` cannot be
/// carried in a URL path at all, so [`crate::model::ObjectKey`] refuses it.
pub fn encode_key_path(key: &str) -> String {
    let has_dot_segment = key.split('/').any(|seg| seg == "." || seg == "..");
    percent_encode(key, !has_dot_segment)
}

/// The wire form of a query string (without `?`): `k=v` pairs joined by `&`,
/// both sides fully percent-encoded (so never a literal `+`). An empty value is
/// written `k=` (as the official SDKs do); OSS and the signers read it as the
/// bare parameter `k`.
pub fn encode_query(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&percent_encode(k, false));
        out.push('=');
        out.push_str(&percent_encode(v, false));
    }
    out
}

/// How the bucket is put into request URLs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Addressing {
    /// Path style for IP-address and `localhost` endpoints, virtual-host style otherwise.
    #[default]
    Auto,
    /// `https://{bucket}.{endpoint-host}/{key}` (the normal form for OSS).
    VirtualHost,
    /// `http://{endpoint-host}/{bucket}/{key}` (emulators, IP endpoints).
    Path,
}

impl Addressing {
    /// The configuration spelling: `auto`, `virtual_host` or `path`.
    pub fn as_str(self) -> &'static str {
        match self {
            Addressing::Auto => "auto",
            Addressing::VirtualHost => "virtual_host",
            Addressing::Path => "path",
        }
    }
}

impl fmt::Display for Addressing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of [`Addressing::from_str`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown addressing style {0:?} (expected auto, virtual_host or path)")]
pub struct ParseAddressingError(pub String);

impl FromStr for Addressing {
    type Err = ParseAddressingError;

    /// Accepts `auto`, `virtual_host` (also `virtual-host`, `vhost`) and `path`
    /// (also `path_style`), case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Addressing::Auto),
            "virtual_host" | "virtual-host" | "virtualhost" | "vhost" => {
                Ok(Addressing::VirtualHost)
            }
            "path" | "path_style" | "path-style" => Ok(Addressing::Path),
            _ => Err(ParseAddressingError(s.to_string())),
        }
    }
}

/// The concrete style chosen for one endpoint (never `Auto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Bucket in the host name.
    VirtualHost,
    /// Bucket as the first path segment.
    Path,
}

/// A parsed OSS endpoint: scheme, host and optional port, without a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: String,
    /// Host name or IP address (IPv6 without brackets), lower case.
    pub host: String,
    /// Explicit port, if any.
    pub port: Option<u16>,
}

/// Why an endpoint string was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid endpoint {endpoint:?}: {reason}")]
pub struct EndpointError {
    /// The rejected input.
    pub endpoint: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Endpoint {
    /// Parses `https://oss-cn-hangzhou.aliyuncs.com`, `http://127.0.0.1:9000`,
    /// `http://[::1]:9000` or a bare host (`oss-cn-hangzhou.aliyuncs.com`, taken
    /// as https). A trailing `/` is allowed; any other path, a query, a fragment
    /// or user info is rejected.
    pub fn parse(s: &str) -> Result<Endpoint, EndpointError> {
        let err = |reason: &str| EndpointError {
            endpoint: s.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(err("empty"));
        }
        let (scheme, rest) = match trimmed.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("https".to_string(), trimmed),
        };
        if scheme != "http" && scheme != "https" {
            return Err(err("the scheme must be http or https"));
        }
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) || authority.is_empty() {
            return Err(err(
                "expected scheme://host[:port] without path, query or user info",
            ));
        }
        let (host, port) = if let Some(after_bracket) = authority.strip_prefix('[') {
            let (inner, tail) = after_bracket
                .split_once(']')
                .ok_or_else(|| err("unterminated IPv6 address"))?;
            if inner.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(err("invalid IPv6 address"));
            }
            let port = match tail {
                "" => None,
                t => Some(
                    parse_port(t.strip_prefix(':').ok_or_else(|| err("bad port"))?)
                        .ok_or_else(|| err("bad port"))?,
                ),
            };
            (inner.to_ascii_lowercase(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_ascii_lowercase(),
                    Some(parse_port(p).ok_or_else(|| err("bad port"))?),
                ),
                None => (authority.to_ascii_lowercase(), None),
            }
        };
        if host.is_empty() {
            return Err(err("empty host"));
        }
        if !host.contains(':')
            && !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        {
            return Err(err(
                "the host may contain only letters, digits, '-', '_' and '.'",
            ));
        }
        Ok(Endpoint { scheme, host, port })
    }

    /// True for IP addresses and `localhost` (also `*.localhost`).
    pub fn is_ip_or_localhost(&self) -> bool {
        self.host.parse::<IpAddr>().is_ok()
            || self.host == "localhost"
            || self.host.ends_with(".localhost")
    }

    /// The style `addressing` means for this endpoint.
    pub fn style(&self, addressing: Addressing) -> Style {
        match addressing {
            Addressing::VirtualHost => Style::VirtualHost,
            Addressing::Path => Style::Path,
            Addressing::Auto if self.is_ip_or_localhost() => Style::Path,
            Addressing::Auto => Style::VirtualHost,
        }
    }

    /// `host[:port]`, with IPv6 addresses in brackets.
    fn authority(&self, host_prefix: Option<&str>) -> String {
        let mut out = String::new();
        if let Some(prefix) = host_prefix {
            out.push_str(prefix);
            out.push('.');
        }
        if self.host.contains(':') {
            out.push('[');
            out.push_str(&self.host);
            out.push(']');
        } else {
            out.push_str(&self.host);
        }
        if let Some(port) = self.port {
            out.push(':');
            out.push_str(&port.to_string());
        }
        out
    }

    /// The full request URL for `bucket`, `key` (decoded; `None` = the bucket
    /// itself) and the decoded `query` pairs.
    pub fn url(
        &self,
        style: Style,
        bucket: &str,
        key: Option<&str>,
        query: &[(String, String)],
    ) -> String {
        let mut url = String::new();
        url.push_str(&self.scheme);
        url.push_str("://");
        match style {
            Style::VirtualHost => {
                url.push_str(&self.authority(Some(bucket)));
                url.push('/');
            }
            Style::Path => {
                url.push_str(&self.authority(None));
                url.push('/');
                url.push_str(&percent_encode(bucket, false));
                url.push('/');
            }
        }
        if let Some(key) = key {
            url.push_str(&encode_key_path(key));
        }
        if !query.is_empty() {
            url.push('?');
            url.push_str(&encode_query(query));
        }
        url
    }
}

fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Normalises a configured region: trims it and strips a leading `oss-`
/// (`oss-cn-hangzhou` → `cn-hangzhou`, as ali-oss does). Empty stays empty.
pub fn normalize_region(region: &str) -> String {
    let r = region.trim().to_ascii_lowercase();
    match r.strip_prefix("oss-") {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => r,
    }
}

/// Derives the V4 signing region from an OSS endpoint host:
/// `oss-cn-hangzhou.aliyuncs.com` and `oss-cn-hangzhou-internal.aliyuncs.com`
/// → `cn-hangzhou`; also `bucket.oss-cn-hangzhou.aliyuncs.com` and the
/// dual-stack form `cn-hangzhou.oss.aliyuncs.com`. Global endpoints
/// (`oss-accelerate…`, `oss-rg-china-mainland…`), IPs and other hosts give `None`.
pub fn derive_region(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    let n = labels.len();
    if n < 3 || labels[n - 2] != "aliyuncs" || labels[n - 1] != "com" {
        return None;
    }
    let service = labels[n - 3];
    let region = if service == "oss" {
        // {region}.oss.aliyuncs.com (dual stack)
        if n < 4 {
            return None;
        }
        labels[n - 4].to_string()
    } else {
        let rest = service.strip_prefix("oss-")?;
        rest.strip_suffix("-internal").unwrap_or(rest).to_string()
    };
    let valid = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with("accelerate")
        && !region.starts_with("rg-");
    valid.then_some(region)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn percent_encoding_rules() {
        assert_eq!(percent_encode("aZ09-_.~", false), "aZ09-_.~");
        assert_eq!(percent_encode("a b+c", false), "a%20b%2Bc");
        assert_eq!(percent_encode("a/b", false), "a%2Fb");
        assert_eq!(percent_encode("a/b", true), "a/b");
        assert_eq!(percent_encode("测", true), "%E6%B5%8B");
        assert_eq!(percent_encode("%*?#=&", false), "%25%2A%3F%23%3D%26");
    }

    #[test]
    fn key_path_matches_pyv2_capture() {
        // CAP pyv2-v4-PutObject.http and pyv2-v4-PutObjectUnicodeKey.http
        assert_eq!(
            encode_key_path("docs/report 2025+final.txt"),
            "docs/report%202025%2Bfinal.txt"
        );
        assert_eq!(
            encode_key_path("测试/日志 #1?.txt"),
            "%E6%B5%8B%E8%AF%95/%E6%97%A5%E5%BF%97%20%231%3F.txt"
        );
    }

    #[test]
    fn key_path_with_dot_segments_encodes_slashes() {
        assert_eq!(encode_key_path("a/../b"), "a%2F..%2Fb");
        assert_eq!(encode_key_path("./x"), ".%2Fx");
        assert_eq!(encode_key_path("a/b."), "a/b.");
        assert_eq!(encode_key_path("a/...b"), "a/...b");
    }

    #[test]
    fn query_encoding_never_has_plus() {
        assert_eq!(
            encode_query(&q(&[("tagging", ""), ("versionId", "CAEQ****a+b/c=")])),
            "tagging=&versionId=CAEQ%2A%2A%2A%2Aa%2Bb%2Fc%3D"
        );
        assert_eq!(encode_query(&[]), "");
    }

    #[test]
    fn endpoint_parsing() {
        let e = Endpoint::parse("https://oss-cn-hangzhou.aliyuncs.com").unwrap();
        assert_eq!(
            e,
            Endpoint {
                scheme: "https".into(),
                host: "oss-cn-hangzhou.aliyuncs.com".into(),
                port: None
            }
        );
        let e = Endpoint::parse("oss-cn-hangzhou.aliyuncs.com/").unwrap();
        assert_eq!(e.scheme, "https");
        let e = Endpoint::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", Some(9000)));
        let e = Endpoint::parse("http://[::1]:9000/").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", Some(9000)));
        assert!(e.is_ip_or_localhost());
        for bad in [
            "",
            "ftp://x",
            "http://",
            "http://h/path",
            "http://u@h",
            "http://h:99999",
            "http://h:x",
            "http://h?x=1",
            "http://[::1",
            "http://a b",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn auto_addressing() {
        let ip = Endpoint::parse("http://127.0.0.1:1").unwrap();
        let local = Endpoint::parse("http://localhost:1").unwrap();
        let oss = Endpoint::parse("https://oss-cn-hangzhou.aliyuncs.com").unwrap();
        assert_eq!(ip.style(Addressing::Auto), Style::Path);
        assert_eq!(local.style(Addressing::Auto), Style::Path);
        assert_eq!(oss.style(Addressing::Auto), Style::VirtualHost);
        assert_eq!(oss.style(Addressing::Path), Style::Path);
        assert_eq!(ip.style(Addressing::VirtualHost), Style::VirtualHost);
    }

    #[test]
    fn addressing_from_str() {
        assert_eq!("auto".parse(), Ok(Addressing::Auto));
        assert_eq!("Virtual_Host".parse(), Ok(Addressing::VirtualHost));
        assert_eq!("path".parse(), Ok(Addressing::Path));
        assert!("sideways".parse::<Addressing>().is_err());
        for a in [Addressing::Auto, Addressing::VirtualHost, Addressing::Path] {
            assert_eq!(a.to_string().parse(), Ok(a));
        }
    }

    #[test]
    fn urls_for_special_keys_in_both_styles() {
        let oss = Endpoint::parse("https://oss-cn-hangzhou.aliyuncs.com").unwrap();
        let emu = Endpoint::parse("http://127.0.0.1:18765").unwrap();
        let cases = [
            ("a b", "a%20b"),
            ("a+b", "a%2Bb"),
            ("dir/sub/file.txt", "dir/sub/file.txt"),
            ("what?#frag", "what%3F%23frag"),
            ("100%", "100%25"),
            ("日本/語", "%E6%97%A5%E6%9C%AC/%E8%AA%9E"),
            ("a//b", "a//b"),
        ];
        for (key, enc) in cases {
            assert_eq!(
                oss.url(Style::VirtualHost, "examplebucket", Some(key), &[]),
                format!("https://examplebucket.oss-cn-hangzhou.aliyuncs.com/{enc}")
            );
            assert_eq!(
                emu.url(Style::Path, "examplebucket", Some(key), &[]),
                format!("http://127.0.0.1:18765/examplebucket/{enc}")
            );
        }
        assert_eq!(
            emu.url(
                Style::Path,
                "examplebucket",
                Some("link-to-report.txt"),
                &q(&[("symlink", "")])
            ),
            "http://127.0.0.1:18765/examplebucket/link-to-report.txt?symlink="
        );
        assert_eq!(
            oss.url(Style::VirtualHost, "b-1", None, &[]),
            "https://b-1.oss-cn-hangzhou.aliyuncs.com/"
        );
        let v6 = Endpoint::parse("http://[::1]:8080").unwrap();
        assert_eq!(
            v6.url(Style::Path, "b", Some("k"), &[]),
            "http://[::1]:8080/b/k"
        );
    }

    #[test]
    fn generated_urls_survive_url_parsing() {
        // reqwest parses our URL string; the path and query must come through untouched.
        let emu = Endpoint::parse("http://127.0.0.1:18765").unwrap();
        for key in ["a/../b", "./x", "x/.", "%2e%2E/y", "a b+c?d#e%f", "é/ü"] {
            let s = emu.url(Style::Path, "bkt", Some(key), &q(&[("versionId", "a+b c")]));
            let parsed = reqwest::Url::parse(&s).unwrap();
            assert_eq!(parsed.as_str(), s, "key {key:?}");
            let raw_path = parsed.path().strip_prefix("/bkt/").unwrap();
            let decoded = percent_encoding::percent_decode_str(raw_path)
                .decode_utf8()
                .unwrap();
            assert_eq!(decoded, key);
        }
    }

    #[test]
    fn region_derivation() {
        let cases = [
            ("oss-cn-hangzhou.aliyuncs.com", Some("cn-hangzhou")),
            ("oss-cn-hangzhou-internal.aliyuncs.com", Some("cn-hangzhou")),
            (
                "examplebucket.oss-cn-beijing.aliyuncs.com",
                Some("cn-beijing"),
            ),
            ("OSS-AP-SOUTHEAST-1.ALIYUNCS.COM", Some("ap-southeast-1")),
            ("cn-shanghai.oss.aliyuncs.com", Some("cn-shanghai")),
            ("oss-accelerate.aliyuncs.com", None),
            ("oss-rg-china-mainland.aliyuncs.com", None),
            ("oss.aliyuncs.com", None),
            ("127.0.0.1", None),
            ("localhost", None),
            ("s3.amazonaws.com", None),
            ("oss-.aliyuncs.com", None),
        ];
        for (host, want) in cases {
            assert_eq!(derive_region(host).as_deref(), want, "{host}");
        }
    }

    #[test]
    fn region_normalisation() {
        assert_eq!(normalize_region(" oss-cn-hangzhou "), "cn-hangzhou");
        assert_eq!(normalize_region("cn-hangzhou"), "cn-hangzhou");
        assert_eq!(normalize_region(""), "");
    }
}
