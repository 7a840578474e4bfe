//! The functions a Loki template can call: Go's builtins, Loki's own (`__line__`,
//! `regexReplaceAll`, `bytes`, ...) and the sprig subset Loki registers, with Go's argument
//! type checks and messages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use regex::Regex;

use super::gofmt::{display, format_layout, sprintf, type_name};
use super::{Fields, Val};
use crate::logql::format::go_quote;
use crate::logql::parser::compile_go_regex;
use crate::logql::pipeline::label_filter::{convert_bytes, convert_duration_seconds};

/// What a function can read besides its arguments.
pub(super) struct Ctx<'a> {
    pub(super) fields: &'a dyn Fields,
    pub(super) line: &'a str,
    pub(super) ts: i64,
}

const NAMES: &[&str] = &[
    // Go's builtins (`and`/`or` run in the executor, which evaluates them lazily).
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    // Loki's.
    "__line__",
    "__timestamp__",
    "ToLower",
    "ToUpper",
    "Replace",
    "Trim",
    "TrimLeft",
    "TrimRight",
    "TrimPrefix",
    "TrimSuffix",
    "TrimSpace",
    "regexReplaceAll",
    "regexReplaceAllLiteral",
    "count",
    "urldecode",
    "urlencode",
    "bytes",
    "duration",
    "duration_seconds",
    "unixEpochMillis",
    "unixEpochNanos",
    "unixToTime",
    "alignLeft",
    "alignRight",
    // sprig's, as Loki registers them.
    "b64enc",
    "b64dec",
    "lower",
    "upper",
    "title",
    "trunc",
    "substr",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "indent",
    "nindent",
    "replace",
    "repeat",
    "trim",
    "trimAll",
    "trimSuffix",
    "trimPrefix",
    "int",
    "float64",
    "add",
    "sub",
    "mul",
    "div",
    "mod",
    "addf",
    "subf",
    "mulf",
    "divf",
    "max",
    "min",
    "maxf",
    "minf",
    "ceil",
    "floor",
    "round",
    "date",
    "now",
    "unixEpoch",
    "default",
];

/// Whether a template may call `name` (checked when the template is parsed, as Go does).
pub(super) fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

/// Go's `url.QueryEscape` keeps only these unescaped.
const QUERY_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The arguments of one call, with Go's arity and type checks.
struct Args<'a> {
    name: &'a str,
    v: Vec<Val>,
}

impl Args<'_> {
    fn exactly(&self, n: usize) -> Result<(), String> {
        if self.v.len() != n {
            return Err(format!(
                "wrong number of args for {}: want {n} got {}",
                self.name,
                self.v.len()
            ));
        }
        Ok(())
    }

    fn at_least(&self, n: usize) -> Result<(), String> {
        if self.v.len() < n {
            return Err(format!(
                "wrong number of args for {}: want at least {n} got {}",
                self.name,
                self.v.len()
            ));
        }
        Ok(())
    }

    fn wrong(&self, i: usize, want: &str) -> String {
        format!(
            "wrong type for value; expected {want}; got {}",
            type_name(&self.v[i])
        )
    }

    fn str(&self, i: usize) -> Result<&str, String> {
        match &self.v[i] {
            Val::Str(s) => Ok(s),
            _ => Err(self.wrong(i, "string")),
        }
    }

    fn int(&self, i: usize) -> Result<i64, String> {
        match &self.v[i] {
            Val::Int(n) => Ok(*n),
            _ => Err(self.wrong(i, "int")),
        }
    }

    fn time(&self, i: usize) -> Result<i64, String> {
        match &self.v[i] {
            Val::Time(t) => Ok(*t),
            _ => Err(self.wrong(i, "time.Time")),
        }
    }
}

/// sprig's `toInt64` (spf13/cast): numbers truncate, strings parse (`0x`, `0o`, octal,
/// trailing `.0`), anything unreadable is 0.
fn to_i64(v: &Val) -> i64 {
    match v {
        Val::Int(i) => *i,
        Val::Float(f) => *f as i64,
        Val::Bool(b) => i64::from(*b),
        Val::Str(s) => parse_int_base0(trim_zero_decimal(s)).unwrap_or(0),
        Val::Time(_) | Val::Map | Val::Nil => 0,
    }
}

