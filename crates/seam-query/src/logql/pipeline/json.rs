//! The `json` parser (every field, or `json name="path"` for chosen ones) and `unpack`, with
//! Loki's label naming, collision suffix and error labels.

use std::borrow::Cow;

use super::jsonscan::{self, EachError, JsonType, Value};
use super::labels_builder::{
    append_sanitized, replace_rune_error, sanitize_label_key, LabelsBuilder, ERR_JSON,
};
use crate::logql::ast::LabelExtraction;

/// Loki's detail for `unpack` on a line that is not an object (jsoniter's `ObjectValue` is 6).
const NOT_AN_OBJECT: &str = "expecting json object(6), but it is not";
/// The key whose value becomes the line in `unpack`.
const PACKED_ENTRY_KEY: &str = "_entry";

/// `| json`: every string, number and boolean, nested keys joined with `_`, arrays skipped.
pub(super) fn parse_all(line: &str, lbs: &mut LabelsBuilder) {
    let mut prefix = String::new();
    if let Err(msg) = parse_object(line, &mut prefix, lbs) {
        lbs.set_err(ERR_JSON, Some(msg.to_string()));
    }
}

fn parse_object(
    data: &str,
    prefix: &mut String,
    lbs: &mut LabelsBuilder,
) -> Result<(), &'static str> {
    let r = jsonscan::object_each(data, |key, v| {
        if matches!(v.ty, JsonType::Array | JsonType::Null) {
            return Ok(());
        }
        // The member's name is the prefix joined to its key; the buffer is restored after.
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push('_');
        }
        append_sanitized(prefix, &key);
        let r = if v.ty == JsonType::Object {
            parse_object(v.raw, prefix, lbs)
        } else {
            let name = lbs
                .extracted_name(Cow::Borrowed(prefix.as_str()))
                .into_owned();
            if !name.is_empty() {
                lbs.set_parsed(name, scalar_value(&v));
            }
            Ok(())
        };
        prefix.truncate(len);
        r
    });
    match r {
        Ok(()) => Ok(()),
        Err(EachError::Syntax(m) | EachError::Visitor(m)) => Err(m),
    }
}

/// A string (unescaped, U+FFFD replaced), number or boolean as a label value. Loki's `readValue`
/// keeps a number's text as it is, which differs from the expression parser's on odd tokens.
fn scalar_value(v: &Value) -> String {
    match v.ty {
        JsonType::String => replace_rune_error(jsonscan::unescape_lossy(v.raw)).into_owned(),
        _ => v.raw.to_string(),
    }
}

/// One step of a `json` parameter's path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PathSeg {
    Key(String),
    Index(usize),
}

/// `| json name="path", ...`: the chosen values, raw JSON for objects and arrays, an empty
/// label when the path matches nothing.
pub(super) struct JsonExpressions {
    exprs: Vec<(String, Vec<PathSeg>)>,
}

impl JsonExpressions {
    /// Compiles the paths; the error names the expression as Loki does.
    pub(super) fn new(params: &[LabelExtraction]) -> Result<JsonExpressions, String> {
        let exprs = params
            .iter()
            .map(|p| {
                let path = parse_path(&p.expr).map_err(|e| {
                    format!("cannot parse expression [{}]: syntax error: {e}", p.expr)
                })?;
                Ok((p.label.clone(), path))
            })
            .collect::<Result<_, String>>()?;
        Ok(JsonExpressions { exprs })
    }

    /// Runs over one line.
    pub(super) fn process(&self, line: &str, lbs: &mut LabelsBuilder) {
        if line.is_empty() {
            return;
        }
        if !line.starts_with(['"', '{', '[']) {
            lbs.set_err(ERR_JSON, None);
            return;
        }
        for (id, path) in &self.exprs {
            let value = match lookup(line, path) {
                Some(v) => match v.ty {
                    JsonType::Null => String::new(),
                    JsonType::Object => v.raw.to_string(),
                    _ => replace_rune_error(jsonscan::unescape_lossy(v.raw)).into_owned(),
                },
                None => {
                    if lbs.get(id).is_none() {
                        lbs.set_parsed(id.clone(), String::new());
                    }
                    continue;
                }
            };
            let name = lbs.extracted_name(Cow::Borrowed(id)).into_owned();
            lbs.set_parsed(name, value);
        }
    }
}

/// Follows `path` (never empty) into `data`; the first of duplicate keys wins, as in
/// jsonparser's `EachKey`.
fn lookup<'a>(data: &'a str, path: &[PathSeg]) -> Option<Value<'a>> {
    let (seg, rest) = path.split_first()?;
    let v = match seg {
        PathSeg::Key(k) => {
            let mut found: Option<Value<'a>> = None;
            // A syntax error after the member was found does not matter; before it, the path is
            // missing, as jsonparser's `EachKey` reports it.
            let _ = jsonscan::object_each::<()>(data, |key, v| {
                if key == k.as_str() {
                    found = Some(v);
                    return Err(());
                }
                Ok(())
            });
            found?
        }
        PathSeg::Index(i) => jsonscan::array_index(data, *i)?,
    };
    if rest.is_empty() {
        return Some(v);
    }
    lookup(raw_with_quotes(data, &v), rest)
}

/// The text of `v` in `data` including a string's quotes, so it can be read again.
fn raw_with_quotes<'a>(data: &'a str, v: &Value<'a>) -> &'a str {
    match v.ty {
        JsonType::String => {
            let start = v.raw.as_ptr() as usize - data.as_ptr() as usize;
            &data[start - 1..start + v.raw.len() + 1]
        }
        JsonType::Null => "null",
        _ => v.raw,
    }
}

