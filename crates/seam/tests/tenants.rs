//! Tenants are isolated: data written under `X-Scope-OrgID: team-a`, `team-b` and with no header
//! (the `default` tenant) is seen only by reads of the same tenant, on every read API.

mod common;

use std::collections::BTreeSet;

use common::codec::{enc, hex};
use common::{now_ns, otlp, Seam};
use prost::Message;
use seam_model::attributes::string_kv;
use seam_model::otlp::common::v1::{any_value, AnyValue, KeyValue};
use seam_model::otlp::logs::v1::LogRecord;
use seam_model::otlp::metrics::v1::{metric, number_data_point, Gauge, Metric, NumberDataPoint};
use seam_model::otlp::trace::v1::Span;
use serde_json::{json, Value};

/// One tenant's writes: its header, trace id, service, log line, gauge value and own label.
struct T {
    header: Option<&'static str>,
    name: &'static str,
    trace_id: [u8; 16],
    value: f64,
}

impl T {
    fn service(&self) -> String {
        format!("svc-{}", self.name)
    }
    fn line(&self) -> String {
        format!("hello from {}", self.name)
    }
    fn hex_trace(&self) -> String {
        hex(&self.trace_id)
    }
    /// A label only this tenant's data has (a stream label for Loki, an attribute for metrics).
    fn own_label(&self) -> String {
        format!("only_{}", self.name.replace('-', "_"))
    }
}

const TENANTS: [T; 3] = [
    T {
        header: Some("team-a"),
        name: "team-a",
        trace_id: [0xaa; 16],
        value: 1.5,
    },
    T {
        header: Some("team-b"),
        name: "team-b",
        trace_id: [0xbb; 16],
        value: 2.5,
    },
    T {
        header: None,
        name: "default",
        trace_id: [0xdd; 16],
        value: 3.5,
    },
];

fn resource(t: &T) -> Vec<KeyValue> {
    vec![
        string_kv("service.name", &t.service()),
        // A default Loki stream label, set per tenant.
        string_kv("k8s.namespace.name", &format!("ns-{}", t.name)),
    ]
}

