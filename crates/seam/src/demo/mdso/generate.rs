//! The generator's plumbing: ids, truth lines, scheduling with noise (exporter delay, reorder,
//! late delivery), flows with their twins and reuse, and keyless noise traces.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;

use rand::Rng;
use seam_model::attributes::{int_kv, string_kv};
use seam_model::otlp::trace::v1::span::SpanKind;
use seam_model::otlp::trace::v1::{Span, Status};
use serde_json::json;

use super::{hex, FlowPlan, Generator, Item, Record, SpanPlan, Svc, LATE_SHARE, MS};

impl Generator {
    pub(super) fn real_start(&self, i: usize) -> i64 {
        (i as f64 / self.rate * 1e9) as i64
    }

    pub(super) fn uuid(&mut self) -> String {
        let b: [u8; 16] = self.rng.random();
        let h = hex(&b);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    pub(super) fn id<const N: usize>(&mut self) -> [u8; N] {
        crate::bench_ingest::random_id(&mut self.rng)
    }

    pub(super) fn ms(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.random_range(lo * MS..hi * MS)
    }

    pub(super) fn line(&mut self, v: serde_json::Value) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.truth, &v)?;
        self.truth.write_all(b"\n")?;
        Ok(())
    }

    /// Schedules `rec` (of `svc`, ending at real time `end`) and returns whether it was made late.
    pub(super) fn schedule(
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
    pub(super) fn emit_trace(
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
    pub(super) fn flow(
        &mut self,
        i: usize,
        heap: &mut BinaryHeap<Reverse<Item>>,
    ) -> anyhow::Result<()> {
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
    pub(super) fn keyless_trace(
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
    pub(super) fn keyless_child(
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
}
