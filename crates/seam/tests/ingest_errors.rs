//! Bad OTLP/HTTP input gets the documented status and a message naming the problem, and the server
//! keeps serving: a valid request right after each bad one is accepted and readable.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

use common::codec::hex;
use common::{client, otlp, Seam};
use flate2::write::GzEncoder;
use flate2::Compression;
use prost::Message;
use seam_model::attributes::string_kv;
use seam_model::otlp::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use seam_model::otlp::trace::v1::Span;
use serde_json::Value;

const MIB: usize = 1 << 20;

/// `google.rpc.Status`, the body of an OTLP/HTTP protobuf error.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// Seam with `server.max_body_size: 1MiB` from a config file.
fn start_limited() -> (tempfile::TempDir, Seam) {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::with_config(dir.path(), "server:\n  max_body_size: 1MiB\n", &[]);
    (dir, s)
}

fn span(trace_id: Vec<u8>, span_id: u8, name: &str) -> Span {
    let (start, end) = (1_700_000_000_000_000_000, 1_700_000_001_000_000_000);
    Span {
        kind: 2,
        ..otlp::span(&trace_id, &[span_id; 8], name.into(), start, end)
    }
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    otlp::traces(otlp::service("errors-test"), spans)
}

/// A fresh valid trace id per call.
fn next_trace_id() -> Vec<u8> {
    static N: AtomicU8 = AtomicU8::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let mut id = vec![0xab; 16];
    id[15] = n;
    id
}

