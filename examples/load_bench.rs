//! Load benchmark for the tagging RPCs, all paths in one run:
//!
//! * **gateway**: `PutObjectTagging` / `GetObjectTagging` (alternating, 50/50) through the
//!   gateway's gRPC API (tonic clients sharing one `Channel`, so one HTTP/2 connection, as a
//!   service calling the gateway would; `--channels N` spreads them over N connections);
//! * **direct**: the same operations as signed REST calls straight to the emulator, with the
//!   crate's own OSS client (`ossgate::oss::Client`: the same signer and HTTP stack the
//!   gateway uses, no gRPC);
//! * **floor**: the gateway's health Check, an empty gRPC call on the same connections: what
//!   any gateway operation costs at least on top of its OSS request;
//!
//! at 1, 16 and 128 concurrent clients (closed loop: each client sends its next request
//! when the previous one is answered), for a fixed time each after a warm-up. It reports
//! p50/p99 latency (HDR histograms), throughput, the gateway's overhead at p50 and its
//! throughput as a share of direct calls. Then a **saturation** phase drives far more
//! concurrent clients than the gateway admits (`server.max_concurrent_calls`) and counts
//! the answers by gRPC code: the excess must be shed (`UNAVAILABLE`, reason `OVERLOADED`)
//! while admitted calls still succeed, the health service still answers, and a normal run
//! afterwards is as fast as before.
//!
//! Two shapes:
//! * by default the emulator (in memory), the gateway and the load generator share this
//!   process and all CPUs (no log subscriber is installed);
//! * with `--gateway-cpus`, the gateway is the release `ossgate` binary in its own process
//!   pinned to those CPUs (default logging, to /dev/null), and this process (clients and
//!   emulator) runs under `taskset` on the others: the deployed shape, where the gateway
//!   brings its own CPU.
//!
//! Results go to stdout (a table) and `bench/load_results.json` (`--out`).
//!
//! ```text
//! cargo build --release --bin ossgate --example load_bench
//! target/release/examples/load_bench --rounds 2
//! taskset -c 0 target/release/examples/load_bench --rounds 2 --gateway-cpus 1 \
//!     --out bench/load_results_own_cpu.json
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark program: a panic is its error report"
)]

// The same allocator as the ossgate binary (src/main.rs): gateway, emulator and client here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::Parser;
use hdrhistogram::Histogram;
use ossgate::{
    config::Settings,
    emulator::{self, BucketSpec, EmulatorConfig, EmulatorHandle},
    model::{BucketName, ObjectKey, TagSet},
    oss::{
        Addressing, Client, ClientConfig, ObjectId, PutObjectInput, PutObjectTaggingInput,
        credentials::Credentials, sign::SignatureVersion,
    },
    proto::{self, object_service_client::ObjectServiceClient},
    server::{self, RunningServer},
};
use serde_json::json;
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;

const BUCKET: &str = "load-bench";
const ACCESS_KEY_ID: &str = "LTAIloadbench";
const ACCESS_KEY_SECRET: &str = "load-bench-secret-0123456789";
/// Objects the clients tag (client `i` uses object `i % OBJECTS`).
const OBJECTS: usize = 128;
/// Most gRPC connections; more clients share them (HTTP/2 multiplexing).
const MAX_CHANNELS: usize = 128;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Tagging RPC load through ossgate vs direct signed REST calls")]
struct Args {
    /// Measured seconds per phase.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Warm-up seconds before each phase (not measured).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Concurrency levels.
    #[arg(long, value_delimiter = ',', default_value = "1,16,128")]
    clients: Vec<usize>,
    /// Rounds: each round runs direct then gateway at every level; histograms are merged.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// The gateway's `server.max_concurrent_calls` in the saturation phase.
    #[arg(long, default_value_t = 64)]
    saturation_limit: usize,
    /// Concurrent clients in the saturation phase.
    #[arg(long, default_value_t = 1024)]
    saturation_clients: usize,
    /// Extra gateway settings, `OSSGATE_NAME=value` (repeatable), e.g.
    /// `--set OSSGATE_AUDIT__READ_TAGS_BEFORE=true`.
    #[arg(long = "set")]
    settings: Vec<String>,
    /// Run only these paths (`direct`, `gateway`, `floor`; comma-separated) and skip the
    /// saturation phase (for profiling one side).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// gRPC connections (tonic `Channel`s) the gateway clients share. One by default: a
    /// `Channel` is meant to be cloned and shared, and HTTP/2 multiplexes the calls.
    #[arg(long, default_value_t = 1)]
    channels: usize,
    /// Run the gateway as a separate process (the release `ossgate` binary next to this
    /// example, logging as configured to /dev/null) instead of in this process.
    #[arg(long)]
    gateway_process: bool,
    /// Pin that process to these CPUs (`taskset -c`); implies `--gateway-process`. Run the
    /// benchmark itself under `taskset -c` on the other CPUs to give each side its own.
    #[arg(long)]
    gateway_cpus: Option<String>,
    /// Where to write the JSON results.
    #[arg(long, default_value = "bench/load_results.json")]
    out: String,
}

