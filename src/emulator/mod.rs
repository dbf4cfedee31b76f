//! OSS-compatible emulator (placeholder until the emulator module lands).

/// Command-line arguments of `ossgate emulator`.
#[derive(clap::Args, Debug, Default)]
pub struct EmulatorArgs {}

/// Runs the emulator from the command line.
pub async fn run_cli(_args: EmulatorArgs) -> anyhow::Result<()> {
    anyhow::bail!("the emulator is not built yet")
}
