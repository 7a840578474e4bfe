//! The Go text/template subset `line_format` and `label_format` run: the data is the entry's
//! labels (a missing label reads as empty, Loki's `missingkey=zero`), plus Loki's and sprig's
//! functions. No Rust crate speaks Go's template language (its pipes, `printf`, truthiness and
//! function set), so it is implemented here.

mod exec;
mod funcs;
mod gofmt;
mod parse;

use parse::{Arg, Node, Parser};

/// A value while a template runs.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Val {
    /// A string (every label value is one).
    Str(String),
    /// Go's `int`/`int64` (integer literals, `len`, `add`, ...).
    Int(i64),
    /// Go's `float64` (float literals, `addf`, `bytes`, ...).
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A time in nanoseconds since the epoch (Go's `time.Time`, printed in UTC).
    Time(i64),
    /// The label map (the template's dot).
    Map,
    /// Go's `nil`.
    Nil,
}

/// The labels a template reads.
pub(in crate::logql::pipeline) trait Fields {
    /// A label's value.
    fn get(&self, name: &str) -> Option<&str>;
    /// Every label, sorted by name (for `range` and printing the map).
    fn all(&self) -> Vec<(&str, &str)>;
}

/// A compiled template.
#[derive(Debug)]
pub(in crate::logql::pipeline) struct Template {
    name: &'static str,
    src: String,
    root: Vec<Node>,
}

impl Template {
    /// Parses `src`; `name` is Go's template name in messages (`line` or `label`).
    pub(in crate::logql::pipeline) fn parse(
        name: &'static str,
        src: &str,
    ) -> Result<Template, String> {
        Ok(Template {
            name,
            src: src.to_string(),
            root: Parser::parse(name, src)?,
        })
    }

    /// The label a `{{.name}}`-only template prints, so callers can skip running it.
    pub(in crate::logql::pipeline) fn simple_field(&self) -> Option<&str> {
        match self.root.as_slice() {
            [Node::Action(p)] if p.decl.is_empty() && p.cmds.len() == 1 => {
                match p.cmds[0].args.as_slice() {
                    [Arg::Field(chain)] if chain.len() == 1 => Some(&chain[0]),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Runs the template over an entry; the error is Go's execution message.
    pub(in crate::logql::pipeline) fn render(
        &self,
        fields: &dyn Fields,
        line: &str,
        timestamp_ns: i64,
    ) -> Result<String, String> {
        exec::run(self, fields, line, timestamp_ns)
    }
}

#[cfg(test)]
mod tests;
