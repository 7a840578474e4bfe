//! The server starts on ephemeral ports, reports them, becomes ready, and stops cleanly.

mod common;

use common::Seam;

#[test]
fn starts_reports_ports_and_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Seam::start(dir.path(), &[]);
    let (code, body) = s.get_json("/ready", None);
    assert_eq!(code, 200);
    assert_eq!(body["components"]["wal"]["status"], "ready");
    let (code, _) = s.get_json("/health", None);
    assert_eq!(code, 200);
    let r = common::client()
        .get(format!("{}/api/echo", s.api))
        .send()
        .unwrap();
    assert_eq!(r.text().unwrap(), "echo");
    assert!(s.terminate(), "SIGTERM must exit 0; log:\n{}", s.log_text());
}

#[test]
fn version_and_help() {
    let out = std::process::Command::new(common::seam_bin())
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("seam "));
    for args in [
        vec!["help"],
        vec!["serve", "--help"],
        vec!["bench", "ingest", "--help"],
    ] {
        let out = std::process::Command::new(common::seam_bin())
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

/// Every command that reads from a running Seam names it the same way; `--api`, which `trace` and
/// `correlate` once took, still works but is no longer advertised.
#[test]
fn read_commands_share_the_server_options() {
    for cmd in ["query", "tail", "labels", "trace", "correlate"] {
        let out = std::process::Command::new(common::seam_bin())
            .args([cmd, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{cmd}: {help}");
        assert!(
            help.contains("--addr <ADDR>") && help.contains("[env: SEAM_ADDR"),
            "{cmd}: {help}"
        );
        assert!(help.contains("--tenant <TENANT>"), "{cmd}: {help}");
        assert!(!help.contains("--api"), "{cmd}: {help}");
    }
}
