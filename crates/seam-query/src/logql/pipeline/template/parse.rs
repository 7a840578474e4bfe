//! Lexing and parsing Go's text/template syntax: text, `{{ }}` actions with trim markers and
//! comments, pipelines, variables, `if`/`else if`/`with`/`range`/`break`/`continue`.

use super::{funcs, Val};

/// A parsed node.
#[derive(Debug)]
pub(super) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    With(Branch),
    Range {
        pipe: Pipe,
        body: Vec<Node>,
        else_: Vec<Node>,
    },
    Break,
    Continue,
}

/// `{{if a}}..{{else if b}}..{{else}}..{{end}}` (also `with`).
#[derive(Debug)]
pub(super) struct Branch {
    pub(super) cond: Pipe,
    pub(super) body: Vec<Node>,
    pub(super) else_: Vec<Node>,
}

/// `[$x :=] cmd | cmd | ...`.
#[derive(Debug)]
pub(super) struct Pipe {
    pub(super) decl: Vec<String>,
    /// `=` (assign to an existing variable) rather than `:=`.
    pub(super) assign: bool,
    pub(super) cmds: Vec<Cmd>,
}

/// One command: a function and its arguments, or a single operand.
#[derive(Debug)]
pub(super) struct Cmd {
    pub(super) args: Vec<Arg>,
    /// Byte offset in the template, for error messages.
    pub(super) pos: usize,
    /// The text of the command's first operand (the function, for a call), which Go's
    /// execution errors point at.
    pub(super) text: String,
}

