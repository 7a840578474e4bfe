//! What OTLP over HTTP and over gRPC share: turning a decoded export request into a model batch
//! (with per-record validation that feeds `partial_success`) and handing it to the sink.

use seam_model::now_ns;
use seam_model::otlp::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use seam_model::otlp::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use seam_model::otlp::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use seam_model::otlp_json::{self, JsonDecodeError};
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
    metrics: PromConverter,
}

impl Default for OtlpConverter {
    fn default() -> Self {
        OtlpConverter {
            metrics: PromConverter::new(MAX_DELTA_SERIES),
        }
    }
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
        let c = self.metrics.convert(tenant.as_str(), req);
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

/// What differs between the three OTLP signals, so each transport handles them with one code path.
pub trait OtlpSignal: Send + Sync + 'static {
    /// The export request message.
    type Request: prost::Message + Default + Send + 'static;
    /// The export response message.
    type Response: prost::Message + Default + Send + 'static;
    /// The signal.
    const SIGNAL: Signal;
    /// Decodes an OTLP/JSON request body.
    fn decode_json(body: &[u8]) -> Result<Self::Request, JsonDecodeError>;
    /// Converts a request into a model batch.
    fn convert(conv: &OtlpConverter, tenant: &Tenant, req: Self::Request) -> Converted;
    /// The response for an outcome, with `partial_success` when records were refused.
    fn response(o: ExportOutcome) -> Self::Response;
    /// The response as OTLP/JSON.
    fn response_json(resp: &Self::Response) -> serde_json::Value;
}

/// Spans.
pub struct Traces;
/// Log records.
pub struct Logs;
/// Metric points.
pub struct Metrics;

impl OtlpSignal for Traces {
    type Request = ExportTraceServiceRequest;
    type Response = ExportTraceServiceResponse;
    const SIGNAL: Signal = Signal::Traces;
    fn decode_json(body: &[u8]) -> Result<Self::Request, JsonDecodeError> {
        otlp_json::decode_traces(body)
    }
    fn convert(conv: &OtlpConverter, _tenant: &Tenant, req: Self::Request) -> Converted {
        conv.traces(req)
    }
    fn response(o: ExportOutcome) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: (o.rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: o.rejected as i64,
                error_message: o.message.unwrap_or_default(),
            }),
        }
    }
    fn response_json(resp: &Self::Response) -> serde_json::Value {
        otlp_json::encode_traces_response(resp)
    }
}

impl OtlpSignal for Logs {
    type Request = ExportLogsServiceRequest;
    type Response = ExportLogsServiceResponse;
    const SIGNAL: Signal = Signal::Logs;
    fn decode_json(body: &[u8]) -> Result<Self::Request, JsonDecodeError> {
        otlp_json::decode_logs(body)
    }
    fn convert(conv: &OtlpConverter, _tenant: &Tenant, req: Self::Request) -> Converted {
        conv.logs(&req)
    }
    fn response(o: ExportOutcome) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: (o.rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: o.rejected as i64,
                error_message: o.message.unwrap_or_default(),
            }),
        }
    }
    fn response_json(resp: &Self::Response) -> serde_json::Value {
        otlp_json::encode_logs_response(resp)
    }
}

impl OtlpSignal for Metrics {
    type Request = ExportMetricsServiceRequest;
    type Response = ExportMetricsServiceResponse;
    const SIGNAL: Signal = Signal::Metrics;
    fn decode_json(body: &[u8]) -> Result<Self::Request, JsonDecodeError> {
        otlp_json::decode_metrics(body)
    }
    fn convert(conv: &OtlpConverter, tenant: &Tenant, req: Self::Request) -> Converted {
        conv.metrics(tenant, &req)
    }
    fn response(o: ExportOutcome) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: (o.rejected > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: o.rejected as i64,
                error_message: o.message.unwrap_or_default(),
            }),
        }
    }
    fn response_json(resp: &Self::Response) -> serde_json::Value {
        otlp_json::encode_metrics_response(resp)
    }
}
