//! Upload benchmark client: writes `--size` bytes through the gateway's WriteObject as
//! one stream of `--chunk`-byte messages, optionally `--concurrency` streams at once to
//! different keys, and prints one JSON line with the elapsed time and throughput.
//!
//! The data is generated once (pseudo-random, so nothing compresses) and every stream
//! sends slices of the same buffer, so the client does no per-run work beyond gRPC
//! encoding. Each response's size and CRC-64 are checked against the data.
//!
//! ```text
//! cargo build --release --examples --bin ossgate
//! target/release/examples/bench_write --endpoint http://127.0.0.1:50051 --bucket bench
//! ```

use std::time::Instant;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use ossgate::{
    model::crc64,
    proto::{self, object_service_client::ObjectServiceClient},
};
use tonic::transport::{Channel, Endpoint};

const MIB: usize = 1024 * 1024;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Upload throughput through the ossgate gateway (one JSON line)")]
struct Args {
    /// The gateway's gRPC address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    endpoint: String,
    /// Bucket to write into.
    #[arg(long)]
    bucket: String,
    /// Key prefix; stream i writes `<prefix>-<i>`.
    #[arg(long, default_value = "bench/object")]
    key_prefix: String,
    /// Bytes per stream (default 1 GiB).
    #[arg(long, default_value_t = 1024 * MIB)]
    size: usize,
    /// Bytes per WriteObject message (default 1 MiB).
    #[arg(long, default_value_t = MIB)]
    chunk: usize,
    /// Concurrent streams, each writing `--size` bytes to its own key.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// HTTP/2 connections the streams are spread over (default: one shared channel,
    /// as a typical gRPC client would use).
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Send this file's first `--size` bytes instead of generated data (read into memory
    /// before the clock starts).
    #[arg(long)]
    data_file: Option<std::path::PathBuf>,
    /// Do not announce the size in `spec.object_size` (the gateway then plans parts
    /// without a size hint).
    #[arg(long)]
    no_size_hint: bool,
}

/// Pseudo-random bytes (xorshift64*): cheap to make and incompressible enough.
fn make_data(len: usize) -> Bytes {
    let mut out = vec![0u8; len];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for word in out.chunks_mut(8) {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let v = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        word.copy_from_slice(&v[..word.len()]);
    }
    Bytes::from(out)
}

/// The messages of one stream, made lazily from slices of the shared buffer.
fn messages(
    spec: proto::WriteObjectSpec,
    data: Bytes,
    chunk: usize,
) -> impl tokio_stream::Stream<Item = proto::WriteObjectRequest> + Send + 'static {
    let len = data.len();
    let count = len.div_ceil(chunk).max(1);
    let mut spec = Some(spec);
    tokio_stream::iter((0..count).map(move |i| {
        let start = i * chunk;
        let end = (start + chunk).min(len);
        proto::WriteObjectRequest {
            spec: spec.take(),
            write_offset: start as i64,
            data: data.slice(start..end),
            finish_write: i + 1 == count,
            ..Default::default()
        }
    }))
}

/// One stream's result.
struct StreamResult {
    seconds: f64,
}

async fn one_stream(
    mut client: ObjectServiceClient<Channel>,
    spec: proto::WriteObjectSpec,
    data: Bytes,
    chunk: usize,
    expected_crc: u64,
) -> anyhow::Result<StreamResult> {
    let key = spec.key.clone();
    let size = data.len();
    let started = Instant::now();
    let response = client
        .write_object(messages(spec, data, chunk))
        .await
        .with_context(|| format!("WriteObject {key}"))?
        .into_inner();
    let seconds = started.elapsed().as_secs_f64();
    if response.size != size as i64 || response.crc64ecma != expected_crc {
        bail!(
            "{key}: stored {} bytes with CRC-64 {}, sent {size} bytes with CRC-64 {expected_crc}",
            response.size,
            response.crc64ecma
        );
    }
    Ok(StreamResult { seconds })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.chunk == 0 || args.concurrency == 0 || args.connections == 0 {
        bail!("--chunk, --concurrency and --connections must be positive");
    }
    let data = match &args.data_file {
        None => make_data(args.size),
        Some(path) => {
            let mut bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            if bytes.len() < args.size {
                bail!(
                    "{} holds {} bytes, fewer than --size {}",
                    path.display(),
                    bytes.len(),
                    args.size
                );
            }
            bytes.truncate(args.size);
            Bytes::from(bytes)
        }
    };
    let expected_crc = crc64(&data);

    let mut channels = Vec::new();
    for _ in 0..args.connections.min(args.concurrency) {
        let channel = Endpoint::from_shared(args.endpoint.clone())?
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("connecting to {}", args.endpoint))?;
        channels.push(channel);
    }

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.concurrency {
        let client = ObjectServiceClient::new(channels[i % channels.len()].clone())
            .max_encoding_message_size(args.chunk + 1024);
        let spec = proto::WriteObjectSpec {
            bucket: args.bucket.clone(),
            key: format!("{}-{i}", args.key_prefix),
            object_size: (!args.no_size_hint).then_some(args.size as i64),
            ..Default::default()
        };
        tasks.spawn(one_stream(
            client,
            spec,
            data.clone(),
            args.chunk,
            expected_crc,
        ));
    }
    let mut per_stream = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        per_stream.push(joined??.seconds);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total_mib = (args.size * args.concurrency) as f64 / MIB as f64;
    per_stream.sort_by(f64::total_cmp);
    let line = serde_json::json!({
        "tool": "bench_write",
        "bytes_per_stream": args.size,
        "streams": args.concurrency,
        "connections": channels.len(),
        "chunk_bytes": args.chunk,
        "size_hint": !args.no_size_hint,
        "crc64": expected_crc,
        "elapsed_s": elapsed,
        "mib_s": total_mib / elapsed,
        "stream_seconds": per_stream,
    });
    println!("{line}");
    Ok(())
}
