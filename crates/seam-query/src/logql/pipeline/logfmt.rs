//! The `logfmt` parser: Loki's byte-level decoder (adapted from go-logfmt) so that positions in
//! `__error_details__` and the pairs kept around a malformed one match Loki's.

use std::borrow::Cow;

use seam_model::labels::is_valid_label_name;

use super::labels_builder::{replace_rune_error, sanitize_label_key, LabelsBuilder, ERR_LOGFMT};
use crate::logql::ast::LabelExtraction;

/// A logfmt decoder over one line.
struct Decoder<'a> {
    line: &'a str,
    pos: usize,
    key: Option<&'a str>,
    value: Option<Cow<'a, str>>,
    err: Option<String>,
}

impl<'a> Decoder<'a> {
    fn new(line: &'a str) -> Decoder<'a> {
        Decoder {
            line,
            pos: 0,
            key: None,
            value: None,
            err: None,
        }
    }

    fn eol(&self) -> bool {
        self.pos >= self.line.len()
    }

    fn syntax_error(&mut self, msg: &str) {
        self.err = Some(format!(
            "logfmt syntax error at pos {} : {msg}",
            self.pos + 1
        ));
    }

    fn unexpected(&mut self, c: u8) {
        self.syntax_error(&format!("unexpected '{}'", c as char));
    }

    /// Skips to the next whitespace after a malformed pair, so decoding can go on.
    fn skip_value(&mut self) -> bool {
        let b = self.line.as_bytes();
        self.pos += b[self.pos..]
            .iter()
            .position(|&c| c <= b' ')
            .unwrap_or(b.len() - self.pos);
        false
    }

    /// Reads the next `key[=value]`; false at the end of the line or on a malformed pair.
    fn scan_keyval(&mut self) -> bool {
        self.key = None;
        self.value = None;
        let line = self.line;
        let b = line.as_bytes();
        match b[self.pos..].iter().position(|&c| c > b' ') {
            Some(p) => self.pos += p,
            None => {
                self.pos = b.len();
                return false;
            }
        }
        // The key.
        let start = self.pos;
        loop {
            if self.pos == b.len() {
                self.key = Some(&line[start..]);
                return !self.invalid_key();
            }
            match b[self.pos] {
                b'=' => {
                    if self.pos == start {
                        self.unexpected(b'=');
                        return self.skip_value();
                    }
                    self.key = Some(&line[start..self.pos]);
                    if self.invalid_key() {
                        return self.skip_value();
                    }
                    break;
                }
                b'"' => {
                    self.unexpected(b'"');
                    return self.skip_value();
                }
                c if c <= b' ' => {
                    self.key = Some(&line[start..self.pos]);
                    return !self.invalid_key();
                }
                _ => self.pos += 1,
            }
        }
        // The `=` and the value.
        self.pos += 1;
        if self.pos >= b.len() || b[self.pos] <= b' ' {
            return true;
        }
        if b[self.pos] == b'"' {
            return self.quoted_value();
        }
        let start = self.pos;
        while self.pos < b.len() {
            match b[self.pos] {
                c @ (b'=' | b'"') => {
                    self.unexpected(c);
                    return self.skip_value();
                }
                c if c <= b' ' => break,
                _ => self.pos += 1,
            }
        }
        self.value = Some(Cow::Borrowed(&line[start..self.pos]));
        true
    }

    /// Go's decoder rejects a key holding U+FFFD (an invalid byte sequence in Go's view).
    fn invalid_key(&mut self) -> bool {
        if self.key.is_some_and(|k| k.contains('\u{FFFD}')) {
            self.syntax_error("invalid key");
            return true;
        }
        false
    }

    fn quoted_value(&mut self) -> bool {
        let b = self.line.as_bytes();
        let start = self.pos;
        let (mut has_esc, mut esc) = (false, false);
        for (i, &c) in b.iter().enumerate().skip(start + 1) {
            match c {
                _ if esc => esc = false,
                b'\\' => (has_esc, esc) = (true, true),
                b'"' => {
                    self.pos = i + 1;
                    let inner = &self.line[start + 1..i];
                    if !has_esc {
                        self.value = Some(Cow::Borrowed(inner));
                        return true;
                    }
                    match unquote(inner) {
                        Some(v) => {
                            self.value = Some(Cow::Owned(v));
                            return true;
                        }
                        None => {
                            self.syntax_error("invalid quoted value");
                            return false;
                        }
                    }
                }
                _ => {}
            }
        }
        self.pos = b.len();
        self.syntax_error("unterminated quoted value");
        false
    }
}

/// go-logfmt's unquoting: JSON escapes plus `\'`; literal control characters are kept.
fn unquote(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            c @ ('"' | '\\' | '/' | '\'') => c,
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let hex = |it: &mut std::str::Chars| -> Option<u32> {
                    let h: String = it.by_ref().take(4).collect();
                    (h.len() == 4).then(|| u32::from_str_radix(&h, 16).ok())?
                };
                let hi = hex(&mut chars)?;
                if (0xD800..0xDC00).contains(&hi) {
                    let mut ahead = chars.clone();
                    let lo = (ahead.next() == Some('\\') && ahead.next() == Some('u'))
                        .then(|| hex(&mut ahead))
                        .flatten()
                        .filter(|lo| (0xDC00..0xE000).contains(lo));
                    match lo {
                        Some(lo) => {
                            chars = ahead;
                            char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?
                        }
                        None => '\u{FFFD}',
                    }
                } else {
                    char::from_u32(hi).unwrap_or('\u{FFFD}')
                }
            }
            _ => return None,
        });
    }
    Some(out)
}

