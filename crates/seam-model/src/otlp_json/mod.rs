//! OTLP/JSON: decoding export requests and encoding spans, logs, metrics and export responses.
//!
//! Follows the OTLP/HTTP JSON encoding (<https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding>):
//! proto3 JSON with lowerCamelCase names, trace and span ids as hex, and enums as integers. The
//! decoder is lenient where the spec asks receivers to be (snake_case names, 64-bit integers as
//! numbers or strings, enum names); the encoder writes the strict form, or Tempo's form.

mod decode;
mod encode;

pub use decode::{decode_logs, decode_metrics, decode_traces, JsonDecodeError};
pub use encode::{
    encode_logs_response, encode_metrics_response, encode_resource_logs, encode_resource_metrics,
    encode_resource_spans, encode_traces_response, JsonStyle,
};
