//! Loki's request parameters, read as `pkg/loghttp` reads them (defaults, limits and error texts),
//! and the per-tenant checks that run before a query does.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use seam_model::Tenant;
use seam_query::logql::{self, units, Expr};
use seam_store::{Direction, LabelMatcher};

use crate::api::{param, tenant, text_error, Params};
use crate::limits::TenantLimits;
use crate::params::{loki_time, now_ns};

/// Loki's default `limit` of a log query.
pub(super) const DEFAULT_LIMIT: usize = 100;
/// How far back `start` defaults to for queries, series and index endpoints.
pub(super) const DEFAULT_SINCE_NS: i64 = 3_600_000_000_000;
/// How far back `start` defaults to for the label endpoints (Loki's HTTP API reference).
pub(super) const LABELS_SINCE_NS: i64 = 6 * DEFAULT_SINCE_NS;
/// Most points a range query may produce per series.
const MAX_POINTS: i64 = 11_000;
const NS: i64 = 1_000_000_000;

/// A query refused by a per-tenant limit answers 429, so a client can tell "ask for less" from
/// "the query is wrong" (Loki itself answers these with 400; Grafana shows either as the text).
pub(super) const LIMIT_STATUS: StatusCode = StatusCode::TOO_MANY_REQUESTS;

/// Loki's `ErrDeadlineExceeded`, the body of every 504.
pub(super) const TIMEOUT_MESSAGE: &str = "request timed out, decrease the duration of the request or add more label matchers (prefer exact match over regex match) to reduce the amount of data processed";

/// A 400 with Loki's plain-text body.
pub(in crate::api) fn bad(msg: impl Into<String>) -> Response {
    text_error(StatusCode::BAD_REQUEST, msg)
}

/// The 504 Loki answers when `query_timeout` passes.
pub(super) fn timeout() -> Response {
    text_error(StatusCode::GATEWAY_TIMEOUT, TIMEOUT_MESSAGE)
}

/// The tenant, or a 400.
pub(in crate::api) fn tenant_of(headers: &HeaderMap) -> Result<Tenant, Response> {
    tenant(headers).map_err(bad)
}

/// A Loki timestamp parameter, if present.
pub(in crate::api) fn time_param(p: &Params, name: &str) -> Result<Option<i64>, Response> {
    param(p, name)
        .map(|v| loki_time(name, v))
        .transpose()
        .map_err(bad)
}

/// `[start, end]` in ns: `end` defaults to now, `start` to `end - since` (or `default_since`).
pub(super) fn bounds(p: &Params, default_since_ns: i64) -> Result<(i64, i64), Response> {
    let end = time_param(p, "end")?.unwrap_or_else(now_ns);
    let start = match time_param(p, "start")? {
        Some(s) => s,
        None => {
            let since = param(p, "since")
                .map(|v| seconds_or_duration(v).map_err(bad))
                .transpose()?
                .unwrap_or(default_since_ns);
            // Loki counts `since` back from now when `end` is in the future.
            end.min(now_ns()).saturating_sub(since)
        }
    };
    if end < start {
        return Err(bad(
            "end timestamp must not be before or equal to start time",
        ));
    }
    Ok((start, end))
}

/// The instant of `/query`: `time`, defaulting to now.
pub(super) fn instant(p: &Params) -> Result<i64, Response> {
    Ok(time_param(p, "time")?.unwrap_or_else(now_ns))
}

/// Loki's `parseSecondsOrDuration`: float seconds, or a Prometheus duration (`15s`, `1m30s`,
/// `250ms`), in ns; negative numbers stay negative so the caller can refuse them in Loki's words.
pub(super) fn seconds_or_duration(v: &str) -> Result<i64, String> {
    if let Ok(secs) = v.trim().parse::<f64>() {
        let ns = secs * NS as f64;
        if !ns.is_finite() || ns.abs() > i64::MAX as f64 {
            return Err(format!(
                "cannot parse {v:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(ns as i64);
    }
    units::parse_prom_duration(v).ok_or_else(|| format!("cannot parse {v:?} to a valid duration"))
}

/// `step` in ns; absent, Loki's default of one point per 250th of the range (at least 1s).
pub(super) fn step(p: &Params, start: i64, end: i64) -> Result<i64, Response> {
    let step = match param(p, "step") {
        Some(v) => seconds_or_duration(v).map_err(bad)?,
        None => ((end - start) / NS / 250).max(1) * NS,
    };
    if step <= 0 {
        return Err(bad("zero or negative query resolution step widths are not accepted. Try a positive integer"));
    }
    if (end - start) / step > MAX_POINTS {
        return Err(bad("exceeded maximum resolution of 11,000 points per time series. Try increasing the value of the step parameter"));
    }
    Ok(step)
}

/// `interval` in ns (0 when absent): a log query keeps one entry per interval.
pub(super) fn interval(p: &Params) -> Result<i64, Response> {
    let iv = param(p, "interval")
        .map(|v| seconds_or_duration(v).map_err(bad))
        .transpose()?
        .unwrap_or(0);
    if iv < 0 {
        return Err(bad("interval must be >= 0"));
    }
    Ok(iv)
}

/// A positive integer parameter, or its default.
pub(super) fn positive(p: &Params, name: &str, default: usize) -> Result<usize, Response> {
    match param(p, name) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n > 0 => Ok(n as usize),
            Ok(_) => Err(bad(format!("{name} must be a positive value"))),
            Err(_) => Err(bad(format!("strconv.Atoi: parsing {v:?}: invalid syntax"))),
        },
    }
}

/// `direction`, backward by default.
pub(super) fn direction(p: &Params) -> Result<Direction, Response> {
    match param(p, "direction")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("backward") => Ok(Direction::Backward),
        Some("forward") => Ok(Direction::Forward),
        Some(_) => Err(bad(format!(
            "invalid direction '{}'",
            param(p, "direction").unwrap_or_default()
        ))),
    }
}

