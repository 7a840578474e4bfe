//! Grafana's stock Loki data source, replayed: the exact requests Grafana 11/12 sends (its Go
//! backend for queries and the health check, its front end's metadata requests through the
//! resource proxy, its live tail over a WebSocket), each answer checked field by field against
//! Loki's documented shapes: `status`, `data.resultType`, the result elements, the value types
//! (nanosecond strings for stream entries, numeric seconds and string values for samples),
//! `data.stats.summary`, `encodingFlags` with `categorize-labels`, and the bare objects of
//! `index/stats`, `detected_labels` and `detected_fields`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::loki::{
    assert_stats, get, label_map, labels, matrix_of, push_json, sorted_streams, streams_of,
    vector_of, Entry, LabelMap, Stream,
};
use common::{now_ns, Seam};
use serde_json::{json, Value};

const S: i64 = 1_000_000_000;

/// (stream labels, ts, line, structured metadata).
type ShopEntry = (LabelMap, i64, String, LabelMap);

/// The data Grafana looks at: three streams of `job="shop"` in one minute, two entries with
/// structured metadata, one JSON line.
struct Shop {
    _dir: tempfile::TempDir,
    s: Seam,
    /// The minute (ns, aligned) the entries fall in: (m, m + 60 s].
    m: i64,
    /// (stream labels, ts, line, structured metadata).
    entries: Vec<ShopEntry>,
}

fn shop() -> Shop {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::start(dir.path(), &[]);
    let now = now_ns() as i64;
    let m = now - now.rem_euclid(60 * S) - 180 * S;
    let info = labels(&[("job", "shop"), ("level", "info"), ("env", "prod")]);
    let error = labels(&[("job", "shop"), ("level", "error"), ("env", "prod")]);
    let warn = labels(&[("job", "shop"), ("level", "warn"), ("env", "dev")]);
    let none = BTreeMap::new;
    let trace = |t: &str| labels(&[("trace_id", t)]);
    let entries = vec![
        (
            info.clone(),
            m + 10 * S,
            "GET /cart 200".to_string(),
            none(),
        ),
        (
            error.clone(),
            m + 15 * S,
            "payment failed".to_string(),
            trace("4bf92f3577b34da6a3ce929d0e0e4736"),
        ),
        (
            info.clone(),
            m + 20 * S,
            "GET /items 200".to_string(),
            none(),
        ),
        (
            error.clone(),
            m + 25 * S,
            "db timeout".to_string(),
            trace("00f067aa0ba902b74bf92f3577b34da6"),
        ),
        (
            info.clone(),
            m + 30 * S,
            r#"{"msg":"checkout","user_id":42}"#.to_string(),
            none(),
        ),
        (
            warn.clone(),
            m + 40 * S,
            "slow query 1500ms".to_string(),
            none(),
        ),
    ];
    let mut streams: BTreeMap<BTreeMap<String, String>, Vec<Value>> = BTreeMap::new();
    for (l, ts, line, md) in &entries {
        let v = if md.is_empty() {
            json!([ts.to_string(), line])
        } else {
            json!([ts.to_string(), line, md])
        };
        streams.entry(l.clone()).or_default().push(v);
    }
    let body: Vec<Value> = streams
        .into_iter()
        .map(|(l, values)| json!({"stream": l, "values": values}))
        .collect();
    push_json(&s, None, Value::Array(body));
    Shop {
        _dir: dir,
        s,
        m,
        entries,
    }
}

impl Shop {
    /// `start`/`end` as Grafana's front end sends them for metadata: ns integers.
    fn range(&self) -> (String, String) {
        (self.m.to_string(), (self.m + 120 * S).to_string())
    }

    fn get(&self, path: &str, params: &[(&str, &str)], headers: &[(&str, &str)]) -> Value {
        let (code, body) = get(&self.s, path, params, headers);
        assert_eq!(code, 200, "{path} {params:?}: {body}");
        body
    }

    /// A metadata request over [`Shop::range`]: `params`, then `start` and `end`.
    fn meta(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let (start, end) = self.range();
        let mut all = params.to_vec();
        all.extend([("start", start.as_str()), ("end", end.as_str())]);
        self.get(path, &all, &[])
    }

    /// The bytes of the lines of `level` (all levels when None).
    fn bytes(&self, level: Option<&str>) -> u64 {
        self.entries
            .iter()
            .filter(|(l, ..)| level.is_none_or(|v| l["level"] == v))
            .map(|(_, _, line, _)| line.len() as u64)
            .sum()
    }
}

