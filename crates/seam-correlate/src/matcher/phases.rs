//! The matching phases of one batch: ingest, refresh, evaluate, apply.

use super::{Before, Correlator, Offer};
use crate::evidence::{span_detail, Source};
use crate::extract::KeyMatch;
use crate::fxhash::FxHashSet;
use crate::index::{ExpiryQueue, IndexEntry, KeyIndex};
use crate::link::Link;
use crate::segment::{Kind, LinkState, NewSpan, Pending, Segment, SpanKeyRow, Strong};
use seam_model::otlp::trace::v1::ResourceSpans;
use seam_model::traces::TraceEdge;
use seam_model::{SpanId, TraceId};
use std::sync::Arc;

impl<I: KeyIndex> Correlator<I> {
    /// Phase 1: adds the batch's spans to their segments; returns each touched segment's state
    /// before the batch. Bridge spans are not segments: in rebuild mode they restore their links.
    pub(super) fn ingest(
        &mut self,
        tenant: &Arc<str>,
        rs: &[ResourceSpans],
        arrival_ns: i64,
        mut rows: Option<&mut Vec<SpanKeyRow>>,
    ) -> Vec<Before> {
        let mut touched = Vec::new();
        let mut restores = Vec::new();
        self.seen.clear();
        let max_spans = self.config.max_spans_per_segment;
        for r in rs {
            let service = self.intern(seam_model::traces::service_name(r));
            let mut resource_keys = Vec::new();
            if let Some(res) = &r.resource {
                self.extractor
                    .extract_attributes(&res.attributes, &mut resource_keys);
            }
            let t = self
                .tenants
                .get_mut(&**tenant)
                .expect("tenant made by caller");
            for span in r.scope_spans.iter().flat_map(|s| &s.spans) {
                if super::is_synthetic(span) {
                    self.stats.synthetic_ignored += 1;
                    if self.rebuilding {
                        if let Some(edge) = TraceEdge::from_span(span) {
                            restores.push((edge, SpanId::from_slice(&span.parent_span_id).ok()));
                        }
                    }
                    continue;
                }
                let (Some(trace), Ok(span_id)) = (
                    TraceId::from_slice(&span.trace_id)
                        .ok()
                        .filter(|t| !t.is_zero()),
                    SpanId::from_slice(&span.span_id),
                ) else {
                    self.stats.invalid_spans += 1;
                    continue;
                };
                let parent = SpanId::from_slice(&span.parent_span_id)
                    .ok()
                    .filter(|p| p.0 != [0; 8]);
                let mut new = false;
                let seg = t.segments.entry(trace).or_insert_with(|| {
                    new = true;
                    Segment::new(trace, arrival_ns)
                });
                let idx = *self.seen.entry(trace).or_insert_with(|| {
                    touched.push(Before::of(seg, new));
                    touched.len() - 1
                });
                seg.last_arrival_ns = seg.last_arrival_ns.max(arrival_ns);
                let kind = Kind::from_otlp(span.kind);
                let (start_ns, end_ns) = (
                    clamp_ns(span.start_time_unix_nano),
                    clamp_ns(span.end_time_unix_nano),
                );
                if !seg.add_span(
                    NewSpan {
                        span_id,
                        parent_span_id: parent,
                        service: &service,
                        kind,
                        start_ns,
                        end_ns,
                        detail: span_detail(kind, &span.attributes),
                    },
                    max_spans,
                ) {
                    continue;
                }
                // The store indexes every key a span carries, with the span's time range.
                let row = |m: &KeyMatch| SpanKeyRow {
                    trace_id: trace,
                    service: service.clone(),
                    key: m.key.clone(),
                    value: m.value.clone(),
                    start_ns,
                    end_ns,
                };
                let mut changed = false;
                self.extractor
                    .visit_attributes(&span.attributes, |k, v, exact| {
                        let (new, i) = seg.add_key_at(k, v, exact);
                        changed |= new;
                        if let Some(rows) = rows.as_deref_mut() {
                            rows.push(row(&seg.keys[i]));
                        }
                    });
                for m in &resource_keys {
                    changed |= seg.add_key(m);
                }
                touched[idx].keys_changed |= changed;
                if let Some(rows) = rows.as_deref_mut() {
                    rows.extend(resource_keys.iter().map(row));
                }
            }
        }
        for (edge, parent) in restores {
            self.restore(tenant, &edge, parent, arrival_ns);
        }
        touched
    }

