//! Shared harness for the integration tests: start the real `seam` binary on ephemeral loopback
//! ports with a temp data dir, wait on its readiness probe, and talk to it over HTTP.
//!
//! Submodules: `codec` (hex, base64, percent-encoding), `flow` (the Beorn -> MDSO -> Arda flow of
//! the correlation tests), `loki` (Loki pushes, LogQL reads, response shapes and the real log
//! shippers), `otlp` (request builders and posting), `read` (readbacks of traces and log lines).
#![allow(dead_code)]

pub mod codec;
pub mod flow;
pub mod loki;
pub mod otlp;
pub mod read;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A running `seam serve` process.
pub struct Seam {
    child: Option<Child>,
    /// Query API base URL, e.g. `http://127.0.0.1:40123`.
    pub api: String,
    /// OTLP/HTTP base URL.
    pub otlp_http: String,
    /// OTLP/gRPC address `127.0.0.1:port`.
    pub otlp_grpc: String,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Every log line the process wrote so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

/// Path of the binary under test.
pub fn seam_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_seam"))
}

fn field(line: &str, name: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get(name)?.as_str().map(str::to_string)
}

impl Seam {
    /// Starts Seam on `data_dir` with extra `serve` flags and waits until `/ready` answers 200.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Seam {
        let s = Seam::spawn(data_dir, extra);
        s.wait_ready(Duration::from_secs(60));
        s
    }

    /// Starts Seam on `<dir>/data` with `yaml` as its config file (`<dir>/seam.yaml`) and `extra`
    /// `serve` flags, and waits until it is ready.
    pub fn with_config(dir: &Path, yaml: &str, extra: &[&str]) -> Seam {
        let cfg = write_config(dir, yaml);
        let mut args = vec!["--config", cfg.to_str().unwrap()];
        args.extend_from_slice(extra);
        Seam::start(&dir.join("data"), &args)
    }

    /// Starts Seam and returns once it has bound its ports (it may still be replaying).
    pub fn spawn(data_dir: &Path, extra: &[&str]) -> Seam {
        let mut cmd = Command::new(seam_bin());
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--otlp-http",
            "127.0.0.1:0",
            "--otlp-grpc",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start seam");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("seam listening") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(line.clone());
                    }
                }
                log2.lock().unwrap().push(line);
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "seam did not report its addresses; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Seam {
            api: format!("http://{}", field(&line, "listen").unwrap()),
            otlp_http: format!("http://{}", field(&line, "otlp_http").unwrap()),
            otlp_grpc: field(&line, "otlp_grpc").unwrap(),
            data_dir: data_dir.to_path_buf(),
            child: Some(child),
            log,
        }
    }

    /// Polls `/ready` until it answers 200.
    pub fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let client = client();
        loop {
            if let Ok(r) = client.get(format!("{}/ready", self.api)).send() {
                if r.status() == 200 {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "seam never became ready; log:\n{}",
                    self.log.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `/ready`, which must answer 200.
    pub fn ready(&self) -> serde_json::Value {
        let (code, body) = self.get_json("/ready", None);
        assert_eq!(code, 200, "{body}");
        body
    }

    /// `VmHWM` (peak resident set) of the process, in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb * 1024
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// `kill -9`, then reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status success.
    pub fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return false;
        };
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        c.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// The first log line containing `needle`, once the stderr reader has seen it (lines reach
    /// the captured log a moment after the process wrote them; `/ready` may answer 200 before
    /// `store ready` is even logged).
    pub fn wait_log(&self, needle: &str) -> String {
        let find = || {
            self.log
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
                .cloned()
        };
        eventually(Duration::from_secs(20), find)
            .unwrap_or_else(|| panic!("no log line contains {needle:?}; log:\n{}", self.log_text()))
    }

    /// The captured log, joined.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// GET on the query API, returning status and parsed JSON (or Null).
    pub fn get_json(&self, path_and_query: &str, tenant: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = client().get(format!("{}{}", self.api, path_and_query));
        if let Some(t) = tenant {
            req = req.header("X-Scope-OrgID", t);
        }
        let r = req.send().expect("GET");
        let status = r.status().as_u16();
        let text = r.text().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// POSTs an OTLP body to `/v1/<signal>`.
    pub fn post_otlp(
        &self,
        signal: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> reqwest::blocking::Response {
        let mut req = client()
            .post(format!("{}/v1/{}", self.otlp_http, signal))
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().expect("POST")
    }
}

impl Drop for Seam {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A blocking HTTP client with generous timeouts.
pub fn client() -> reqwest::blocking::Client {
    client_with_timeout(Duration::from_secs(60))
}

/// A blocking HTTP client whose requests time out after `timeout`.
pub fn client_with_timeout(timeout: Duration) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .unwrap()
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Writes `yaml` to `<dir>/seam.yaml` and returns its path (for `--config`).
pub fn write_config(dir: &Path, yaml: &str) -> PathBuf {
    let p = dir.join("seam.yaml");
    std::fs::write(&p, yaml).unwrap();
    p
}

/// A repository test fixture.
pub fn fixture(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

/// The Python interpreter of the test venv (`./scripts/test` creates it under `target/`).
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("SEAM_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/venv/bin/python");
    assert!(
        p.exists(),
        "the test venv is missing at {}: run ./scripts/test, which creates it with the OpenTelemetry SDK",
        p.display()
    );
    p
}

/// Path of a Python helper script under `tests/python/`.
pub fn python_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// Runs `tests/python/<script>` with `args` in the test venv and returns the JSON line it printed
/// last; the script must exit 0.
pub fn run_python(script: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(python())
        .arg(python_script(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    script_report(script, out)
}

/// [`run_python`] for a script that exports through the OpenTelemetry SDK to `s`: its report must
/// say every provider flushed (`"flushed": true`).
pub fn run_sdk_script(s: &Seam, script: &str, args: &[&str]) -> serde_json::Value {
    let report = run_python(script, args);
    assert_eq!(
        report["flushed"],
        true,
        "the SDK could not export: {report}\nseam log:\n{}",
        s.log_text()
    );
    report
}

/// The JSON line a helper script printed last, after checking it exited 0.
pub fn script_report(script: &str, out: std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed: {}\nstdout:{stdout}\nstderr:{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON report ({e}): {stdout}\nstderr:{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Polls `f` until it returns `Some` or the timeout passes (for reads that follow an async ack).
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
