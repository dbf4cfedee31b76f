//! The OSS REST client: HTTP, XML and signing.
pub mod credentials;
pub mod sign;
