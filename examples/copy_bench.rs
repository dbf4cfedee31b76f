//! Copy benchmark, in one run against one in-process emulator: a multi-GiB source copied
//!
//! * through the gateway's CopyObject RPC on its multipart path (parallel UploadPartCopy),
//! * through the gateway's CopyObject RPC on its single-request path (threshold raised),
//! * with one plain OSS CopyObject request (the oss client, no gateway),
//! * with the official Python SDK's copier (alibabacloud-oss-v2 `Copier`, multipart forced
//!   with `disable_shallow_copy`), once with the gateway's part size and parallelism and
//!   once with the SDK's defaults.
//!
//! Every destination's CRC-64 is checked against the source's and then deleted, so the
//! emulator holds at most the source, one copy and its parts. It prints a table with each
//! way's time, throughput and ratio to the gateway's multipart copy. (oss2 2.19 has no
//! copier, so it is not in the table.)
//!
//! ```text
//! cargo run --example copy_bench -- --size-gib 2
//! cargo run --example copy_bench -- --size-gib 4 --data-dir /tmp/copy-bench   # on disk
//! ```

use std::{collections::HashMap, path::PathBuf, process::Command, time::Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use ossgate::{
    config::Settings,
    emulator::{self, BucketSpec, EmulatorConfig},
    model::{BucketName, ObjectKey},
    oss::{
        Addressing, Client, ClientConfig, CompleteMultipartUploadInput, CompleteParts,
        CompletedPart, CopyObjectInput, CopySource, InitiateMultipartUploadInput, ObjectId,
        UploadPartInput, credentials::Credentials, sign::SignatureVersion,
    },
    proto::{self, object_service_client::ObjectServiceClient},
    server,
};
use tokio::task::JoinSet;

const MIB: u64 = 1024 * 1024;
const BUCKET: &str = "copy-bench";
const ACCESS_KEY_ID: &str = "LTAIcopybench";
const ACCESS_KEY_SECRET: &str = "copy-bench-secret";

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Multipart copy through ossgate vs single CopyObject vs the Python SDK copier")]
struct Args {
    /// Source size in GiB.
    #[arg(long, default_value_t = 2.0)]
    size_gib: f64,
    /// Store the emulator's objects here instead of in memory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Part size of the gateway's copier (and of the matched SDK run), MiB.
    #[arg(long, default_value_t = 64)]
    part_mib: u64,
    /// Parts copied at once by the gateway's copier (and the matched SDK run).
    #[arg(long, default_value_t = 8)]
    parallelism: usize,
    /// The Python interpreter with alibabacloud-oss-v2 installed.
    #[arg(long, default_value = "python3")]
    python: String,
}

/// The Python SDK run: prints the copier's seconds on its last line.
const PYTHON_COPIER: &str = r#"
import sys, time
import alibabacloud_oss_v2 as oss
endpoint, ak, sk, bucket, src, dst, part, par = sys.argv[1:9]
cfg = oss.config.load_default()
cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(ak, sk)
cfg.region = "cn-hangzhou"
cfg.endpoint = endpoint
# Completing a multi-GiB upload in the (debug-built) emulator takes longer than the SDK's
# default 20 s read timeout.
cfg.readwrite_timeout = 3600
client = oss.Client(cfg)
kwargs = {"disable_shallow_copy": True}
if part != "default":
    kwargs["part_size"] = int(part)
if par != "default":
    kwargs["parallel_num"] = int(par)
copier = client.copier(**kwargs)
t = time.perf_counter()
r = copier.copy(oss.models.CopyObjectRequest(bucket=bucket, key=dst, source_key=src))
elapsed = time.perf_counter() - t
assert r.upload_id, "the SDK did not take its multipart path"
print(elapsed)
"#;

fn credentials() -> Credentials {
    Credentials {
        access_key_id: ACCESS_KEY_ID.into(),
        access_key_secret: ACCESS_KEY_SECRET.into(),
        security_token: None,
    }
}

/// Pseudo-random bytes (xorshift64*), different for every `seed`.
fn make_data(len: usize, seed: u64) -> Bytes {
    let mut out = vec![0u8; len];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0xD1B5_4A32_D192_ED03);
    for word in out.chunks_mut(8) {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let v = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        word.copy_from_slice(&v[..word.len()]);
    }
    Bytes::from(out)
}

