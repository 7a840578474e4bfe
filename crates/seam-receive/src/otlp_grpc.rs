//! OTLP/gRPC: the three `Export` services, gzip accepted, tenant from `x-scope-orgid` metadata.

use std::sync::Arc;

use prost::Message;
use seam_model::otlp::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use seam_model::otlp::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use seam_model::otlp::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use seam_model::otlp::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use seam_model::otlp::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use seam_model::otlp::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use seam_model::Tenant;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use crate::otlp::{export, Logs, Metrics, OtlpConverter, OtlpSignal, Traces};
use crate::sink::{Admission, Protocol, Refusal, Sink};

/// The OTLP gRPC services, sharing one sink and converter.
#[derive(Clone)]
pub struct OtlpGrpc {
    sink: Arc<dyn Sink>,
    converter: Arc<OtlpConverter>,
}

impl OtlpGrpc {
    /// Services over a sink.
    pub fn new(sink: Arc<dyn Sink>, converter: Arc<OtlpConverter>) -> OtlpGrpc {
        OtlpGrpc { sink, converter }
    }

    /// A tonic router with the trace, logs and metrics services, each accepting gzip and messages
    /// up to `max_message_bytes`.
    pub fn routes(self, max_message_bytes: usize) -> tonic::service::Routes {
        let traces = TraceServiceServer::new(self.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_message_bytes);
        let logs = LogsServiceServer::new(self.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_message_bytes);
        let metrics = MetricsServiceServer::new(self)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_message_bytes);
        tonic::service::Routes::new(traces)
            .add_service(logs)
            .add_service(metrics)
    }

    fn begin<M: Message>(&self, req: &Request<M>) -> Result<(Tenant, Admission), Status> {
        let tenant = Tenant::from_header(
            req.metadata()
                .get("x-scope-orgid")
                .and_then(|v| v.to_str().ok()),
        )
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
        // The message is already decoded; hold its size while it is converted and stored.
        let admission = self
            .sink
            .admit(req.get_ref().encoded_len().saturating_mul(2))
            .map_err(status)?;
        Ok((tenant, admission))
    }
}

fn status(r: Refusal) -> Status {
    match r {
        Refusal::Overloaded { message, .. } => Status::resource_exhausted(message),
        Refusal::Unavailable(m) => Status::unavailable(m),
        Refusal::Internal(m) => Status::internal(m),
    }
}

impl OtlpGrpc {
    /// One export over gRPC, the same for every signal.
    async fn export_signal<S: OtlpSignal>(
        &self,
        request: Request<S::Request>,
    ) -> Result<Response<S::Response>, Status> {
        let (tenant, _admission) = self.begin(&request)?;
        let converted = S::convert(&self.converter, &tenant, request.into_inner());
        let outcome = export(
            &*self.sink,
            tenant,
            S::SIGNAL,
            Protocol::OtlpGrpc,
            converted,
        )
        .await
        .map_err(status)?;
        Ok(Response::new(S::response(outcome)))
    }
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.export_signal::<Traces>(request).await
    }
}

#[tonic::async_trait]
impl LogsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.export_signal::<Logs>(request).await
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.export_signal::<Metrics>(request).await
    }
}
