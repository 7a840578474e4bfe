//! Logs sent with the OpenTelemetry Python SDK over OTLP/HTTP are queryable with LogQL the way
//! Loki's OTLP endpoint maps them: the default resource attributes (service.name,
//! service.namespace, deployment.environment) become the stream labels, every other attribute,
//! the scope, the trace and span ids and the severity become structured metadata (dots made
//! underscores). Structured metadata is filtered with label filters (`| trace_id="..."`), JSON
//! bodies with `| json`, and grouped in metric queries.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::loki::{
    get, labels, lines_of, query_range, sorted_streams, streams_of, to_json, vector_of, Stream,
};
use common::{eventually, now_ns, run_sdk_script, Seam};
use serde_json::{json, Value};

/// Resource attributes that are stream labels in Loki's default OTLP configuration
/// (`default_resource_attributes_as_index_labels` in Loki's docs).
const STREAM_ATTRIBUTES: [&str; 18] = [
    "cloud.availability_zone",
    "cloud.region",
    "container.name",
    "deployment.environment",
    "deployment.environment.name",
    "k8s.cluster.name",
    "k8s.container.name",
    "k8s.cronjob.name",
    "k8s.daemonset.name",
    "k8s.deployment.name",
    "k8s.job.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.replicaset.name",
    "k8s.statefulset.name",
    "service.instance.id",
    "service.name",
    "service.namespace",
];

/// Loki's label name for an attribute key.
fn label_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What the SDK sent, from its report, as Loki maps it.
struct Sent {
    report: Value,
    stream: BTreeMap<String, String>,
    /// Per record, in time order: (ts, line, structured metadata).
    records: Vec<(i64, Value, BTreeMap<String, String>)>,
}

impl Sent {
    fn from_report(report: Value) -> Sent {
        let mut stream = BTreeMap::new();
        let mut resource_md = BTreeMap::new();
        for (k, v) in report["resource"].as_object().unwrap() {
            if STREAM_ATTRIBUTES.contains(&k.as_str()) {
                stream.insert(label_name(k), text(v));
            } else {
                resource_md.insert(label_name(k), text(v));
            }
        }
        let records = report["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut md = resource_md.clone();
                md.insert("scope_name".into(), text(&report["scope"]["name"]));
                md.insert("scope_version".into(), text(&report["scope"]["version"]));
                for (k, v) in r["attributes"].as_object().unwrap() {
                    md.insert(label_name(k), text(v));
                }
                md.insert("severity_text".into(), text(&r["severity_text"]));
                md.insert("severity_number".into(), text(&r["severity_number"]));
                if let Some(t) = r.get("trace_id") {
                    md.insert("trace_id".into(), text(t));
                    md.insert("span_id".into(), text(&r["span_id"]));
                    if r["flags"].as_i64().unwrap() != 0 {
                        md.insert("flags".into(), text(&r["flags"]));
                    }
                }
                (r["timestamp_ns"].as_i64().unwrap(), r["body"].clone(), md)
            })
            .collect();
        Sent {
            report,
            stream,
            records,
        }
    }

    fn service(&self) -> String {
        text(&self.report["service"])
    }

    fn selector(&self) -> String {
        format!("{{service_name=\"{}\"}}", self.service())
    }
}

/// A body as Loki writes it into the line: strings as they are, maps as JSON (checked by value).
fn line_matches(line: &str, body: &Value) -> bool {
    match body {
        Value::String(s) => line == s,
        other => serde_json::from_str::<Value>(line).ok().as_ref() == Some(other),
    }
}

struct Run {
    _dir: tempfile::TempDir,
    s: Seam,
    sent: Sent,
    start: i64,
    end: i64,
}

fn run() -> Run {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::start(dir.path(), &[]);
    let run_id = format!("{}-{}", std::process::id(), now_ns());
    let report = run_sdk_script(
        &s,
        "emit_otel_logs.py",
        &["--endpoint", &s.otlp_http, "--run-id", &run_id],
    );
    let sent = Sent::from_report(report);
    let t0 = sent.records[0].0;
    let (start, end) = (t0 - 60_000_000_000, now_ns() as i64 + 60_000_000_000);
    // The export was acknowledged; wait until the records are readable.
    let n = sent.records.len();
    let sel = sent.selector();
    eventually(Duration::from_secs(20), || {
        let body = query_range(&s, &sel, start, end, "forward", &[]);
        let count: usize = streams_of(&body).iter().map(|s| s.entries.len()).sum();
        (count >= n).then_some(())
    })
    .unwrap_or_else(|| panic!("the SDK's {n} records never became readable"));
    Run {
        _dir: dir,
        s,
        sent,
        start,
        end,
    }
}

