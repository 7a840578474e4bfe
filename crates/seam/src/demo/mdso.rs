//! `seam demo mdso`: the Beorn -> MDSO -> Arda flow, three unrelated traces per flow, with noise.
//!
//! # How a flow is timed
//! Flow `i` starts `i / rate` seconds into the run, with timestamps at the wall clock (plus the
//! service's clock skew, plus the reuse shift). Beorn's SERVER root contains its CLIENT call to
//! MDSO; MDSO's `CircuitDetailsCollector` root starts inside that call and makes two device calls
//! and a CLIENT call to Arda; Arda's SERVER root starts inside that call. A flow lasts about
//! 0.3–1 s.
//!
//! # How spans are sent
//! Each span becomes due when it ends plus an exporter delay (0–100 ms), like a batch span
//! processor; noise may hold it longer (`--out-of-order`, `--late-ms`). Every 50 ms the due spans
//! and log records are packed into OTLP/HTTP protobuf requests (at most `--batch` records each,
//! many flows per request) and posted by at most `--concurrency` requests in flight. 429 and 503
//! are retried after `Retry-After`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seam_model::attributes::{int_kv, string_kv};
use seam_model::otlp::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use seam_model::otlp::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use seam_model::otlp::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use seam_model::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use seam_model::otlp::resource::v1::Resource;
use seam_model::otlp::trace::v1::span::SpanKind;
use seam_model::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::http::{error_message, Http};

/// Arguments of `seam demo mdso`. The noise defaults are the default noise profile.
#[derive(clap::Args, Debug)]
pub struct MdsoArgs {
    /// Base URL of Seam's OTLP/HTTP receiver, e.g. http://127.0.0.1:4318
    #[arg(long = "otlp-http")]
    pub otlp_http: String,
    /// Flows to generate (concurrent twins come on top).
    #[arg(long, default_value_t = 100)]
    pub flows: usize,
    /// Flows started per second.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Seed of every random choice: the same seed gives the same ids and the same noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write the true links and every generated trace id (JSON lines; see the module doc
    /// of `seam demo`).
    #[arg(long)]
    pub truth: PathBuf,
    /// Tenant (sent as X-Scope-OrgID).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Fraction of flows that get a second, concurrent flow on the same circuit, started 3–8 s
    /// later (so timing tells the two apart).
    #[arg(long, default_value_t = 0.05)]
    pub concurrent_same_circuit: f64,
    /// Fraction of flows that reuse the circuit id of an earlier flow. Their timestamps are
    /// shifted forward by --reuse-after seconds (instead of waiting), beyond the correlation
    /// window, so the two must not be linked.
    #[arg(long, default_value_t = 0.05)]
    pub reuse_circuits: f64,
    /// How far, in seconds, a reused circuit's flow is shifted after the original.
    #[arg(long, default_value_t = 120.0)]
    pub reuse_after: f64,
    /// Keyless noise: the chance, per trace, of an extra child span without any key, and per
    /// flow, of an extra unrelated trace without keys (a health check, a housekeeping plan).
    #[arg(long, default_value_t = 0.2)]
    pub keyless_spans: f64,
    /// Each service's clock is off by a fixed random amount up to ± this many milliseconds.
    #[arg(long, default_value_t = 200)]
    pub clock_skew_ms: u64,
    /// Shuffle the send order: each span is held a further random 0–--reorder-ms ms (a bounded
    /// reorder buffer), so a downstream segment sometimes arrives before its upstream and a trace's
    /// spans arrive split over several requests. `--out-of-order false` turns it off.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub out_of_order: bool,
    /// The reorder buffer's bound, in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub reorder_ms: u64,
    /// Late delivery: 10% of the spans and log records are delayed by a random 0–N ms more.
    #[arg(long, default_value_t = 500)]
    pub late_ms: u64,
    /// Fraction of requests sent a second time, 0.1–1 s later (duplicate delivery).
    #[arg(long, default_value_t = 0.02)]
    pub duplicates: f64,
    /// Most records (spans or log records) per request.
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    /// Most requests in flight.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

const MS: i64 = 1_000_000;
const TICK: Duration = Duration::from_millis(50);
/// The share of records that get the `--late-ms` delay.
const LATE_SHARE: f64 = 0.1;
/// Attempts per request before it is given up (429/503 and transport errors).
const MAX_ATTEMPTS: u32 = 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Svc {
    Beorn = 0,
    Mdso = 1,
    Arda = 2,
}

impl Svc {
    const ALL: [Svc; 3] = [Svc::Beorn, Svc::Mdso, Svc::Arda];

