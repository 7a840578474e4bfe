//! `seam correlate patterns`: the flow patterns Seam learned, from
//! `/api/seam/correlation/patterns`, with a `flow_patterns:` block to paste into the config.

use clap::Args;
use serde_json::Value;

use crate::api_client::{show_json, ServerArgs};

/// Arguments of `seam correlate patterns`.
#[derive(Args, Debug)]
pub struct PatternsArgs {
    /// Where Seam answers and as which tenant to ask.
    #[command(flatten)]
    pub server: ServerArgs,
    /// Print the API's JSON instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// Formats the API answer: the observed service pairs, the learned patterns, the paste block.
fn render(v: &Value) -> String {
    let text = |x: &Value| x.as_str().unwrap_or("").to_string();
    let mut out = format!(
        "service pairs linked on strong evidence (tenant {}; a pair orders its services after {} links, {}% of them one way):\n",
        text(&v["tenant"]),
        v["min_links"],
        (v["min_share"].as_f64().unwrap_or(0.95) * 100.0).round()
    );
    let pairs = v["pairs"].as_array().map_or(&[][..], Vec::as_slice);
    if pairs.is_empty() {
        out.push_str("  none yet\n");
    } else {
        let w = pairs
            .iter()
            .map(|p| text(&p["upstream"]).len())
            .max()
            .unwrap_or(0)
            .max("upstream".len());
        let d = pairs
            .iter()
            .map(|p| text(&p["downstream"]).len())
            .max()
            .unwrap_or(0)
            .max("downstream".len());
        out.push_str(&format!(
            "  {:<w$}  {:<d$}  {:>8}  {:>8}  {:>10}  used\n",
            "upstream", "downstream", "links", "reverse", "confidence"
        ));
        for p in pairs {
            out.push_str(&format!(
                "  {:<w$}  {:<d$}  {:>8}  {:>8}  {:>10.3}  {}\n",
                text(&p["upstream"]),
                text(&p["downstream"]),
                p["links"].as_u64().unwrap_or(0),
                p["reverse_links"].as_u64().unwrap_or(0),
                p["confidence"].as_f64().unwrap_or(0.0),
                if p["active"] == true { "yes" } else { "no" }
            ));
        }
    }
    let list = |name: &str| -> Vec<String> {
        v[name]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                p.as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect::<Vec<_>>()
                    .join(" -> ")
            })
            .collect()
    };
    for (name, title) in [
        ("learned", "learned flow patterns"),
        ("configured", "configured flow patterns"),
    ] {
        let l = list(name);
        if !l.is_empty() {
            out.push_str(&format!("{title}:\n"));
            for p in l {
                out.push_str(&format!("  {p}\n"));
            }
        }
    }
    if list("learned").is_empty() {
        out.push_str("nothing learned yet: patterns are learned from links whose call was in flight or matched\n");
    } else {
        out.push_str("\nto make them explicit, paste into the config file:\n");
        out.push_str(&text(&v["flow_patterns_yaml"]));
    }
    out
}

/// Queries `/api/seam/correlation/patterns` and prints what was learned.
pub async fn run(args: PatternsArgs) -> anyhow::Result<()> {
    let path = "/api/seam/correlation/patterns";
    show_json(&args.server, path, &[], args.json, render).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_pairs_patterns_and_the_paste_block() {
        let v = serde_json::json!({
            "tenant": "default", "min_links": 10, "min_share": 0.95,
            "pairs": [
                {"upstream": "beorn", "downstream": "mdso", "links": 12, "reverse_links": 0, "confidence": 1.0, "active": true},
                {"upstream": "mdso", "downstream": "arda", "links": 3, "reverse_links": 1, "confidence": 0.75, "active": false}
            ],
            "learned": [["beorn", "mdso", "arda"]],
            "configured": [],
            "flow_patterns_yaml": "correlation:\n  flow_patterns:\n    - [beorn, mdso, arda]\n"
        });
        let out = render(&v);
        assert!(out.contains("after 10 links, 95% of them one way"), "{out}");
        assert!(
            out.contains("  beorn     mdso              12         0       1.000  yes\n"),
            "{out}"
        );
        assert!(out.contains("       0.750  no\n"), "{out}");
        assert!(
            out.contains("learned flow patterns:\n  beorn -> mdso -> arda\n"),
            "{out}"
        );
        assert!(out.ends_with("    - [beorn, mdso, arda]\n"), "{out}");
        let empty = serde_json::json!({"tenant": "t", "min_links": 10, "min_share": 0.95,
            "pairs": [], "learned": [], "configured": [], "flow_patterns_yaml": ""});
        let out = render(&empty);
        assert!(
            out.contains("  none yet\n") && out.contains("nothing learned yet"),
            "{out}"
        );
    }
}