/// An operand.
#[derive(Debug)]
pub(super) enum Arg {
    Dot,
    /// `.a.b`.
    Field(Vec<String>),
    /// `$x.a`.
    Var(String, Vec<String>),
    Const(Val),
    Nil,
    Func(String),
    /// `(pipeline).a`.
    Paren(Box<Pipe>, Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Text(String),
    Open,
    Close,
    Ident(String),
    Field(String),
    Dot,
    Var(String),
    Const(Val),
    Nil,
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Eof,
}

#[derive(Clone, Debug)]
struct Item {
    tok: Tok,
    pos: usize,
    end: usize,
}

const SPACE: [char; 4] = [' ', '\t', '\r', '\n'];

/// A parse error's message with its line, as Go prints it.
fn err_at(name: &str, src: &str, pos: usize, msg: impl std::fmt::Display) -> String {
    let line = 1 + src[..pos.min(src.len())].matches('\n').count();
    format!("template: {name}:{line}: {msg}")
}

fn lex(name: &str, src: &str) -> Result<Vec<Item>, String> {
    let b = src.as_bytes();
    let mut items: Vec<Item> = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    loop {
        let open = src[pos..].find("{{").map(|i| pos + i);
        let mut text = &src[pos..open.unwrap_or(src.len())];
        if trim_next {
            text = text.trim_start_matches(SPACE);
        }
        let Some(open) = open else {
            if !text.is_empty() {
                items.push(Item {
                    tok: Tok::Text(text.into()),
                    pos,
                    end: src.len(),
                });
            }
            items.push(Item {
                tok: Tok::Eof,
                pos: src.len(),
                end: src.len(),
            });
            return Ok(items);
        };
        let mut inner = open + 2;
        if b.get(inner) == Some(&b'-')
            && b.get(inner + 1)
                .is_some_and(|c| SPACE.contains(&(*c as char)))
        {
            text = text.trim_end_matches(SPACE);
            inner += 2;
        }
        if !text.is_empty() {
            items.push(Item {
                tok: Tok::Text(text.into()),
                pos,
                end: open,
            });
        }
        let close_at = |i: usize| -> Option<(usize, bool)> {
            if src[i..].starts_with("}}") {
                Some((i + 2, false))
            } else if b.get(i).is_some_and(|c| SPACE.contains(&(*c as char)))
                && src[i + 1..].starts_with("-}}")
            {
                Some((i + 4, true))
            } else {
                None
            }
        };
        if src[inner..].starts_with("/*") {
            let end = src[inner + 2..]
                .find("*/")
                .map(|e| inner + 4 + e)
                .ok_or_else(|| err_at(name, src, open, "unclosed comment"))?;
            let (after, trim) = close_at(end)
                .ok_or_else(|| err_at(name, src, open, "comment ends before closing delimiter"))?;
            pos = after;
            trim_next = trim;
            continue;
        }
        items.push(Item {
            tok: Tok::Open,
            pos: open,
            end: inner,
        });
        let (after, trim) = lex_action(name, src, inner, &mut items, close_at)?;
        pos = after;
        trim_next = trim;
    }
}

fn lex_action(
    name: &str,
    src: &str,
    mut i: usize,
    items: &mut Vec<Item>,
    close_at: impl Fn(usize) -> Option<(usize, bool)>,
) -> Result<(usize, bool), String> {
    let b = src.as_bytes();
    let mut depth = 0usize;
    loop {
        if let Some((after, trim)) = close_at(i) {
            if depth > 0 {
                return Err(err_at(name, src, i, "unclosed left paren"));
            }
            items.push(Item {
                tok: Tok::Close,
                pos: i,
                end: after,
            });
            return Ok((after, trim));
        }
        let Some(&c) = b.get(i) else {
            return Err(err_at(name, src, i, "unclosed action"));
        };
        let start = i;
        let ident_end = |from: usize| {
            from + src[from..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(src.len() - from)
        };
        let tok = match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'|' => Tok::Pipe,
            b',' => Tok::Comma,
            b'=' => Tok::Assign,
            b'(' => {
                depth += 1;
                Tok::LParen
            }
            b')' => {
                if depth == 0 {
                    return Err(err_at(name, src, i, "unexpected right paren"));
                }
                depth -= 1;
                Tok::RParen
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                i += 1;
                Tok::Declare
            }
            b'"' => {
                let (s, end) = lex_quoted(src, i)
                    .ok_or_else(|| err_at(name, src, i, "unterminated quoted string"))?;
                i = end - 1;
                Tok::Const(Val::Str(s))
            }
            b'`' => {
                let end = src[i + 1..]
                    .find('`')
                    .map(|e| i + 1 + e)
                    .ok_or_else(|| err_at(name, src, i, "unterminated raw quoted string"))?;
                let s = src[i + 1..end].to_string();
                i = end;
                Tok::Const(Val::Str(s))
            }
            b'\'' => {
                let mut chars = src[i + 1..].chars();
                let c = match chars.next() {
                    Some('\\') => match chars.next() {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some(c) => c,
                        None => {
                            return Err(err_at(name, src, i, "unterminated character constant"))
                        }
                    },
                    Some(c) => c,
                    None => return Err(err_at(name, src, i, "unterminated character constant")),
                };
                let close = src[i + 1..]
                    .find('\'')
                    .map(|e| i + 1 + e)
                    .ok_or_else(|| err_at(name, src, i, "unterminated character constant"))?;
                i = close;
                Tok::Const(Val::Int(c as i64))
            }
            b'$' => {
                let end = ident_end(i + 1);
                let v = src[i..end].to_string();
                i = end - 1;
                Tok::Var(v)
            }
            b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let (v, end) =
                    lex_number(src, i).ok_or_else(|| err_at(name, src, i, "bad number syntax"))?;
                i = end - 1;
                Tok::Const(v)
            }
            b'.' => {
                let end = ident_end(i + 1);
                if end == i + 1 {
                    Tok::Dot
                } else {
                    let f = src[i + 1..end].to_string();
                    i = end - 1;
                    Tok::Field(f)
                }
            }
            b'+' | b'-' | b'0'..=b'9' => {
                let (v, end) =
                    lex_number(src, i).ok_or_else(|| err_at(name, src, i, "bad number syntax"))?;
                i = end - 1;
                Tok::Const(v)
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let end = ident_end(i);
                if end == i {
                    let ch = src[i..].chars().next().unwrap_or_default();
                    return Err(err_at(
                        name,
                        src,
                        i,
                        format!("bad character U+{:04X} '{ch}'", ch as u32),
                    ));
                }
                let word = &src[i..end];
                i = end - 1;
                match word {
                    "true" => Tok::Const(Val::Bool(true)),
                    "false" => Tok::Const(Val::Bool(false)),
                    "nil" => Tok::Nil,
                    w => Tok::Ident(w.to_string()),
                }
            }
            c => {
                return Err(err_at(
                    name,
                    src,
                    i,
                    format!("bad character U+{:04X} '{}'", c, c as char),
                ));
            }
        };
        i += 1;
        items.push(Item {
            tok,
            pos: start,
            end: i,
        });
    }
}