fn credentials() -> Credentials {
    Credentials {
        access_key_id: ACCESS_KEY_ID.into(),
        access_key_secret: ACCESS_KEY_SECRET.into(),
        security_token: None,
    }
}

fn bucket() -> BucketName {
    BucketName::parse(BUCKET).expect("valid bucket")
}

fn key(i: usize) -> String {
    format!("bench/object-{:03}", i % OBJECTS)
}

/// What one phase measured.
#[derive(Default)]
struct Phase {
    ok: Option<Histogram<u64>>,
    by_code: BTreeMap<String, u64>,
    elapsed: Duration,
}

impl Phase {
    fn histogram() -> Histogram<u64> {
        Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds")
    }

    fn merge(&mut self, other: Phase) {
        match (&mut self.ok, other.ok) {
            (Some(mine), Some(theirs)) => mine.add(theirs).expect("same bounds"),
            (slot @ None, theirs) => *slot = theirs,
            (_, None) => {}
        }
        for (code, n) in other.by_code {
            *self.by_code.entry(code).or_default() += n;
        }
        self.elapsed += other.elapsed;
    }

    fn ok_count(&self) -> u64 {
        self.ok.as_ref().map_or(0, Histogram::len)
    }

    fn quantile_ms(&self, q: f64) -> f64 {
        self.ok
            .as_ref()
            .filter(|h| !h.is_empty())
            .map_or(f64::NAN, |h| h.value_at_quantile(q) as f64 / 1000.0)
    }

    fn throughput(&self) -> f64 {
        self.ok_count() as f64 / self.elapsed.as_secs_f64()
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "ok": self.ok_count(),
            "by_code": self.by_code,
            "seconds": self.elapsed.as_secs_f64(),
            "throughput_per_sec": round(self.throughput(), 1),
            "p50_ms": round(self.quantile_ms(0.50), 3),
            "p90_ms": round(self.quantile_ms(0.90), 3),
            "p99_ms": round(self.quantile_ms(0.99), 3),
            "max_ms": round(self.quantile_ms(1.0), 3),
        })
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// One operation of the 50/50 mix; `Err` carries the gRPC (or OSS) code name and the
/// `RetryInfo` delay the gateway asked for, if any.
type OpResult = Result<(), (String, Option<Duration>)>;

/// A target the load generator drives.
#[derive(Clone)]
enum Target {
    Gateway(Vec<ObjectServiceClient<Channel>>),
    Direct(Client),
    /// The gateway's health Check: a gRPC round trip through the same server and
    /// connections with no OSS work, the floor under any gateway operation.
    Floor(Vec<HealthClient<Channel>>),
}

