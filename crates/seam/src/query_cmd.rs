//! `seam query 'LOGQL'`: runs a LogQL range query on a running Seam and prints log lines (raw,
//! JSON lines or a table) or, for a metric query, its samples. Also the rendering of log entries
//! that `seam tail` shares.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat};
use clap::{Args, ValueEnum};
use serde_json::{Map, Value};

use crate::api_client::{get_api, since_ns, ServerArgs};

/// How entries and samples are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// The log line only (for `seam query` metric queries: labels, Unix time and value).
    Raw,
    /// One JSON object per entry (for `seam query` metric queries: per series).
    Json,
    /// Time, labels and line in columns.
    Table,
}

/// Arguments of `seam query`.
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The LogQL query, e.g. '{service_name="api"} |= "error"' or 'rate({app="x"}[1m])'.
    pub query: String,
    #[command(flatten)]
    pub server: ServerArgs,
    /// How far back from the end of the range to look (e.g. 15m, 1h, 7d).
    #[arg(long, default_value = "1h", conflicts_with = "from")]
    pub since: String,
    /// Start of the range: RFC3339, Unix seconds or Unix nanoseconds.
    #[arg(long)]
    pub from: Option<String>,
    /// End of the range (default now), in the same forms as --from.
    #[arg(long)]
    pub to: Option<String>,
    /// Most log entries to print.
    #[arg(long, default_value_t = 30)]
    pub limit: usize,
    /// Oldest entries first (default: newest first).
    #[arg(long)]
    pub forward: bool,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Resolution of a metric query (e.g. 30s, 5m); Seam picks one from the range by default.
    #[arg(long)]
    pub step: Option<String>,
}

/// Runs `seam query`.
pub async fn run(args: QueryArgs) -> anyhow::Result<()> {
    let end = match &args.to {
        Some(t) => seam_server::params::loki_time("--to", t).map_err(anyhow::Error::msg)?,
        None => seam_model::now_ns(),
    };
    let start = match &args.from {
        Some(f) => seam_server::params::loki_time("--from", f).map_err(anyhow::Error::msg)?,
        None => end.saturating_sub(since_ns(&args.since)?),
    };
    let direction = if args.forward { "forward" } else { "backward" };
    let mut query = vec![
        ("query", args.query.clone()),
        ("start", start.to_string()),
        ("end", end.to_string()),
        ("limit", args.limit.to_string()),
        ("direction", direction.to_string()),
    ];
    if let Some(step) = &args.step {
        query.push(("step", step.clone()));
    }
    let body = get_api(&args.server, "/loki/api/v1/query_range", &query).await?;
    let data = &body["data"];
    let text = match data["resultType"].as_str() {
        Some("streams") => {
            let mut entries = entries_of(&data["result"]);
            entries.sort_by_key(|e| e.timestamp_ns);
            if !args.forward {
                entries.reverse();
            }
            render_entries(&entries, args.output)
        }
        Some("matrix") | Some("vector") => render_series(&data["result"], args.output),
        Some("scalar") => format!("{}\n", sample_value(&data["result"])),
        _ => anyhow::bail!("unexpected answer from Seam: {body}"),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .context("writing to stdout")
}

/// One log entry of a `streams` result or a tail frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Time in nanoseconds.
    pub timestamp_ns: i64,
    /// All its labels.
    pub labels: Map<String, Value>,
    /// The line.
    pub line: String,
}

/// The entries of Loki's `[{"stream":{…},"values":[["ns","line"]]}]`, stream by stream.
pub fn entries_of(streams: &Value) -> Vec<Entry> {
    let mut out = Vec::new();
    for s in streams.as_array().into_iter().flatten() {
        let labels = s["stream"].as_object().cloned().unwrap_or_default();
        for v in s["values"].as_array().into_iter().flatten() {
            out.push(Entry {
                timestamp_ns: v[0].as_str().and_then(|t| t.parse().ok()).unwrap_or(0),
                labels: labels.clone(),
                line: v[1].as_str().unwrap_or_default().to_string(),
            });
        }
    }
    out
}

