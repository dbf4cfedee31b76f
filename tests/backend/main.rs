//! The emulator and the crate's OSS client, tested over loopback HTTP: one test binary (the
//! crate links once instead of six times) sharing one harness, [`support`].
//!
//! - `emulator_captures`: the official SDKs' captured requests verify through the emulator.
//! - `emulator_cli`: `ossgate emulator` as a process.
//! - `emulator_http`, `emulator_listing`, `emulator_multipart`, `emulator_metaquery`: the
//!   emulator's operations over real HTTP.
//! - `oss_client_smoke`, `oss_multipart_smoke`: the crate's OSS client against the emulator.
//! - `real_oss`: the same client operations against a real OSS bucket (opt-in, see there).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod emulator_captures;
mod emulator_cli;
mod emulator_http;
mod emulator_listing;
mod emulator_metaquery;
mod emulator_multipart;
mod oss_client_smoke;
mod oss_multipart_smoke;
mod real_oss;
mod support;