/// Decodes every pair of `line`, handing each well-formed one (its raw key and its value) to
/// `visit`. A malformed pair is skipped, or with `strict` ends decoding and sets
/// `__error__=LogfmtParserErr`: the one loop both forms of the stage share.
fn each_pair<'a>(
    line: &'a str,
    strict: bool,
    lbs: &mut LabelsBuilder,
    mut visit: impl FnMut(&'a str, Cow<'a, str>, &mut LabelsBuilder),
) {
    let mut dec = Decoder::new(line);
    while !dec.eol() {
        if !dec.scan_keyval() {
            if strict {
                break;
            }
            continue;
        }
        let key = dec.key.unwrap_or_default();
        visit(key, dec.value.take().unwrap_or_default(), lbs);
    }
    if strict {
        if let Some(e) = dec.err {
            lbs.set_err(ERR_LOGFMT, Some(e));
        }
    }
}

/// `| logfmt [--strict] [--keep-empty]`: every pair; a malformed pair is skipped, or with
/// `--strict` ends parsing with `__error__=LogfmtParserErr`.
pub(super) fn parse_all(line: &str, strict: bool, keep_empty: bool, lbs: &mut LabelsBuilder) {
    each_pair(line, strict, lbs, |key, value, lbs| {
        let key = sanitize_label_key(key, true);
        if key.is_empty() {
            return;
        }
        let key = lbs.extracted_name(Cow::Owned(key)).into_owned();
        let value = replace_rune_error(value);
        if !keep_empty && value.is_empty() {
            return;
        }
        lbs.set_parsed(key, value.into_owned());
    });
}

/// `| logfmt name="key", ...`: chosen keys under chosen names; a missing key gives an empty
/// label.
pub(super) struct LogfmtExpressions {
    /// `(label, key)` pairs.
    exprs: Vec<(String, String)>,
    strict: bool,
}

impl LogfmtExpressions {
    /// Checks the keys; the error names the expression as Loki does.
    pub(super) fn new(params: &[LabelExtraction], strict: bool) -> Result<Self, String> {
        let exprs = params
            .iter()
            .map(|p| {
                let e = p.expr.trim();
                if !is_valid_label_name(e) {
                    return Err(format!(
                        "cannot parse expression [{}]: syntax error: unexpected KEY",
                        p.expr
                    ));
                }
                Ok((p.label.clone(), e.to_string()))
            })
            .collect::<Result<_, String>>()?;
        Ok(LogfmtExpressions { exprs, strict })
    }

    /// Runs over one line.
    pub(super) fn process(&self, line: &str, lbs: &mut LabelsBuilder) {
        for (id, _) in &self.exprs {
            if !lbs.base_has(id) {
                lbs.set_parsed(id.clone(), String::new());
            }
        }
        each_pair(line, self.strict, lbs, |key, value, lbs| {
            let key = sanitize_label_key(key, true);
            // A key read under another name takes that name; a key that already is one of the
            // names is kept too (Loki matches both ways).
            let id = self
                .exprs
                .iter()
                .find(|(_, k)| *k == key)
                .or_else(|| self.exprs.iter().find(|(id, _)| *id == key))
                .map(|(id, _)| id.as_str());
            let Some(id) = id else { return };
            let value = if value.contains('\u{FFFD}') {
                String::new()
            } else {
                value.into_owned()
            };
            let name = lbs.extracted_name(Cow::Borrowed(id)).into_owned();
            lbs.set_parsed(name, value);
        });
    }
}