/// Grafana's backend `makeDataRequest` for a range query: direction, limit, query, start and end
/// in ns, `step` in whole milliseconds with `ms`.
fn range_params<'a>(
    query: &'a str,
    start: &'a str,
    end: &'a str,
    step: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("direction", "backward"),
        ("limit", "1000"),
        ("query", query),
        ("start", start),
        ("end", end),
        ("step", step),
    ]
}

#[test]
fn health_check_is_vector_one_plus_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::start(dir.path(), &[]);
    // pkg/tsdb/loki/healthcheck.go: an instant query at time.Unix(4, 0) sent as `time=4000000000`,
    // which Loki reads as seconds (an integer of at most 10 digits is seconds, longer is ns).
    let (code, body) = get(
        &s,
        "/loki/api/v1/query",
        &[
            ("direction", "backward"),
            ("query", "vector(1)+vector(1)"),
            ("time", "4000000000"),
        ],
        &[],
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        vector_of(&body),
        vec![(BTreeMap::new(), (4_000_000_000.0, "2".into()))]
    );
    assert_eq!(
        body["data"]["result"][0]["value"],
        json!([4_000_000_000u64, "2"]),
        "[<number: seconds>, <string: value>]: {body}"
    );
    assert_stats(&body);
}

#[test]
fn log_range_query_with_and_without_categorize_labels() {
    let shop = shop();
    let (start, end) = shop.range();
    let params = range_params("{job=\"shop\"}", &start, &end, "120ms");

    // Without the flag: structured metadata merged into the labels, one stream per distinct set,
    // two-element entries, newest first (backward), no encodingFlags.
    let body = shop.get("/loki/api/v1/query_range", &params, &[]);
    assert_stats(&body);
    assert!(
        body["data"].get("encodingFlags").is_none(),
        "no encodingFlags without the header: {body}"
    );
    let got = sorted_streams(&body);
    let mut want: BTreeMap<LabelMap, Vec<Entry>> = BTreeMap::new();
    for (l, ts, line, md) in shop.entries.iter().rev() {
        let mut merged = l.clone();
        merged.extend(md.clone());
        want.entry(merged)
            .or_default()
            .push((*ts, line.clone(), None));
    }
    let want: Vec<Stream> = want
        .into_iter()
        .map(|(labels, entries)| Stream { labels, entries })
        .collect();
    assert_eq!(got, want, "{body}");
    assert_eq!(got.len(), 4, "the two error entries differ by trace_id");

    // With it (what Grafana sends for logs): stream labels only, every entry with a third element
    // holding its structured metadata, and the flag echoed in data.encodingFlags.
    let body = shop.get(
        "/loki/api/v1/query_range",
        &params,
        &[("X-Loki-Response-Encoding-Flags", "categorize-labels")],
    );
    assert_eq!(
        body["data"]["encodingFlags"],
        json!(["categorize-labels"]),
        "{body}"
    );
    assert_stats(&body);
    let got = sorted_streams(&body);
    let mut want: BTreeMap<LabelMap, Vec<Entry>> = BTreeMap::new();
    for (l, ts, line, md) in shop.entries.iter().rev() {
        let third = if md.is_empty() {
            json!({})
        } else {
            json!({ "structuredMetadata": md })
        };
        want.entry(l.clone())
            .or_default()
            .push((*ts, line.clone(), Some(third)));
    }
    let want: Vec<Stream> = want
        .into_iter()
        .map(|(labels, entries)| Stream { labels, entries })
        .collect();
    assert_eq!(got, want, "{body}");

    // The logs sample Grafana runs for a metric query (X-Query-Tags names the supporting query)
    // and a line filter, forward.
    let mut params = range_params("{job=\"shop\"} |= \"GET\"", &start, &end, "120ms");
    params[0] = ("direction", "forward");
    let body = shop.get(
        "/loki/api/v1/query_range",
        &params,
        &[("X-Query-Tags", "Source=logsample")],
    );
    let got = streams_of(&body);
    assert_eq!(got.len(), 1, "{body}");
    assert_eq!(
        got[0]
            .entries
            .iter()
            .map(|e| (e.0, e.1.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (shop.m + 10 * S, "GET /cart 200"),
            (shop.m + 20 * S, "GET /items 200")
        ]
    );
}

#[test]
fn log_volume_queries() {
    let shop = shop();
    let (start, end) = shop.range();
    let m_s = (shop.m / S) as f64;
    // The histogram over Explore's logs: one sample per level at the end of the minute holding the
    // entries; the empty steps before and after have no sample.
    for (query, by_detected) in [
        (
            "sum by (level) (count_over_time({job=\"shop\"}[1m]))",
            false,
        ),
        (
            "sum by (level, detected_level) (count_over_time({job=\"shop\"} | drop __error__[1m]))",
            true,
        ),
    ] {
        let body = shop.get(
            "/loki/api/v1/query_range",
            &range_params(query, &start, &end, "60000ms"),
            &[("X-Query-Tags", "Source=logvolhist")],
        );
        assert_stats(&body);
        let got: Vec<(String, Vec<(f64, String)>)> = matrix_of(&body)
            .into_iter()
            .map(|(metric, values)| {
                let level = metric
                    .get("level")
                    .unwrap_or_else(|| panic!("{query}: a level label: {body}"))
                    .clone();
                let mut rest = metric.clone();
                rest.remove("level");
                if by_detected {
                    // Loki adds detected_level when it detects one; it then equals the level.
                    if let Some(d) = rest.remove("detected_level") {
                        assert_eq!(d, level, "{body}");
                    }
                }
                assert!(rest.is_empty(), "{query}: only the grouping labels: {body}");
                (level, values)
            })
            .collect();
        let at = |n: &str| vec![(m_s + 60.0, n.to_string())];
        assert_eq!(
            got,
            vec![
                ("error".to_string(), at("2")),
                ("info".to_string(), at("3")),
                ("warn".to_string(), at("1")),
            ],
            "{query}: {body}"
        );
        // Sample times are JSON numbers of seconds.
        assert!(
            body["data"]["result"][0]["values"][0][0].is_number(),
            "{body}"
        );
    }
}

#[test]
fn labels_label_values_and_series() {
    let shop = shop();
    let body = shop.meta("/loki/api/v1/labels", &[]);
    assert_eq!(
        body,
        json!({"status": "success", "data": ["env", "job", "level"]})
    );
    let body = shop.meta(
        "/loki/api/v1/labels",
        &[("query", "{job=\"shop\", env=\"dev\"}")],
    );
    assert_eq!(
        body,
        json!({"status": "success", "data": ["env", "job", "level"]})
    );
    let body = shop.meta(
        "/loki/api/v1/label/level/values",
        &[("query", "{job=\"shop\"}")],
    );
    assert_eq!(
        body,
        json!({"status": "success", "data": ["error", "info", "warn"]})
    );
    let body = shop.meta(
        "/loki/api/v1/label/level/values",
        &[("query", "{env=\"dev\"}")],
    );
    assert_eq!(body, json!({"status": "success", "data": ["warn"]}));
    let body = shop.meta("/loki/api/v1/series", &[("match[]", "{job=\"shop\"}")]);
    assert_eq!(body["status"], "success", "{body}");
    let mut series: Vec<BTreeMap<String, String>> = body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("data is an array of label objects: {body}"))
        .iter()
        .map(label_map)
        .collect();
    series.sort();
    let mut want: Vec<BTreeMap<String, String>> =
        shop.entries.iter().map(|(l, ..)| l.clone()).collect();
    want.sort();
    want.dedup();
    assert_eq!(series, want, "{body}");
}