/// Whether the client asked for `X-Loki-Response-Encoding-Flags: categorize-labels`.
pub(super) fn categorize_labels(headers: &HeaderMap) -> bool {
    headers
        .get_all("x-loki-response-encoding-flags")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|f| f.trim() == "categorize-labels")
}

/// Refuses a range longer than the tenant's `max_query_length`, in Loki's words.
pub(super) fn check_query_length(
    limits: &TenantLimits,
    start: i64,
    end: i64,
) -> Result<(), Response> {
    let max = i64::try_from(limits.max_query_length.as_nanos()).unwrap_or(i64::MAX);
    if max > 0 && end - start > max {
        return Err(text_error(
            LIMIT_STATUS,
            format!(
                "the query time range exceeds the limit (query length: {}, limit: {})",
                units::format_go_duration(end - start),
                units::format_duration(max)
            ),
        ));
    }
    Ok(())
}

/// Refuses a log query asking for more entries than `max_entries_limit_per_query`.
pub(super) fn check_entries_limit(limits: &TenantLimits, limit: usize) -> Result<(), Response> {
    let max = limits.max_entries_limit_per_query;
    if max > 0 && limit > max {
        return Err(text_error(
            LIMIT_STATUS,
            format!("max entries limit per query exceeded, limit > max_entries_limit_per_query ({limit} > {max})"),
        ));
    }
    Ok(())
}

/// Parses a LogQL query, answering 400 with the parser's Loki-style message.
pub(super) fn parse_query(q: &str) -> Result<Expr, Response> {
    logql::parse(q).map_err(|e| bad(e.to_string()))
}

/// The matchers of a stream selector (its pipeline, if any, is ignored as Loki does).
pub(super) fn selector_matchers(q: &str) -> Result<Vec<LabelMatcher>, Response> {
    let q = logql::parse_log_query(q).map_err(|e| bad(e.to_string()))?;
    q.matchers
        .iter()
        .map(|m| m.to_label_matcher().map_err(|e| bad(e.to_string())))
        .collect()
}

/// The matchers of the optional `query` parameter (none: every stream).
pub(super) fn optional_selector(p: &Params) -> Result<Vec<LabelMatcher>, Response> {
    match param(p, "query") {
        Some(q) => selector_matchers(q),
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kv: &[(&str, &str)]) -> Params {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn steps_as_loki_computes_them() {
        let h = 3600 * NS;
        assert_eq!(step(&params(&[]), 0, h).unwrap(), 14 * NS);
        assert_eq!(step(&params(&[]), 0, 10 * NS).unwrap(), NS);
        assert_eq!(step(&params(&[("step", "15s")]), 0, h).unwrap(), 15 * NS);
        assert_eq!(step(&params(&[("step", "0.5")]), 0, h).unwrap(), NS / 2);
        assert_eq!(step(&params(&[("step", "1ms")]), 0, NS).unwrap(), 1_000_000);
        assert!(step(&params(&[("step", "-1")]), 0, h).is_err());
        assert!(step(&params(&[("step", "1ms")]), 0, h).is_err());
        assert!(step(&params(&[("step", "soon")]), 0, h).is_err());
    }

    #[test]
    fn limits_and_directions() {
        assert_eq!(positive(&params(&[]), "limit", 100).unwrap(), 100);
        assert_eq!(
            positive(&params(&[("limit", "7")]), "limit", 100).unwrap(),
            7
        );
        assert!(positive(&params(&[("limit", "0")]), "limit", 100).is_err());
        assert!(positive(&params(&[("limit", "x")]), "limit", 100).is_err());
        assert_eq!(
            direction(&params(&[("direction", "FORWARD")])).unwrap(),
            Direction::Forward
        );
        assert!(direction(&params(&[("direction", "sideways")])).is_err());
    }

    #[test]
    fn since_counts_back_from_end() {
        let (s, e) = bounds(
            &params(&[("end", "1700000000"), ("since", "5m")]),
            DEFAULT_SINCE_NS,
        )
        .unwrap();
        assert_eq!(e - s, 300 * NS);
        assert!(bounds(
            &params(&[("start", "1700000001"), ("end", "1700000000")]),
            DEFAULT_SINCE_NS
        )
        .is_err());
    }
}
