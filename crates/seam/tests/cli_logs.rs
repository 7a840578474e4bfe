//! The log commands of the `seam` binary against a started server: `seam query` in its three
//! outputs, `seam labels`, `seam tail` (a pushed line arrives, Ctrl-C ends it cleanly, a limit
//! close prints its reason), and a bad query printing the parse error and failing.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::loki::push_json;
use common::{now_ns, seam_bin, Seam};
use serde_json::{json, Value};

/// Entries stamped in November 2023 are accepted, and tenant `none` may not tail at all.
fn start(dir: &std::path::Path) -> Seam {
    Seam::with_config(
        dir,
        "limits:\n  reject_old_samples_max_age: 87600h\n  per_tenant:\n    none:\n      \
         max_concurrent_tail_requests: 0\n",
        &[],
    )
}

fn push(s: &Seam, tenant: &str, labels: Value, values: &[(i64, &str)]) {
    let values: Vec<Value> = values
        .iter()
        .map(|(ts, l)| json!([ts.to_string(), l]))
        .collect();
    push_json(
        s,
        Some(tenant),
        json!([{"stream": labels, "values": values}]),
    );
}

/// Runs `seam <args> --addr <api> --tenant <tenant>` to completion.
fn seam(s: &Seam, tenant: &str, args: &[&str]) -> Output {
    Command::new(seam_bin())
        .args(args)
        .args(["--addr", &s.api, "--tenant", tenant])
        .env_remove("SEAM_ADDR")
        .env_remove("SEAM_TENANT")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "seam failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

const T: i64 = 1_700_000_000_123_456_789;

fn pushed_fixture(s: &Seam) {
    push(
        s,
        "cli",
        json!({"app": "api", "env": "prod"}),
        &[(T, "GET /a 200"), (T + 2_000_000_000, "GET /c 500")],
    );
    push(
        s,
        "cli",
        json!({"app": "web"}),
        &[(T + 1_000_000_000, "level=warn slow")],
    );
}

#[test]
fn query_prints_raw_json_and_table_output() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    pushed_fixture(&s);
    let q = |extra: &[&str]| {
        let mut args = vec![
            "query",
            "{app=~\"api|web\"}",
            "--from",
            "1700000000",
            "--to",
            "1700000100",
        ];
        args.extend_from_slice(extra);
        stdout(&seam(&s, "cli", &args))
    };

    assert_eq!(
        q(&["--output", "raw"]),
        "GET /c 500\nlevel=warn slow\nGET /a 200\n"
    );
    assert_eq!(
        q(&["--output", "raw", "--forward", "--limit", "2"]),
        "GET /a 200\nlevel=warn slow\n"
    );
    assert_eq!(
        q(&["--output", "json", "--forward"]),
        concat!(
            r#"{"labels":{"app":"api","env":"prod"},"line":"GET /a 200","timestamp":"2023-11-14T22:13:20.123456789Z"}"#,
            "\n",
            r#"{"labels":{"app":"web"},"line":"level=warn slow","timestamp":"2023-11-14T22:13:21.123456789Z"}"#,
            "\n",
            r#"{"labels":{"app":"api","env":"prod"},"line":"GET /c 500","timestamp":"2023-11-14T22:13:22.123456789Z"}"#,
            "\n",
        )
    );
    // Table is the default; labels are padded to the widest set.
    assert_eq!(
        q(&[]),
        "2023-11-14T22:13:22.123456789Z  {app=\"api\", env=\"prod\"}  GET /c 500\n\
         2023-11-14T22:13:21.123456789Z  {app=\"web\"}              level=warn slow\n\
         2023-11-14T22:13:20.123456789Z  {app=\"api\", env=\"prod\"}  GET /a 200\n"
    );
    // A line filter narrows what is printed.
    let filtered = stdout(&seam(
        &s,
        "cli",
        &[
            "query",
            "{app=\"api\"} |= \"500\"",
            "--from",
            "1700000000",
            "--to",
            "1700000100",
            "-o",
            "raw",
        ],
    ));
    assert_eq!(filtered, "GET /c 500\n");
}

