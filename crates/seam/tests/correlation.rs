//! Trace stitching end to end: Beorn, MDSO and Arda emit one flow as three unrelated traces (no
//! context propagation) that share a `circuit_id`; Seam writes bridge spans and returns the whole
//! flow as one trace from the Tempo API, for any of the three trace ids.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use common::codec::{hex, unhex};
use common::{client, eventually, now_ns, python, python_script, write_config, Seam};
use prost::Message;
use seam_model::attributes::string_kv;
use seam_model::otlp::collector::trace::v1::ExportTraceServiceRequest;
use seam_model::otlp::trace::v1::span::SpanKind;
use serde_json::{json, Value};

/// Bridges may wait for the settle delay (2 s by default) before they are decided.
const WAIT: Duration = Duration::from_secs(12);
const MS: u64 = 1_000_000;
const CONFIG: &str = "correlation:\n  flow_patterns: [[beorn, mdso, arda]]\n";
const SERVICES: [&str; 3] = ["beorn", "mdso", "arda"];

// ---------------------------------------------------------------------------------------------
// What was sent

/// One span as its sender made it.
#[derive(Clone, Debug)]
struct Sent {
    service: String,
    name: String,
    kind: String,
    trace_id: String,
    span_id: String,
    parent: Option<String>,
    start: u64,
    end: u64,
}

/// One Beorn -> MDSO -> Arda flow: per service a root span (first) and maybe a CLIENT child.
#[derive(Clone, Debug)]
struct Flow {
    circuit: String,
    spans: Vec<Sent>,
}

impl Flow {
    fn trace_of(&self, service: &str) -> String {
        self.root(service).trace_id.clone()
    }

    fn trace_ids(&self) -> Vec<String> {
        SERVICES.iter().map(|s| self.trace_of(s)).collect()
    }

    fn root(&self, service: &str) -> &Sent {
        self.spans
            .iter()
            .find(|s| s.service == service && s.parent.is_none())
            .unwrap_or_else(|| panic!("no {service} root in {self:?}"))
    }

    /// The CLIENT span of `service` (the call to the next service).
    fn client(&self, service: &str) -> &Sent {
        self.spans
            .iter()
            .find(|s| s.service == service && s.kind == "SPAN_KIND_CLIENT")
            .unwrap_or_else(|| panic!("no {service} client span in {self:?}"))
    }

    fn spans_of_trace(&self, trace_id: &str) -> Vec<&Sent> {
        self.spans
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .collect()
    }
}

/// The bridge spans a flow must get: name, upstream service, parent span, downstream service,
/// and the gap in ms.
struct ExpectedBridge<'a> {
    name: &'static str,
    upstream: &'static str,
    parent: &'a Sent,
    downstream: &'static str,
    gap_ms: i64,
}