    /// Phase 2: recomputes roots, files expiries and index entries; returns the segments whose
    /// matching inputs changed.
    pub(super) fn refresh(
        &mut self,
        tenant: &Arc<str>,
        touched: &[Before],
    ) -> Vec<(TraceId, usize)> {
        let t = self.tenants.get_mut(&**tenant).expect("tenant exists");
        let mut dirty = Vec::new();
        for b in touched {
            let seg = t.segments.get_mut(&b.trace).expect("touched");
            seg.refresh();
            self.segment_bytes = (self.segment_bytes + seg.approx_bytes()).saturating_sub(b.bytes);
            let w = self.window_ns;
            let last = seg.last_arrival_ns;
            let mut expires = seg.end_ns.saturating_add(w.saturating_mul(2)).clamp(
                last.saturating_add(w),
                last.saturating_add(w.saturating_mul(2)),
            );
            if seg.keys.is_empty()
                && seg.downstreams.is_empty()
                && matches!(seg.link, LinkState::Open)
            {
                expires = expires.min(last.saturating_add(self.keyless_ttl_ns));
            }
            if ExpiryQueue::<()>::slot(expires) != ExpiryQueue::<()>::slot(seg.expires_ns) {
                self.expiry.push(expires, (tenant.clone(), b.trace));
            }
            seg.expires_ns = expires;
            for k in &seg.keys {
                self.index.insert(
                    tenant,
                    &k.key,
                    &k.value,
                    IndexEntry {
                        trace_id: b.trace,
                        start_ns: seg.start_ns,
                        end_ns: seg.end_ns,
                        exact: k.exact,
                        expires_ns: expires,
                    },
                );
            }
            let changed = b.keys_changed
                || b.start != seg.start_ns
                || b.end != seg.end_ns
                || b.calls != seg.calls
                || b.root != seg.root().map(|r| r.span_id);
            if changed && !seg.keys.is_empty() {
                dirty.push((b.trace, b.keys));
                if let (Some(list), false) = (self.changed.as_mut(), seg.remote) {
                    list.push((tenant.clone(), b.trace));
                }
            }
        }
        dirty
    }

