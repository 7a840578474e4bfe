//! `POST /loki/api/v1/push` on the query port: captured winston-loki (protobuf, snappy without
//! `Content-Encoding`; JSON with structured metadata) and python-logging-loki pushes are stored and
//! read back exactly; invalid streams and entries are refused by name while the rest is stored.

mod common;

use std::io::Write;

use common::loki::{get, push_raw};
use common::read::loki_streams;
use common::{fixture, now_ns, Seam};
use serde_json::{json, Value};

/// Seam accepting entries up to ten years old (the captured fixtures carry their capture time).
fn start(dir: &std::path::Path) -> Seam {
    // The captured fixtures are years old: accept them, and let reads span the years since.
    Seam::with_config(
        dir,
        "limits:\n  reject_old_samples_max_age: 87600h\n  max_query_length: 0\n",
        &[],
    )
}

fn push(
    s: &Seam,
    tenant: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, String) {
    let mut headers = vec![
        ("Content-Type".to_string(), content_type.to_string()),
        ("X-Scope-OrgID".to_string(), tenant.to_string()),
    ];
    if let Some(e) = encoding {
        headers.push(("Content-Encoding".to_string(), e.to_string()));
    }
    push_raw(s, &headers, body)
}

/// Every stream of `tenant` matching `query` since the epoch: (labels, [(ts, line)]).
fn read(s: &Seam, tenant: &str, query: &str) -> Vec<(Value, Vec<(i64, String)>)> {
    let end = (now_ns() + 3_600_000_000_000).to_string();
    let (code, body) = get(
        s,
        "/loki/api/v1/query_range",
        &[
            ("query", query),
            ("start", "1"),
            ("end", end.as_str()),
            ("limit", "5000"),
            ("direction", "forward"),
        ],
        &[("X-Scope-OrgID", tenant)],
    );
    assert_eq!(code, 200, "{body}");
    let mut streams = loki_streams(&body);
    streams.sort_by_key(|s| s.0.to_string());
    streams
}

#[test]
fn captured_pushes_are_stored_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let cases: [(&str, &str, Value, i64, &str); 5] = [
        (
            "loki_winston_proto_0.bin",
            "application/x-protobuf",
            json!({"level": "info", "job": "winston", "env": "test", "route": "/checkout"}),
            1_795_335_208_907_000_000,
            r#"hello from winston-loki {"level":"info"}"#,
        ),
        (
            "loki_winston_proto_1.bin",
            "application/x-protobuf",
            json!({"level": "error", "job": "winston", "env": "test"}),
            1_795_335_208_912_000_000,
            r#"second line {"user":42,"level":"error"}"#,
        ),
        (
            "loki_winston_json_0.bin",
            "application/json",
            // winston's JSON mode repeats `level` as structured metadata; Loki shows metadata
            // named like a stream label with the `_extracted` suffix.
            json!({"level": "info", "level_extracted": "info", "job": "winston", "env": "test", "route": "/checkout"}),
            1_795_335_212_115_000_000,
            r#"hello from winston-loki {"level":"info"}"#,
        ),
        (
            "loki_winston_json_1.bin",
            "application/json",
            json!({"level": "error", "level_extracted": "error", "job": "winston", "env": "test", "user": "42"}),
            1_795_335_212_119_000_000,
            r#"second line {"user":42,"level":"error"}"#,
        ),
        (
            "loki_python_json_0.bin",
            "application/json",
            json!({"job": "python-logging-loki", "severity": "info", "logger": "loki-peer", "route": "/x"}),
            1_795_335_215_464_908_032,
            "hello from python-logging-loki",
        ),
    ];
    for (i, (file, ct, labels, ts, line)) in cases.into_iter().enumerate() {
        let tenant = format!("fixture{i}");
        let (code, text) = push(&s, &tenant, ct, None, fixture(&format!("loki/{file}")));
        assert_eq!(code, 204, "{file}: {text}");
        let job = labels["job"].as_str().unwrap().to_string();
        let got = read(&s, &tenant, &format!("{{job=\"{job}\"}}"));
        assert_eq!(got, vec![(labels, vec![(ts, line.to_string())])], "{file}");
    }
}

