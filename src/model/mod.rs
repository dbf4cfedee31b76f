//! Validated value types shared by the gRPC layer, the OSS client and the
//! emulator, plus their wire codecs (tag header, tagging XML) and CRC-64.
//!
//! Every constructor that takes untrusted input validates it and reports each
//! problem as a [`Violation`] naming the offending field; nothing here panics
//! on any input.

mod crc64;
mod echo;
mod enums;
mod metadata;
mod names;
pub mod query;
mod tags;
#[cfg(test)]
pub(crate) mod test_support;
mod violation;

pub use crc64::{Crc64, crc64, crc64_combine};
pub use echo::clip;
pub use enums::{ObjectAcl, ObjectType, StorageClass};
pub use metadata::{META_PREFIX, UserMetadata};
pub use names::{BucketName, ObjectKey, VersionId};
pub use tags::TagSet;
pub use violation::Violation;