fn expected_bridges(f: &Flow) -> [ExpectedBridge<'_>; 2] {
    let gap =
        |up: &str, down: &str| (f.root(down).start as i64 - f.root(up).start as i64) / MS as i64;
    [
        ExpectedBridge {
            name: "beorn_to_mdso_bridge",
            upstream: "beorn",
            parent: f.client("beorn"),
            downstream: "mdso",
            gap_ms: gap("beorn", "mdso"),
        },
        ExpectedBridge {
            name: "mdso_to_arda_bridge",
            upstream: "mdso",
            parent: f.client("mdso"),
            downstream: "arda",
            gap_ms: gap("mdso", "arda"),
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// What came back

/// One span of a Tempo JSON answer.
#[derive(Clone, Debug, PartialEq)]
struct Got {
    service: String,
    trace_id: String,
    span_id: String,
    parent: Option<String>,
    name: String,
    kind: String,
    start: u64,
    end: u64,
    /// Attribute values in OTLP/JSON form (`{"stringValue": ...}`).
    attrs: BTreeMap<String, Value>,
    /// (trace id, span id) of each span link, hex.
    links: Vec<(String, String)>,
}

impl Got {
    fn attr(&self, key: &str) -> Option<&Value> {
        self.attrs.get(key)
    }

    fn str_attr(&self, key: &str) -> Option<&str> {
        self.attr(key)?.get("stringValue")?.as_str()
    }
}

/// Standard base64 (Tempo's JSON ids) to hex.
fn b64_hex(s: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = A
            .iter()
            .position(|a| *a == c)
            .unwrap_or_else(|| panic!("not base64: {s:?}")) as u32;
        bits = bits << 6 | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    hex(&out)
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_string()
}

/// The spans of a Tempo JSON `batches`/`resourceSpans` list.
fn spans_of(batches: &Value) -> Vec<Got> {
    let mut out = Vec::new();
    for rs in batches
        .as_array()
        .unwrap_or_else(|| panic!("a resourceSpans array, got {batches}"))
    {
        let service = rs["resource"]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|kv| kv["key"] == "service.name")
            .map(|kv| text(&kv["value"]["stringValue"]))
            .unwrap_or_default();
        for ss in rs["scopeSpans"].as_array().expect("scopeSpans") {
            for sp in ss["spans"].as_array().expect("spans") {
                let attrs = sp["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|kv| (text(&kv["key"]), kv["value"].clone()))
                    .collect();
                let links = sp["links"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|l| (b64_hex(&text(&l["traceId"])), b64_hex(&text(&l["spanId"]))))
                    .collect();
                out.push(Got {
                    service: service.clone(),
                    trace_id: b64_hex(&text(&sp["traceId"])),
                    span_id: b64_hex(&text(&sp["spanId"])),
                    parent: sp.get("parentSpanId").map(|p| b64_hex(&text(p))),
                    name: text(&sp["name"]),
                    kind: text(&sp["kind"]),
                    start: text(&sp["startTimeUnixNano"]).parse().unwrap(),
                    end: text(&sp["endTimeUnixNano"]).parse().unwrap(),
                    attrs,
                    links,
                });
            }
        }
    }
    out
}

/// `GET /api/traces/{id}[?stitch=false]` as JSON spans; `None` unless it answers 200.
fn get_trace(s: &Seam, id: &str, stitch: bool) -> Option<Vec<Got>> {
    let q = if stitch { "" } else { "?stitch=false" };
    let (code, body) = s.get_json(&format!("/api/traces/{id}{q}"), None);
    (code == 200).then(|| spans_of(&body["batches"]))
}

/// The stitched trace of `id` once it holds `want` spans, of which two are bridges.
fn stitched_when_complete(s: &Seam, id: &str, want: usize) -> Vec<Got> {
    eventually(WAIT, || {
        get_trace(s, id, true).filter(|spans| {
            spans.len() == want && spans.iter().filter(|g| g.name.ends_with("_bridge")).count() == 2
        })
    })
    .unwrap_or_else(|| {
        panic!(
            "the stitched trace {id} never held {want} spans with two bridges; last answer: {:#?}\nseam log:\n{}",
            get_trace(s, id, true),
            s.log_text()
        )
    })
}

fn by_span_id(spans: &[Got]) -> BTreeMap<String, Got> {
    let mut out = BTreeMap::new();
    for g in spans {
        let prev = out.insert(g.span_id.clone(), g.clone());
        assert!(
            prev.is_none(),
            "span {} returned twice: {spans:#?}",
            g.span_id
        );
    }
    out
}

/// Every assertion on one stitched answer for `requested`; returns the spans by span id with the
/// trace id blanked, so answers for different ids can be compared.
fn check_stitched(f: &Flow, requested: &str, spans: &[Got]) -> BTreeMap<String, Got> {
    let got = by_span_id(spans);
    let ctx = || {
        format!(
            "stitched trace {requested} of circuit {}: {spans:#?}",
            f.circuit
        )
    };
    assert_eq!(got.len(), f.spans.len() + 2, "{}", ctx());
    for g in got.values() {
        assert_eq!(
            g.trace_id,
            requested,
            "every span carries the requested id; {}",
            ctx()
        );
    }
    // Every span that was sent, with its own attributes, re-parented only at the trace roots.
    let bridges = expected_bridges(f);
    let bridge_ids: BTreeMap<&str, String> = bridges
        .iter()
        .map(|b| {
            let g = got
                .values()
                .filter(|g| g.name == b.name)
                .collect::<Vec<_>>();
            assert_eq!(g.len(), 1, "exactly one {}; {}", b.name, ctx());
            (b.downstream, g[0].span_id.clone())
        })
        .collect();
    for sent in &f.spans {
        let g = got
            .get(&sent.span_id)
            .unwrap_or_else(|| panic!("span {} ({}) missing; {}", sent.span_id, sent.name, ctx()));
        assert_eq!(
            (&g.name, &g.kind, &g.service),
            (&sent.name, &sent.kind, &sent.service)
        );
        assert_eq!((g.start, g.end), (sent.start, sent.end), "{}", sent.name);
        assert_eq!(
            g.str_attr("seam.original_trace_id"),
            Some(sent.trace_id.as_str()),
            "{} keeps its original trace id",
            sent.name
        );
        assert_eq!(
            g.str_attr("circuit_id").is_some(),
            sent.kind == "SPAN_KIND_SERVER" || sent.service == "beorn",
            "{} keeps its own attributes",
            sent.name
        );
        let want_parent = match (&sent.parent, sent.service.as_str()) {
            (Some(p), _) => Some(p.clone()),
            (None, "beorn") => None,
            (None, down) => Some(bridge_ids[down].clone()),
        };
        assert_eq!(g.parent, want_parent, "parent of {}; {}", sent.name, ctx());
    }
    for b in &bridges {
        let g = &got[&bridge_ids[b.downstream]];
        let down = f.root(b.downstream);
        assert_eq!(g.service, "seam-correlator", "{}", b.name);
        assert_eq!(g.kind, "SPAN_KIND_INTERNAL", "{}", b.name);
        assert_eq!(
            g.parent.as_deref(),
            Some(b.parent.span_id.as_str()),
            "{} hangs under {} (the call in flight when {} started)",
            b.name,
            b.parent.name,
            b.downstream
        );
        assert_eq!(
            (g.start, g.end),
            (down.start, down.start + MS),
            "{} marks the hand-off",
            b.name
        );
        let want_attrs = BTreeMap::from([
            ("synthetic".to_string(), json!({"boolValue": true})),
            (
                "correlation.key".into(),
                json!({"stringValue": "circuit_id"}),
            ),
            (
                "correlation.value".into(),
                json!({"stringValue": f.circuit}),
            ),
            ("correlation.confidence".into(), json!({"doubleValue": 1.0})),
            (
                "correlation.gap_ms".into(),
                json!({"intValue": b.gap_ms.to_string()}),
            ),
            (
                "correlation.downstream_trace_id".into(),
                json!({"stringValue": f.trace_of(b.downstream)}),
            ),
            (
                "correlation.downstream_service".into(),
                json!({"stringValue": b.downstream}),
            ),
            ("correlation.exact".into(), json!({"boolValue": true})),
            (
                "seam.original_trace_id".into(),
                json!({"stringValue": f.trace_of(b.upstream)}),
            ),
        ]);
        assert_eq!(g.attrs, want_attrs, "attributes of {}", b.name);
        assert_eq!(
            g.links,
            [(f.trace_of(b.downstream), down.span_id.clone())],
            "{} links to the downstream root",
            b.name
        );
    }
    got.into_iter()
        .map(|(k, mut g)| {
            g.trace_id.clear();
            (k, g)
        })
        .collect()
}

/// The stitched trace of `f` fetched by each of its trace ids: complete, checked, and the same.
fn check_flow(s: &Seam, f: &Flow) -> BTreeMap<String, Got> {
    let want = f.spans.len() + 2;
    let views: Vec<_> = f
        .trace_ids()
        .iter()
        .map(|id| check_stitched(f, id, &stitched_when_complete(s, id, want)))
        .collect();
    assert_eq!(
        views[0], views[1],
        "the same flow by the beorn and mdso ids"
    );
    assert_eq!(
        views[0], views[2],
        "the same flow by the beorn and arda ids"
    );
    views.into_iter().next().unwrap()
}

/// `?stitch=false`: each trace as stored, the upstream ones with their own bridge span.
fn check_raw(s: &Seam, f: &Flow) {
    for b in expected_bridges(f) {
        let id = f.trace_of(b.upstream);
        let raw = get_trace(s, &id, false).expect("raw trace");
        let names: BTreeSet<&str> = raw.iter().map(|g| g.name.as_str()).collect();
        let mut want: BTreeSet<&str> = f
            .spans_of_trace(&id)
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        want.insert(b.name);
        assert_eq!(names, want, "raw {} trace: {raw:#?}", b.upstream);
        assert_eq!(raw.len(), want.len(), "raw {} trace: {raw:#?}", b.upstream);
        for g in &raw {
            assert_eq!(g.trace_id, id);
            assert_eq!(
                g.attr("seam.original_trace_id"),
                None,
                "raw spans are not rewritten"
            );
        }
        let root = raw
            .iter()
            .find(|g| g.span_id == f.root(b.upstream).span_id)
            .unwrap();
        assert_eq!(root.parent, None);
    }
    let arda = f.trace_of("arda");
    let raw = get_trace(s, &arda, false).expect("raw arda trace");
    assert_eq!(raw.len(), 1, "{raw:#?}");
    assert_eq!(
        (raw[0].name.as_str(), &raw[0].parent),
        ("arda.get_topology", &None)
    );
}

/// The value of the metric line `name` (with labels, exactly), if present.
fn metric(s: &Seam, name: &str) -> Option<f64> {
    let (code, body) = s.get_json("/metrics", None);
    assert_eq!(code, 200);
    let text = match body {
        Value::String(t) => t,
        other => panic!("/metrics is not text: {other}"),
    };
    text.lines().find_map(|l| {
        let (n, v) = l.rsplit_once(' ')?;
        (n == name).then(|| v.parse().unwrap())
    })
}

fn wait_metric(s: &Seam, name: &str, want: f64) {
    let ok = eventually(WAIT, || (metric(s, name) == Some(want)).then_some(()));
    assert!(
        ok.is_some(),
        "{name} never reached {want}; it is {:?}",
        metric(s, name)
    );
}

fn start(dir: &std::path::Path, yaml: &str) -> Seam {
    let cfg = write_config(dir, yaml);
    Seam::start(&dir.join("data"), &["--config", cfg.to_str().unwrap()])
}

// ---------------------------------------------------------------------------------------------
// Flows built in Rust (tests 2 to 4)

/// A flow whose times are `t0` plus the offsets in ms below, ids made from `seed`.
/// `mdso_skew_ms` moves MDSO's clock.
fn built_flow(circuit: &str, seed: u8, t0: u64, mdso_skew_ms: i64) -> Flow {
    let tid = |n: u8| {
        hex(&[
            [seed, n],
            [0x11; 2],
            [0x22; 2],
            [0x33; 2],
            [0x44; 2],
            [0x55; 2],
            [0x66; 2],
            [0x77, n],
        ]
        .concat())
    };
    let sid = |n: u8| hex(&[seed, n, 1, 2, 3, 4, 5, n]);
    let at = |ms: i64| (t0 as i64 + ms * MS as i64) as u64;
    let sk = mdso_skew_ms;
    let mk = |service: &str,
              name: String,
              kind: &str,
              t: u8,
              s: u8,
              parent: Option<u8>,
              a: i64,
              b: i64| Sent {
        service: service.into(),
        name,
        kind: kind.into(),
        trace_id: tid(t),
        span_id: sid(s),
        parent: parent.map(sid),
        start: at(a),
        end: at(b),
    };
    Flow {
        circuit: circuit.into(),
        spans: vec![
            mk(
                "beorn",
                "beorn.create_network_service".into(),
                "SPAN_KIND_SERVER",
                1,
                1,
                None,
                0,
                300,
            ),
            mk(
                "beorn",
                "POST /bpocore/market/api/v1/resources".into(),
                "SPAN_KIND_CLIENT",
                1,
                2,
                Some(1),
                50,
                250,
            ),
            mk(
                "mdso",
                "CircuitDetailsCollector".into(),
                "SPAN_KIND_SERVER",
                2,
                3,
                None,
                60 + sk,
                240 + sk,
            ),
            mk(
                "mdso",
                format!("GET /api/v3/topologies/{circuit}"),
                "SPAN_KIND_CLIENT",
                2,
                4,
                Some(3),
                90 + sk,
                160 + sk,
            ),
            mk(
                "arda",
                "arda.get_topology".into(),
                "SPAN_KIND_SERVER",
                3,
                5,
                None,
                100,
                150,
            ),
        ],
    }
}

fn kind_of(name: &str) -> i32 {
    SpanKind::from_str_name(name).expect("a span kind") as i32
}

/// One request per service holding its spans of every flow in `flows`.
fn requests(flows: &[&Flow]) -> Vec<ExportTraceServiceRequest> {
    SERVICES
        .iter()
        .map(|svc| {
            let spans = flows
                .iter()
                .flat_map(|f| {
                    f.spans
                        .iter()
                        .filter(|s| s.service == *svc)
                        .map(move |s| (f, s))
                })
                .map(|(f, s)| {
                    let mut span = common::otlp::span(
                        &unhex(&s.trace_id),
                        &unhex(&s.span_id),
                        s.name.clone(),
                        s.start,
                        s.end,
                    );
                    span.kind = kind_of(&s.kind);
                    span.parent_span_id = s.parent.as_deref().map(unhex).unwrap_or_default();
                    // Beorn records the key on both spans, MDSO and Arda on their roots.
                    if s.service == "beorn" || s.parent.is_none() {
                        span.attributes.push(string_kv("circuit_id", &f.circuit));
                    }
                    span
                })
                .collect();
            common::otlp::traces(common::otlp::service(svc), spans)
        })
        .collect()
}

/// All services' requests merged into one (several resources in one export).
fn one_request(flows: &[&Flow]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: requests(flows)
            .into_iter()
            .flat_map(|r| r.resource_spans)
            .collect(),
    }
}

fn send(s: &Seam, req: &ExportTraceServiceRequest) {
    let r = common::otlp::send(&client(), &s.otlp_http, "traces", req.encode_to_vec())
        .expect("POST traces");
    assert_eq!(r.status(), 200, "{:?}", r.text());
}

fn unique(tag: &str) -> String {
    format!("{tag}-{}-{}", std::process::id(), now_ns())
}

// ---------------------------------------------------------------------------------------------
// Tests

/// The real client: three OpenTelemetry Python SDK tracer providers, one per service, no
/// propagation between them, over OTLP/HTTP.
#[test]
fn python_sdk_flow_is_stitched_from_each_trace_id() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), CONFIG);
    let circuit = unique("ckt");
    let out = Command::new(python())
        .arg(python_script("emit_flow.py"))
        .args(["--endpoint", &s.otlp_http, "--circuit-id", &circuit])
        .output()
        .expect("run emit_flow.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "emit_flow.py failed: {}\nstdout:{stdout}\nstderr:{}\nseam log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        s.log_text()
    );
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("emit_flow.py printed no JSON report ({e}): {stdout}"));
    assert_eq!(
        report["flushed"], true,
        "the SDK could not export: {report}"
    );
    assert_eq!(report["circuit_id"], circuit.as_str());
    let f = Flow {
        circuit: circuit.clone(),
        spans: report["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| Sent {
                service: text(&s["service"]),
                name: text(&s["name"]),
                kind: text(&s["kind"]),
                trace_id: text(&s["trace_id"]),
                span_id: text(&s["span_id"]),
                parent: s["parent_span_id"].as_str().map(str::to_string),
                start: s["start_ns"].as_u64().unwrap(),
                end: s["end_ns"].as_u64().unwrap(),
            })
            .collect(),
    };
    let ids: BTreeSet<String> = f.trace_ids().into_iter().collect();
    assert_eq!(ids.len(), 3, "three services, three traces: {report}");
    for svc in SERVICES {
        assert_eq!(report["trace_ids"][svc], f.trace_of(svc).as_str());
    }
    let [b1, b2] = expected_bridges(&f);
    assert_eq!((b1.gap_ms, b2.gap_ms), (60, 40), "the script's timing");

    check_flow(&s, &f);
    check_raw(&s, &f);

    // Tempo v2: the same flow, complete.
    for id in f.trace_ids() {
        let (code, body) = s.get_json(&format!("/api/v2/traces/{id}"), None);
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["status"], "COMPLETE", "{body}");
        assert_eq!(body.get("message"), None, "{body}");
        let spans = spans_of(&body["trace"]["resourceSpans"]);
        assert_eq!(spans.len(), 7, "{body}");
        assert!(spans.iter().all(|g| g.trace_id == id));
    }
    // Protobuf: the same span count, every span under the requested id.
    for id in f.trace_ids() {
        let t = common::read::trace(&client(), &s.api, &id).expect("protobuf trace");
        assert_eq!(t.spans().count(), 7, "protobuf trace {id}");
        assert!(t.spans().all(|sp| hex(&sp.trace_id) == id));
    }
    wait_metric(&s, "correlation_bridge_spans_created_total", 2.0);
    wait_metric(&s, "correlation_events_total{result=\"matched\"}", 2.0);
    assert!(
        metric(&s, "correlation_active_keys").is_some_and(|v| v >= 1.0),
        "correlation_active_keys: {:?}",
        metric(&s, "correlation_active_keys")
    );
    assert_eq!(
        metric(&s, "correlation_match_latency_seconds_count"),
        Some(2.0)
    );
}

