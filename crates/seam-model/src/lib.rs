//! Seam's data model: the signal types every later stage speaks, and their conversions from OTLP.
//!
//! This crate does no I/O and depends on nothing else of Seam's, so every stage can share it.

pub mod attributes;
pub mod ids;
pub mod labels;
pub mod logs;
pub mod metrics;
pub mod otlp_json;
pub mod prom_convert;
pub mod tenant;
pub mod traces;

pub use ids::{SpanId, TraceId};
pub use labels::{Label, Labels};
pub use logs::{LogBatch, LogEntry, LogStream};
pub use metrics::{Sample, SampleBatch, Series};
pub use tenant::{Tenant, TenantError};

/// Re-export of the OTLP protobuf types Seam uses, so callers name one version of them.
pub use opentelemetry_proto::tonic as otlp;

/// Nanoseconds since the Unix epoch, now: the arrival time of records that carry none.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

/// The three telemetry signals Seam stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Spans.
    Traces,
    /// Log records.
    Logs,
    /// Metric samples, in Prometheus form.
    Metrics,
}

impl Signal {
    /// All signals, in a fixed order.
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Logs, Signal::Metrics];

    /// The lower-case name used in paths, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One decoded write, ready for the store: what a receiver hands to `submit`.
#[derive(Clone, Debug, PartialEq)]
pub enum Batch {
    /// Spans, grouped as OTLP groups them (resource, then scope).
    Traces(Vec<otlp::trace::v1::ResourceSpans>),
    /// Log entries grouped by stream.
    Logs(LogBatch),
    /// Samples grouped by series.
    Metrics(SampleBatch),
}

impl Batch {
    /// The signal this batch carries.
    pub fn signal(&self) -> Signal {
        match self {
            Batch::Traces(_) => Signal::Traces,
            Batch::Logs(_) => Signal::Logs,
            Batch::Metrics(_) => Signal::Metrics,
        }
    }

    /// How many records (spans, log entries or samples) the batch holds.
    pub fn record_count(&self) -> usize {
        match self {
            Batch::Traces(rs) => traces::span_count(rs),
            Batch::Logs(b) => b.entry_count(),
            Batch::Metrics(b) => b.sample_count(),
        }
    }

    /// True when the batch holds no records.
    pub fn is_empty(&self) -> bool {
        self.record_count() == 0
    }
}
