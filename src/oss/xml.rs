//! XML documents OSS sends back, as quick-xml serde DTOs.
//!
//! Parsing is lenient: unknown child elements are ignored and every field is
//! optional, so a new element from OSS never breaks the client. Tagging bodies,
//! which must be read strictly, have their own codec in [`tagging`].

mod listing;
mod tagging;

use serde::Deserialize;

pub use listing::{ListedEntry, ListedPrefix, ListingChild, ListingDocument};
pub use tagging::{TagXmlError, parse_tagging_xml, tag_set_from_xml, tagging_xml};

/// The `<Error>` document OSS returns with a failed request (DOC-ERR), and
/// the base64-decoded `x-oss-err` header of a failed HEAD request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ErrorDocument {
    /// `Code`, e.g. `NoSuchKey`.
    #[serde(rename = "Code")]
    pub code: Option<String>,
    /// `Message`, human-readable.
    #[serde(rename = "Message")]
    pub message: Option<String>,
    /// `RequestId`.
    #[serde(rename = "RequestId")]
    pub request_id: Option<String>,
    /// `HostId`.
    #[serde(rename = "HostId")]
    pub host_id: Option<String>,
    /// `EC`, the fine-grained error code (`0016-00000502`).
    #[serde(rename = "EC")]
    pub ec: Option<String>,
    /// `RecommendDoc`, a troubleshooting link.
    #[serde(rename = "RecommendDoc")]
    pub recommend_doc: Option<String>,
    /// `ServerTime` (RequestTimeTooSkewed), when sent at the top level.
    #[serde(rename = "ServerTime")]
    pub server_time: Option<String>,
    /// `RequestTime` (RequestTimeTooSkewed).
    #[serde(rename = "RequestTime")]
    pub request_time: Option<String>,
    /// `MaxAllowedSkewMilliseconds` (RequestTimeTooSkewed).
    #[serde(rename = "MaxAllowedSkewMilliseconds")]
    pub max_allowed_skew_ms: Option<String>,
    /// `StringToSign` the server computed (SignatureDoesNotMatch); never secret.
    #[serde(rename = "StringToSign")]
    pub string_to_sign: Option<String>,
    /// `Detail`, which some codes use to wrap the fields above.
    #[serde(rename = "Detail")]
    pub detail: Option<ErrorDetail>,
}

/// The optional `<Detail>` child of an error document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ErrorDetail {
    /// `ServerTime`.
    #[serde(rename = "ServerTime")]
    pub server_time: Option<String>,
    /// `RequestTime`.
    #[serde(rename = "RequestTime")]
    pub request_time: Option<String>,
    /// `MaxAllowedSkewMilliseconds`.
    #[serde(rename = "MaxAllowedSkewMilliseconds")]
    pub max_allowed_skew_ms: Option<String>,
}

impl ErrorDocument {
    /// Parses an `<Error>` document. Returns `None` when the text is not XML
    /// whose root element is `Error` (an HTML error page, garbage, empty).
    pub fn parse(text: &str) -> Option<ErrorDocument> {
        if root_element_name(text)? != "Error" {
            return None;
        }
        let doc: ErrorDocument = quick_xml::de::from_str(text).ok()?;
        Some(doc.trimmed())
    }

    /// The server time the document reports (top level or in `Detail`).
    pub fn server_time(&self) -> Option<&str> {
        self.server_time
            .as_deref()
            .or_else(|| self.detail.as_ref()?.server_time.as_deref())
    }

    fn trimmed(mut self) -> Self {
        for f in [
            &mut self.code,
            &mut self.message,
            &mut self.request_id,
            &mut self.host_id,
            &mut self.ec,
            &mut self.recommend_doc,
            &mut self.server_time,
            &mut self.request_time,
            &mut self.max_allowed_skew_ms,
        ] {
            if let Some(v) = f.take() {
                let t = v.trim();
                if !t.is_empty() {
                    *f = Some(t.to_string());
                }
            }
        }
        self
    }
}

/// The name of the first element of an XML document, skipping the
/// declaration, comments, processing instructions and a doctype.
pub fn root_element_name(text: &str) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) | Event::Empty(e) => {
                return Some(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
            }
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Text(t) if t.iter().all(|b| b.is_ascii_whitespace()) => {}
            _ => return None,
        }
    }
}

/// Parses `text` as the XML document `T` whose root element is `root`;
/// `None` when it is not XML with that root or cannot be read.
pub fn parse_document<T: serde::de::DeserializeOwned>(text: &str, root: &str) -> Option<T> {
    if root_element_name(text)? != root {
        return None;
    }
    quick_xml::de::from_str(text).ok()
}