/// Loki's JSON expression grammar: `a.b`, `a[0]`, `["a b"]`, `a["b"].c`.
fn parse_path(src: &str) -> Result<Vec<PathSeg>, String> {
    let mut out = Vec::new();
    let s = src.as_bytes();
    let mut i = 0;
    let mut expect_field = true;
    while i < s.len() {
        match s[i] {
            b' ' | b'\t' | b'\n' => i += 1,
            b'.' if !expect_field && !out.is_empty() => {
                i += 1;
                let start = i;
                while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == b'_') {
                    i += 1;
                }
                if start == i || s[start].is_ascii_digit() {
                    return Err("unexpected DOT, expecting FIELD".into());
                }
                out.push(PathSeg::Key(src[start..i].to_string()));
            }
            b'[' => {
                i += 1;
                if s.get(i) == Some(&b'"') {
                    let start = i + 1;
                    let end = src[start..]
                        .find(['"', ']'])
                        .map(|e| start + e)
                        .ok_or("unexpected $end, expecting RSB")?;
                    out.push(PathSeg::Key(src[start..end].to_string()));
                    i = end + usize::from(s[end] == b'"');
                } else {
                    let start = i;
                    while i < s.len() && s[i].is_ascii_digit() {
                        i += 1;
                    }
                    let n = src[start..i]
                        .parse()
                        .map_err(|_| "unexpected RSB, expecting INDEX or STRING".to_string())?;
                    out.push(PathSeg::Index(n));
                }
                match s.get(i) {
                    Some(b']') => i += 1,
                    Some(b'"') => return Err("unexpected STRING, expecting RSB".into()),
                    Some(_) => return Err("unexpected FIELD, expecting RSB".into()),
                    None => return Err("unexpected $end, expecting RSB".into()),
                }
            }
            c if expect_field && (c.is_ascii_alphabetic() || c == b'_') => {
                let start = i;
                while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == b'_') {
                    i += 1;
                }
                out.push(PathSeg::Key(src[start..i].to_string()));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => return Err("unexpected FIELD".into()),
            b'"' => return Err("unexpected STRING, expecting LSB or FIELD".into()),
            b'.' => return Err("unexpected DOT, expecting FIELD".into()),
            c => return Err(format!("unexpected char {}", c as char)),
        }
        expect_field = false;
    }
    if out.is_empty() {
        return Err("unexpected $end".into());
    }
    Ok(out)
}

/// `| unpack`: a JSON object of string labels; `_entry`, when present, becomes the line. As in
/// Loki, the labels are only set when `_entry` is there.
pub(super) fn unpack<'l>(line: Cow<'l, str>, lbs: &mut LabelsBuilder) -> Cow<'l, str> {
    if line.is_empty() {
        return line;
    }
    if !line.starts_with('{') {
        lbs.set_err(ERR_JSON, Some(NOT_AN_OBJECT.to_string()));
        return line;
    }
    let mut labels: Vec<(String, String)> = Vec::new();
    let mut entry: Option<String> = None;
    let r = jsonscan::object_each(&line, |key, v| {
        if v.ty != JsonType::String {
            return Ok(());
        }
        if key == PACKED_ENTRY_KEY {
            entry = Some(jsonscan::unescape(v.raw).ok_or(jsonscan::MALFORMED_STRING_ESCAPE)?);
            return Ok(());
        }
        let field = lbs.extracted_name(key);
        let value = replace_rune_error(jsonscan::unescape_lossy(v.raw)).into_owned();
        labels.push((sanitize_label_key(&field, true), value));
        Ok(())
    });
    if let Err(EachError::Syntax(m) | EachError::Visitor(m)) = r {
        lbs.set_err(ERR_JSON, Some(m.to_string()));
        return line;
    }
    match entry {
        Some(e) => {
            for (n, v) in labels {
                if !n.is_empty() {
                    lbs.set_parsed(n, v);
                }
            }
            Cow::Owned(e)
        }
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_like_lokis_grammar() {
        let k = |s: &str| PathSeg::Key(s.into());
        assert_eq!(parse_path("a.b").unwrap(), vec![k("a"), k("b")]);
        assert_eq!(
            parse_path("pod.deployment.params[0]").unwrap(),
            vec![k("pod"), k("deployment"), k("params"), PathSeg::Index(0)]
        );
        assert_eq!(
            parse_path(r#"["field with space"]"#).unwrap(),
            vec![k("field with space")]
        );
        assert_eq!(
            parse_path(r#"["pod"].uuid"#).unwrap(),
            vec![k("pod"), k("uuid")]
        );
        assert_eq!(
            parse_path(r#"pod["uuid"]"#).unwrap(),
            vec![k("pod"), k("uuid")]
        );
        assert_eq!(
            parse_path("field with space").unwrap_err(),
            "unexpected FIELD"
        );
        assert_eq!(
            parse_path(r#""pod"]"#).unwrap_err(),
            "unexpected STRING, expecting LSB or FIELD"
        );
        assert_eq!(
            parse_path(r#"["pod""#).unwrap_err(),
            "unexpected $end, expecting RSB"
        );
        assert_eq!(
            parse_path(r#"["pod""uuid"]"#).unwrap_err(),
            "unexpected STRING, expecting RSB"
        );
        assert_eq!(
            parse_path("pod..uuid").unwrap_err(),
            "unexpected DOT, expecting FIELD"
        );
    }
}
