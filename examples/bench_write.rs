//! Upload benchmark client: writes `--size` bytes through the gateway's WriteObject as
//! one stream of `--chunk`-byte messages, optionally `--concurrency` streams at once to
//! different keys, and prints one JSON line with the elapsed time and throughput.
//!
//! The data is generated once (pseudo-random, so nothing compresses) and every stream
//! sends slices of the same buffer, so the client does no per-run work beyond gRPC
//! encoding. Each response's size and CRC-64 are checked against the data.
//!
//! For the load benchmark (`bench/upload_bench.py --load`) it can also run the streams a
//! few at a time (`--at-once`), retry load-shedding refusals as their RetryInfo says
//! (`--retry-refused`), delete each checked object (`--delete-after`), and time unary calls
//! on the same connection while the streams run (`--probe-ms`).
//!
//! ```text
//! cargo build --release --examples --bin ossgate
//! target/release/examples/bench_write --endpoint http://127.0.0.1:50051 --bucket bench
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark program: a panic is its error report"
)]

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use ossgate::{
    model::crc64,
    proto::{self, object_service_client::ObjectServiceClient},
    server::limits::{RefusalCounts, call_with_backoff},
};
use tonic::{
    Status,
    transport::{Channel, Endpoint},
};

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
    /// Streams running at a time (default: all `--concurrency` at once).
    #[arg(long)]
    at_once: Option<usize>,
    /// Retry load-shedding refusals (UNAVAILABLE with RetryInfo) with backoff, as a good
    /// client does, counting them; without it a refusal fails the run.
    #[arg(long)]
    retry_refused: bool,
    /// Delete each object once its response is checked (keeps an in-memory emulator small).
    #[arg(long)]
    delete_after: bool,
    /// Time a HeadObject and a health check on the first connection every this many ms:
    /// for 1 s before the streams start (idle), then while they run; 0 = off.
    #[arg(long, default_value_t = 0)]
    probe_ms: u64,
}

/// Runs `call` once, or with [`call_with_backoff`] when `refusals` is given.
async fn call_maybe_retried<T, F, Fut>(
    refusals: Option<&RefusalCounts>,
    mut call: F,
) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    match refusals {
        Some(refusals) => call_with_backoff(call, |refusal| refusals.count(refusal)).await,
        None => call().await,
    }
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

/// How one stream is run.
struct StreamOptions {
    chunk: usize,
    expected_crc: u64,
    /// Retry refusals, counting them here.
    refusals: Option<Arc<RefusalCounts>>,
    delete_after: bool,
}

async fn one_stream(
    client: ObjectServiceClient<Channel>,
    spec: proto::WriteObjectSpec,
    data: Bytes,
    options: Arc<StreamOptions>,
) -> anyhow::Result<StreamResult> {
    let key = spec.key.clone();
    let size = data.len();
    let expected_crc = options.expected_crc;
    let started = Instant::now();
    let response = call_maybe_retried(options.refusals.as_deref(), || {
        let mut client = client.clone();
        let messages = messages(spec.clone(), data.clone(), options.chunk);
        async move { client.write_object(messages).await }
    })
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
    if options.delete_after {
        let request = proto::DeleteObjectRequest {
            bucket: spec.bucket.clone(),
            key: key.clone(),
            ..Default::default()
        };
        call_maybe_retried(options.refusals.as_deref(), || {
            let (mut client, request) = (client.clone(), request.clone());
            async move { client.delete_object(request).await }
        })
        .await
        .with_context(|| format!("DeleteObject {key}"))?;
    }
    Ok(StreamResult { seconds })
}

/// Latencies (ms) of unary calls, and how many failed.
#[derive(Default)]
struct ProbeLatencies {
    millis: Vec<f64>,
    failures: u64,
}