impl Run {
    fn streams(&self, query: &str, headers: &[(&str, &str)]) -> Vec<Stream> {
        sorted_streams(&query_range(
            &self.s, query, self.start, self.end, "forward", headers,
        ))
    }

    /// Indexes (into the sent records) of the entries `query` returns, in time order.
    fn records_of(&self, query: &str) -> Vec<usize> {
        lines_of(&self.streams(query, &[]))
            .iter()
            .map(|(ts, line)| {
                self.sent
                    .records
                    .iter()
                    .position(|(t, body, _)| t == ts && line_matches(line, body))
                    .unwrap_or_else(|| panic!("{query}: unexpected entry {ts} {line}"))
            })
            .collect()
    }

    /// The query with a pipeline after the service's selector.
    fn q(&self, pipeline: &str) -> String {
        format!("{} {pipeline}", self.sent.selector())
    }

    /// An instant query at the end of the run's window: (metric, value) per sample, by metric.
    fn instant(&self, query: &str) -> Vec<(BTreeMap<String, String>, String)> {
        let time = self.end.to_string();
        let (code, body) = get(
            &self.s,
            "/loki/api/v1/query",
            &[("query", query), ("time", &time)],
            &[],
        );
        assert_eq!(code, 200, "{body}");
        vector_of(&body)
            .into_iter()
            .map(|(m, (_, v))| (m, v))
            .collect()
    }
}

#[test]
fn stream_labels_and_structured_metadata_as_loki_maps_them() {
    let r = run();
    let sent = &r.sent;
    // Without categorize-labels, Loki answers structured metadata merged into the stream labels:
    // one result stream per distinct set.
    let got = r.streams(&sent.selector(), &[]);
    let mut want: BTreeMap<BTreeMap<String, String>, Vec<(i64, Value)>> = BTreeMap::new();
    for (ts, body, md) in &sent.records {
        let mut l = sent.stream.clone();
        l.extend(md.clone());
        want.entry(l).or_default().push((*ts, body.clone()));
    }
    assert_eq!(
        got.iter().map(|s| s.labels.clone()).collect::<Vec<_>>(),
        want.keys().cloned().collect::<Vec<_>>(),
        "merged labels of every record"
    );
    for (s, (_, entries)) in got.iter().zip(&want) {
        assert_eq!(s.entries.len(), entries.len());
        for ((ts, line, _), (wts, body)) in s.entries.iter().zip(entries) {
            assert_eq!(ts, wts, "the record's own time");
            assert!(line_matches(line, body), "{line} is not {body}");
        }
    }
    for (k, v) in [
        ("service_name", sent.service()),
        ("service_namespace", "checkout".into()),
        ("deployment_environment", "e2e".into()),
    ] {
        assert_eq!(sent.stream.get(k), Some(&v), "{:?}", sent.stream);
    }

    // The stream labels alone are the labels of the index.
    let (start, end) = (r.start.to_string(), r.end.to_string());
    let sel = sent.selector();
    let (code, body) = get(
        &r.s,
        "/loki/api/v1/labels",
        &[("start", &start), ("end", &end), ("query", &sel)],
        &[],
    );
    assert_eq!(code, 200, "{body}");
    let names: Vec<&String> = sent.stream.keys().collect();
    assert_eq!(body, json!({"status": "success", "data": names}));
    let (code, body) = get(
        &r.s,
        "/loki/api/v1/series",
        &[("start", &start), ("end", &end), ("match[]", &sel)],
        &[],
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        json!({"status": "success", "data": [to_json(&sent.stream)]})
    );
    assert_eq!(
        r.records_of("{service_namespace=\"checkout\", deployment_environment=\"e2e\"}"),
        vec![0, 1, 2, 3]
    );
    assert_eq!(
        r.records_of("{host_name=\"node-7\"}"),
        Vec::<usize>::new(),
        "structured metadata is no stream label"
    );

    // categorize-labels: stream labels apart, structured metadata in each entry's third element.
    let got = r.streams(
        &sent.selector(),
        &[("X-Loki-Response-Encoding-Flags", "categorize-labels")],
    );
    assert_eq!(got.len(), 1, "one stream: {got:?}");
    assert_eq!(got[0].labels, sent.stream);
    assert_eq!(got[0].entries.len(), sent.records.len());
    for ((ts, line, third), (wts, body, md)) in got[0].entries.iter().zip(&sent.records) {
        assert_eq!(ts, wts);
        assert!(line_matches(line, body), "{line} is not {body}");
        assert_eq!(
            third.as_ref(),
            Some(&json!({ "structuredMetadata": to_json(md) })),
            "{line}"
        );
    }
}

