//! The Loki read API Grafana's stock Loki data source calls, against the real binary: every
//! endpoint's answer checked field by field against Loki's shapes (`pkg/util/marshal`,
//! `pkg/loghttp`, `pkg/logproto`, the HTTP API reference), with values derived from what the test
//! pushed.

mod common;

use common::loki::{get, labels, matrix_of, push_json, streams_of, vector_of};
use common::{eventually, now_ns, Seam};
use serde_json::{json, Value};

const S: i64 = 1_000_000_000;
const TENANT: &str = "t-api";

/// What the tests push: two streams, JSON lines (two with structured metadata) and logfmt lines.
struct Data {
    /// A whole ten seconds, ten minutes ago; entries are at t0+1s … t0+5s.
    t0: i64,
    /// The bounds of those ten seconds as sent: t0 and t0+10s.
    start: String,
    end: String,
    api: [String; 3],
    web: [String; 2],
}

fn setup() -> (tempfile::TempDir, Seam, Data) {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::start(&dir.path().join("data"), &[]);
    let now = now_ns() as i64;
    let t0 = (now - 600 * S) / (10 * S) * (10 * S);
    let api = [
        r#"{"level":"info","user":{"id":7},"latency":"250ms","size":"10KB","msg":"ok"}"#
            .to_string(),
        r#"{"level":"error","user":{"id":8},"latency":"1s","size":"2MB","msg":"boom"}"#.to_string(),
        r#"{"level":"info","user":{"id":7},"latency":"5ms","size":"1KB","msg":"ok"}"#.to_string(),
    ];
    let web = [
        "level=warn status=404 took=1.5 path=/x".to_string(),
        "level=info status=200 took=0.25 path=/y".to_string(),
    ];
    let ts = |k: i64| (t0 + k * S).to_string();
    push_json(
        &s,
        Some(TENANT),
        json!([
            {"stream": {"app": "api", "env": "prod"}, "values": [
                [ts(1), api[0], {"trace_id": "abc"}],
                [ts(2), api[1], {"trace_id": "def"}],
                [ts(3), api[2]],
            ]},
            {"stream": {"app": "web", "env": "dev"}, "values": [[ts(4), web[0]], [ts(5), web[1]]]},
        ]),
    );
    let (start, end) = (t0.to_string(), (t0 + 10 * S).to_string());
    (
        dir,
        s,
        Data {
            t0,
            start,
            end,
            api,
            web,
        },
    )
}

impl Data {
    /// `query` over the ten seconds holding the entries: the `query`, `start` and `end` params.
    fn window<'a>(&'a self, query: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![("query", query), ("start", &self.start), ("end", &self.end)]
    }
}

fn q(s: &Seam, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    get(s, path, params, &[("X-Scope-OrgID", TENANT)])
}

fn range(s: &Seam, d: &Data, query: &str, dir: &str, limit: &str, hdr: &[(&str, &str)]) -> Value {
    let mut p = d.window(query);
    p.extend([("direction", dir), ("limit", limit)]);
    let mut h = vec![("X-Scope-OrgID", TENANT)];
    h.extend_from_slice(hdr);
    let (code, body) = get(s, "/loki/api/v1/query_range", &p, &h);
    assert_eq!(code, 200, "{query}: {body}");
    body
}

const STATS_BLOCKS: [&str; 5] = ["summary", "querier", "ingester", "cache", "index"];
const SUMMARY_KEYS: [&str; 12] = [
    "bytesProcessedPerSecond",
    "linesProcessedPerSecond",
    "totalBytesProcessed",
    "totalLinesProcessed",
    "execTime",
    "queueTime",
    "subqueries",
    "totalEntriesReturned",
    "splits",
    "shards",
    "totalPostFilterLines",
    "totalStructuredMetadataBytesProcessed",
];

