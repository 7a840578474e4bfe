//! The OpenTelemetry Python SDK sends spans, logs and metrics over OTLP/HTTP (plain and gzip) and
//! OTLP/gRPC; every value it reports sending is read back exactly through the Tempo, Loki and
//! Prometheus APIs.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::codec::{b64, enc, unhex};
use common::read::{decode_trace, loki_streams, trace_response};
use common::{client, eventually, now_ns, run_sdk_script, Seam};
use seam_model::otlp::common::v1::any_value::Value as Any;
use seam_model::otlp::trace::v1::Span;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn python_sdk_over_http() {
    run("http", Some("sdk-http"));
}

#[test]
fn python_sdk_over_http_gzip() {
    run("http-gzip", None);
}

#[test]
fn python_sdk_over_grpc() {
    run("grpc", Some("sdk-grpc"));
}

/// Runs `emit_otel.py` against a fresh Seam and checks every API against its report.
fn run(protocol: &str, tenant: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::start(dir.path(), &[]);
    let run_id = format!("{protocol}-{}-{}", std::process::id(), now_ns());
    let endpoint = if protocol == "grpc" {
        s.otlp_grpc.clone()
    } else {
        s.otlp_http.clone()
    };
    let mut args = vec![
        "--protocol",
        protocol,
        "--endpoint",
        &endpoint,
        "--run-id",
        &run_id,
    ];
    if let Some(t) = tenant {
        args.extend(["--tenant", t]);
    }
    let report = run_sdk_script(&s, "emit_otel.py", &args);
    assert_eq!(report["service"], format!("pysdk-{run_id}"));
    let c = Check {
        s: &s,
        tenant,
        r: &report,
    };
    c.traces_json();
    c.traces_protobuf();
    c.logs();
    c.metrics();
}

struct Check<'a> {
    s: &'a Seam,
    tenant: Option<&'a str>,
    r: &'a Value,
}

fn text(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
}

/// A report attribute value in the OTLP/JSON form Tempo answers (int64 as a string).
fn otlp_value(v: &Value) -> Value {
    match v {
        Value::String(s) => json!({"stringValue": s}),
        Value::Bool(b) => json!({"boolValue": b}),
        Value::Number(n) if n.is_i64() => json!({"intValue": n.to_string()}),
        Value::Number(n) => json!({"doubleValue": n.as_f64().unwrap()}),
        Value::Array(a) => {
            json!({"arrayValue": {"values": a.iter().map(otlp_value).collect::<Vec<_>>()}})
        }
        other => panic!("unexpected attribute value {other}"),
    }
}

/// Report attributes as an OTLP attribute list, sorted by key (the report's JSON object lost the
/// order they were set in).
fn otlp_attributes(attrs: &Value) -> Value {
    let attrs = attrs.as_object().unwrap();
    Value::Array(
        attrs
            .iter()
            .map(|(k, v)| json!({"key": k, "value": otlp_value(v)}))
            .collect(),
    )
}

/// An attribute list sorted by key.
fn by_key(list: &Value) -> Value {
    let mut v = list
        .as_array()
        .unwrap_or_else(|| panic!("an attribute list, got {list}"))
        .clone();
    v.sort_by(|a, b| text(&a["key"]).cmp(text(&b["key"])));
    Value::Array(v)
}

/// The spans of a Tempo JSON `resourceSpans` list, by name, with their resource and scope.
fn spans_by_name(batches: &Value) -> BTreeMap<String, (Value, Value, Value)> {
    let mut out = BTreeMap::new();
    for rs in batches.as_array().expect("resourceSpans array") {
        for ss in rs["scopeSpans"].as_array().expect("scopeSpans array") {
            for sp in ss["spans"].as_array().expect("spans array") {
                let name = text(&sp["name"]).to_string();
                let prev = out.insert(
                    name.clone(),
                    (sp.clone(), rs["resource"].clone(), ss["scope"].clone()),
                );
                assert!(prev.is_none(), "span {name:?} returned twice: {batches}");
            }
        }
    }
    out
}

