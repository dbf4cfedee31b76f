//! The checks every message of a write stream passes: offsets in order, no more than the
//! declared size, checksums on the first or last message only, and at `finish_write` the
//! size and the caller's checksums against what arrived.

use bytes::Bytes;
use md5::{Digest, Md5};
use tonic::Status;

use crate::model::{Crc64, crc64_combine};
use crate::oss::protocol::limit::MAX_OBJECT_BYTES;
use crate::proto;
use crate::rpc::status::invalid_field;

/// A message's `write_offset`, which may not be negative.
pub(super) fn write_offset(offset: i64) -> Result<u64, Status> {
    u64::try_from(offset)
        .map_err(|_| invalid_field("write_offset", format!("{offset} is negative")))
}

/// Checks each message of a stream (offsets, size, checksums) and keeps the running CRC.
pub(super) struct Intake {
    pub(super) expected_offset: u64,
    limit: u64,
    object_size: Option<u64>,
    crc: Crc64,
    md5: Option<Md5>,
    expected_crc64: Option<u64>,
    expected_md5: Option<[u8; 16]>,
    first: bool,
}

/// One message's worth of checked data.
pub(super) struct Accepted {
    pub(super) data: Bytes,
    pub(super) finish: bool,
}

impl Intake {
    pub(super) fn new(
        plan_size: Option<u64>,
        crc: Option<u64>,
        md5: Option<[u8; 16]>,
        start: u64,
    ) -> Self {
        Self {
            expected_offset: start,
            limit: plan_size.unwrap_or(MAX_OBJECT_BYTES),
            object_size: plan_size,
            crc: Crc64::new(),
            md5: md5.map(|_| Md5::new()),
            expected_crc64: crc,
            expected_md5: md5,
            first: true,
        }
    }

    /// Checks one message; returns its data (with bytes before `skip_until` dropped).
    pub(super) fn accept(
        &mut self,
        mut message: proto::WriteObjectRequest,
        skip_until: u64,
    ) -> Result<Accepted, Status> {
        if !self.first && (message.spec.is_some() || !message.upload_id.is_empty()) {
            return Err(invalid_field(
                "spec",
                "only the first message may carry spec or upload_id",
            ));
        }
        let offset = write_offset(message.write_offset)?;
        if offset != self.expected_offset {
            return Err(invalid_field(
                "write_offset",
                format!(
                    "{offset} does not match the {} bytes received so far",
                    self.expected_offset
                ),
            ));
        }
        let mut data = std::mem::take(&mut message.data);
        crate::telemetry::metrics().add_rpc_bytes("WriteObject", "in", data.len() as u64);
        let end = offset.saturating_add(data.len() as u64);
        if end > self.limit {
            let why = match self.object_size {
                Some(size) => format!("more than the declared object_size of {size} bytes"),
                None => format!("more than {MAX_OBJECT_BYTES} bytes, OSS's object size limit"),
            };
            return Err(invalid_field("data", format!("the stream carries {why}")));
        }
        self.expected_offset = end;
        if offset < skip_until {
            // A resumed write may resend bytes OSS already has: drop them.
            let skip = (skip_until - offset).min(data.len() as u64) as usize;
            let _ = data.split_to(skip);
        }
        self.crc.update(&data);
        if let Some(md5) = &mut self.md5 {
            md5.update(&data);
        }
        if let Some(checksums) = message.object_checksums.take() {
            if !self.first && !message.finish_write {
                return Err(invalid_field(
                    "object_checksums",
                    "may only be sent on the first or the last message",
                ));
            }
            if !self.first {
                self.late_checksums(&checksums)?;
            }
        }
        self.first = false;
        Ok(Accepted {
            data,
            finish: message.finish_write,
        })
    }

    /// Checksums that arrive with the last message.
    fn late_checksums(&mut self, checksums: &proto::ObjectChecksums) -> Result<(), Status> {
        if let Some(crc) = checksums.crc64ecma {
            self.expected_crc64 = Some(crc);
        }
        if !checksums.md5.is_empty() {
            let md5 = <[u8; 16]>::try_from(checksums.md5.as_ref()).map_err(|_| {
                invalid_field(
                    "object_checksums.md5",
                    format!("is {} bytes; an MD5 is 16 bytes", checksums.md5.len()),
                )
            })?;
            if self.md5.is_none() {
                return Err(invalid_field(
                    "object_checksums.md5",
                    "an MD5 must be announced on the first message to be checked",
                ));
            }
            self.expected_md5 = Some(md5);
        }
        Ok(())
    }

    /// At `finish_write`: the declared size and the caller's checksums against what arrived.
    /// `prefix` is the CRC and length of bytes stored before this stream (resumed writes).
    pub(super) fn check_complete(
        &mut self,
        prefix: Option<(u64, u64)>,
    ) -> Result<(u64, u64), Status> {
        let (prefix_crc, prefix_len) = prefix.unwrap_or((0, 0));
        let stream_len = self
            .expected_offset
            .saturating_sub(prefix_len.min(self.expected_offset));
        let size = prefix_len.max(self.expected_offset);
        if let Some(declared) = self.object_size
            && declared != size
        {
            return Err(invalid_field(
                "spec.object_size",
                format!("declared {declared} bytes but the stream carried {size}"),
            ));
        }
        let crc = crc64_combine(prefix_crc, self.crc.value(), stream_len);
        if let Some(expected) = self.expected_crc64
            && expected != crc
        {
            return Err(invalid_field(
                "object_checksums.crc64ecma",
                format!("{expected} does not match the data received (CRC-64 {crc})"),
            ));
        }
        if let (Some(expected), Some(md5)) = (self.expected_md5, self.md5.take()) {
            let actual: [u8; 16] = md5.finalize().into();
            if expected != actual {
                return Err(invalid_field(
                    "object_checksums.md5",
                    format!(
                        "{} does not match the data received (MD5 {})",
                        hex::encode(expected),
                        hex::encode(actual)
                    ),
                ));
            }
        }
        Ok((size, crc))
    }
}
