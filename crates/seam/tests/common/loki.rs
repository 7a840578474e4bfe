//! Loki helpers: pushes and LogQL reads over Loki's HTTP API, the real log shippers the tests run
//! (winston-loki under Node.js, python-logging-loki and the OpenTelemetry SDK in the venv), a
//! decoder of Loki's push protobuf and label text (to derive expectations from captured bodies
//! without Seam's own code), and checks of Loki's documented response shapes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Map, Value};

use super::{client, script_report, Seam};

/// Seam accepting entries up to ten years old (captured fixtures carry their capture time).
pub fn start_accepting_old(dir: &Path) -> Seam {
    Seam::with_config(dir, "loki:\n  reject_old_samples_max_age: 87600h\n", &[])
}

/// `POST /loki/api/v1/push` with these headers (e.g. the captured ones) and body: (status, text).
pub fn push_raw(s: &Seam, headers: &[(String, String)], body: Vec<u8>) -> (u16, String) {
    let mut req = client()
        .post(format!("{}/loki/api/v1/push", s.api))
        .body(body);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let r = req.send().expect("push");
    let code = r.status().as_u16();
    (code, r.text().unwrap_or_default())
}

/// `POST /loki/api/v1/push` of a JSON body `{"streams": streams}` as `tenant` (default when None);
/// it must answer 204.
pub fn push_json(s: &Seam, tenant: Option<&str>, streams: Value) {
    let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    if let Some(t) = tenant {
        headers.push(("X-Scope-OrgID".to_string(), t.to_string()));
    }
    let body = json!({ "streams": streams }).to_string().into_bytes();
    let (code, text) = push_raw(s, &headers, body);
    assert_eq!(code, 204, "push: {text}");
}

/// A GET on Seam's API with query parameters and headers: (status, JSON body or the text as a
/// JSON string).
pub fn get(
    s: &Seam,
    path: &str,
    params: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = client().get(format!("{}{}", s.api, path)).query(params);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let code = r.status().as_u16();
    let text = r.text().unwrap_or_default();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A label set.
pub type LabelMap = BTreeMap<String, String>;

/// A stream entry as answered: (ts ns, line, third element if any).
pub type Entry = (i64, String, Option<Value>);

/// A series of a matrix answer: its metric and its (seconds, value) samples.
pub type Series = (LabelMap, Vec<(f64, String)>);

/// One stream of a `streams` result: its labels and its entries.
#[derive(Clone, PartialEq)]
pub struct Stream {
    pub labels: LabelMap,
    pub entries: Vec<Entry>,
}

/// Lines past 200 bytes are shown cut, with their length.
impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries: Vec<String> = self
            .entries
            .iter()
            .map(|(ts, line, third)| {
                let shown = if line.len() > 200 {
                    let cut = (0..=200).rev().find(|i| line.is_char_boundary(*i)).unwrap();
                    format!("{:?}... ({} bytes)", &line[..cut], line.len())
                } else {
                    format!("{line:?}")
                };
                match third {
                    Some(t) => format!("({ts}, {shown}, {t})"),
                    None => format!("({ts}, {shown})"),
                }
            })
            .collect();
        write!(
            f,
            "Stream {{ labels: {:?}, entries: [{}] }}",
            self.labels,
            entries.join(", ")
        )
    }
}

/// A label object as a map, every value a string.
pub fn label_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .unwrap_or_else(|| panic!("a label object, got {v}"))
        .iter()
        .map(|(k, v)| {
            let v = v
                .as_str()
                .unwrap_or_else(|| panic!("label {k} must be a string, got {v}"));
            (k.clone(), v.to_string())
        })
        .collect()
}

