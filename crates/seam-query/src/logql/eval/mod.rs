//! Evaluating LogQL over the store: log queries (streams) and metric queries (matrix, vector,
//! scalar), within per-query limits.
//!
//! A metric query is evaluated node by node over the whole step grid at once: each node yields
//! a scalar or a series-major set of samples. Range aggregations read the store once each, in a
//! streaming scan that keeps per-segment summaries rather than entries.

mod binary;
mod labels;
mod logs;
mod range;
mod range_acc;
mod scan;
mod steps;
#[cfg(test)]
mod tests;
mod vector_agg;

use std::time::Instant;

use seam_model::Tenant;
use seam_store::{Direction, Store, StoreError};

use super::ast::{Expr, Grouping, RangeOp, SampleExpr, VectorOp};
use super::value::{InstantSample, QueryStats, QueryValue, Series};
use steps::{SampleSet, Steps};

/// The time frame of a query.
#[derive(Clone, Copy, Debug)]
pub struct QueryTime {
    /// Range start (ns, inclusive); equal to `end_ns` for an instant query.
    pub start_ns: i64,
    /// Range end (ns): exclusive for a log query's entries, as in Loki; the last possible
    /// evaluation time of a metric range query; the instant of an instant query.
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
    /// Most series a metric query's result may have (Loki's `max_query_series`); 0 for no
    /// limit. Inner stages whose series all reach the result refuse as soon as they exceed it.
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
///
/// Log queries read `[start, end)` (Loki's end is exclusive for entries). Metric queries are
/// evaluated at `end` (instant, `step_ns == 0`) or at `start, start + step, …, ≤ end`.
pub fn evaluate(
    store: &Store,
    tenant: &Tenant,
    expr: &Expr,
    time: &QueryTime,
    limits: &QueryLimits,
) -> Result<QueryOutput, QueryError> {
    let mut ctx = Ctx {
        store,
        tenant,
        limits,
        stats: QueryStats::default(),
    };
    ctx.check_deadline()?;
    let value = match expr {
        Expr::Log(q) => QueryValue::Streams(logs::select(&mut ctx, q, time)?),
        Expr::Sample(e) => metric(&mut ctx, e, time)?,
    };
    Ok(QueryOutput {
        value,
        stats: ctx.stats,
    })
}

/// What every operator needs while a query runs.
struct Ctx<'a> {
    store: &'a Store,
    tenant: &'a Tenant,
    limits: &'a QueryLimits,
    stats: QueryStats,
}

impl Ctx<'_> {
    /// Fails once the deadline has passed.
    fn check_deadline(&self) -> Result<(), QueryError> {
        match self.limits.deadline {
            Some(d) if Instant::now() >= d => Err(scan::timeout()),
            _ => Ok(()),
        }
    }

    /// The series limit, `None` when unlimited (0).
    fn max_series(&self) -> Option<usize> {
        (self.limits.max_series > 0).then_some(self.limits.max_series)
    }
}

/// Loki's refusal when a result has too many series.
fn series_limit_error(max: usize) -> QueryError {
    QueryError::Limit(format!(
        "maximum of series ({max}) reached for a single query"
    ))
}

/// An intermediate value: a number (literals) or samples over the step grid.
enum Value {
    /// The same number at every step.
    Scalar(f64),
    /// Series with values at some steps.
    Vector(SampleSet),
}

/// The operations whose `sum` can be computed on labels already reduced to the sum's grouping:
/// Loki pushes the grouping into the range aggregation for these (`canInjectVectorGrouping`).
fn sum_pushes_down(op: RangeOp) -> bool {
    matches!(
        op,
        RangeOp::BytesOverTime
            | RangeOp::BytesRate
            | RangeOp::SumOverTime
            | RangeOp::Rate
            | RangeOp::CountOverTime
    )
}

fn strip_parens(mut e: &SampleExpr) -> &SampleExpr {
    while let SampleExpr::Paren(inner) = e {
        e = inner;
    }
    e
}

