//! LogQL: a hand-written lexer and recursive-descent parser that reports positions the way Loki
//! does (`parse error at line 1, col 17: ...`), and a log-query evaluator over the store.
//!
//! Supported so far: stream selectors (`= != =~ !~`) and line filters (`|= != |~ !~`).

mod ast;
mod eval;
mod lexer;
mod parser;

pub use ast::{LineFilter, LineFilterOp, LogQuery, Matcher};
pub use eval::{select_logs, LogSelection, StreamResult};
pub use parser::{parse_log_query, ParseError};