    fn name(self) -> &'static str {
        match self {
            Svc::Beorn => "beorn",
            Svc::Mdso => "mdso",
            Svc::Arda => "arda",
        }
    }

    fn resource(self) -> Resource {
        let (version, lang, ns) = match self {
            Svc::Beorn => ("4.12.0", "python", "provisioning"),
            Svc::Mdso => ("23.08.1", "java", "orchestration"),
            Svc::Arda => ("2.3.5", "python", "inventory"),
        };
        Resource {
            attributes: vec![
                string_kv("service.name", self.name()),
                string_kv("service.namespace", ns),
                string_kv("service.version", version),
                string_kv("service.instance.id", &format!("{}-0", self.name())),
                string_kv("deployment.environment.name", "demo"),
                string_kv("telemetry.sdk.language", lang),
            ],
            ..Default::default()
        }
    }

    fn scope(self) -> InstrumentationScope {
        let name = match self {
            Svc::Beorn => "opentelemetry.instrumentation.flask",
            Svc::Mdso => "mdso.scriptplan",
            Svc::Arda => "opentelemetry.instrumentation.fastapi",
        };
        InstrumentationScope {
            name: name.into(),
            version: "0.48b0".into(),
            ..Default::default()
        }
    }
}

/// What one scheduled record is.
enum Record {
    Span(Span),
    Log(LogRecord),
}

/// A record waiting for its send time.
struct Item {
    due_ns: i64,
    seq: u64,
    svc: Svc,
    record: Record,
}

impl PartialEq for Item {
    fn eq(&self, o: &Item) -> bool {
        (self.due_ns, self.seq) == (o.due_ns, o.seq)
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Item) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    fn cmp(&self, o: &Item) -> std::cmp::Ordering {
        (self.due_ns, self.seq).cmp(&(o.due_ns, o.seq))
    }
}

/// Counts for the summary.
#[derive(Default)]
struct Counts {
    flows: u64,
    twins: u64,
    reused: u64,
    traces: u64,
    keyless_traces: u64,
    spans: u64,
    logs: u64,
}

/// Makes flows: ids, times, noise decisions, truth lines. Deterministic for a seed.
struct Generator {
    rng: StdRng,
    wall0: i64,
    skew_ns: [i64; 3],
    flows: usize,
    rate: f64,
    p_twin: f64,
    p_reuse: f64,
    reuse_shift_ns: i64,
    p_keyless: f64,
    reorder_ns: i64,
    late_ns: i64,
    /// Circuits of earlier flows that may still be reused (each at most once).
    reusable: Vec<String>,
    next_instance: u64,
    seq: u64,
    truth: BufWriter<File>,
    counts: Counts,
}

/// One flow instance to emit.
struct FlowPlan {
    circuit: String,
    real0: i64,
    shift: i64,
    noise: Vec<&'static str>,
}

/// A span under construction, in real (unskewed, unshifted) nanoseconds from the run start.
struct SpanPlan {
    name: String,
    kind: SpanKind,
    start: i64,
    end: i64,
    parent: Vec<u8>,
    attrs: Vec<KeyValue>,
}

impl Generator {
    fn real_start(&self, i: usize) -> i64 {
        (i as f64 / self.rate * 1e9) as i64
    }

