//! `seam tail 'QUERY'`: follows a running Seam's live tail WebSocket and prints each line as it
//! is acknowledged; coloured (labels dim, line by level) only when stdout is a terminal.

use std::io::{IsTerminal, Write as _};

use anyhow::{bail, Context};
use clap::Args;
use futures::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::api_client::{since_ns, ws_url, ServerArgs};
use crate::query_cmd::{entries_of, entry_row, Output, Style};

/// Arguments of `seam tail`.
#[derive(Args, Debug)]
pub struct TailArgs {
    /// The log query to follow, e.g. '{service_name="api"} |= "error"'.
    pub query: String,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Seconds to hold lines back so late ones still print in time order (at most 5).
    #[arg(long, default_value_t = 0)]
    pub delay_for: u64,
    /// Lines of history printed before the live ones.
    #[arg(long, default_value_t = 30)]
    pub limit: usize,
    /// How far back the history reaches (e.g. 15m, 1h).
    #[arg(long, default_value = "1h")]
    pub since: String,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// Runs `seam tail` until Ctrl-C or until Seam closes the tail.
pub async fn run(args: TailArgs) -> anyhow::Result<()> {
    let start = seam_model::now_ns().saturating_sub(since_ns(&args.since)?);
    let url = ws_url(
        &args.server,
        "/loki/api/v1/tail",
        &[
            ("query", args.query.clone()),
            ("delay_for", args.delay_for.to_string()),
            ("limit", args.limit.to_string()),
            ("start", start.to_string()),
        ],
    )?;
    let mut request = url.as_str().into_client_request()?;
    if let Some(t) = &args.server.tenant {
        let value = HeaderValue::from_str(t).context("--tenant is not a valid header value")?;
        request.headers_mut().insert("X-Scope-OrgID", value);
    }
    let mut ws = match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => ws,
        Err(WsError::Http(resp)) => {
            let body = resp
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            bail!("{} (Seam answered {})", body.trim(), resp.status());
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot reach Seam at {}", args.server.addr))
        }
    };
    let color = args.output == Output::Table
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none();
    let style = Style { color };
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let msg = tokio::select! {
            _ = &mut ctrl_c => {
                let _ = ws.close(None).await;
                return Ok(());
            }
            msg = ws.next() => msg,
        };
        match msg {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text)
                    .context("Seam sent a tail frame that is not JSON")?;
                if !print_frame(&frame, args.output, style) {
                    // stdout is gone (e.g. `| head`): nothing left to do.
                    let _ = ws.close(None).await;
                    return Ok(());
                }
            }
            Some(Ok(Message::Close(Some(f)))) if f.code != CloseCode::Normal => {
                bail!("Seam closed the tail: {}", f.reason)
            }
            Some(Ok(Message::Close(_))) | None => return Ok(()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e).context("reading the tail"),
        }
    }
}

/// Prints one frame's entries (and a note of dropped ones on stderr); false once stdout is closed.
fn print_frame(frame: &Value, output: Output, style: Style) -> bool {
    let mut out = std::io::stdout().lock();
    for e in entries_of(&frame["streams"]) {
        if writeln!(out, "{}", entry_row(&e, output, 0, style)).is_err() {
            return false;
        }
    }
    if let Some(dropped) = frame["dropped_entries"].as_array() {
        eprintln!(
            "seam: {} entries were dropped because the tail fell behind",
            dropped.len()
        );
    }
    out.flush().is_ok()
}
