//! Request signing (placeholder).
