//! One flow's spans and log records: Beorn's call, MDSO's collector plan and device calls,
//! Arda's lookup, and the truth lines of its traces and true links.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use seam_model::attributes::{int_kv, string_kv};
use seam_model::otlp::common::v1::{any_value, AnyValue, ArrayValue, KeyValue};
use seam_model::otlp::logs::v1::{LogRecord, SeverityNumber};
use seam_model::otlp::trace::v1::span::SpanKind;
use serde_json::json;

use super::{hex, FlowPlan, Generator, Item, Record, SpanPlan, Svc, MS};

impl Generator {
    pub(super) fn emit_flow(
        &mut self,
        heap: &mut BinaryHeap<Reverse<Item>>,
        f: FlowPlan,
    ) -> anyhow::Result<()> {
        let instance = self.next_instance;
        self.next_instance += 1;
        let c = f.circuit.as_str();
        let resource_id = self.uuid();
        // Durations, inside out: Arda, then MDSO's calls around it, then Beorn's call around MDSO.
        let arda_dur = self.ms(40, 120);
        let dev1 = self.ms(30, 80);
        let call_pad = self.ms(3, 10);
        let arda_call = arda_dur + 2 * call_pad;
        let dev2 = self.ms(30, 80);
        let gaps = [
            self.ms(5, 15),
            self.ms(5, 15),
            self.ms(5, 15),
            self.ms(5, 15),
        ];
        let mdso_dur = gaps.iter().sum::<i64>() + dev1 + arda_call + dev2;
        let beorn_call_pad = self.ms(5, 25);
        let beorn_call = mdso_dur + 2 * beorn_call_pad;
        let beorn_pad = self.ms(15, 40);
        let beorn_dur = beorn_call + 2 * beorn_pad + self.ms(0, 30);

        let mut late = false;
        let mut keyless = false;
        let t0 = f.real0;

        // Beorn.
        let beorn_trace = self.id::<16>();
        let b_root = self.id::<8>().to_vec();
        let b_call = self.id::<8>().to_vec();
        let call0 = t0 + beorn_pad;
        let call1 = call0 + beorn_call;
        let mut spans = vec![
            (
                b_root.clone(),
                SpanPlan {
                    name: "beorn.create_network_service".into(),
                    kind: SpanKind::Server,
                    start: t0,
                    end: t0 + beorn_dur,
                    parent: Vec::new(),
                    attrs: vec![
                        string_kv("http.request.method", "POST"),
                        string_kv("http.route", "/api/v1/network-services"),
                        int_kv("http.response.status_code", 201),
                    ],
                },
            ),
            (
                b_call.clone(),
                SpanPlan {
                    name: "POST /bpocore/market/api/v1/resources".into(),
                    kind: SpanKind::Client,
                    start: call0,
                    end: call1,
                    parent: b_root.clone(),
                    attrs: vec![
                        string_kv("http.request.method", "POST"),
                        string_kv(
                            "url.full",
                            "http://mdso:8181/bpocore/market/api/v1/resources",
                        ),
                        string_kv("server.address", "mdso"),
                        int_kv("http.response.status_code", 202),
                        string_kv("circuit_id", c),
                        string_array_kv("http.request.header.x_circuit_id", &[c]),
                    ],
                },
            ),
        ];
        keyless |= self.keyless_child(&mut spans, Svc::Beorn, &b_root, t0, call0);
        late |= self.emit_trace(heap, Svc::Beorn, beorn_trace, f.shift, spans);

        // MDSO: the scriptplan, two device calls and the call to Arda.
        let mdso_trace = self.id::<16>();
        let m_root = self.id::<8>().to_vec();
        let m0 = call0 + beorn_call_pad;
        let m1 = m0 + mdso_dur;
        let d1 = m0 + gaps[0];
        let a0 = d1 + dev1 + gaps[1];
        let d2 = a0 + arda_call + gaps[2];
        let device = format!("ne-{}", &resource_id[..4]);
        let m_arda = self.id::<8>().to_vec();
        let (m_d1, m_d2) = (self.id::<8>().to_vec(), self.id::<8>().to_vec());
        let mut spans = vec![
            (
                m_root.clone(),
                SpanPlan {
                    name: "CircuitDetailsCollector".into(),
                    kind: SpanKind::Server,
                    start: m0,
                    end: m1,
                    parent: Vec::new(),
                    attrs: vec![
                        string_kv("scriptplan", "CircuitDetailsCollector"),
                        string_kv("circuit_id", c),
                        string_kv("resource_id", &resource_id),
                    ],
                },
            ),
            (
                m_d1,
                SpanPlan {
                    name: "device.get_interfaces".into(),
                    kind: SpanKind::Client,
                    start: d1,
                    end: d1 + dev1,
                    parent: m_root.clone(),
                    attrs: vec![
                        string_kv("device.name", &device),
                        string_kv("rpc.system", "netconf"),
                    ],
                },
            ),
            (
                m_arda.clone(),
                SpanPlan {
                    name: "GET /api/v3/topologies/{circuit_id}".into(),
                    kind: SpanKind::Client,
                    start: a0,
                    end: a0 + arda_call,
                    parent: m_root.clone(),
                    attrs: vec![
                        string_kv("http.request.method", "GET"),
                        string_kv(
                            "url.full",
                            &format!("http://arda:8000/api/v3/topologies/{c}"),
                        ),
                        string_kv("server.address", "arda"),
                        int_kv("http.response.status_code", 200),
                    ],
                },
            ),
            (
                m_d2,
                SpanPlan {
                    name: "device.get_config".into(),
                    kind: SpanKind::Client,
                    start: d2,
                    end: d2 + dev2,
                    parent: m_root.clone(),
                    attrs: vec![
                        string_kv("device.name", &device),
                        string_kv("rpc.system", "netconf"),
                    ],
                },
            ),
        ];
        keyless |= self.keyless_child(&mut spans, Svc::Mdso, &m_root, m0, d1);
        late |= self.emit_trace(heap, Svc::Mdso, mdso_trace, f.shift, spans);

        // MDSO's log lines: no trace id, the keys in the text.
        let mdso_off = self.wall0 + f.shift + self.skew_ns[Svc::Mdso as usize];
        for (t, state) in [(m0 + MS, "running"), (m1, "completed")] {
            let body = format!(
                "mdso[2817]: INFO scriptplan=CircuitDetailsCollector circuit_id={c} resource_id={resource_id} state={state}"
            );
            let rec = LogRecord {
                time_unix_nano: (mdso_off + t) as u64,
                observed_time_unix_nano: (mdso_off + t) as u64,
                severity_number: SeverityNumber::Info as i32,
                severity_text: "INFO".into(),
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(body)),
                }),
                ..Default::default()
            };
            self.counts.logs += 1;
            late |= self.schedule(heap, Svc::Mdso, t, Record::Log(rec));
        }

        // Arda.
        let arda_trace = self.id::<16>();
        let r_root = self.id::<8>().to_vec();
        let r0 = a0 + call_pad;
        let r1 = r0 + arda_dur;
        let mut spans = vec![(
            r_root.clone(),
            SpanPlan {
                name: "arda.get_topology".into(),
                kind: SpanKind::Server,
                start: r0,
                end: r1,
                parent: Vec::new(),
                attrs: vec![
                    string_kv("http.request.method", "GET"),
                    string_kv("http.route", "/api/v3/topologies/{circuit_id}"),
                    string_kv("url.path", &format!("/api/v3/topologies/{c}")),
                    string_kv("circuit_id", c),
                    int_kv("http.response.status_code", 200),
                ],
            },
        )];
        keyless |= self.keyless_child(&mut spans, Svc::Arda, &r_root, r0, r1);
        late |= self.emit_trace(heap, Svc::Arda, arda_trace, f.shift, spans);

        // Truth.
        let mut noise = f.noise;
        if late {
            noise.push("late");
        }
        if keyless {
            noise.push("keyless");
        }
        for (svc, t) in [
            (Svc::Beorn, &beorn_trace),
            (Svc::Mdso, &mdso_trace),
            (Svc::Arda, &arda_trace),
        ] {
            self.line(
                json!({"kind": "trace", "trace_id": hex(t), "service": svc.name(),
                "flow": instance, "circuit_id": c}),
            )?;
        }
        for (up, us, down, ds) in [
            (&beorn_trace, Svc::Beorn, &mdso_trace, Svc::Mdso),
            (&mdso_trace, Svc::Mdso, &arda_trace, Svc::Arda),
        ] {
            self.line(json!({"kind": "link", "upstream_trace_id": hex(up),
                "downstream_trace_id": hex(down), "key": "circuit_id", "value": c,
                "upstream_service": us.name(), "downstream_service": ds.name(),
                "flow": instance, "noise": noise}))?;
        }
        Ok(())
    }
}

fn string_array_kv(key: &str, values: &[&str]) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue {
                values: values
                    .iter()
                    .map(|v| AnyValue {
                        value: Some(any_value::Value::StringValue(v.to_string())),
                    })
                    .collect(),
            })),
        }),
        ..Default::default()
    }
}
