//! Loki push: `POST /loki/api/v1/push`, protobuf (`logproto.PushRequest`, snappy block
//! compressed, with or without `Content-Encoding: snappy`) or JSON (optionally gzip). Streams and
//! entries are validated as Loki does; the valid rest of a request is stored and the refused part
//! is named in a `400` text answer. `204` when everything was stored.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use prost::Message;
use seam_model::labels::{is_valid_label_name, Labels};
use seam_model::logs::{LogBatch, LogEntry, LogStream};
use seam_model::now_ns;
use seam_model::{Batch, Signal, Tenant};

use crate::body::{self, BodyError, Encoding, IntakeError};
use crate::loki_decode::{from_json, from_proto, PushRequest, PushStream};
use crate::otlp_http::DEFAULT_MAX_BODY_BYTES;
use crate::sink::{Protocol, Refusal, Sink};

/// Loki's default `max_line_size`, 256 KiB.
pub const DEFAULT_MAX_LINE_SIZE: usize = 256 << 10;
/// Loki's default `max_label_names_per_series`.
pub const DEFAULT_MAX_LABEL_NAMES: usize = 15;
/// Loki's default `reject_old_samples_max_age`, 7 days.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Loki's default `creation_grace_period`, 10 minutes.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(600);

/// The per-tenant limits a push is validated against; the defaults are Loki's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushLimits {
    /// Longest line accepted, in bytes.
    pub max_line_size: usize,
    /// Most label names a stream may have.
    pub max_label_names_per_stream: usize,
    /// Entries older than this are refused.
    pub reject_old_samples_max_age: Duration,
    /// Entries further than this in the future are refused.
    pub creation_grace_period: Duration,
}

impl Default for PushLimits {
    fn default() -> Self {
        PushLimits {
            max_line_size: DEFAULT_MAX_LINE_SIZE,
            max_label_names_per_stream: DEFAULT_MAX_LABEL_NAMES,
            reject_old_samples_max_age: DEFAULT_MAX_AGE,
            creation_grace_period: DEFAULT_GRACE,
        }
    }
}

/// Where the receiver looks up a tenant's push limits, so that they can differ per tenant
/// without the receiver knowing how limits are configured.
pub trait PushLimitsSource: Send + Sync {
    /// The limits that apply to `tenant`'s pushes.
    fn push_limits(&self, tenant: &Tenant) -> PushLimits;
}

/// The same limits for every tenant.
impl PushLimitsSource for PushLimits {
    fn push_limits(&self, _tenant: &Tenant) -> PushLimits {
        self.clone()
    }
}

/// Settings of the Loki push receiver.
#[derive(Clone)]
pub struct LokiPushConfig {
    /// Largest body accepted, before and after decompression.
    pub max_body_bytes: usize,
    /// Each tenant's validation limits.
    pub limits: Arc<dyn PushLimitsSource>,
}

impl std::fmt::Debug for LokiPushConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LokiPushConfig")
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl Default for LokiPushConfig {
    fn default() -> Self {
        LokiPushConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            limits: Arc::new(PushLimits::default()),
        }
    }
}

struct Receiver {
    sink: Arc<dyn Sink>,
    cfg: LokiPushConfig,
}

/// The `/loki/api/v1/push` route.
pub fn router(sink: Arc<dyn Sink>, cfg: LokiPushConfig) -> Router {
    Router::new()
        .route("/loki/api/v1/push", post(handle))
        .with_state(Arc::new(Receiver { sink, cfg }))
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut m = msg.into();
    m.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        m,
    )
        .into_response()
}

fn body_error(e: BodyError) -> Response {
    text(e.status(), e.to_string())
}

