//! Sending: packing due records into OTLP/HTTP protobuf requests and posting them with retries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use prost::Message;
use seam_model::otlp::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use seam_model::otlp::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use seam_model::otlp::common::v1::InstrumentationScope;
use seam_model::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use seam_model::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};

use super::super::http::{error_message, Http};
use super::{Item, Record, Svc, MAX_ATTEMPTS};

/// Counters shared by the send tasks.
#[derive(Default)]
pub(super) struct SendStats {
    pub(super) requests: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) duplicates: AtomicU64,
    pub(super) rejected: AtomicU64,
}

/// One request body ready to post.
pub(super) struct Body {
    pub(super) logs: bool,
    pub(super) bytes: Bytes,
}

/// Posts `body`, retrying 429/503 after Retry-After and transport errors with a backoff.
pub(super) async fn post(http: Http, body: Body, stats: Arc<SendStats>) -> Result<(), String> {
    let path = if body.logs { "/v1/logs" } else { "/v1/traces" };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let r = http
            .exchange(
                Method::POST,
                path,
                Some("application/x-protobuf"),
                None,
                body.bytes.clone(),
            )
            .await;
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let pause = match r {
            Ok(a) if a.status.is_success() => {
                let rejected = if body.logs {
                    ExportLogsServiceResponse::decode(a.body)
                        .ok()
                        .and_then(|r| r.partial_success)
                        .map_or(0, |p| p.rejected_log_records)
                } else {
                    ExportTraceServiceResponse::decode(a.body)
                        .ok()
                        .and_then(|r| r.partial_success)
                        .map_or(0, |p| p.rejected_spans)
                };
                stats
                    .rejected
                    .fetch_add(rejected.max(0) as u64, Ordering::Relaxed);
                return Ok(());
            }
            Ok(a)
                if matches!(
                    a.status,
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                ) =>
            {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                if attempt >= MAX_ATTEMPTS {
                    return Err(format!(
                        "{path}: still {} after {attempt} attempts",
                        a.status
                    ));
                }
                a.retry_after
                    .unwrap_or(Duration::from_millis(200))
                    .min(Duration::from_secs(5))
            }
            Ok(a) => return Err(format!("{path}: {} {}", a.status, error_message(&a.body))),
            Err(e) => {
                if attempt >= 5 {
                    return Err(format!("{e:#}"));
                }
                Duration::from_millis(100 * u64::from(attempt))
            }
        };
        tokio::time::sleep(pause).await;
    }
}

/// Packs due items into request bodies of at most `batch` records, spans and logs apart.
pub(super) fn pack(items: Vec<Item>, batch: usize) -> Vec<Body> {
    let mut out = Vec::new();
    let mut spans: Vec<(Svc, Span)> = Vec::new();
    let mut logs: Vec<LogRecord> = Vec::new();
    for it in items {
        match it.record {
            Record::Span(s) => spans.push((it.svc, s)),
            Record::Log(l) => logs.push(l),
        }
    }
    for chunk in spans.chunks(batch.max(1)) {
        let resource_spans = Svc::ALL
            .iter()
            .filter_map(|&svc| {
                let ss: Vec<Span> = chunk
                    .iter()
                    .filter(|(s, _)| *s == svc)
                    .map(|(_, sp)| sp.clone())
                    .collect();
                (!ss.is_empty()).then(|| ResourceSpans {
                    resource: Some(svc.resource()),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(svc.scope()),
                        spans: ss,
                        ..Default::default()
                    }],
                    ..Default::default()
                })
            })
            .collect();
        out.push(Body {
            logs: false,
            bytes: ExportTraceServiceRequest { resource_spans }
                .encode_to_vec()
                .into(),
        });
    }
    for chunk in logs.chunks(batch.max(1)) {
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Svc::Mdso.resource()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "mdso.syslog".into(),
                        ..Default::default()
                    }),
                    log_records: chunk.to_vec(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        out.push(Body {
            logs: true,
            bytes: req.encode_to_vec().into(),
        });
    }
    out
}
