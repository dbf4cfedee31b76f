//! Turns request fields into validated model values, collecting every problem so the caller
//! gets one INVALID_ARGUMENT listing them all (and nothing reaches OSS).

use std::collections::HashMap;

use tonic::Status;

use super::status::invalid_argument;
use crate::{
    model::{
        BucketName, ObjectAcl, ObjectKey, StorageClass, TagSet, UserMetadata, VersionId, Violation,
    },
    oss::{ContentHeaders, ObjectAttributes, ObjectId},
    proto,
};

/// The content headers of a request, as given (empty = not set).
pub(crate) struct ContentFields<'a> {
    pub content_type: &'a str,
    pub cache_control: &'a str,
    pub content_disposition: &'a str,
    pub content_encoding: &'a str,
    pub expires: &'a str,
}

/// What a call that creates an object gives for it (a WriteObjectSpec or an
/// AppendObjectSpec), as given.
pub(crate) struct NewObjectFields<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub tagging: Option<&'a proto::Tagging>,
    pub metadata: &'a HashMap<String, String>,
    pub content: ContentFields<'a>,
    pub storage_class: i32,
    pub acl: i32,
    pub forbid_overwrite: bool,
}

/// [`NewObjectFields`] validated; each field is `None` when it had a violation.
pub(crate) struct NewObject {
    pub target: Option<ObjectId>,
    pub attributes: Option<ObjectAttributes>,
}

macro_rules! new_object_fields_from {
    ($spec:ty, $forbid_overwrite:expr) => {
        impl<'a> From<&'a $spec> for NewObjectFields<'a> {
            fn from(spec: &'a $spec) -> Self {
                Self {
                    bucket: &spec.bucket,
                    key: &spec.key,
                    tagging: spec.tagging.as_ref(),
                    metadata: &spec.metadata,
                    content: ContentFields {
                        content_type: &spec.content_type,
                        cache_control: &spec.cache_control,
                        content_disposition: &spec.content_disposition,
                        content_encoding: &spec.content_encoding,
                        expires: &spec.expires,
                    },
                    storage_class: spec.storage_class,
                    acl: spec.acl,
                    forbid_overwrite: $forbid_overwrite(spec),
                }
            }
        }
    };
}
new_object_fields_from!(proto::WriteObjectSpec, |spec: &proto::WriteObjectSpec| spec
    .forbid_overwrite);
// AppendObject has no forbid-overwrite (see `AppendObjectInput::attributes`).
new_object_fields_from!(proto::AppendObjectSpec, |_| false);

/// Collects violations while request fields are parsed.
#[derive(Default)]
pub(crate) struct Validation {
    violations: Vec<Violation>,
}

impl Validation {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem that no parser reports (a missing message, a cross-field rule).
    pub fn violation(&mut self, field: &str, description: impl Into<String>) {
        self.violations.push(Violation::new(field, description));
    }

    /// How many problems were recorded so far.
    pub fn violation_count(&self) -> usize {
        self.violations.len()
    }

    fn keep<T>(&mut self, field: &str, parsed: Result<T, Violation>) -> Option<T> {
        parsed
            .map_err(|v| self.violations.push(v.under(field)))
            .ok()
    }

    fn keep_all<T>(&mut self, field: &str, parsed: Result<T, Vec<Violation>>) -> Option<T> {
        parsed
            .map_err(|vs| {
                self.violations
                    .extend(vs.into_iter().map(|v| v.under(field)))
            })
            .ok()
    }

    /// The fields of an object a call creates, named under `prefix` (`spec`).
    pub fn new_object(&mut self, prefix: &str, fields: NewObjectFields<'_>) -> NewObject {
        let field = |name: &str| format!("{prefix}.{name}");
        // Each field is checked (and its violations collected) in this order.
        let target = self.object_ref_at(prefix, fields.bucket, fields.key, "");
        let tags = self.tagging(&field("tagging"), fields.tagging);
        let metadata = self.metadata(&field("metadata"), fields.metadata);
        let content = self.content_headers(prefix, fields.content);
        let storage_class = self.storage_class(&field("storage_class"), fields.storage_class);
        let acl = self.acl(&field("acl"), fields.acl);
        let attributes = (|| {
            Some(ObjectAttributes {
                content: content?,
                metadata: metadata?,
                tags: tags?.unwrap_or_default(),
                storage_class: storage_class?,
                acl: acl?,
                forbid_overwrite: fields.forbid_overwrite,
            })
        })();
        NewObject { target, attributes }
    }