#[test]
fn index_stats_and_volume() {
    let shop = shop();
    // index/stats: a bare object (no status envelope), Grafana's query size hint.
    let body = shop.meta("/loki/api/v1/index/stats", &[("query", "{job=\"shop\"}")]);
    let keys: Vec<&str> = body
        .as_object()
        .unwrap_or_else(|| panic!("an object: {body}"))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        vec!["bytes", "chunks", "entries", "streams"],
        "{body}"
    );
    assert_eq!(body["streams"], 3, "{body}");
    assert_eq!(body["entries"], 6, "{body}");
    assert!(body["chunks"].is_u64(), "{body}");
    let bytes = body["bytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("bytes: {body}"));
    assert_eq!(bytes, shop.bytes(None), "the lines' bytes: {body}");

    // index/volume: a vector, by default aggregated into the labels the query names.
    let end_s = ((shop.m + 120 * S) / S) as f64;
    let body = shop.meta(
        "/loki/api/v1/index/volume",
        &[("query", "{job=\"shop\"}"), ("limit", "100")],
    );
    let got = vector_of(&body);
    assert_eq!(got.len(), 1, "{body}");
    assert_eq!(got[0].0, labels(&[("job", "shop")]), "{body}");
    assert_eq!(got[0].1 .0, end_s, "stamped at the end: {body}");
    let total: u64 = got[0].1 .1.parse().unwrap();
    assert_eq!(total, shop.bytes(None), "the lines' bytes: {body}");
    // ... or into targetLabels.
    let body = shop.meta(
        "/loki/api/v1/index/volume",
        &[
            ("query", "{job=\"shop\"}"),
            ("limit", "100"),
            ("targetLabels", "level"),
            ("aggregateBy", "series"),
        ],
    );
    let got = vector_of(&body);
    let levels: Vec<BTreeMap<String, String>> = got.iter().map(|g| g.0.clone()).collect();
    assert_eq!(
        levels,
        vec![
            labels(&[("level", "error")]),
            labels(&[("level", "info")]),
            labels(&[("level", "warn")]),
        ],
        "{body}"
    );
    for (metric, (t, v)) in &got {
        assert_eq!(*t, end_s, "{body}");
        assert_eq!(v, &shop.bytes(Some(&metric["level"])).to_string(), "{body}");
    }

    // index/volume_range: Loki cuts [start, end] into steps (each but the last ending 1 ms short of
    // the next), stamps each step's bytes at its end, and answers a matrix once a series has more
    // than one step, else a vector. All entries are in the first step so far: a vector.
    let volume_range = || {
        shop.meta(
            "/loki/api/v1/index/volume_range",
            &[
                ("query", "{job=\"shop\"}"),
                ("step", "60"),
                ("targetLabels", "level"),
            ],
        )
    };
    let first_step = ((shop.m + 60 * S) / 1_000_000 - 1) as f64 / 1000.0;
    let body = volume_range();
    let got: Vec<(BTreeMap<String, String>, (f64, String))> = vector_of(&body);
    assert_eq!(
        got,
        ["error", "info", "warn"]
            .iter()
            .map(|l| (
                labels(&[("level", l)]),
                (first_step, shop.bytes(Some(l)).to_string())
            ))
            .collect::<Vec<_>>(),
        "{body}"
    );
    // One more info entry in the second step: a matrix.
    let late = "GET /late 200";
    push_json(
        &shop.s,
        None,
        json!([{"stream": labels(&[("job", "shop"), ("level", "info"), ("env", "prod")]),
                "values": [[(shop.m + 70 * S).to_string(), late]]}]),
    );
    let body = volume_range();
    let one = |l: &str| vec![(first_step, shop.bytes(Some(l)).to_string())];
    let mut info = one("info");
    info.push((end_s, late.len().to_string()));
    assert_eq!(
        matrix_of(&body),
        vec![
            (labels(&[("level", "error")]), one("error")),
            (labels(&[("level", "info")]), info),
            (labels(&[("level", "warn")]), one("warn")),
        ],
        "{body}"
    );
}

