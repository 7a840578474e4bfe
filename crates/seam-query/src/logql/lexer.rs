//! The LogQL lexer. It reproduces Loki's lexer (Go's `text/scanner` plus Loki's token rules):
//! numbers directly followed by a unit become durations or byte sizes, `[..]` is one range
//! token, function names are keywords only when a `(` (or `by`/`without (`) follows, other
//! keywords are case-insensitive, and `#`, `//` and `/* */` start comments. Every token keeps
//! its 1-based line and column (in characters), which is what Loki's errors report.

use super::ast::{RangeOp, VectorOp};
use super::units::{parse_bytes, parse_logql_duration, try_parse_prom_duration};

/// A keyword from Loki's `tokens` table: always a keyword, whatever follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kw {
    /// `by`
    By,
    /// `without`
    Without,
    /// `bool`
    Bool,
    /// `offset`
    Offset,
    /// `on`
    On,
    /// `ignoring`
    Ignoring,
    /// `group_left`
    GroupLeft,
    /// `group_right`
    GroupRight,
    /// `or`
    Or,
    /// `and`
    And,
    /// `unless`
    Unless,
    /// `json`
    Json,
    /// `regexp`
    Regexp,
    /// `logfmt`
    Logfmt,
    /// `unpack`
    Unpack,
    /// `pattern`
    Pattern,
    /// `label_format`
    LabelFmt,
    /// `line_format`
    LineFmt,
    /// `decolorize`
    Decolorize,
    /// `drop`
    Drop,
    /// `keep`
    Keep,
    /// `unwrap`
    Unwrap,
    /// `variants`
    Variants,
    /// `of`
    Of,
}

const KEYWORDS: [(&str, Kw); 24] = [
    ("by", Kw::By),
    ("without", Kw::Without),
    ("bool", Kw::Bool),
    ("offset", Kw::Offset),
    ("on", Kw::On),
    ("ignoring", Kw::Ignoring),
    ("group_left", Kw::GroupLeft),
    ("group_right", Kw::GroupRight),
    ("or", Kw::Or),
    ("and", Kw::And),
    ("unless", Kw::Unless),
    ("json", Kw::Json),
    ("regexp", Kw::Regexp),
    ("logfmt", Kw::Logfmt),
    ("unpack", Kw::Unpack),
    ("pattern", Kw::Pattern),
    ("label_format", Kw::LabelFmt),
    ("line_format", Kw::LineFmt),
    ("decolorize", Kw::Decolorize),
    ("drop", Kw::Drop),
    ("keep", Kw::Keep),
    ("unwrap", Kw::Unwrap),
    ("variants", Kw::Variants),
    ("of", Kw::Of),
];

/// A function name from Loki's `functionTokens` table: a keyword only when called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// A range aggregation (`rate`, `count_over_time`, ...).
    Range(RangeOp),
    /// A vector aggregation (`sum`, `topk`, ...).
    Vector(VectorOp),
    /// `vector`
    VectorLit,
    /// `label_replace`
    LabelReplace,
    /// `bytes` (unwrap conversion)
    ConvBytes,
    /// `duration` (unwrap conversion)
    ConvDuration,
    /// `duration_seconds` (unwrap conversion)
    ConvDurationSeconds,
    /// `ip`
    Ip,
}

