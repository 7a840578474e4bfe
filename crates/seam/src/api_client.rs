//! What the CLI commands that read from a running Seam share: one GET with the tenant header,
//! errors that say which server and what it answered.

use anyhow::{bail, Context};
use serde_json::Value;

/// GETs `path` (with `query`) from the API at `api` and parses the JSON answer. A 404 is
/// `Ok(None)`, so callers can say what was not found.
pub async fn get_json(
    api: &str,
    path: &str,
    query: &[(&str, String)],
    tenant: Option<&str>,
) -> anyhow::Result<Option<Value>> {
    let url = format!("{}{path}", api.trim_end_matches('/'));
    let mut req = reqwest::Client::new().get(&url).query(query);
    if let Some(t) = tenant {
        req = req.header("X-Scope-OrgID", t);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach Seam at {api}"))?;
    let status = resp.status();
    let text = resp.text().await.context("reading the answer")?;
    if status.as_u16() == 404 {
        return Ok(None);
    }
    if !status.is_success() {
        bail!("{url} answered {status}: {}", text.trim());
    }
    serde_json::from_str(&text)
        .map(Some)
        .context("the answer is not JSON")
}
