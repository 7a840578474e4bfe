//! `seam correlate --key K --value V`: prints the flow a business key joins — the traces carrying
//! it, the bridges between them, and how many log lines mention it. `seam correlate patterns`
//! prints the flow patterns Seam learned (see [`crate::correlate_patterns`]).

use crate::api_client::{show_json, ServerArgs};
use clap::Args;
use serde_json::Value;

/// Arguments of `seam correlate`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CorrelateArgs {
    /// `patterns` prints the learned flow patterns instead of one key's flow.
    #[command(subcommand)]
    pub command: Option<CorrelateCommand>,
    /// Correlation key, e.g. circuit_id.
    #[arg(long, required = true)]
    pub key: Option<String>,
    /// The key's value.
    #[arg(long, required = true)]
    pub value: Option<String>,
    /// Where Seam answers and as which tenant to ask.
    #[command(flatten)]
    pub server: ServerArgs,
    /// How far back to look, in hours.
    #[arg(long, default_value_t = 24.0)]
    pub since_hours: f64,
    /// Print the API's JSON instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// What `seam correlate` can do besides printing one key's flow.
#[derive(clap::Subcommand, Debug)]
pub enum CorrelateCommand {
    /// Print the flow patterns Seam learned (service pairs with counts) and a ready-to-paste
    /// `flow_patterns:` block.
    Patterns(crate::correlate_patterns::PatternsArgs),
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Formats the API answer as a readable flow.
fn render(v: &Value) -> String {
    let mut out = format!(
        "{}={}\n",
        v["key"].as_str().unwrap_or(""),
        v["value"].as_str().unwrap_or("")
    );
    let segments = v["segments"].as_array().map_or(&[][..], Vec::as_slice);
    // Times are decimal strings of nanoseconds.
    let ns = |t: &Value| -> i64 { t.as_str().and_then(|x| x.parse().ok()).unwrap_or(0) };
    let t0 = segments.first().map_or(0, |s| ns(&s["start_ns"]));
    out.push_str(&format!("traces ({}):\n", segments.len()));
    for s in segments {
        let (start, end) = (ns(&s["start_ns"]), ns(&s["end_ns"]));
        let services: Vec<&str> = s["services"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        out.push_str(&format!(
            "  {}  {:<24} +{:.1}ms  {:.1}ms\n",
            short(s["trace_id"].as_str().unwrap_or("")),
            services.join(","),
            (start - t0) as f64 / 1e6,
            (end - start) as f64 / 1e6
        ));
    }
    let bridges = v["bridges"].as_array().map_or(&[][..], Vec::as_slice);
    out.push_str(&format!("bridges ({}):\n", bridges.len()));
    for b in bridges {
        out.push_str(&format!(
            "  {} -> {}  confidence {}\n",
            short(b["upstream_trace_id"].as_str().unwrap_or("")),
            short(b["downstream_trace_id"].as_str().unwrap_or("")),
            b["confidence"]
        ));
    }
    out.push_str(&format!(
        "log lines mentioning it: {}{}\n",
        v["log_lines"],
        if v["log_lines_capped"] == true {
            " (capped)"
        } else {
            ""
        }
    ));
    out
}

/// Queries `/api/seam/correlations` and prints the flow.
pub async fn run(args: CorrelateArgs) -> anyhow::Result<()> {
    if let Some(CorrelateCommand::Patterns(p)) = args.command {
        return crate::correlate_patterns::run(p).await;
    }
    let (Some(key), Some(value)) = (args.key, args.value) else {
        anyhow::bail!("seam correlate needs --key and --value (or the patterns subcommand)");
    };
    let end = seam_model::now_ns();
    let start = end - (args.since_hours * 3600e9) as i64;
    let query = [
        ("key", key),
        ("value", value),
        ("start", start.to_string()),
        ("end", end.to_string()),
    ];
    show_json(
        &args.server,
        "/api/seam/correlations",
        &query,
        args.json,
        render,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_traces_bridges_and_log_count() {
        let v = serde_json::json!({
            "key": "circuit_id", "value": "c-1",
            "segments": [
                {"trace_id": "1111111111111111", "services": ["beorn"], "start_ns": "1000000", "end_ns": "5000000"},
                {"trace_id": "2222222222222222", "services": ["mdso"], "start_ns": "2000000", "end_ns": "3000000"}
            ],
            "bridges": [{"upstream_trace_id": "1111111111111111", "downstream_trace_id": "2222222222222222", "confidence": 1.0}],
            "log_lines": 3, "log_lines_capped": false
        });
        let out = render(&v);
        assert!(out.starts_with("circuit_id=c-1\ntraces (2):\n"), "{out}");
        assert!(out.contains("222222222222  mdso"), "{out}");
        assert!(out.contains("+1.0ms  1.0ms"), "{out}");
        assert!(
            out.contains("111111111111 -> 222222222222  confidence 1.0"),
            "{out}"
        );
        assert!(out.ends_with("log lines mentioning it: 3\n"), "{out}");
    }
}