fn write(s: &Seam, t: &T, at: u64) {
    let headers: Vec<(&str, &str)> = t.header.map(|h| ("X-Scope-OrgID", h)).into_iter().collect();
    let mut headers = headers;
    headers.push(("Content-Type", "application/x-protobuf"));
    let span = Span {
        kind: 2,
        ..otlp::span(
            &t.trace_id,
            &[0x11; 8],
            format!("span-{}", t.name),
            at,
            at + 1000,
        )
    };
    let traces = otlp::traces(resource(t), vec![span]);
    let record = LogRecord {
        trace_id: t.trace_id.to_vec(),
        ..otlp::log_line(at, &t.line())
    };
    let logs = otlp::logs(resource(t), vec![record]);
    let probe = Metric {
        name: "tenant_probe".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                time_unix_nano: at,
                value: Some(number_data_point::Value::AsDouble(t.value)),
                attributes: vec![KeyValue {
                    key: t.own_label(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::BoolValue(true)),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    let metrics = otlp::metrics(resource(t), vec![probe]);
    for (signal, body) in [
        ("traces", traces.encode_to_vec()),
        ("logs", logs.encode_to_vec()),
        ("metrics", metrics.encode_to_vec()),
    ] {
        let r = s.post_otlp(signal, body, &headers);
        assert_eq!(r.status(), 200, "{} {signal}: {:?}", t.name, r.text());
    }
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Every read API, as tenant `t`, sees `t`'s data and nothing of the others.
fn check(s: &Seam, t: &T, header: Option<&str>, at: u64) {
    let get = |path: &str| {
        let (code, body) = s.get_json(path, header);
        assert_eq!(code, 200, "{} {path}: {body}", t.name);
        body
    };
    // Tempo: own trace found, the others' are 404.
    let body = get(&format!("/api/traces/{}", t.hex_trace()));
    assert_eq!(
        body["batches"][0]["scopeSpans"][0]["spans"][0]["name"],
        format!("span-{}", t.name)
    );
    for other in TENANTS.iter().filter(|o| o.name != t.name) {
        let (code, body) = s.get_json(&format!("/api/traces/{}", other.hex_trace()), header);
        assert_eq!(
            code, 404,
            "{} must not see {}'s trace: {body}",
            t.name, other.name
        );
        let (code, _) = s.get_json(&format!("/api/v2/traces/{}", other.hex_trace()), header);
        assert_eq!(code, 404);
    }

    // Loki: a selector matching every tenant's service returns only this one's line.
    let range = format!("start={}&end={}", at - 60_000_000_000, at + 60_000_000_000);
    let q = enc(r#"{service_name=~"svc-.*"}"#);
    let body = get(&format!("/loki/api/v1/query_range?query={q}&{range}"));
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{} sees one stream: {body}", t.name);
    assert_eq!(result[0]["stream"]["service_name"], t.service());
    assert_eq!(result[0]["stream"]["trace_id"], t.hex_trace());
    assert_eq!(result[0]["values"], json!([[at.to_string(), t.line()]]));
    let labels = strings(&get(&format!("/loki/api/v1/labels?{range}"))["data"]);
    assert_eq!(
        labels,
        ["k8s_namespace_name", "service_name"]
            .map(String::from)
            .into()
    );
    let values = strings(
        &get(&format!(
            "/loki/api/v1/label/k8s_namespace_name/values?{range}"
        ))["data"],
    );
    assert_eq!(values, [format!("ns-{}", t.name)].into());
    let values = strings(&get(&format!("/loki/api/v1/label/service_name/values?{range}"))["data"]);
    assert_eq!(values, [t.service()].into());

    // Prometheus: series, labels, label values and queries.
    // (k8s.namespace.name is not identifying, so it goes to target_info.)
    let body = get(&format!(
        "/api/v1/series?match[]={}",
        enc(r#"{__name__=~".+"}"#)
    ));
    let series = body["data"].as_array().unwrap();
    let names: BTreeSet<String> = series
        .iter()
        .map(|s| s["__name__"].as_str().unwrap().into())
        .collect();
    assert_eq!(
        names,
        ["target_info", "tenant_probe"].map(String::from).into(),
        "{}: {body}",
        t.name
    );
    assert_eq!(series.len(), 2, "{}: {body}", t.name);
    for s in series {
        assert_eq!(s["job"], t.service(), "{s}");
    }
    let probe = series
        .iter()
        .find(|s| s["__name__"] == "tenant_probe")
        .unwrap();
    assert_eq!(probe[t.own_label()], "true");
    let info = series
        .iter()
        .find(|s| s["__name__"] == "target_info")
        .unwrap();
    assert_eq!(info["k8s_namespace_name"], format!("ns-{}", t.name));
    let labels = strings(&get("/api/v1/labels")["data"]);
    let want = ["__name__", "job", "k8s_namespace_name"].map(String::from);
    assert_eq!(labels, want.into_iter().chain([t.own_label()]).collect());
    assert_eq!(
        strings(&get("/api/v1/label/job/values")["data"]),
        [t.service()].into()
    );
    let values = strings(&get("/api/v1/label/k8s_namespace_name/values")["data"]);
    assert_eq!(values, [format!("ns-{}", t.name)].into());
    let time = format!("{}.{:03}", at / 1_000_000_000, at / 1_000_000 % 1000);
    let body = get(&format!("/api/v1/query?query=tenant_probe&time={time}"));
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{}: {body}", t.name);
    assert_eq!(result[0]["value"][1], t.value.to_string());
    assert_eq!(result[0]["metric"]["job"], t.service());
}

#[test]
fn each_tenant_sees_only_its_own_data() {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::start(dir.path(), &[]);
    let at = now_ns();
    for t in &TENANTS {
        write(&s, t, at);
    }
    for t in &TENANTS {
        check(&s, t, t.header, at);
    }
    // Naming the default tenant explicitly is the same as sending no header.
    check(&s, &TENANTS[2], Some("default"), at);
}

#[test]
fn an_unknown_tenant_sees_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::start(dir.path(), &[]);
    let at = now_ns();
    write(&s, &TENANTS[0], at);
    let nobody = Some("team-z");
    let (code, _) = s.get_json(&format!("/api/traces/{}", TENANTS[0].hex_trace()), nobody);
    assert_eq!(code, 404);
    let range = format!("start={}&end={}", at - 60_000_000_000, at + 60_000_000_000);
    let q = enc(r#"{service_name="svc-team-a"}"#);
    let (code, body) = s.get_json(
        &format!("/loki/api/v1/query_range?query={q}&{range}"),
        nobody,
    );
    assert_eq!((code, &body["data"]["result"]), (200, &json!([])), "{body}");
    let (_, body) = s.get_json(&format!("/loki/api/v1/labels?{range}"), nobody);
    assert_eq!(body["data"], json!([]));
    let (_, body) = s.get_json(
        &format!("/api/v1/series?match[]={}", enc("tenant_probe")),
        nobody,
    );
    assert_eq!(body["data"], json!([]));
    let (_, body) = s.get_json("/api/v1/labels", nobody);
    assert_eq!(body["data"], json!([]));
    let (_, body) = s.get_json("/api/v1/query?query=tenant_probe", nobody);
    assert_eq!(body["data"]["result"], json!([]));
    // The writer still sees it.
    let (code, _) = s.get_json(
        &format!("/api/traces/{}", TENANTS[0].hex_trace()),
        Some("team-a"),
    );
    assert_eq!(code, 200);
}