/// `{a="x", b="y"}`, as Loki prints a label set.
pub fn label_string(labels: &Map<String, Value>) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let v = v
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string());
        let _ = write!(s, "{k}={}", Value::String(v));
    }
    s.push('}');
    s
}

/// RFC 3339 in UTC with nanoseconds, so columns line up.
pub fn time_string(ns: i64) -> String {
    DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// ANSI styling of a table row; none when stdout is not a terminal.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// Whether to colour at all.
    pub color: bool,
}

/// The severity a line is highlighted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

fn parse_level(s: &str) -> Option<Level> {
    match s.trim().to_ascii_lowercase().as_str() {
        "error" | "err" | "fatal" | "critical" | "crit" | "panic" | "emerg" | "alert" => {
            Some(Level::Error)
        }
        "warn" | "warning" => Some(Level::Warn),
        "info" | "information" | "notice" => Some(Level::Info),
        "debug" | "trace" | "dbg" => Some(Level::Debug),
        _ => None,
    }
}

/// The level from the labels Loki and OTLP use, else from a `level=`/`"level":` in the line.
fn level_of(e: &Entry) -> Option<Level> {
    for key in [
        "detected_level",
        "level",
        "severity_text",
        "severity",
        "lvl",
    ] {
        if let Some(l) = e
            .labels
            .get(key)
            .and_then(Value::as_str)
            .and_then(parse_level)
        {
            return Some(l);
        }
    }
    let lower = e.line.to_ascii_lowercase();
    for key in ["level=", "\"level\":\"", "\"level\": \"", "lvl="] {
        if let Some(i) = lower.find(key) {
            let rest = &lower[i + key.len()..];
            let word: String = rest
                .trim_start_matches('"')
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            if let Some(l) = parse_level(&word) {
                return Some(l);
            }
        }
    }
    None
}

/// One entry as a table row: time, labels (padded to `labels_width`), line.
pub fn table_row(e: &Entry, labels_width: usize, style: Style) -> String {
    let labels = label_string(&e.labels);
    let pad = " ".repeat(labels_width.saturating_sub(labels.chars().count()));
    if !style.color {
        return format!("{}  {labels}{pad}  {}", time_string(e.timestamp_ns), e.line);
    }
    let line_color = match level_of(e) {
        Some(Level::Error) => "\x1b[1;31m",
        Some(Level::Warn) => "\x1b[33m",
        Some(Level::Info) => "\x1b[32m",
        Some(Level::Debug) => "\x1b[36m",
        None => "",
    };
    let reset = if line_color.is_empty() { "" } else { "\x1b[0m" };
    format!(
        "\x1b[2m{}  {labels}{pad}\x1b[0m  {line_color}{}{reset}",
        time_string(e.timestamp_ns),
        e.line
    )
}

/// One entry as a JSON line: `{"labels":{…},"line":"…","timestamp":"RFC3339"}`.
pub fn json_row(e: &Entry) -> String {
    serde_json::json!({
        "timestamp": time_string(e.timestamp_ns),
        "labels": e.labels,
        "line": e.line,
    })
    .to_string()
}

/// One entry in `output`'s form: the line, a JSON line, or a table row with labels padded to
/// `labels_width`.
pub fn entry_row(e: &Entry, output: Output, labels_width: usize, style: Style) -> String {
    match output {
        Output::Raw => e.line.clone(),
        Output::Json => json_row(e),
        Output::Table => table_row(e, labels_width, style),
    }
}

fn render_entries(entries: &[Entry], output: Output) -> String {
    let width = match output {
        Output::Table => entries
            .iter()
            .map(|e| label_string(&e.labels).chars().count())
            .max()
            .unwrap_or(0),
        Output::Raw | Output::Json => 0,
    };
    let mut out = String::new();
    for e in entries {
        out.push_str(&entry_row(e, output, width, Style::default()));
        out.push('\n');
    }
    out
}