impl Target {
    async fn call(&self, client: usize, n: u64) -> OpResult {
        let key = key(client);
        let put = n.is_multiple_of(2);
        match self {
            Target::Gateway(channels) => {
                let mut grpc = channels[client % channels.len()].clone();
                let result = if put {
                    grpc.put_object_tagging(proto::PutObjectTaggingRequest {
                        bucket: BUCKET.into(),
                        key,
                        version_id: String::new(),
                        tagging: Some(proto::Tagging {
                            tags: HashMap::from([
                                ("team".to_string(), "storage".to_string()),
                                ("n".to_string(), (n % 1000).to_string()),
                            ]),
                        }),
                        ..Default::default()
                    })
                    .await
                    .map(drop)
                } else {
                    grpc.get_object_tagging(proto::GetObjectTaggingRequest {
                        bucket: BUCKET.into(),
                        key,
                        version_id: String::new(),
                    })
                    .await
                    .map(drop)
                };
                result.map_err(|status| {
                    let details = tonic_types::StatusExt::get_error_details(&status);
                    let reason = details
                        .error_info()
                        .map(|info| info.reason.clone())
                        .unwrap_or_default();
                    let delay = details.retry_info().and_then(|r| r.retry_delay);
                    let code = if reason.is_empty() {
                        format!("{:?}", status.code())
                    } else {
                        format!("{:?}/{reason}", status.code())
                    };
                    (code, delay)
                })
            }
            Target::Floor(channels) => {
                let mut health = channels[client % channels.len()].clone();
                health
                    .check(tonic_health::pb::HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .map(drop)
                    .map_err(|status| (format!("{:?}", status.code()), None))
            }
            Target::Direct(oss) => {
                let key = ObjectKey::parse(&key).map_err(|v| (v.description, None))?;
                let result = if put {
                    let tags = TagSet::from_pairs([
                        ("team".to_string(), "storage".to_string()),
                        ("n".to_string(), (n % 1000).to_string()),
                    ])
                    .map_err(|_| ("tags".to_string(), None))?;
                    oss.put_object_tagging(&PutObjectTaggingInput::new(bucket(), key, tags))
                        .await
                        .map(drop)
                } else {
                    oss.get_object_tagging(&ObjectId::new(bucket(), key))
                        .await
                        .map(drop)
                };
                result.map_err(|e| (format!("OSS/{}", e.kind), None))
            }
        }
    }
}

/// Runs `clients` closed-loop clients for `warmup` then `measure`; records the measured part.
/// With `honor_retry_info`, a client told to retry later (`RetryInfo`) waits that long first.
async fn run_phase(
    target: &Target,
    clients: usize,
    warmup: Duration,
    measure: Duration,
    honor_retry_info: bool,
) -> Phase {
    let start = Instant::now();
    let measure_from = start + warmup;
    let stop_at = measure_from + measure;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let target = target.clone();
        tasks.spawn(async move {
            let mut phase = Phase {
                ok: Some(Phase::histogram()),
                ..Phase::default()
            };
            let mut n = client as u64;
            loop {
                let sent = Instant::now();
                if sent >= stop_at {
                    break;
                }
                let result = target.call(client, n).await;
                n += 1;
                let wait = match &result {
                    Err((_, Some(delay))) if honor_retry_info => Some(*delay),
                    _ => None,
                };
                if sent >= measure_from {
                    match result {
                        Ok(()) => {
                            let us = sent.elapsed().as_micros().max(1) as u64;
                            let _ = phase.ok.as_mut().map(|h| h.record(us));
                        }
                        Err((code, _)) => *phase.by_code.entry(code).or_default() += 1,
                    }
                }
                if let Some(delay) = wait {
                    tokio::time::sleep(delay).await;
                }
            }
            phase
        });
    }
    let mut total = Phase::default();
    while let Some(joined) = tasks.join_next().await {
        total.merge(joined.expect("client task"));
    }
    total.elapsed = stop_at.saturating_duration_since(measure_from);
    total
        .by_code
        .insert("OK".into(), total.ok.as_ref().map_or(0, Histogram::len));
    total
}

async fn start_emulator() -> anyhow::Result<EmulatorHandle> {
    let mut config = EmulatorConfig::new(ACCESS_KEY_ID, ACCESS_KEY_SECRET);
    config.buckets = vec![BucketSpec {
        name: BUCKET.into(),
        versioned: false,
    }];
    emulator::start(config).await
}

