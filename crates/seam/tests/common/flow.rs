//! The Beorn -> MDSO -> Arda flow of the correlation tests: what was sent (built flows and their
//! requests), what came back (Tempo JSON spans), and the checks of a stitched flow.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use seam_model::attributes::string_kv;
use seam_model::otlp::collector::trace::v1::ExportTraceServiceRequest;
use seam_model::otlp::trace::v1::span::SpanKind;
use serde_json::{json, Value};

use super::codec::{hex, unhex};
use super::{eventually, now_ns, Seam};

/// Bridges may wait for the settle delay (2 s by default) before they are decided.
pub const WAIT: Duration = Duration::from_secs(12);
pub const MS: u64 = 1_000_000;
pub const CONFIG: &str = "correlation:\n  flow_patterns: [[beorn, mdso, arda]]\n";
pub const SERVICES: [&str; 3] = ["beorn", "mdso", "arda"];

// ---------------------------------------------------------------------------------------------
// What was sent

/// One span as its sender made it.
#[derive(Clone, Debug)]
pub struct Sent {
    pub service: String,
    pub name: String,
    pub kind: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent: Option<String>,
    pub start: u64,
    pub end: u64,
}

/// One Beorn -> MDSO -> Arda flow: per service a root span (first) and maybe a CLIENT child.
#[derive(Clone, Debug)]
pub struct Flow {
    pub circuit: String,
    pub spans: Vec<Sent>,
}

impl Flow {
    pub fn trace_of(&self, service: &str) -> String {
        self.root(service).trace_id.clone()
    }

    pub fn trace_ids(&self) -> Vec<String> {
        SERVICES.iter().map(|s| self.trace_of(s)).collect()
    }

    pub fn root(&self, service: &str) -> &Sent {
        self.spans
            .iter()
            .find(|s| s.service == service && s.parent.is_none())
            .unwrap_or_else(|| panic!("no {service} root in {self:?}"))
    }

    /// The CLIENT span of `service` (the call to the next service).
    pub fn client(&self, service: &str) -> &Sent {
        self.spans
            .iter()
            .find(|s| s.service == service && s.kind == "SPAN_KIND_CLIENT")
            .unwrap_or_else(|| panic!("no {service} client span in {self:?}"))
    }

    pub fn spans_of_trace(&self, trace_id: &str) -> Vec<&Sent> {
        self.spans
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .collect()
    }
}

/// The bridge spans a flow must get: name, upstream service, parent span, downstream service,
/// and the gap in ms.
pub struct ExpectedBridge<'a> {
    pub name: &'static str,
    pub upstream: &'static str,
    pub parent: &'a Sent,
    pub downstream: &'static str,
    pub gap_ms: i64,
}

pub fn expected_bridges(f: &Flow) -> [ExpectedBridge<'_>; 2] {
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
pub struct Got {
    pub service: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent: Option<String>,
    pub name: String,
    pub kind: String,
    pub start: u64,
    pub end: u64,
    /// Attribute values in OTLP/JSON form (`{"stringValue": ...}`).
    pub attrs: BTreeMap<String, Value>,
    /// (trace id, span id) of each span link, hex.
    pub links: Vec<(String, String)>,
}

impl Got {
    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.attrs.get(key)
    }

    pub fn str_attr(&self, key: &str) -> Option<&str> {
        self.attr(key)?.get("stringValue")?.as_str()
    }
}

/// Standard base64 (Tempo's JSON ids) to hex.
pub fn b64_hex(s: &str) -> String {
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

pub fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_string()
}

/// The spans of a Tempo JSON `batches`/`resourceSpans` list.
pub fn spans_of(batches: &Value) -> Vec<Got> {
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
pub fn get_trace(s: &Seam, id: &str, stitch: bool) -> Option<Vec<Got>> {
    let q = if stitch { "" } else { "?stitch=false" };
    let (code, body) = s.get_json(&format!("/api/traces/{id}{q}"), None);
    (code == 200).then(|| spans_of(&body["batches"]))
}

/// The stitched trace of `id` once it holds `want` spans, of which two are bridges.
pub fn stitched_when_complete(s: &Seam, id: &str, want: usize) -> Vec<Got> {
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

pub fn by_span_id(spans: &[Got]) -> BTreeMap<String, Got> {
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
pub fn check_stitched(f: &Flow, requested: &str, spans: &[Got]) -> BTreeMap<String, Got> {
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
        // How the link was decided depends on the configuration and on what the spans say;
        // checked by the tests that care, and here only for being one of the documented values.
        let mut attrs = g.attrs.clone();
        let direction = attrs.remove("correlation.direction");
        let evidence = attrs.remove("correlation.evidence");
        let text = |v: &Option<Value>| {
            v.as_ref()
                .and_then(|v| v["stringValue"].as_str())
                .map(str::to_string)
        };
        assert!(
            matches!(
                text(&direction).as_deref(),
                Some("pattern" | "learned" | "observed")
            ),
            "correlation.direction of {}: {direction:?}",
            b.name
        );
        assert!(
            matches!(
                text(&evidence).as_deref(),
                Some("matched_call" | "call_in_flight" | "call_nearby" | "time_order")
            ),
            "correlation.evidence of {}: {evidence:?}",
            b.name
        );
        assert_eq!(attrs, want_attrs, "attributes of {}", b.name);
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
pub fn check_flow(s: &Seam, f: &Flow) -> BTreeMap<String, Got> {
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
pub fn check_raw(s: &Seam, f: &Flow) {
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
pub fn metric(s: &Seam, name: &str) -> Option<f64> {
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

pub fn wait_metric(s: &Seam, name: &str, want: f64) {
    let ok = eventually(WAIT, || (metric(s, name) == Some(want)).then_some(()));
    assert!(
        ok.is_some(),
        "{name} never reached {want}; it is {:?}",
        metric(s, name)
    );
}

/// The flow an `emit_flow.py` report describes.
pub fn flow_of_report(report: &Value) -> Flow {
    Flow {
        circuit: text(&report["circuit_id"]),
        spans: report["spans"]
            .as_array()
            .unwrap_or_else(|| panic!("no spans in {report}"))
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
    }
}

pub fn start(dir: &std::path::Path, yaml: &str) -> Seam {
    Seam::with_config(dir, yaml, &[])
}

// ---------------------------------------------------------------------------------------------
// Flows built in Rust (tests 2 to 4)

/// A flow whose times are `t0` plus the offsets in ms below, ids made from `seed`.
/// `mdso_skew_ms` moves MDSO's clock.
pub fn built_flow(circuit: &str, seed: u8, t0: u64, mdso_skew_ms: i64) -> Flow {
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

pub fn kind_of(name: &str) -> i32 {
    SpanKind::from_str_name(name).expect("a span kind") as i32
}

/// One request per service holding its spans of every flow in `flows`.
pub fn requests(flows: &[&Flow]) -> Vec<ExportTraceServiceRequest> {
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
                    let mut span = super::otlp::span(
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
            super::otlp::traces(super::otlp::service(svc), spans)
        })
        .collect()
}

/// All services' requests merged into one (several resources in one export).
pub fn one_request(flows: &[&Flow]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: requests(flows)
            .into_iter()
            .flat_map(|r| r.resource_spans)
            .collect(),
    }
}

pub fn send(s: &Seam, req: &ExportTraceServiceRequest) {
    super::otlp::export(s, "traces", req);
}

pub fn unique(tag: &str) -> String {
    format!("{tag}-{}-{}", std::process::id(), now_ns())
}