/// A sample `[unix seconds, "value"]`'s time in nanoseconds.
fn sample_time_ns(sample: &Value) -> i64 {
    (sample[0].as_f64().unwrap_or(0.0) * 1e9).round() as i64
}

fn sample_value(sample: &Value) -> &str {
    sample[1].as_str().unwrap_or("")
}

/// A matrix or vector result: JSON per series, or one line per sample.
fn render_series(result: &Value, output: Output) -> String {
    let series = result.as_array().cloned().unwrap_or_default();
    let rows: Vec<(String, &Value)> = series
        .iter()
        .flat_map(|s| {
            let labels = label_string(&s["metric"].as_object().cloned().unwrap_or_default());
            let samples: Vec<&Value> = match s.get("values") {
                Some(v) => v.as_array().into_iter().flatten().collect(),
                None => s.get("value").into_iter().collect(),
            };
            samples.into_iter().map(move |v| (labels.clone(), v))
        })
        .collect();
    let width = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    match output {
        Output::Json => {
            for s in &series {
                out.push_str(&s.to_string());
                out.push('\n');
            }
        }
        Output::Raw => {
            for (labels, v) in rows {
                let _ = writeln!(out, "{labels} {} {}", v[0], sample_value(v));
            }
        }
        Output::Table => {
            for (labels, v) in rows {
                let time = DateTime::from_timestamp_nanos(sample_time_ns(v))
                    .to_rfc3339_opts(SecondsFormat::AutoSi, true);
                let _ = writeln!(out, "{time}  {labels:width$}  {}", sample_value(v));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(labels: Value, line: &str) -> Entry {
        Entry {
            timestamp_ns: 1_700_000_000_123_456_789,
            labels: labels.as_object().unwrap().clone(),
            line: line.into(),
        }
    }

    #[test]
    fn rows_in_every_output() {
        let e = entry(json!({"app": "api", "level": "error"}), "boom \"x\"");
        assert_eq!(
            table_row(&e, 30, Style::default()),
            "2023-11-14T22:13:20.123456789Z  {app=\"api\", level=\"error\"}      boom \"x\""
        );
        assert_eq!(
            table_row(&e, 0, Style { color: true }),
            "\x1b[2m2023-11-14T22:13:20.123456789Z  {app=\"api\", level=\"error\"}\x1b[0m  \
             \x1b[1;31mboom \"x\"\x1b[0m"
        );
        assert_eq!(
            json_row(&e),
            r#"{"labels":{"app":"api","level":"error"},"line":"boom \"x\"","timestamp":"2023-11-14T22:13:20.123456789Z"}"#
        );
    }

    #[test]
    fn levels_come_from_labels_or_the_line() {
        let lvl = |labels: Value, line: &str| level_of(&entry(labels, line));
        assert_eq!(
            lvl(json!({"severity_text": "WARN"}), "x"),
            Some(Level::Warn)
        );
        assert_eq!(lvl(json!({}), "ts=1 level=debug msg=x"), Some(Level::Debug));
        assert_eq!(
            lvl(json!({}), r#"{"level":"ERROR","msg":"x"}"#),
            Some(Level::Error)
        );
        assert_eq!(lvl(json!({}), "plain"), None);
    }

    #[test]
    fn series_render_per_sample() {
        let result = json!([
            {"metric": {"app": "a"}, "values": [[1700000000, "1"], [1700000060.5, "2"]]},
            {"metric": {}, "values": [[1700000000, "3"]]},
        ]);
        assert_eq!(
            render_series(&result, Output::Table),
            "2023-11-14T22:13:20Z  {app=\"a\"}  1\n\
             2023-11-14T22:14:20.500Z  {app=\"a\"}  2\n\
             2023-11-14T22:13:20Z  {}         3\n"
        );
        assert_eq!(
            render_series(&result, Output::Raw),
            "{app=\"a\"} 1700000000 1\n{app=\"a\"} 1700000060.5 2\n{} 1700000000 3\n"
        );
    }
}
