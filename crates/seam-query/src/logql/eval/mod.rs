//! Evaluating LogQL over the store: log queries (streams) and metric queries (matrix, vector,
//! scalar), within per-query limits.

mod logs_old;

use std::time::Instant;

pub use logs_old::{select_logs, LogSelection, StreamResult};

use seam_model::Tenant;
use seam_store::{Direction, Store, StoreError};

use super::ast::Expr;
use super::value::{QueryStats, QueryValue};

/// The time frame of a query.
#[derive(Clone, Copy, Debug)]
pub struct QueryTime {
    /// Range start (ns, inclusive); equal to `end_ns` for an instant query.
    pub start_ns: i64,
    /// Range end, or the instant (ns, inclusive).
    pub end_ns: i64,
    /// Step between evaluations of a metric range query (ns); 0 for an instant query.
    pub step_ns: i64,
    /// Most entries a log query returns.
    pub limit: usize,
    /// Which end of the range a log query starts from.
    pub direction: Direction,
}

/// Per-tenant limits enforced while a query runs.
#[derive(Clone, Copy, Debug)]
pub struct QueryLimits {
    /// Most series a metric query may produce (at any stage).
    pub max_series: usize,
    /// When the query must give up.
    pub deadline: Option<Instant>,
}

/// Why a query did not answer. The API maps these to 400, 429, 504 and 500.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query or a parameter is invalid (400).
    #[error("{0}")]
    Invalid(String),
    /// A limit was hit (429); the message names it.
    #[error("{0}")]
    Limit(String),
    /// The deadline passed (504).
    #[error("{0}")]
    Timeout(String),
    /// The store failed (500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A query's answer and what it cost.
#[derive(Clone, Debug)]
pub struct QueryOutput {
    /// The value.
    pub value: QueryValue,
    /// Work done.
    pub stats: QueryStats,
}

/// Evaluates a parsed query for one tenant. Blocking: call it off the async reactor.
pub fn evaluate(
    store: &Store,
    tenant: &Tenant,
    expr: &Expr,
    time: &QueryTime,
    limits: &QueryLimits,
) -> Result<QueryOutput, QueryError> {
    let _ = (store, tenant, expr, time, limits);
    Err(QueryError::Invalid("not implemented yet".into()))
}