impl Check<'_> {
    fn get(&self, path: &str) -> (u16, Value) {
        self.s.get_json(path, self.tenant)
    }

    fn service(&self) -> &str {
        text(&self.r["service"])
    }

    fn trace_id(&self) -> &str {
        text(&self.r["trace_id"])
    }

    fn traces_json(&self) {
        let r = self.r;
        let id = self.trace_id();
        let path = format!("/api/traces/{id}");
        let body = eventually(WAIT, || {
            let (code, body) = self.get(&path);
            (code == 200 && spans_by_name(&body["batches"]).len() == 2).then_some(body)
        })
        .unwrap_or_else(|| panic!("trace {id} never showed both spans: {:?}", self.get(&path)));
        let spans = spans_by_name(&body["batches"]);
        let (root_def, child_def) = (&r["spans"][0], &r["spans"][1]);
        let (root, resource, scope) = &spans[text(&root_def["name"])];
        assert_eq!(root["traceId"], b64(&unhex(id)));
        assert_eq!(root["spanId"], b64(&unhex(text(&root_def["span_id"]))));
        assert_eq!(root["kind"], "SPAN_KIND_SERVER");
        assert_eq!(
            root.get("parentSpanId"),
            None,
            "the root has no parent: {root}"
        );
        assert_eq!(
            by_key(&root["attributes"]),
            otlp_attributes(&r["root_attributes"]),
            "root attributes"
        );
        assert!(root.get("events").is_none(), "{root}");
        let service_attr = json!({"key": "service.name", "value": {"stringValue": self.service()}});
        assert!(
            resource["attributes"]
                .as_array()
                .unwrap()
                .contains(&service_attr),
            "{resource}"
        );
        assert_eq!(
            scope,
            &json!({"name": "seam-test.tracer", "version": "1.0"})
        );
        let start: u64 = text(&root["startTimeUnixNano"]).parse().unwrap();
        let end: u64 = text(&root["endTimeUnixNano"]).parse().unwrap();
        assert!(start > 1_600_000_000_000_000_000 && end >= start, "{root}");

        let (child, _, _) = &spans[text(&child_def["name"])];
        assert_eq!(child["traceId"], b64(&unhex(id)));
        assert_eq!(child["spanId"], b64(&unhex(text(&child_def["span_id"]))));
        assert_eq!(child["parentSpanId"], root["spanId"]);
        assert_eq!(child["kind"], "SPAN_KIND_CLIENT");
        assert_eq!(
            child["attributes"],
            json!([{"key": "db.system", "value": {"stringValue": "postgresql"}}])
        );
        assert_eq!(
            child["status"],
            json!({"code": "STATUS_CODE_ERROR", "message": r["status_message"]})
        );
        let events = child["events"].as_array().expect("child events");
        assert_eq!(events.len(), 1, "{child}");
        assert_eq!(events[0]["name"], r["event"]["name"]);
        assert_eq!(
            by_key(&events[0]["attributes"]),
            otlp_attributes(&r["event"]["attributes"])
        );
        let at: u64 = text(&events[0]["timeUnixNano"]).parse().unwrap();
        assert!(
            at >= start && at <= end,
            "event time {at} outside the trace"
        );

        // v2: the same spans, wrapped as Tempo 2.x wraps them.
        let (code, v2) = self.get(&format!("/api/v2/traces/{id}"));
        assert_eq!(code, 200, "{v2}");
        assert_eq!(v2["status"], "COMPLETE");
        assert_eq!(
            v2.as_object().unwrap().len(),
            2,
            "only trace and status: {v2}"
        );
        assert_eq!(spans_by_name(&v2["trace"]["resourceSpans"]), spans);

        // An unknown id is a 404, in both versions, and only in this tenant's view.
        for p in ["/api/traces/", "/api/v2/traces/"] {
            let (code, body) = self.get(&format!("{p}0123456789abcdef0123456789abcdef"));
            assert_eq!(code, 404, "{body}");
        }
    }

    fn traces_protobuf(&self) {
        let id = self.trace_id();
        let resp = trace_response(&client(), &self.s.api, id, self.tenant);
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/protobuf");
        let trace = decode_trace(resp);
        let spans: BTreeMap<&str, &Span> = trace.spans().map(|s| (s.name.as_str(), s)).collect();
        assert_eq!(spans.len(), 2);
        let (root_def, child_def) = (&self.r["spans"][0], &self.r["spans"][1]);
        let root = spans[text(&root_def["name"])];
        let child = spans[text(&child_def["name"])];
        assert_eq!(root.trace_id, unhex(id));
        assert_eq!(root.span_id, unhex(text(&root_def["span_id"])));
        assert_eq!(root.kind, 2, "SPAN_KIND_SERVER");
        assert!(root.parent_span_id.is_empty());
        let code = root
            .attributes
            .iter()
            .find(|kv| kv.key == "http.response.status_code")
            .unwrap();
        assert_eq!(code.value.as_ref().unwrap().value, Some(Any::IntValue(200)));
        let ratio = root
            .attributes
            .iter()
            .find(|kv| kv.key == "seam.ratio")
            .unwrap();
        assert_eq!(
            ratio.value.as_ref().unwrap().value,
            Some(Any::DoubleValue(0.25))
        );
        assert_eq!(child.span_id, unhex(text(&child_def["span_id"])));
        assert_eq!(child.parent_span_id, root.span_id);
        assert_eq!(child.kind, 3, "SPAN_KIND_CLIENT");
        let status = child.status.as_ref().expect("child status");
        assert_eq!(
            (status.code, status.message.as_str()),
            (2, text(&self.r["status_message"]))
        );
        assert_eq!(child.events.len(), 1);
        assert_eq!(child.events[0].name, "retry");
    }

    /// `query_range` over the last ten minutes: (stream labels, [(ts, line)]) per result stream.
    fn loki(&self, query: &str, extra: &str) -> Vec<(Value, Vec<(i64, String)>)> {
        let t0 = self.r["logs"][0]["timestamp_ns"].as_i64().unwrap();
        let (start, end) = (t0 - 600_000_000_000, t0 + 600_000_000_000);
        let path = format!(
            "/loki/api/v1/query_range?query={}&start={start}&end={end}{extra}",
            enc(query)
        );
        let (code, body) = self.get(&path);
        assert_eq!(code, 200, "{path}: {body}");
        assert_eq!(body["status"], "success");
        assert_eq!(body["data"]["resultType"], "streams");
        loki_streams(&body)
    }

    /// All lines of a query, ordered by time.
    fn loki_lines(&self, query: &str, extra: &str) -> Vec<String> {
        let mut all: Vec<(i64, String)> = self
            .loki(query, extra)
            .into_iter()
            .flat_map(|(_, v)| v)
            .collect();
        all.sort();
        all.into_iter().map(|(_, l)| l).collect()
    }

    fn logs(&self) {
        let r = self.r;
        let svc = self.service();
        let sel = format!("{{service_name=\"{svc}\"}}");
        let logs = r["logs"].as_array().unwrap();
        let lines: Vec<String> = logs.iter().map(|l| text(&l["body"]).to_string()).collect();
        let got = eventually(WAIT, || {
            let got = self.loki_lines(&sel, "");
            (got.len() >= lines.len()).then_some(got)
        });
        assert_eq!(got.as_ref(), Some(&lines), "all log lines, in time order");

        // Timestamps are the records' own, and the in-span record carries its trace and span.
        let streams = self.loki(&sel, "");
        let mut with_trace = Vec::new();
        for (labels, values) in &streams {
            assert_eq!(labels["service_name"], svc);
            for (ts, line) in values {
                let def = logs.iter().find(|l| l["body"] == line.as_str()).unwrap();
                assert_eq!(Some(*ts), def["timestamp_ns"].as_i64(), "{line}");
                assert_eq!(labels["severity_text"], def["severity_text"], "{line}");
                if labels.get("trace_id").is_some() {
                    with_trace.push((labels.clone(), line.clone()));
                }
            }
        }
        assert_eq!(
            with_trace.len(),
            1,
            "only the record inside the span has a trace id: {streams:?}"
        );
        let (labels, line) = &with_trace[0];
        assert_eq!(line, &lines[0]);
        assert_eq!(labels["trace_id"], self.trace_id());
        assert_eq!(labels["span_id"], r["spans"][1]["span_id"]);
        assert_eq!(labels["order_id"], "42");
        assert_eq!(labels["user_tier"], "gold");
        assert_eq!(
            labels["seam_run_id"], r["run_id"],
            "resource attributes are metadata too"
        );

        // Line filters.
        assert_eq!(
            self.loki_lines(&format!("{sel} |= \"placed\""), ""),
            vec![lines[0].clone()]
        );
        assert_eq!(
            self.loki_lines(&format!("{sel} != \"placed\""), ""),
            lines[1..].to_vec()
        );
        assert_eq!(
            self.loki_lines(&format!("{sel} |= \"\\\"amount\\\": 12.5\""), ""),
            vec![lines[1].clone()]
        );

        // Direction and limit: the two records outside the span share a stream.
        let only = |extra: &str| -> Vec<String> {
            self.loki(&sel, extra)
                .into_iter()
                .flat_map(|(_, v)| v)
                .map(|(_, l)| l)
                .collect()
        };
        assert_eq!(only("&direction=forward&limit=1"), vec![lines[0].clone()]);
        assert_eq!(only("&direction=backward&limit=1"), vec![lines[2].clone()]);
        assert_eq!(
            only("&limit=1"),
            vec![lines[2].clone()],
            "backward is the default"
        );
        let shared = |extra: &str| -> Vec<String> {
            let streams = self.loki(&format!("{sel} != \"placed\""), extra);
            assert_eq!(streams.len(), 1, "{streams:?}");
            streams[0].1.iter().map(|(_, l)| l.clone()).collect()
        };
        assert_eq!(shared("&direction=forward"), lines[1..].to_vec());
        assert_eq!(shared(""), vec![lines[2].clone(), lines[1].clone()]);

        // Labels: stream labels only (structured metadata is not a label here).
        let t0 = logs[0]["timestamp_ns"].as_i64().unwrap();
        let range = format!(
            "start={}&end={}",
            t0 - 600_000_000_000,
            t0 + 600_000_000_000
        );
        let (code, body) = self.get(&format!("/loki/api/v1/labels?{range}"));
        assert_eq!(code, 200, "{body}");
        let names: BTreeSet<&str> = body["data"].as_array().unwrap().iter().map(text).collect();
        assert!(names.contains("service_name"), "{body}");
        for md in ["trace_id", "order_id", "severity_text"] {
            assert!(
                !names.contains(md),
                "{md} is structured metadata, not a label: {body}"
            );
        }
        let (code, body) = self.get(&format!("/loki/api/v1/label/service_name/values?{range}"));
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["data"], json!([svc]));
    }

    /// An instant query's single sample value, keyed by the `le` label when there are several.
    fn prom(&self, query: &str) -> BTreeMap<String, String> {
        let path = format!("/api/v1/query?query={}", enc(query));
        let (code, body) = self.get(&path);
        assert_eq!(code, 200, "{path}: {body}");
        assert_eq!(body["data"]["resultType"], "vector");
        body["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                assert_eq!(s["metric"]["job"], self.service(), "{s}");
                let le = s["metric"]
                    .get("le")
                    .map(|v| text(v).to_string())
                    .unwrap_or_default();
                (le, text(&s["value"][1]).to_string())
            })
            .collect()
    }

    fn metrics(&self) {
        let m = &self.r["metrics"];
        let svc = self.service();
        let counter = format!("{}_total", text(&m["counter"]["name"]));
        let hist = format!("{}_seconds", text(&m["histogram"]["name"]));
        let updown = text(&m["updown"]["name"]).to_string();
        let expected_names: BTreeSet<String> = [
            counter.clone(),
            format!("{hist}_bucket"),
            format!("{hist}_sum"),
            format!("{hist}_count"),
            updown.clone(),
            "target_info".to_string(),
        ]
        .into();
        let path = format!(
            "/api/v1/series?match[]={}",
            enc(&format!("{{job=\"{svc}\"}}"))
        );
        let series = eventually(WAIT, || {
            let (code, body) = self.get(&path);
            let series = body["data"].as_array().cloned().unwrap_or_default();
            let names: BTreeSet<String> = series
                .iter()
                .map(|s| text(&s["__name__"]).to_string())
                .collect();
            (code == 200 && names == expected_names).then_some(series)
        })
        .unwrap_or_else(|| {
            panic!(
                "series never matched {expected_names:?}: {:?}",
                self.get(&path)
            )
        });
        let les: BTreeSet<&str> = series
            .iter()
            .filter(|s| s["__name__"] == format!("{hist}_bucket"))
            .map(|s| text(&s["le"]))
            .collect();
        let want_les: BTreeSet<&str> = m["histogram"]["buckets"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(les, want_les);
        let counter_series = series
            .iter()
            .find(|s| s["__name__"] == counter.as_str())
            .unwrap();
        assert_eq!(counter_series["route"], m["counter"]["attributes"]["route"]);
        assert_eq!(counter_series["otel_scope_name"], "seam-test.meter");
        assert!(
            counter_series.get("instance").is_some(),
            "service.instance.id becomes instance"
        );

        let one = |q: String| -> String {
            let v = self.prom(&q);
            assert_eq!(v.len(), 1, "{q}: {v:?}");
            v.into_values().next().unwrap()
        };
        let sel = format!("{{job=\"{svc}\"}}");
        assert_eq!(
            one(format!("{counter}{sel}")),
            m["counter"]["value"].to_string()
        );
        assert_eq!(
            one(format!("{updown}{sel}")),
            m["updown"]["value"].to_string()
        );
        assert_eq!(
            one(format!("{hist}_count{sel}")),
            m["histogram"]["count"].to_string()
        );
        let sum: f64 = one(format!("{hist}_sum{sel}")).parse().unwrap();
        assert_eq!(sum, m["histogram"]["sum"].as_f64().unwrap());
        let buckets = self.prom(&format!("{hist}_bucket{sel}"));
        let want: BTreeMap<String, String> = m["histogram"]["buckets"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        assert_eq!(buckets, want, "cumulative bucket counts");

        let (code, body) = self.get("/api/v1/labels");
        assert_eq!(code, 200, "{body}");
        let labels: BTreeSet<&str> = body["data"].as_array().unwrap().iter().map(text).collect();
        for l in [
            "__name__",
            "job",
            "instance",
            "le",
            "route",
            "otel_scope_name",
            "otel_scope_version",
        ] {
            assert!(labels.contains(l), "{l} missing from {body}");
        }
        let (code, body) = self.get("/api/v1/label/__name__/values");
        assert_eq!(code, 200, "{body}");
        let names: BTreeSet<String> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| text(v).to_string())
            .collect();
        assert_eq!(names, expected_names);
    }
}