    /// `bucket`, `key` and an optional `version_id` (empty means the current version).
    pub fn object_ref(&mut self, bucket: &str, key: &str, version_id: &str) -> Option<ObjectId> {
        self.object_ref_at("", bucket, key, version_id)
    }

    /// Like [`Self::object_ref`] for fields nested under `prefix` (e.g. `spec`).
    pub fn object_ref_at(
        &mut self,
        prefix: &str,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Option<ObjectId> {
        let field = |name: &str| {
            if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}.{name}")
            }
        };
        let bucket = self.bucket(&field("bucket"), bucket);
        let key = self.key(&field("key"), key);
        let version_id = self.version_id(&field("version_id"), version_id);
        Some(ObjectId::new(bucket?, key?).with_version(version_id?))
    }

    pub fn bucket(&mut self, field: &str, value: &str) -> Option<BucketName> {
        self.keep(field, BucketName::parse(value))
    }

    pub fn key(&mut self, field: &str, value: &str) -> Option<ObjectKey> {
        self.keep(field, ObjectKey::parse(value))
    }

    /// An empty version id means "the current version".
    pub fn version_id(&mut self, field: &str, value: &str) -> Option<Option<VersionId>> {
        if value.is_empty() {
            return Some(None);
        }
        self.keep(field, VersionId::parse(value)).map(Some)
    }

    /// An absent `Tagging` message means "no tags given".
    pub fn tagging(
        &mut self,
        field: &str,
        value: Option<&proto::Tagging>,
    ) -> Option<Option<TagSet>> {
        match value {
            None => Some(None),
            Some(tagging) => self.tag_set(field, tagging).map(Some),
        }
    }

    pub fn tag_set(&mut self, field: &str, tagging: &proto::Tagging) -> Option<TagSet> {
        let pairs = tagging.tags.iter().map(|(k, v)| (k.clone(), v.clone()));
        self.keep_all(field, TagSet::from_pairs(pairs))
    }

    pub fn metadata(
        &mut self,
        field: &str,
        value: &HashMap<String, String>,
    ) -> Option<UserMetadata> {
        let pairs = value.iter().map(|(k, v)| (k.clone(), v.clone()));
        // The model names its problems `metadata[...]`; the request field replaces that root.
        UserMetadata::from_pairs(pairs)
            .map_err(|violations| {
                self.violations.extend(violations.into_iter().map(|v| {
                    let rest = v.field.strip_prefix("metadata").unwrap_or(&v.field);
                    Violation::new(rest, v.description).under(field)
                }))
            })
            .ok()
    }

    pub fn storage_class(&mut self, field: &str, value: i32) -> Option<Option<StorageClass>> {
        match proto::StorageClass::try_from(value) {
            Ok(class) => Some(super::convert::storage_class_from_proto(class)),
            Err(_) => {
                self.violation(field, format!("{value} is not a StorageClass value"));
                None
            }
        }
    }

    pub fn acl(&mut self, field: &str, value: i32) -> Option<Option<ObjectAcl>> {
        match proto::ObjectAcl::try_from(value) {
            Ok(acl) => Some(super::convert::acl_from_proto(acl)),
            Err(_) => {
                self.violation(field, format!("{value} is not an ObjectAcl value"));
                None
            }
        }
    }

    /// The five content headers a request may set, named under `prefix` (`""` or `spec`).
    pub fn content_headers(
        &mut self,
        prefix: &str,
        fields: ContentFields<'_>,
    ) -> Option<ContentHeaders> {
        let field = |name: &str| {
            if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}.{name}")
            }
        };
        let content_type = self.header_text(&field("content_type"), fields.content_type);
        let cache_control = self.header_text(&field("cache_control"), fields.cache_control);
        let content_disposition =
            self.header_text(&field("content_disposition"), fields.content_disposition);
        let content_encoding =
            self.header_text(&field("content_encoding"), fields.content_encoding);
        let expires = self.header_text(&field("expires"), fields.expires);
        Some(ContentHeaders {
            content_type: content_type?,
            cache_control: cache_control?,
            content_disposition: content_disposition?,
            content_encoding: content_encoding?,
            expires: expires?,
        })
    }

    /// Plain header text (Content-Type, Cache-Control...): printable ASCII, no edge spaces,
    /// at most 1024 bytes. Empty means "not given".
    pub fn header_text(&mut self, field: &str, value: &str) -> Option<Option<String>> {
        if value.is_empty() {
            return Some(None);
        }
        if value.len() > 1024 {
            self.violation(
                field,
                format!("is {} bytes; the limit is 1024", value.len()),
            );
            return None;
        }
        if !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) || value.trim() != value {
            self.violation(
                field,
                "must be printable ASCII without leading or trailing spaces",
            );
            return None;
        }
        Some(Some(value.to_string()))
    }

    /// The parsed values when nothing was wrong, else INVALID_ARGUMENT listing every
    /// violation. `parsed` is `None` whenever some parser above recorded a violation.
    pub fn conclude<T>(self, parsed: Option<T>) -> Result<T, Status> {
        match parsed {
            Some(value) if self.violations.is_empty() => Ok(value),
            _ => Err(invalid_argument(self.violations)),
        }
    }
}

