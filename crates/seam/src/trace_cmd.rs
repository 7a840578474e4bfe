//! `seam trace ID`: prints a (stitched) trace as an indented tree, marking synthetic bridge spans.

use std::collections::{BTreeMap, HashSet};

use anyhow::bail;

use crate::api_client::{get_json, ServerArgs};
use base64::Engine;
use clap::Args;
use seam_model::traces::{ORIGINAL_TRACE_ID_ATTR, SYNTHETIC_ATTR};
use serde_json::Value;

/// Arguments of `seam trace`.
#[derive(Args, Debug)]
pub struct TraceArgs {
    /// Trace id (hex).
    pub id: String,
    /// Where Seam answers and as which tenant to ask.
    #[command(flatten)]
    pub server: ServerArgs,
    /// Show the trace as stored, without stitching other traces in.
    #[arg(long)]
    pub raw: bool,
}

/// One span, as much as the tree needs.
struct Node {
    span_id: String,
    parent: String,
    name: String,
    service: String,
    start: u64,
    end: u64,
    synthetic: bool,
    notes: Vec<String>,
}

fn b64_hex(v: &Value) -> String {
    let s = v.as_str().unwrap_or("");
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map(hex_of)
        .unwrap_or_default()
}

fn hex_of(b: Vec<u8>) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attr<'a>(attrs: &'a [Value], key: &str) -> Option<&'a Value> {
    attrs.iter().find(|a| a["key"] == key).map(|a| &a["value"])
}

fn attr_text(v: &Value) -> String {
    v.as_object()
        .and_then(|o| o.values().next())
        .map(|x| match x {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default()
}

/// Reads the spans of a Tempo-style `{"batches": [...]}` answer.
fn nodes(body: &Value) -> Vec<Node> {
    let mut out = Vec::new();
    for b in body["batches"].as_array().into_iter().flatten() {
        let res_attrs = b["resource"]["attributes"]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        let service = attr(res_attrs, "service.name")
            .map(attr_text)
            .unwrap_or_default();
        for ss in b["scopeSpans"].as_array().into_iter().flatten() {
            for s in ss["spans"].as_array().into_iter().flatten() {
                let attrs = s["attributes"].as_array().map_or(&[][..], Vec::as_slice);
                let synthetic =
                    attr(attrs, SYNTHETIC_ATTR).map(attr_text).as_deref() == Some("true");
                let mut notes = Vec::new();
                if synthetic {
                    for k in [
                        "correlation.key",
                        "correlation.value",
                        "correlation.confidence",
                        "correlation.gap_ms",
                    ] {
                        if let Some(v) = attr(attrs, k) {
                            notes.push(format!(
                                "{}={}",
                                k.trim_start_matches("correlation."),
                                attr_text(v)
                            ));
                        }
                    }
                }
                if let Some(orig) = attr(attrs, ORIGINAL_TRACE_ID_ATTR).map(attr_text) {
                    notes.push(format!("trace={}", &orig[..8.min(orig.len())]));
                }
                let num = |k: &str| s[k].as_str().and_then(|x| x.parse().ok()).unwrap_or(0u64);
                out.push(Node {
                    span_id: b64_hex(&s["spanId"]),
                    parent: b64_hex(&s["parentSpanId"]),
                    name: s["name"].as_str().unwrap_or("").to_string(),
                    service: service.clone(),
                    start: num("startTimeUnixNano"),
                    end: num("endTimeUnixNano"),
                    synthetic,
                    notes,
                });
            }
        }
    }
    out
}

/// Renders spans as a tree ordered by start time; orphans (parent not in the trace) are roots.
fn render(mut spans: Vec<Node>) -> String {
    spans.sort_by_key(|n| n.start);
    let ids: HashSet<String> = spans.iter().map(|n| n.span_id.clone()).collect();
    let mut children: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut roots = Vec::new();
    for (i, n) in spans.iter().enumerate() {
        if n.parent.is_empty() || !ids.contains(&n.parent) {
            roots.push(i);
        } else {
            children.entry(n.parent.clone()).or_default().push(i);
        }
    }
    let t0 = spans.first().map_or(0, |n| n.start);
    let mut out = String::new();
    let mut stack: Vec<(usize, usize)> = roots.into_iter().rev().map(|i| (i, 0)).collect();
    let mut seen = HashSet::new();
    while let Some((i, depth)) = stack.pop() {
        if !seen.insert(i) {
            continue;
        }
        let n = &spans[i];
        let mark = if n.synthetic { "⇢ " } else { "" };
        let offset_ms = n.start.saturating_sub(t0) as f64 / 1e6;
        let dur_ms = n.end.saturating_sub(n.start) as f64 / 1e6;
        out.push_str(&format!(
            "{}{}{} [{}] +{:.1}ms {:.1}ms{}{}\n",
            "  ".repeat(depth),
            mark,
            n.name,
            n.service,
            offset_ms,
            dur_ms,
            if n.synthetic { " synthetic" } else { "" },
            if n.notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", n.notes.join(", "))
            },
        ));
        for c in children.get(&n.span_id).into_iter().flatten().rev() {
            stack.push((*c, depth + 1));
        }
    }
    out
}

/// Fetches and prints the trace.
pub async fn run(args: TraceArgs) -> anyhow::Result<()> {
    let query: Vec<(&str, String)> = if args.raw {
        vec![("stitch", "false".into())]
    } else {
        Vec::new()
    };
    let Some(body) = get_json(&args.server, &format!("/api/traces/{}", args.id), &query).await?
    else {
        bail!("trace {} not found", args.id);
    };
    let spans = nodes(&body);
    let traces: HashSet<&str> = spans
        .iter()
        .flat_map(|n| n.notes.iter())
        .filter_map(|n| n.strip_prefix("trace="))
        .collect();
    println!(
        "trace {} — {} spans{}",
        args.id,
        spans.len(),
        if traces.len() > 1 {
            format!(", stitched from {} traces", traces.len())
        } else {
            String::new()
        }
    );
    print!("{}", render(spans));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_children_under_parents_and_marks_bridges() {
        let n = |id: &str, parent: &str, name: &str, start: u64, synthetic: bool| Node {
            span_id: id.into(),
            parent: parent.into(),
            name: name.into(),
            service: "s".into(),
            start,
            end: start + 1_000_000,
            synthetic,
            notes: vec![],
        };
        let out = render(vec![
            n("b", "a", "bridge", 2, true),
            n("a", "", "root", 1, false),
            n("c", "b", "downstream", 3, false),
        ]);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("root [s]"), "{out}");
        assert!(
            lines[1].starts_with("  ⇢ bridge [s]") && lines[1].contains("synthetic"),
            "{out}"
        );
        assert!(lines[2].starts_with("    downstream"), "{out}");
    }
}
