//! `GET /loki/api/v1/tail` over a real WebSocket: history first (the last `limit` entries,
//! oldest first), then exactly the lines pushed (Loki push and OTLP) with their labels; tenants
//! see only their own lines; the concurrent-tail and lines-per-second limits close the socket
//! with a reason naming them; bad parameters are refused before the upgrade.
//!
//! A tail is known to be subscribed once its history frame arrives (the server subscribes before
//! it reads the history), so every test pushes a marker line before opening its tail.

mod common;

use std::time::Duration;

use common::loki::push_json;
use common::otlp::{log_line, logs};
use common::{client, now_ns, Seam};
use futures::StreamExt;
use prost::Message as _;
use seam_model::attributes::string_kv;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// What a tail socket yielded.
#[derive(Debug, PartialEq)]
enum Got {
    Frame(Value),
    Closed(u16, String),
}

/// One entry of a frame: (labels, ts ns, line).
type Entry = (Value, i64, String);

/// A tail WebSocket driven from a synchronous test.
struct Tail {
    rt: tokio::runtime::Runtime,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Tail {
    fn open(s: &Seam, tenant: &str, params: &[(&str, &str)]) -> Tail {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/loki/api/v1/tail", s.api.replacen("http", "ws", 1)),
            params,
        )
        .unwrap();
        let mut req = url.as_str().into_client_request().unwrap();
        req.headers_mut()
            .insert("X-Scope-OrgID", tenant.parse().unwrap());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (ws, resp) = rt
            .block_on(tokio_tungstenite::connect_async(req))
            .expect("tail handshake");
        assert_eq!(resp.status(), 101);
        Tail { rt, ws }
    }

    /// The next frame or the close, within 20 s.
    fn next(&mut self) -> Got {
        loop {
            let ws = &mut self.ws;
            let msg = self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(20), ws.next()).await })
                .expect("nothing arrived on the tail within 20s");
            match msg {
                Some(Ok(Message::Text(t))) => return Got::Frame(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(f))) => {
                    let f = f.expect("a close frame with a code");
                    return Got::Closed(f.code.into(), f.reason.to_string());
                }
                Some(Ok(_)) => continue,
                other => panic!("the tail ended without a close frame: {other:?}"),
            }
        }
    }

    /// Exactly the next `n` entries (frames may split them), failing on a close.
    fn entries(&mut self, n: usize) -> Vec<Entry> {
        let mut out = Vec::new();
        while out.len() < n {
            match self.next() {
                Got::Frame(f) => out.extend(frame_entries(&f)),
                closed => panic!("tail closed after {out:?}: {closed:?}"),
            }
        }
        assert_eq!(out.len(), n, "more entries than expected: {out:?}");
        out
    }
}

