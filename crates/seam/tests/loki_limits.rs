//! Per-tenant limits from the `limits:` section, against the real binary: every query limit
//! refuses with Loki's status and words, the push limits follow the tenant, a tiny
//! `query_timeout` answers 504, and an override applies to its tenant only.

mod common;

use common::loki::{get, push_json, push_raw};
use common::{now_ns, Seam};
use serde_json::{json, Value};

const S: i64 = 1_000_000_000;

const CONFIG: &str = "\
limits:
  max_entries_limit_per_query: 100
  per_tenant:
    small:
      max_entries_limit_per_query: 10
      max_query_length: 1h
      max_query_series: 2
      max_line_size: 100
      max_label_names_per_stream: 2
    slow:
      query_timeout: 1ms
    unbounded:
      query_timeout: 0
";

fn start(dir: &std::path::Path) -> Seam {
    Seam::with_config(dir, CONFIG, &[])
}

fn query_range(s: &Seam, tenant: &str, params: &[(&str, &str)]) -> (u16, Value) {
    get(
        s,
        "/loki/api/v1/query_range",
        params,
        &[("X-Scope-OrgID", tenant)],
    )
}

/// Three streams for `tenant`, one entry each, a minute ago.
fn push_three(s: &Seam, tenant: &str) {
    let t = (now_ns() as i64 - 60 * S).to_string();
    push_json(
        s,
        Some(tenant),
        json!([
            {"stream": {"app": "a"}, "values": [[t, "one"]]},
            {"stream": {"app": "b"}, "values": [[t, "two"]]},
            {"stream": {"app": "c"}, "values": [[t, "three"]]},
        ]),
    );
}

#[test]
fn entries_limit_is_per_tenant_and_for_log_queries_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    push_three(&s, "small");
    push_three(&s, "big");
    let sel = r#"{app=~".+"}"#;

    let (code, body) = query_range(&s, "small", &[("query", sel), ("limit", "11")]);
    assert_eq!(
        (code, body.as_str()),
        (
            429,
            Some("max entries limit per query exceeded, limit > max_entries_limit_per_query (11 > 10)")
        )
    );
    let (code, body) = query_range(&s, "small", &[("query", sel), ("limit", "10")]);
    assert_eq!(code, 200, "{body}");
    // The file's default applies to tenants without overrides.
    let (code, body) = query_range(&s, "big", &[("query", sel), ("limit", "11")]);
    assert_eq!(code, 200, "{body}");
    let (code, body) = query_range(&s, "big", &[("query", sel), ("limit", "101")]);
    assert_eq!(
        (code, body.as_str()),
        (
            429,
            Some("max entries limit per query exceeded, limit > max_entries_limit_per_query (101 > 100)")
        )
    );
    // A metric query is not limited by it (Grafana sends its line limit with every query).
    let (code, body) = query_range(
        &s,
        "small",
        &[
            ("query", r#"count_over_time({app="a"}[1m])"#),
            ("limit", "1000"),
        ],
    );
    assert_eq!(code, 200, "{body}");
}

