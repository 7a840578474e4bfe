//! A small pooled HTTP/1.1 client for the demo: POSTs of OTLP bodies with retry on 429/503, and
//! GETs of the query API.

use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// How long one exchange may take before it counts as failed.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// A completed exchange.
pub struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

/// A keep-alive client bound to one base URL and tenant.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    tenant: Option<HeaderValue>,
}

impl Http {
    /// A client for `base` (`http://host:port[/prefix]`), sending `X-Scope-OrgID: tenant` if given.
    pub fn new(base: &str, flag: &str, tenant: Option<&str>) -> anyhow::Result<Http> {
        let uri: Uri = base
            .parse()
            .with_context(|| format!("{flag} {base:?} is not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            None => bail!("{flag} {base:?}: give the scheme, e.g. http://127.0.0.1:4318"),
            Some(s) => bail!("{flag}: scheme {s:?} is not supported (plain http only)"),
        }
        if uri.authority().is_none() {
            bail!("{flag} {base:?} has no host");
        }
        let tenant = tenant
            .map(HeaderValue::from_str)
            .transpose()
            .context("--tenant is not a valid header value")?;
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(conn);
        Ok(Http {
            client,
            base: base.trim_end_matches('/').to_string(),
            tenant,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// One exchange, without retries.
    pub async fn exchange(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&'static str>,
        accept: Option<&'static str>,
        body: Bytes,
    ) -> anyhow::Result<Answer> {
        let url = format!("{}{}", self.base, path);
        let mut req = Request::builder().method(method).uri(&url);
        if let Some(ct) = content_type {
            req = req.header(CONTENT_TYPE, ct);
        }
        if let Some(a) = accept {
            req = req.header(ACCEPT, a);
        }
        if let Some(t) = &self.tenant {
            req = req.header("x-scope-orgid", t.clone());
        }
        let req = req.body(Full::new(body))?;
        let fut = async {
            let resp = self.client.request(req).await?;
            let status = resp.status();
            let retry_after = resp.headers().get(RETRY_AFTER).map(|v| {
                // Seconds, or an HTTP date we do not parse: then one second.
                Duration::from_secs(
                    v.to_str()
                        .ok()
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .unwrap_or(1),
                )
            });
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok(Answer {
                status,
                retry_after,
                body,
            })
        };
        match tokio::time::timeout(EXCHANGE_TIMEOUT, fut).await {
            Ok(r) => r.with_context(|| url.clone()),
            Err(_) => bail!("{url}: no answer within {EXCHANGE_TIMEOUT:?}"),
        }
    }

    /// GET `path` (with `accept`), retrying transport errors and 429/503 a few times.
    pub async fn get(&self, path: &str, accept: Option<&'static str>) -> anyhow::Result<Answer> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .exchange(Method::GET, path, None, accept, Bytes::new())
                .await
            {
                Ok(a)
                    if attempt < 5
                        && matches!(
                            a.status,
                            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                        ) =>
                {
                    let pause = a.retry_after.unwrap_or(Duration::from_millis(200));
                    tokio::time::sleep(pause.min(Duration::from_secs(5))).await;
                }
                Ok(a) => return Ok(a),
                Err(_) if attempt < 5 => {
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

pub use seam_receive::otlp_http::error_message;