impl ProbeLatencies {
    fn summary(mut self) -> serde_json::Value {
        self.millis.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let index = ((self.millis.len() as f64 * q).ceil() as usize).saturating_sub(1);
            self.millis.get(index).copied().unwrap_or(0.0)
        };
        serde_json::json!({
            "calls": self.millis.len(),
            "failures": self.failures,
            "p50_ms": at(0.5),
            "p99_ms": at(0.99),
            "max_ms": at(1.0),
        })
    }
}

/// Times a HeadObject of `key` and a health check every `every` until `stop` turns true.
async fn probe(
    channel: Channel,
    bucket: String,
    key: String,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> ProbeLatencies {
    let mut client = ObjectServiceClient::new(channel.clone());
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let mut out = ProbeLatencies::default();
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return out,
        }
        let started = Instant::now();
        let head = client
            .head_object(proto::HeadObjectRequest {
                bucket: bucket.clone(),
                key: key.clone(),
                version_id: String::new(),
                ..Default::default()
            })
            .await;
        out.failures += u64::from(head.is_err());
        out.millis.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        let checked = health
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await;
        out.failures += u64::from(checked.is_err());
        out.millis.push(started.elapsed().as_secs_f64() * 1e3);
    }
}

/// Probes for `duration` (a baseline before the load).
async fn probe_for(
    channel: Channel,
    bucket: &str,
    key: &str,
    every: Duration,
    duration: Duration,
) -> ProbeLatencies {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let probing = tokio::spawn(probe(channel, bucket.into(), key.into(), every, stopped));
    tokio::time::sleep(duration).await;
    let _ = stop.send(true);
    probing.await.expect("probe task")
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

    let refusals = args
        .retry_refused
        .then(|| Arc::new(RefusalCounts::default()));
    let options = Arc::new(StreamOptions {
        chunk: args.chunk,
        expected_crc,
        refusals: refusals.clone(),
        delete_after: args.delete_after,
    });
    let probe_key = format!("{}-probe", args.key_prefix);
    let probe_every = Duration::from_millis(args.probe_ms.max(1));
    let mut probe_idle = None;
    if args.probe_ms > 0 {
        let mut client = ObjectServiceClient::new(channels[0].clone());
        let spec = proto::WriteObjectSpec {
            bucket: args.bucket.clone(),
            key: probe_key.clone(),
            ..Default::default()
        };
        client
            .write_object(messages(spec, Bytes::from_static(b"probe"), 5))
            .await
            .context("writing the probe object")?;
        let idle = probe_for(
            channels[0].clone(),
            &args.bucket,
            &probe_key,
            probe_every,
            Duration::from_secs(1),
        );
        probe_idle = Some(idle.await);
    }
    let (stop_probe, probe_stopped) = tokio::sync::watch::channel(false);
    let probe_loaded = (args.probe_ms > 0).then(|| {
        tokio::spawn(probe(
            channels[0].clone(),
            args.bucket.clone(),
            probe_key,
            probe_every,
            probe_stopped,
        ))
    });

    let at_once = Arc::new(tokio::sync::Semaphore::new(
        args.at_once.unwrap_or(args.concurrency).max(1),
    ));
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
        let (data, options, at_once) = (data.clone(), options.clone(), at_once.clone());
        tasks.spawn(async move {
            let _turn = at_once.acquire_owned().await.expect("never closed");
            one_stream(client, spec, data, options).await
        });
    }
    let mut per_stream = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        per_stream.push(joined??.seconds);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = stop_probe.send(true);
    let probe_loaded = match probe_loaded {
        Some(task) => Some(task.await?.summary()),
        None => None,
    };
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
        "at_once": args.at_once.unwrap_or(args.concurrency),
        "completed": per_stream.len(),
        "refusals": refusals.map(|r| serde_json::json!({
            "call_slots": r.call_slots.load(Ordering::Relaxed),
            "upload_memory": r.upload_memory.load(Ordering::Relaxed),
        })),
        "probe_idle": probe_idle.map(ProbeLatencies::summary),
        "probe_loaded": probe_loaded,
        "stream_seconds": per_stream,
    });
    println!("{line}");
    Ok(())
}
