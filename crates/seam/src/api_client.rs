//! What the CLI commands that read from a running Seam share: where it is and as which tenant to
//! ask (`--addr`/`SEAM_ADDR`, `--tenant`/`SEAM_TENANT`), one GET with the tenant header, errors
//! that carry what the server answered, and the WebSocket URL of a streaming endpoint.

use anyhow::{bail, Context};
use clap::Args;
use serde_json::Value;

/// Where a running Seam answers and as which tenant to ask it.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Base URL of Seam's query API.
    // `--api` is what `seam trace` and `seam correlate` took before they shared these arguments;
    // the hidden alias keeps scripts written against them working.
    #[arg(
        long,
        alias = "api",
        env = "SEAM_ADDR",
        default_value = "http://127.0.0.1:3100"
    )]
    pub addr: String,
    /// Tenant (sent as X-Scope-OrgID).
    #[arg(long, env = "SEAM_TENANT")]
    pub tenant: Option<String>,
}

/// A GET's status, body and URL.
struct Answer {
    url: String,
    status: reqwest::StatusCode,
    text: String,
}

async fn get(
    api: &str,
    path: &str,
    query: &[(&str, String)],
    tenant: Option<&str>,
) -> anyhow::Result<Answer> {
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
    Ok(Answer { url, status, text })
}

/// GETs `path` (with `query`) from the server and parses the JSON answer. A 404 is `Ok(None)`,
/// so callers can say what was not found.
/// Fetches `path` as JSON and prints it: raw with `json`, else through `render`. `what` names
/// the endpoint in the error when this Seam does not have it.
pub async fn show_json(
    server: &ServerArgs,
    path: &str,
    query: &[(&str, String)],
    json: bool,
    render: fn(&Value) -> String,
) -> anyhow::Result<()> {
    let v = get_json(server, path, query)
        .await?
        .with_context(|| format!("this Seam has no {path}"))?;
    if json {
        println!("{v}");
    } else {
        print!("{}", render(&v));
    }
    Ok(())
}

pub async fn get_json(
    server: &ServerArgs,
    path: &str,
    query: &[(&str, String)],
) -> anyhow::Result<Option<Value>> {
    let a = get(&server.addr, path, query, server.tenant.as_deref()).await?;
    if a.status.as_u16() == 404 {
        return Ok(None);
    }
    if !a.status.is_success() {
        bail!("{} answered {}: {}", a.url, a.status, a.text.trim());
    }
    serde_json::from_str(&a.text)
        .map(Some)
        .context("the answer is not JSON")
}

/// GETs `path` from the server and parses its JSON answer; any other status than 2xx is an
/// error that leads with the server's own message (a LogQL parse error names its position).
pub async fn get_api(
    server: &ServerArgs,
    path: &str,
    query: &[(&str, String)],
) -> anyhow::Result<Value> {
    let a = get(&server.addr, path, query, server.tenant.as_deref()).await?;
    if !a.status.is_success() {
        bail!(
            "{} (Seam answered {} for {})",
            a.text.trim(),
            a.status,
            a.url
        );
    }
    serde_json::from_str(&a.text).with_context(|| format!("the answer of {} is not JSON", a.url))
}

/// The `ws://` (or `wss://`) URL of `path` with `query` on the server.
pub fn ws_url(server: &ServerArgs, path: &str, query: &[(&str, String)]) -> anyhow::Result<String> {
    let base = format!("{}{path}", server.addr.trim_end_matches('/'));
    let mut url = reqwest::Url::parse_with_params(&base, query)
        .with_context(|| format!("invalid --addr {:?}", server.addr))?;
    let scheme = match url.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => bail!("--addr must be an http:// or https:// URL, not {other}://"),
    };
    url.set_scheme(scheme)
        .map_err(|_| anyhow::anyhow!("cannot make a WebSocket URL of {base}"))?;
    Ok(url.into())
}

/// The `since` lookback as nanoseconds, for `start` parameters.
pub fn since_ns(since: &str) -> anyhow::Result<i64> {
    let d =
        seam_server::limits::parse_duration(since).map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    Ok(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_urls_follow_the_http_scheme() {
        let s = |addr: &str| ServerArgs {
            addr: addr.into(),
            tenant: None,
        };
        assert_eq!(
            ws_url(
                &s("http://127.0.0.1:3100/"),
                "/loki/api/v1/tail",
                &[("query", "{app=\"a b\"}".into())]
            )
            .unwrap(),
            "ws://127.0.0.1:3100/loki/api/v1/tail?query=%7Bapp%3D%22a+b%22%7D"
        );
        assert!(ws_url(&s("https://seam.example"), "/x", &[])
            .unwrap()
            .starts_with("wss://seam.example/x"));
        assert!(ws_url(&s("ftp://x"), "/x", &[]).is_err());
    }
}