fn refusal(r: Refusal) -> Response {
    r.with_retry_after(text(r.status(), r.to_string()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

fn format_of(headers: &HeaderMap) -> Result<Format, String> {
    let mime = body::media_type(headers);
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Format::Protobuf),
        // Loki treats a missing content type as JSON too.
        "application/json" | "" => Ok(Format::Json),
        other => Err(format!(
            "unsupported Content-Type {other:?} (supported: application/x-protobuf, application/json)"
        )),
    }
}

/// Formats nanoseconds since the epoch as RFC 3339 UTC, as Loki's error messages do.
pub fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// What validating a push produced.
#[derive(Debug, Default)]
pub struct Validated {
    /// The accepted entries.
    pub batch: LogBatch,
    /// Entries accepted.
    pub accepted: u64,
    /// Entries refused.
    pub refused: u64,
    /// One reason per refused stream or entry, naming the stream.
    pub errors: Vec<String>,
}

/// Validates decoded streams as Loki does, merging streams with equal label sets.
pub fn validate(streams: Vec<PushStream>, cfg: &PushLimits, now_ns: i64) -> Validated {
    let mut out = Validated::default();
    let oldest = now_ns.saturating_sub(cfg.reject_old_samples_max_age.as_nanos() as i64);
    let newest = now_ns.saturating_add(cfg.creation_grace_period.as_nanos() as i64);
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for s in streams {
        let n = s.entries.len() as u64;
        let labels = match s.labels {
            Ok(l) => l,
            Err(e) => {
                out.refused += n;
                out.errors.push(e);
                continue;
            }
        };
        // Names are checked as pushed: the set drops empty values and repeated names.
        let bad_name = labels
            .iter()
            .find(|l| !is_valid_label_name(&l.name))
            .map(|l| l.name.clone());
        let set = Labels::from_labels(labels);
        // The stream's text, for error messages only.
        let name = || set.to_string();
        let stream_err = if set.is_empty() {
            Some("error at least one label pair is required per stream".to_string())
        } else if let Some(bad) = bad_name {
            Some(format!(
                "stream '{}' has invalid label name '{bad}' (must match [a-zA-Z_][a-zA-Z0-9_]*)",
                name()
            ))
        } else if set.len() > cfg.max_label_names_per_stream {
            Some(format!(
                "stream '{}' has {} label names; limit {}",
                name(),
                set.len(),
                cfg.max_label_names_per_stream
            ))
        } else {
            None
        };
        if let Some(e) = stream_err {
            out.refused += n;
            out.errors.push(e);
            continue;
        }
        let mut entries = Vec::with_capacity(s.entries.len());
        for (ts, line, md) in s.entries {
            let err = if ts < oldest {
                Some(format!(
                    "entry for stream '{}' has timestamp too old: {}, oldest acceptable timestamp is: {}",
                    name(),
                    rfc3339(ts),
                    rfc3339(oldest)
                ))
            } else if ts > newest {
                Some(format!(
                    "entry for stream '{}' has timestamp too new: {}",
                    name(),
                    rfc3339(ts)
                ))
            } else if line.len() > cfg.max_line_size {
                Some(format!(
                    "max entry size '{}' bytes exceeded for stream '{}' while adding an entry with length '{}' bytes",
                    cfg.max_line_size,
                    name(),
                    line.len()
                ))
            } else {
                md.iter()
                    .find(|l| !is_valid_label_name(&l.name))
                    .map(|bad| {
                        format!(
                            "entry for stream '{}' has invalid structured metadata name '{}'",
                            name(),
                            bad.name
                        )
                    })
            };
            if let Some(e) = err {
                out.refused += 1;
                out.errors.push(e);
                continue;
            }
            out.accepted += 1;
            entries.push(LogEntry {
                timestamp_ns: ts,
                line,
                structured_metadata: Labels::from_labels(md).into_vec(),
                ..Default::default()
            });
        }
        if entries.is_empty() {
            continue;
        }
        let idx = *index.entry(set.clone()).or_insert_with(|| {
            out.batch.streams.push(LogStream {
                labels: set.into_vec(),
                entries: Vec::new(),
            });
            out.batch.streams.len() - 1
        });
        out.batch.streams[idx].entries.extend(entries);
    }
    out
}

/// How many refusal reasons a 400 answer lists before summarising.
const MAX_ERRORS_LISTED: usize = 10;

async fn handle(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Body) -> Response {
    let format = match format_of(&headers) {
        Ok(f) => f,
        Err(m) => return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, m),
    };
    let tenant = match crate::tenant(&headers) {
        Ok(t) => t,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let ce = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let snappy_header = ce.is_some_and(|v| v.trim().eq_ignore_ascii_case("snappy"));
    let encoding = if snappy_header {
        Encoding::Identity
    } else {
        match Encoding::from_header(ce) {
            Ok(e) => e,
            Err(e) => return body_error(e),
        }
    };
    // A protobuf push is always snappy-compressed (winston-loki sends no Content-Encoding).
    let snappy = format == Format::Protobuf || snappy_header;
    let limit = rx.cfg.max_body_bytes;
    let unwrap = |d: Bytes| {
        if snappy {
            body::snappy(&d, limit)
        } else {
            Ok(d)
        }
    };
    let intake = match body::intake(body, &headers, encoding, limit, &*rx.sink, unwrap).await {
        Ok(i) => i,
        Err(IntakeError::Body(e)) => return body_error(e),
        Err(IntakeError::Refused(r)) => return refusal(r),
        Err(IntakeError::Read(m)) => return text(StatusCode::BAD_REQUEST, m),
    };
    let data = &intake.data;
    let streams = match format {
        Format::Protobuf => PushRequest::decode(&data[..])
            .map(from_proto)
            .map_err(|e| format!("invalid protobuf body ({} bytes): {e}", data.len())),
        Format::Json => from_json(data),
    };
    let streams = match streams {
        Ok(s) => s,
        Err(m) => return text(StatusCode::BAD_REQUEST, m),
    };
    drop(intake);
    let limits = rx.cfg.limits.push_limits(&tenant);
    let v = validate(streams, &limits, now_ns());
    if !v.batch.streams.is_empty() {
        if let Err(r) = rx.sink.submit(tenant, Batch::Logs(v.batch)).await {
            rx.sink
                .observe(Signal::Logs, Protocol::LokiPush, 0, v.accepted + v.refused);
            return refusal(r);
        }
    }
    rx.sink
        .observe(Signal::Logs, Protocol::LokiPush, v.accepted, v.refused);
    if v.errors.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let mut msg: Vec<String> = v.errors.iter().take(MAX_ERRORS_LISTED).cloned().collect();
    if v.errors.len() > MAX_ERRORS_LISTED {
        msg.push(format!(
            "(and {} more errors)",
            v.errors.len() - MAX_ERRORS_LISTED
        ));
    }
    msg.push(format!(
        "total ignored: {} out of {}",
        v.refused,
        v.accepted + v.refused
    ));
    text(StatusCode::BAD_REQUEST, msg.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use seam_model::labels::Label;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(1_795_335_212_115_000_000),
            "2026-11-22T08:13:32.115000000Z"
        );
    }

    #[test]
    fn validates_like_loki() {
        let now = 1_000_000_000_000_000_000;
        let cfg = PushLimits::default();
        let s = |labels: Vec<Label>, entries: Vec<(i64, String, Vec<Label>)>| PushStream {
            labels: Ok(labels),
            entries,
        };
        let v = validate(
            vec![
                s(
                    vec![Label::new("app", "x")],
                    vec![
                        (now, "ok".into(), vec![]),
                        (now + 3_600_000_000_000, "new".into(), vec![]),
                        (now - 8 * 86_400_000_000_000, "old".into(), vec![]),
                        (now, "x".repeat(DEFAULT_MAX_LINE_SIZE + 1), vec![]),
                    ],
                ),
                s(
                    vec![Label::new("bad-name", "x")],
                    vec![(now, "l".into(), vec![])],
                ),
                s(
                    (0..16).map(|i| Label::new(format!("l{i}"), "v")).collect(),
                    vec![(now, "l".into(), vec![])],
                ),
                s(
                    vec![Label::new("app", "x")],
                    vec![(now - 1, "ok2".into(), vec![])],
                ),
            ],
            &cfg,
            now,
        );
        assert_eq!((v.accepted, v.refused), (2, 5));
        assert_eq!(v.batch.streams.len(), 1);
        assert_eq!(v.batch.streams[0].entries.len(), 2);
        let all = v.errors.join("\n");
        assert!(
            all.contains("entry for stream '{app=\"x\"}' has timestamp too new"),
            "{all}"
        );
        assert!(all.contains("has timestamp too old"), "{all}");
        assert!(
            all.contains("max entry size '262144' bytes exceeded"),
            "{all}"
        );
        assert!(all.contains("invalid label name 'bad-name'"), "{all}");
        assert!(all.contains("has 16 label names; limit 15"), "{all}");
    }
}