/// `<InitiateMultipartUploadResult>` (InitiateMultipartUpload).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct InitiateMultipartUploadResult {
    /// `Bucket`.
    #[serde(rename = "Bucket")]
    pub bucket: Option<String>,
    /// `Key` (URL-encoded when `EncodingType` is `url`).
    #[serde(rename = "Key")]
    pub key: Option<String>,
    /// `UploadId`.
    #[serde(rename = "UploadId")]
    pub upload_id: Option<String>,
    /// `EncodingType` (`url` when keys are URL-encoded).
    #[serde(rename = "EncodingType")]
    pub encoding_type: Option<String>,
}

/// `<CopyObjectResult>` (CopyObject) and `<CopyPartResult>` (UploadPartCopy):
/// the same two children.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CopyResult {
    /// `ETag` (quoted).
    #[serde(rename = "ETag")]
    pub etag: Option<String>,
    /// `LastModified` (ISO 8601).
    #[serde(rename = "LastModified")]
    pub last_modified: Option<String>,
}

/// `<CompleteMultipartUploadResult>` (CompleteMultipartUpload).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CompleteMultipartUploadResult {
    /// `EncodingType`.
    #[serde(rename = "EncodingType")]
    pub encoding_type: Option<String>,
    /// `Location`.
    #[serde(rename = "Location")]
    pub location: Option<String>,
    /// `Bucket`.
    #[serde(rename = "Bucket")]
    pub bucket: Option<String>,
    /// `Key` (URL-encoded when `EncodingType` is `url`).
    #[serde(rename = "Key")]
    pub key: Option<String>,
    /// `ETag` of the object (`"…-N"`).
    #[serde(rename = "ETag")]
    pub etag: Option<String>,
}

/// One `<Part>` of a `<ListPartsResult>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ListedPart {
    /// `PartNumber`.
    #[serde(rename = "PartNumber")]
    pub part_number: Option<String>,
    /// `LastModified` (ISO 8601).
    #[serde(rename = "LastModified")]
    pub last_modified: Option<String>,
    /// `ETag` (quoted).
    #[serde(rename = "ETag")]
    pub etag: Option<String>,
    /// `HashCrc64ecma` (decimal).
    #[serde(rename = "HashCrc64ecma")]
    pub hash_crc64ecma: Option<String>,
    /// `Size` in bytes.
    #[serde(rename = "Size")]
    pub size: Option<String>,
}

/// `<ListPartsResult>` (ListParts).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ListPartsResult {
    /// `Bucket`.
    #[serde(rename = "Bucket")]
    pub bucket: Option<String>,
    /// `Key`.
    #[serde(rename = "Key")]
    pub key: Option<String>,
    /// `UploadId`.
    #[serde(rename = "UploadId")]
    pub upload_id: Option<String>,
    /// `PartNumberMarker`.
    #[serde(rename = "PartNumberMarker")]
    pub part_number_marker: Option<String>,
    /// `NextPartNumberMarker`.
    #[serde(rename = "NextPartNumberMarker")]
    pub next_part_number_marker: Option<String>,
    /// `MaxParts`.
    #[serde(rename = "MaxParts")]
    pub max_parts: Option<String>,
    /// `IsTruncated` (`true`/`false`).
    #[serde(rename = "IsTruncated")]
    pub is_truncated: Option<String>,
    /// `StorageClass`.
    #[serde(rename = "StorageClass")]
    pub storage_class: Option<String>,
    /// `EncodingType`.
    #[serde(rename = "EncodingType")]
    pub encoding_type: Option<String>,
    /// The `Part` elements, in document order.
    #[serde(rename = "Part")]
    pub parts: Vec<ListedPart>,
}

/// One `<Upload>` of a `<ListMultipartUploadsResult>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ListedUpload {
    /// `Key` (URL-encoded when `EncodingType` is `url`).
    #[serde(rename = "Key")]
    pub key: Option<String>,
    /// `UploadId`.
    #[serde(rename = "UploadId")]
    pub upload_id: Option<String>,
    /// `Initiated` (ISO 8601).
    #[serde(rename = "Initiated")]
    pub initiated: Option<String>,
    /// `StorageClass`.
    #[serde(rename = "StorageClass")]
    pub storage_class: Option<String>,
}

/// `<ListMultipartUploadsResult>` (ListMultipartUploads).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ListMultipartUploadsResult {
    /// `Bucket`.
    #[serde(rename = "Bucket")]
    pub bucket: Option<String>,
    /// `EncodingType`.
    #[serde(rename = "EncodingType")]
    pub encoding_type: Option<String>,
    /// `Prefix`.
    #[serde(rename = "Prefix")]
    pub prefix: Option<String>,
    /// `IsTruncated` (`true`/`false`).
    #[serde(rename = "IsTruncated")]
    pub is_truncated: Option<String>,
    /// `NextKeyMarker`.
    #[serde(rename = "NextKeyMarker")]
    pub next_key_marker: Option<String>,
    /// `NextUploadIdMarker`.
    #[serde(rename = "NextUploadIdMarker")]
    pub next_upload_id_marker: Option<String>,
    /// The `Upload` elements, in document order.
    #[serde(rename = "Upload")]
    pub uploads: Vec<ListedUpload>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example body of OSS's "Error responses" page (docs/oss-protocol.md, "Errors").
    const DOC_ERR: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>MissingArgument</Code>
  <Message>Missing Some Required Arguments.</Message>
  <RequestId>57ABD896CCB80C366955****</RequestId>
  <HostId>oss-example.oss-cn-hangzhou.aliyuncs.com</HostId>
  <EC>0016-00000502</EC>
  <RecommendDoc>https://api.aliyun.com/troubleshoot?q=0016-00000502</RecommendDoc>
