//! Validated value types (placeholder).
