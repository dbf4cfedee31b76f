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

/// The CRC of `a ++ b` from `crc(a)`, `crc(b)` and `b`'s length, without the data: how a
/// multipart object's CRC follows from its parts' CRCs.
pub fn crc64_combine(crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    crc_fast::checksum_combine(CrcAlgorithm::Crc64Xz, crc_a, crc_b, len_b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn combining_part_crcs_gives_the_whole_crc() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
        for split in [0, 1, 4096, 9_999, 10_000] {
            let (a, b) = data.split_at(split);
            assert_eq!(
                crc64_combine(crc64(a), crc64(b), b.len() as u64),
                crc64(&data),
                "split at {split}"
            );
        }
    }

    /// Bit-by-bit CRC-64/XZ, straight from the definition (reflected
    /// ECMA-182 polynomial, init and xorout all ones).
    fn reference(data: &[u8]) -> u64 {
        const POLY_REFLECTED: u64 = 0xC96C_5795_D787_0F42;
        let mut crc = u64::MAX;
        for &b in data {
            crc ^= u64::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ POLY_REFLECTED
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn check_value() {
        assert_eq!(crc64(b"123456789"), 0x995D_C9BB_DF19_39FA);
        assert_eq!(crc64(b"123456789"), 11_051_210_869_376_104_954);
        assert_eq!(reference(b"123456789"), 0x995D_C9BB_DF19_39FA);
    }

    #[test]
    fn empty_is_zero() {
        assert_eq!(crc64(b""), 0);
        assert_eq!(Crc64::new().value(), 0);
        assert_eq!(Crc64::default().value(), 0);
    }

    #[test]
    fn incremental_matches_one_shot() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut c = Crc64::new();
        for chunk in data.chunks(777) {
            c.update(chunk);
        }
        assert_eq!(c.value(), crc64(&data));
        assert_eq!(c.value(), reference(&data));
        // value() does not consume or reset the state.
        assert_eq!(c.value(), crc64(&data));
        c.update(b"x");
        let mut more = data.clone();
        more.push(b'x');
        assert_eq!(c.value(), crc64(&more));
    }

    #[test]
    fn clone_forks_the_state() {
        let mut a = Crc64::new();
        a.update(b"1234");
        let mut b = a.clone();
        a.update(b"56789");
        b.update(b"x");
        assert_eq!(a.value(), crc64(b"123456789"));
        assert_eq!(b.value(), crc64(b"1234x"));
        assert!(format!("{a:?}").starts_with("Crc64("));
    }

    proptest! {
        #[test]
        fn matches_reference_for_any_split(
            data in proptest::collection::vec(any::<u8>(), 0..2048),
            split in 0usize..2048,
        ) {
            let split = split.min(data.len());
            let mut c = Crc64::new();
            c.update(&data[..split]);
            c.update(&data[split..]);
            prop_assert_eq!(c.value(), reference(&data));
            prop_assert_eq!(crc64(&data), reference(&data));
        }
    }
}