/// A Go interpreted string literal starting at `start`; returns it and the offset after it.
fn lex_quoted(src: &str, start: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            '"' => return Some((out, start + 1 + off + 1)),
            '\n' => return None,
            '\\' => {
                let (_, e) = chars.next()?;
                out.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'v' => '\u{b}',
                    '0'..='7' => {
                        let oct: String = std::iter::once(e)
                            .chain(chars.by_ref().take(2).map(|p| p.1))
                            .collect();
                        char::from_u32(u32::from_str_radix(&oct, 8).ok()?)?
                    }
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = chars.by_ref().take(n).map(|p| p.1).collect();
                        char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
                    }
                    c => c,
                });
            }
            c => out.push(c),
        }
    }
    None
}

/// A Go number literal at `start`: an integer (decimal, `0x`, `0o`, `0b`, `_` separators) or
/// a float; returns the value and the offset after it.
fn lex_number(src: &str, start: usize) -> Option<(Val, usize)> {
    let end = start
        + src[start..]
            .char_indices()
            .find(|&(i, c)| {
                !(c.is_ascii_alphanumeric()
                    || c == '_'
                    || c == '.'
                    || ((c == '+' || c == '-')
                        && (i == 0 || src.as_bytes()[start + i - 1].eq_ignore_ascii_case(&b'e'))))
            })
            .map_or(src.len() - start, |(i, _)| i);
    let text = src[start..end].replace('_', "");
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text.strip_prefix('+').unwrap_or(&text)),
    };
    let radix = |p: &str, r: u32| {
        digits
            .strip_prefix(p)
            .and_then(|d| i64::from_str_radix(d, r).ok())
    };
    let int = radix("0x", 16)
        .or_else(|| radix("0X", 16))
        .or_else(|| radix("0o", 8))
        .or_else(|| radix("0b", 2))
        .or_else(|| digits.parse::<i64>().ok());
    let v = match int {
        Some(i) => Val::Int(if neg { -i } else { i }),
        None => {
            let f: f64 = digits.parse().ok()?;
            Val::Float(if neg { -f } else { f })
        }
    };
    Some((v, end))
}

/// A token as Go's parser names it in errors.
fn describe(t: &Tok) -> String {
    match t {
        Tok::Text(_) => "text".into(),
        Tok::Open => "\"{{\"".into(),
        Tok::Close => "\"}}\"".into(),
        Tok::Ident(s) => format!("<{s}>"),
        Tok::Field(f) => format!("<.{f}>"),
        Tok::Dot => "<.>".into(),
        Tok::Var(v) => format!("<{v}>"),
        Tok::Const(Val::Str(s)) => format!("{s:?}"),
        Tok::Const(v) => format!("<{v:?}>"),
        Tok::Nil => "<nil>".into(),
        Tok::Pipe => "\"|\"".into(),
        Tok::LParen => "\"(\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
        Tok::Eof => "EOF".into(),
    }
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    End,
    Else,
    /// `{{else if ...` / `{{else with ...`: the rest of the action is the next condition.
    ElseChain,
}

pub(super) struct Parser<'a> {
    name: &'a str,
    src: &'a str,
    items: Vec<Item>,
    i: usize,
    vars: Vec<String>,
    range_depth: usize,
}

impl<'a> Parser<'a> {
    /// Parses a whole template.
    pub(super) fn parse(name: &'a str, src: &'a str) -> Result<Vec<Node>, String> {
        let mut p = Parser {
            name,
            src,
            items: lex(name, src)?,
            i: 0,
            vars: vec!["$".to_string()],
            range_depth: 0,
        };
        let (nodes, stop) = p.list()?;
        match stop {
            Stop::Eof => Ok(nodes),
            Stop::End => Err(p.err("unexpected {{end}}")),
            Stop::Else | Stop::ElseChain => Err(p.err("unexpected {{else}}")),
        }
    }