    fn uuid(&mut self) -> String {
        let b: [u8; 16] = self.rng.random();
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    fn id<const N: usize>(&mut self) -> [u8; N] {
        let mut id: [u8; N] = [0; N];
        self.rng.fill(&mut id[..]);
        id[N - 1] |= 1;
        id
    }

    fn ms(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.random_range(lo * MS..hi * MS)
    }

    fn line(&mut self, v: serde_json::Value) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.truth, &v)?;
        self.truth.write_all(b"\n")?;
        Ok(())
    }

    /// Schedules `rec` (of `svc`, ending at real time `end`) and returns whether it was made late.
    fn schedule(
        &mut self,
        heap: &mut BinaryHeap<Reverse<Item>>,
        svc: Svc,
        end: i64,
        record: Record,
    ) -> bool {
        let mut due = end + self.ms(0, 100);
        if self.reorder_ns > 0 {
            due += self.rng.random_range(0..self.reorder_ns);
        }
        let late = self.late_ns > 0 && self.rng.random_bool(LATE_SHARE);
        if late {
            due += self.rng.random_range(0..self.late_ns);
        }
        self.seq += 1;
        heap.push(Reverse(Item {
            due_ns: due,
            seq: self.seq,
            svc,
            record,
        }));
        late
    }

    /// Turns planned spans into OTLP spans of one trace and schedules them; returns whether any
    /// was made late.
    fn emit_trace(
        &mut self,
        heap: &mut BinaryHeap<Reverse<Item>>,
        svc: Svc,
        trace_id: [u8; 16],
        shift: i64,
        spans: Vec<(Vec<u8>, SpanPlan)>,
    ) -> bool {
        let off = self.wall0 + shift + self.skew_ns[svc as usize];
        let mut late = false;
        for (span_id, p) in spans {
            let span = Span {
                trace_id: trace_id.to_vec(),
                span_id,
                parent_span_id: p.parent,
                name: p.name,
                kind: p.kind as i32,
                start_time_unix_nano: (off + p.start) as u64,
                end_time_unix_nano: (off + p.end) as u64,
                attributes: p.attrs,
                status: Some(Status::default()),
                ..Default::default()
            };
            self.counts.spans += 1;
            late |= self.schedule(heap, svc, p.end, Record::Span(span));
        }
        self.counts.traces += 1;
        late
    }

    /// Generates flow `i` (and its twin or keyless noise) into `heap`.
    fn flow(&mut self, i: usize, heap: &mut BinaryHeap<Reverse<Item>>) -> anyhow::Result<()> {
        let real0 = self.real_start(i);
        let (circuit, shift, mut noise) =
            if !self.reusable.is_empty() && self.rng.random_bool(self.p_reuse) {
                let k = self.rng.random_range(0..self.reusable.len());
                let c = self.reusable.swap_remove(k);
                self.counts.reused += 1;
                (c, self.reuse_shift_ns, vec!["reused"])
            } else {
                let c = self.uuid();
                self.reusable.push(c.clone());
                (c, 0, vec![])
            };
        let twin = self.rng.random_bool(self.p_twin);
        if twin {
            noise.push("concurrent");
        }
        self.counts.flows += 1;
        self.emit_flow(
            heap,
            FlowPlan {
                circuit: circuit.clone(),
                real0,
                shift,
                noise: noise.clone(),
            },
        )?;
        if twin {
            let offset = self.ms(3000, 8000);
            self.counts.twins += 1;
            self.emit_flow(
                heap,
                FlowPlan {
                    circuit,
                    real0: real0 + offset,
                    shift,
                    noise,
                },
            )?;
        }
        if self.rng.random_bool(self.p_keyless) {
            let at = real0 + self.ms(0, 1000);
            self.keyless_trace(heap, at)?;
        }
        Ok(())
    }

    /// An unrelated trace without keys.
    fn keyless_trace(
        &mut self,
        heap: &mut BinaryHeap<Reverse<Item>>,
        real0: i64,
    ) -> anyhow::Result<()> {
        let svc = Svc::ALL[self.rng.random_range(0..3)];
        let (name, kind, attrs) = match svc {
            Svc::Beorn => (
                "GET /healthz",
                SpanKind::Server,
                vec![
                    string_kv("http.request.method", "GET"),
                    string_kv("http.route", "/healthz"),
                    int_kv("http.response.status_code", 200),
                ],
            ),
            Svc::Mdso => (
                "HousekeepingScriptplan",
                SpanKind::Internal,
                vec![string_kv("scriptplan", "HousekeepingScriptplan")],
            ),
            Svc::Arda => (
                "arda.list_topologies",
                SpanKind::Server,
                vec![
                    string_kv("http.request.method", "GET"),
                    string_kv("http.route", "/api/v3/topologies"),
                    string_kv("url.path", "/api/v3/topologies"),
                ],
            ),
        };
        let trace_id = self.id::<16>();
        let dur = self.ms(5, 150);
        let sid = self.id::<8>().to_vec();
        let spans = vec![(
            sid,
            SpanPlan {
                name: name.into(),
                kind,
                start: real0,
                end: real0 + dur,
                parent: Vec::new(),
                attrs,
            },
        )];
        self.emit_trace(heap, svc, trace_id, 0, spans);
        self.counts.keyless_traces += 1;
        self.line(
            json!({"kind": "trace", "trace_id": hex(&trace_id), "service": svc.name(),
            "flow": null, "circuit_id": null}),
        )
    }

    /// Maybe an extra keyless child of `parent` inside `[lo, hi]`.
    fn keyless_child(
        &mut self,
        spans: &mut Vec<(Vec<u8>, SpanPlan)>,
        svc: Svc,
        parent: &[u8],
        lo: i64,
        hi: i64,
    ) -> bool {
        if !self.rng.random_bool(self.p_keyless) || hi - lo < 4 * MS {
            return false;
        }
        let start = self.rng.random_range(lo..lo + (hi - lo) / 2);
        let end = self.rng.random_range(start + MS..hi);
        let (name, attrs) = match svc {
            Svc::Beorn => (
                "SELECT beorn.network_services",
                vec![
                    string_kv("db.system.name", "postgresql"),
                    string_kv("db.operation.name", "SELECT"),
                ],
            ),
            Svc::Mdso => (
                "render_template",
                vec![string_kv("template", "circuit_details.j2")],
            ),
            Svc::Arda => ("neo4j.query", vec![string_kv("db.system.name", "neo4j")]),
        };
        let sid = self.id::<8>().to_vec();
        spans.push((
            sid,
            SpanPlan {
                name: name.into(),
                kind: SpanKind::Internal,
                start,
                end,
                parent: parent.to_vec(),
                attrs,
            },
        ));
        true
    }

    fn emit_flow(
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

pub(super) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Counters shared by the send tasks.
#[derive(Default)]
struct SendStats {
    requests: AtomicU64,
    refused: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
}

/// One request body ready to post.
struct Body {
    logs: bool,
    bytes: Bytes,
}

/// Posts `body`, retrying 429/503 after Retry-After and transport errors with a backoff.
async fn post(http: Http, body: Body, stats: Arc<SendStats>) -> Result<(), String> {
    let path = if body.logs { "/v1/logs" } else { "/v1/traces" };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let r = http
            .exchange(
                Method::POST,
                path,
                Some("application/x-protobuf"),
                None,
                body.bytes.clone(),
            )
            .await;
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let pause = match r {
            Ok(a) if a.status.is_success() => {
                let rejected = if body.logs {
                    ExportLogsServiceResponse::decode(a.body)
                        .ok()
                        .and_then(|r| r.partial_success)
                        .map_or(0, |p| p.rejected_log_records)
                } else {
                    ExportTraceServiceResponse::decode(a.body)
                        .ok()
                        .and_then(|r| r.partial_success)
                        .map_or(0, |p| p.rejected_spans)
                };
                stats
                    .rejected
                    .fetch_add(rejected.max(0) as u64, Ordering::Relaxed);
                return Ok(());
            }
            Ok(a)
                if matches!(
                    a.status,
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                ) =>
            {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                if attempt >= MAX_ATTEMPTS {
                    return Err(format!(
                        "{path}: still {} after {attempt} attempts",
                        a.status
                    ));
                }
                a.retry_after
                    .unwrap_or(Duration::from_millis(200))
                    .min(Duration::from_secs(5))
            }
            Ok(a) => return Err(format!("{path}: {} {}", a.status, error_message(&a.body))),
            Err(e) => {
                if attempt >= 5 {
                    return Err(format!("{e:#}"));
                }
                Duration::from_millis(100 * u64::from(attempt))
            }
        };
        tokio::time::sleep(pause).await;
    }
}