/// The protobuf → model edge under arbitrary input: nothing panics, and what is accepted
/// becomes an OSS request that carries exactly the validated values (read back the way the
/// emulator reads them). Bounded case counts keep the pass to a few seconds.
#[cfg(test)]
mod proptests {
    use std::collections::HashMap;

    use proptest::{collection::hash_map, prelude::*};
    use prost::Message;

    use super::*;
    use crate::{
        emulator::route,
        oss::{
            PutObjectInput,
            endpoint::encode_key_path,
            ops::{object::build_put_object, tagging::build_put_object_tagging},
        },
    };

    /// `valid` most of the time, else text with the characters validation is about.
    fn mostly(valid: &str, max: usize) -> impl Strategy<Value = String> + use<> {
        let regex = |pattern: &str| proptest::string::string_regex(pattern).unwrap();
        prop_oneof![
            8 => regex(valid),
            1 => regex(&format!(
                "[a-zA-Z0-9 +=._:/&<>\"'%\\\\é日\\t\\n\\u{{1}}\\u{{7f}}-]{{0,{max}}}"
            )),
            1 => regex(&format!("\\PC{{0,{max}}}")),
        ]
    }

    fn text(max: usize) -> impl Strategy<Value = String> {
        mostly(&format!("[a-z0-9-]{{0,{max}}}"), max)
    }

    fn string_map(
        key: &str,
        value: &str,
        max_entries: usize,
    ) -> impl Strategy<Value = HashMap<String, String>> + use<> {
        hash_map(mostly(key, 12), mostly(value, 24), 0..max_entries)
    }

    fn tag_map() -> impl Strategy<Value = HashMap<String, String>> {
        string_map(
            "[a-zA-Z0-9 +=._:/é-]{1,12}",
            "[a-zA-Z0-9 +=._:/é-]{0,20}",
            6,
        )
    }

    prop_compose! {
        fn write_spec()(
            bucket in mostly("[a-z0-9][a-z0-9-]{1,20}[a-z0-9]", 70),
            key in prop_oneof![
                18 => mostly("[a-zA-Z0-9 /._=+&é日-]{1,30}", 40),
                1 => Just(".".to_owned()),
                1 => Just("..".to_owned()),
            ],
            tags in proptest::option::of(tag_map()),
            metadata in string_map("[a-zA-Z0-9-]{1,10}", "[!-~]([ -~]{0,18}[!-~])?", 4),
            content_type in mostly("[!-~]{0,20}", 20),
            cache_control in mostly("[!-~]{0,20}", 20),
            storage_class in prop_oneof![9 => 0i32..4, 1 => any::<i32>()],
            acl in prop_oneof![9 => 0i32..4, 1 => any::<i32>()],
        ) -> proto::WriteObjectSpec {
            proto::WriteObjectSpec {
                bucket,
                key,
                tagging: tags.map(|tags| proto::Tagging { tags }),
                metadata,
                content_type,
                cache_control,
                storage_class,
                acl,
                ..Default::default()
            }
        }
    }

