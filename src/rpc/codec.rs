//! The protobuf codec of `ossgate.v1` (set in `build.rs` with `codec_path`): prost's, except
//! that a message that does not decode is `INVALID_ARGUMENT`.
//!
//! prost's codec, like grpc-go ("grpc: error unmarshalling request") and gRPC's status-code
//! table, answers `INTERNAL`. But the bytes came from the caller: `INTERNAL` would count
//! them as a failure of the gateway (the `ossgate_rpc_duration_seconds` code label, the
//! span status, alerts on server errors) and invite retries of a request that can never
//! succeed. The generated client shares the codec, so to it a malformed response is
//! `INVALID_ARGUMENT` too; the message says which side's bytes failed to decode.

use std::marker::PhantomData;

use prost::Message;
use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// [`ProstCodec`] with [`MessageDecoder`].
#[derive(Debug, Clone)]
pub struct GatewayCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for GatewayCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for GatewayCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = MessageDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        MessageDecoder(ProstCodec::<T, U>::default().decoder())
    }
}

/// [`ProstDecoder`] whose failures are `INVALID_ARGUMENT`.
#[derive(Debug, Clone)]
pub struct MessageDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default> Decoder for MessageDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|status| {
            Status::invalid_argument(format!(
                "the message is not a valid protobuf {}: {}",
                short_type_name::<U>(),
                status.message()
            ))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

/// `WriteObjectRequest` for `ossgate::proto::WriteObjectRequest`.
fn short_type_name<U>() -> &'static str {
    let name = std::any::type_name::<U>();
    name.rsplit("::").next().unwrap_or(name)
}