    fn err(&self, msg: impl std::fmt::Display) -> String {
        let pos = self
            .items
            .get(self.i.saturating_sub(1))
            .map_or(0, |it| it.pos);
        err_at(self.name, self.src, pos, msg)
    }

    fn next(&mut self) -> Item {
        let it = self.items[self.i.min(self.items.len() - 1)].clone();
        self.i += 1;
        it
    }

    fn peek(&self) -> &Tok {
        &self.items[self.i.min(self.items.len() - 1)].tok
    }

    fn expect_close(&mut self, context: &str) -> Result<(), String> {
        match self.next().tok {
            Tok::Close => Ok(()),
            t => Err(self.err(format!("unexpected {} in {context}", describe(&t)))),
        }
    }

    fn list(&mut self) -> Result<(Vec<Node>, Stop), String> {
        let mut nodes = Vec::new();
        loop {
            let it = self.next();
            match it.tok {
                Tok::Text(s) => nodes.push(Node::Text(s)),
                Tok::Eof => return Ok((nodes, Stop::Eof)),
                Tok::Open => match self.peek().clone() {
                    Tok::Ident(k) if k == "end" => {
                        self.i += 1;
                        self.expect_close("end")?;
                        return Ok((nodes, Stop::End));
                    }
                    Tok::Ident(k) if k == "else" => {
                        self.i += 1;
                        if matches!(self.peek(), Tok::Ident(k) if k == "if" || k == "with") {
                            self.i += 1;
                            return Ok((nodes, Stop::ElseChain));
                        }
                        self.expect_close("else")?;
                        return Ok((nodes, Stop::Else));
                    }
                    Tok::Ident(k) if k == "if" || k == "with" => {
                        self.i += 1;
                        let b = self.branch(&k)?;
                        nodes.push(if k == "if" {
                            Node::If(b)
                        } else {
                            Node::With(b)
                        });
                    }
                    Tok::Ident(k) if k == "range" => {
                        self.i += 1;
                        nodes.push(self.range()?);
                    }
                    Tok::Ident(k) if k == "break" || k == "continue" => {
                        self.i += 1;
                        if self.range_depth == 0 {
                            return Err(self.err(format!("{{{{{k}}}}} outside {{{{range}}}}")));
                        }
                        self.expect_close(&k)?;
                        nodes.push(if k == "break" {
                            Node::Break
                        } else {
                            Node::Continue
                        });
                    }
                    Tok::Ident(k) if matches!(k.as_str(), "define" | "template" | "block") => {
                        return Err(self.err(format!("{{{{{k}}}}} is not supported")));
                    }
                    _ => {
                        let pipe = self.pipe("command", 1)?;
                        nodes.push(Node::Action(pipe));
                    }
                },
                t => return Err(self.err(format!("unexpected {}", describe(&t)))),
            }
        }
    }

    /// After `{{if`/`{{with` (or `{{else if`): condition, body, optional else chain, `{{end}}`.
    fn branch(&mut self, kind: &str) -> Result<Branch, String> {
        let scope = self.vars.len();
        let cond = self.pipe(kind, 1)?;
        let (body, stop) = self.list()?;
        let else_ = match stop {
            Stop::End => Vec::new(),
            Stop::Else => self.else_body()?,
            Stop::ElseChain => {
                let nested = self.branch(kind)?;
                vec![if kind == "if" {
                    Node::If(nested)
                } else {
                    Node::With(nested)
                }]
            }
            Stop::Eof => return Err(self.err("unexpected EOF")),
        };
        self.vars.truncate(scope);
        Ok(Branch { cond, body, else_ })
    }

