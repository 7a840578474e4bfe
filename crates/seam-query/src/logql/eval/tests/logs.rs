//! Log queries: limit and direction, the exclusive end, filters, statistics, pruning, metadata.

use std::time::{Duration, Instant};

use seam_store::{Direction, MatchOp};

use super::super::scan::Deadline;
use super::*;

fn lines(out: &QueryOutput) -> Vec<(i64, String)> {
    match &out.value {
        QueryValue::Streams(v) => v
            .iter()
            .map(|e| (e.timestamp_ns / S, e.line.clone()))
            .collect(),
        other => panic!("expected streams, got {other:?}"),
    }
}

fn window(start: i64, end: i64, limit: usize, direction: Direction) -> QueryTime {
    QueryTime {
        start_ns: start * S,
        end_ns: end * S,
        step_ns: 0,
        limit,
        direction,
    }
}

fn pairs(v: &[(i64, &str)]) -> Vec<(i64, String)> {
    v.iter().map(|(t, l)| (*t, l.to_string())).collect()
}

#[test]
fn backward_returns_the_newest_entries_across_streams() {
    let f = standard();
    let out = f.run(
        Expr::Log(sel(vec![eq("env", "prod")], vec![])),
        window(0, 100, 3, Direction::Backward),
    );
    assert_eq!(
        lines(&out),
        pairs(&[(60, "a6 ok"), (55, "b3 ok"), (50, "a5 ok")])
    );
    let QueryValue::Streams(v) = &out.value else {
        unreachable!()
    };
    assert_eq!(v[1].labels.stream.get("app"), Some("web"));
}

#[test]
fn forward_returns_the_oldest_entries() {
    let f = standard();
    let out = f.run(
        Expr::Log(sel(vec![eq("app", "api")], vec![])),
        window(0, 100, 2, Direction::Forward),
    );
    assert_eq!(lines(&out), pairs(&[(10, "a1 ok"), (20, "a2 error")]));
}

#[test]
fn the_end_of_a_log_query_is_exclusive() {
    let f = standard();
    let out = f.run(
        Expr::Log(sel(vec![eq("app", "api")], vec![])),
        window(10, 30, 100, Direction::Forward),
    );
    assert_eq!(
        lines(&out),
        pairs(&[(10, "a1 ok"), (20, "a2 error"), (25, "c1 error")])
    );
}

#[test]
fn line_filters_apply_and_statistics_count_the_work() {
    let f = standard();
    let out = f.run(
        Expr::Log(sel(
            vec![m("env", MatchOp::Regex, ".+")],
            vec![contains("error")],
        )),
        window(0, 100, 10, Direction::Backward),
    );
    assert_eq!(
        lines(&out),
        pairs(&[
            (40, "a4 error"),
            (35, "b2 error"),
            (25, "c1 error"),
            (20, "a2 error")
        ])
    );
    assert_eq!(out.stats.lines_processed, 11);
    assert_eq!(out.stats.bytes_processed, 36 + 18 + 13);
    assert_eq!(out.stats.post_filter_lines, 4);
}

#[test]
fn negative_and_regex_filters_with_alternatives() {
    let f = standard();
    let not_ok = Stage::LineFilter(LineFilter {
        op: LineFilterOp::NotContains,
        pattern: "ok".into(),
        or: vec!["a2".into()],
    });
    let out = f.run(
        Expr::Log(sel(vec![eq("env", "prod")], vec![not_ok])),
        window(0, 100, 10, Direction::Forward),
    );
    assert_eq!(lines(&out), pairs(&[(35, "b2 error"), (40, "a4 error")]));
    let re = Stage::LineFilter(LineFilter {
        op: LineFilterOp::Regex,
        pattern: "^a[12] ".into(),
        or: vec!["b3".into()],
    });
    let out = f.run(
        Expr::Log(sel(vec![eq("env", "prod")], vec![re])),
        window(0, 100, 10, Direction::Forward),
    );
    assert_eq!(
        lines(&out),
        pairs(&[(10, "a1 ok"), (20, "a2 error"), (55, "b3 ok")])
    );
}

#[test]
fn a_full_heap_stops_reading_older_segments() {
    let f = Fixture::new();
    let lines_at: Vec<(i64, String)> = (1..=8).map(|i| (i * 10, format!("old {i}"))).collect();
    for (t, l) in &lines_at {
        let s: [StreamSpec<'_>; 1] = [(&[("app", "api")], &[(*t, l.as_str())])];
        f.append(&s, &[]);
        f.flush();
    }
    let new: [StreamSpec<'_>; 1] = [(
        &[("app", "api")],
        &[(100, "new 1"), (110, "new 2"), (120, "new 3")],
    )];
    f.append(&new, &[]);
    f.flush();
    let q = || Expr::Log(sel(vec![eq("app", "api")], vec![]));
    let out = f.run(q(), window(0, 200, 2, Direction::Backward));
    assert_eq!(lines(&out), pairs(&[(120, "new 3"), (110, "new 2")]));
    // The store reads a few units ahead of the visitor, but not all nine segments.
    assert!(
        out.stats.lines_processed < 11,
        "read {} rows",
        out.stats.lines_processed
    );
    let out = f.run(q(), window(0, 200, 2, Direction::Forward));
    assert_eq!(lines(&out), pairs(&[(10, "old 1"), (20, "old 2")]));
    assert!(out.stats.lines_processed < 11);
    let out = f.run(q(), window(0, 200, 100, Direction::Forward));
    assert_eq!(lines(&out).len(), 11);
    assert_eq!(out.stats.lines_processed, 11);
}

