//! The LogQL syntax tree.

use seam_store::MatchOp;

/// A label matcher of a stream selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matcher {
    /// The label name.
    pub name: String,
    /// The comparison.
    pub op: MatchOp,
    /// The value or regex.
    pub value: String,
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
}

/// One line filter stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineFilter {
    /// The test.
    pub op: LineFilterOp,
    /// The substring or regex.
    pub pattern: String,
}

/// A log query: a stream selector and a pipeline of line filters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogQuery {
    /// The selector's matchers.
    pub matchers: Vec<Matcher>,
    /// Line filters, applied in order.
    pub filters: Vec<LineFilter>,
}

impl std::fmt::Display for LogQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            let op = match m.op {
                MatchOp::Equal => "=",
                MatchOp::NotEqual => "!=",
                MatchOp::Regex => "=~",
                MatchOp::NotRegex => "!~",
            };
            write!(f, "{}{}{:?}", m.name, op, m.value)?;
        }
        f.write_str("}")?;
        for lf in &self.filters {
            let op = match lf.op {
                LineFilterOp::Contains => "|=",
                LineFilterOp::NotContains => "!=",
                LineFilterOp::Regex => "|~",
                LineFilterOp::NotRegex => "!~",
            };
            write!(f, " {} {:?}", op, lf.pattern)?;
        }
        Ok(())
    }
}
