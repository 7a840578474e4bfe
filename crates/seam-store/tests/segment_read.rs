//! Reading one segment file: a trace lookup finds exactly its spans and decodes only the pages
//! that hold them.

use seam_model::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use seam_model::{Signal, TraceId};
use seam_store::schema::{span_col, spans_to_batch};
use seam_store::segment::{self, RowSelection};
use seam_store::segment_read::SegmentFile;

fn trace_id(t: u32) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&t.wrapping_mul(0x9e37_79b9).to_be_bytes());
    id[12..].copy_from_slice(&t.to_be_bytes());
    id
}

/// 6,000 traces of 12 spans, in 12 batches (a trace's spans spread over all of them).
fn batches() -> Vec<arrow::array::RecordBatch> {
    (0..12u32)
        .map(|b| {
            let spans = (0..6_000u32)
                .map(|t| Span {
                    trace_id: trace_id(t).to_vec(),
                    span_id: [b.to_be_bytes(), t.to_be_bytes()].concat(),
                    name: format!("op-{b}"),
                    start_time_unix_nano: 1_000_000 + (t as u64) * 1_000 + b as u64,
                    end_time_unix_nano: 2_000_000 + (t as u64) * 1_000,
                    ..Default::default()
                })
                .collect();
            spans_to_batch(&[ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }])
            .0
        })
        .collect()
}

#[test]
fn trace_lookups_find_their_spans_and_read_a_few_pages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spans.parquet");
    let written = segment::write(&path, Signal::Traces, &batches()).unwrap();
    assert_eq!(written.rows, 72_000);
    assert_eq!(written.traces.len(), 6_000);
    // Open once so the footer is cached, as it is for every lookup after the first.
    let seg = SegmentFile::open(&path).unwrap();
    assert_eq!(seg.row_groups(), 3);
    for t in [0u32, 1, 2_999, 4_242, 5_999] {
        let id = TraceId(trace_id(t));
        let got = segment::read(&path, Signal::Traces, &RowSelection::Trace(&id)).unwrap();
        let mut names: Vec<String> = got
            .iter()
            .flat_map(|b| {
                let ids = b
                    .column(span_col::TRACE_ID)
                    .as_any()
                    .downcast_ref::<arrow::array::FixedSizeBinaryArray>()
                    .unwrap();
                let names = b
                    .column(span_col::NAME)
                    .as_any()
                    .downcast_ref::<arrow::array::StringArray>()
                    .unwrap();
                (0..b.num_rows())
                    .map(|i| {
                        assert_eq!(ids.value(i), &id.0[..]);
                        names.value(i).to_string()
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        names.sort();
        let mut want: Vec<String> = (0..12).map(|b| format!("op-{b}")).collect();
        want.sort();
        assert_eq!(names, want, "trace {t}");
    }
    // An unknown id reads nothing.
    let none = TraceId([0xee; 16]);
    assert!(
        segment::read(&path, Signal::Traces, &RowSelection::Trace(&none))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_trace_lookup_reads_a_small_part_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spans.parquet");
    let written = segment::write(&path, Signal::Traces, &batches()).unwrap();
    // The footer cache is per path: a first open pays for it, later ones do not.
    let first = SegmentFile::open(&path).unwrap();
    assert!(first.bytes_read() > 0);
    let seg = SegmentFile::open(&path).unwrap();
    assert_eq!(seg.bytes_read(), 0, "the footer came from the cache");
    let id = TraceId(trace_id(4_242));
    let before = seg.bytes_read();
    let got = seg.read_trace(&id).unwrap();
    assert_eq!(got.iter().map(|b| b.num_rows()).sum::<usize>(), 12);
    let read = seg.bytes_read() - before;
    assert!(
        read * 10 < written.bytes,
        "read {read} of {} bytes for one trace",
        written.bytes
    );
}