#[test]
fn query_prints_the_samples_of_a_metric_query() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    pushed_fixture(&s);
    let q = |output: &str| {
        stdout(&seam(
            &s,
            "cli",
            &[
                "query",
                "sum by (app) (count_over_time({app=~\"api|web\"}[1m]))",
                "--from",
                "1700000000",
                "--to",
                "1700000100",
                "--step",
                "60s",
                "-o",
                output,
            ],
        ))
    };
    assert_eq!(
        q("table"),
        "2023-11-14T22:14:20Z  {app=\"api\"}  2\n2023-11-14T22:14:20Z  {app=\"web\"}  1\n"
    );
    assert_eq!(
        q("raw"),
        "{app=\"api\"} 1700000060 2\n{app=\"web\"} 1700000060 1\n"
    );
    assert_eq!(
        q("json"),
        "{\"metric\":{\"app\":\"api\"},\"values\":[[1700000060,\"2\"]]}\n\
         {\"metric\":{\"app\":\"web\"},\"values\":[[1700000060,\"1\"]]}\n"
    );
}

#[test]
fn a_bad_query_prints_the_parse_error_with_its_position_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let o = seam(&s, "cli", &["query", "{app=\"api\" |= \"x\""]);
    assert!(!o.status.success());
    assert!(o.stdout.is_empty());
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.starts_with("seam: parse error at line 1, col 12:"),
        "{err}"
    );
    assert!(err.contains("400 Bad Request"), "{err}");
}

#[test]
fn labels_lists_names_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let t = now_ns() as i64;
    push(&s, "lab", json!({"app": "api", "env": "prod"}), &[(t, "a")]);
    push(&s, "lab", json!({"app": "web"}), &[(t, "b")]);
    push(&s, "elsewhere", json!({"zone": "x"}), &[(t, "c")]);
    assert_eq!(stdout(&seam(&s, "lab", &["labels"])), "app\nenv\n");
    assert_eq!(stdout(&seam(&s, "lab", &["labels", "app"])), "api\nweb\n");
    assert_eq!(
        stdout(&seam(
            &s,
            "lab",
            &["labels", "app", "--query", "{env=\"prod\"}"]
        )),
        "api\n"
    );
    assert_eq!(
        stdout(&seam(&s, "lab", &["labels", "--since", "1ms"])),
        "",
        "nothing was pushed in the last millisecond"
    );
}

#[test]
fn tail_prints_pushed_lines_and_ends_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let t0 = now_ns() as i64;
    push(&s, "tail", json!({"app": "t"}), &[(t0, "before the tail")]);
    let mut child = Command::new(seam_bin())
        .args(["tail", "{app=\"t\"}", "--addr", &s.api, "--tenant", "tail"])
        .env_remove("SEAM_ADDR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = || {
        rx.recv_timeout(Duration::from_secs(20))
            .expect("seam tail printed nothing within 20s")
    };
    let row = |ts: i64, line: &str| {
        let time = chrono::DateTime::from_timestamp_nanos(ts).format("%Y-%m-%dT%H:%M:%S%.9fZ");
        format!("{time}  {{app=\"t\"}}  {line}")
    };
    // The history line shows the tail is subscribed.
    assert_eq!(next(), row(t0, "before the tail"));
    let t1 = now_ns() as i64;
    push(
        &s,
        "tail",
        json!({"app": "t"}),
        &[(t1, "\u{1b}[0mlive line")],
    );
    assert_eq!(next(), row(t1, "\u{1b}[0mlive line"));

    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn tail_prints_the_reason_when_a_limit_closes_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let o = seam(&s, "none", &["tail", "{app=\"t\"}"]);
    assert!(!o.status.success());
    assert_eq!(
        String::from_utf8(o.stderr).unwrap(),
        "seam: Seam closed the tail: max concurrent tail requests limit exceeded, count > limit \
         (1 > 0)\n"
    );
    let o = seam(&s, "cli", &["tail", "{app=\"t\"}", "--delay-for", "6"]);
    assert!(!o.status.success());
    assert_eq!(
        String::from_utf8(o.stderr).unwrap(),
        "seam: delay_for can't be greater than 5 (Seam answered 400 Bad Request)\n"
    );
}
