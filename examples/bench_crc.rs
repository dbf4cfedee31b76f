//! CRC-64/XZ throughput of `ossgate::model::crc64` over one buffer (1 GiB by default),
//! best of a few runs, printed as one JSON line.
//!
//! ```text
//! cargo build --release --examples --bin ossgate
//! target/release/examples/bench_crc --size 1073741824 --runs 5
//! ```

use std::{hint::black_box, time::Instant};

use clap::Parser;
use ossgate::model::{Crc64, crc64};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "CRC-64/XZ throughput (one JSON line)")]
struct Args {
    /// Buffer size in bytes (default 1 GiB).
    #[arg(long, default_value_t = 1 << 30)]
    size: usize,
    /// Runs; the best is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Also measure the incremental API fed in chunks of this many bytes (as a stream
    /// of gRPC messages would feed it); 0 skips it.
    #[arg(long, default_value_t = 1 << 20)]
    chunk: usize,
    /// Only print the CRC-64 of this file (`{"crc64": N}`) and exit.
    #[arg(long)]
    file: Option<std::path::PathBuf>,
}

fn best_of(runs: usize, mut f: impl FnMut() -> u64) -> (f64, u64) {
    let mut best = f64::INFINITY;
    let mut value = 0;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        value = black_box(f());
        best = best.min(started.elapsed().as_secs_f64());
    }
    (best, value)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(path) = &args.file {
        let mut crc = Crc64::new();
        let mut file = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 8 << 20];
        loop {
            let n = std::io::Read::read(&mut file, &mut buf)?;
            if n == 0 {
                break;
            }
            crc.update(&buf[..n]);
        }
        println!("{}", serde_json::json!({ "crc64": crc.value() }));
        return Ok(());
    }
    // Non-trivial contents, touched once so page faults are not timed.
    let data: Vec<u8> = (0..args.size)
        .map(|i| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes()[7])
        .collect();
    let gib = args.size as f64 / GIB;

    let (one_shot, crc) = best_of(args.runs, || crc64(black_box(&data)));
    let mut line = serde_json::json!({
        "tool": "bench_crc",
        "bytes": args.size,
        "runs": args.runs,
        "crc64": format!("{crc:016x}"),
        "seconds": one_shot,
        "gib_s": gib / one_shot,
    });
    if args.chunk > 0 {
        let (chunked, crc2) = best_of(args.runs, || {
            let mut c = Crc64::new();
            for piece in black_box(&data).chunks(args.chunk) {
                c.update(piece);
            }
            c.value()
        });
        anyhow::ensure!(crc == crc2, "chunked and one-shot CRC-64 differ");
        line["chunk_bytes"] = args.chunk.into();
        line["chunked_gib_s"] = (gib / chunked).into();
    }
    println!("{line}");
    Ok(())
}