const FUNCTIONS: [(&str, Func, &str); 32] = [
    ("rate", Func::Range(RangeOp::Rate), "RATE"),
    (
        "rate_counter",
        Func::Range(RangeOp::RateCounter),
        "RATE_COUNTER",
    ),
    (
        "count_over_time",
        Func::Range(RangeOp::CountOverTime),
        "COUNT_OVER_TIME",
    ),
    ("bytes_rate", Func::Range(RangeOp::BytesRate), "BYTES_RATE"),
    (
        "bytes_over_time",
        Func::Range(RangeOp::BytesOverTime),
        "BYTES_OVER_TIME",
    ),
    (
        "avg_over_time",
        Func::Range(RangeOp::AvgOverTime),
        "AVG_OVER_TIME",
    ),
    (
        "sum_over_time",
        Func::Range(RangeOp::SumOverTime),
        "SUM_OVER_TIME",
    ),
    (
        "min_over_time",
        Func::Range(RangeOp::MinOverTime),
        "MIN_OVER_TIME",
    ),
    (
        "max_over_time",
        Func::Range(RangeOp::MaxOverTime),
        "MAX_OVER_TIME",
    ),
    (
        "stdvar_over_time",
        Func::Range(RangeOp::StdvarOverTime),
        "STDVAR_OVER_TIME",
    ),
    (
        "stddev_over_time",
        Func::Range(RangeOp::StddevOverTime),
        "STDDEV_OVER_TIME",
    ),
    (
        "quantile_over_time",
        Func::Range(RangeOp::QuantileOverTime),
        "QUANTILE_OVER_TIME",
    ),
    (
        "first_over_time",
        Func::Range(RangeOp::FirstOverTime),
        "FIRST_OVER_TIME",
    ),
    (
        "last_over_time",
        Func::Range(RangeOp::LastOverTime),
        "LAST_OVER_TIME",
    ),
    (
        "absent_over_time",
        Func::Range(RangeOp::AbsentOverTime),
        "ABSENT_OVER_TIME",
    ),
    ("vector", Func::VectorLit, "VECTOR"),
    ("sum", Func::Vector(VectorOp::Sum), "SUM"),
    ("avg", Func::Vector(VectorOp::Avg), "AVG"),
    ("max", Func::Vector(VectorOp::Max), "MAX"),
    ("min", Func::Vector(VectorOp::Min), "MIN"),
    ("count", Func::Vector(VectorOp::Count), "COUNT"),
    ("stddev", Func::Vector(VectorOp::Stddev), "STDDEV"),
    ("stdvar", Func::Vector(VectorOp::Stdvar), "STDVAR"),
    ("bottomk", Func::Vector(VectorOp::Bottomk), "BOTTOMK"),
    ("topk", Func::Vector(VectorOp::Topk), "TOPK"),
    ("sort", Func::Vector(VectorOp::Sort), "SORT"),
    ("sort_desc", Func::Vector(VectorOp::SortDesc), "SORT_DESC"),
    ("label_replace", Func::LabelReplace, "label_replace"),
    ("bytes", Func::ConvBytes, "BYTES_CONV"),
    ("duration", Func::ConvDuration, "DURATION_CONV"),
    (
        "duration_seconds",
        Func::ConvDurationSeconds,
        "DURATION_SECONDS_CONV",
    ),
    ("ip", Func::Ip, "ip"),
];

/// A token kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `]` outside a range.
    RBracket,
    /// `,`
    Comma,
    /// `.`
    Dot,
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `=~`
    Re,
    /// `!~`
    Nre,
    /// `!>`
    Npa,
    /// `|=`
    PipeExact,
    /// `|~`
    PipeMatch,
    /// `|>`
    PipePattern,
    /// `|`
    Pipe,
    /// `==`
    CmpEq,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// A keyword.
    Kw(Kw),
    /// A called function name.
    Func(Func),
    /// An identifier (anything Loki's lexer does not recognise reads as one too).
    Ident(String),
    /// A string literal, unescaped.
    Str(String),
    /// A number, as written.
    Number(String),
    /// A number with a duration unit, in nanoseconds.
    Duration(i64),
    /// A number with a size unit, in bytes.
    Bytes(u64),
    /// `[5m]`, in nanoseconds.
    Range(i64),
    /// `--strict` or `--keep-empty`.
    Flag(String),
    /// End of input.
    Eof,
}

impl Tok {
    /// The token's name in Loki's (yacc's) error messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::RBracket => "]",
            Tok::Comma => ",",
            Tok::Dot => ".",
            Tok::Eq => "=",
            Tok::Neq => "!=",
            Tok::Re => "=~",
            Tok::Nre => "!~",
            Tok::Npa => "!>",
            Tok::PipeExact => "|=",
            Tok::PipeMatch => "|~",
            Tok::PipePattern => "|>",
            Tok::Pipe => "|",
            Tok::CmpEq => "==",
            Tok::Gt => ">",
            Tok::Gte => ">=",
            Tok::Lt => "<",
            Tok::Lte => "<=",
            Tok::Add => "+",
            Tok::Sub => "-",
            Tok::Mul => "*",
            Tok::Div => "/",
            Tok::Mod => "%",
            Tok::Pow => "^",
            Tok::Kw(k) => KEYWORDS
                .iter()
                .find(|(_, kw)| kw == k)
                .map_or("IDENTIFIER", |(s, _)| s),
            Tok::Func(f) => FUNCTIONS
                .iter()
                .find(|(_, func, _)| func == f)
                .map_or("IDENTIFIER", |(_, _, name)| name),
            Tok::Ident(_) => "IDENTIFIER",
            Tok::Str(_) => "STRING",
            Tok::Number(_) => "NUMBER",
            Tok::Duration(_) => "DURATION",
            Tok::Bytes(_) => "BYTES",
            Tok::Range(_) => "RANGE",
            Tok::Flag(_) => "FUNCTION_FLAG",
            Tok::Eof => "$end",
        }
    }
}

