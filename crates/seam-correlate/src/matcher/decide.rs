//! Relating two segments (direction, boundaries, rank) and deciding a held choice.

use super::{Correlator, Offer};
use crate::evidence::{best_call, fallback_parent, Call, CallClass, Source};
use crate::extract::KeyMatch;
use crate::fxhash::FxHashMap;
use crate::index::KeyIndex;
use crate::link::{confidence_with, Link};
use crate::segment::{Candidate, LinkState, Pending, Score, Segment};
use crate::stats::Refusal;
use seam_model::TraceId;

/// How far up and down a flow the path rule looks.
const MAX_PATH: usize = 32;

/// Which segment is upstream, and why.
struct Direction<'a> {
    up: &'a Segment,
    down: &'a Segment,
    source: Source,
    pattern_distance: usize,
    call: Option<Call>,
}

impl<I: KeyIndex> Correlator<I> {
    /// Decides which of two segments sharing `km` is upstream, checks the flow boundaries, and
    /// ranks the pair (see the module doc of the matcher).
    pub(super) fn relate(
        &self,
        tenant: &str,
        segments: &FxHashMap<TraceId, Segment>,
        a: &Segment,
        b: &Segment,
        km: &KeyMatch,
    ) -> Result<Offer, Refusal> {
        if a.distance(b) > self.window_ns {
            return Err(Refusal::OutsideWindow);
        }
        if a.primary_service() == b.primary_service() {
            return Err(Refusal::SameService);
        }
        let dir = self.direction(tenant, a, b)?;
        let (up, down) = (dir.up, dir.down);
        if self.repeats_service(segments, up, down) {
            return Err(Refusal::RepeatedService);
        }
        let gap = down.start_ns.saturating_sub(up.start_ns);
        let key_index = down
            .keys
            .iter()
            .position(|k| k.key == km.key && k.value == km.value)
            .expect("both segments carry the key");
        let exact =
            down.keys[key_index].exact && up.key(&km.key, &km.value).is_some_and(|k| k.exact);
        let call = dir.call.map_or(CallClass::None, |c| c.class);
        if confidence_with(exact, gap, dir.source, call) < self.config.min_confidence {
            return Err(Refusal::BelowMin);
        }
        Ok(Offer {
            downstream: down.trace_id,
            candidate: Candidate {
                upstream: up.trace_id,
                key_index,
                score: Score {
                    source: dir.source,
                    pattern_distance: dir.pattern_distance,
                    key_priority: self.extractor.priority(&km.key).unwrap_or(usize::MAX),
                    call,
                    call_distance_ns: dir.call.map_or(i64::MAX, |c| c.distance_ns),
                    abs_gap_ns: gap.saturating_abs(),
                    upstream: up.trace_id,
                },
            },
        })
    }

