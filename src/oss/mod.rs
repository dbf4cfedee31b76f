//! The OSS REST client: HTTP, XML and signing.
//!
//! [`Client`] sends signed requests built by the pure builders in [`ops`];
//! every failure is an [`OssError`] classified by [`error::classify`].
pub mod credentials;
pub mod sign;

mod body;
pub mod client;
pub mod copier;
pub mod endpoint;
pub mod error;
pub mod ops;
pub mod protocol;
pub mod retry;
pub mod upload;
pub mod xml;

pub use client::{BoxError, Client, ClientConfig, ClientOptions, ConfigError};
pub use endpoint::Addressing;
pub use error::{OssError, OssErrorKind};
pub use ops::object::ObjectId;
pub use ops::{
    AbortMultipartUploadOutput, AppendObjectInput, AppendObjectOutput,
    CompleteMultipartUploadInput, CompleteMultipartUploadOutput, CompleteParts, CompletedPart,
    CopyMetadata, CopyObjectInput, CopyObjectOutput, CopySource, CopySourceConditions, CopyTagging,
    InitiateMultipartUploadInput, InitiateMultipartUploadOutput, ListMultipartUploadsInput,
    ListMultipartUploadsOutput, ListPartsInput, ListPartsOutput, MultipartUpload,
    MultipartUploadId, Part, UploadPartCopyInput, UploadPartCopyOutput, UploadPartInput,
    UploadPartOutput,
};
pub use ops::{
    ByteRange, ByteStream, ContentHeaders, ContentRange, DeleteObjectInput, DeleteObjectOutput,
    DeleteObjectTaggingInput, DeleteObjectTaggingOutput, GetObjectInput, GetObjectOutput,
    GetObjectTaggingInput, GetObjectTaggingOutput, GetSymlinkInput, GetSymlinkOutput,
    HeadObjectInput, ObjectAttributes, ObjectHead, OssOperation, OssRequest, Payload,
    PutObjectInput, PutObjectOutput, PutObjectTaggingInput, PutObjectTaggingOutput,
    PutSymlinkInput, PutSymlinkOutput,
};
pub use ops::{
    DoMetaQueryInput, DoMetaQueryOutput, MetaQueryCondition, MetaQueryFile, MetaQueryStatus,
};
pub use ops::{
    ListObjectVersionsInput, ListObjectVersionsOutput, ListObjectsV2Input, ListObjectsV2Output,
    ListScope, ListedObject,
};
