//! `ossgate emulator`: runs the emulator on its own.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;

use super::{BucketSpec, EmulatorConfig};
use crate::oss::credentials::Credentials;

/// Command-line arguments of `ossgate emulator`.
#[derive(clap::Args, Clone, Default)]
pub struct EmulatorArgs {
    /// Address to listen on (loopback only unless --allow-remote).
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: Option<SocketAddr>,
    /// Allow a non-loopback --listen address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Store objects durably under this directory.
    #[arg(long, conflicts_with = "in_memory")]
    pub data_dir: Option<PathBuf>,
    /// Keep objects in memory (the default).
    #[arg(long)]
    pub in_memory: bool,
    /// The accepted AccessKey ID.
    #[arg(long, env = "OSS_ACCESS_KEY_ID", hide_env_values = true)]
    pub access_key_id: Option<String>,
    /// The accepted AccessKey secret.
    #[arg(long, env = "OSS_ACCESS_KEY_SECRET", hide_env_values = true)]
    pub access_key_secret: Option<String>,
    /// Require this STS security token with the key.
    #[arg(long, env = "OSS_SESSION_TOKEN", hide_env_values = true)]
    pub security_token: Option<String>,
    /// Bucket to create at start: NAME or NAME:versioned (repeatable).
    #[arg(long = "bucket", value_name = "NAME[:versioned]")]
    pub buckets: Vec<BucketSpec>,
    /// Region for V4 signatures.
    #[arg(long, default_value = "cn-hangzhou")]
    pub region: Option<String>,
    /// How long a RestoreObject of an archive object runs, in milliseconds (default 1000).
    #[arg(long, value_name = "MS")]
    pub restore_delay_ms: Option<u64>,
    /// The STS endpoint for tests (see the `sts` module).
    #[command(flatten)]
    pub sts: super::sts::StsArgs,
}

impl std::fmt::Debug for EmulatorArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorArgs")
            .field("listen", &self.listen)
            .field("allow_remote", &self.allow_remote)
            .field("data_dir", &self.data_dir)
            .field("in_memory", &self.in_memory)
            .field("access_key_id", &self.access_key_id)
            .field(
                "access_key_secret",
                &self.access_key_secret.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .field("buckets", &self.buckets)
            .field("region", &self.region)
            .field("restore_delay_ms", &self.restore_delay_ms)
            .finish()
    }
}

impl EmulatorArgs {
    /// The configuration these arguments describe (checks credentials and --listen).
    pub fn to_config(&self) -> anyhow::Result<EmulatorConfig> {
        let listen = self
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9000)));
        if !listen.ip().is_loopback() && !self.allow_remote {
            anyhow::bail!(
                "--listen {listen} is not a loopback address; pass --allow-remote to expose the emulator"
            );
        }
        let (Some(id), Some(secret)) = (&self.access_key_id, &self.access_key_secret) else {
            anyhow::bail!(
                "the emulator needs credentials: --access-key-id and --access-key-secret \
                 (or OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET)"
            );
        };
        if id.is_empty() || secret.is_empty() {
            anyhow::bail!("the access key ID and secret must not be empty");
        }
        Ok(EmulatorConfig {
            listen,
            data_dir: self.data_dir.clone(),
            credentials: vec![Credentials {
                access_key_id: id.clone(),
                access_key_secret: secret.clone(),
                security_token: self.security_token.clone().filter(|t| !t.is_empty()),
            }],
            buckets: self.buckets.clone(),
            region: self
                .region
                .clone()
                .unwrap_or_else(|| "cn-hangzhou".to_owned()),
            verify_signatures: true,
        })
    }
}

/// Runs the emulator from the command line: prints exactly one stdout line
/// `ossgate emulator listening on http://IP:PORT` once bound, serves until SIGTERM/Ctrl-C.
pub async fn run_cli(args: EmulatorArgs) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let config = args.to_config()?;
    let handle = super::start(config).await?;
    handle.sts().configure(args.sts.to_config());
    if let Some(ms) = args.restore_delay_ms {
        handle.set_restore_delay(std::time::Duration::from_millis(ms));
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ossgate emulator listening on {}", handle.endpoint())
            .and_then(|()| out.flush())
            .context("cannot write to stdout")?;
    }
    wait_for_signal().await?;
    tracing::info!("stopping the emulator");
    handle.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot watch Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot watch Ctrl-C")?;
    Ok(())
}