#[test]
fn query_length_is_limited_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let now = now_ns() as i64;
    let (start, end) = ((now - 2 * 3600 * S).to_string(), now.to_string());
    let window = [("start", start.as_str()), ("end", end.as_str())];
    let want = "the query time range exceeds the limit (query length: 2h0m0s, limit: 1h)";

    let mut p = vec![("query", r#"{app="a"}"#)];
    p.extend(window);
    let (code, body) = query_range(&s, "small", &p);
    assert_eq!((code, body.as_str()), (429, Some(want)));
    let (code, body) = query_range(&s, "big", &p);
    assert_eq!(code, 200, "{body}");

    // The label, series and index endpoints check the same limit.
    for path in [
        "/loki/api/v1/labels",
        "/loki/api/v1/label/app/values",
        "/loki/api/v1/series",
        "/loki/api/v1/index/stats",
        "/loki/api/v1/index/volume",
    ] {
        let (code, body) = get(&s, path, &p, &[("X-Scope-OrgID", "small")]);
        assert_eq!((code, body.as_str()), (429, Some(want)), "{path}");
        let (code, body) = get(&s, path, &p, &[("X-Scope-OrgID", "big")]);
        assert_eq!(code, 200, "{path}: {body}");
    }
}

#[test]
fn series_limit_refuses_a_wide_metric_query() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    push_three(&s, "small");
    push_three(&s, "big");
    let p = [("query", r#"count_over_time({app=~".+"}[5m])"#)];

    let (code, body) = get(&s, "/loki/api/v1/query", &p, &[("X-Scope-OrgID", "small")]);
    assert_eq!(code, 429, "{body}");
    // Loki's wording changed across releases ("maximum of series (N)" / "maximum number of
    // series (N)"); both name the limit so.
    let text = body.as_str().unwrap();
    assert!(text.starts_with("maximum "), "{body}");
    assert!(
        text.contains("series (2) reached for a single query"),
        "{body}"
    );
    let (code, body) = get(&s, "/loki/api/v1/query", &p, &[("X-Scope-OrgID", "big")]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["data"]["result"].as_array().unwrap().len(),
        3,
        "{body}"
    );
}

#[test]
fn a_tiny_query_timeout_answers_504() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let t0 = now_ns() as i64 - 600 * S;
    // Enough lines that no scan finishes within a millisecond.
    for batch in 0..10 {
        let values: Vec<Value> = (0..5000)
            .map(|i| {
                let ts = t0 + (batch * 5000 + i) * 1_000_000;
                json!([
                    ts.to_string(),
                    format!("line {i} of batch {batch} with some padding text")
                ])
            })
            .collect();
        push_json(
            &s,
            Some("slow"),
            json!([{"stream": {"job": "bulk"}, "values": values}]),
        );
        for tenant in ["fast", "unbounded"] {
            push_json(
                &s,
                Some(tenant),
                json!([{"stream": {"job": "bulk"}, "values": values}]),
            );
        }
    }
    let p = [(
        "query",
        r#"sum(count_over_time({job="bulk"} |~ "batch [0-9]+ with" [1h]))"#,
    )];
    let want = "request timed out, decrease the duration of the request or add more label matchers (prefer exact match over regex match) to reduce the amount of data processed";

    let (code, body) = get(&s, "/loki/api/v1/query", &p, &[("X-Scope-OrgID", "slow")]);
    assert_eq!((code, body.as_str()), (504, Some(want)));
    let (code, body) = get(
        &s,
        "/loki/api/v1/index/stats",
        &[("query", r#"{job="bulk"}"#)],
        &[("X-Scope-OrgID", "slow")],
    );
    assert_eq!((code, body.as_str()), (504, Some(want)));

    // The default one-minute timeout lets the same query through for another tenant.
    // And a zero timeout turns the limit off.
    for tenant in ["fast", "unbounded"] {
        let (code, body) = get(&s, "/loki/api/v1/query", &p, &[("X-Scope-OrgID", tenant)]);
        assert_eq!(code, 200, "{tenant}: {body}");
        assert_eq!(body["data"]["result"][0]["value"][1], "50000", "{body}");
    }
}

#[test]
fn push_limits_follow_the_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let t = (now_ns() as i64).to_string();
    let long = "x".repeat(150);
    let push = |tenant: &str, streams: Value| {
        push_raw(
            &s,
            &[
                ("Content-Type".to_string(), "application/json".to_string()),
                ("X-Scope-OrgID".to_string(), tenant.to_string()),
            ],
            json!({ "streams": streams }).to_string().into_bytes(),
        )
    };
    let long_line = json!([{"stream": {"app": "a"}, "values": [[t, long]]}]);
    let wide = json!([{"stream": {"a": "1", "b": "2", "c": "3"}, "values": [[t, "x"]]}]);

    let (code, text) = push("small", long_line.clone());
    assert_eq!(code, 400);
    assert!(
        text.contains(
            "max entry size '100' bytes exceeded for stream '{app=\"a\"}' while adding an entry with length '150' bytes"
        ),
        "{text}"
    );
    let (code, text) = push("small", wide.clone());
    assert_eq!(code, 400);
    assert!(
        text.contains(r#"stream '{a="1", b="2", c="3"}' has 3 label names; limit 2"#),
        "{text}"
    );
    assert_eq!(push("big", long_line).0, 204);
    assert_eq!(push("big", wide).0, 204);
}