/// Packs due items into request bodies of at most `batch` records, spans and logs apart.
fn pack(items: Vec<Item>, batch: usize) -> Vec<Body> {
    let mut out = Vec::new();
    let mut spans: Vec<(Svc, Span)> = Vec::new();
    let mut logs: Vec<LogRecord> = Vec::new();
    for it in items {
        match it.record {
            Record::Span(s) => spans.push((it.svc, s)),
            Record::Log(l) => logs.push(l),
        }
    }
    for chunk in spans.chunks(batch.max(1)) {
        let resource_spans = Svc::ALL
            .iter()
            .filter_map(|&svc| {
                let ss: Vec<Span> = chunk
                    .iter()
                    .filter(|(s, _)| *s == svc)
                    .map(|(_, sp)| sp.clone())
                    .collect();
                (!ss.is_empty()).then(|| ResourceSpans {
                    resource: Some(svc.resource()),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(svc.scope()),
                        spans: ss,
                        ..Default::default()
                    }],
                    ..Default::default()
                })
            })
            .collect();
        out.push(Body {
            logs: false,
            bytes: ExportTraceServiceRequest { resource_spans }
                .encode_to_vec()
                .into(),
        });
    }
    for chunk in logs.chunks(batch.max(1)) {
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Svc::Mdso.resource()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "mdso.syslog".into(),
                        ..Default::default()
                    }),
                    log_records: chunk.to_vec(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        out.push(Body {
            logs: true,
            bytes: req.encode_to_vec().into(),
        });
    }
    out
}

