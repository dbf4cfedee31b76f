//! Assembles and runs the gRPC server (placeholder).

/// Command-line arguments of `ossgate serve`.
#[derive(clap::Args, Debug, Default)]
pub struct ServeArgs {}

/// Runs the server until shutdown.
pub async fn run(_args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("the server is not built yet")
}