</Error>"#;

    #[test]
    fn parses_documented_error_body() {
        let doc = ErrorDocument::parse(DOC_ERR).unwrap();
        assert_eq!(doc.code.as_deref(), Some("MissingArgument"));
        assert_eq!(
            doc.message.as_deref(),
            Some("Missing Some Required Arguments.")
        );
        assert_eq!(doc.request_id.as_deref(), Some("57ABD896CCB80C366955****"));
        assert_eq!(
            doc.host_id.as_deref(),
            Some("oss-example.oss-cn-hangzhou.aliyuncs.com")
        );
        assert_eq!(doc.ec.as_deref(), Some("0016-00000502"));
        assert_eq!(
            doc.recommend_doc.as_deref(),
            Some("https://api.aliyun.com/troubleshoot?q=0016-00000502")
        );
    }

    #[test]
    fn ignores_unknown_children_of_signature_mismatch() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>SignatureDoesNotMatch</Code>
  <Message>The request signature we calculated does not match the signature you provided. Check your key and signing method.</Message>
  <RequestId>5C3D8D2A0ACA54D87B43****</RequestId>
  <HostId>examplebucket.oss-cn-hangzhou.aliyuncs.com</HostId>
  <OSSAccessKeyId>LTAI5tExampleAccessKeyId</OSSAccessKeyId>
  <SignatureProvided>zTCVYC5W2Jqhc1sEcnc6pn58dCs=</SignatureProvided>
  <StringToSign>PUT&#10;&#10;&#10;Wed, 15 Jan 2025 08:30:00 GMT&#10;/examplebucket/k</StringToSign>
  <StringToSignBytes>50 55 54 0A</StringToSignBytes>
  <EC>0002-00000040</EC>
</Error>"#;
        let doc = ErrorDocument::parse(body).unwrap();
        assert_eq!(doc.code.as_deref(), Some("SignatureDoesNotMatch"));
        assert_eq!(doc.ec.as_deref(), Some("0002-00000040"));
        assert_eq!(
            doc.string_to_sign.as_deref(),
            Some("PUT\n\n\nWed, 15 Jan 2025 08:30:00 GMT\n/examplebucket/k")
        );
    }

    #[test]
    fn clock_skew_fields_top_level_and_in_detail() {
        let top = r#"<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message><RequestId>R</RequestId><HostId>h</HostId><MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds><RequestTime>2025-01-15T08:00:00.000Z</RequestTime><ServerTime>2025-01-15T08:30:00.000Z</ServerTime><EC>0002-00000504</EC></Error>"#;
        let doc = ErrorDocument::parse(top).unwrap();
        assert_eq!(doc.server_time(), Some("2025-01-15T08:30:00.000Z"));
        assert_eq!(doc.max_allowed_skew_ms.as_deref(), Some("900000"));
        let nested = r#"<Error><Code>RequestTimeTooSkewed</Code><Detail><ServerTime>2025-01-15T08:30:00.000Z</ServerTime><RequestTime>x</RequestTime></Detail></Error>"#;
        let doc = ErrorDocument::parse(nested).unwrap();
        assert_eq!(doc.server_time(), Some("2025-01-15T08:30:00.000Z"));
        assert_eq!(doc.message, None);
    }

    #[test]
    fn rejects_non_error_documents() {
        for body in [
            "",
            "   ",
            "not xml at all",
            "<html><body>502 Bad Gateway</body></html>",
            "<Tagging><TagSet/></Tagging>",
            "\u{0}\u{1}garbage<Error>",
        ] {
            assert_eq!(ErrorDocument::parse(body), None, "{body:?}");
        }
    }

    #[test]
    fn empty_and_partial_error_documents() {
        let doc = ErrorDocument::parse("<Error/>").unwrap();
        assert_eq!(doc, ErrorDocument::default());
        let doc =
            ErrorDocument::parse("<Error><Code> NoSuchKey </Code><Message/></Error>").unwrap();
        assert_eq!(doc.code.as_deref(), Some("NoSuchKey"));
        assert_eq!(doc.message, None);
    }

    #[test]
    fn root_name_skips_prolog() {
        assert_eq!(
            root_element_name("<?xml version=\"1.0\"?>\n<!-- c -->\n<Error/>").as_deref(),
            Some("Error")
        );
        assert_eq!(root_element_name("text<Error/>"), None);
    }
}