    /// A WriteObjectSpec through validation: the PutObject it becomes, or the refusal.
    fn put_input(spec: &proto::WriteObjectSpec) -> Result<PutObjectInput, Status> {
        let mut v = Validation::new();
        let parsed = v.new_object("spec", spec.into());
        v.conclude((|| {
            let target = parsed.target?;
            let mut input = PutObjectInput::new(target.bucket, target.key);
            input.attributes = parsed.attributes?;
            Some(input)
        })())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic_the_decode_and_validation(
            bytes in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            if let Ok(request) = proto::WriteObjectRequest::decode(bytes.as_slice())
                && let Some(spec) = &request.spec
            {
                let _ = put_input(spec);
            }
            if let Ok(request) = proto::PutObjectTaggingRequest::decode(bytes.as_slice()) {
                let mut v = Validation::new();
                let _ = v.object_ref(&request.bucket, &request.key, &request.version_id);
                let _ = v.tagging("tagging", request.tagging.as_ref());
            }
        }

        #[test]
        fn accepted_specs_become_the_oss_request_they_describe(spec in write_spec()) {
            let input = match put_input(&spec) {
                Ok(input) => input,
                Err(status) => {
                    // A refusal is INVALID_ARGUMENT with at least one named field.
                    prop_assert_eq!(status.code(), tonic::Code::InvalidArgument);
                    prop_assert!(status.message().starts_with("invalid request: "));
                    return Ok(());
                }
            };
            let request = build_put_object(&input);
            // The key survives the URL as the emulator decodes it.
            let path = format!("/{}/{}", input.bucket, encode_key_path(input.key.as_str()));
            let target = route::resolve(None, &path, &|_| true).unwrap();
            prop_assert_eq!(target.bucket.as_deref(), Some(input.bucket.as_str()));
            prop_assert_eq!(target.key.as_deref(), Some(input.key.as_str()));
            // Tags, metadata and content headers read back from the headers as sent.
            let tags = match request.header("x-oss-tagging") {
                Some(value) => TagSet::parse_header_value(value).unwrap(),
                None => TagSet::empty(),
            };
            prop_assert_eq!(&tags, &input.attributes.tags);
            let given_tags: HashMap<String, String> = spec.tagging.map(|t| t.tags).unwrap_or_default();
            prop_assert_eq!(tags.into_map().into_iter().collect::<HashMap<_, _>>(), given_tags);
            let headers = request.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            prop_assert_eq!(&UserMetadata::from_headers(headers), &input.attributes.metadata);
            let given_metadata: HashMap<String, String> = spec
                .metadata
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect();
            prop_assert_eq!(input.attributes.metadata.into_map().into_iter().collect::<HashMap<_, _>>(), given_metadata);
            let header_or_empty = |name: &str| request.header(name).unwrap_or("").to_owned();
            prop_assert_eq!(header_or_empty("content-type"), spec.content_type);
            prop_assert_eq!(header_or_empty("cache-control"), spec.cache_control);
        }

        #[test]
        fn accepted_tag_sets_become_the_tagging_xml_they_describe(
            bucket in mostly("[a-z0-9]{3,8}", 8), key in text(8), tags in tag_map(),
        ) {
            let mut v = Validation::new();
            let object = v.object_ref(&bucket, &key, "");
            let tag_set = v.tag_set("tagging", &proto::Tagging { tags: tags.clone() });
            let Ok((object, tag_set)) = v.conclude((|| Some((object?, tag_set?)))()) else {
                return Ok(());
            };
            let request = build_put_object_tagging(&crate::oss::PutObjectTaggingInput::new(
                object.bucket,
                object.key,
                tag_set,
            ));
            let crate::oss::Payload::Bytes(body) = &request.payload else {
                panic!("PutObjectTagging sends its XML as a body: {:?}", request.payload);
            };
            let xml = std::str::from_utf8(body).unwrap();
            let parsed: HashMap<String, String> = crate::oss::xml::parse_tagging_xml(xml)
                .unwrap()
                .into_iter()
                .collect();
            prop_assert_eq!(parsed, tags);
        }
    }
}
