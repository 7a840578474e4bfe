//! The store end to end in-process: append, read from the head, flush, read from segments,
//! reopen with WAL replay.

use seam_model::attributes::string_kv;
use seam_model::otlp::resource::v1::Resource;
use seam_model::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use seam_model::{
    Batch, Label, LogBatch, LogEntry, LogStream, Sample, SampleBatch, Series, Signal, Tenant,
    TraceId,
};
use seam_store::{Direction, LabelMatcher, MatchOp, Store, StoreConfig};

fn spans(trace: u8, n: u8, service: &str) -> Batch {
    let spans = (0..n)
        .map(|i| Span {
            trace_id: vec![trace; 16],
            span_id: vec![i + 1; 8],
            name: format!("op-{i}"),
            start_time_unix_nano: 1_000 + i as u64,
            end_time_unix_nano: 2_000 + i as u64,
            attributes: vec![string_kv("k", "v")],
            ..Default::default()
        })
        .collect();
    Batch::Traces(vec![ResourceSpans {
        resource: Some(Resource {
            attributes: vec![string_kv("service.name", service)],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }])
}

fn logs(app: &str, lines: &[(i64, &str)]) -> Batch {
    Batch::Logs(LogBatch {
        streams: vec![LogStream {
            labels: vec![Label::new("app", app)],
            entries: lines
                .iter()
                .map(|(t, l)| LogEntry {
                    timestamp_ns: *t,
                    line: l.to_string(),
                    ..Default::default()
                })
                .collect(),
        }],
    })
}

fn samples(name: &str, points: &[(i64, f64)]) -> Batch {
    Batch::Metrics(SampleBatch {
        series: vec![Series {
            labels: vec![Label::new("__name__", name), Label::new("job", "j")],
            samples: points
                .iter()
                .map(|(t, v)| Sample {
                    timestamp_ms: *t,
                    value: *v,
                })
                .collect(),
        }],
    })
}

fn eq(name: &str, v: &str) -> LabelMatcher {
    LabelMatcher::new(name, MatchOp::Equal, v).unwrap()
}

fn check_all(store: &Store, t: &Tenant) {
    let tr = store.trace(t, &TraceId([7; 16])).unwrap();
    assert_eq!(tr.len(), 1);
    let names: Vec<_> = tr[0].scope_spans[0]
        .spans
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(names, vec!["op-0", "op-1", "op-2"]);
    assert_eq!(
        tr[0].scope_spans[0].spans[0].attributes,
        vec![string_kv("k", "v")]
    );
    assert!(store.trace(t, &TraceId([9; 16])).unwrap().is_empty());

    let streams = store.select_series(t, Signal::Logs, &[eq("app", "api")], 0, i64::MAX);
    assert_eq!(streams.len(), 1);
    let ids: Vec<u64> = streams.iter().map(|s| s.0).collect();
    let rows = store
        .scan_logs(
            t,
            &ids,
            0,
            i64::MAX,
            &|l| l.contains("err"),
            Direction::Backward,
            10,
        )
        .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.line.as_str()).collect::<Vec<_>>(),
        vec!["err 3", "err 1"]
    );
    let rows = store
        .scan_logs(t, &ids, 0, i64::MAX, &|_| true, Direction::Forward, 2)
        .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.timestamp_ns).collect::<Vec<_>>(),
        vec![10, 20]
    );

    let series = store.select_series(t, Signal::Metrics, &[eq("__name__", "up")], 0, i64::MAX);
    let ids: Vec<u64> = series.iter().map(|s| s.0).collect();
    let got = store.samples(t, &ids, 0, 10_000).unwrap();
    let v: Vec<(i64, f64)> = got[&ids[0]]
        .iter()
        .map(|s| (s.timestamp_ms, s.value))
        .collect();
    assert_eq!(v, vec![(1000, 1.0), (2000, 0.0)]);
    assert_eq!(
        store.label_values(t, Signal::Metrics, "job", &[], 0, i64::MAX),
        vec!["j"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_segments_and_replay_agree() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tenant::new("t1").unwrap();
    let other = Tenant::new("t2").unwrap();
    {
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        store.append(&t, spans(7, 2, "svc")).await.unwrap();
        store
            .append(
                &t,
                logs("api", &[(10, "err 1"), (30, "err 3"), (20, "ok 2")]),
            )
            .await
            .unwrap();
        store
            .append(&t, samples("up", &[(1000, 1.0), (2000, 0.0)]))
            .await
            .unwrap();
        store.append(&other, spans(8, 1, "other")).await.unwrap();
        // Part of the trace lands in the head after the others are flushed: reads must merge both.
        assert_eq!(store.flush().await.unwrap(), 4);
        let Batch::Traces(mut rs) = spans(7, 3, "svc") else {
            unreachable!()
        };
        rs[0].scope_spans[0].spans.drain(0..2);
        store.append(&t, Batch::Traces(rs)).await.unwrap();
        check_all(&store, &t);
        assert!(
            store.trace(&other, &TraceId([7; 16])).unwrap().is_empty(),
            "tenants are isolated"
        );
        assert_eq!(store.stats().segments, 4);
        // Dropped without shutdown: the last append is only in the WAL.
    }
    let store = Store::open(StoreConfig::new(dir.path())).unwrap();
    assert_eq!(store.stats().replayed_records, 1);
    check_all(&store, &t);
    store.shutdown().await.unwrap();
    let store = Store::open(StoreConfig::new(dir.path())).unwrap();
    assert_eq!(
        store.stats().replayed_records,
        0,
        "shutdown flushed everything"
    );
    check_all(&store, &t);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_when_memory_budget_is_exhausted() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = StoreConfig::new(dir.path());
    cfg.max_memory_bytes = 64 * 1024;
    cfg.flush_bytes = usize::MAX;
    let store = Store::open(cfg).unwrap();
    let t = Tenant::default();
    let mut refused = 0;
    for i in 0..200u8 {
        if store.append(&t, spans(i.max(1), 50, "svc")).await.is_err() {
            refused += 1;
        }
    }
    assert!(refused > 0, "appends past the budget must be refused");
    assert!(
        store.budget().used() <= 64 * 1024 + 64 * 1024,
        "charged bytes stay near the budget"
    );
    store.flush().await.unwrap();
    assert_eq!(
        store.budget().used(),
        0,
        "a flush releases the head's memory"
    );
    store.append(&t, spans(1, 1, "svc")).await.unwrap();
}

fn bridge(upstream: u8, downstream: u8) -> Batch {
    use seam_model::otlp::common::v1::{any_value::Value, AnyValue, KeyValue};
    use seam_model::otlp::trace::v1::span::Link;
    let Batch::Traces(mut rs) = spans(upstream, 1, "seam-correlator") else {
        unreachable!()
    };
    let span = &mut rs[0].scope_spans[0].spans[0];
    span.span_id = vec![0xbb; 8];
    span.name = "a_to_b_bridge".into();
    span.attributes = vec![
        KeyValue {
            key: "synthetic".into(),
            value: Some(AnyValue {
                value: Some(Value::BoolValue(true)),
            }),
            ..Default::default()
        },
        string_kv(
            "correlation.downstream_trace_id",
            &TraceId([downstream; 16]).to_hex(),
        ),
        KeyValue {
            key: "correlation.confidence".into(),
            value: Some(AnyValue {
                value: Some(Value::DoubleValue(0.9)),
            }),
            ..Default::default()
        },
    ];
    span.links = vec![Link {
        trace_id: vec![downstream; 16],
        span_id: vec![1; 8],
        ..Default::default()
    }];
    Batch::Traces(rs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_edges_are_indexed_in_head_and_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tenant::default();
    let store = Store::open(StoreConfig::new(dir.path())).unwrap();
    store.append(&t, bridge(1, 2)).await.unwrap();
    let from_head = store.trace_edges(&t, &TraceId([2; 16])).unwrap();
    assert_eq!(from_head.len(), 1);
    assert_eq!(from_head[0].upstream, TraceId([1; 16]));
    assert_eq!(from_head[0].downstream_root_span_id.0, [1; 8]);
    store.flush().await.unwrap();
    store.append(&t, bridge(2, 3)).await.unwrap();
    // Trace 2 is downstream of one flushed bridge and upstream of one in the head.
    let both = store.trace_edges(&t, &TraceId([2; 16])).unwrap();
    assert_eq!(both.len(), 2);
    assert!(store
        .trace_edges(&Tenant::new("other").unwrap(), &TraceId([2; 16]))
        .unwrap()
        .is_empty());
    store.shutdown().await.unwrap();
    let store = Store::open(StoreConfig::new(dir.path())).unwrap();
    assert_eq!(
        store.trace_edges(&t, &TraceId([2; 16])).unwrap().len(),
        2,
        "edges survive restart"
    );
    assert!(store.trace_edges(&t, &TraceId([9; 16])).unwrap().is_empty());
}

/// `Store::traces` reads many traces at once from the head and the segments (each once), returns
/// only their spans, and `keyed_traces_since` names the traces the key index holds from a time on
/// (what the correlation engine reads back after a restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_traces_are_read_back_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tenant::new("t1").unwrap();
    let store = Store::open(StoreConfig::new(dir.path())).unwrap();
    for trace in [1u8, 2, 3] {
        store.append(&t, spans(trace, 2, "svc")).await.unwrap();
    }
    store.flush().await.unwrap();
    // A late span of trace 2 and a new trace 4 stay in the head.
    let Batch::Traces(mut late) = spans(2, 3, "svc") else {
        unreachable!()
    };
    late[0].scope_spans[0].spans.drain(..2);
    store.append(&t, Batch::Traces(late)).await.unwrap();
    store.append(&t, spans(4, 1, "svc")).await.unwrap();

    let ids = [TraceId([2; 16]), TraceId([4; 16]), TraceId([9; 16])];
    let rs = store.traces(&t, &ids).unwrap();
    let mut got: Vec<(u8, u8)> = rs
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| (s.trace_id[0], s.span_id[0]))
        .collect();
    got.sort();
    assert_eq!(got, [(2, 1), (2, 2), (2, 3), (4, 1)]);
    assert!(store
        .traces(&Tenant::new("t2").unwrap(), &ids)
        .unwrap()
        .is_empty());

    // The key index: key rows given with the spans, in the head and (after a flush) the catalog.
    let row = |trace: u8, end_ns: i64| seam_store::KeyRow {
        key: "circuit_id".into(),
        value: "c1".into(),
        trace_id: TraceId([trace; 16]),
        service: "svc".into(),
        start_ns: end_ns - 10,
        end_ns,
    };
    store
        .append_with_keys(&t, spans(5, 1, "svc"), vec![row(5, 5_000)])
        .await
        .unwrap();
    store.flush().await.unwrap();
    store
        .append_with_keys(&t, spans(6, 1, "svc"), vec![row(6, 9_000)])
        .await
        .unwrap();
    let since = |ns| {
        let mut v: Vec<u8> = store
            .keyed_traces_since(ns)
            .unwrap()
            .into_iter()
            .map(|(_, id)| id.0[0])
            .collect();
        v.sort();
        v
    };
    assert_eq!(since(0), [5, 6]);
    assert_eq!(since(6_000), [6]);
    assert_eq!(
        store
            .trace_keys(&t, "circuit_id", "c1", 0, 10_000)
            .unwrap()
            .len(),
        2
    );
    // Saved state survives a reopen.
    store.save_state("test.state", b"learned").unwrap();
    store.shutdown().await.unwrap();
    drop(store);
    let store = Store::open(StoreConfig::new(dir.path())).unwrap();
    assert_eq!(
        store.load_state("test.state").unwrap().as_deref(),
        Some(&b"learned"[..])
    );
    assert_eq!(store.load_state("nothing").unwrap(), None);
}