/// Labels from `(name, value)` pairs.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The streams of a Loki `streams` answer, checked against Loki's documented shape on the way:
/// `status` "success", `data.resultType` "streams", each result `{stream: {name: string},
/// values: [[ns string, line string(, object)]]}`.
pub fn streams_of(body: &Value) -> Vec<Stream> {
    assert_eq!(body["status"], "success", "{body}");
    assert_eq!(body["data"]["resultType"], "streams", "{body}");
    body["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("data.result must be an array: {body}"))
        .iter()
        .map(|s| {
            let obj = s.as_object().unwrap();
            assert!(
                obj.keys().all(|k| k == "stream" || k == "values"),
                "a stream result has exactly stream and values: {s}"
            );
            let entries = s["values"]
                .as_array()
                .unwrap_or_else(|| panic!("values must be an array: {s}"))
                .iter()
                .map(|v| {
                    let a = v.as_array().unwrap();
                    assert!(
                        a.len() == 2 || a.len() == 3,
                        "entry of 2 or 3 elements: {v}"
                    );
                    let ts = a[0]
                        .as_str()
                        .unwrap_or_else(|| panic!("timestamps are ns strings: {v}"));
                    let ts: i64 = ts.parse().unwrap_or_else(|_| panic!("ns timestamp {ts:?}"));
                    let line = a[1]
                        .as_str()
                        .unwrap_or_else(|| panic!("lines are strings: {v}"));
                    (ts, line.to_string(), a.get(2).cloned())
                })
                .collect();
            Stream {
                labels: label_map(&s["stream"]),
                entries,
            }
        })
        .collect()
}

/// `query_range` over `[start, end]` (ns) with `limit` 5000 and `direction`, plus `extra` params
/// and headers; the answer must be 200.
pub fn query_range(
    s: &Seam,
    query: &str,
    start: i64,
    end: i64,
    direction: &str,
    headers: &[(&str, &str)],
) -> Value {
    let (start, end) = (start.to_string(), end.to_string());
    let (code, body) = get(
        s,
        "/loki/api/v1/query_range",
        &[
            ("query", query),
            ("start", &start),
            ("end", &end),
            ("limit", "5000"),
            ("direction", direction),
        ],
        headers,
    );
    assert_eq!(code, 200, "query_range {query}: {body}");
    body
}

/// The streams of a `streams` answer ([`streams_of`]), sorted by labels.
pub fn sorted_streams(body: &Value) -> Vec<Stream> {
    let mut v = streams_of(body);
    v.sort_by(|a, b| a.labels.cmp(&b.labels));
    v
}

/// Every (ts, line) of `streams`, in time order.
pub fn lines_of(streams: &[Stream]) -> Vec<(i64, String)> {
    let mut v: Vec<(i64, String)> = streams
        .iter()
        .flat_map(|s| s.entries.iter().map(|(ts, l, _)| (*ts, l.clone())))
        .collect();
    v.sort();
    v
}

/// The streams `query` selects over `[start, end]`, forward, sorted by labels.
pub fn read_streams(s: &Seam, query: &str, start: i64, end: i64) -> Vec<Stream> {
    sorted_streams(&query_range(s, query, start, end, "forward", &[]))
}

/// Every (ts, line) `query` selects over `[start, end]`, over all streams, in time order.
pub fn read_lines(s: &Seam, query: &str, start: i64, end: i64) -> Vec<(i64, String)> {
    lines_of(&read_streams(s, query, start, end))
}

/// Loki's `stats` object of a query answer: `summary` carries the documented numeric keys.
pub fn assert_stats(body: &Value) {
    let summary = &body["data"]["stats"]["summary"];
    for k in [
        "bytesProcessedPerSecond",
        "linesProcessedPerSecond",
        "totalBytesProcessed",
        "totalLinesProcessed",
        "execTime",
        "queueTime",
    ] {
        assert!(
            summary[k].is_number(),
            "data.stats.summary.{k} must be a number: {body}"
        );
    }
}

/// The series of a `matrix` answer, checked against Loki's shape: each `{metric: {name: string},
/// values: [[seconds number, value string]]}`; returned as (metric, [(seconds, value)]), sorted.
pub fn matrix_of(body: &Value) -> Vec<Series> {
    assert_eq!(body["status"], "success", "{body}");
    assert_eq!(body["data"]["resultType"], "matrix", "{body}");
    let mut out: Vec<_> = body["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("data.result must be an array: {body}"))
        .iter()
        .map(|s| {
            let values = s["values"]
                .as_array()
                .unwrap_or_else(|| panic!("values must be an array: {s}"))
                .iter()
                .map(sample)
                .collect();
            (label_map(&s["metric"]), values)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The samples of a `vector` answer, checked against Loki's shape: each `{metric: {...}, value:
/// [seconds number, value string]}`; sorted by metric.
pub fn vector_of(body: &Value) -> Vec<(BTreeMap<String, String>, (f64, String))> {
    assert_eq!(body["status"], "success", "{body}");
    assert_eq!(body["data"]["resultType"], "vector", "{body}");
    let mut out: Vec<_> = body["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("data.result must be an array: {body}"))
        .iter()
        .map(|s| (label_map(&s["metric"]), sample(&s["value"])))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// `[<number: seconds>, <string: value>]`.
fn sample(p: &Value) -> (f64, String) {
    let a = p
        .as_array()
        .unwrap_or_else(|| panic!("a [time, value] pair: {p}"));
    assert_eq!(a.len(), 2, "a [time, value] pair: {p}");
    let t = a[0]
        .as_f64()
        .unwrap_or_else(|| panic!("sample times are JSON numbers (seconds): {p}"));
    let v = a[1]
        .as_str()
        .unwrap_or_else(|| panic!("sample values are strings: {p}"));
    (t, v.to_string())
}

// --- Real clients ---------------------------------------------------------------------------

/// `node_modules` with winston and winston-loki (`./scripts/test` installs it under `target/`).
pub fn node_modules() -> PathBuf {
    let p = std::env::var_os("SEAM_TEST_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/node/node_modules")
        });
    assert!(
        p.join("winston-loki").exists(),
        "winston-loki is missing from {}: run ./scripts/test, which installs tests/node/package-lock.json there",
        p.display()
    );
    p
}

/// Runs `tests/node/<script>` with `arg` under Node.js and returns the JSON line it printed last.
pub fn run_node(script: &str, arg: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/node")
        .join(script);
    let out = Command::new("node")
        .arg(&path)
        .arg(arg)
        .env("NODE_PATH", node_modules())
        .output()
        .unwrap_or_else(|e| panic!("run node {}: {e} (is Node.js installed?)", path.display()));
    script_report(script, out)
}

// --- Loki's push protobuf and label text, decoded independently of Seam ------------------------

/// `logproto.PushRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<PushStream>,
}

/// `logproto.StreamAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushStream {
    #[prost(string, tag = "1")]
    pub labels: String,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<PushEntry>,
}

/// `logproto.EntryAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushEntry {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<ProtoTimestamp>,
    #[prost(string, tag = "2")]
    pub line: String,
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPair>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoTimestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `logproto.LabelPairAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPair {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// One pushed entry: its stream labels, time, line and structured metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Pushed {
    pub labels: BTreeMap<String, String>,
    pub ts: i64,
    pub line: String,
    pub metadata: BTreeMap<String, String>,
}

/// The entries of a push body as Loki reads it: protobuf (snappy block-compressed) or JSON.
pub fn decode_push(content_type: &str, body: &[u8]) -> Vec<Pushed> {
    let mut out = Vec::new();
    if content_type.starts_with("application/x-protobuf") {
        use prost::Message;
        let raw = snap::raw::Decoder::new()
            .decompress_vec(body)
            .expect("a snappy block");
        let req = PushRequest::decode(raw.as_slice()).expect("a logproto.PushRequest");
        for s in req.streams {
            let labels = parse_label_text(&s.labels);
            for e in s.entries {
                let t = e.timestamp.unwrap_or_default();
                out.push(Pushed {
                    labels: labels.clone(),
                    ts: t.seconds * 1_000_000_000 + t.nanos as i64,
                    line: e.line,
                    metadata: e
                        .structured_metadata
                        .into_iter()
                        .map(|l| (l.name, l.value))
                        .collect(),
                });
            }
        }
    } else {
        let v: Value = serde_json::from_slice(body).expect("a JSON push body");
        for s in v["streams"].as_array().expect("streams") {
            let labels = label_map(&s["stream"]);
            for e in s["values"].as_array().expect("values") {
                let metadata = e
                    .get(2)
                    .map(|m| {
                        m.as_object()
                            .unwrap()
                            .iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Pushed {
                    labels: labels.clone(),
                    ts: e[0].as_str().unwrap().parse().unwrap(),
                    line: e[1].as_str().unwrap().to_string(),
                    metadata,
                });
            }
        }
    }
    out
}

/// Prometheus label text `{a="x", b="y\"z"}` as a map.
pub fn parse_label_text(text: &str) -> BTreeMap<String, String> {
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or_else(|| panic!("label text in braces: {text:?}"));
    let mut out = BTreeMap::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return out;
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        assert_eq!(chars.next(), Some('='), "{text:?}");
        assert_eq!(chars.next(), Some('"'), "{text:?}");
        let mut value = String::new();
        loop {
            match chars
                .next()
                .unwrap_or_else(|| panic!("unterminated value: {text:?}"))
            {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => panic!("{text:?}"),
                },
                c => value.push(c),
            }
        }
        out.insert(name.trim().to_string(), value);
    }
}

/// Structured metadata as Loki's query pipeline names it: a name that is also a stream label gets
/// the suffix `_extracted` (its `LabelsBuilder` does so for every label it adds, parsed or
/// metadata), so `level` next to a `level` stream label comes back as `level_extracted`.
pub fn answered_metadata(
    labels: &BTreeMap<String, String>,
    metadata: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    metadata
        .iter()
        .map(|(k, v)| {
            let k = if labels.contains_key(k) {
                format!("{k}_extracted")
            } else {
                k.clone()
            };
            (k, v.clone())
        })
        .collect()
}

/// Stream labels and structured metadata merged, as Loki answers without `categorize-labels`.
pub fn merged(
    labels: &BTreeMap<String, String>,
    metadata: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut m = labels.clone();
    m.extend(answered_metadata(labels, metadata));
    m
}

/// A label map as a JSON object.
pub fn to_json(m: &BTreeMap<String, String>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}
