//! The stitched view: a connected flow of traces returned as one trace.
//!
//! Every span is rewritten to the requested trace id and keeps its own as
//! `seam.original_trace_id`; each downstream trace's roots are re-parented under the bridge span
//! that links to it. Tempo clients need a tree, so the trace graph is made one: a trace with
//! several incoming bridges hangs under the most confident, and a cycle is cut above its earliest
//! trace. Each such choice, a missing trace or bridge span, and a size cut adds a warning.

use crate::bridge::BridgeEdge;
use seam_model::otlp::trace::v1::ResourceSpans;
use seam_model::{SpanId, TraceId};
use std::collections::{HashMap, HashSet, VecDeque};

/// The attribute every stitched span carries: its trace id before stitching, in hex.
pub use seam_model::traces::ORIGINAL_TRACE_ID_ATTR as ORIGINAL_TRACE_ID;

/// One trace made of a flow's traces.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StitchedTrace {
    /// The spans, all under the requested trace id.
    pub resource_spans: Vec<ResourceSpans>,
    /// What was left out or chosen, for the caller to log or show.
    pub warnings: Vec<String>,
    /// The traces joined, the requested one first, then breadth-first.
    pub traces: Vec<TraceId>,
    /// True when the flow had more traces than the limit.
    pub truncated: bool,
}

/// The connected component of `start` over bridge edges, followed both ways; `edges(t)` returns
/// the bridges with `t` at either end. Stops adding traces at `max_traces` (at least 1) and then
/// says `truncated`. Cycle-safe: each trace is visited once. Returns the traces (breadth-first),
/// the distinct edges among them, and the truncation flag.
pub fn component(
    start: TraceId,
    edges: impl Fn(TraceId) -> Vec<BridgeEdge>,
    max_traces: usize,
) -> (Vec<TraceId>, Vec<BridgeEdge>, bool) {
    let max = max_traces.max(1);
    let mut order = vec![start];
    let mut seen = HashSet::from([start]);
    let mut queue = VecDeque::from([start]);
    let mut found = Vec::new();
    let mut seen_edges = HashSet::new();
    let mut truncated = false;
    while let Some(t) = queue.pop_front() {
        for e in edges(t) {
            if e.upstream != t && e.downstream != t {
                continue;
            }
            if seen_edges.insert((e.upstream, e.bridge_span_id, e.downstream)) {
                found.push(e);
            }
            let other = if e.upstream == t {
                e.downstream
            } else {
                e.upstream
            };
            if seen.contains(&other) {
                continue;
            }
            if order.len() >= max {
                truncated = true;
                continue;
            }
            seen.insert(other);
            order.push(other);
            queue.push_back(other);
        }
    }
    found.retain(|e| seen.contains(&e.upstream) && seen.contains(&e.downstream));
    (order, found, truncated)
}