#[test]
fn structured_metadata_reaches_the_entries() {
    let f = Fixture::new();
    let s: [StreamSpec<'_>; 1] = [(&[("app", "api")], &[(10, "hello")])];
    f.append(&s, &[("trace_id", "abc")]);
    let out = f.run(
        Expr::Log(sel(vec![eq("app", "api")], vec![])),
        window(0, 100, 10, Direction::Backward),
    );
    let QueryValue::Streams(v) = &out.value else {
        panic!("expected streams")
    };
    assert_eq!(v[0].labels.structured_metadata.get("trace_id"), Some("abc"));
    assert_eq!(v[0].labels.merged().get("trace_id"), Some("abc"));
    assert_eq!(
        out.stats.structured_metadata_bytes,
        r#"{"trace_id":"abc"}"#.len() as u64
    );
}

#[test]
fn a_passed_deadline_times_out() {
    let f = standard();
    let limits = QueryLimits {
        max_series: 500,
        deadline: Some(Instant::now() - Duration::from_secs(1)),
    };
    let err = f
        .try_run(
            Expr::Log(sel(vec![eq("app", "api")], vec![])),
            window(0, 100, 10, Direction::Backward),
            limits,
        )
        .unwrap_err();
    assert!(matches!(&err, QueryError::Timeout(m) if m.starts_with("request timed out")));
}

#[test]
fn the_scan_watch_reads_the_clock_every_few_rows() {
    let mut past = Deadline::new(Some(Instant::now() - Duration::from_secs(1)));
    let fired: Vec<bool> = (0..1024).map(|_| past.tick()).collect();
    assert!(fired[..1023].iter().all(|f| !f));
    assert!(fired[1023]);
    let mut never = Deadline::new(None);
    assert!((0..5000).all(|_| !never.tick()));
}

#[test]
fn a_zero_limit_returns_nothing() {
    let f = standard();
    let out = f.run(
        Expr::Log(sel(vec![eq("app", "api")], vec![])),
        window(0, 100, 0, Direction::Backward),
    );
    assert!(lines(&out).is_empty());
}

/// A trace id: one long word run, so the store's token filter can rule row groups out by it.
const NEEDLE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Three segments of one row group each; only the one at 20 s holds [`NEEDLE`]. Every line has
/// a long word run, so every row group has a token filter.
fn three_segments() -> Fixture {
    let f = Fixture::new();
    let needle_line = format!("GET /b trace_id={NEEDLE}");
    let rows = [
        (10, "GET /a trace_id=00f067aa0ba902b7aaaabbbbccccdddd"),
        (20, needle_line.as_str()),
        (30, "GET /c trace_id=0af7651916cd43dd8448eb211c80319c"),
    ];
    for (t, line) in rows {
        let s: [StreamSpec<'_>; 1] = [(&[("app", "api")], &[(t, line)])];
        f.append(&s, &[]);
        f.flush();
    }
    f
}

#[test]
fn the_token_filter_skips_row_groups_and_the_statistics_count_them() {
    let f = three_segments();
    let needle = || Expr::Log(sel(vec![eq("app", "api")], vec![contains(NEEDLE)]));
    let all = || Expr::Log(sel(vec![eq("app", "api")], vec![]));
    let time = || window(0, 100, 100, Direction::Backward);
    let out = f.run(needle(), time());
    assert_eq!(lines(&out), vec![(20, format!("GET /b trace_id={NEEDLE}"))]);
    assert_eq!(out.stats.chunks_ref, 3);
    assert_eq!(out.stats.chunks_downloaded, 1);
    assert_eq!(out.stats.lines_processed, 1);
    assert!(out.stats.compressed_bytes_read > 0);

    let every = f.run(all(), time());
    assert_eq!(lines(&every).len(), 3);
    assert_eq!(every.stats.chunks_ref, 3);
    assert_eq!(every.stats.chunks_downloaded, 3);
    // The first scan of a segment also reads its footer, which outweighs these tiny row groups;
    // once both queries find the footers cached, skipping two row groups reads fewer bytes.
    let (needle_bytes, all_bytes) = (
        f.run(needle(), time()).stats.compressed_bytes_read,
        f.run(all(), time()).stats.compressed_bytes_read,
    );
    assert!(
        0 < needle_bytes && needle_bytes < all_bytes,
        "{needle_bytes} vs {all_bytes}"
    );
}

#[test]
fn filters_after_a_line_rewrite_do_not_prune_row_groups() {
    let f = three_segments();
    // No stored line holds the needle, but every rewritten line is the needle: were the filter
    // after `line_format` pushed into the scan, the token filter would skip all three row groups.
    let rewrite = Stage::LineFormat(NEEDLE.into());
    let out = f.run(
        Expr::Log(sel(
            vec![eq("app", "api")],
            vec![rewrite.clone(), contains(NEEDLE)],
        )),
        window(0, 100, 100, Direction::Forward),
    );
    assert_eq!(
        lines(&out),
        pairs(&[(10, NEEDLE), (20, NEEDLE), (30, NEEDLE)])
    );
    assert_eq!(out.stats.chunks_downloaded, 3);
    // The same filter before the rewrite does prune.
    let out = f.run(
        Expr::Log(sel(vec![eq("app", "api")], vec![contains(NEEDLE), rewrite])),
        window(0, 100, 100, Direction::Forward),
    );
    assert_eq!(lines(&out), pairs(&[(20, NEEDLE)]));
    assert_eq!(out.stats.chunks_downloaded, 1);
}
