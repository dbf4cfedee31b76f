//! CRC-64/XZ, the checksum OSS reports as `x-oss-hash-crc64ecma`.

use std::fmt;

use crc_fast::{CrcAlgorithm, Digest};

/// Incremental CRC-64/XZ (= OSS `x-oss-hash-crc64ecma`; ECMA-182 polynomial,
/// reflected, init and xorout all ones), SIMD-accelerated via `crc-fast`.
/// The check value for `"123456789"` is `0x995DC9BBDF1939FA`.
#[derive(Clone)]
pub struct Crc64(Digest);

impl Crc64 {
    /// A fresh checksum state (the CRC of no data is 0).
    pub fn new() -> Self {
        Self(Digest::new(CrcAlgorithm::Crc64Xz))
    }

    /// Feeds more data.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The CRC of everything fed so far (the state is not consumed).
    pub fn value(&self) -> u64 {
        self.0.finalize()
    }
}

impl Default for Crc64 {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Crc64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Crc64").field(&self.value()).finish()
    }
}

/// CRC-64/XZ of `data` in one call (see [`Crc64`]).
pub fn crc64(data: &[u8]) -> u64 {
    crc_fast::checksum(CrcAlgorithm::Crc64Xz, data)
}
