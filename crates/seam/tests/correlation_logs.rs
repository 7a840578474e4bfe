//! Log lines that carry a correlation key but no trace id are given the trace their key matched.

mod common;

use common::flow::metric;
use common::loki::{get, query_range, vector_of};
use common::otlp::{export, log_line, logs, service, span, traces};
use common::{eventually, now_ns, Seam};
use seam_model::attributes::string_kv;

/// The `seam_correlated_trace_id` of every line of `service_name` whose text contains `needle`.
fn correlated(s: &Seam, service_name: &str, needle: &str, since: u64) -> Vec<Option<String>> {
    selected(
        s,
        &format!("{{service_name=\"{service_name}\"}} |= \"{needle}\""),
        since,
    )
}

/// The `seam_correlated_trace_id` of every line `query` selects since `since` (ns).
fn selected(s: &Seam, query: &str, since: u64) -> Vec<Option<String>> {
    let end = now_ns() as i64 + 60_000_000_000;
    let body = query_range(s, query, since as i64, end, "backward", &[]);
    assert!(
        !body.to_string().contains("__seam_pending_keys__"),
        "{body}"
    );
    common::read::loki_streams(&body)
        .into_iter()
        .flat_map(|(labels, lines)| {
            let id = labels["seam_correlated_trace_id"]
                .as_str()
                .map(str::to_string);
            lines.into_iter().map(move |_| id.clone())
        })
        .collect()
}

#[test]
fn keyed_log_lines_get_the_matching_trace() {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::start(dir.path(), &[]);
    let t0 = now_ns();
    let trace_id = [0x5a; 16];
    let mut root = span(
        &trace_id,
        &[1; 8],
        "CircuitDetailsCollector".into(),
        t0,
        t0 + 200_000_000,
    );
    root.attributes = vec![string_kv("circuit_id", "c-77")];
    export(&s, "traces", &traces(service("mdso"), vec![root]));

    let records = vec![
        log_line(
            t0 + 2_000,
            "scriptplan start circuit_id=c-77 resource_id=r-9",
        ),
        log_line(t0 + 3_000, "device answered circuit_id: c-77"),
        log_line(t0 + 1_000, r#"{"msg":"lookup","circuit_id":"c-77"}"#),
        log_line(t0 + 4_000, "circuit_id=c-other is unknown"),
        log_line(t0 + 5_000, "no key on this line"),
    ];
    export(&s, "logs", &logs(service("mdso"), records));

    let want = Some(common::codec::hex(&trace_id));
    let got = eventually(std::time::Duration::from_secs(10), || {
        let v = correlated(&s, "mdso", "c-77", t0 - 1);
        (v.len() == 3).then_some(v)
    })
    .expect("three keyed lines are readable");
    assert_eq!(
        got,
        vec![want.clone(), want.clone(), want],
        "key=value, key: value and JSON fields all match"
    );
    assert_eq!(
        correlated(&s, "mdso", "c-other", t0 - 1),
        vec![None],
        "an unknown value stays unmatched"
    );
    assert_eq!(correlated(&s, "mdso", "no key", t0 - 1), vec![None]);

    let (_, metrics) = s.get_json("/metrics", None);
    let text = metrics.as_str().unwrap_or_default().to_string();
    assert!(text.contains("correlation_logs_enriched_total 3"), "{text}");
}

/// An MDSO log line with `circuit_id=` that arrives before any span with that key is enriched
/// once the span arrives: every read resolves it, so log queries, label filters and metric
/// queries see `seam_correlated_trace_id`, and the internal marker is never shown. The answer
/// holds after a restart, once the span has left the engine's memory (a 2 s window here) and only
/// the store's key index knows it.
#[test]
fn a_line_that_arrives_before_its_span_is_enriched_once_the_span_arrives() {
    const SHORT: &str = "correlation:\n  window: 2s\n";
    let dir = tempfile::tempdir().unwrap();
    let mut s = Seam::with_config(dir.path(), SHORT, &[]);
    let t0 = now_ns();
    let line =
        "mdso[2817]: INFO scriptplan=CircuitDetailsCollector circuit_id=c-late state=running";
    export(
        &s,
        "logs",
        &logs(service("mdso"), vec![log_line(t0 + 1_000_000, line)]),
    );
    let before = eventually(std::time::Duration::from_secs(10), || {
        let v = correlated(&s, "mdso", "c-late", t0 - 1);
        (v.len() == 1).then_some(v)
    })
    .expect("the line is readable");
    assert_eq!(before, vec![None], "no span yet: nothing to add");

    let trace_id = [0x6b; 16];
    let mut root = span(
        &trace_id,
        &[7; 8],
        "CircuitDetailsCollector".into(),
        t0,
        t0 + 300_000_000,
    );
    root.kind = 2;
    root.attributes = vec![string_kv("circuit_id", "c-late")];
    export(&s, "traces", &traces(service("mdso"), vec![root]));
    let want = Some(common::codec::hex(&trace_id));
    assert_eq!(correlated(&s, "mdso", "c-late", t0 - 1), vec![want.clone()]);

    // A label filter and a metric query see it too; the marker never shows.
    let id = want.clone().unwrap();
    let filter = format!("{{service_name=\"mdso\"}} | seam_correlated_trace_id=\"{id}\"");
    assert_eq!(selected(&s, &filter, t0 - 1), vec![want.clone()]);
    let time = (t0 + 5_000_000_000).to_string();
    let (code, body) = get(
        &s,
        "/loki/api/v1/query",
        &[
            ("query", "sum by (seam_correlated_trace_id) (count_over_time({service_name=\"mdso\"} |= \"c-late\" [5m]))"),
            ("time", &time),
        ],
        &[],
    );
    assert_eq!(code, 200, "{body}");
    let samples = vector_of(&body);
    assert_eq!(samples.len(), 1, "{body}");
    assert_eq!(samples[0].0["seam_correlated_trace_id"], id, "{body}");

    assert!(s.terminate(), "clean exit; log:\n{}", s.log_text());
    let s = Seam::with_config(dir.path(), SHORT, &[]);
    let forgotten = eventually(std::time::Duration::from_secs(20), || {
        (metric(&s, "correlation_active_keys") == Some(0.0)).then_some(())
    });
    assert!(forgotten.is_some(), "the engine never forgot the span");
    assert_eq!(correlated(&s, "mdso", "c-late", t0 - 1), vec![want]);
}