    fn range(&mut self) -> Result<Node, String> {
        let scope = self.vars.len();
        let pipe = self.pipe("range", 2)?;
        self.range_depth += 1;
        let (body, stop) = self.list()?;
        let else_ = match stop {
            Stop::End => Vec::new(),
            Stop::Else => self.else_body()?,
            _ => return Err(self.err("unexpected EOF")),
        };
        self.range_depth -= 1;
        self.vars.truncate(scope);
        Ok(Node::Range { pipe, body, else_ })
    }

    /// After `{{else}}`: the nodes up to the `{{end}}` that must close them.
    fn else_body(&mut self) -> Result<Vec<Node>, String> {
        match self.list()? {
            (nodes, Stop::End) => Ok(nodes),
            _ => Err(self.err("expected end; found EOF")),
        }
    }

    /// A pipeline up to `}}` (or `)` inside parentheses), with up to `max_decl` variables.
    fn pipe(&mut self, context: &str, max_decl: usize) -> Result<Pipe, String> {
        let mut decl = Vec::new();
        let mut assign = false;
        if let Tok::Var(_) = self.peek() {
            let mut j = self.i;
            let mut names = Vec::new();
            while let Tok::Var(v) = &self.items[j].tok {
                names.push(v.clone());
                match &self.items[j + 1].tok {
                    Tok::Comma if names.len() < max_decl => j += 2,
                    Tok::Declare | Tok::Assign => {
                        assign = self.items[j + 1].tok == Tok::Assign;
                        decl = names;
                        self.i = j + 2;
                        break;
                    }
                    _ => break,
                }
            }
        }
        for v in &decl {
            if assign && !self.vars.contains(v) {
                return Err(self.err(format!("undefined variable \"{v}\"")));
            }
        }
        let mut cmds = Vec::new();
        loop {
            cmds.push(self.cmd()?);
            match self.next().tok {
                Tok::Pipe => continue,
                Tok::Close | Tok::RParen => break,
                t => return Err(self.err(format!("unexpected {} in {context}", describe(&t)))),
            }
        }
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        Ok(Pipe { decl, assign, cmds })
    }

    fn cmd(&mut self) -> Result<Cmd, String> {
        let start = self.items[self.i.min(self.items.len() - 1)].pos;
        let mut args = Vec::new();
        let mut first_end = start;
        while !matches!(self.peek(), Tok::Pipe | Tok::Close | Tok::RParen | Tok::Eof) {
            args.push(self.operand()?);
            if args.len() == 1 {
                first_end = self.items[self.i - 1].end;
            }
        }
        if args.is_empty() {
            return Err(self.err("missing value for command"));
        }
        Ok(Cmd {
            args,
            pos: start,
            text: self.src[start..first_end].to_string(),
        })
    }

    fn operand(&mut self) -> Result<Arg, String> {
        let it = self.next();
        let arg = match it.tok {
            Tok::Ident(name) => {
                if !funcs::exists(&name) {
                    return Err(self.err(format!("function \"{name}\" not defined")));
                }
                return Ok(Arg::Func(name));
            }
            Tok::Dot => return Ok(Arg::Dot),
            Tok::Nil => return Ok(Arg::Nil),
            Tok::Const(v) => return Ok(Arg::Const(v)),
            Tok::Field(f) => Arg::Field(vec![f]),
            Tok::Var(v) => {
                if !self.vars.contains(&v) {
                    return Err(self.err(format!("undefined variable \"{v}\"")));
                }
                Arg::Var(v, Vec::new())
            }
            Tok::LParen => Arg::Paren(
                Box::new(self.pipe("parenthesized pipeline", 0)?),
                Vec::new(),
            ),
            t => return Err(self.err(format!("unexpected {} in operand", describe(&t)))),
        };
        let mut arg = arg;
        let mut prev_end = self.items[self.i - 1].end;
        while let Tok::Field(f) = self.peek().clone() {
            if self.items[self.i].pos != prev_end {
                break;
            }
            match &mut arg {
                Arg::Field(c) | Arg::Var(_, c) | Arg::Paren(_, c) => c.push(f),
                _ => unreachable!("only chainable operands reach here"),
            }
            prev_end = self.items[self.i].end;
            self.i += 1;
        }
        Ok(arg)
    }
}
