//! The LogQL lexer: tokens with their line and column, so every parse error can say where.

/// A token kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `,`
    Comma,
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `=~`
    Re,
    /// `!~`
    Nre,
    /// `|=`
    PipeExact,
    /// `|~`
    PipeMatch,
    /// `|`
    Pipe,
    /// An identifier.
    Ident(String),
    /// A string literal (already unescaped).
    Str(String),
    /// End of input.
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Tok::LBrace => "{".into(),
            Tok::RBrace => "}".into(),
            Tok::Comma => ",".into(),
            Tok::Eq => "=".into(),
            Tok::Neq => "!=".into(),
            Tok::Re => "=~".into(),
            Tok::Nre => "!~".into(),
            Tok::PipeExact => "|=".into(),
            Tok::PipeMatch => "|~".into(),
            Tok::Pipe => "|".into(),
            Tok::Ident(s) => format!("identifier {s}"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Eof => "end of input".into(),
        }
    }
}

/// A token and where it starts (1-based line and column, as Loki reports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spanned {
    /// The token.
    pub tok: Tok,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
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

/// Splits a query into tokens.
pub fn lex(input: &str) -> Result<Vec<Spanned>, LexError> {
    let chars: Vec<char> = input.chars().collect();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        let (tl, tc) = (line, col);
        let advance = |n: usize, i: &mut usize, col: &mut usize| {
            *i += n;
            *col += n;
        };
        if c == '\n' {
            i += 1;
            line += 1;
            col = 1;
            continue;
        }
        if c.is_whitespace() {
            advance(1, &mut i, &mut col);
            continue;
        }
        let next = chars.get(i + 1).copied();
        let two = |t: Tok| Some((t, 2));
        let simple = match (c, next) {
            ('{', _) => Some((Tok::LBrace, 1)),
            ('}', _) => Some((Tok::RBrace, 1)),
            (',', _) => Some((Tok::Comma, 1)),
            ('=', Some('~')) => two(Tok::Re),
            ('=', _) => Some((Tok::Eq, 1)),
            ('!', Some('=')) => two(Tok::Neq),
            ('!', Some('~')) => two(Tok::Nre),
            ('|', Some('=')) => two(Tok::PipeExact),
            ('|', Some('~')) => two(Tok::PipeMatch),
            ('|', _) => Some((Tok::Pipe, 1)),
            _ => None,
        };
        if let Some((tok, n)) = simple {
            out.push(Spanned {
                tok,
                line: tl,
                col: tc,
            });
            advance(n, &mut i, &mut col);
            continue;
        }
        if c == '"' || c == '`' {
            let quote = c;
            let mut s = String::new();
            let mut j = i + 1;
            let mut closed = false;
            while j < chars.len() {
                let d = chars[j];
                if d == quote {
                    closed = true;
                    break;
                }
                if d == '\\' && quote == '"' {
                    let e = chars.get(j + 1).copied();
                    match e {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some('r') => s.push('\r'),
                        Some('\\') => s.push('\\'),
                        Some('"') => s.push('"'),
                        Some(other) => {
                            // Go keeps unknown escapes as errors; Loki users write regexes like "\d"
                            // inside double quotes, which Go's strconv refuses too.
                            return Err(LexError {
                                line,
                                col: col + (j - i),
                                msg: format!("invalid escape sequence \\{other} in string"),
                            });
                        }
                        None => break,
                    }
                    j += 2;
                    continue;
                }
                s.push(d);
                j += 1;
            }
            if !closed {
                return Err(LexError {
                    line: tl,
                    col: tc,
                    msg: "unterminated string".into(),
                });
            }
            let consumed = j + 1 - i;
            out.push(Spanned {
                tok: Tok::Str(s),
                line: tl,
                col: tc,
            });
            // Strings may span lines with backticks; keep the column count simple.
            advance(consumed, &mut i, &mut col);
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            let ident: String = chars[i..j].iter().collect();
            out.push(Spanned {
                tok: Tok::Ident(ident),
                line: tl,
                col: tc,
            });
            advance(j - i, &mut i, &mut col);
            continue;
        }
        return Err(LexError {
            line: tl,
            col: tc,
            msg: format!("unexpected character {c:?}"),
        });
    }
    out.push(Spanned {
        tok: Tok::Eof,
        line,
        col,
    });
    Ok(out)
}