fn json_push(streams: Value) -> Vec<u8> {
    json!({ "streams": streams }).to_string().into_bytes()
}

#[test]
fn invalid_streams_and_entries_are_refused_by_name_and_the_rest_stored() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let now = now_ns() as i64;
    let ts = |d: i64| (now + d).to_string();
    let body = json_push(json!([
        {"stream": {"app": "ok"}, "values": [
            [ts(-2_000), "first"],
            [ts(-1_000), "second", {"trace_id": "abc"}],
            [ts(-3_000), "out of order"],
            [ts(3_600_000_000_000), "from the future"],
            ["1", "from 1970"],
            [ts(0), "x".repeat(300 << 10)],
        ]},
        {"stream": {"bad-name": "v", "app": "x"}, "values": [[ts(0), "bad label"]]},
        {"stream": (0..16).map(|i| (format!("l{i}"), json!("v"))).collect::<serde_json::Map<_, _>>(),
         "values": [[ts(0), "too many labels"]]},
    ]));
    let (code, text) = push(&s, "mixed", "application/json", None, body);
    assert_eq!(code, 400, "{text}");
    for want in [
        "entry for stream '{app=\"ok\"}' has timestamp too new:",
        "entry for stream '{app=\"ok\"}' has timestamp too old: 1970-01-01T00:00:00.000000001Z",
        "max entry size '262144' bytes exceeded for stream '{app=\"ok\"}' while adding an entry with length '307200' bytes",
        "has invalid label name 'bad-name'",
        "has 16 label names; limit 15",
        "total ignored: 5 out of 8",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
    let got = read(&s, "mixed", "{app=~\".+\"}");
    let lines: Vec<&str> = got
        .iter()
        .flat_map(|(_, v)| v.iter().map(|(_, l)| l.as_str()))
        .collect();
    assert_eq!(lines.len(), 3, "{got:?}");
    for l in ["first", "second", "out of order"] {
        assert!(lines.contains(&l), "{l} missing: {got:?}");
    }
    assert!(got
        .iter()
        .any(|(labels, _)| labels == &json!({"app": "ok", "trace_id": "abc"})));
}

#[test]
fn gzip_json_corrupt_snappy_and_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let now = now_ns().to_string();
    let body = json_push(json!([{"stream": {"app": "gz"}, "values": [[now, "gzipped line"]]}]));
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&body).unwrap();
    let (code, text) = push(
        &s,
        "tenant-a",
        "application/json",
        Some("gzip"),
        e.finish().unwrap(),
    );
    assert_eq!(code, 204, "{text}");
    let got = read(&s, "tenant-a", "{app=\"gz\"}");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1[0].1, "gzipped line");
    // Another tenant sees nothing of it.
    assert!(read(&s, "tenant-b", "{app=\"gz\"}").is_empty());

    // Protobuf that is not snappy, with and without the header.
    for enc in [None, Some("snappy")] {
        let (code, text) = push(
            &s,
            "tenant-a",
            "application/x-protobuf",
            enc,
            b"\xff\xff\xff\xff\xffnot snappy".to_vec(),
        );
        assert_eq!(code, 400, "{text}");
        assert!(text.contains("invalid snappy body"), "{text}");
    }
    // Unparseable label text in a protobuf push names the offset.
    let (code, text) = push(&s, "tenant-a", "application/x-protobuf", None, {
        let mut pb = vec![0x0a];
        let labels = br#"{app="x"#;
        let stream: Vec<u8> = [&[0x0a, labels.len() as u8][..], labels].concat();
        pb.push(stream.len() as u8);
        pb.extend(stream);
        snap::raw::Encoder::new().compress_vec(&pb).unwrap()
    });
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("error parsing labels '{app=\"x'"), "{text}");
    assert!(text.contains("offset 7"), "{text}");
}
