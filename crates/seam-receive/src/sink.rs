//! The contract between receivers and whatever stores what they decode.

use futures::future::BoxFuture;
use seam_model::{Batch, Signal, Tenant};

/// The wire protocol a write arrived over, for metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OTLP over HTTP.
    OtlpHttp,
    /// OTLP over gRPC.
    OtlpGrpc,
    /// Loki's push API.
    LokiPush,
}

impl Protocol {
    /// The label value used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::OtlpHttp => "otlp_http",
            Protocol::OtlpGrpc => "otlp_grpc",
            Protocol::LokiPush => "loki_push",
        }
    }
}

/// Memory held for a request body while it is decoded and stored; released on drop.
pub struct Admission(#[allow(dead_code)] Box<dyn Send + Sync>);

impl Admission {
    /// Wraps whatever guard the sink uses to hold the memory.
    pub fn new(guard: impl Send + Sync + 'static) -> Admission {
        Admission(Box::new(guard))
    }
}

/// Why a sink did not take a write. Nothing of a refused write is kept.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refusal {
    /// Over the memory budget: the client should retry after `retry_after_secs`.
    #[error("{message}")]
    Overloaded {
        /// Seconds to put in `Retry-After`.
        retry_after_secs: u64,
        /// Which budget and how full.
        message: String,
    },
    /// Not ready (replaying the WAL) or shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// The store failed.
    #[error("{0}")]
    Internal(String),
}

impl Refusal {
    /// The HTTP status a receiver answers it with: 429, 503 or 500.
    pub fn status(&self) -> http::StatusCode {
        match self {
            Refusal::Overloaded { .. } => http::StatusCode::TOO_MANY_REQUESTS,
            Refusal::Unavailable(_) => http::StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Internal(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// `resp` with the `Retry-After` an HTTP answer to this refusal carries: the sink's seconds
    /// for an overload, 1 while unavailable, none for an internal failure.
    pub fn with_retry_after(&self, mut resp: axum::response::Response) -> axum::response::Response {
        let secs = match self {
            Refusal::Overloaded {
                retry_after_secs, ..
            } => *retry_after_secs,
            Refusal::Unavailable(_) => 1,
            Refusal::Internal(_) => return resp,
        };
        resp.headers_mut()
            .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        resp
    }
}

/// Where receivers deliver decoded batches.
pub trait Sink: Send + Sync + 'static {
    /// Reserves memory for a body of `bytes` before it is read or decoded.
    fn admit(&self, bytes: usize) -> Result<Admission, Refusal>;
    /// Stores a batch; resolves once it is durable.
    fn submit(&self, tenant: Tenant, batch: Batch) -> BoxFuture<'static, Result<(), Refusal>>;
    /// Counts records accepted and refused, per signal and protocol.
    fn observe(&self, signal: Signal, protocol: Protocol, accepted: u64, refused: u64);
}