/// Two flows on two circuits, at the same time and in one request, stay apart.
#[test]
fn concurrent_flows_on_different_circuits_are_not_cross_linked() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), CONFIG);
    let t0 = now_ns() - 2_000 * MS;
    let a = built_flow(&unique("ckt-a"), 0xa1, t0, 0);
    let b = built_flow(&unique("ckt-b"), 0xb2, t0 + 5 * MS, 0);
    send(&s, &one_request(&[&a, &b]));
    for f in [&a, &b] {
        let view = check_flow(&s, f);
        let other = if std::ptr::eq(f, &a) { &b } else { &a };
        for g in view.values() {
            assert!(
                !other.spans.iter().any(|o| o.span_id == g.span_id),
                "span {} of circuit {} is in the flow of {}",
                g.name,
                other.circuit,
                f.circuit
            );
        }
    }
    check_raw(&s, &a);
    check_raw(&s, &b);
    wait_metric(&s, "correlation_bridge_spans_created_total", 4.0);
}

/// Bridges are stored: after a restart the stitched view is the same, and the same spans sent
/// again (the engine, which forgot them, matches them again) make no second bridge.
#[test]
fn stitched_view_survives_restart_and_resending_makes_no_second_bridge() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path(), CONFIG);
    let f = built_flow(&unique("ckt-r"), 0xc3, now_ns() - 2_000 * MS, 0);
    let reqs = requests(&[&f]);
    for r in &reqs {
        send(&s, r);
    }
    let before = check_flow(&s, &f);
    wait_metric(&s, "correlation_bridge_spans_created_total", 2.0);
    assert!(s.terminate(), "clean exit; log:\n{}", s.log_text());

    let s = start(dir.path(), CONFIG);
    for id in f.trace_ids() {
        let spans = get_trace(&s, &id, true).expect("stitched trace after restart");
        let after = check_stitched(&f, &id, &spans);
        assert_eq!(after, before, "the stitched view of {id} after the restart");
    }
    for r in &reqs {
        send(&s, r);
    }
    // The restarted engine decides both links again and writes their bridges...
    wait_metric(&s, "correlation_bridge_spans_created_total", 2.0);
    wait_metric(&s, "correlation_events_total{result=\"matched\"}", 2.0);
    // ...which are the same spans, so the store holds one of each.
    for id in f.trace_ids() {
        let spans = get_trace(&s, &id, true).expect("stitched trace after re-sending");
        let after = check_stitched(&f, &id, &spans);
        assert_eq!(after, before, "the stitched view of {id} after re-sending");
    }
    check_raw(&s, &f);
}

