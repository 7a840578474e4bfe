//! The LogQL syntax tree: the contract between the parser, the canonical formatter, the log
//! pipeline and the metric evaluator. Its `Display` impls (in `format.rs`) print the canonical
//! form that `/loki/api/v1/format_query` returns.

use seam_store::MatchOp;

/// A whole LogQL query.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A log query: returns log lines (`streams`).
    Log(LogExpr),
    /// A metric query: returns samples (`matrix`, `vector` or `scalar`).
    Sample(SampleExpr),
}

/// A label matcher of a stream selector, or of `drop`/`keep`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matcher {
    /// The label name.
    pub name: String,
    /// The comparison.
    pub op: MatchOp,
    /// The value or regex.
    pub value: String,
}

/// A stream selector and the pipeline run over each of its lines.
#[derive(Clone, Debug, PartialEq)]
pub struct LogExpr {
    /// The selector's matchers (at least one that does not match the empty string).
    pub matchers: Vec<Matcher>,
    /// Pipeline stages, applied in order.
    pub pipeline: Vec<Stage>,
}

/// How a line filter tests a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineFilterOp {
    /// `|=`: contains.
    Contains,
    /// `!=`: does not contain.
    NotContains,
    /// `|~`: matches the regex (unanchored).
    Regex,
    /// `!~`: does not match the regex.
    NotRegex,
    /// `|>`: matches the pattern (`<_>` matches anything, literal text must appear in order).
    Pattern,
    /// `!>`: does not match the pattern.
    NotPattern,
}

impl LineFilterOp {
    /// True for the ops that keep matching lines: their `or` alternatives widen the filter,
    /// while a negative op's alternatives are separate filters (Loki rewrites them so).
    pub(crate) fn positive(self) -> bool {
        matches!(
            self,
            LineFilterOp::Contains | LineFilterOp::Regex | LineFilterOp::Pattern
        )
    }
}

/// One line filter stage, e.g. `|= "a" or "b"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineFilter {
    /// The test.
    pub op: LineFilterOp,
    /// The substring, regex or pattern.
    pub pattern: String,
    /// Alternatives joined with `or` (`|= "a" or "b"` keeps lines containing either; for the
    /// negative ops a line is kept when it matches none of them).
    pub or: Vec<String>,
}

/// One `name="expression"` parameter of `json` or `logfmt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelExtraction {
    /// The label to write.
    pub label: String,
    /// The JSON path (`a.b[0]`, `["a b"]`) or logfmt key to read.
    pub expr: String,
}

/// One `label_format` assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelFormat {
    /// `dst=src`: rename a label.
    Rename {
        /// The new name.
        dst: String,
        /// The label renamed.
        src: String,
    },
    /// `dst="template"`: set a label from a Go-template.
    Template {
        /// The label set.
        dst: String,
        /// The template text.
        template: String,
    },
}

/// One item of `drop`/`keep`: a bare label name, or a matcher that must also match its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelSelection {
    /// `name`.
    Name(String),
    /// `name="value"` (or another match op).
    Matcher(Matcher),
}

/// A comparison of a numeric, duration or bytes label filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `==` or `=`.
    Eq,
    /// `!=`.
    Ne,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
}

/// A label filter expression, e.g. `| status >= 400 and level=~"err.*"`.
#[derive(Clone, Debug, PartialEq)]
pub enum LabelFilter {
    /// Both hold (`and`, `,` or a space between filters).
    And(Box<LabelFilter>, Box<LabelFilter>),
    /// Either holds.
    Or(Box<LabelFilter>, Box<LabelFilter>),
    /// A string matcher on a label.
    String(Matcher),
    /// A numeric comparison; a value that does not parse as a number sets `__error__`.
    Number {
        /// The label.
        name: String,
        /// The comparison.
        op: CmpOp,
        /// The literal.
        value: f64,
    },
    /// A duration comparison (`> 250ms`); the label value is parsed as a Go duration.
    Duration {
        /// The label.
        name: String,
        /// The comparison.
        op: CmpOp,
        /// The literal in nanoseconds.
        value_ns: i64,
    },
    /// A bytes comparison (`> 20MB`); the label value is parsed as a humanized size.
    Bytes {
        /// The label.
        name: String,
        /// The comparison.
        op: CmpOp,
        /// The literal in bytes.
        value: u64,
    },
}

/// A pipeline stage.
#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    /// `|= != |~ !~ |> !>`.
    LineFilter(LineFilter),
    /// `| json` or `| json a="b.c", d="e[0]"`.
    Json(Vec<LabelExtraction>),
    /// `| logfmt [--strict] [--keep-empty] [params]`.
    Logfmt {
        /// `--strict`: a malformed pair is an error instead of being skipped.
        strict: bool,
        /// `--keep-empty`: keep keys with empty values.
        keep_empty: bool,
        /// Only extract these keys, under these names.
        params: Vec<LabelExtraction>,
    },
    /// `| regexp "(?P<name>...)"`.
    Regexp(String),
    /// `| pattern "<ip> - <_> <status>"`.
    Pattern(String),
    /// `| unpack`: the line is a JSON object of labels plus `_entry`, which becomes the line.
    Unpack,
    /// `| <label filter>`.
    LabelFilter(LabelFilter),
    /// `| line_format "template"`.
    LineFormat(String),
    /// `| label_format a=b, c="template"`.
    LabelFormat(Vec<LabelFormat>),
    /// `| drop a, b="x"`.
    Drop(Vec<LabelSelection>),
    /// `| keep a, b="x"`.
    Keep(Vec<LabelSelection>),
    /// `| decolorize`: strips ANSI colour codes from the line.
    Decolorize,
}

