//! Seam's receivers. Each decodes a protocol into model batches and hands them to a [`Sink`]; the
//! response goes out only after the sink acknowledged (that is, after the WAL fsync). Receivers
//! know nothing of the store.

pub mod body;
pub mod loki_decode;
pub mod loki_push;
pub mod otlp;
pub mod otlp_grpc;
pub mod otlp_http;
pub mod sink;

pub use sink::{Admission, Protocol, Refusal, Sink};

/// The tenant an HTTP request names in `X-Scope-OrgID`, or the default one when it names none.
pub fn tenant(headers: &http::HeaderMap) -> Result<seam_model::Tenant, seam_model::TenantError> {
    seam_model::Tenant::from_header(headers.get("x-scope-orgid").and_then(|v| v.to_str().ok()))
}