/// The flow pattern, not the clocks, says who called whom: MDSO's clock runs 90 ms behind, so its
/// scriptplan seems to start before Beorn's request; the pattern still puts Beorn upstream, with
/// the bridge under Beorn's root (no Beorn span was running at MDSO's recorded start).
#[test]
fn the_flow_pattern_sets_the_direction_under_clock_skew() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), CONFIG);
    let t0 = now_ns() - 2_000 * MS;
    let f = built_flow(&unique("ckt-skew"), 0xd4, t0, -90);
    send(&s, &one_request(&[&f]));
    let id = f.trace_of("arda");
    let spans = stitched_when_complete(&s, &id, f.spans.len() + 2);
    let got = by_span_id(&spans);
    let bridge = |name: &str| {
        got.values()
            .find(|g| g.name == name)
            .unwrap_or_else(|| panic!("no {name}: {spans:#?}"))
    };
    let b1 = bridge("beorn_to_mdso_bridge");
    assert_eq!(b1.parent.as_deref(), Some(f.root("beorn").span_id.as_str()));
    assert_eq!(
        b1.attr("correlation.gap_ms"),
        Some(&json!({"intValue": "-30"}))
    );
    assert_eq!(
        b1.attr("correlation.confidence"),
        Some(&json!({"doubleValue": 1.0}))
    );
    assert_eq!(b1.start, f.root("beorn").start, "clamped into its parent");
    let b2 = bridge("mdso_to_arda_bridge");
    // Arda started at +100 ms: MDSO's root (-30..150) was running, its client (0..70) was not.
    assert_eq!(b2.parent.as_deref(), Some(f.root("mdso").span_id.as_str()));
    assert_eq!(
        b2.attr("correlation.gap_ms"),
        Some(&json!({"intValue": "130"}))
    );
    assert_eq!(
        got[&f.root("mdso").span_id].parent.as_ref(),
        Some(&b1.span_id)
    );
    assert_eq!(
        got[&f.root("arda").span_id].parent.as_ref(),
        Some(&b2.span_id)
    );
    assert_eq!(got[&f.root("beorn").span_id].parent, None);
}
