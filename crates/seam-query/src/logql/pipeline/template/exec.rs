//! Running a parsed template: pipelines, variables, control flow and Go's truthiness.

use super::funcs::{self, Ctx};
use super::gofmt::{display, type_name};
use super::parse::{Arg, Branch, Cmd, Node, Pipe};
use super::{Fields, Template, Val};

enum Flow {
    Normal,
    Break,
    Continue,
}

/// An execution error: Go's message and the command it happened at.
struct ExecError {
    msg: String,
    pos: usize,
    at: String,
}

type Result<T> = std::result::Result<T, ExecError>;

struct Exec<'a> {
    cx: Ctx<'a>,
    vars: Vec<(String, Val)>,
    out: String,
}

pub(super) fn run(
    t: &Template,
    fields: &dyn Fields,
    line: &str,
    ts: i64,
) -> std::result::Result<String, String> {
    let mut ex = Exec {
        cx: Ctx { fields, line, ts },
        vars: vec![("$".to_string(), Val::Map)],
        out: String::new(),
    };
    match ex.nodes(&t.root, &Val::Map) {
        Ok(_) => Ok(ex.out),
        Err(e) => {
            let before = &t.src[..e.pos.min(t.src.len())];
            let line_no = 1 + before.matches('\n').count();
            let col = before.rfind('\n').map_or(e.pos, |nl| e.pos - nl - 1);
            Err(format!(
                "template: {name}:{line_no}:{col}: executing \"{name}\" at <{}>: {}",
                e.at,
                e.msg,
                name = t.name
            ))
        }
    }
}

/// Go's truth: false, 0, "", nil and an empty map are false.
pub(super) fn truth(v: &Val, fields: &dyn Fields) -> bool {
    match v {
        Val::Str(s) => !s.is_empty(),
        Val::Int(i) => *i != 0,
        Val::Float(f) => *f != 0.0,
        Val::Bool(b) => *b,
        Val::Time(_) => true,
        Val::Map => !fields.all().is_empty(),
        Val::Nil => false,
    }
}