/// Joins the flow containing `requested` into one trace. `traces` holds the stored spans of the
/// flow's traces (more is harmless: only the component of `requested` is used); `bridges` the
/// known bridge edges.
pub fn stitch(
    requested: TraceId,
    traces: &HashMap<TraceId, Vec<ResourceSpans>>,
    bridges: &[BridgeEdge],
    max_traces: usize,
) -> StitchedTrace {
    let mut adjacency: HashMap<TraceId, Vec<BridgeEdge>> = HashMap::new();
    for e in bridges {
        adjacency.entry(e.upstream).or_default().push(*e);
        if e.downstream != e.upstream {
            adjacency.entry(e.downstream).or_default().push(*e);
        }
    }
    let (ids, edges, truncated) = component(
        requested,
        |t| adjacency.get(&t).cloned().unwrap_or_default(),
        max_traces,
    );
    let mut warnings = Vec::new();
    if truncated {
        warnings.push(format!(
            "flow has more than {} traces; showing the {} nearest",
            max_traces.max(1),
            ids.len()
        ));
    }
    let ids: Vec<TraceId> = ids
        .into_iter()
        .filter(|t| {
            let present = traces.contains_key(t);
            if !present {
                warnings.push(format!("trace {t} is linked into the flow but not stored"));
            }
            present
        })
        .collect();
    let span_ids: HashMap<TraceId, HashSet<SpanId>> =
        ids.iter().map(|t| (*t, span_ids_of(&traces[t]))).collect();

    // One incoming bridge per trace: the most confident, ties by ids for a stable answer.
    let mut incoming: HashMap<TraceId, BridgeEdge> = HashMap::new();
    let mut count: HashMap<TraceId, usize> = HashMap::new();
    for e in &edges {
        if e.upstream == e.downstream || !span_ids.contains_key(&e.downstream) {
            continue;
        }
        let Some(up_spans) = span_ids.get(&e.upstream) else {
            continue;
        };
        if !up_spans.contains(&e.bridge_span_id) {
            warnings.push(format!(
                "bridge span {} of trace {} is not stored; trace {} is not re-parented under it",
                e.bridge_span_id, e.upstream, e.downstream
            ));
            continue;
        }
        *count.entry(e.downstream).or_default() += 1;
        match incoming.get(&e.downstream) {
            Some(cur) if rank(cur) <= rank(e) => {}
            _ => {
                incoming.insert(e.downstream, *e);
            }
        }
    }
    for d in ids.iter().filter(|d| count.get(d).is_some_and(|n| *n > 1)) {
        let up = incoming[d].upstream;
        warnings.push(format!(
            "trace {d} has several incoming bridges; shown under the one from {up}"
        ));
    }
    break_cycles(&ids, traces, &mut incoming, &mut warnings);

    let mut out = Vec::new();
    for t in &ids {
        let hex = t.to_hex();
        let own = &span_ids[t];
        let bridge = incoming.get(t).map(|e| e.bridge_span_id.0.to_vec());
        for r in &traces[t] {
            let mut r = r.clone();
            for s in r.scope_spans.iter_mut().flat_map(|s| &mut s.spans) {
                s.trace_id = requested.0.to_vec();
                s.attributes
                    .push(seam_model::attributes::string_kv(ORIGINAL_TRACE_ID, &hex));
                let is_root =
                    SpanId::from_slice(&s.parent_span_id).map_or(true, |p| !own.contains(&p));
                if let (true, Some(b)) = (is_root, &bridge) {
                    s.parent_span_id = b.clone();
                }
            }
            out.push(r);
        }
    }
    StitchedTrace {
        resource_spans: out,
        warnings,
        traces: ids,
        truncated,
    }
}

/// Lower is preferred: higher confidence, then the smaller upstream and bridge ids.
fn rank(e: &BridgeEdge) -> (std::cmp::Reverse<u64>, TraceId, SpanId) {
    // Confidence is in [0, 1]; its bit pattern orders like the number for non-negative floats.
    (
        std::cmp::Reverse(e.confidence.max(0.0).to_bits()),
        e.upstream,
        e.bridge_span_id,
    )
}

fn span_ids_of(rs: &[ResourceSpans]) -> HashSet<SpanId> {
    rs.iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .filter_map(|s| SpanId::from_slice(&s.span_id).ok())
        .collect()
}

fn start_of(rs: &[ResourceSpans]) -> u64 {
    rs.iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.start_time_unix_nano)
        .min()
        .unwrap_or(u64::MAX)
}