/// Evaluates one node. `series_limited`: every series of the node's result reaches the query
/// result, so range aggregations below may refuse early at the series limit.
fn eval_sample(
    ctx: &mut Ctx<'_>,
    e: &SampleExpr,
    steps: &Steps,
    series_limited: bool,
) -> Result<Value, QueryError> {
    ctx.check_deadline()?;
    Ok(match e {
        SampleExpr::Range {
            op,
            range,
            param,
            grouping,
        } => {
            let agg = range::RangeAgg {
                op: *op,
                range,
                param: *param,
                grouping: grouping.as_ref(),
                // `absent_over_time` answers one series however many it reads.
                series_limit: ctx
                    .max_series()
                    .filter(|_| series_limited && *op != RangeOp::AbsentOverTime),
            };
            Value::Vector(range::evaluate(ctx, steps, &agg)?)
        }
        SampleExpr::Vector {
            op,
            inner,
            param,
            grouping,
        } => {
            let all = Grouping {
                without: false,
                labels: Vec::new(),
            };
            let input = match (op, strip_parens(inner)) {
                (
                    VectorOp::Sum,
                    SampleExpr::Range {
                        op: rop,
                        range,
                        param: rparam,
                        grouping: None,
                    },
                ) if sum_pushes_down(*rop) => {
                    let agg = range::RangeAgg {
                        op: *rop,
                        range,
                        param: *rparam,
                        grouping: Some(grouping.as_ref().unwrap_or(&all)),
                        series_limit: None,
                    };
                    range::evaluate(ctx, steps, &agg)?
                }
                _ => {
                    let keeps = matches!(op, VectorOp::Sort | VectorOp::SortDesc);
                    expect_vector(
                        eval_sample(ctx, inner, steps, series_limited && keeps)?,
                        "aggregation",
                    )?
                }
            };
            Value::Vector(vector_agg::aggregate(
                *op,
                *param,
                grouping.as_ref(),
                input,
                steps,
            )?)
        }
        SampleExpr::Binary {
            op,
            lhs,
            rhs,
            return_bool,
            matching,
        } => {
            let b = binary::Binary {
                op: *op,
                lhs,
                rhs,
                return_bool: *return_bool,
                matching: matching.as_ref(),
            };
            binary::evaluate(ctx, steps, &b, series_limited)?
        }
        SampleExpr::Literal(v) => Value::Scalar(*v),
        SampleExpr::VectorLiteral(v) => Value::Vector(vec![steps.constant(*v)]),
        SampleExpr::LabelReplace {
            inner,
            dst,
            replacement,
            src,
            regex,
        } => {
            let set = expect_vector(eval_sample(ctx, inner, steps, false)?, "label_replace")?;
            Value::Vector(labels::label_replace(set, dst, replacement, src, regex)?)
        }
        SampleExpr::Paren(inner) => eval_sample(ctx, inner, steps, series_limited)?,
    })
}

fn expect_vector(v: Value, what: &str) -> Result<SampleSet, QueryError> {
    match v {
        Value::Vector(set) => Ok(set),
        Value::Scalar(_) => Err(QueryError::Invalid(format!(
            "{what} expects a vector, got a scalar"
        ))),
    }
}

/// Whether the query orders an instant result by value (Loki's `Sortable`).
fn sorts_by_value(e: &SampleExpr) -> bool {
    match e {
        SampleExpr::Vector { op, inner, .. } => {
            matches!(op, VectorOp::Sort | VectorOp::SortDesc) || sorts_by_value(inner)
        }
        SampleExpr::Binary { lhs, rhs, .. } => sorts_by_value(lhs) || sorts_by_value(rhs),
        SampleExpr::LabelReplace { inner, .. } | SampleExpr::Paren(inner) => sorts_by_value(inner),
        SampleExpr::Range { .. } | SampleExpr::Literal(_) | SampleExpr::VectorLiteral(_) => false,
    }
}

/// Evaluates a metric query and shapes its value as Loki answers: a scalar or vector for an
/// instant query, a matrix (series sorted by labels) for a range query.
fn metric(ctx: &mut Ctx<'_>, e: &SampleExpr, time: &QueryTime) -> Result<QueryValue, QueryError> {
    let steps = Steps::new(time)?;
    let set = match eval_sample(ctx, e, &steps, true)? {
        Value::Scalar(v) if steps.instant => {
            return Ok(QueryValue::Scalar {
                timestamp_ns: steps.at(0),
                value: v,
            })
        }
        Value::Scalar(v) => vec![steps.constant(v)],
        Value::Vector(set) => set,
    };
    let max = ctx.max_series();
    if steps.instant {
        if max.is_some_and(|m| set.len() > m) {
            return Err(series_limit_error(ctx.limits.max_series));
        }
        let mut out: Vec<InstantSample> = set
            .into_iter()
            .filter_map(|s| {
                s.points.first().map(|&(_, value)| InstantSample {
                    labels: s.labels,
                    timestamp_ns: steps.at(0),
                    value,
                })
            })
            .collect();
        if !sorts_by_value(e) {
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
        }
        return Ok(QueryValue::Vector(out));
    }
    let set = steps::merge_sorted(set);
    if max.is_some_and(|m| set.len() > m) {
        return Err(series_limit_error(ctx.limits.max_series));
    }
    Ok(QueryValue::Matrix(
        set.into_iter()
            .map(|s| Series {
                labels: s.labels,
                points: s
                    .points
                    .into_iter()
                    .map(|(i, v)| (steps.at(i), v))
                    .collect(),
            })
            .collect(),
    ))
}