fn frame_entries(f: &Value) -> Vec<Entry> {
    let mut out = Vec::new();
    for s in f["streams"]
        .as_array()
        .unwrap_or_else(|| panic!("frame {f}"))
    {
        for v in s["values"].as_array().unwrap() {
            out.push((
                s["stream"].clone(),
                v[0].as_str().unwrap().parse().unwrap(),
                v[1].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

/// Pushes `(labels, [(ts, line, structured metadata)])` streams as Loki JSON.
fn push(s: &Seam, tenant: &str, streams: &[(Value, Vec<(i64, &str, Value)>)]) {
    let streams: Vec<Value> = streams
        .iter()
        .map(|(labels, values)| {
            let values: Vec<Value> = values
                .iter()
                .map(|(ts, line, md)| {
                    if md.is_null() {
                        json!([ts.to_string(), line])
                    } else {
                        json!([ts.to_string(), line, md])
                    }
                })
                .collect();
            json!({"stream": labels, "values": values})
        })
        .collect();
    push_json(s, Some(tenant), Value::Array(streams));
}

fn push_lines(s: &Seam, tenant: &str, labels: Value, lines: &[(i64, &str)]) {
    let values = lines.iter().map(|(t, l)| (*t, *l, Value::Null)).collect();
    push(s, tenant, &[(labels, values)]);
}

fn now() -> i64 {
    now_ns() as i64
}

#[test]
fn live_lines_arrive_with_their_labels_from_loki_push_and_otlp() {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::with_config(dir.path(), "", &[]);
    let t0 = now();
    let checkout = json!({"service_name": "checkout", "env": "prod"});
    push_lines(
        &s,
        "shop",
        checkout.clone(),
        &[(t0 - 1_000_000, "history line")],
    );
    let mut tail = Tail::open(&s, "shop", &[("query", "{service_name=\"checkout\"}")]);
    assert_eq!(
        tail.entries(1),
        vec![(checkout.clone(), t0 - 1_000_000, "history line".into())]
    );

    let t1 = now();
    push(
        &s,
        "shop",
        &[
            (
                checkout.clone(),
                vec![
                    (t1, "GET /cart 200", Value::Null),
                    (t1 + 1, "GET /pay 500", json!({"trace_id": "abc123"})),
                ],
            ),
            (
                json!({"service_name": "billing"}),
                vec![(t1 + 2, "not this one", Value::Null)],
            ),
        ],
    );
    assert_eq!(
        tail.entries(2),
        vec![
            (checkout.clone(), t1, "GET /cart 200".into()),
            (
                json!({"service_name": "checkout", "env": "prod", "trace_id": "abc123"}),
                t1 + 1,
                "GET /pay 500".into()
            ),
        ]
    );

    // OTLP: resource attributes become stream labels, record attributes structured metadata.
    let t2 = now();
    let mut rec = log_line(t2 as u64, "payment declined");
    rec.attributes = vec![string_kv("user.id", "42")];
    rec.severity_text = "WARN".into();
    let body = logs(vec![string_kv("service.name", "checkout")], vec![rec]).encode_to_vec();
    let r = s.post_otlp(
        "logs",
        body,
        &[
            ("Content-Type", "application/x-protobuf"),
            ("X-Scope-OrgID", "shop"),
        ],
    );
    assert_eq!(r.status(), 200);
    assert_eq!(
        tail.entries(1),
        vec![(
            json!({"service_name": "checkout", "user_id": "42", "severity_text": "WARN"}),
            t2,
            "payment declined".into()
        )]
    );
}

#[test]
fn history_is_the_last_limit_entries_since_start_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::with_config(dir.path(), "", &[]);
    let t = now() - 10_000_000_000;
    let labels = json!({"app": "hist"});
    let lines: Vec<(i64, String)> = (0..5)
        .map(|i| (t + i * 1_000_000_000, format!("line {i}")))
        .collect();
    let refs: Vec<(i64, &str)> = lines.iter().map(|(ts, l)| (*ts, l.as_str())).collect();
    push_lines(&s, "h", labels.clone(), &refs);
    let want = |range: std::ops::Range<usize>| -> Vec<Entry> {
        lines[range]
            .iter()
            .map(|(ts, l)| (labels.clone(), *ts, l.clone()))
            .collect()
    };

    let mut tail = Tail::open(&s, "h", &[("query", "{app=\"hist\"}"), ("limit", "3")]);
    assert_eq!(tail.entries(3), want(2..5));

    let start = (t + 2_500_000_000).to_string();
    let mut tail = Tail::open(
        &s,
        "h",
        &[("query", "{app=\"hist\"} |= \"line\""), ("start", &start)],
    );
    assert_eq!(tail.entries(2), want(3..5));

    // A line filter applies to the history and the live lines alike.
    let mut tail = Tail::open(&s, "h", &[("query", "{app=\"hist\"} |= \"line 4\"")]);
    assert_eq!(tail.entries(1), want(4..5));
    let t2 = now();
    push_lines(
        &s,
        "h",
        labels.clone(),
        &[(t2, "line 5"), (t2 + 1, "line 4 again")],
    );
    assert_eq!(
        tail.entries(1),
        vec![(labels.clone(), t2 + 1, "line 4 again".into())]
    );
}

#[test]
fn tails_see_only_their_own_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::with_config(dir.path(), "", &[]);
    let labels = json!({"app": "same"});
    let q = [("query", "{app=\"same\"}")];
    let t0 = now();
    push_lines(&s, "ta", labels.clone(), &[(t0, "a marker")]);
    push_lines(&s, "tb", labels.clone(), &[(t0, "b marker")]);
    let mut a = Tail::open(&s, "ta", &q);
    let mut b = Tail::open(&s, "tb", &q);
    assert_eq!(a.entries(1)[0].2, "a marker");
    assert_eq!(b.entries(1)[0].2, "b marker");

    let t1 = now();
    push_lines(&s, "tb", labels.clone(), &[(t1, "for b")]);
    push_lines(&s, "ta", labels.clone(), &[(t1 + 1, "for a")]);
    // b's line was published before a's push was acknowledged: a's next entry is its own.
    assert_eq!(a.entries(1), vec![(labels.clone(), t1 + 1, "for a".into())]);
    assert_eq!(b.entries(1), vec![(labels.clone(), t1, "for b".into())]);
}

#[test]
fn the_concurrent_tail_limit_closes_the_extra_socket_with_lokis_message() {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::with_config(
        dir.path(),
        "limits:\n  max_concurrent_tail_requests: 2\n",
        &[],
    );
    let labels = json!({"app": "busy"});
    push_lines(&s, "c", labels.clone(), &[(now(), "marker")]);
    push_lines(&s, "other", labels.clone(), &[(now(), "marker")]);
    let q = [("query", "{app=\"busy\"}")];
    let mut first = Tail::open(&s, "c", &q);
    let mut second = Tail::open(&s, "c", &q);
    first.entries(1);
    second.entries(1);

    let mut third = Tail::open(&s, "c", &q);
    assert_eq!(
        third.next(),
        Got::Closed(
            1011,
            "max concurrent tail requests limit exceeded, count > limit (3 > 2)".into()
        )
    );
    // The limit is per tenant.
    Tail::open(&s, "other", &q).entries(1);

    // A closed tail frees its place (once the server has seen the close).
    first.rt.block_on(first.ws.close(None)).unwrap();
    let reopened = common::eventually(Duration::from_secs(20), || {
        let mut t = Tail::open(&s, "c", &q);
        match t.next() {
            Got::Frame(f) => Some(frame_entries(&f)),
            Got::Closed(..) => None,
        }
    });
    assert_eq!(reopened.unwrap()[0].2, "marker");
}

#[test]
fn the_lines_per_second_limit_closes_the_tail_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::with_config(dir.path(), "limits:\n  tail_max_lines_per_second: 5\n", &[]);
    let labels = json!({"app": "chatty"});
    push_lines(&s, "r", labels.clone(), &[(now() - 1_000_000, "marker")]);
    let mut tail = Tail::open(&s, "r", &[("query", "{app=\"chatty\"}")]);
    tail.entries(1);

    let t = now();
    let lines: Vec<(i64, String)> = (0..8).map(|i| (t + i, format!("burst {i}"))).collect();
    let refs: Vec<(i64, &str)> = lines.iter().map(|(ts, l)| (*ts, l.as_str())).collect();
    push_lines(&s, "r", labels.clone(), &refs);
    let mut got = Vec::new();
    let closed = loop {
        match tail.next() {
            Got::Frame(f) => got.extend(frame_entries(&f).into_iter().map(|e| e.2)),
            closed => break closed,
        }
    };
    assert_eq!(got, ["burst 0", "burst 1", "burst 2", "burst 3", "burst 4"]);
    assert_eq!(
        closed,
        Got::Closed(
            1011,
            "tail_max_lines_per_second limit exceeded, lines > limit (6 > 5)".into()
        )
    );
}

#[test]
fn bad_requests_are_refused_before_the_upgrade_and_v2alpha_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let s = Seam::with_config(dir.path(), "", &[]);
    let get = |path: &str, params: &[(&str, &str)]| {
        let r = client()
            .get(format!("{}{path}", s.api))
            .query(params)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(
        get(
            "/loki/api/v1/tail",
            &[("query", "{app=\"x\"}"), ("delay_for", "6")]
        ),
        (400, "delay_for can't be greater than 5".into())
    );
    let (code, text) = get("/loki/api/v1/tail", &[("query", "{app=\"x\"")]);
    assert_eq!(code, 400);
    assert!(text.starts_with("parse error at line 1, col "), "{text}");
    assert_eq!(
        get("/loki/api/v1/tail", &[]),
        (400, "missing required parameter \"query\"".into())
    );
    assert_eq!(
        get(
            "/loki/api/v1/tail",
            &[("query", "{app=\"x\"}"), ("limit", "0")]
        ),
        (400, "limit must be a positive value".into())
    );
    assert_eq!(
        get("/loki/api/v2alpha/tail", &[("query", "{app=\"x\"}")]).0,
        404
    );
    // A valid request that is not a WebSocket handshake.
    assert_eq!(get("/loki/api/v1/tail", &[("query", "{app=\"x\"}")]).0, 400);
}
