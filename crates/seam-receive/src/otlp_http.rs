//! OTLP/HTTP: `POST /v1/traces`, `/v1/logs` and `/v1/metrics`, protobuf or JSON, optionally gzip,
//! answered in the request's content type.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use prost::Message;

use crate::body::{self, BodyError, Encoding, IntakeError};
use crate::otlp::{export, Logs, Metrics, OtlpConverter, OtlpSignal, Traces};
use crate::sink::{Protocol, Refusal, Sink};

/// Default largest request body (compressed or not), 64 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;

/// Settings of the OTLP/HTTP receiver.
#[derive(Clone, Debug)]
pub struct OtlpHttpConfig {
    /// Largest body accepted, before and after decompression.
    pub max_body_bytes: usize,
}

impl Default for OtlpHttpConfig {
    fn default() -> Self {
        OtlpHttpConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

struct Receiver {
    sink: Arc<dyn Sink>,
    converter: Arc<OtlpConverter>,
    cfg: OtlpHttpConfig,
}

/// The OTLP/HTTP routes.
pub fn router(sink: Arc<dyn Sink>, converter: Arc<OtlpConverter>, cfg: OtlpHttpConfig) -> Router {
    let state = Arc::new(Receiver {
        sink,
        converter,
        cfg,
    });
    Router::new()
        .route("/v1/traces", post(handle::<Traces>))
        .route("/v1/logs", post(handle::<Logs>))
        .route("/v1/metrics", post(handle::<Metrics>))
        .with_state(state)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// The gRPC status codes OTLP/HTTP error bodies carry.
const INVALID_ARGUMENT: i32 = 3;
const RESOURCE_EXHAUSTED: i32 = 8;
const UNAVAILABLE: i32 = 14;
const INTERNAL: i32 = 13;

/// `google.rpc.Status`, the body of an OTLP/HTTP error.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// The gRPC status code.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// What was wrong.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// The message of an OTLP/HTTP error answer: its `google.rpc.Status` message, or the start of
/// the body as text (for clients of Seam such as the load generator and the demo).
pub fn error_message(body: &[u8]) -> String {
    match RpcStatus::decode(body) {
        Ok(s) if !s.message.is_empty() => s.message,
        _ => String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
    }
}

fn error(format: Format, status: StatusCode, code: i32, message: String) -> Response {
    let body = match format {
        Format::Protobuf => RpcStatus { code, message }.encode_to_vec(),
        Format::Json => serde_json::json!({"code": code, "message": message})
            .to_string()
            .into_bytes(),
    };
    (
        status,
        [(header::CONTENT_TYPE, format.content_type())],
        body,
    )
        .into_response()
}

/// The answer to a body that could not be read, with the status [`BodyError::status`] names.
fn body_error(format: Format, e: BodyError) -> Response {
    error(format, e.status(), INVALID_ARGUMENT, e.to_string())
}

fn refusal(format: Format, r: Refusal) -> Response {
    let code = match r {
        Refusal::Overloaded { .. } => RESOURCE_EXHAUSTED,
        Refusal::Unavailable(_) => UNAVAILABLE,
        Refusal::Internal(_) => INTERNAL,
    };
    r.with_retry_after(error(format, r.status(), code, r.to_string()))
}

fn format_of(headers: &HeaderMap) -> Result<Format, String> {
    let mime = body::media_type(headers);
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Format::Protobuf),
        "application/json" => Ok(Format::Json),
        "" => Err("missing Content-Type (supported: application/x-protobuf, application/json)".into()),
        other => Err(format!("unsupported Content-Type {other:?} (supported: application/x-protobuf, application/json)")),
    }
}

async fn handle<S: OtlpSignal>(
    State(rx): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let format = match format_of(&headers) {
        Ok(f) => f,
        Err(m) => {
            return (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                [(header::CONTENT_TYPE, "text/plain")],
                m,
            )
                .into_response()
        }
    };
    let tenant = match crate::tenant(&headers) {
        Ok(t) => t,
        Err(e) => {
            return error(
                format,
                StatusCode::BAD_REQUEST,
                INVALID_ARGUMENT,
                e.to_string(),
            )
        }
    };
    let encoding = match Encoding::from_header(
        headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok()),
    ) {
        Ok(e) => e,
        Err(e) => return body_error(format, e),
    };
    let data = match body::intake(
        body,
        &headers,
        encoding,
        rx.cfg.max_body_bytes,
        &*rx.sink,
        Ok,
    )
    .await
    {
        Ok(i) => i,
        Err(IntakeError::Body(e)) => return body_error(format, e),
        Err(IntakeError::Refused(r)) => return refusal(format, r),
        Err(IntakeError::Read(m)) => {
            return error(format, StatusCode::BAD_REQUEST, INVALID_ARGUMENT, m)
        }
    };
    let req = match format {
        Format::Protobuf => S::Request::decode(&data.data[..])
            .map_err(|e| format!("invalid protobuf body ({} bytes): {e}", data.data.len())),
        Format::Json => {
            S::decode_json(&data.data).map_err(|e| format!("invalid OTLP/JSON body: {e}"))
        }
    };
    let req = match req {
        Ok(r) => r,
        Err(m) => return error(format, StatusCode::BAD_REQUEST, INVALID_ARGUMENT, m),
    };
    drop(data);
    let converted = S::convert(&rx.converter, &tenant, req);
    match export(&*rx.sink, tenant, S::SIGNAL, Protocol::OtlpHttp, converted).await {
        Ok(o) => {
            let resp = S::response(o);
            let body = match format {
                Format::Protobuf => resp.encode_to_vec(),
                Format::Json => S::response_json(&resp).to_string().into_bytes(),
            };
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, format.content_type())],
                body,
            )
                .into_response()
        }
        Err(r) => refusal(format, r),
    }
}