/// Each trace has at most one parent trace, so the graph is a forest plus cycles; every cycle is
/// cut by dropping the incoming bridge of its earliest-starting trace, which becomes the top.
fn break_cycles(
    ids: &[TraceId],
    traces: &HashMap<TraceId, Vec<ResourceSpans>>,
    incoming: &mut HashMap<TraceId, BridgeEdge>,
    warnings: &mut Vec<String>,
) {
    // 0 = unvisited, 1 = on the current walk, 2 = done.
    let mut state: HashMap<TraceId, u8> = HashMap::new();
    for &t0 in ids {
        let mut path = Vec::new();
        let mut t = t0;
        loop {
            match state.get(&t).copied().unwrap_or(0) {
                2 => break,
                1 => {
                    let at = path.iter().position(|p| *p == t).expect("on the walk");
                    let cycle = &path[at..];
                    let top = *cycle
                        .iter()
                        .min_by_key(|c| (start_of(&traces[*c]), **c))
                        .expect("cycle is not empty");
                    incoming.remove(&top);
                    warnings.push(format!(
                        "bridges form a cycle through {} traces; cut above trace {top}",
                        cycle.len()
                    ));
                    break;
                }
                _ => {
                    state.insert(t, 1);
                    path.push(t);
                    match incoming.get(&t) {
                        Some(e) => t = e.upstream,
                        None => break,
                    }
                }
            }
        }
        for p in path {
            state.insert(p, 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{span, spans_with_service};
    use seam_model::attributes::find_str;
    use seam_model::otlp::trace::v1::Span;

    fn tid(n: u8) -> TraceId {
        TraceId([n; 16])
    }

    fn edge(up: u8, bridge: u8, down: u8, root: u8) -> BridgeEdge {
        BridgeEdge {
            upstream: tid(up),
            bridge_span_id: SpanId([bridge; 8]),
            downstream: tid(down),
            downstream_root_span_id: SpanId([root; 8]),
            confidence: 1.0,
        }
    }

    fn all(st: &StitchedTrace) -> Vec<&Span> {
        st.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .collect()
    }

    fn by_id(st: &StitchedTrace, id: u8) -> &Span {
        all(st)
            .into_iter()
            .find(|s| s.span_id == vec![id; 8])
            .unwrap()
    }

    /// beorn (trace 1: root 10, bridge 11) -> mdso (trace 2: root 20, child 21, bridge 22)
    /// -> arda (trace 3: root 30).
    fn flow() -> HashMap<TraceId, Vec<ResourceSpans>> {
        HashMap::from([
            (
                tid(1),
                vec![spans_with_service(
                    "beorn",
                    vec![
                        span(1, 10, 0, "create", 0, 100, &[]),
                        span(1, 11, 10, "bridge", 5, 6, &[]),
                    ],
                )],
            ),
            (
                tid(2),
                vec![spans_with_service(
                    "mdso",
                    vec![
                        span(2, 20, 0, "plan", 5, 50, &[]),
                        span(2, 21, 20, "step", 6, 40, &[]),
                        span(2, 22, 21, "bridge", 7, 8, &[]),
                    ],
                )],
            ),
            (
                tid(3),
                vec![spans_with_service(
                    "arda",
                    vec![span(3, 30, 0, "get", 7, 9, &[])],
                )],
            ),
        ])
    }

    #[test]
    fn one_trace_with_reparented_roots_from_any_trace_id() {
        let edges = [edge(1, 11, 2, 20), edge(2, 22, 3, 30)];
        for requested in [1, 2, 3] {
            let st = stitch(tid(requested), &flow(), &edges, 50);
            assert!(st.warnings.is_empty(), "{:?}", st.warnings);
            assert!(!st.truncated);
            assert_eq!(st.traces[0], tid(requested));
            let spans = all(&st);
            assert_eq!(spans.len(), 6);
            assert!(spans.iter().all(|s| s.trace_id == vec![requested; 16]));
            assert_eq!(by_id(&st, 10).parent_span_id, Vec::<u8>::new());
            assert_eq!(by_id(&st, 20).parent_span_id, vec![11; 8]);
            assert_eq!(
                by_id(&st, 21).parent_span_id,
                vec![20; 8],
                "children untouched"
            );
            assert_eq!(by_id(&st, 30).parent_span_id, vec![22; 8]);
            for (id, orig) in [(10, 1u8), (21, 2), (30, 3)] {
                assert_eq!(
                    find_str(&by_id(&st, id).attributes, ORIGINAL_TRACE_ID),
                    Some(tid(orig).to_hex().as_str())
                );
            }
        }
    }

    #[test]
    fn cycles_are_cut_above_the_earliest_trace() {
        // 2 -> 3 and 3 -> 2: trace 2 starts first, so it stays on top.
        let mut traces = flow();
        traces.remove(&tid(1));
        traces.get_mut(&tid(3)).unwrap().push(spans_with_service(
            "arda",
            vec![span(3, 31, 30, "bridge", 8, 9, &[])],
        ));
        let edges = [edge(2, 22, 3, 30), edge(3, 31, 2, 20)];
        let st = stitch(tid(3), &traces, &edges, 50);
        assert_eq!(st.traces, [tid(3), tid(2)]);
        assert_eq!(by_id(&st, 20).parent_span_id, Vec::<u8>::new());
        assert_eq!(by_id(&st, 30).parent_span_id, vec![22; 8]);
        assert_eq!(
            st.warnings,
            [format!(
                "bridges form a cycle through 2 traces; cut above trace {}",
                tid(2)
            )]
        );
    }

    #[test]
    fn large_flows_are_cut_with_a_warning() {
        let edges = [edge(1, 11, 2, 20), edge(2, 22, 3, 30)];
        let st = stitch(tid(1), &flow(), &edges, 2);
        assert!(st.truncated);
        assert_eq!(st.traces, [tid(1), tid(2)]);
        assert_eq!(all(&st).len(), 5);
        assert_eq!(
            st.warnings,
            ["flow has more than 2 traces; showing the 2 nearest"]
        );
    }

    #[test]
    fn missing_traces_and_bridge_spans_are_reported() {
        let mut traces = flow();
        traces.remove(&tid(3));
        let edges = [edge(1, 99, 2, 20), edge(2, 22, 3, 30)];
        let st = stitch(tid(2), &traces, &edges, 50);
        assert_eq!(st.traces, [tid(2), tid(1)]);
        assert_eq!(by_id(&st, 20).parent_span_id, Vec::<u8>::new());
        assert_eq!(st.warnings.len(), 2, "{:?}", st.warnings);
        assert!(st.warnings[0].contains("not stored"));
        assert!(st.warnings[1].starts_with("bridge span 6363636363636363"));
    }

    #[test]
    fn several_bridges_into_one_trace_keep_the_most_confident() {
        let mut traces = flow();
        traces.get_mut(&tid(3)).unwrap().push(spans_with_service(
            "arda",
            vec![span(3, 31, 30, "x", 8, 9, &[])],
        ));
        let weak = BridgeEdge {
            confidence: 0.56,
            ..edge(1, 11, 2, 20)
        };
        let strong = edge(3, 31, 2, 20);
        let st = stitch(tid(1), &traces, &[weak, strong], 50);
        assert_eq!(by_id(&st, 20).parent_span_id, vec![31; 8]);
        assert_eq!(st.warnings.len(), 1);
    }

    #[test]
    fn component_walks_both_ways_once() {
        let edges = [
            edge(1, 11, 2, 20),
            edge(3, 31, 2, 20),
            edge(3, 32, 4, 40),
            edge(4, 41, 1, 10),
        ];
        let f = |t: TraceId| {
            edges
                .iter()
                .filter(|e| e.upstream == t || e.downstream == t)
                .copied()
                .collect::<Vec<_>>()
        };
        let (ids, found, truncated) = component(tid(2), f, 10);
        assert_eq!(ids, [tid(2), tid(1), tid(3), tid(4)]);
        assert_eq!(found.len(), 4);
        assert!(!truncated);
        let (ids, found, truncated) = component(tid(2), f, 3);
        assert_eq!(ids, [tid(2), tid(1), tid(3)]);
        assert_eq!(found.len(), 2);
        assert!(truncated);
        let (ids, _, truncated) = component(tid(9), f, 0);
        assert_eq!((ids, truncated), (vec![tid(9)], false));
    }
}