/// A range aggregation over a log range, e.g. `rate(...[5m])`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeOp {
    /// `count_over_time`.
    CountOverTime,
    /// `rate`: lines (or, with unwrap, the sum of values) per second.
    Rate,
    /// `rate_counter`: the unwrapped values treated as a counter.
    RateCounter,
    /// `bytes_over_time`.
    BytesOverTime,
    /// `bytes_rate`.
    BytesRate,
    /// `absent_over_time`.
    AbsentOverTime,
    /// `sum_over_time` (unwrap).
    SumOverTime,
    /// `avg_over_time` (unwrap).
    AvgOverTime,
    /// `min_over_time` (unwrap).
    MinOverTime,
    /// `max_over_time` (unwrap).
    MaxOverTime,
    /// `stddev_over_time` (unwrap).
    StddevOverTime,
    /// `stdvar_over_time` (unwrap).
    StdvarOverTime,
    /// `quantile_over_time(φ, ...)` (unwrap).
    QuantileOverTime,
    /// `first_over_time` (unwrap).
    FirstOverTime,
    /// `last_over_time` (unwrap).
    LastOverTime,
}

/// How `unwrap` turns a label value into a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnwrapConv {
    /// `unwrap x`: a float.
    Number,
    /// `unwrap duration(x)` / `duration_seconds(x)`: a Go duration, in seconds.
    Duration,
    /// `unwrap bytes(x)`: a humanized size, in bytes.
    Bytes,
}

/// `| unwrap [conv](label)` and the label filters after it (`| __error__=""`).
#[derive(Clone, Debug, PartialEq)]
pub struct Unwrap {
    /// The label whose value becomes the sample value.
    pub label: String,
    /// The conversion.
    pub conv: UnwrapConv,
    /// Label filters applied after the unwrap.
    pub post_filters: Vec<LabelFilter>,
}

/// The selection a range aggregation reads: `{..} | pipeline [| unwrap ..] [range] [offset d]`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRange {
    /// The log query.
    pub log: LogExpr,
    /// The range in nanoseconds.
    pub range_ns: i64,
    /// The offset in nanoseconds (0 when absent).
    pub offset_ns: i64,
    /// The unwrap, for the `*_over_time` ops that need values.
    pub unwrap: Option<Unwrap>,
}

/// `by (..)` or `without (..)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grouping {
    /// `without` instead of `by`.
    pub without: bool,
    /// The label names (may be empty: `by ()`).
    pub labels: Vec<String>,
}

/// A vector aggregation operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VectorOp {
    /// `sum`.
    Sum,
    /// `avg`.
    Avg,
    /// `min`.
    Min,
    /// `max`.
    Max,
    /// `count`.
    Count,
    /// `stddev`.
    Stddev,
    /// `stdvar`.
    Stdvar,
    /// `topk(k, ..)`.
    Topk,
    /// `bottomk(k, ..)`.
    Bottomk,
    /// `sort`.
    Sort,
    /// `sort_desc`.
    SortDesc,
}

/// A binary operator, in PromQL's precedence classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Mod,
    /// `^` (right-associative).
    Pow,
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `and`.
    And,
    /// `or`.
    Or,
    /// `unless`.
    Unless,
}

/// Which side may have many series per match group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cardinality {
    /// One to one (the default).
    OneToOne,
    /// `group_left(extra labels)`.
    ManyToOne(Vec<String>),
    /// `group_right(extra labels)`.
    OneToMany(Vec<String>),
}

/// `on(..)`/`ignoring(..)` with an optional `group_left`/`group_right`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VectorMatching {
    /// `on` (true) or `ignoring` (false).
    pub on: bool,
    /// The labels listed.
    pub labels: Vec<String>,
    /// The grouping modifier.
    pub card: Cardinality,
}

/// A metric expression.
#[derive(Clone, Debug, PartialEq)]
pub enum SampleExpr {
    /// `op([param,] log_range) [by/without (..)]` (grouping only with unwrap).
    Range {
        /// The aggregation.
        op: RangeOp,
        /// The log range read.
        range: LogRange,
        /// `quantile_over_time`'s φ.
        param: Option<f64>,
        /// `by`/`without` after the call (only valid with unwrap).
        grouping: Option<Grouping>,
    },
    /// `op [by (..)] ([k,] expr)`.
    Vector {
        /// The aggregation.
        op: VectorOp,
        /// The aggregated expression.
        inner: Box<SampleExpr>,
        /// `topk`/`bottomk`'s k.
        param: Option<f64>,
        /// `by`/`without`.
        grouping: Option<Grouping>,
    },
    /// `lhs op [bool] [on/ignoring ..] rhs`.
    Binary {
        /// The operator.
        op: BinOp,
        /// Left side.
        lhs: Box<SampleExpr>,
        /// Right side.
        rhs: Box<SampleExpr>,
        /// `bool` on a comparison: 0/1 instead of filtering.
        return_bool: bool,
        /// `on`/`ignoring` and grouping.
        matching: Option<VectorMatching>,
    },
    /// A number literal: a scalar.
    Literal(f64),
    /// `vector(n)`: one series with no labels.
    VectorLiteral(f64),
    /// `label_replace(expr, "dst", "replacement", "src", "regex")`.
    LabelReplace {
        /// The expression relabelled.
        inner: Box<SampleExpr>,
        /// Destination label.
        dst: String,
        /// Replacement with `$1` references.
        replacement: String,
        /// Source label.
        src: String,
        /// Regex, anchored at both ends.
        regex: String,
    },
    /// `( expr )` as written. Loki's tree has no such node: the canonical and pretty forms
    /// print the inner expression, and evaluation sees through it.
    Paren(Box<SampleExpr>),
}