/// Loki's full `stats` object: every block and every summary key, all numbers.
fn check_stats(stats: &Value) {
    for b in STATS_BLOCKS {
        assert!(stats[b].is_object(), "stats.{b}: {stats}");
    }
    for k in SUMMARY_KEYS {
        assert!(
            stats["summary"][k].is_number(),
            "stats.summary.{k}: {stats}"
        );
    }
    for k in [
        "chunk",
        "index",
        "result",
        "statsResult",
        "volumeResult",
        "seriesResult",
    ] {
        assert_eq!(stats["cache"][k]["requests"], 0, "stats.cache.{k}: {stats}");
    }
    assert!(stats["querier"]["store"]["chunk"]["decompressedLines"].is_number());
    assert!(stats["ingester"]["store"]["totalChunksRef"].is_number());
}

#[test]
fn log_queries_group_streams_by_merged_or_categorized_labels() {
    let (_dir, s, d) = setup();
    let ts = |k: i64| (d.t0 + k * S).to_string();

    // Without categorize-labels: one result stream per distinct merged label set, ordered by
    // label text as Loki sorts them (`, ` sorts before `}`), each stream's entries in the
    // requested direction.
    let body = range(&s, &d, r#"{app="api"}"#, "forward", "100", &[]);
    assert!(body["data"].get("encodingFlags").is_none(), "{body}");
    assert_eq!(
        body["data"]["result"],
        json!([
            {"stream": {"app": "api", "env": "prod", "trace_id": "abc"}, "values": [[ts(1), d.api[0]]]},
            {"stream": {"app": "api", "env": "prod", "trace_id": "def"}, "values": [[ts(2), d.api[1]]]},
            {"stream": {"app": "api", "env": "prod"}, "values": [[ts(3), d.api[2]]]},
        ])
    );
    let stats = &body["data"]["stats"];
    check_stats(stats);
    assert_eq!(stats["summary"]["totalEntriesReturned"], 3);
    assert_eq!(stats["summary"]["totalLinesProcessed"], 3);
    assert_eq!(stats["summary"]["totalPostFilterLines"], 3);
    assert_eq!(stats["summary"]["queueTime"], 0);

    // With it: one stream per stream label set; structured metadata rides on each value, and an
    // entry without any category gets `{}`.
    let cat = [("X-Loki-Response-Encoding-Flags", "categorize-labels")];
    let body = range(&s, &d, r#"{app="api"}"#, "backward", "100", &cat);
    assert_eq!(body["data"]["encodingFlags"], json!(["categorize-labels"]));
    assert_eq!(
        body["data"]["result"],
        json!([{"stream": {"app": "api", "env": "prod"}, "values": [
            [ts(3), d.api[2], {}],
            [ts(2), d.api[1], {"structuredMetadata": {"trace_id": "def"}}],
            [ts(1), d.api[0], {"structuredMetadata": {"trace_id": "abc"}}],
        ]}])
    );

    // `limit` keeps the newest entries going backward, the oldest going forward.
    let newest = streams_of(&range(&s, &d, r#"{env=~".+"}"#, "backward", "2", &cat));
    let got: Vec<(i64, String)> = newest
        .iter()
        .flat_map(|st| st.entries.iter().map(|(t, l, _)| (*t, l.clone())))
        .collect();
    assert_eq!(
        got,
        vec![
            (d.t0 + 5 * S, d.web[1].clone()),
            (d.t0 + 4 * S, d.web[0].clone())
        ]
    );
    let oldest = streams_of(&range(&s, &d, r#"{env=~".+"}"#, "forward", "1", &cat));
    assert_eq!(oldest.len(), 1);
    assert_eq!(oldest[0].entries[0].1, d.api[0]);

    // Parsed labels: merged into the stream without the flag, under `parsed` with it.
    let query = r#"{app="api"} | json | level="error""#;
    let body = range(&s, &d, query, "forward", "100", &cat);
    assert_eq!(
        body["data"]["result"],
        json!([{"stream": {"app": "api", "env": "prod"}, "values": [[ts(2), d.api[1], {
            "structuredMetadata": {"trace_id": "def"},
            "parsed": {"latency": "1s", "level": "error", "msg": "boom", "size": "2MB", "user_id": "8"}
        }]]}])
    );
    let body = range(&s, &d, query, "forward", "100", &[]);
    let st = streams_of(&body);
    assert_eq!(st.len(), 1);
    assert_eq!(
        st[0].labels,
        labels(&[
            ("app", "api"),
            ("env", "prod"),
            ("latency", "1s"),
            ("level", "error"),
            ("msg", "boom"),
            ("size", "2MB"),
            ("trace_id", "def"),
            ("user_id", "8")
        ])
    );
}

#[test]
fn metric_queries_answer_matrix_vector_and_scalar() {
    let (_dir, s, d) = setup();
    let at = (d.t0 + 10 * S).to_string();

    let (code, body) = q(
        &s,
        "/loki/api/v1/query",
        &[
            (
                "query",
                r#"sum by (app) (count_over_time({env=~".+"}[1h]))"#,
            ),
            ("time", &at),
        ],
    );
    assert_eq!(code, 200, "{body}");
    let t = (d.t0 / S + 10) as f64;
    assert_eq!(
        vector_of(&body),
        vec![
            (labels(&[("app", "api")]), (t, "3".to_string())),
            (labels(&[("app", "web")]), (t, "2".to_string())),
        ]
    );
    check_stats(&body["data"]["stats"]);

    let (code, body) = q(
        &s,
        "/loki/api/v1/query_range",
        &[
            ("query", r#"count_over_time({app="web"}[10s])"#),
            ("start", &d.t0.to_string()),
            ("end", &at),
            ("step", "5s"),
        ],
    );
    assert_eq!(code, 200, "{body}");
    let t0 = (d.t0 / S) as f64;
    assert_eq!(
        matrix_of(&body),
        vec![(
            labels(&[("app", "web"), ("env", "dev")]),
            vec![(t0 + 5.0, "2".to_string()), (t0 + 10.0, "2".to_string())]
        )]
    );

    let (code, body) = q(
        &s,
        "/loki/api/v1/query",
        &[("query", "vector(1)+vector(1)"), ("time", &at)],
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(vector_of(&body), vec![(labels(&[]), (t, "2".to_string()))]);

    let (code, body) = q(&s, "/loki/api/v1/query", &[("query", "1+1"), ("time", &at)]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["resultType"], "scalar");
    assert_eq!(body["data"]["result"], json!([d.t0 / S + 10, "2"]));

    let (code, body) = q(&s, "/loki/api/v1/query", &[("query", r#"{app="api"}"#)]);
    assert_eq!(code, 400);
    assert_eq!(
        body,
        "log queries are not supported as an instant query type, please change your query to a range query type"
    );
}

#[test]
fn bad_parameters_are_refused_with_lokis_reasons() {
    let (_dir, s, d) = setup();
    let (t0, t1) = (d.t0.to_string(), (d.t0 + S).to_string());
    let sel = r#"{app="api"}"#;
    for (params, want) in [
        (
            vec![("query", sel), ("start", &t1), ("end", &t0)],
            "end timestamp must not be before or equal to start time",
        ),
        (
            vec![("query", sel), ("step", "0")],
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ),
        (
            vec![("query", sel), ("step", "1ms")],
            "exceeded maximum resolution of 11,000 points per time series. Try increasing the value of the step parameter",
        ),
        (vec![("query", sel), ("direction", "sideways")], "invalid direction 'sideways'"),
        (vec![("query", sel), ("limit", "-1")], "limit must be a positive value"),
        (vec![("query", sel), ("interval", "-1")], "interval must be >= 0"),
    ] {
        let (code, body) = q(&s, "/loki/api/v1/query_range", &params);
        assert_eq!((code, body.as_str()), (400, Some(want)), "{params:?}");
    }
    let (code, body) = q(&s, "/loki/api/v1/query_range", &[("query", r#"{app="#)]);
    assert_eq!(code, 400);
    assert!(body.as_str().unwrap().starts_with("parse error"), "{body}");
}

#[test]
fn labels_values_and_series() {
    let (_dir, s, _d) = setup();
    let (code, body) = q(&s, "/loki/api/v1/labels", &[]);
    assert_eq!(
        (code, body),
        (200, json!({"status": "success", "data": ["app", "env"]}))
    );
    let (_, body) = q(&s, "/loki/api/v1/label/app/values", &[]);
    assert_eq!(body, json!({"status": "success", "data": ["api", "web"]}));
    let (_, body) = q(
        &s,
        "/loki/api/v1/label/app/values",
        &[("query", r#"{env="dev"}"#)],
    );
    assert_eq!(body["data"], json!(["web"]));
    let (_, body) = q(&s, "/loki/api/v1/labels", &[("query", r#"{app="nope"}"#)]);
    assert_eq!(body["data"], json!([]));
    let (code, body) = q(
        &s,
        "/loki/api/v1/series",
        &[("match[]", r#"{app="api"}"#), ("match[]", r#"{env="dev"}"#)],
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        json!({"status": "success", "data": [
            {"app": "api", "env": "prod"},
            {"app": "web", "env": "dev"}
        ]})
    );
    // Another tenant sees none of it.
    let (_, body) = get(
        &s,
        "/loki/api/v1/labels",
        &[],
        &[("X-Scope-OrgID", "other")],
    );
    assert_eq!(body["data"], json!([]));
}

#[test]
fn index_stats_and_volumes_count_exactly() {
    let (_dir, s, d) = setup();
    let len = |v: &[String]| v.iter().map(|l| l.len() as u64).sum::<u64>();
    let (api, web) = (len(&d.api), len(&d.web));

    let (code, body) = q(&s, "/loki/api/v1/index/stats", &d.window(r#"{app=~".+"}"#));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        json!({"streams": 2, "chunks": 1, "entries": 5, "bytes": api + web})
    );
    let (_, body) = q(&s, "/loki/api/v1/index/stats", &d.window(r#"{app="web"}"#));
    assert_eq!(
        body,
        json!({"streams": 1, "chunks": 1, "entries": 2, "bytes": web})
    );
    let (_, body) = q(&s, "/loki/api/v1/index/stats", &d.window(r#"{app="none"}"#));
    assert_eq!(
        body,
        json!({"streams": 0, "chunks": 0, "entries": 0, "bytes": 0})
    );

    // Instant volume: a vector stamped with `end`, grouped by the selector's label names,
    // largest first.
    let t_end = d.t0 / S + 10;
    let (code, body) = q(&s, "/loki/api/v1/index/volume", &d.window(r#"{app=~".+"}"#));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["resultType"], "vector");
    assert_eq!(
        body["data"]["result"],
        json!([
            {"metric": {"app": "api"}, "value": [t_end, api.to_string()]},
            {"metric": {"app": "web"}, "value": [t_end, web.to_string()]},
        ])
    );
    check_stats(&body["data"]["stats"]);

    let mut p = d.window(r#"{app=~".+"}"#);
    p.push(("targetLabels", "env"));
    let (_, body) = q(&s, "/loki/api/v1/index/volume", &p);
    assert_eq!(
        body["data"]["result"],
        json!([
            {"metric": {"env": "prod"}, "value": [t_end, api.to_string()]},
            {"metric": {"env": "dev"}, "value": [t_end, web.to_string()]},
        ])
    );

    let mut p = d.window("{}");
    p.push(("aggregateBy", "labels"));
    let (_, body) = q(&s, "/loki/api/v1/index/volume", &p);
    let total = (api + web).to_string();
    assert_eq!(
        body["data"]["result"],
        json!([
            {"metric": {"app": ""}, "value": [t_end, total]},
            {"metric": {"env": ""}, "value": [t_end, total]},
        ])
    );

    let mut p = d.window(r#"{app=~".+"}"#);
    p.push(("limit", "1"));
    let (_, body) = q(&s, "/loki/api/v1/index/volume", &p);
    assert_eq!(body["data"]["result"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"]["result"][0]["metric"], json!({"app": "api"}));

    // Range volume: 5s buckets aligned to the step, each stamped with its end (1ms before the
    // next bucket, as Loki cuts them).
    let mut p = d.window(r#"{app=~".+"}"#);
    p.push(("step", "5s"));
    let (code, body) = q(&s, "/loki/api/v1/index/volume_range", &p);
    assert_eq!(code, 200, "{body}");
    // The server prints whole milliseconds over 1000, so compute the expectation the same way.
    let first_end = ((d.t0 + 5 * S) / 1_000_000 - 1) as f64 / 1000.0;
    assert_eq!(
        matrix_of(&body),
        vec![
            (
                labels(&[("app", "api")]),
                vec![(first_end, api.to_string())]
            ),
            (
                labels(&[("app", "web")]),
                vec![
                    (first_end, d.web[0].len().to_string()),
                    (t_end as f64, d.web[1].len().to_string())
                ]
            ),
        ]
    );
}

#[test]
fn detected_labels_and_fields() {
    let (_dir, s, d) = setup();

    let (code, body) = q(
        &s,
        "/loki/api/v1/detected_labels",
        &d.window(r#"{app=~".+"}"#),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        json!({"detectedLabels": [
            {"label": "app", "cardinality": 2},
            {"label": "env", "cardinality": 2}
        ]})
    );

    let (code, body) = q(
        &s,
        "/loki/api/v1/detected_fields",
        &d.window(r#"{app="api"}"#),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        json!({"limit": 1000, "fields": [
            {"label": "latency", "type": "duration", "cardinality": 3, "parsers": ["json"], "jsonPath": ["latency"]},
            {"label": "level", "type": "string", "cardinality": 2, "parsers": ["json"], "jsonPath": ["level"]},
            {"label": "msg", "type": "string", "cardinality": 2, "parsers": ["json"], "jsonPath": ["msg"]},
            {"label": "size", "type": "bytes", "cardinality": 3, "parsers": ["json"], "jsonPath": ["size"]},
            {"label": "trace_id", "type": "string", "cardinality": 2, "parsers": null},
            {"label": "user_id", "type": "int", "cardinality": 2, "parsers": ["json"], "jsonPath": ["user", "id"]},
        ]})
    );

    let (_, body) = q(
        &s,
        "/loki/api/v1/detected_fields",
        &d.window(r#"{app="web"}"#),
    );
    assert_eq!(
        body,
        json!({"limit": 1000, "fields": [
            {"label": "level", "type": "string", "cardinality": 2, "parsers": ["logfmt"]},
            {"label": "path", "type": "string", "cardinality": 2, "parsers": ["logfmt"]},
            {"label": "status", "type": "int", "cardinality": 2, "parsers": ["logfmt"]},
            {"label": "took", "type": "float", "cardinality": 2, "parsers": ["logfmt"]},
        ]})
    );

    let (code, body) = q(
        &s,
        "/loki/api/v1/detected_field/level/values",
        &d.window(r#"{app="api"}"#),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body, json!({"values": ["error", "info"], "limit": 1000}));
    let (_, body) = q(
        &s,
        "/loki/api/v1/detected_field/nope/values",
        &d.window(r#"{app="api"}"#),
    );
    assert_eq!(body, json!({"values": []}));
}

#[test]
fn patterns_buildinfo_and_format_query() {
    let (_dir, s, _d) = setup();
    let (code, body) = q(&s, "/loki/api/v1/patterns", &[("query", r#"{app="api"}"#)]);
    assert_eq!(
        (code, body),
        (200, json!({"status": "success", "data": []}))
    );

    let (code, body) = q(&s, "/loki/api/v1/status/buildinfo", &[]);
    assert_eq!(code, 200);
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "branch",
            "buildDate",
            "buildUser",
            "goVersion",
            "revision",
            "version"
        ]
    );
    assert!(body["version"].as_str().unwrap().starts_with('3'), "{body}");

    let (code, body) = q(
        &s,
        "/loki/api/v1/format_query",
        &[("query", r#"{app="api"}|="x""#)],
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        json!({"status": "success", "data": r#"{app="api"} |= "x""#})
    );
    let (code, body) = q(&s, "/loki/api/v1/format_query", &[("query", "{app=")]);
    assert_eq!(code, 400);
    assert_eq!(body["status"], "invalid-query");
    assert!(
        body["error"].as_str().unwrap().starts_with("parse error"),
        "{body}"
    );
    assert!(body.get("data").is_none());
}

#[test]
fn log_queries_include_the_last_nanosecond_before_end() {
    let (_dir, s, d) = setup();
    // The web entries are at t0+4s and t0+5s: `end` just after the last includes it, `end` at
    // it leaves it out (Loki reads `[start, end)`).
    let lines = |end: i64| -> Vec<String> {
        let (start, end) = (d.t0.to_string(), end.to_string());
        let p = [
            ("query", r#"{app="web"}"#),
            ("start", start.as_str()),
            ("end", end.as_str()),
            ("direction", "forward"),
        ];
        let (code, body) = q(&s, "/loki/api/v1/query_range", &p);
        assert_eq!(code, 200, "{body}");
        streams_of(&body)
            .into_iter()
            .flat_map(|st| st.entries.into_iter().map(|(_, line, _)| line))
            .collect()
    };
    assert_eq!(lines(d.t0 + 5 * S + 1), d.web.to_vec());
    assert_eq!(lines(d.t0 + 5 * S), d.web[..1].to_vec());
}

/// Flushes the head a moment after each push, so every push becomes a segment of its own.
const FLUSH_SOON: &str = "storage:\n  flush_age: 200ms\n";

#[test]
fn a_needle_query_reports_the_chunks_its_token_filter_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::with_config(dir.path(), FLUSH_SOON, &[]);
    let t0 = (now_ns() as i64 - 600 * S) / (10 * S) * (10 * S);
    let needle = "4bf92f3577b34da6a3ce929d0e0e4736";
    let lines = [
        "GET /a trace_id=00f067aa0ba902b7aaaabbbbccccdddd".to_string(),
        format!("GET /b trace_id={needle}"),
        "GET /c trace_id=0af7651916cd43dd8448eb211c80319c".to_string(),
    ];
    for (k, line) in lines.iter().enumerate() {
        let ts = (t0 + (k as i64 + 1) * S).to_string();
        push_json(
            &s,
            Some(TENANT),
            json!([{"stream": {"app": "needle"}, "values": [[ts, line]]}]),
        );
        eventually(std::time::Duration::from_secs(20), || {
            let segments = s.ready()["components"]["store"]["segments"].as_u64()?;
            (segments > k as u64).then_some(())
        })
        .expect("each push is flushed to a segment of its own");
    }
    let query = format!(r#"{{app="needle"}} |= "{needle}""#);
    let (start, end) = (t0.to_string(), (t0 + 10 * S).to_string());
    let (code, body) = q(
        &s,
        "/loki/api/v1/query_range",
        &[("query", &query), ("start", &start), ("end", &end)],
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["data"]["result"][0]["values"],
        json!([[(t0 + 2 * S).to_string(), lines[1]]]),
        "{body}"
    );
    let stats = &body["data"]["stats"];
    check_stats(stats);
    // One row group per segment: all three referenced, the two without the needle ruled out by
    // their token filters before any page was read.
    let store = &stats["querier"]["store"];
    assert_eq!(store["totalChunksRef"], 3, "{stats}");
    assert_eq!(store["totalChunksDownloaded"], 1, "{stats}");
    assert_eq!(store["chunk"]["decompressedLines"], 1, "{stats}");
    assert!(
        store["chunk"]["compressedBytes"].as_u64().unwrap() > 0,
        "{stats}"
    );
    assert_eq!(stats["index"]["totalChunks"], 3, "{stats}");
    assert_eq!(stats["index"]["postFilterChunks"], 1, "{stats}");
}
