//! LogQL: a hand-written lexer and recursive-descent parser that reports positions the way Loki
//! does (`parse error at line 1, col 17: ...`), a canonical formatter, the log pipeline, and an
//! evaluator for log and metric queries over the store's read interface.

mod ast;
mod eval;
mod format;
mod lexer;
mod parser;
mod pipeline;
pub mod units;
mod value;

pub use ast::*;
pub use eval::{evaluate, QueryError, QueryLimits, QueryOutput, QueryTime};
pub use format::prettify;
pub use parser::{parse, parse_log_query, ParseError};
pub use pipeline::{Pipeline, SampleExtractor};
pub use value::{EntryLabels, InstantSample, LogEntry, QueryStats, QueryValue, Series};
