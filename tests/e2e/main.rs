//! End-to-end tests: the real gateway against the real emulator over loopback, through HTTP,
//! signing and XML, called with the generated gRPC client.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod audit_capture;
mod auth;
mod common;
mod conformance;
mod copy;
mod credentials;
mod edge;
mod errors;
mod find;
mod grpcurl;
mod lifecycle;
mod limits;
mod list;
mod load;
mod orphans;
mod patch;
mod resilience;
mod retry_metrics;
mod streaming;
mod tag_policy;
mod tagging;
mod telemetry;
mod tls;
mod validation;
mod write_auth;
mod write_read;