/// Uploads a `size`-byte source with parallel UploadParts of 64 MiB; returns its CRC-64.
async fn upload_source(client: &Client, key: &ObjectKey, size: u64) -> anyhow::Result<u64> {
    let bucket = BucketName::parse(BUCKET).map_err(|v| anyhow::anyhow!(v.description))?;
    let part_size = 64 * MIB;
    let upload = client
        .initiate_multipart_upload(&InitiateMultipartUploadInput::new(
            bucket.clone(),
            key.clone(),
        ))
        .await?
        .upload;
    let mut tasks = JoinSet::new();
    let mut parts = Vec::new();
    let count = size.div_ceil(part_size);
    for i in 0..count {
        let len = part_size.min(size - i * part_size) as usize;
        let client = client.clone();
        let upload = upload.clone();
        tasks.spawn(async move {
            let body = make_data(len, i);
            let part_number = u32::try_from(i + 1)?;
            let out = client
                .upload_part(&UploadPartInput {
                    upload,
                    part_number,
                    body,
                    content_md5: None,
                })
                .await?;
            anyhow::Ok(CompletedPart {
                part_number,
                etag: out.etag,
            })
        });
        while tasks.len() >= 8 {
            parts.push(tasks.join_next().await.context("task")???);
        }
    }
    while let Some(part) = tasks.join_next().await {
        parts.push(part??);
    }
    let out = client
        .complete_multipart_upload(&CompleteMultipartUploadInput::new(
            upload,
            CompleteParts::List(parts),
        ))
        .await?;
    out.crc64.context("the emulator reports a CRC-64")
}

