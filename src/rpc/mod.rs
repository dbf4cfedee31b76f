//! gRPC services (placeholder).