    /// Who called whom: a configured pattern, else a learned one, else the call evidence, else
    /// (for segments without span kinds) the earlier start. Refuses a pair no call explains.
    fn direction<'a>(
        &self,
        tenant: &str,
        a: &'a Segment,
        b: &'a Segment,
    ) -> Result<Direction<'a>, Refusal> {
        let configured = self.config.flow_patterns.iter().find_map(|p| {
            let pa = pattern_position(a, p)?;
            let pb = pattern_position(b, p)?;
            match pa.cmp(&pb) {
                std::cmp::Ordering::Less => Some((a, b, pb - pa)),
                std::cmp::Ordering::Greater => Some((b, a, pa - pb)),
                std::cmp::Ordering::Equal => None,
            }
        });
        if let Some((up, down, d)) = configured {
            if down.start_ns.saturating_sub(up.start_ns) < -self.max_skew_ns {
                return Err(Refusal::DirectionConflict);
            }
            return Ok(Direction {
                up,
                down,
                source: Source::Configured,
                pattern_distance: d,
                call: best_call(up, down, self.allowance),
            });
        }
        let ab = best_call(a, b, self.allowance);
        let ba = best_call(b, a, self.allowance);
        let learned = if self.config.learn_patterns {
            self.learned
                .order(tenant, a.primary_service(), b.primary_service())
        } else {
            None
        };
        if let Some((a_up, d)) = learned {
            let (up, down, call, other) = if a_up { (a, b, ab, ba) } else { (b, a, ba, ab) };
            // A call that matches the other way round outweighs what was learned: services do
            // call back.
            let overruled = other.is_some_and(|o| o.class == CallClass::Matched)
                && call.is_none_or(|c| c.class != CallClass::Matched);
            if !overruled {
                if unexplained(up, call) {
                    return Err(Refusal::NoCall);
                }
                return Ok(Direction {
                    up,
                    down,
                    source: Source::Learned,
                    pattern_distance: d,
                    call,
                });
            }
        }
        let observed = |up, down, call| Direction {
            up,
            down,
            source: Source::Observed,
            pattern_distance: 1,
            call,
        };
        let earlier_a = (a.start_ns, a.trace_id) <= (b.start_ns, b.trace_id);
        match (ab, ba) {
            (Some(x), Some(y)) => {
                let a_up =
                    (x.class, x.distance_ns, !earlier_a) <= (y.class, y.distance_ns, earlier_a);
                Ok(if a_up {
                    observed(a, b, Some(x))
                } else {
                    observed(b, a, Some(y))
                })
            }
            (Some(x), None) => Ok(observed(a, b, Some(x))),
            (None, Some(y)) => Ok(observed(b, a, Some(y))),
            (None, None) => {
                let (up, down) = if earlier_a { (a, b) } else { (b, a) };
                // Only spans without kinds leave time order as the evidence; a SERVER root that no
                // call explains was not called by this upstream.
                if up.kinds_known || down.root_receives() {
                    return Err(Refusal::NoCall);
                }
                Ok(observed(up, down, None))
            }
        }
    }

    /// True when linking `down` under `up` would put one service twice on one path of the
    /// stitched flow: a service above `up` (or `up` itself) that is `down` or below it.
    pub(super) fn repeats_service(
        &self,
        segments: &FxHashMap<TraceId, Segment>,
        up: &Segment,
        down: &Segment,
    ) -> bool {
        // The common case: neither side is linked yet, and two services differ.
        if !matches!(up.link, LinkState::Decided { .. }) && down.downstreams.is_empty() {
            return false;
        }
        let mut above: Vec<&str> = vec![up.primary_service()];
        let mut cur = up;
        while let LinkState::Decided { upstream } = &cur.link {
            match segments.get(upstream) {
                Some(u) if above.len() < MAX_PATH && !u.is_empty() => {
                    above.push(u.primary_service());
                    cur = u;
                }
                _ => break,
            }
        }
        let mut stack = vec![down];
        let mut visited = 0;
        while let Some(s) = stack.pop() {
            visited += 1;
            let svc = s.primary_service();
            if !s.is_empty() && above.contains(&svc) && !self.repeatable.iter().any(|r| r == svc) {
                return true;
            }
            if visited < MAX_PATH {
                stack.extend(s.downstreams.iter().filter_map(|d| segments.get(d)));
            }
        }
        false
    }

    /// Emits the held choice of `down`, re-checked against the segments as they are now.
    pub(super) fn decide(&mut self, tenant: &str, down: TraceId, now: i64) -> Option<Link> {
        let t = self.tenants.get(tenant)?;
        let seg = t.segments.get(&down)?;
        let LinkState::Pending(p) = &seg.link else {
            return None;
        };
        let upstream = p.best.upstream;
        let up = t.segments.get(&upstream);
        let call = up.and_then(|up| best_call(up, seg, self.allowance));
        let verdict = match up {
            None => Err(Refusal::Expired),
            Some(up) if p.best.score.source != Source::Configured && unexplained(up, call) => {
                Err(Refusal::NoCall)
            }
            Some(up) if self.repeats_service(&t.segments, up, seg) => Err(Refusal::RepeatedService),
            Some(up) => match build_link(&t.name, up, seg, p, call, now) {
                None => Err(Refusal::Expired),
                Some(l) if l.confidence < self.config.min_confidence => Err(Refusal::BelowMin),
                Some(l) => Ok(l),
            },
        };
        let t = self.tenants.get_mut(tenant)?;
        let seg = t.segments.get_mut(&down).expect("present");
        match verdict {
            Err(r) => {
                self.stats.refuse(r);
                seg.link = LinkState::Open;
                None
            }
            Ok(link) => {
                self.stats.matched += 1;
                seg.link = LinkState::Decided { upstream };
                let up = t.segments.get_mut(&upstream).expect("present");
                up.downstreams.push(down);
                if let Some(c) = call.filter(|c| c.consumes) {
                    up.consumed.push((c.span, down));
                }
                if self.config.learn_patterns && up.kinds_known && link.call.is_strong() {
                    self.learned.observe(
                        tenant,
                        &link.upstream_service,
                        &link.downstream_service,
                        1,
                    );
                }
                Some(link)
            }
        }
    }
}

/// True when `up`'s spans have kinds but none of its calls explains the downstream: it made no
/// call to it (a flow boundary).
fn unexplained(up: &Segment, call: Option<Call>) -> bool {
    up.kinds_known && call.is_none()
}

/// The link for a held choice, from the segments' current state, hung under `call`.
fn build_link(
    tenant: &std::sync::Arc<str>,
    up: &Segment,
    down: &Segment,
    p: &Pending,
    call: Option<Call>,
    now: i64,
) -> Option<Link> {
    let km = down.keys.get(p.best.key_index)?;
    let exact = km.exact && up.key(&km.key, &km.value).is_some_and(|k| k.exact);
    let gap = down.start_ns.saturating_sub(up.start_ns);
    let parent = match call {
        Some(c) => up.span(c.span)?,
        None => fallback_parent(up, down.start_ns)?,
    };
    let root = down.root()?;
    let class = call.map_or(CallClass::None, |c| c.class);
    Some(Link {
        tenant: tenant.clone(),
        key: km.key.clone(),
        value: km.value.clone(),
        exact,
        confidence: confidence_with(exact, gap, p.best.score.source, class),
        gap_ms: gap / 1_000_000,
        source: p.best.score.source,
        call: class,
        upstream_trace_id: up.trace_id,
        upstream_service: up.primary_service_arc(),
        parent_span_id: parent.span_id,
        parent_start_ns: parent.start_ns,
        parent_end_ns: parent.end_ns,
        downstream_trace_id: down.trace_id,
        downstream_service: down.primary_service_arc(),
        downstream_root_span_id: root.span_id,
        downstream_start_ns: down.start_ns,
        downstream_end_ns: down.end_ns,
        arrival_ns: p.arrival_ns,
        decided_ns: now,
    })
}

/// Where a segment sits in a flow pattern: its primary service's place, else the earliest place
/// of any other service in it (a root from an unlisted proxy should not hide the app behind it).
fn pattern_position(seg: &Segment, pattern: &[String]) -> Option<usize> {
    let primary = seg.primary_service();
    pattern.iter().position(|s| s == primary).or_else(|| {
        seg.services
            .iter()
            .filter_map(|svc| pattern.iter().position(|s| **s == **svc))
            .min()
    })
}
