//! OSS-shaped error responses: `<Error><Code/><Message/><RequestId/><HostId/><EC/>…</Error>`.

use http::StatusCode;

/// One error the emulator answers with, rendered like OSS does (boxed: errors are the
/// rare path, and `Result<_, ApiError>` stays small). Derefs to its [`ErrorDetails`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError(Box<ErrorDetails>);

/// What an [`ApiError`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDetails {
    /// HTTP status.
    pub status: StatusCode,
    /// OSS error code (`NoSuchKey`, `SignatureDoesNotMatch`, …).
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Fine-grained OSS error code (`0026-00000001`), when one is documented.
    pub ec: Option<String>,
    /// Extra child elements of `<Error>` (e.g. `StringToSign`), in order.
    pub extra: Vec<(String, String)>,
    /// Extra response headers (e.g. `x-oss-delete-marker`).
    pub headers: Vec<(String, String)>,
}

impl std::ops::Deref for ApiError {
    type Target = ErrorDetails;

    fn deref(&self) -> &ErrorDetails {
        &self.0
    }
}

impl ApiError {
    /// A new error without EC.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self(Box::new(ErrorDetails {
            status,
            code: code.to_owned(),
            message: message.into(),
            ec: None,
            extra: Vec::new(),
            headers: Vec::new(),
        }))
    }

    /// Sets the EC.
    pub fn ec(mut self, ec: &str) -> Self {
        self.0.ec = Some(ec.to_owned());
        self
    }

    /// Adds a child element.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0.extra.push((name.to_owned(), value.into()));
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0.headers.push((name.to_owned(), value.into()));
        self
    }

    /// The error document.
    pub fn to_xml(&self, request_id: &str, host_id: &str) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n");
        let mut push = |name: &str, value: &str| {
            out.push_str("  <");
            out.push_str(name);
            out.push('>');
            out.push_str(&xml_escape(value));
            out.push_str("</");
            out.push_str(name);
            out.push_str(">\n");
        };
        push("Code", &self.code);
        push("Message", &self.message);
        push("RequestId", request_id);
        push("HostId", host_id);
        for (name, value) in &self.extra {
            push(name, value);
        }
        if let Some(ec) = &self.ec {
            push("EC", ec);
            push(
                "RecommendDoc",
                &format!("https://api.aliyun.com/troubleshoot?q={ec}"),
            );
        }
        out.push_str("</Error>\n");
        out
    }

    // ---- the catalogue -------------------------------------------------------------------

    /// 404 NoSuchKey.
    pub fn no_such_key() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        )
        .ec("0026-00000001")
    }

    /// 404 NoSuchBucket.
    pub fn no_such_bucket(bucket: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist.",
        )
        .ec("0015-00000101")
        .with("BucketName", bucket)
    }

    /// 404 NoSuchVersion.
    pub fn no_such_version(version_id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchVersion",
            "The specified version does not exist.",
        )
        .with("VersionId", version_id)
    }

    /// 409 BucketAlreadyExists (PutBucket of a name that is taken).
    pub fn bucket_already_exists() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "BucketAlreadyExists",
            "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
        )
    }

    /// 409 BucketNotEmpty (DeleteBucket of a bucket with objects, versions or uploads).
    pub fn bucket_not_empty(message: &str) -> Self {
        Self::new(StatusCode::CONFLICT, "BucketNotEmpty", message)
    }

    /// 400 InvalidBucketName.
    pub fn invalid_bucket_name(bucket: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidBucketName",
            "The specified bucket is not valid.",
        )
        .with("BucketName", bucket)
    }

    /// 400 InvalidArgument.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgument", message)
    }

    /// 400 InvalidObjectName.
    pub fn invalid_object_name(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidObjectName", message)
    }

    /// 400 MalformedXML.
    pub fn malformed_xml() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema.",
        )
    }

    /// 403 AccessDenied.
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    /// 403 InvalidAccessKeyId.
    pub fn invalid_access_key_id(access_key_id: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided does not exist in our records.",
        )
        .ec("0002-00000902")
        .with("OSSAccessKeyId", access_key_id)
    }

    /// 403 InvalidSecurityToken.
    pub fn invalid_security_token() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "InvalidSecurityToken",
            "The security token you provided is invalid.",
        )
        .ec("0002-00000006")
    }

    /// 409 FileAlreadyExists.
    pub fn file_already_exists() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "FileAlreadyExists",
            "The object you specified already exists and can not be overwritten.",
        )
        .ec("0026-00000002")
    }

    /// 400 InvalidDigest.
    pub fn invalid_digest(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidDigest", message)
    }

    /// 400 EntityTooLarge.
    pub fn entity_too_large() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size.",
        )
    }

    /// 404 SymlinkTargetNotExist.
    pub fn symlink_target_not_exist() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "SymlinkTargetNotExist",
            "The symlink target object does not exist.",
        )
        .ec("0026-00000012")
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        )
        .with("Method", method)
    }

    /// 501 NotImplemented.
    pub fn not_implemented(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!("{what} is not implemented by the ossgate emulator."),
        )
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

/// Escapes text for an XML element.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                out.push_str(&format!("\\x{:02X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_oss_shape() {
        let xml = ApiError::no_such_key().to_xml("ABC", "b.example");
        assert!(xml.contains("<Code>NoSuchKey</Code>"));
        assert!(xml.contains("<RequestId>ABC</RequestId>"));
        assert!(xml.contains("<HostId>b.example</HostId>"));
        assert!(xml.contains("<EC>0026-00000001</EC>"));
    }

    #[test]
    fn escapes_text() {
        let e = ApiError::invalid_argument("a<b & \"c\"");
        let xml = e.to_xml("r", "h");
        assert!(xml.contains("<Message>a&lt;b &amp; &quot;c&quot;</Message>"));
    }
}