/// The answer to a POST: status, content type, body.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    /// The `google.rpc.Status` of a protobuf error body.
    fn rpc(&self) -> RpcStatus {
        assert_eq!(self.content_type, "application/x-protobuf");
        RpcStatus::decode(&self.body[..])
            .unwrap_or_else(|e| panic!("not a google.rpc.Status ({e}): {:?}", self.text()))
    }

    fn json(&self) -> Value {
        assert_eq!(self.content_type, "application/json");
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// POSTs to `/v1/traces`; `chunked` streams the body without a Content-Length.
fn post(s: &Seam, headers: &[(&str, &str)], body: Vec<u8>, chunked: bool) -> Answer {
    let mut req = client().post(format!("{}/v1/traces", s.otlp_http));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.body(otlp::body(body, chunked)).send().expect("POST");
    Answer {
        status: resp.status().as_u16(),
        content_type: resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default(),
        body: resp.bytes().unwrap().to_vec(),
    }
}

const PROTOBUF: (&str, &str) = ("Content-Type", "application/x-protobuf");
const JSON: (&str, &str) = ("Content-Type", "application/json");
const GZIP: (&str, &str) = ("Content-Encoding", "gzip");

/// A valid request right after a bad one is accepted and its span is readable.
fn assert_serves(s: &Seam) {
    let id = next_trace_id();
    let a = post(
        s,
        &[PROTOBUF],
        request(vec![span(id.clone(), 7, "after-error")]).encode_to_vec(),
        false,
    );
    assert_eq!(a.status, 200, "{}\n{}", a.text(), s.log_text());
    assert_eq!(
        ExportTraceServiceResponse::decode(&a.body[..])
            .unwrap()
            .partial_success,
        None
    );
    let (code, body) = s.get_json(&format!("/api/traces/{}", hex(&id)), None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["batches"][0]["scopeSpans"][0]["spans"][0]["name"],
        "after-error"
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn truncated_protobuf_is_400_with_rpc_status() {
    let (_d, s) = start_limited();
    let body = request(vec![span(next_trace_id(), 1, "cut")]).encode_to_vec();
    let a = post(&s, &[PROTOBUF], body[..body.len() / 2].to_vec(), false);
    assert_eq!(a.status, 400, "{}", a.text());
    let st = a.rpc();
    assert_eq!(st.code, 3, "INVALID_ARGUMENT");
    assert!(
        st.message.contains("invalid protobuf body"),
        "{}",
        st.message
    );
    assert_serves(&s);
}

#[test]
fn invalid_json_is_400_naming_line_and_column() {
    let (_d, s) = start_limited();
    let a = post(
        &s,
        &[JSON],
        b"{\n  \"resourceSpans\": [\n    {\"resource\": }\n  ]\n}".to_vec(),
        false,
    );
    assert_eq!(a.status, 400, "{}", a.text());
    let v = a.json();
    assert_eq!(v["code"], 3);
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("invalid JSON at line 3, column 18"), "{msg}");
    // Well-formed JSON of the wrong shape names the field.
    let a = post(
        &s,
        &[JSON],
        br#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}"#.to_vec(),
        false,
    );
    assert_eq!(a.status, 400, "{}", a.text());
    let msg = a.json()["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("resourceSpans[0].scopeSpans[0].spans[0].traceId"),
        "{msg}"
    );
    assert_serves(&s);
}

#[test]
fn unsupported_content_type_and_encoding_are_415() {
    let (_d, s) = start_limited();
    let body = request(vec![span(next_trace_id(), 1, "x")]).encode_to_vec();
    let a = post(&s, &[("Content-Type", "text/plain")], body.clone(), false);
    assert_eq!(a.status, 415, "{}", a.text());
    assert!(
        a.text().contains("unsupported Content-Type \"text/plain\""),
        "{}",
        a.text()
    );
    let a = post(&s, &[], body.clone(), false);
    assert_eq!(a.status, 415, "{}", a.text());
    assert!(a.text().contains("missing Content-Type"), "{}", a.text());
    let a = post(&s, &[PROTOBUF, ("Content-Encoding", "br")], body, false);
    assert_eq!(a.status, 415, "{}", a.text());
    assert!(a
        .rpc()
        .message
        .contains("unsupported Content-Encoding \"br\""));
    assert_serves(&s);
}

#[test]
fn oversized_body_is_413_with_and_without_content_length() {
    let (_d, s) = start_limited();
    // A valid request just over the limit (so only its size is wrong).
    let mut sp = span(next_trace_id(), 1, "big");
    sp.attributes.push(string_kv("blob", &"x".repeat(MIB)));
    let body = request(vec![sp]).encode_to_vec();
    assert!(body.len() > MIB);
    for chunked in [false, true] {
        let a = post(&s, &[PROTOBUF], body.clone(), chunked);
        assert_eq!(a.status, 413, "chunked={chunked}: {}", a.text());
        let st = a.rpc();
        assert_eq!(
            st.message, "request body exceeds the limit of 1048576 bytes",
            "chunked={chunked}"
        );
        assert_serves(&s);
    }
    // Exactly at the limit is fine (it is a bad protobuf, so 400, but not 413).
    let a = post(&s, &[PROTOBUF], vec![0xff; MIB], false);
    assert_eq!(a.status, 400, "{}", a.text());
    assert_serves(&s);
}

#[test]
fn bad_trace_id_is_a_partial_success_and_the_good_span_is_stored() {
    let (_d, s) = start_limited();
    // Protobuf.
    let good = next_trace_id();
    let req = request(vec![
        span(good.clone(), 1, "good"),
        span(vec![1; 15], 2, "bad"),
    ]);
    let a = post(&s, &[PROTOBUF], req.encode_to_vec(), false);
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.content_type, "application/x-protobuf");
    let ps = ExportTraceServiceResponse::decode(&a.body[..])
        .unwrap()
        .partial_success
        .expect("partial_success");
    assert_eq!(ps.rejected_spans, 1);
    assert_eq!(
        ps.error_message,
        "resourceSpans[0].scopeSpans[0].spans[1]: trace id must be 16 bytes, got 15"
    );
    let (code, body) = s.get_json(&format!("/api/traces/{}", hex(&good)), None);
    assert_eq!(code, 200, "{body}");
    let spans = &body["batches"][0]["scopeSpans"][0]["spans"];
    assert_eq!(spans.as_array().unwrap().len(), 1, "{body}");
    assert_eq!(spans[0]["name"], "good");

    // OTLP/JSON: a 15-byte trace id first, the good span second.
    let good = next_trace_id();
    let json = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[
            {{"traceId":"{bad}","spanId":"0101010101010101","name":"bad"}},
            {{"traceId":"{good}","spanId":"0202020202020202","name":"good-json"}}]}}]}}]}}"#,
        bad = "ab".repeat(15),
        good = hex(&good)
    );
    let a = post(&s, &[JSON], json.into_bytes(), false);
    assert_eq!(a.status, 200, "{}", a.text());
    let v = a.json();
    assert_eq!(v["partialSuccess"]["rejectedSpans"], "1", "{v}");
    let msg = v["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        msg.contains("spans[0]: trace id must be 16 bytes, got 15"),
        "{msg}"
    );
    let (code, body) = s.get_json(&format!("/api/traces/{}", hex(&good)), None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["batches"][0]["scopeSpans"][0]["spans"][0]["name"],
        "good-json"
    );
    assert_serves(&s);
}

