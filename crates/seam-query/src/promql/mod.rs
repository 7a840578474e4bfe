//! PromQL, parsed with the `promql-parser` crate. This first engine evaluates bare vector selectors
//! (instant queries) with Prometheus's lookback and staleness rules; the full evaluator grows here.

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{self, Expr};
use seam_model::metrics::STALE_NAN_BITS;
use seam_model::{Labels, Sample, Signal, Tenant};
use seam_store::{LabelMatcher, MatchOp, Store, StoreError};

/// Prometheus's default lookback for instant vector selectors.
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// Why a query could not run.
#[derive(Debug, thiserror::Error)]
pub enum PromQueryError {
    /// The query does not parse.
    #[error("{0}")]
    Parse(String),
    /// The query uses something this engine does not evaluate yet.
    #[error("{0}")]
    Unsupported(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Parses a series selector such as `up{job="api"}` (as in `match[]`) into store matchers.
pub fn parse_selector(s: &str) -> Result<Vec<LabelMatcher>, PromQueryError> {
    let expr = parser::parse(s).map_err(PromQueryError::Parse)?;
    match expr {
        Expr::VectorSelector(vs) => selector_matchers(&vs),
        _ => Err(PromQueryError::Parse(format!(
            "{s:?} is not a series selector"
        ))),
    }
}

fn selector_matchers(vs: &parser::VectorSelector) -> Result<Vec<LabelMatcher>, PromQueryError> {
    let mut out = Vec::new();
    if let Some(name) = &vs.name {
        out.push(
            LabelMatcher::new("__name__", MatchOp::Equal, name.clone())
                .expect("equality matchers build"),
        );
    }
    if !vs.matchers.or_matchers.is_empty() {
        return Err(PromQueryError::Unsupported(
            "`or` inside a selector is not supported yet".into(),
        ));
    }
    for m in &vs.matchers.matchers {
        let (op, value) = match &m.op {
            PMatchOp::Equal => (MatchOp::Equal, m.value.clone()),
            PMatchOp::NotEqual => (MatchOp::NotEqual, m.value.clone()),
            PMatchOp::Re(_) => (MatchOp::Regex, m.value.clone()),
            PMatchOp::NotRe(_) => (MatchOp::NotRegex, m.value.clone()),
        };
        out.push(
            LabelMatcher::new(m.name.clone(), op, value)
                .map_err(|e| PromQueryError::Parse(e.to_string()))?,
        );
    }
    if out.iter().all(|m| m.matches_empty()) {
        return Err(PromQueryError::Parse(
            "vector selector must contain at least one non-empty matcher".into(),
        ));
    }
    Ok(out)
}

/// Evaluates an instant query at `time_ms`. Supports a bare vector selector (with `offset`).
pub fn instant_query(
    store: &Store,
    tenant: &Tenant,
    query: &str,
    time_ms: i64,
) -> Result<Vec<(Labels, Sample)>, PromQueryError> {
    let expr = parser::parse(query).map_err(PromQueryError::Parse)?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(PromQueryError::Unsupported(
            "only instant vector selectors are evaluated yet (functions, operators and aggregations come with the PromQL engine)".into(),
        ));
    };
    if vs.at.is_some() {
        return Err(PromQueryError::Unsupported(
            "the @ modifier is not supported yet".into(),
        ));
    }
    let offset_ms = match &vs.offset {
        Some(parser::Offset::Pos(d)) => d.as_millis() as i64,
        Some(parser::Offset::Neg(d)) => -(d.as_millis() as i64),
        None => 0,
    };
    let matchers = selector_matchers(&vs)?;
    let t = time_ms - offset_ms;
    let start = t - LOOKBACK_MS + 1;
    let series = store.select_series(
        tenant,
        Signal::Metrics,
        &matchers,
        start.saturating_mul(1_000_000),
        t.saturating_mul(1_000_000),
    );
    let ids: Vec<u64> = series.iter().map(|(id, _)| *id).collect();
    let samples = store.samples(tenant, &ids, start, t)?;
    let mut out = Vec::new();
    for (id, labels) in series {
        let Some(last) = samples.get(&id).and_then(|v| v.last()) else {
            continue;
        };
        if last.value.to_bits() == STALE_NAN_BITS {
            continue;
        }
        out.push((
            labels,
            Sample {
                timestamp_ms: time_ms,
                value: last.value,
            },
        ));
    }
    Ok(out)
}
