//! ossgate: a gRPC gateway to Alibaba Cloud OSS object tagging.
//!
//! Layers, in the only direction calls go: [`rpc`] (gRPC, validation, error
//! mapping) → [`oss`] (HTTP, XML, signing) → network. [`model`] holds the
//! validated value types both use. [`emulator`] is a separate OSS-compatible
//! HTTP server that shares [`model`] and [`oss::sign`] to verify requests.

pub mod config;
pub mod emulator;
pub mod lock;
pub mod model;
pub mod oss;
pub mod rpc;
pub mod server;
pub mod telemetry;

/// Generated protobuf and gRPC code for `ossgate.v1`.
pub mod proto {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("ossgate.v1");

    /// The encoded descriptor set, served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("ossgate_descriptor");
}