fn check_fraction(name: &str, v: f64) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&v) {
        bail!("{name} must be between 0 and 1, got {v}");
    }
    Ok(())
}

/// Runs `seam demo mdso`.
pub async fn run(args: MdsoArgs) -> anyhow::Result<()> {
    check_fraction("--concurrent-same-circuit", args.concurrent_same_circuit)?;
    check_fraction("--reuse-circuits", args.reuse_circuits)?;
    check_fraction("--keyless-spans", args.keyless_spans)?;
    check_fraction("--duplicates", args.duplicates)?;
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate must be positive, got {}", args.rate);
    }
    if !(args.reuse_after.is_finite() && args.reuse_after >= 0.0) {
        bail!(
            "--reuse-after must be a number of seconds, got {}",
            args.reuse_after
        );
    }
    if args.concurrency == 0 || args.batch == 0 {
        bail!("--concurrency and --batch must be at least 1");
    }
    let http = Http::new(&args.otlp_http, "--otlp-http", args.tenant.as_deref())?;
    // Fail fast when nothing listens.
    http.exchange(Method::GET, "/", None, None, Bytes::new())
        .await
        .with_context(|| format!("cannot reach the OTLP/HTTP receiver at {}", http.base()))?;

    let file = File::create(&args.truth)
        .with_context(|| format!("cannot create the truth file {}", args.truth.display()))?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let skew = args.clock_skew_ms as i64 * MS;
    let skew_ns = [0; 3].map(|_: i64| {
        if skew > 0 {
            rng.random_range(-skew..=skew)
        } else {
            0
        }
    });
    let mut send_rng = StdRng::seed_from_u64(args.seed ^ 0x5eed_d00d);
    let mut g = Generator {
        rng,
        wall0: now_ns(),
        skew_ns,
        flows: args.flows,
        rate: args.rate,
        p_twin: args.concurrent_same_circuit,
        p_reuse: args.reuse_circuits,
        reuse_shift_ns: (args.reuse_after * 1e9) as i64,
        p_keyless: args.keyless_spans,
        reorder_ns: if args.out_of_order {
            args.reorder_ms as i64 * MS
        } else {
            0
        },
        late_ns: args.late_ms as i64 * MS,
        reusable: Vec::new(),
        next_instance: 0,
        seq: 0,
        truth: BufWriter::new(file),
        counts: Counts::default(),
    };
    g.line(
        json!({"kind": "meta", "seed": args.seed, "flows": args.flows, "rate": args.rate,
        "concurrent_same_circuit": args.concurrent_same_circuit,
        "reuse_circuits": args.reuse_circuits, "reuse_after": args.reuse_after,
        "keyless_spans": args.keyless_spans, "clock_skew_ms": args.clock_skew_ms,
        "skew_ms": {"beorn": skew_ns[0] / MS, "mdso": skew_ns[1] / MS, "arda": skew_ns[2] / MS},
        "out_of_order": args.out_of_order, "reorder_ms": args.reorder_ms,
        "late_ms": args.late_ms, "duplicates": args.duplicates}),
    )?;

    let stats = Arc::new(SendStats::default());
    let sem = Arc::new(Semaphore::new(args.concurrency));
    let mut tasks: JoinSet<Result<(), String>> = JoinSet::new();
    let mut heap: BinaryHeap<Reverse<Item>> = BinaryHeap::new();
    let mut dups: BinaryHeap<Reverse<(i64, u64)>> = BinaryHeap::new();
    let mut dup_bodies: std::collections::HashMap<u64, Body> = Default::default();
    let mut dup_seq = 0u64;
    let mut errors: Vec<String> = Vec::new();
    let mut next_flow = 0usize;
    let start = Instant::now();
    let lookahead = TICK.as_nanos() as i64;

    loop {
        let now = start.elapsed().as_nanos() as i64;
        while next_flow < g.flows && g.real_start(next_flow) <= now + lookahead {
            g.flow(next_flow, &mut heap)?;
            next_flow += 1;
        }
        let mut due = Vec::new();
        while heap.peek().is_some_and(|Reverse(it)| it.due_ns <= now) {
            due.push(heap.pop().unwrap().0);
        }
        let mut bodies = pack(due, args.batch);
        while dups.peek().is_some_and(|Reverse((t, _))| *t <= now) {
            let Reverse((_, k)) = dups.pop().unwrap();
            if let Some(b) = dup_bodies.remove(&k) {
                stats.duplicates.fetch_add(1, Ordering::Relaxed);
                bodies.push(b);
            }
        }
        for b in bodies {
            if args.duplicates > 0.0 && send_rng.random_bool(args.duplicates) {
                dup_seq += 1;
                let at = now + send_rng.random_range(100 * MS..1000 * MS);
                dups.push(Reverse((at, dup_seq)));
                dup_bodies.insert(
                    dup_seq,
                    Body {
                        logs: b.logs,
                        bytes: b.bytes.clone(),
                    },
                );
            }
            let permit = sem.clone().acquire_owned().await?;
            let (http, stats) = (http.clone(), stats.clone());
            tasks.spawn(async move {
                let r = post(http, b, stats).await;
                drop(permit);
                r
            });
        }
        while let Some(r) = tasks.try_join_next() {
            if let Err(e) = r.context("a send task panicked")? {
                errors.push(e);
            }
        }
        if next_flow >= g.flows && heap.is_empty() && dups.is_empty() {
            break;
        }
        tokio::time::sleep(TICK).await;
    }
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r.context("a send task panicked")? {
            errors.push(e);
        }
    }
    g.truth.flush().context("writing the truth file")?;
    let elapsed = start.elapsed();

    let c = &g.counts;
    let s = &stats;
    println!(
        "seam demo mdso: {} flows ({} concurrent twins, {} on reused circuits), {} traces ({} keyless), {} spans, {} log records",
        c.flows, c.twins, c.reused, c.traces, c.keyless_traces, c.spans, c.logs
    );
    println!(
        "  {} requests ({} refused with 429/503 and retried, {} duplicates, {} records rejected, {} failed) in {:.1} s",
        s.requests.load(Ordering::Relaxed),
        s.refused.load(Ordering::Relaxed),
        s.duplicates.load(Ordering::Relaxed),
        s.rejected.load(Ordering::Relaxed),
        errors.len(),
        elapsed.as_secs_f64()
    );
    println!(
        "  clock skew: beorn {:+} ms, mdso {:+} ms, arda {:+} ms; truth: {}",
        skew_ns[0] / MS,
        skew_ns[1] / MS,
        skew_ns[2] / MS,
        args.truth.display()
    );
    if !errors.is_empty() {
        bail!(
            "{} requests were not delivered; first: {}",
            errors.len(),
            errors[0]
        );
    }
    Ok(())
}
