//! Kernels of the write path: turning spans into the head's columns, and writing a sorted,
//! compressed segment. Run with `cargo bench -p seam-store`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use seam_model::attributes::{int_kv, string_kv};
use seam_model::otlp::resource::v1::Resource;
use seam_model::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use seam_model::Signal;
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

criterion_group!(benches, kernels);
criterion_main!(benches);
