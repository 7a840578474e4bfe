//! Helpers shared by the OTLP/JSON tests: fixtures, attribute lookup, ids and one-span requests.

use seam_model::otlp::common::v1::any_value::Value as V;
use seam_model::otlp::common::v1::KeyValue;
use seam_model::otlp::trace::v1::Span;
use seam_model::otlp_json::*;
use serde_json::{json, Value};

/// The bytes of `tests/fixtures/otlp-json/<name>`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/otlp-json/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The value of attribute `key`; panics when it is missing.
pub fn attr<'a>(kvs: &'a [KeyValue], key: &str) -> &'a V {
    kvs.iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
        .unwrap_or_else(|| panic!("no attribute {key}"))
}

/// A string attribute value.
pub fn s(v: &str) -> V {
    V::StringValue(v.into())
}

/// Bytes from hex.
pub fn hex(s: &str) -> Vec<u8> {
    ::hex::decode(s).unwrap()
}

/// The only span of a one-span trace request written as JSON.
pub fn one_span(span: Value) -> Span {
    let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]});
    let mut req = decode_traces(body.to_string().as_bytes()).unwrap();
    req.resource_spans
        .remove(0)
        .scope_spans
        .remove(0)
        .spans
        .remove(0)
}