#[test]
fn corrupt_gzip_is_400_and_a_gzip_bomb_is_413() {
    let (_d, s) = start_limited();
    let body = request(vec![span(next_trace_id(), 1, "gz")]).encode_to_vec();
    // Not gzip at all, and a gzip stream cut short.
    let mut cut = gzip(&body);
    cut.truncate(cut.len() - 10);
    for bad in [b"definitely not gzip".to_vec(), cut] {
        let a = post(&s, &[PROTOBUF, GZIP], bad, false);
        assert_eq!(a.status, 400, "{}", a.text());
        let st = a.rpc();
        assert_eq!(st.code, 3);
        assert!(st.message.contains("invalid gzip body"), "{}", st.message);
        assert_serves(&s);
    }
    // 10 MiB of zeros compress to a few KiB: under the limit on the wire, over it decompressed.
    let bomb = gzip(&vec![0u8; 10 * MIB]);
    assert!(bomb.len() < MIB / 10);
    for chunked in [false, true] {
        let a = post(&s, &[PROTOBUF, GZIP], bomb.clone(), chunked);
        assert_eq!(a.status, 413, "{}", a.text());
        assert_eq!(
            a.rpc().message,
            "decompressed body exceeds the limit of 1048576 bytes"
        );
        assert_serves(&s);
    }
    // The same in JSON answers in JSON.
    let a = post(&s, &[JSON, GZIP], bomb, false);
    assert_eq!(a.status, 413);
    assert_eq!(
        a.json()["message"],
        "decompressed body exceeds the limit of 1048576 bytes"
    );
    // A valid gzip body is of course fine.
    let id = next_trace_id();
    let a = post(
        &s,
        &[PROTOBUF, GZIP],
        gzip(&request(vec![span(id.clone(), 1, "gz-ok")]).encode_to_vec()),
        false,
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(
        s.get_json(&format!("/api/traces/{}", hex(&id)), None).0,
        200
    );
}

#[test]
fn bad_tenant_header_is_400() {
    let (_d, s) = start_limited();
    let body = request(vec![span(next_trace_id(), 1, "t")]).encode_to_vec();
    let a = post(
        &s,
        &[PROTOBUF, ("X-Scope-OrgID", "a/b")],
        body.clone(),
        false,
    );
    assert_eq!(a.status, 400, "{}", a.text());
    let st = a.rpc();
    assert_eq!(st.code, 3);
    assert!(
        st.message.contains("X-Scope-OrgID") && st.message.contains("'/'"),
        "{}",
        st.message
    );
    let a = post(&s, &[JSON, ("X-Scope-OrgID", "..")], b"{}".to_vec(), false);
    assert_eq!(a.status, 400, "{}", a.text());
    assert!(a.json()["message"]
        .as_str()
        .unwrap()
        .contains("may not be \"..\""));
    // The read APIs refuse it too.
    let (code, _) = s.get_json("/api/traces/0123456789abcdef0123456789abcdef", Some("a/b"));
    assert_eq!(code, 400);
    assert_serves(&s);
}