/// A gateway under test: in this process, or the `ossgate` binary as a child process.
enum Gateway {
    InProcess(RunningServer),
    Process {
        child: tokio::process::Child,
        addr: SocketAddr,
    },
}

impl Gateway {
    fn local_addr(&self) -> SocketAddr {
        match self {
            Gateway::InProcess(server) => server.local_addr(),
            Gateway::Process { addr, .. } => *addr,
        }
    }

    async fn shutdown(self) -> anyhow::Result<()> {
        match self {
            Gateway::InProcess(server) => server.shutdown().await,
            Gateway::Process { mut child, .. } => {
                child.kill().await?;
                Ok(())
            }
        }
    }
}

/// Where and how the gateway runs (`--gateway-process`, `--gateway-cpus`).
struct GatewayMode {
    process: bool,
    cpus: Option<String>,
}

/// The gateway against `emulator`, with extra `OSSGATE_*` settings. A setting this build
/// does not know is dropped with a note (so the benchmark runs on older trees too).
async fn start_gateway(
    emulator: &EmulatorHandle,
    extra: &[(&str, String)],
    mode: &GatewayMode,
) -> anyhow::Result<(Gateway, Vec<String>)> {
    let listen = if mode.process {
        // A free port for the child (it cannot report the one it bound).
        std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?
    } else {
        "127.0.0.1:0".parse()?
    };
    let mut env: HashMap<String, String> = HashMap::from([
        ("OSSGATE_LISTEN".into(), listen.to_string()),
        ("OSSGATE_OSS__ENDPOINT".into(), emulator.endpoint()),
        ("OSSGATE_OSS__REGION".into(), "cn-hangzhou".into()),
        ("OSSGATE_OSS__ACCESS_KEY_ID".into(), ACCESS_KEY_ID.into()),
        (
            "OSSGATE_OSS__ACCESS_KEY_SECRET".into(),
            ACCESS_KEY_SECRET.into(),
        ),
        ("OSSGATE_SERVER__SHUTDOWN_GRACE_MS".into(), "2000".into()),
    ]);
    let mut notes = Vec::new();
    for (name, value) in extra {
        let mut with = env.clone();
        with.insert((*name).into(), value.clone());
        match Settings::load_from(None, with.clone()) {
            Ok(_) => env = with,
            Err(err) => notes.push(format!("{name} not applied: {err:#}")),
        }
    }
    let settings = Settings::load_from(None, env.clone())?;
    if !mode.process {
        return Ok((Gateway::InProcess(server::start(settings).await?), notes));
    }
    // The release binary next to this example (target/release/examples/..).
    let binary = std::env::current_exe()?
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("ossgate"))
        .context("locating the ossgate binary")?;
    anyhow::ensure!(
        binary.is_file(),
        "{} is missing: cargo build --release --bin ossgate --example load_bench",
        binary.display()
    );
    let mut command = match &mode.cpus {
        Some(cpus) => {
            let mut taskset = tokio::process::Command::new("taskset");
            taskset.arg("-c").arg(cpus).arg(&binary);
            taskset
        }
        None => tokio::process::Command::new(&binary),
    };
    // Only the settings above: no ambient OSSGATE_* or credential variables.
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(&env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let child = command.spawn().context("starting the ossgate binary")?;
    let gateway = Gateway::Process {
        child,
        addr: listen,
    };
    wait_serving(listen).await?;
    Ok((gateway, notes))
}

/// Waits until the gateway at `addr` answers its health check with SERVING.
async fn wait_serving(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let serving = async {
            let channel = Channel::from_shared(format!("http://{addr}"))?
                .connect()
                .await?;
            let status = HealthClient::new(channel)
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await?
                .into_inner()
                .status;
            anyhow::Ok(status == 1)
        };
        if serving.await.unwrap_or(false) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the gateway at {addr} did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `n` gRPC connections to `server`.
async fn connections(server: &Gateway, n: usize) -> anyhow::Result<Vec<Channel>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let channel = Channel::from_shared(format!("http://{}", server.local_addr()))?
            .tcp_nodelay(true)
            .connect()
            .await?;
        out.push(channel);
    }
    Ok(out)
}