#[test]
fn label_filters_on_structured_metadata() {
    let r = run();
    let first = &r.sent.records[0].2;
    let (trace_id, span_id) = (&first["trace_id"], &first["span_id"]);
    assert_eq!(trace_id.len(), 32);
    assert_eq!(
        r.records_of(&r.q(&format!("| trace_id=\"{trace_id}\""))),
        vec![0],
        "the record logged inside the span"
    );
    assert_eq!(
        r.records_of(&r.q(&format!("| span_id=\"{span_id}\""))),
        vec![0]
    );
    assert_eq!(r.records_of(&r.q("| trace_id=\"\"")), vec![1, 2, 3]);
    assert_eq!(r.records_of(&r.q("| severity_text=\"INFO\"")), vec![1, 2]);
    assert_eq!(
        r.records_of(&r.q("| severity_text=~\"WARN|ERROR\"")),
        vec![0, 3]
    );
    assert_eq!(r.records_of(&r.q("| severity_number >= 13")), vec![0, 3]);
    assert_eq!(r.records_of(&r.q("| order_id=\"42\"")), vec![0]);
    assert_eq!(
        r.records_of(&r.q("| host_name=\"node-7\" | scope_name=\"shop.logger\"")),
        vec![0, 1, 2, 3],
        "resource and scope metadata"
    );
    assert_eq!(
        r.records_of(&r.q("|= \"placed\" | severity_text!=\"WARN\"")),
        Vec::<usize>::new()
    );
}

#[test]
fn json_parser_over_json_bodies() {
    let r = run();
    assert_eq!(
        r.records_of(&r.q("| json | user_id=\"42\"")),
        vec![1, 3],
        "a JSON string body and a map body"
    );
    assert_eq!(r.records_of(&r.q("| json | action=\"login\"")), vec![1]);
    assert_eq!(r.records_of(&r.q("| json | latency_ms > 10")), vec![1]);
    assert_eq!(r.records_of(&r.q("| json | __error__=\"\"")), vec![1, 2, 3]);
    assert_eq!(
        r.records_of(&r.q("| json | __error__=\"JSONParserErr\"")),
        vec![0],
        "the plain-text body"
    );

    // Extracted labels join the answer's labels (parsed, apart, with categorize-labels).
    let sent = &r.sent;
    let md = &sent.records[2].2;
    let parsed = labels(&[("user_id", "7"), ("action", "logout"), ("latency_ms", "3")]);
    let got = r.streams(&r.q("| json | action=\"logout\""), &[]);
    let mut want = sent.stream.clone();
    want.extend(md.clone());
    want.extend(parsed.clone());
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].labels, want);
    let got = r.streams(
        &r.q("| json | action=\"logout\""),
        &[("X-Loki-Response-Encoding-Flags", "categorize-labels")],
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].labels, sent.stream);
    assert_eq!(
        got[0].entries[0].2,
        Some(json!({"structuredMetadata": to_json(md), "parsed": to_json(&parsed)}))
    );
}

#[test]
fn metric_queries_group_by_structured_metadata() {
    let r = run();
    let q = format!(
        "sum by (severity_text) (count_over_time({}[10m]))",
        r.sent.selector()
    );
    assert_eq!(
        r.instant(&q),
        vec![
            (labels(&[("severity_text", "ERROR")]), "1".to_string()),
            (labels(&[("severity_text", "INFO")]), "2".to_string()),
            (labels(&[("severity_text", "WARN")]), "1".to_string()),
        ]
    );
    let q = format!(
        "sum by (user_id) (count_over_time({} | json | __error__=\"\" [10m]))",
        r.sent.selector()
    );
    assert_eq!(
        r.instant(&q),
        vec![
            (labels(&[("user_id", "42")]), "2".to_string()),
            (labels(&[("user_id", "7")]), "1".to_string()),
        ]
    );
}
