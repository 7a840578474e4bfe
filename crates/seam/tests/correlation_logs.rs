//! Log lines that carry a correlation key but no trace id are given the trace their key matched.

mod common;

use common::otlp::{export, log_line, logs, service, span, traces};
use common::{eventually, now_ns, Seam};
use seam_model::attributes::string_kv;

/// The `seam_correlated_trace_id` of every line of `service_name` whose text contains `needle`.
fn correlated(s: &Seam, service_name: &str, needle: &str, since: u64) -> Vec<Option<String>> {
    let q = format!("{{service_name=\"{service_name}\"}} |= \"{needle}\"");
    let url = format!(
        "/loki/api/v1/query_range?query={}&start={since}",
        common::codec::enc(&q)
    );
    let (code, body) = s.get_json(&url, None);
    assert_eq!(code, 200, "{body}");
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
