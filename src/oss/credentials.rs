//! OSS credentials (placeholder).