#[test]
fn detected_labels_and_fields() {
    let shop = shop();
    // detected_labels: a bare {"detectedLabels": [{label, cardinality}]}.
    let body = shop.meta(
        "/loki/api/v1/detected_labels",
        &[("query", "{job=\"shop\"}")],
    );
    assert_eq!(
        body.as_object().map(|o| o.keys().collect::<Vec<_>>()),
        Some(vec![&"detectedLabels".to_string()]),
        "{body}"
    );
    let detected: BTreeMap<String, u64> = body["detectedLabels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["label"].as_str().unwrap().to_string(),
                d["cardinality"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(detected.get("level"), Some(&3), "{body}");
    assert_eq!(detected.get("env"), Some(&2), "{body}");

    // detected_fields: {"fields": [{label, type, cardinality, parsers}], "limit"}; fields from the
    // JSON line and from structured metadata (parsers null).
    let body = shop.meta(
        "/loki/api/v1/detected_fields",
        &[("query", "{job=\"shop\"}"), ("limit", "1000")],
    );
    assert_eq!(body["limit"], 1000, "{body}");
    let fields: BTreeMap<String, Value> = body["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("fields: {body}"))
        .iter()
        .map(|f| {
            for k in f.as_object().unwrap().keys() {
                assert!(
                    ["label", "type", "cardinality", "parsers", "jsonPath"].contains(&k.as_str()),
                    "unknown key {k}: {f}"
                );
            }
            (f["label"].as_str().unwrap().to_string(), f.clone())
        })
        .collect();
    let field = |name: &str| {
        fields
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing: {body}"))
    };
    assert_eq!(field("user_id")["type"], "int", "{body}");
    assert_eq!(field("user_id")["cardinality"], 1, "{body}");
    assert_eq!(field("user_id")["parsers"], json!(["json"]), "{body}");
    assert_eq!(field("msg")["type"], "string", "{body}");
    assert_eq!(field("msg")["parsers"], json!(["json"]), "{body}");
    assert_eq!(field("trace_id")["type"], "string", "{body}");
    assert_eq!(field("trace_id")["cardinality"], 2, "{body}");
    assert_eq!(field("trace_id")["parsers"], Value::Null, "{body}");
}

#[test]
fn live_tail_over_websocket() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let shop = shop();
    // Grafana probes the v2alpha endpoint first and falls back to v1 unless it answers 400.
    let (code, _) = get(&shop.s, "/loki/api/v2alpha/tail", &[], &[]);
    assert_ne!(code, 400);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // pkg/tsdb/loki/streaming.go: ws://<url>/loki/api/v1/tail?query=<expr>, nothing else (Loki
    // starts from an hour ago).
    let url = format!(
        "{}/loki/api/v1/tail?query={}",
        shop.s.api.replacen("http://", "ws://", 1),
        common::codec::enc("{job=\"shop\"}")
    );
    let (mut ws, resp) = rt
        .block_on(tokio_tungstenite::connect_async(url.as_str()))
        .unwrap_or_else(|e| panic!("tail handshake: {e}"));
    assert_eq!(resp.status(), 101);

    // Every message: {"streams": [{"stream": {...}, "values": [["<ns>", "<line>"]]}]}, with
    // `dropped_entries` optional. Collects (labels, ts, line).
    let mut received: Vec<(BTreeMap<String, String>, i64, String)> = Vec::new();
    let mut read_until = |ws: &mut tokio_tungstenite::WebSocketStream<_>, n: usize| {
        let deadline = tokio::time::Duration::from_secs(20);
        let timed_out = rt.block_on(async {
            tokio::time::timeout(deadline, async {
                while received.len() < n {
                    let msg = ws
                        .next()
                        .await
                        .expect("the tail closed")
                        .expect("a WebSocket message");
                    let text = match msg {
                        Message::Text(t) => t.to_string(),
                        Message::Ping(_) | Message::Pong(_) => continue,
                        other => panic!("unexpected message {other:?}"),
                    };
                    let v: Value = serde_json::from_str(&text).expect("JSON");
                    for k in v.as_object().expect("an object").keys() {
                        assert!(
                            k == "streams" || k == "dropped_entries",
                            "unknown key {k}: {v}"
                        );
                    }
                    let body = json!({"status": "success",
                        "data": {"resultType": "streams", "result": v["streams"].clone()}});
                    for s in streams_of(&body) {
                        for (ts, line, third) in s.entries {
                            assert!(third.is_none(), "two-element entries: {v}");
                            received.push((s.labels.clone(), ts, line));
                        }
                    }
                }
            })
            .await
        });
        if timed_out.is_err() {
            panic!("only {} of {n} entries came: {received:?}", received.len());
        }
        received.clone()
    };

    // First what is already stored (the lookback), then what is pushed while tailing.
    let mut want: Vec<(BTreeMap<String, String>, i64, String)> = shop
        .entries
        .iter()
        .map(|(l, ts, line, md)| {
            let mut merged = l.clone();
            merged.extend(md.clone());
            (merged, *ts, line.clone())
        })
        .collect();
    want.sort_by_key(|w| w.1);
    let mut got = read_until(&mut ws, want.len());
    got.sort_by_key(|g| g.1);
    assert_eq!(got, want, "the stored entries");

    let now = now_ns() as i64;
    let live = labels(&[("job", "shop"), ("level", "info"), ("env", "prod")]);
    push_json(
        &shop.s,
        None,
        json!([
            {"stream": live, "values": [[now.to_string(), "live one"], [(now + 1).to_string(), "live two"]]},
            {"stream": {"job": "elsewhere"}, "values": [[now.to_string(), "not tailed"]]},
        ]),
    );
    let got = read_until(&mut ws, want.len() + 2);
    let mut live_got = got[want.len()..].to_vec();
    live_got.sort_by_key(|g| g.1);
    assert_eq!(
        live_got,
        vec![
            (live.clone(), now, "live one".to_string()),
            (live, now + 1, "live two".to_string()),
        ]
    );
    rt.block_on(async {
        use futures::SinkExt;
        let _ = ws.send(Message::Close(None)).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    });
}