/// A token and where it starts (1-based line and column, as Loki reports).
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned {
    /// The token.
    pub tok: Tok,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, counted in characters.
    pub col: usize,
}

/// A lexing failure at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
    /// What went wrong.
    pub msg: String,
}

struct Lexer {
    chars: Vec<char>,
    i: usize,
    line: usize,
    col: usize,
}

impl Lexer {
    fn peek(&self, n: usize) -> Option<char> {
        self.chars.get(self.i + n).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn bump_n(&mut self, n: usize) {
        for _ in 0..n {
            self.bump();
        }
    }

    fn err(&self, line: usize, col: usize, msg: impl Into<String>) -> LexError {
        LexError {
            line,
            col,
            msg: msg.into(),
        }
    }

    /// Skips whitespace and comments; Go's scanner only treats these four as whitespace.
    fn skip_trivia(&mut self) -> Result<(), LexError> {
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some(' ' | '\t' | '\n' | '\r'), _) => {
                    self.bump();
                }
                (Some('#'), _) | (Some('/'), Some('/')) => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                (Some('/'), Some('*')) => {
                    let (line, col) = (self.line, self.col);
                    self.bump_n(2);
                    loop {
                        match (self.peek(0), self.peek(1)) {
                            (Some('*'), Some('/')) => {
                                self.bump_n(2);
                                break;
                            }
                            (Some(_), _) => {
                                self.bump();
                            }
                            (None, _) => return Err(self.err(line, col, "comment not terminated")),
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// Counts the characters from `from` on that satisfy `pred`, up to whitespace or the end.
    fn run_len(&self, from: usize, pred: impl Fn(char) -> bool) -> usize {
        self.chars[(self.i + from).min(self.chars.len())..]
            .iter()
            .take_while(|c| !c.is_whitespace() && pred(**c))
            .count()
    }

    fn text(&self, from: usize, len: usize) -> String {
        self.chars[self.i + from..self.i + from + len]
            .iter()
            .collect()
    }

    /// Go's scanner number: decimal (with `_`), `0x`/`0o`/`0b` integers, fractions, exponents.
    fn number_len(&self) -> usize {
        let at = |n: usize| self.peek(n);
        let mut n = 0;
        if at(0) == Some('0') && matches!(at(1), Some('x' | 'X' | 'o' | 'O' | 'b' | 'B')) {
            n = 2;
            while at(n).is_some_and(|c| c.is_ascii_hexdigit() || c == '_') {
                n += 1;
            }
            return n;
        }
        while at(n).is_some_and(|c| c.is_ascii_digit() || c == '_') {
            n += 1;
        }
        if at(n) == Some('.') {
            n += 1;
            while at(n).is_some_and(|c| c.is_ascii_digit() || c == '_') {
                n += 1;
            }
        }
        if matches!(at(n), Some('e' | 'E')) {
            let sign = usize::from(matches!(at(n + 1), Some('+' | '-')));
            if at(n + 1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                n += 1 + sign;
                while at(n).is_some_and(|c| c.is_ascii_digit()) {
                    n += 1;
                }
            }
        }
        n
    }

    /// A duration token when the `len` characters here, followed by the run of characters
    /// Loki's `tryScanDuration` takes up to the next space, read as a duration.
    fn try_duration(&mut self, len: usize) -> Option<Tok> {
        let is_dur = |c: char| c.is_numeric() || c == '.' || "nuµmshdwy".contains(c);
        let extra = self.run_len(len, is_dur);
        if extra == 0 {
            return None;
        }
        let ns = parse_logql_duration(&self.text(0, len + extra))?;
        self.bump_n(len + extra);
        Some(Tok::Duration(ns))
    }

    /// After a number of `len` characters: a duration or byte size when the characters up to
    /// the next space read as one (Loki's `tryScanDuration` / `tryScanBytes`).
    fn number_token(&mut self, len: usize) -> Tok {
        if let Some(t) = self.try_duration(len) {
            return t;
        }
        let is_size = |c: char| c.is_numeric() || c == '.' || "BikKMGTP".contains(c);
        let extra = self.run_len(len, is_size);
        if extra > 0 {
            if let Some(b) = parse_bytes(&self.text(0, len + extra)) {
                self.bump_n(len + extra);
                return Tok::Bytes(b);
            }
        }
        let number = self.text(0, len);
        self.bump_n(len);
        Tok::Number(number)
    }

    /// A `"..."` or `` `...` `` string, unescaped as Go's `strconv.Unquote` does.
    fn string(&mut self, quote: char, line: usize, col: usize) -> Result<Tok, LexError> {
        let unterminated = |l: &Self| l.err(line, col, "literal not terminated");
        self.bump();
        let mut out: Vec<u8> = Vec::new();
        let mut buf = [0u8; 4];
        loop {
            let Some(c) = self.bump() else {
                return Err(unterminated(self));
            };
            if c == quote {
                break;
            }
            if quote == '`' {
                // Go drops carriage returns from raw strings.
                if c != '\r' {
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                continue;
            }
            if c == '\n' {
                return Err(unterminated(self));
            }
            if c != '\\' {
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            let bad = |l: &Self| l.err(line, col, "invalid char escape");
            let Some(e) = self.bump() else {
                return Err(unterminated(self));
            };
            let simple = match e {
                'a' => Some(7u8),
                'b' => Some(8),
                'f' => Some(12),
                'n' => Some(b'\n'),
                'r' => Some(b'\r'),
                't' => Some(b'\t'),
                'v' => Some(11),
                '\\' => Some(b'\\'),
                '"' => Some(b'"'),
                _ => None,
            };
            if let Some(b) = simple {
                out.push(b);
                continue;
            }
            let (digits, radix) = match e {
                '0'..='7' => (2, 8),
                'x' => (2, 16),
                'u' => (4, 16),
                'U' => (8, 16),
                _ => return Err(bad(self)),
            };
            let mut text = if radix == 8 {
                e.to_string()
            } else {
                String::new()
            };
            for _ in 0..digits {
                match self.bump() {
                    Some(d) if d.is_digit(radix) => text.push(d),
                    _ => return Err(bad(self)),
                }
            }
            let v = u32::from_str_radix(&text, radix).map_err(|_| bad(self))?;
            if matches!(e, 'u' | 'U') {
                let ch = char::from_u32(v).ok_or_else(|| self.err(line, col, "invalid syntax"))?;
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            } else {
                out.push(u8::try_from(v).map_err(|_| self.err(line, col, "invalid syntax"))?);
            }
        }
        Ok(Tok::Str(String::from_utf8_lossy(&out).into_owned()))
    }

    /// `[..]`: everything up to `]` is a Prometheus duration.
    fn range(&mut self, line: usize, col: usize) -> Result<Tok, LexError> {
        self.bump();
        let mut text = String::new();
        loop {
            match self.bump() {
                None => return Err(self.err(line, col, "missing closing ']' in duration")),
                Some(']') => break,
                Some(c) => text.push(c),
            }
        }
        try_parse_prom_duration(&text)
            .map(Tok::Range)
            .map_err(|e| self.err(line, col, e.to_string()))
    }

    /// Loki's `isFunction`: the name is followed by `(`, or by `by`/`without` and then `(`.
    fn called(&self) -> bool {
        let skip_ws = |mut j: usize| {
            while self.chars.get(j).is_some_and(|c| c.is_whitespace()) {
                j += 1;
            }
            j
        };
        let j = skip_ws(self.i);
        if self.chars.get(j) == Some(&'(') {
            return true;
        }
        let rest: String = self.chars[j..]
            .iter()
            .take(7)
            .collect::<String>()
            .to_lowercase();
        let word = if rest.starts_with("by") {
            2
        } else if rest.starts_with("without") {
            7
        } else {
            return false;
        };
        self.chars.get(skip_ws(j + word)) == Some(&'(')
    }

    fn word(&mut self) -> Tok {
        let len = self
            .chars
            .iter()
            .skip(self.i)
            .take_while(|c| c.is_alphanumeric() || **c == '_')
            .count();
        let text = self.text(0, len);
        self.bump_n(len);
        let lower = text.to_lowercase();
        if let Some((_, f, _)) = FUNCTIONS.iter().find(|(s, _, _)| *s == lower) {
            return if self.called() {
                Tok::Func(*f)
            } else {
                Tok::Ident(text)
            };
        }
        match KEYWORDS.iter().find(|(s, _)| *s == lower) {
            Some((_, kw)) => Tok::Kw(*kw),
            None => Tok::Ident(text),
        }
    }

    /// `-`: a parser flag (`--strict`), a negative duration (`-5m`), or minus.
    fn minus(&mut self) -> Tok {
        if self.peek(1) == Some('-') {
            let len = 2 + self.run_len(2, |c| c.is_alphabetic() || c == '-');
            let flag = self.text(0, len);
            if flag == "--strict" || flag == "--keep-empty" {
                self.bump_n(len);
                return Tok::Flag(flag);
            }
        }
        if let Some(t) = self.try_duration(1) {
            return t;
        }
        self.bump();
        Tok::Sub
    }

    fn token(&mut self) -> Result<Option<Spanned>, LexError> {
        self.skip_trivia()?;
        let (line, col) = (self.line, self.col);
        let Some(c) = self.peek(0) else {
            return Ok(None);
        };
        let next = self.peek(1);
        let two = |t: Tok| (t, 2);
        let punct = match (c, next) {
            ('{', _) => Some((Tok::LBrace, 1)),
            ('}', _) => Some((Tok::RBrace, 1)),
            ('(', _) => Some((Tok::LParen, 1)),
            (')', _) => Some((Tok::RParen, 1)),
            (']', _) => Some((Tok::RBracket, 1)),
            (',', _) => Some((Tok::Comma, 1)),
            ('=', Some('~')) => Some(two(Tok::Re)),
            ('=', Some('=')) => Some(two(Tok::CmpEq)),
            ('=', _) => Some((Tok::Eq, 1)),
            ('!', Some('=')) => Some(two(Tok::Neq)),
            ('!', Some('~')) => Some(two(Tok::Nre)),
            ('!', Some('>')) => Some(two(Tok::Npa)),
            ('|', Some('=')) => Some(two(Tok::PipeExact)),
            ('|', Some('~')) => Some(two(Tok::PipeMatch)),
            ('|', Some('>')) => Some(two(Tok::PipePattern)),
            ('|', _) => Some((Tok::Pipe, 1)),
            ('>', Some('=')) => Some(two(Tok::Gte)),
            ('>', _) => Some((Tok::Gt, 1)),
            ('<', Some('=')) => Some(two(Tok::Lte)),
            ('<', _) => Some((Tok::Lt, 1)),
            ('+', _) => Some((Tok::Add, 1)),
            ('*', _) => Some((Tok::Mul, 1)),
            ('/', _) => Some((Tok::Div, 1)),
            ('%', _) => Some((Tok::Mod, 1)),
            ('^', _) => Some((Tok::Pow, 1)),
            _ => None,
        };
        let tok = if let Some((tok, n)) = punct {
            self.bump_n(n);
            tok
        } else if c == '"' || c == '`' {
            self.string(c, line, col)?
        } else if c == '[' {
            self.range(line, col)?
        } else if c == '-' {
            self.minus()
        } else if c.is_ascii_digit() || (c == '.' && next.is_some_and(|d| d.is_ascii_digit())) {
            let len = self.number_len();
            self.number_token(len)
        } else if c == '.' {
            self.bump();
            Tok::Dot
        } else if c.is_alphabetic() || c == '_' {
            self.word()
        } else {
            // Loki's lexer hands any other character to the grammar as an identifier.
            self.bump();
            Tok::Ident(c.to_string())
        };
        Ok(Some(Spanned { tok, line, col }))
    }
}

/// Splits a query into tokens, ending with [`Tok::Eof`] at the position after the input.
pub fn lex(input: &str) -> Result<Vec<Spanned>, LexError> {
    let mut lx = Lexer {
        chars: input.chars().collect(),
        i: 0,
        line: 1,
        col: 1,
    };
    let mut out = Vec::new();
    while let Some(t) = lx.token()? {
        out.push(t);
    }
    out.push(Spanned {
        tok: Tok::Eof,
        line: lx.line,
        col: lx.col,
    });
    Ok(out)
}

#[cfg(test)]
mod tests;
