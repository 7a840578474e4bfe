//! What OTLP over HTTP and over gRPC share: turning a decoded export request into a model batch
//! (with per-record validation that feeds `partial_success`) and handing it to the sink.

use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use seam_model::otlp::collector::logs::v1::ExportLogsServiceRequest;
use seam_model::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use seam_model::otlp::collector::trace::v1::ExportTraceServiceRequest;
use seam_model::prom_convert::PromConverter;
use seam_model::{logs, traces, Batch, Signal, Tenant};

use crate::sink::{Protocol, Refusal, Sink};

/// Most delta series whose running totals are kept (per process, all tenants).
pub const MAX_DELTA_SERIES: usize = 1_000_000;

/// A request turned into a batch, with what was refused inside it.
pub struct Converted {
    /// Records kept.
    pub batch: Batch,
    /// Records refused as individually invalid.
    pub rejected: u64,
    /// Why the first refused record was refused.
    pub message: Option<String>,
}

/// The outcome of an export, for the protocol's response.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExportOutcome {
    /// Records refused inside an otherwise accepted request.
    pub rejected: u64,
    /// Why, when any were refused.
    pub message: Option<String>,
}

/// Converts OTLP requests to model batches. Holds the state delta-temporality metrics need.
pub struct OtlpConverter {
    metrics: Mutex<PromConverter>,
}

impl Default for OtlpConverter {
    fn default() -> Self {
        OtlpConverter {
            metrics: Mutex::new(PromConverter::new(MAX_DELTA_SERIES)),
        }
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl OtlpConverter {
    /// Spans, minus those with invalid ids.
    pub fn traces(&self, req: ExportTraceServiceRequest) -> Converted {
        let mut rs = req.resource_spans;
        let v = traces::validate(&mut rs);
        Converted {
            batch: Batch::Traces(rs),
            rejected: v.rejected,
            message: v.first_error,
        }
    }

    /// Log records mapped to Loki streams.
    pub fn logs(&self, req: &ExportLogsServiceRequest) -> Converted {
        let c = logs::from_otlp(req, now_ns());
        Converted {
            batch: Batch::Logs(c.batch),
            rejected: c.rejected,
            message: c.first_error,
        }
    }

    /// Metric points converted to Prometheus series.
    pub fn metrics(&self, tenant: &Tenant, req: &ExportMetricsServiceRequest) -> Converted {
        let c = self.metrics.lock().convert(tenant.as_str(), req);
        Converted {
            batch: Batch::Metrics(c.batch),
            rejected: c.rejected_points,
            message: c.first_error,
        }
    }
}

/// Stores a converted request through the sink and counts the outcome.
pub async fn export(
    sink: &dyn Sink,
    tenant: Tenant,
    signal: Signal,
    protocol: Protocol,
    converted: Converted,
) -> Result<ExportOutcome, Refusal> {
    let accepted = converted.batch.record_count() as u64;
    let result = if accepted > 0 {
        sink.submit(tenant, converted.batch).await
    } else {
        Ok(())
    };
    match result {
        Ok(()) => {
            sink.observe(signal, protocol, accepted, converted.rejected);
            Ok(ExportOutcome {
                rejected: converted.rejected,
                message: converted.message,
            })
        }
        Err(e) => {
            sink.observe(signal, protocol, 0, accepted + converted.rejected);
            Err(e)
        }
    }
}