fn trim_zero_decimal(s: &str) -> &str {
    match s.trim_end_matches('0').strip_suffix('.') {
        Some(int) if s.ends_with('0') => int,
        _ => s,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn parse_int_base0(s: &str) -> Option<i64> {
    let (neg, d) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let d = d.replace('_', "");
    let lower = d.to_ascii_lowercase();
    let v = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if d.len() > 1 && d.starts_with('0') {
        i64::from_str_radix(&d[1..], 8).ok()?
    } else {
        d.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

/// sprig's `toFloat64`: unreadable is 0.
fn to_f64(v: &Val) -> f64 {
    match v {
        Val::Int(i) => *i as f64,
        Val::Float(f) => *f,
        Val::Bool(b) => f64::from(u8::from(*b)),
        Val::Str(s) => s.parse().unwrap_or(0.0),
        Val::Time(_) | Val::Map | Val::Nil => 0.0,
    }
}

/// sprig's `empty`, which `default` tests.
fn empty(v: &Val, fields: &dyn Fields) -> bool {
    match v {
        Val::Str(s) => s.is_empty(),
        Val::Int(i) => *i == 0,
        Val::Float(f) => *f == 0.0,
        Val::Bool(b) => !b,
        Val::Time(_) => false,
        Val::Map => fields.all().is_empty(),
        Val::Nil => true,
    }
}

/// A regex compiled once per distinct pattern: templates pass constant patterns, and compiling
/// per line would dominate `regexReplaceAll`. Shared behind an `Arc`, because a cloned `Regex`
/// starts with an empty match cache that its first search per line would have to allocate.
fn cached_regex(pattern: &str) -> Result<Arc<Regex>, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(r) = cache.lock().expect("regex cache").get(pattern) {
        return Ok(Arc::clone(r));
    }
    let r = Arc::new(compile_go_regex(pattern)?);
    let mut c = cache.lock().expect("regex cache");
    if c.len() < 256 {
        c.insert(pattern.to_string(), Arc::clone(&r));
    }
    Ok(r)
}

/// Exact decimal arithmetic over floats' shortest forms, as sprig's `addf`/`subf`/`mulf` do
/// with shopspring/decimal (`0.1 + 0.2` is `0.3`); falls back to floats on overflow.
fn decimal_op(args: &[Val], mul: bool, sub: bool) -> f64 {
    fn parse(f: f64) -> Option<(i128, u32)> {
        let s = format!("{f}");
        if s.contains(['e', 'E', 'i', 'N']) {
            return None;
        }
        let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
        Some((format!("{int}{frac}").parse().ok()?, frac.len() as u32))
    }
    let floats: Vec<f64> = args.iter().map(to_f64).collect();
    let fallback = || {
        floats[1..].iter().fold(floats[0], |a, b| match (mul, sub) {
            (true, _) => a * b,
            (false, true) => a - b,
            (false, false) => a + b,
        })
    };
    let mut acc = match parse(floats[0]) {
        Some(p) => p,
        None => return fallback(),
    };
    for f in &floats[1..] {
        let Some((m, s)) = parse(*f) else {
            return fallback();
        };
        acc = if mul {
            match acc.0.checked_mul(m) {
                Some(p) => (p, acc.1 + s),
                None => return fallback(),
            }
        } else {
            let scale = acc.1.max(s);
            let (Some(a), Some(b)) = (
                10i128
                    .checked_pow(scale - acc.1)
                    .and_then(|k| acc.0.checked_mul(k)),
                10i128.checked_pow(scale - s).and_then(|k| m.checked_mul(k)),
            ) else {
                return fallback();
            };
            (if sub { a - b } else { a + b }, scale)
        };
    }
    if acc.1 > 30 {
        return fallback();
    }
    acc.0 as f64 / 10f64.powi(acc.1 as i32)
}

/// Go's `strings.Title`: the first letter of each word in upper case.
fn title(s: &str) -> String {
    let mut prev = ' ';
    s.chars()
        .map(|c| {
            let sep = if prev.is_ascii() {
                !(prev.is_ascii_alphanumeric() || prev == '_')
            } else {
                !prev.is_alphanumeric() && prev.is_whitespace()
            };
            prev = c;
            if sep {
                c.to_uppercase().next().unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

/// Loki's rune-based `substr`.
fn substring(start: i64, end: i64, s: &str) -> String {
    let runes: Vec<char> = s.chars().collect();
    let l = runes.len() as i64;
    let (start, end) = (start.min(l), end.min(l));
    let take = |a: i64, b: i64| runes[a as usize..b as usize].iter().collect();
    match (start < 0, end < 0) {
        (true, true) => String::new(),
        (true, false) => take(0, end),
        (false, true) => take(start, l),
        _ if start > end => String::new(),
        _ => take(start, end),
    }
}

/// Loki's `alignLeft` (`right` false) and `alignRight`.
fn align(count: i64, s: &str, right: bool) -> String {
    let runes: Vec<char> = s.chars().collect();
    let l = runes.len() as i64;
    if count < 0 || count == l {
        return s.to_string();
    }
    let pad = " ".repeat((count - l).max(0) as usize);
    match (count > l, right) {
        (true, false) => format!("{s}{pad}"),
        (true, true) => format!("{pad}{s}"),
        (false, false) => runes[..count as usize].iter().collect(),
        (false, true) => runes[(l - count) as usize..].iter().collect(),
    }
}

/// Go's `url.QueryUnescape`.
fn query_unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    for (i, _) in s.match_indices('%') {
        let ok = b.len() > i + 2 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit();
        if !ok {
            let bad = &s[i..(i + 3).min(s.len())];
            return Err(format!("invalid URL escape {}", go_quote(bad)));
        }
    }
    let plus = s.replace('+', " ");
    Ok(percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned())
}

/// Go's `fmt.Sprint`: spaces between operands when neither is a string.
fn sprint(args: &[Val], fields: &dyn Fields, always_space: bool) -> String {
    let mut out = String::new();
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Val::Str(_));
        if i > 0 && (always_space || (!is_string && !prev_string)) {
            out.push(' ');
        }
        out.push_str(&display(a, fields));
        prev_string = is_string;
    }
    out
}

/// Go's comparison builtins: basic kinds only, and both sides of the same kind.
fn compare(name: &str, a: &Val, b: &Val) -> Result<std::cmp::Ordering, String> {
    use std::cmp::Ordering;
    let ord = match (a, b) {
        (Val::Str(x), Val::Str(y)) => x.cmp(y),
        (Val::Int(x), Val::Int(y)) => x.cmp(y),
        (Val::Float(x), Val::Float(y)) => x.partial_cmp(y).unwrap_or(Ordering::Less),
        (Val::Time(x), Val::Time(y)) => x.cmp(y),
        (Val::Bool(x), Val::Bool(y)) if name == "eq" || name == "ne" => x.cmp(y),
        (Val::Bool(_), Val::Bool(_)) => return Err("invalid type for comparison".into()),
        _ => return Err("incompatible types for comparison".into()),
    };
    Ok(ord)
}

/// Calls a function; the error is Go's message.
pub(super) fn call(name: &str, args: Vec<Val>, cx: &Ctx) -> Result<Val, String> {
    let a = Args { name, v: args };
    let s = |v: String| Ok(Val::Str(v));
    // Errors returned by the function itself (not argument checks) carry Go's prefix.
    let calling = |e: String| format!("error calling {name}: {e}");
    match name {
        "__line__" => {
            a.exactly(0)?;
            s(cx.line.to_string())
        }
        "__timestamp__" => {
            a.exactly(0)?;
            Ok(Val::Time(cx.ts))
        }
        "now" => {
            a.exactly(0)?;
            Ok(Val::Time(seam_model::now_ns()))
        }
        "not" => {
            a.exactly(1)?;
            Ok(Val::Bool(!super::exec::truth(&a.v[0], cx.fields)))
        }
        "len" => {
            a.exactly(1)?;
            match &a.v[0] {
                Val::Str(x) => Ok(Val::Int(x.len() as i64)),
                Val::Map => Ok(Val::Int(cx.fields.all().len() as i64)),
                v => Err(calling(format!("len of type {}", type_name(v)))),
            }
        }
        "index" => {
            a.at_least(1)?;
            let mut v = a.v[0].clone();
            for k in &a.v[1..] {
                v = match (&v, k) {
                    (Val::Map, Val::Str(k)) => {
                        Val::Str(cx.fields.get(k).unwrap_or_default().into())
                    }
                    (Val::Str(x), Val::Int(i)) => match x.as_bytes().get(*i as usize) {
                        Some(b) if *i >= 0 => Val::Int(i64::from(*b)),
                        _ => return Err(calling(format!("index out of range: {i}"))),
                    },
                    (v, _) => {
                        return Err(calling(format!(
                            "can't index item of type {}",
                            type_name(v)
                        )))
                    }
                };
            }
            Ok(v)
        }
        "print" => s(sprint(&a.v, cx.fields, false)),
        "println" => s(sprint(&a.v, cx.fields, true) + "\n"),
        "printf" => {
            a.at_least(1)?;
            s(sprintf(a.str(0)?, &a.v[1..], cx.fields))
        }
        "eq" | "ne" => {
            a.at_least(2)?;
            let mut any = false;
            for b in &a.v[1..] {
                any |= compare(name, &a.v[0], b).map_err(calling)?.is_eq();
            }
            Ok(Val::Bool(any == (name == "eq")))
        }
        "lt" | "le" | "gt" | "ge" => {
            a.exactly(2)?;
            let o = compare(name, &a.v[0], &a.v[1]).map_err(calling)?;
            Ok(Val::Bool(match name {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            }))
        }
        "ToLower" | "lower" => {
            a.exactly(1)?;
            s(a.str(0)?.to_lowercase())
        }
        "ToUpper" | "upper" => {
            a.exactly(1)?;
            s(a.str(0)?.to_uppercase())
        }
        "title" => {
            a.exactly(1)?;
            s(title(a.str(0)?))
        }
        "Replace" => {
            a.exactly(4)?;
            let (src, old, new, n) = (a.str(0)?, a.str(1)?, a.str(2)?, a.int(3)?);
            s(if n < 0 {
                src.replace(old, new)
            } else {
                src.replacen(old, new, n as usize)
            })
        }
        "replace" => {
            a.exactly(3)?;
            s(a.str(2)?.replace(a.str(0)?, a.str(1)?))
        }
        "Trim" | "TrimLeft" | "TrimRight" | "trimAll" => {
            a.exactly(2)?;
            let (src, cut) = if name == "trimAll" {
                (a.str(1)?, a.str(0)?)
            } else {
                (a.str(0)?, a.str(1)?)
            };
            let in_cut = |c: char| cut.contains(c);
            s(match name {
                "TrimLeft" => src.trim_start_matches(in_cut),
                "TrimRight" => src.trim_end_matches(in_cut),
                _ => src.trim_matches(in_cut),
            }
            .to_string())
        }
        "TrimPrefix" | "TrimSuffix" | "trimPrefix" | "trimSuffix" => {
            a.exactly(2)?;
            let (src, affix) = if name.starts_with('T') {
                (a.str(0)?, a.str(1)?)
            } else {
                (a.str(1)?, a.str(0)?)
            };
            s(if name.ends_with("refix") {
                src.strip_prefix(affix)
            } else {
                src.strip_suffix(affix)
            }
            .unwrap_or(src)
            .to_string())
        }
        "TrimSpace" | "trim" => {
            a.exactly(1)?;
            s(a.str(0)?.trim().to_string())
        }
        "contains" | "hasPrefix" | "hasSuffix" => {
            a.exactly(2)?;
            let (needle, hay) = (a.str(0)?, a.str(1)?);
            Ok(Val::Bool(match name {
                "contains" => hay.contains(needle),
                "hasPrefix" => hay.starts_with(needle),
                _ => hay.ends_with(needle),
            }))
        }
        "regexReplaceAll" | "regexReplaceAllLiteral" => {
            a.exactly(3)?;
            let re = cached_regex(a.str(0)?).map_err(calling)?;
            let (src, repl) = (a.str(1)?, a.str(2)?);
            s(if name == "regexReplaceAll" {
                re.replace_all(src, repl).into_owned()
            } else {
                re.replace_all(src, regex::NoExpand(repl)).into_owned()
            })
        }
        "count" => {
            a.exactly(2)?;
            let re = cached_regex(a.str(0)?).map_err(calling)?;
            Ok(Val::Int(re.find_iter(a.str(1)?).count() as i64))
        }
        "urlencode" => {
            a.exactly(1)?;
            s(utf8_percent_encode(a.str(0)?, QUERY_ESCAPE)
                .to_string()
                .replace("%20", "+"))
        }
        "urldecode" => {
            a.exactly(1)?;
            query_unescape(a.str(0)?).map(Val::Str).map_err(calling)
        }
        "b64enc" => {
            a.exactly(1)?;
            s(base64::engine::general_purpose::STANDARD.encode(a.str(0)?))
        }
        "b64dec" => {
            a.exactly(1)?;
            // sprig returns the decoder's error as the result.
            s(
                match base64::engine::general_purpose::STANDARD.decode(a.str(0)?) {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(e) => e.to_string(),
                },
            )
        }
        "bytes" => {
            a.exactly(1)?;
            convert_bytes(a.str(0)?)
                .map(|b| Val::Float(b as f64))
                .map_err(calling)
        }
        "duration" | "duration_seconds" => {
            a.exactly(1)?;
            convert_duration_seconds(a.str(0)?)
                .map(Val::Float)
                .map_err(calling)
        }
        "unixEpoch" | "unixEpochMillis" | "unixEpochNanos" => {
            a.exactly(1)?;
            let t = a.time(0)?;
            s(match name {
                "unixEpoch" => t.div_euclid(1_000_000_000),
                "unixEpochMillis" => t.div_euclid(1_000_000),
                _ => t,
            }
            .to_string())
        }
        "unixToTime" => {
            a.exactly(1)?;
            let e = a.str(0)?;
            let bad = || calling(format!("unable to parse time '{e}'"));
            let i: i64 = e.parse().map_err(|_| bad())?;
            Ok(Val::Time(match e.len() {
                5 => i * 86_400 * 1_000_000_000,
                10 => i * 1_000_000_000,
                13 => i * 1_000_000,
                16 => i * 1_000,
                19 => i,
                _ => return Err(bad()),
            }))
        }
        "date" => {
            a.exactly(2)?;
            let t = match &a.v[1] {
                Val::Time(t) => *t,
                Val::Int(secs) => secs * 1_000_000_000,
                _ => seam_model::now_ns(),
            };
            s(format_layout(t, a.str(0)?))
        }
        "alignLeft" | "alignRight" => {
            a.exactly(2)?;
            s(align(a.int(0)?, a.str(1)?, name == "alignRight"))
        }
        "trunc" => {
            a.exactly(2)?;
            let (c, src) = (a.int(0)?, a.str(1)?);
            let l = src.chars().count() as i64;
            s(if c < 0 && l + c > 0 {
                src.chars().skip((l + c) as usize).collect()
            } else if c >= 0 && l > c {
                src.chars().take(c as usize).collect()
            } else {
                src.to_string()
            })
        }
        "substr" => {
            a.exactly(3)?;
            s(substring(a.int(0)?, a.int(1)?, a.str(2)?))
        }
        "indent" | "nindent" => {
            a.exactly(2)?;
            let pad = " ".repeat(a.int(0)?.max(0) as usize);
            let body = format!("{pad}{}", a.str(1)?.replace('\n', &format!("\n{pad}")));
            s(if name == "nindent" {
                format!("\n{body}")
            } else {
                body
            })
        }
        "repeat" => {
            a.exactly(2)?;
            let n = a.int(0)?;
            if n < 0 {
                return Err(calling("strings: negative Repeat count".into()));
            }
            s(a.str(1)?.repeat(n as usize))
        }
        "int" => {
            a.exactly(1)?;
            Ok(Val::Int(to_i64(&a.v[0])))
        }
        "float64" => {
            a.exactly(1)?;
            Ok(Val::Float(to_f64(&a.v[0])))
        }
        "add" => Ok(Val::Int(a.v.iter().map(to_i64).fold(0, i64::wrapping_add))),
        "sub" | "div" | "mod" => {
            a.exactly(2)?;
            let (x, y) = (to_i64(&a.v[0]), to_i64(&a.v[1]));
            if name != "sub" && y == 0 {
                return Err(calling("runtime error: integer divide by zero".into()));
            }
            Ok(Val::Int(match name {
                "sub" => x.wrapping_sub(y),
                "div" => x.wrapping_div(y),
                _ => x.wrapping_rem(y),
            }))
        }
        "mul" => {
            a.at_least(1)?;
            Ok(Val::Int(a.v.iter().map(to_i64).fold(1, i64::wrapping_mul)))
        }
        "max" | "min" => {
            a.at_least(1)?;
            let it = a.v.iter().map(to_i64);
            Ok(Val::Int(
                if name == "max" { it.max() } else { it.min() }.unwrap_or(0),
            ))
        }
        "maxf" | "minf" => {
            a.at_least(1)?;
            let it = a.v.iter().map(to_f64);
            Ok(Val::Float(if name == "maxf" {
                it.fold(f64::NEG_INFINITY, f64::max)
            } else {
                it.fold(f64::INFINITY, f64::min)
            }))
        }
        "addf" => {
            if a.v.is_empty() {
                return Ok(Val::Float(0.0));
            }
            Ok(Val::Float(decimal_op(&a.v, false, false)))
        }
        "subf" | "mulf" => {
            a.at_least(1)?;
            Ok(Val::Float(decimal_op(&a.v, name == "mulf", name == "subf")))
        }
        "divf" => {
            a.at_least(1)?;
            let mut it = a.v.iter().map(to_f64);
            let first = it.next().unwrap_or(0.0);
            let mut acc = first;
            for d in it {
                if d == 0.0 {
                    return Err(calling("decimal division by 0".into()));
                }
                acc /= d;
            }
            Ok(Val::Float(acc))
        }
        "ceil" | "floor" => {
            a.exactly(1)?;
            let f = to_f64(&a.v[0]);
            Ok(Val::Float(if name == "ceil" {
                f.ceil()
            } else {
                f.floor()
            }))
        }
        "round" => {
            a.at_least(2)?;
            let (val, places) = (to_f64(&a.v[0]), a.int(1)?);
            let round_on = a.v.get(2).map_or(0.5, to_f64);
            let pow = 10f64.powi(places as i32);
            let digit = pow * val;
            let frac = digit - digit.trunc();
            let r = if frac >= round_on {
                digit.ceil()
            } else {
                digit.floor()
            };
            Ok(Val::Float(r / pow))
        }
        "default" => {
            a.at_least(1)?;
            Ok(match a.v.get(1) {
                Some(given) if !empty(given, cx.fields) => given.clone(),
                _ => a.v[0].clone(),
            })
        }
        other => Err(format!("function \"{other}\" not defined")),
    }
}

#[cfg(test)]
mod tests {
    use seam_model::Labels;

    use crate::logql::{parse_log_query, Pipeline};

    #[test]
    fn regex_functions_read_braces_as_go_does() {
        // Go reads a `{` that opens no repetition as a literal brace, which the `regex` crate
        // refuses; Loki renders `a <b><c>` and counts one `}{`.
        let q = parse_log_query(
            r#"{app="x"} | line_format `{{ regexReplaceAll "{(\\w+)}" __line__ "<${1}>" }}|{{ count "}{" __line__ }}`"#,
        )
        .unwrap();
        let p = Pipeline::new(&q.pipeline).unwrap();
        let none = Labels::default();
        let e = p.process(0, "a {b}{c}", &none, &none).unwrap();
        assert_eq!(e.line, "a <b><c>|1");
    }
}