    /// Phase 3: finds the candidates of every changed segment (with its key count before the
    /// batch), in both roles.
    pub(super) fn evaluate(&mut self, tenant: &str, dirty: &[(TraceId, usize)]) -> Vec<Offer> {
        let t = &self.tenants[tenant];
        let mut offers = Vec::new();
        // A pair of two changed segments is evaluated once, from the smaller trace id's side
        // (both are in the index by now, so that side finds the other).
        let changed: FxHashSet<TraceId> = if dirty.len() > 1 {
            dirty.iter().map(|d| d.0).collect()
        } else {
            FxHashSet::default()
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        for (trace, keys_before) in dirty {
            let s = &t.segments[trace];
            for (ki, km) in s.keys.iter().enumerate() {
                scratch.clear();
                self.index
                    .candidates(tenant, &km.key, &km.value, &mut scratch);
                let mut any = false;
                for c in &scratch {
                    if c.trace_id == *trace {
                        continue;
                    }
                    any = true;
                    if c.trace_id < *trace && changed.contains(&c.trace_id) {
                        continue;
                    }
                    // A shared index may name segments held elsewhere and not yet summarised here.
                    let Some(other) = t.segments.get(&c.trace_id) else {
                        continue;
                    };
                    // Two remote segments: the processes holding them decide that pair.
                    if s.remote && other.remote {
                        continue;
                    }
                    match self.relate(tenant, &t.segments, s, other, km) {
                        Ok(o) => offers.push(o),
                        Err(r) => self.stats.refuse(r),
                    }
                }
                if !any && ki >= *keys_before {
                    self.stats.no_candidate += 1;
                }
            }
        }
        self.scratch = scratch;
        offers
    }

    /// Phase 4: offers candidates to their downstream segments, then decides the unambiguous ones
    /// and files the rest to be decided when their hold ends.
    pub(super) fn apply(&mut self, tenant: &Arc<str>, offers: Vec<Offer>, now: i64) -> Vec<Link> {
        let t = self.tenants.get_mut(&**tenant).expect("tenant exists");
        let mut slots = Vec::new();
        for Offer {
            downstream,
            candidate: c,
        } in offers
        {
            let seg = t.segments.get_mut(&downstream).expect("offered segment");
            match &mut seg.link {
                LinkState::Open => {
                    let decide_at = now.saturating_add(self.settle_ns);
                    let mut strong = Strong::default();
                    if c.score.call.is_strong() {
                        strong.note(c.upstream, c.score.class());
                    }
                    seg.link = LinkState::Pending(Box::new(Pending {
                        strong,
                        best: c,
                        decide_at,
                        arrival_ns: now,
                        filed: false,
                    }));
                }
                LinkState::Pending(p) => {
                    if c.score.call.is_strong() {
                        p.strong.note(c.upstream, c.score.class());
                    }
                    if c.upstream == p.best.upstream {
                        // The same pair again: fresher numbers for the same key, or a better key.
                        if c.key_index == p.best.key_index || c.score < p.best.score {
                            p.best = c;
                        }
                    } else if c.score < p.best.score {
                        self.stats.superseded += 1;
                        p.best = c;
                    } else {
                        self.stats.outranked += 1;
                    }
                }
                LinkState::Decided { upstream } => {
                    if *upstream == c.upstream {
                        self.stats.duplicate += 1;
                    } else {
                        self.stats.slot_taken += 1;
                    }
                    continue;
                }
            }
            if !slots.contains(&downstream) {
                slots.push(downstream);
            }
        }
        if self.rebuilding {
            // Decided together at the end of the rebuild, after every stored bridge is known.
            return Vec::new();
        }
        let t = &self.tenants[&**tenant];
        let ready: Vec<TraceId> = slots
            .iter()
            .copied()
            .filter(|down| {
                let seg = &t.segments[down];
                matches!(&seg.link, LinkState::Pending(p)
                    if self.settle_ns == 0 || self.unambiguous(seg, p))
            })
            .collect();
        let links: Vec<Link> = ready
            .into_iter()
            .filter_map(|down| self.decide(tenant, down, now))
            .collect();
        // Only what is still held is filed: the common, unambiguous case never touches the queue.
        let t = self.tenants.get_mut(&**tenant).expect("tenant exists");
        for down in slots {
            if let Some(LinkState::Pending(p)) = t.segments.get_mut(&down).map(|s| &mut s.link) {
                if !p.filed {
                    p.filed = true;
                    self.due
                        .entry(p.decide_at)
                        .or_default()
                        .push((tenant.clone(), down));
                }
            }
        }
        links
    }

    /// The fast path (see the module doc).
    fn unambiguous(&self, down: &Segment, p: &Pending) -> bool {
        let top_key = down
            .keys
            .iter()
            .filter_map(|k| self.extractor.priority(&k.key))
            .min();
        let best = &p.best.score;
        self.config.fast_path
            && best.call.is_strong()
            && p.strong.count(best.class()) <= 1
            && (best.source == Source::Observed || best.pattern_distance == 1)
            && Some(best.key_priority) == top_key
    }
}

/// OTLP's unsigned nanoseconds as the signed ones the engine computes with.
fn clamp_ns(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}