impl Exec<'_> {
    fn nodes(&mut self, nodes: &[Node], dot: &Val) -> Result<Flow> {
        for n in nodes {
            match n {
                Node::Text(s) => self.out.push_str(s),
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.decl.is_empty() {
                        let s = display(&v, self.cx.fields);
                        self.out.push_str(&s);
                    }
                }
                Node::If(b) => match self.branch(b, dot, false)? {
                    Flow::Normal => {}
                    flow => return Ok(flow),
                },
                Node::With(b) => match self.branch(b, dot, true)? {
                    Flow::Normal => {}
                    flow => return Ok(flow),
                },
                Node::Range { pipe, body, else_ } => match self.range(pipe, body, else_, dot)? {
                    Flow::Normal => {}
                    flow => return Ok(flow),
                },
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn branch(&mut self, b: &Branch, dot: &Val, with: bool) -> Result<Flow> {
        let scope = self.vars.len();
        let v = self.pipe(&b.cond, dot)?;
        let flow = if truth(&v, self.cx.fields) {
            self.nodes(&b.body, if with { &v } else { dot })?
        } else {
            self.nodes(&b.else_, dot)?
        };
        self.vars.truncate(scope);
        Ok(flow)
    }

    fn range(&mut self, pipe: &Pipe, body: &[Node], else_: &[Node], dot: &Val) -> Result<Flow> {
        let scope = self.vars.len();
        let v = self.cmds(pipe, dot)?;
        let items: Vec<(Val, Val)> = match &v {
            Val::Map => self
                .cx
                .fields
                .all()
                .into_iter()
                .map(|(k, v)| (Val::Str(k.into()), Val::Str(v.into())))
                .collect(),
            Val::Int(n) => (0..*n).map(|i| (Val::Int(i), Val::Int(i))).collect(),
            Val::Nil => Vec::new(),
            other => {
                let at = pipe.cmds.first();
                return Err(ExecError {
                    msg: format!(
                        "range can't iterate over {}",
                        display(other, self.cx.fields)
                    ),
                    pos: at.map_or(0, |c| c.pos),
                    at: at.map_or(String::new(), |c| c.text.clone()),
                });
            }
        };
        if items.is_empty() {
            return self.nodes(else_, dot);
        }
        for (k, v) in items {
            match pipe.decl.as_slice() {
                [one] => self.vars.push((one.clone(), v.clone())),
                [key, value] => {
                    self.vars.push((key.clone(), k));
                    self.vars.push((value.clone(), v.clone()));
                }
                _ => {}
            }
            let flow = self.nodes(body, &v)?;
            self.vars.truncate(scope);
            if let Flow::Break = flow {
                break;
            }
        }
        Ok(Flow::Normal)
    }

    /// Runs a pipeline and applies its declaration or assignment.
    fn pipe(&mut self, p: &Pipe, dot: &Val) -> Result<Val> {
        let v = self.cmds(p, dot)?;
        if p.assign {
            for name in &p.decl {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = v.clone();
                }
            }
        } else if let [name] = p.decl.as_slice() {
            self.vars.push((name.clone(), v.clone()));
        }
        Ok(v)
    }

    fn cmds(&mut self, p: &Pipe, dot: &Val) -> Result<Val> {
        let mut v = None;
        for c in &p.cmds {
            v = Some(self.cmd(c, dot, v.take())?);
        }
        Ok(v.unwrap_or(Val::Nil))
    }

    fn cmd(&mut self, c: &Cmd, dot: &Val, piped: Option<Val>) -> Result<Val> {
        let fail = |msg: String| ExecError {
            msg,
            pos: c.pos,
            at: c.text.clone(),
        };
        let Arg::Func(name) = &c.args[0] else {
            if c.args.len() > 1 || piped.is_some() {
                return Err(fail(format!(
                    "can't give argument to non-function {}",
                    c.text
                )));
            }
            return self.arg(&c.args[0], dot).map_err(fail);
        };
        // `and`/`or` evaluate their arguments only as far as needed, as Go does.
        if name == "and" || name == "or" {
            let mut last = Val::Nil;
            let n = c.args.len() - 1 + usize::from(piped.is_some());
            if n == 0 {
                return Err(fail(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                )));
            }
            let mut piped = piped;
            for i in 0..n {
                last = match c.args.get(i + 1) {
                    Some(a) => self.arg(a, dot).map_err(fail)?,
                    None => piped.take().unwrap_or(Val::Nil),
                };
                if truth(&last, self.cx.fields) == (name == "or") {
                    break;
                }
            }
            return Ok(last);
        }
        let mut args = Vec::with_capacity(c.args.len());
        for a in &c.args[1..] {
            args.push(self.arg(a, dot).map_err(fail)?);
        }
        args.extend(piped);
        funcs::call(name, args, &self.cx).map_err(fail)
    }

    fn arg(&mut self, a: &Arg, dot: &Val) -> std::result::Result<Val, String> {
        match a {
            Arg::Dot => Ok(dot.clone()),
            Arg::Field(chain) => self.fields(dot.clone(), chain),
            Arg::Var(name, chain) => {
                let v = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| format!("undefined variable: {name}"))?;
                self.fields(v, chain)
            }
            Arg::Const(v) => Ok(v.clone()),
            Arg::Nil => Ok(Val::Nil),
            Arg::Func(name) => funcs::call(name, Vec::new(), &self.cx),
            Arg::Paren(p, chain) => {
                let v = self.pipe(p, dot).map_err(|e| e.msg)?;
                self.fields(v, chain)
            }
        }
    }

    /// Follows `.a.b` from `v`: only the label map has fields.
    fn fields(&self, mut v: Val, chain: &[String]) -> std::result::Result<Val, String> {
        for f in chain {
            v = match v {
                Val::Map => Val::Str(self.cx.fields.get(f).unwrap_or_default().to_string()),
                Val::Nil => return Err(format!("nil pointer evaluating interface {{}}.{f}")),
                other => {
                    return Err(format!(
                        "can't evaluate field {f} in type {}",
                        type_name(&other)
                    ))
                }
            };
        }
        Ok(v)
    }
}
