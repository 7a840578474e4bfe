//! Kernels of the write path: turning spans into the head's columns, and writing a sorted,
//! compressed segment. Run with `cargo bench -p seam-store`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use seam_model::attributes::{int_kv, string_kv};
use seam_model::otlp::resource::v1::Resource;
use seam_model::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use seam_model::{Signal, TraceId};
use seam_store::schema::spans_to_batch;
use seam_store::segment;

/// 100 traces of 10 spans with typical HTTP attributes.
fn spans() -> Vec<ResourceSpans> {
    let mut out = Vec::new();
    for t in 0..100u32 {
        let spans = (0..10u32)
            .map(|i| Span {
                trace_id: [t.to_be_bytes(), [7; 4], [9; 4], [1; 4]].concat(),
                span_id: [i.to_be_bytes(), t.to_be_bytes()].concat(),
                parent_span_id: if i == 0 {
                    Vec::new()
                } else {
                    [0u32.to_be_bytes(), t.to_be_bytes()].concat()
                },
                name: format!("GET /api/v1/items/{i}"),
                kind: 2,
                start_time_unix_nano: 1_700_000_000_000_000_000 + (t as u64) * 1_000_000 + i as u64,
                end_time_unix_nano: 1_700_000_000_000_000_000 + (t as u64) * 1_000_000 + 500_000,
                attributes: vec![
                    string_kv("http.request.method", "GET"),
                    string_kv("url.path", "/api/v1/items"),
                    int_kv("http.response.status_code", 200),
                    string_kv("server.address", "api.internal"),
                ],
                ..Default::default()
            })
            .collect();
        out.push(ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    string_kv("service.name", "api"),
                    string_kv("host.name", "node-1"),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    out
}

fn kernels(c: &mut Criterion) {
    let rs = spans();
    let mut g = c.benchmark_group("spans");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("to_head_columns", |b| b.iter(|| spans_to_batch(&rs)));
    let batches: Vec<_> = (0..10).map(|_| spans_to_batch(&rs).0).collect();
    let dir = tempfile::tempdir().unwrap();
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("write_segment", |b| {
        b.iter(|| {
            segment::write(&dir.path().join("bench.parquet"), Signal::Traces, &batches).unwrap()
        })
    });
    g.finish();
}

/// Trace by id from one segment of 100K spans (10K traces): what a trace lookup decodes.
fn trace_lookup(c: &mut Criterion) {
    let rs = spans();
    // A hundred copies of the 100 traces with distinct ids: 100 batches of 1,000 spans.
    let batches: Vec<_> = (0..100u32)
        .map(|copy| {
            let mut r = rs.clone();
            for span in r.iter_mut().flat_map(|x| &mut x.scope_spans[0].spans) {
                span.trace_id[4..8].copy_from_slice(&copy.to_be_bytes());
            }
            spans_to_batch(&r).0
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces.parquet");
    let written = segment::write(&path, Signal::Traces, &batches).unwrap();
    eprintln!(
        "span segment: {} bytes for {} spans",
        written.bytes, written.rows
    );
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&42u32.to_be_bytes());
    id[4..8].copy_from_slice(&57u32.to_be_bytes());
    id[8..].copy_from_slice(&[9, 9, 9, 9, 1, 1, 1, 1]);
    let id = TraceId(id);
    let mut g = c.benchmark_group("spans");
    g.throughput(Throughput::Elements(1));
    g.bench_function("trace_from_segment", |b| {
        b.iter(|| {
            let got =
                segment::read(&path, Signal::Traces, &segment::RowSelection::Trace(&id)).unwrap();
            assert_eq!(got.iter().map(|b| b.num_rows()).sum::<usize>(), 10);
            got
        })
    });
    g.finish();
}

criterion_group!(benches, kernels, trace_lookup);
criterion_main!(benches);