/// Starts a gateway against the emulator with these copy settings.
async fn gateway(
    endpoint: &str,
    threshold: u64,
    part: u64,
    parallelism: usize,
) -> anyhow::Result<(
    server::RunningServer,
    ObjectServiceClient<tonic::transport::Channel>,
)> {
    let env: HashMap<String, String> = [
        ("OSSGATE_LISTEN", "127.0.0.1:0".to_string()),
        ("OSSGATE_OSS__ENDPOINT", endpoint.to_string()),
        ("OSSGATE_OSS__REGION", "cn-hangzhou".to_string()),
        ("OSSGATE_OSS__ACCESS_KEY_ID", ACCESS_KEY_ID.to_string()),
        (
            "OSSGATE_OSS__ACCESS_KEY_SECRET",
            ACCESS_KEY_SECRET.to_string(),
        ),
        ("OSSGATE_LOG__LEVEL", "warn".to_string()),
        (
            "OSSGATE_COPY__MULTIPART_THRESHOLD_BYTES",
            threshold.to_string(),
        ),
        ("OSSGATE_COPY__PART_SIZE_BYTES", part.to_string()),
        ("OSSGATE_COPY__PARALLELISM", parallelism.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let settings = Settings::load_from(None, env)?;
    let running = server::start(settings).await?;
    let client = ObjectServiceClient::connect(format!("http://{}", running.local_addr())).await?;
    Ok((running, client))
}

/// One row of the table.
struct Row {
    name: String,
    seconds: f64,
    parts: String,
}

async fn check_and_delete(client: &Client, key: &str, crc: u64, size: u64) -> anyhow::Result<()> {
    let id = ObjectId::new(
        BucketName::parse(BUCKET).map_err(|v| anyhow::anyhow!(v.description))?,
        ObjectKey::parse(key).map_err(|v| anyhow::anyhow!(v.description))?,
    );
    let head = client.head_object(&id).await?;
    if head.size != size || head.crc64 != Some(crc) {
        bail!(
            "{key}: size {} crc {:?}, expected {size} {crc}",
            head.size,
            head.crc64
        );
    }
    client.delete_object(&id).await?;
    Ok(())
}

async fn gateway_copy(
    grpc: &mut ObjectServiceClient<tonic::transport::Channel>,
    src: &str,
    dst: &str,
) -> anyhow::Result<(f64, i32)> {
    let started = Instant::now();
    let out = grpc
        .copy_object(proto::CopyObjectRequest {
            source_bucket: BUCKET.into(),
            source_key: src.into(),
            destination_bucket: BUCKET.into(),
            destination_key: dst.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok((started.elapsed().as_secs_f64(), out.part_count))
}

fn python_copier(
    args: &Args,
    endpoint: &str,
    src: &str,
    dst: &str,
    part: Option<u64>,
    parallel: Option<usize>,
) -> anyhow::Result<f64> {
    let out = Command::new(&args.python)
        .arg("-c")
        .arg(PYTHON_COPIER)
        .args([endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET, BUCKET, src, dst])
        .arg(part.map_or("default".to_string(), |p| p.to_string()))
        .arg(parallel.map_or("default".to_string(), |p| p.to_string()))
        .output()
        .context("cannot run the Python interpreter")?;
    if !out.status.success() {
        bail!(
            "the Python copier failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default().trim();
    last.parse::<f64>()
        .with_context(|| format!("unexpected Python output {text:?}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let size = (args.size_gib * (1024 * MIB) as f64) as u64;
    if size == 0 {
        bail!("--size-gib must be positive");
    }
    let part = args.part_mib * MIB;
    let emulator = emulator::start(EmulatorConfig {
        listen: "127.0.0.1:0".parse()?,
        data_dir: args.data_dir.clone(),
        credentials: vec![credentials()],
        buckets: vec![BucketSpec {
            name: BUCKET.into(),
            versioned: false,
        }],
        region: "cn-hangzhou".into(),
        verify_signatures: true,
    })
    .await?;
    let endpoint = emulator.endpoint();
    let oss = Client::new(ClientConfig {
        endpoint: endpoint.clone(),
        region: "cn-hangzhou".into(),
        signature_version: SignatureVersion::V4,
        addressing: Addressing::Auto,
        credentials: credentials(),
        connect_timeout: std::time::Duration::from_secs(5),
        request_timeout: None,
    })?;
    let src = "bench/source.bin";
    eprintln!("uploading a {size}-byte source...");
    let crc = upload_source(
        &oss,
        &ObjectKey::parse(src).map_err(|v| anyhow::anyhow!(v.description))?,
        size,
    )
    .await?;

    let mut rows = Vec::new();
    // The gateway, multipart path (threshold below the size).
    let (multipart_server, mut grpc) = gateway(&endpoint, MIB, part, args.parallelism).await?;
    let (seconds, parts) = gateway_copy(&mut grpc, src, "bench/gateway-multipart").await?;
    check_and_delete(&oss, "bench/gateway-multipart", crc, size).await?;
    rows.push(Row {
        name: format!(
            "ossgate CopyObject, multipart ({} MiB x {})",
            args.part_mib, args.parallelism
        ),
        seconds,
        parts: parts.to_string(),
    });
    multipart_server.shutdown().await?;

    // The gateway, single-request path (threshold above the size).
    let (single_server, mut grpc) =
        gateway(&endpoint, u64::MAX / 2, part, args.parallelism).await?;
    let (seconds, parts) = gateway_copy(&mut grpc, src, "bench/gateway-single").await?;
    check_and_delete(&oss, "bench/gateway-single", crc, size).await?;
    rows.push(Row {
        name: "ossgate CopyObject, single request".into(),
        seconds,
        parts: parts.to_string(),
    });
    single_server.shutdown().await?;

    // One plain CopyObject, no gateway.
    let input = CopyObjectInput::new(
        CopySource::new(
            BucketName::parse(BUCKET).map_err(|v| anyhow::anyhow!(v.description))?,
            ObjectKey::parse(src).map_err(|v| anyhow::anyhow!(v.description))?,
        ),
        BucketName::parse(BUCKET).map_err(|v| anyhow::anyhow!(v.description))?,
        ObjectKey::parse("bench/direct-single").map_err(|v| anyhow::anyhow!(v.description))?,
    );
    let started = Instant::now();
    oss.copy_object(&input).await?;
    rows.push(Row {
        name: "OSS CopyObject, one REST request (no gateway)".into(),
        seconds: started.elapsed().as_secs_f64(),
        parts: "0".into(),
    });
    check_and_delete(&oss, "bench/direct-single", crc, size).await?;

    // The Python SDK's copier, matched settings and its defaults.
    for (name, p, n) in [
        (
            format!(
                "alibabacloud-oss-v2 Copier ({} MiB x {})",
                args.part_mib, args.parallelism
            ),
            Some(part),
            Some(args.parallelism),
        ),
        (
            "alibabacloud-oss-v2 Copier (SDK defaults: 64 MiB x 3)".to_string(),
            None,
            None,
        ),
    ] {
        let dst = "bench/python-copier";
        match python_copier(&args, &endpoint, src, dst, p, n) {
            Ok(seconds) => {
                check_and_delete(&oss, dst, crc, size).await?;
                rows.push(Row {
                    name,
                    seconds,
                    parts: size.div_ceil(p.unwrap_or(64 * MIB)).to_string(),
                });
            }
            Err(err) => eprintln!("{name}: skipped: {err:#}"),
        }
    }

    let gib = size as f64 / (1024 * MIB) as f64;
    let base = rows.first().map_or(1.0, |r| r.seconds);
    println!(
        "copy of a {gib:.2} GiB source, emulator {} (debug build of ossgate)",
        if args.data_dir.is_some() {
            "on disk"
        } else {
            "in memory"
        }
    );
    println!(
        "| {:<56} | {:>5} | {:>8} | {:>8} | {:>24} |",
        "method", "parts", "seconds", "MiB/s", "time / ossgate multipart"
    );
    println!(
        "|{:-<58}|{:-<7}|{:-<10}|{:-<10}|{:-<26}|",
        "", "", "", "", ""
    );
    for row in &rows {
        println!(
            "| {:<56} | {:>5} | {:>8.2} | {:>8.1} | {:>24.2} |",
            row.name,
            row.parts,
            row.seconds,
            gib * 1024.0 / row.seconds,
            row.seconds / base
        );
    }
    emulator.shutdown().await;
    Ok(())
}
