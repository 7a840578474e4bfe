//! End-to-end tests of the evaluator over a real store, with hand-computed answers.

mod logs;
mod ops;
mod parsed;
mod range;

use seam_model::{Batch, Label, LogBatch, LogEntry as ModelEntry, LogStream, Tenant};
use seam_store::{Direction, MatchOp, Store, StoreConfig};

use super::super::ast::*;
use super::super::value::QueryValue;
use super::{evaluate, QueryError, QueryLimits, QueryOutput, QueryTime};

/// One second in nanoseconds.
pub(super) const S: i64 = 1_000_000_000;

/// A stream to append: its labels and `(second, line)` entries.
pub(super) type StreamSpec<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, &'a str)]);

/// A store in a temporary directory with some logs in it.
pub(super) struct Fixture {
    pub store: Store,
    pub tenant: Tenant,
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn batch(streams: &[StreamSpec<'_>], metadata: &[(&str, &str)]) -> Batch {
    Batch::Logs(LogBatch {
        streams: streams
            .iter()
            .map(|(labels, entries)| LogStream {
                labels: labels.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
                entries: entries
                    .iter()
                    .map(|(t, line)| ModelEntry {
                        timestamp_ns: t * S,
                        line: line.to_string(),
                        structured_metadata: metadata
                            .iter()
                            .map(|(n, v)| Label::new(*n, *v))
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
            })
            .collect(),
    })
}

impl Fixture {
    /// An empty store.
    pub(super) fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        Fixture {
            store,
            tenant: Tenant::new("t1").unwrap(),
            rt,
            _dir: dir,
        }
    }

    /// Appends streams whose entries carry `metadata` as structured metadata.
    pub(super) fn append(&self, streams: &[StreamSpec<'_>], metadata: &[(&str, &str)]) {
        self.rt
            .block_on(self.store.append(&self.tenant, batch(streams, metadata)))
            .unwrap();
    }

    /// Moves everything appended so far into a segment file.
    pub(super) fn flush(&self) {
        self.rt.block_on(self.store.flush()).unwrap();
    }

    /// Evaluates with generous limits.
    pub(super) fn run(&self, e: Expr, time: QueryTime) -> QueryOutput {
        self.try_run(e, time, unlimited()).unwrap()
    }

    /// Evaluates with the given limits.
    pub(super) fn try_run(
        &self,
        e: Expr,
        time: QueryTime,
        limits: QueryLimits,
    ) -> Result<QueryOutput, QueryError> {
        evaluate(&self.store, &self.tenant, &e, &time, &limits)
    }
}

/// The standard data set:
/// - `{app="api", env="prod"}` at 10..60 s: `a1 ok`, `a2 error`, `a3 ok`, `a4 error`, `a5 ok`,
///   `a6 ok`;
/// - `{app="web", env="prod"}` at 15, 35, 55 s: `b1 ok`, `b2 error`, `b3 ok`;
/// - `{app="api", env="dev"}` at 25, 45 s: `c1 error`, `c2 ok`.
pub(super) fn standard() -> Fixture {
    let f = Fixture::new();
    f.append(&standard_streams(), &[]);
    f
}

pub(super) fn standard_streams() -> [StreamSpec<'static>; 3] {
    [
        (
            &[("app", "api"), ("env", "prod")],
            &[
                (10, "a1 ok"),
                (20, "a2 error"),
                (30, "a3 ok"),
                (40, "a4 error"),
                (50, "a5 ok"),
                (60, "a6 ok"),
            ],
        ),
        (
            &[("app", "web"), ("env", "prod")],
            &[(15, "b1 ok"), (35, "b2 error"), (55, "b3 ok")],
        ),
        (
            &[("app", "api"), ("env", "dev")],
            &[(25, "c1 error"), (45, "c2 ok")],
        ),
    ]
}

pub(super) fn unlimited() -> QueryLimits {
    QueryLimits {
        max_series: 500,
        deadline: None,
    }
}

/// A matcher.
pub(super) fn m(name: &str, op: MatchOp, value: &str) -> Matcher {
    Matcher {
        name: name.into(),
        op,
        value: value.into(),
    }
}

/// `name="value"`.
pub(super) fn eq(name: &str, value: &str) -> Matcher {
    m(name, MatchOp::Equal, value)
}

/// A selector with a pipeline.
pub(super) fn sel(matchers: Vec<Matcher>, pipeline: Vec<Stage>) -> LogExpr {
    LogExpr { matchers, pipeline }
}

/// `|= "s"`.
pub(super) fn contains(s: &str) -> Stage {
    Stage::LineFilter(LineFilter {
        op: LineFilterOp::Contains,
        pattern: s.into(),
        or: Vec::new(),
    })
}

/// `op(log [range s] offset s)`.
pub(super) fn range_agg(op: RangeOp, log: LogExpr, range_s: i64, offset_s: i64) -> SampleExpr {
    SampleExpr::Range {
        op,
        range: LogRange {
            log,
            range_ns: range_s * S,
            offset_ns: offset_s * S,
            unwrap: None,
        },
        param: None,
        grouping: None,
    }
}

/// `count_over_time({env=~".+"}[range])`: every stream of the standard set.
pub(super) fn count_all(range_s: i64) -> SampleExpr {
    range_agg(
        RangeOp::CountOverTime,
        sel(vec![m("env", MatchOp::Regex, ".+")], vec![]),
        range_s,
        0,
    )
}

/// `by (labels)`.
pub(super) fn by(labels: &[&str]) -> Option<Grouping> {
    Some(Grouping {
        without: false,
        labels: labels.iter().map(|l| l.to_string()).collect(),
    })
}

/// A vector aggregation.
pub(super) fn vagg(
    op: VectorOp,
    inner: SampleExpr,
    grouping: Option<Grouping>,
    param: Option<f64>,
) -> SampleExpr {
    SampleExpr::Vector {
        op,
        inner: Box::new(inner),
        param,
        grouping,
    }
}

/// A binary expression.
pub(super) fn bin(
    op: BinOp,
    lhs: SampleExpr,
    rhs: SampleExpr,
    return_bool: bool,
    matching: Option<VectorMatching>,
) -> SampleExpr {
    SampleExpr::Binary {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
        return_bool,
        matching,
    }
}

/// An instant query at `t` seconds.
pub(super) fn at(t: i64) -> QueryTime {
    QueryTime {
        start_ns: t * S,
        end_ns: t * S,
        step_ns: 0,
        limit: 100,
        direction: Direction::Backward,
    }
}

/// A range query over `[start, end]` seconds every `step` seconds.
pub(super) fn span(start: i64, end: i64, step: i64) -> QueryTime {
    QueryTime {
        start_ns: start * S,
        end_ns: end * S,
        step_ns: step * S,
        limit: 100,
        direction: Direction::Backward,
    }
}

/// An instant result as `(labels, value)` pairs in answer order.
pub(super) fn vector(out: &QueryOutput) -> Vec<(String, f64)> {
    match &out.value {
        QueryValue::Vector(v) => v.iter().map(|s| (s.labels.to_string(), s.value)).collect(),
        other => panic!("expected a vector, got {other:?}"),
    }
}

/// A range result as `(labels, [(second, value)])` in answer order.
pub(super) fn matrix(out: &QueryOutput) -> Vec<(String, Vec<(i64, f64)>)> {
    match &out.value {
        QueryValue::Matrix(m) => m
            .iter()
            .map(|s| {
                let points = s.points.iter().map(|&(t, v)| (t / S, v)).collect();
                (s.labels.to_string(), points)
            })
            .collect(),
        other => panic!("expected a matrix, got {other:?}"),
    }
}

/// Asserts two floats agree to 1e-9 (relative for large values).
pub(super) fn close(a: f64, b: f64) {
    assert!(
        (a - b).abs() <= 1e-9 * b.abs().max(1.0),
        "{a} is not close to {b}"
    );
}

/// Asserts an instant result, comparing values with `close`.
pub(super) fn assert_vector(out: &QueryOutput, want: &[(&str, f64)]) {
    let got = vector(out);
    assert_eq!(
        got.iter().map(|g| g.0.as_str()).collect::<Vec<_>>(),
        want.iter().map(|w| w.0).collect::<Vec<_>>(),
        "labels of {got:?}"
    );
    for (g, w) in got.iter().zip(want) {
        close(g.1, w.1);
    }
}
