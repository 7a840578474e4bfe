//! `seam labels [NAME]`: the log label names a running Seam knows, or the values of one.

use std::io::Write as _;

use anyhow::Context;
use clap::Args;

use crate::api_client::{get_api, since_ns, ServerArgs};

/// Arguments of `seam labels`.
#[derive(Args, Debug)]
pub struct LabelsArgs {
    /// A label name: print its values instead of the names.
    pub name: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
    /// How far back to look (e.g. 15m, 1h, 7d).
    #[arg(long, default_value = "1h")]
    pub since: String,
    /// Only streams this selector matches, e.g. '{service_name="api"}'.
    #[arg(long)]
    pub query: Option<String>,
}

/// Runs `seam labels`.
pub async fn run(args: LabelsArgs) -> anyhow::Result<()> {
    let end = seam_model::now_ns();
    let start = end.saturating_sub(since_ns(&args.since)?);
    let mut query = vec![("start", start.to_string()), ("end", end.to_string())];
    if let Some(q) = &args.query {
        query.push(("query", q.clone()));
    }
    let path = match &args.name {
        Some(name) => {
            if !seam_model::labels::is_valid_label_name(name) {
                anyhow::bail!("{name:?} is not a label name");
            }
            format!("/loki/api/v1/label/{name}/values")
        }
        None => "/loki/api/v1/labels".to_string(),
    };
    let body = get_api(&args.server, &path, &query).await?;
    let mut out = String::new();
    for v in body["data"].as_array().into_iter().flatten() {
        out.push_str(v.as_str().unwrap_or_default());
        out.push('\n');
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|_| stdout.flush())
        .context("writing to stdout")
}
