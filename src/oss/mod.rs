//! The OSS REST client: HTTP, XML and signing.
pub mod credentials;
pub mod sign;

pub mod endpoint;
pub mod error;
pub mod xml;

pub use endpoint::Addressing;
pub use error::{OssError, OssErrorKind};
