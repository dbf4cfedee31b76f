//! The `ossgate` command: `serve` (the default) runs the gRPC gateway, `emulator` runs the
//! OSS-compatible emulator on its own, `check-config` validates the configuration.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

// mimalloc returns freed part buffers to the OS and allocates small objects faster than glibc:
// measured lower peak RSS with 16 concurrent uploads and less allocator time per RPC
// (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// gRPC gateway to Alibaba Cloud OSS object tagging.
#[derive(Parser, Debug)]
#[command(name = "ossgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the gRPC API (the default). Without `oss.endpoint` it starts the embedded emulator.
    Serve(ossgate::server::ServeArgs),
    /// Run the OSS-compatible emulator on its own.
    Emulator(ossgate::emulator::EmulatorArgs),
    /// Load and validate the configuration, print it with secrets redacted, and exit.
    CheckConfig {
        /// Configuration file (TOML).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ossgate: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve(Default::default())) {
            Command::Serve(args) => ossgate::server::run(args).await,
            Command::Emulator(args) => ossgate::emulator::run_cli(args).await,
            Command::CheckConfig { config } => ossgate::server::check_config(config.as_deref()),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ossgate: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
