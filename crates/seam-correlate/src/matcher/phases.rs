//! The matching phases of one batch: ingest, refresh, evaluate, apply, decide.

use super::{Before, Correlator, Offer};
use crate::extract::KeyMatch;
use crate::fxhash::FxHashSet;
use crate::index::{ExpiryQueue, IndexEntry, KeyIndex};
use crate::link::{confidence, Link};
use crate::segment::{Candidate, InFlight, LinkState, Pending, Score, Segment};
use crate::stats::Refusal;
use seam_model::otlp::trace::v1::ResourceSpans;
use seam_model::{SpanId, TraceId};
use std::sync::Arc;

impl<I: KeyIndex> Correlator<I> {
    /// Phase 1: adds the batch's spans to their segments; returns each touched segment's state
    /// before the batch.
    pub(super) fn ingest(
        &mut self,
        tenant: &str,
        rs: &[ResourceSpans],
        arrival_ns: i64,
    ) -> Vec<Before> {
        let t = self.tenants.get_mut(tenant).expect("tenant made by caller");
        let mut touched = Vec::new();
        let seen = &mut self.seen;
        seen.clear();
        let max_spans = self.config.max_spans_per_segment;
        for r in rs {
            let service = seam_model::traces::service_name(r);
            let mut resource_keys = Vec::new();
            if let Some(res) = &r.resource {
                self.extractor
                    .extract_attributes(&res.attributes, &mut resource_keys);
            }
            for span in r.scope_spans.iter().flat_map(|s| &s.spans) {
                if super::is_synthetic(span) {
                    self.stats.synthetic_ignored += 1;
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
                let seg = t
                    .segments
                    .entry(trace)
                    .or_insert_with(|| Segment::new(trace, arrival_ns));
                let idx = *seen.entry(trace).or_insert_with(|| {
                    touched.push(Before::of(seg));
                    touched.len() - 1
                });
                seg.last_arrival_ns = seg.last_arrival_ns.max(arrival_ns);
                if !seg.add_span(
                    span_id,
                    parent,
                    service,
                    &span.name,
                    clamp_ns(span.start_time_unix_nano),
                    clamp_ns(span.end_time_unix_nano),
                    max_spans,
                ) {
                    continue;
                }
                let mut changed = false;
                self.extractor
                    .visit_attributes(&span.attributes, |k, v, exact| {
                        changed |= seg.add_key_parts(k, v, exact)
                    });
                for m in &resource_keys {
                    changed |= seg.add_key(m);
                }
                touched[idx].keys_changed |= changed;
            }
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
            let w = self.window_ns;
            let last = seg.last_arrival_ns;
            let mut expires = seg.end_ns.saturating_add(w.saturating_mul(2)).clamp(
                last.saturating_add(w),
                last.saturating_add(w.saturating_mul(2)),
            );
            if seg.keys.is_empty() {
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
        for (trace, keys_before) in dirty {
            let s = &t.segments[trace];
            for (ki, km) in s.keys.iter().enumerate() {
                self.scratch.clear();
                self.index
                    .candidates(tenant, &km.key, &km.value, &mut self.scratch);
                let mut any = false;
                for c in &self.scratch {
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
                    match self.relate(s, other, km) {
                        Ok(o) => offers.push(o),
                        Err(r) => self.stats.refuse(r),
                    }
                }
                if !any && ki >= *keys_before {
                    self.stats.no_candidate += 1;
                }
            }
        }
        offers
    }

    /// Decides which of two segments sharing `km` is upstream, and ranks the pair.
    fn relate(&self, a: &Segment, b: &Segment, km: &KeyMatch) -> Result<Offer, Refusal> {
        if a.distance(b) > self.window_ns {
            return Err(Refusal::OutsideWindow);
        }
        let (sa, sb) = (a.primary_service(), b.primary_service());
        if sa == sb {
            return Err(Refusal::SameService);
        }
        let by_pattern = self.config.flow_patterns.iter().find_map(|p| {
            let pa = pattern_position(a, p)?;
            let pb = pattern_position(b, p)?;
            if pa == pb {
                return None;
            }
            Some(if pa < pb {
                (a, b, pb - pa)
            } else {
                (b, a, pa - pb)
            })
        });
        let (up, down, pattern_distance) = by_pattern.unwrap_or_else(|| {
            if (a.start_ns, a.trace_id) <= (b.start_ns, b.trace_id) {
                (a, b, 0)
            } else {
                (b, a, 0)
            }
        });
        let gap = down.start_ns.saturating_sub(up.start_ns);
        if by_pattern.is_some() && gap < -self.max_skew_ns {
            return Err(Refusal::DirectionConflict);
        }
        let key_index = down
            .keys
            .iter()
            .position(|k| k.key == km.key && k.value == km.value)
            .expect("both segments carry the key");
        let exact =
            down.keys[key_index].exact && up.key(&km.key, &km.value).is_some_and(|k| k.exact);
        if confidence(exact, gap) < self.config.min_confidence {
            return Err(Refusal::BelowMin);
        }
        Ok(Offer {
            downstream: down.trace_id,
            candidate: Candidate {
                upstream: up.trace_id,
                key_index,
                score: Score {
                    by_time: by_pattern.is_none(),
                    pattern_distance,
                    key_priority: self.extractor.priority(&km.key).unwrap_or(usize::MAX),
                    abs_gap_ns: gap.saturating_abs(),
                    upstream: up.trace_id,
                },
                in_flight: up.in_flight(down.start_ns).is_some(),
            },
        })
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
                    let mut in_flight = InFlight::default();
                    if c.in_flight {
                        in_flight.note(c.upstream, c.score.class());
                    }
                    seg.link = LinkState::Pending(Box::new(Pending {
                        in_flight,
                        best: c,
                        decide_at,
                        arrival_ns: now,
                        filed: false,
                    }));
                }
                LinkState::Pending(p) => {
                    if c.in_flight {
                        p.in_flight.note(c.upstream, c.score.class());
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
        let class = p.best.score.class();
        self.config.fast_path
            && p.best.in_flight
            && p.in_flight.count(class) <= 1
            && (p.best.score.by_time || p.best.score.pattern_distance == 1)
            && Some(p.best.score.key_priority) == top_key
    }

    /// Emits the held choice of `down`, rebuilt from the segments as they are now.
    pub(super) fn decide(&mut self, tenant: &str, down: TraceId, now: i64) -> Option<Link> {
        let t = self.tenants.get_mut(tenant)?;
        let seg = t.segments.get(&down)?;
        let LinkState::Pending(p) = &seg.link else {
            return None;
        };
        let upstream = p.best.upstream;
        let link = t
            .segments
            .get(&upstream)
            .and_then(|up| build_link(tenant, up, seg, p, now));
        let seg = t.segments.get_mut(&down).expect("present");
        match link {
            None => {
                self.stats.expired += 1;
                seg.link = LinkState::Open;
                None
            }
            Some(link) if link.confidence < self.config.min_confidence => {
                self.stats.below_min_confidence += 1;
                seg.link = LinkState::Open;
                None
            }
            Some(link) => {
                self.stats.matched += 1;
                seg.link = LinkState::Decided { upstream };
                Some(link)
            }
        }
    }
}

/// The link for a held choice, from the segments' current state.
fn build_link(tenant: &str, up: &Segment, down: &Segment, p: &Pending, now: i64) -> Option<Link> {
    let km = down.keys.get(p.best.key_index)?;
    let exact = km.exact && up.key(&km.key, &km.value).is_some_and(|k| k.exact);
    let gap = down.start_ns.saturating_sub(up.start_ns);
    let parent = up.call_parent(down.start_ns)?;
    let root = down.root()?;
    Some(Link {
        tenant: tenant.to_string(),
        key: km.key.to_string(),
        value: km.value.clone(),
        exact,
        confidence: confidence(exact, gap),
        gap_ms: gap / 1_000_000,
        upstream_trace_id: up.trace_id,
        upstream_service: up.primary_service().to_string(),
        parent_span_id: parent.span_id,
        parent_start_ns: parent.start_ns,
        parent_end_ns: parent.end_ns,
        downstream_trace_id: down.trace_id,
        downstream_service: down.primary_service().to_string(),
        downstream_root_span_id: root.span_id,
        downstream_start_ns: down.start_ns,
        downstream_end_ns: down.end_ns,
        arrival_ns: p.arrival_ns,
        decided_ns: now,
    })
}

/// OTLP's unsigned nanoseconds as the signed ones the engine computes with.
fn clamp_ns(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// Where a segment sits in a flow pattern: its primary service's place, else the earliest place
/// of any other service in it (a root from an unlisted proxy should not hide the app behind it).
fn pattern_position(seg: &Segment, pattern: &[String]) -> Option<usize> {
    let primary = seg.primary_service();
    pattern.iter().position(|s| s == primary).or_else(|| {
        seg.services
            .iter()
            .filter_map(|svc| pattern.iter().position(|s| s == svc))
            .min()
    })
}