/// ObjectService clients on `n` connections to `server`.
async fn channels(server: &Gateway, n: usize) -> anyhow::Result<Vec<ObjectServiceClient<Channel>>> {
    let connections = connections(server, n).await?;
    Ok(connections
        .into_iter()
        .map(ObjectServiceClient::new)
        .collect())
}

fn direct_client(emulator: &EmulatorHandle) -> anyhow::Result<Client> {
    Ok(Client::new(ClientConfig {
        endpoint: emulator.endpoint(),
        region: "cn-hangzhou".into(),
        signature_version: SignatureVersion::V4,
        addressing: Addressing::Path,
        credentials: credentials(),
        connect_timeout: Duration::from_secs(5),
        request_timeout: None,
    })?)
}

/// The CPUs this process may run on (`Cpus_allowed_list`), e.g. `0` under `taskset -c 0`.
fn cpus_allowed() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
                .map(|list| list.trim().to_string())
        })
        .unwrap_or_default()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Drives `clients` clients against `server` while a health client checks it every 100 ms;
/// returns what the clients got, the health checks made (all SERVING) and the slowest one.
async fn saturate(
    server: &Gateway,
    channels: &[ObjectServiceClient<Channel>],
    clients: usize,
    warmup: Duration,
    measure: Duration,
    honor_retry_info: bool,
) -> anyhow::Result<(Phase, u32, Duration)> {
    let addr = server.local_addr();
    let health = tokio::spawn(async move {
        // The health service answers all through the overload (it is not shed).
        let channel = Channel::from_shared(format!("http://{addr}"))?
            .connect()
            .await?;
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        let mut worst = Duration::ZERO;
        let mut checks = 0u32;
        let until = Instant::now() + warmup + measure;
        while Instant::now() < until {
            let t = Instant::now();
            let serving = client
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await?
                .into_inner()
                .status;
            anyhow::ensure!(serving == 1, "health says {serving}");
            worst = worst.max(t.elapsed());
            checks += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::Ok((checks, worst))
    });
    let phase = run_phase(
        &Target::Gateway(channels.to_vec()),
        clients,
        warmup,
        measure,
        honor_retry_info,
    )
    .await;
    let (checks, worst) = health.await??;
    Ok((phase, checks, worst))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let warmup = Duration::from_secs_f64(args.warmup);
    let measure = Duration::from_secs_f64(args.seconds);
    let load_before = load_average();

    let emulator = start_emulator().await?;
    let direct = direct_client(&emulator)?;
    for i in 0..OBJECTS {
        let key = ObjectKey::parse(&key(i)).map_err(|v| anyhow::anyhow!(v.description))?;
        direct
            .put_object(
                &PutObjectInput::new(bucket(), key),
                Box::pin(futures_util::stream::once(async {
                    Ok::<_, ossgate::oss::BoxError>(bytes::Bytes::from_static(b"load bench"))
                })),
            )
            .await
            .context("creating the objects")?;
    }
    let extra: Vec<(&str, String)> = args
        .settings
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k, v.to_string()))
                .with_context(|| format!("--set {s:?}: expected NAME=value"))
        })
        .collect::<anyhow::Result<_>>()?;
    let mode = GatewayMode {
        process: args.gateway_process || args.gateway_cpus.is_some(),
        cpus: args.gateway_cpus.clone(),
    };
    let (gateway, mut notes) = start_gateway(&emulator, &extra, &mode).await?;
    let conns = connections(&gateway, args.channels.clamp(1, MAX_CHANNELS)).await?;
    let grpc: Vec<_> = conns
        .iter()
        .cloned()
        .map(ObjectServiceClient::new)
        .collect();
    let health: Vec<_> = conns.into_iter().map(HealthClient::new).collect();

    println!(
        "tagging load: 50/50 PutObjectTagging/GetObjectTagging, {:.1} s per phase after {:.1} s warm-up, {} round(s), {} gRPC connection(s); load average {load_before}",
        args.seconds,
        args.warmup,
        args.rounds,
        grpc.len()
    );
    let mut results: Vec<(usize, Phase, Phase, Phase)> = args
        .clients
        .iter()
        .map(|&c| (c, Phase::default(), Phase::default(), Phase::default()))
        .collect();
    let runs = |path: &str| args.only.is_empty() || args.only.iter().any(|only| only == path);
    for _ in 0..args.rounds {
        for (clients, direct_total, gateway_total, floor_total) in results.iter_mut() {
            let used = (*clients).min(grpc.len());
            let targets = [
                ("direct", Target::Direct(direct.clone()), direct_total),
                (
                    "gateway",
                    Target::Gateway(grpc[..used].to_vec()),
                    gateway_total,
                ),
                ("floor", Target::Floor(health[..used].to_vec()), floor_total),
            ];
            for (path, target, total) in targets {
                if runs(path) {
                    total.merge(run_phase(&target, *clients, warmup, measure, false).await);
                }
            }
        }
    }

    println!();
    println!(
        "| clients | direct p50 ms | direct p99 ms | direct ops/s | gateway p50 ms | gateway p99 ms | gateway ops/s | overhead at p50 ms | gateway ÷ direct ops/s | gRPC floor ops/s | bound on the ratio |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut levels = Vec::new();
    for (clients, d, g, f) in &results {
        let overhead = g.quantile_ms(0.5) - d.quantile_ms(0.5);
        let ratio = g.throughput() / d.throughput();
        // When everything shares the CPUs, a gateway operation costs at least a direct
        // operation plus an empty gRPC call, so its throughput is at most
        // 1 / (1/direct + 1/floor). With the gateway in its own process that sum does not
        // hold (the costs land on different CPUs): no bound then.
        let bound = (!mode.process).then(|| f.throughput() / (d.throughput() + f.throughput()));
        let bound_text = bound.map_or("-".to_string(), |b| format!("{b:.2}"));
        println!(
            "| {clients} | {:.3} | {:.3} | {:.0} | {:.3} | {:.3} | {:.0} | {overhead:.3} | {ratio:.2} | {:.0} | {bound_text} |",
            d.quantile_ms(0.5),
            d.quantile_ms(0.99),
            d.throughput(),
            g.quantile_ms(0.5),
            g.quantile_ms(0.99),
            g.throughput(),
            f.throughput(),
        );
        for (name, phase) in [("direct", d), ("gateway", g), ("floor", f)] {
            let failed: u64 = phase
                .by_code
                .iter()
                .filter(|(code, _)| code.as_str() != "OK")
                .map(|(_, n)| n)
                .sum();
            if failed > 0 {
                println!(
                    "  ({name}, {clients} clients: failures {:?})",
                    phase.by_code
                );
            }
        }
        levels.push(json!({
            "clients": clients,
            "direct": d.json(),
            "gateway": g.json(),
            "grpc_floor": f.json(),
            "overhead_p50_ms": round(overhead, 3),
            "throughput_ratio": round(ratio, 3),
            "throughput_ratio_bound": bound.map(|b| round(b, 3)),
        }));
    }
    drop((grpc, health));
    gateway.shutdown().await?;
    // The saturation phase, unless only some paths run (profiling).
    let saturation = if args.only.is_empty() {
        Some(saturation(&args, &emulator, &extra, &mode, &mut notes).await?)
    } else {
        None
    };
    emulator.shutdown().await;
    for note in &notes {
        println!("note: {note}");
    }
    let load_after = load_average();
    println!("load average after: {load_after}");

    let report = json!({
        "benchmark": "load_bench",
        "workload": "50/50 PutObjectTagging/GetObjectTagging, closed loop, one in-process emulator (memory)",
        "seconds_per_phase": args.seconds,
        "warmup_seconds": args.warmup,
        "rounds": args.rounds,
        "gateway_settings": args.settings,
        "grpc_connections": args.channels.clamp(1, MAX_CHANNELS),
        "gateway_process": mode.process,
        "gateway_cpus": args.gateway_cpus,
        "benchmark_cpus": cpus_allowed(),
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "levels": levels,
        "saturation": saturation,
        "notes": notes,
    });
    if let Some(dir) = std::path::Path::new(&args.out).parent() {
        std::fs::create_dir_all(dir).ok();
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", args.out))?;
    println!("wrote {}", args.out);
    Ok(())
}

/// Saturation: a gateway admitting `saturation_limit` calls, driven by many more clients
/// that retry at once (the harshest case) and then after the RetryInfo delay; then 16
/// clients right after. Returns the JSON of the phase.
async fn saturation(
    args: &Args,
    emulator: &EmulatorHandle,
    extra: &[(&str, String)],
    mode: &GatewayMode,
    notes: &mut Vec<String>,
) -> anyhow::Result<serde_json::Value> {
    let warmup = Duration::from_secs_f64(args.warmup);
    let measure = Duration::from_secs_f64(args.seconds);
    let mut limited_settings = extra.to_vec();
    limited_settings.push((
        "OSSGATE_SERVER__MAX_CONCURRENT_CALLS",
        args.saturation_limit.to_string(),
    ));
    let (limited, more_notes) = start_gateway(emulator, &limited_settings, mode).await?;
    notes.extend(more_notes);
    let sat_channels = channels(&limited, args.saturation_clients.clamp(1, MAX_CHANNELS)).await?;
    println!();
    println!(
        "saturation: {} clients against server.max_concurrent_calls = {}",
        args.saturation_clients, args.saturation_limit
    );
    println!(
        "| clients retry | OK ops/s | shed (UNAVAILABLE/OVERLOADED) per s | other errors | admitted p50 ms | admitted p99 ms | health checks (slowest ms) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut saturation = Vec::new();
    for (label, honor) in [("at once", false), ("after RetryInfo", true)] {
        let (phase, checks, worst) = saturate(
            &limited,
            &sat_channels,
            args.saturation_clients,
            warmup,
            measure,
            honor,
        )
        .await?;
        let secs = phase.elapsed.as_secs_f64();
        let shed = phase
            .by_code
            .get("Unavailable/OVERLOADED")
            .copied()
            .unwrap_or(0);
        let other: u64 = phase
            .by_code
            .iter()
            .filter(|(c, _)| !matches!(c.as_str(), "OK" | "Unavailable/OVERLOADED"))
            .map(|(_, n)| n)
            .sum();
        println!(
            "| {label} | {:.0} | {:.0} | {other} | {:.3} | {:.3} | {checks} ({:.1}) |",
            phase.throughput(),
            shed as f64 / secs,
            phase.quantile_ms(0.5),
            phase.quantile_ms(0.99),
            worst.as_secs_f64() * 1000.0,
        );
        saturation.push(json!({
            "clients_retry": label,
            "result": phase.json(),
            "health_checks_serving": checks,
            "health_slowest_ms": round(worst.as_secs_f64() * 1000.0, 1),
        }));
    }
    // As many connections as the 16-client level above, so the two compare.
    let used = args.channels.clamp(1, sat_channels.len());
    let after = run_phase(
        &Target::Gateway(sat_channels[..used].to_vec()),
        16,
        warmup,
        measure,
        false,
    )
    .await;
    drop(sat_channels);
    limited.shutdown().await?;
    println!(
        "16 clients right after: {:.0} ops/s, p50 {:.3} ms, p99 {:.3} ms, answers {:?}",
        after.throughput(),
        after.quantile_ms(0.5),
        after.quantile_ms(0.99),
        after.by_code,
    );
    Ok(json!({
        "clients": args.saturation_clients,
        "max_concurrent_calls": args.saturation_limit,
        "phases": saturation,
        "after_16_clients": after.json(),
    }))
}
