//! Every captured OTLP request in `tests/fixtures/otlp/` (Python SDK over HTTP, gzip and gRPC,
//! Flask auto-instrumentation, rotel, the OpenTelemetry Collector, the Node SDK's OTLP/JSON, and
//! the opentelemetry-proto examples) is accepted, answered in its own content type, and its spans,
//! log lines and metric samples are found through the read APIs.
//!
//! Each fixture is written under its own tenant, so what a check finds came from that file alone.

mod common;

use std::collections::BTreeSet;

use common::codec::{b64, enc, unhex};
use common::read::loki_streams;
use common::{client, fixture, otlp, Seam};
use prost::Message;
use seam_model::otlp::collector::logs::v1::ExportLogsServiceResponse;
use seam_model::otlp::collector::metrics::v1::ExportMetricsServiceResponse;
use seam_model::otlp::collector::trace::v1::ExportTraceServiceResponse;
use serde_json::{json, Value};

/// What a fixture holds, as the check needs it.
enum Expect {
    /// A trace id (hex) and its spans as (span id hex, name).
    Spans(&'static str, &'static [(&'static str, &'static str)]),
    /// A `service_name`, a time inside the records (ns), and the exact lines in time order.
    Lines(&'static str, i64, &'static [&'static str]),
    /// A Prometheus selector, the evaluation time (s), and the expected value per `__name__`.
    Samples(
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
    ),
}

use Expect::{Lines, Samples, Spans};

/// Sends one fixture under its own tenant and checks the answer; returns the tenant.
fn ingest(s: &Seam, file: &str) -> String {
    let body = fixture(&format!("otlp/{file}"));
    let signal = ["traces", "logs", "metrics"]
        .into_iter()
        .find(|sig| file.contains(sig))
        .unwrap_or_else(|| {
            if file == "trace.json" {
                "traces"
            } else {
                "logs"
            }
        });
    let tenant = format!("fx-{}", file.replace('.', "_"));
    let json = file.ends_with(".json");
    let content_type = if json {
        "application/json"
    } else {
        "application/x-protobuf"
    };
    let mut req = client()
        .post(format!("{}/v1/{signal}", s.otlp_http))
        .header("Content-Type", content_type)
        .header("X-Scope-OrgID", &tenant);
    if body.starts_with(&[0x1f, 0x8b]) {
        req = req.header("Content-Encoding", "gzip");
    }
    // The Node exporter streams its body with chunked transfer encoding.
    let resp = req
        .body(otlp::body(body, file.starts_with("node_")))
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = resp.bytes().unwrap();
    assert_eq!(status, 200, "{file}: {}", String::from_utf8_lossy(&bytes));
    assert_eq!(
        ct.as_deref(),
        Some(content_type),
        "{file}: answered in the request's content type"
    );
    // Nothing is rejected, except the exponential histogram of the proto example.
    let (rejected, message) = if json {
        let v: Value = serde_json::from_slice(&bytes).expect("a JSON response");
        let ps = &v["partialSuccess"];
        let n = ["rejectedSpans", "rejectedLogRecords", "rejectedDataPoints"]
            .iter()
            .find_map(|k| ps[k].as_str())
            .map_or(0, |n| n.parse().unwrap());
        (
            n,
            ps["errorMessage"].as_str().unwrap_or_default().to_string(),
        )
    } else {
        let ps = match signal {
            "traces" => ExportTraceServiceResponse::decode(bytes)
                .unwrap()
                .partial_success
                .map(|p| (p.rejected_spans, p.error_message)),
            "logs" => ExportLogsServiceResponse::decode(bytes)
                .unwrap()
                .partial_success
                .map(|p| (p.rejected_log_records, p.error_message)),
            _ => ExportMetricsServiceResponse::decode(bytes)
                .unwrap()
                .partial_success
                .map(|p| (p.rejected_data_points, p.error_message)),
        };
        ps.unwrap_or_default()
    };
    if file == "metrics.json" {
        assert_eq!(rejected, 1, "{file}: {message}");
        assert!(
            message
                .contains("\"my.exponential.histogram\": exponential histograms are not supported"),
            "{message}"
        );
    } else {
        assert_eq!((rejected, message.as_str()), (0, ""), "{file}");
    }
    tenant
}

/// Standard base64 of a hex id, as Tempo writes ids.
fn b64_of_hex(hex: &str) -> String {
    b64(&unhex(hex))
}

/// Reads back what `expect` names, under `tenant`.
fn check(s: &Seam, file: &str, tenant: &str, expect: &Expect) {
    let t = Some(tenant);
    match expect {
        Spans(trace_id, spans) => {
            let want: BTreeSet<(String, String)> = spans
                .iter()
                .map(|(id, name)| (b64_of_hex(id), name.to_string()))
                .collect();
            let found = |path: &str| -> BTreeSet<(String, String)> {
                let (code, body) = s.get_json(path, t);
                assert_eq!(code, 200, "{file}: {path}: {body}");
                let batches = if path.contains("/v2/") {
                    &body["trace"]["resourceSpans"]
                } else {
                    &body["batches"]
                };
                let mut out = BTreeSet::new();
                for rs in batches.as_array().unwrap() {
                    for ss in rs["scopeSpans"].as_array().unwrap() {
                        for sp in ss["spans"].as_array().unwrap() {
                            assert_eq!(
                                sp["traceId"],
                                b64_of_hex(&trace_id.to_lowercase()),
                                "{file}"
                            );
                            out.insert((
                                sp["spanId"].as_str().unwrap().into(),
                                sp["name"].as_str().unwrap().into(),
                            ));
                        }
                    }
                }
                out
            };
            assert_eq!(found(&format!("/api/traces/{trace_id}")), want, "{file}");
            assert_eq!(
                found(&format!("/api/v2/traces/{}", trace_id.to_lowercase())),
                want,
                "{file}"
            );
        }
        Lines(service, at_ns, lines) => {
            let q = enc(&format!("{{service_name=\"{service}\"}}"));
            let (start, end) = (at_ns - 60_000_000_000, at_ns + 60_000_000_000);
            let path = format!(
                "/loki/api/v1/query_range?query={q}&start={start}&end={end}&direction=forward"
            );
            let (code, body) = s.get_json(&path, t);
            assert_eq!(code, 200, "{file}: {body}");
            let mut got: Vec<(i64, String)> = Vec::new();
            for (labels, values) in loki_streams(&body) {
                assert_eq!(labels["service_name"], *service, "{file}");
                got.extend(values);
            }
            got.sort();
            let got: Vec<&str> = got.iter().map(|(_, l)| l.as_str()).collect();
            assert_eq!(&got, lines, "{file}");
            let path = format!("/loki/api/v1/label/service_name/values?start={start}&end={end}");
            assert_eq!(s.get_json(&path, t).1["data"], json!([service]), "{file}");
        }
        Samples(selector, time, values) => {
            let path = format!("/api/v1/series?match[]={}", enc(selector));
            let (code, body) = s.get_json(&path, t);
            assert_eq!(code, 200, "{file}: {body}");
            let names: BTreeSet<&str> = body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["__name__"].as_str().unwrap())
                .collect();
            for (name, want) in values.iter() {
                let base = name.split('{').next().unwrap();
                assert!(names.contains(base), "{file}: {base} not among {names:?}");
                let q = format!("{name}{selector}").replace("}{", ",");
                let path = format!("/api/v1/query?query={}&time={time}", enc(&q));
                let (code, body) = s.get_json(&path, t);
                assert_eq!(code, 200, "{file}: {q}: {body}");
                let result = body["data"]["result"].as_array().unwrap();
                assert_eq!(result.len(), 1, "{file}: {q}: {body}");
                assert_eq!(result[0]["value"][1], *want, "{file}: {q}");
            }
        }
    }
}

/// Sends each fixture to a fresh Seam and checks everything it names.
fn run(cases: &[(&str, Expect)]) {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::start(dir.path(), &[]);
    let tenants: Vec<String> = cases.iter().map(|(file, _)| ingest(&s, file)).collect();
    for ((file, expect), tenant) in cases.iter().zip(&tenants) {
        check(&s, file, tenant, expect);
    }
}

/// The Python SDK's demo data: one trace, one log line inside it, and three metrics.
const PEER_CHECK_LINE: &[&str] = &["checkout done for user 42"];

#[test]
fn python_sdk_protobuf_http_gzip_and_grpc() {
    // (trace id, db.query span, GET /checkout span, log time, instance, metrics time x2)
    let runs: [(&str, &str, &str, &str, i64, &str, &str, &str); 3] = [
        (
            "http",
            "1dfc54454006e2421d23ad51268b65c6",
            "c1f4294647843fe5",
            "b85f2ad63f862bc3",
            1795334888550946304,
            "7dcc83ae-59c6-4c09-88dd-88ced273a9af",
            "1795334888.573",
            "1795334888.578",
        ),
        (
            "gzip_http",
            "c73c4f21d96501f721c230c1e0acc7a2",
            "2d53470df39958e3",
            "ec50fff8d20851c4",
            1795334900502493440,
            "eae79ffb-97ec-40ac-9097-87e82f273c24",
            "1795334900.528",
            "1795334900.533",
        ),
        (
            "grpc",
            "814dc93983735efa7bbc8950c1b0fc6e",
            "fadd61980a2bf292",
            "e7373d4a908da5ee",
            1795334888911397376,
            "bea58602-b1f4-4573-8045-d088be948587",
            "1795334888.938",
            "1795334888.943",
        ),
    ];
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut cases = Vec::new();
    for (p, trace, db, get, log_ns, inst, m0, m1) in runs {
        let spans: &'static [(&str, &str)] =
            Box::leak(Box::new([(db, "db.query"), (get, "GET /checkout")]));
        cases.push((leak(format!("{p}_traces.bin")), Spans(trace, spans)));
        cases.push((
            leak(format!("{p}_logs.bin")),
            Lines("peer-check", log_ns, PEER_CHECK_LINE),
        ));
        let sel = leak(format!("{{job=\"peer-check\",instance=\"{inst}\"}}"));
        for (suffix, time) in [("", m0), (".1", m1)] {
            cases.push((
                leak(format!("{p}_metrics{suffix}.bin")),
                Samples(sel, time, PEER_CHECK_METRICS),
            ));
        }
    }
    run(&cases);
}

const PEER_CHECK_METRICS: &[(&str, &str)] = &[
    ("requests_total{code=\"200\",route=\"/checkout\"}", "3"),
    ("request_duration_seconds_count", "3"),
    ("request_duration_seconds_sum", "0.325"),
    ("request_duration_seconds_bucket{le=\"0\"}", "0"),
    ("request_duration_seconds_bucket{le=\"5\"}", "3"),
    ("request_duration_seconds_bucket{le=\"+Inf\"}", "3"),
    ("inflight", "2"),
];

#[test]
fn flask_rotel_and_collector() {
    const ROTEL_A: &str = "{job=\"peer-check\",instance=\"9f5f6d75-f66a-41a5-b218-aff87699d524\"}";
    const ROTEL_B: &str = "{job=\"peer-check\",instance=\"e37d4372-8bca-432c-97be-21e93ad99f96\"}";
    run(&[
        (
            "flask_http_traces.bin",
            Spans(
                "08a2b43f3a8b9256668d6276188847f1",
                &[
                    ("7aabffb98b59c9ae", "GET /hello/<name>"),
                    ("08e014704374dac6", "GET"),
                ],
            ),
        ),
        (
            "rotel_http_traces.bin",
            Spans(
                "9ee85d62c3b82e6079924f6063d05c7f",
                &[
                    ("38e675200f7bcfc9", "db.query"),
                    ("157bc1b1ca9fa257", "GET /checkout"),
                ],
            ),
        ),
        (
            "rotel_http_traces.1.bin",
            Spans(
                "7dbf9c2c6839417516b07d3d2c516155",
                &[
                    ("85351bb403599b50", "db.query"),
                    ("620c6692ecb46a08", "GET /checkout"),
                ],
            ),
        ),
        (
            "rotel_http_logs.bin",
            Lines("peer-check", 1795335034050478080, PEER_CHECK_LINE),
        ),
        (
            "rotel_http_logs.1.bin",
            Lines("peer-check", 1795335034368131072, PEER_CHECK_LINE),
        ),
        (
            "rotel_http_metrics.bin",
            Samples(ROTEL_A, "1795335034.071", PEER_CHECK_METRICS),
        ),
        (
            "rotel_http_metrics.1.bin",
            Samples(ROTEL_B, "1795335034.393", PEER_CHECK_METRICS),
        ),
        (
            "otelcol_http_logs.bin",
            Lines(
                "filelog-demo",
                1795335042649575677,
                &[
                    "2026-11-22T08:00:00Z level=info msg=\"hello from filelog\" user=42",
                    "2026-11-22T08:00:01Z level=error msg=\"boom\" code=500",
                ],
            ),
        ),
    ]);
}

#[test]
fn node_sdk_otlp_json_chunked() {
    run(&[
        (
            "node_http_traces.json",
            Spans(
                "a0306d84cd1772b4240d26924bff3d45",
                &[
                    ("59fb566c03382022", "node-child"),
                    ("5521cd6237050a35", "node-root"),
                ],
            ),
        ),
        (
            "node_http_logs.json",
            Lines("node-peer-check", 1795335178613000000, &["hello from node"]),
        ),
        (
            "node_http_metrics.json",
            Samples(
                "{job=\"node-peer-check\"}",
                "1795335178.619",
                &[("node_requests_total{route=\"/x\"}", "5")],
            ),
        ),
    ]);
}

#[test]
fn opentelemetry_proto_examples() {
    const AT: i64 = 1544712660300000000;
    run(&[
        // Upper-case hex ids in the request; the API takes either case.
        (
            "trace.json",
            Spans(
                "5B8EFFF798038103D269B633813FC60C",
                &[("eee19b7ec3c1b174", "I'm a server span")],
            ),
        ),
        (
            "logs.json",
            Lines("my.service", AT, &["Example log record"]),
        ),
        (
            "events.json",
            Lines(
                "my.service",
                AT,
                &[
                    r#"{"referrer":"https://wwww.google.com","title":"Free Online GUID Generator","type":0,"url":"https://www.guidgenerator.com/online-guid-generator.aspx"}"#,
                ],
            ),
        ),
        (
            "metrics.json",
            Samples(
                "{job=\"my.service\"}",
                "1544712660.3",
                &[
                    ("my_counter_total{my_counter_attr=\"some value\"}", "5"),
                    ("my_gauge_ratio{my_gauge_attr=\"some value\"}", "10"),
                    ("my_histogram_bucket{le=\"1\"}", "1"),
                    ("my_histogram_bucket{le=\"+Inf\"}", "2"),
                    ("my_histogram_sum", "2"),
                    ("my_histogram_count", "2"),
                ],
            ),
        ),
    ]);
}

/// The fixture directory holds nothing this file does not check.
#[test]
fn every_fixture_is_covered() {
    let src = include_str!("ingest_fixtures.rs");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/otlp");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let covered = src.contains(&format!("\"{name}\""))
            || ["http", "gzip_http", "grpc"].iter().any(|p| {
                ["traces.bin", "logs.bin", "metrics.bin", "metrics.1.bin"]
                    .iter()
                    .any(|s| name == format!("{p}_{s}"))
            });
        assert!(
            covered,
            "fixture {name} is not checked by ingest_fixtures.rs"
        );
    }
}
