//! Service configuration (placeholder).

/// Loads and validates the configuration, then prints it.
pub fn check(_path: Option<&std::path::Path>) -> anyhow::Result<()> {
    anyhow::bail!("configuration is not built yet")
}
