//! A lenient JSON scanner that behaves like the Go `jsonparser` Loki uses: it visits an
//! object's members in order, hands out raw value slices without building a tree, keeps the
//! members seen before a syntax error, and fails with jsonparser's messages, which Loki shows
//! in `__error_details__`. A strict parser (serde_json) would reject the whole line instead and
//! could not reproduce those labels or messages.

use std::borrow::Cow;

/// jsonparser's message for input that ends where a token was expected.
pub(super) const MALFORMED_JSON: &str = "Malformed JSON error";
/// jsonparser's message for an unterminated string.
pub(super) const MALFORMED_STRING: &str = "Value is string, but can't find closing '\"' symbol";
/// jsonparser's message for an unterminated array (also for input ending after a member).
pub(super) const MALFORMED_ARRAY: &str = "Value is array, but can't find closing ']' symbol";
/// jsonparser's message for anything that is not a well-formed object.
pub(super) const MALFORMED_OBJECT: &str =
    "Value looks like object, but can't find closing '}' symbol";
/// jsonparser's message for a bad `\` escape.
pub(super) const MALFORMED_STRING_ESCAPE: &str =
    "Encountered an invalid escape sequence in a string";
/// jsonparser's message for a bare word that is not `true`, `false`, `null` or a number.
pub(super) const UNKNOWN_VALUE_TYPE: &str = "Unknown value type";

/// The type of a JSON value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum JsonType {
    /// `"..."`.
    String,
    /// Any token starting with a digit or `-` (jsonparser does not validate it further).
    Number,
    /// `{...}`.
    Object,
    /// `[...]`.
    Array,
    /// `true` or `false`.
    Boolean,
    /// `null`.
    Null,
}

/// A value found by [`get`]: its raw text (without quotes for a string) and where it ends.
pub(super) struct Value<'a> {
    /// The value's text; a string's without its quotes (still escaped), empty for `null`.
    pub(super) raw: &'a str,
    /// Its type.
    pub(super) ty: JsonType,
    /// Offset just past the value in the scanned slice.
    pub(super) end: usize,
}

fn next_token(data: &[u8]) -> Option<usize> {
    data.iter()
        .position(|c| !matches!(c, b' ' | b'\n' | b'\r' | b'\t'))
}

fn token_end(data: &[u8]) -> usize {
    data.iter()
        .position(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t' | b',' | b'}' | b']'))
        .unwrap_or(data.len())
}

/// The offset just past the closing quote of a string whose opening quote precedes `data`,
/// and whether it contains escapes.
fn string_end(data: &[u8]) -> Option<(usize, bool)> {
    let mut escaped = false;
    for (i, &c) in data.iter().enumerate() {
        if c == b'"' {
            if !escaped {
                return Some((i + 1, false));
            }
            let backslashes = data[..i].iter().rev().take_while(|&&b| b == b'\\').count();
            if backslashes % 2 == 0 {
                return Some((i + 1, true));
            }
        } else if c == b'\\' {
            escaped = true;
        }
    }
    None
}

/// The offset just past the bracket closing the block that `data` opens.
fn block_end(data: &[u8], open: u8, close: u8) -> Option<usize> {
    let mut level = 0usize;
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'"' => i += string_end(&data[i + 1..])?.0,
            c if c == open => level += 1,
            c if c == close => {
                level = level.saturating_sub(1);
                if level == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The first value in `data` (jsonparser's `Get` without keys).
pub(super) fn get(data: &str) -> Result<Value<'_>, &'static str> {
    let bytes = data.as_bytes();
    let start = next_token(bytes).ok_or(MALFORMED_JSON)?;
    let (ty, end) = match bytes[start] {
        b'"' => {
            let (e, _) = string_end(&bytes[start + 1..]).ok_or(MALFORMED_STRING)?;
            (JsonType::String, start + 1 + e)
        }
        b'[' => {
            let e = block_end(&bytes[start..], b'[', b']').ok_or(MALFORMED_ARRAY)?;
            (JsonType::Array, start + e)
        }
        b'{' => {
            let e = block_end(&bytes[start..], b'{', b'}').ok_or(MALFORMED_OBJECT)?;
            (JsonType::Object, start + e)
        }
        first => {
            let end = start + token_end(&bytes[start..]);
            let word = &data[start..end];
            let ty = match first {
                b't' | b'f' if word == "true" || word == "false" => JsonType::Boolean,
                b'u' | b'n' if word == "null" => JsonType::Null,
                b'0'..=b'9' | b'-' => JsonType::Number,
                _ => return Err(UNKNOWN_VALUE_TYPE),
            };
            (ty, end)
        }
    };
    let raw = match ty {
        JsonType::String => &data[start + 1..end - 1],
        JsonType::Null => "",
        _ => &data[start..end],
    };
    Ok(Value { raw, ty, end })
}

/// Why [`object_each`] stopped early: the visitor's own error or a syntax error.
pub(super) enum EachError<E> {
    /// The visitor failed.
    Visitor(E),
    /// The JSON is malformed (jsonparser's message).
    Syntax(&'static str),
}

impl<E> From<&'static str> for EachError<E> {
    fn from(msg: &'static str) -> Self {
        EachError::Syntax(msg)
    }
}

/// Visits the members of the object `data` holds, in order (jsonparser's `ObjectEach`). Keys
/// are unescaped; string values are raw (still escaped).
pub(super) fn object_each<'a, E>(
    data: &'a str,
    mut visit: impl FnMut(Cow<'a, str>, Value<'a>) -> Result<(), E>,
) -> Result<(), EachError<E>> {
    let bytes = data.as_bytes();
    let mut off = next_token(bytes).ok_or(MALFORMED_OBJECT)?;
    if bytes[off] != b'{' {
        return Err(MALFORMED_OBJECT.into());
    }
    off += 1;
    off += next_token(&bytes[off..]).ok_or(MALFORMED_JSON)?;
    if bytes[off] == b'}' {
        return Ok(());
    }
    while off < bytes.len() {
        match bytes[off] {
            b'"' => off += 1,
            b'}' => return Ok(()),
            _ => return Err(MALFORMED_OBJECT.into()),
        }
        let (len, escaped) = string_end(&bytes[off..]).ok_or(MALFORMED_JSON)?;
        let raw_key = &data[off..off + len - 1];
        off += len;
        let key = if escaped {
            Cow::Owned(unescape(raw_key).ok_or(MALFORMED_STRING_ESCAPE)?)
        } else {
            Cow::Borrowed(raw_key)
        };
        off += next_token(&bytes[off..]).ok_or(MALFORMED_JSON)?;
        if bytes[off] != b':' {
            return Err(MALFORMED_JSON.into());
        }
        off += 1;
        let v = get(&data[off..])?;
        let value_end = off + v.end;
        visit(key, v).map_err(EachError::Visitor)?;
        off = value_end;
        off += next_token(&bytes[off..]).ok_or(MALFORMED_ARRAY)?;
        match bytes[off] {
            b'}' => return Ok(()),
            b',' => off += 1,
            _ => return Err(MALFORMED_OBJECT.into()),
        }
        off += next_token(&bytes[off..]).ok_or(MALFORMED_ARRAY)?;
    }
    Err(MALFORMED_OBJECT.into())
}

/// The `index`th element of the array `data` holds (jsonparser's `ArrayEach`), `None` when
/// absent or malformed.
pub(super) fn array_index(data: &str, index: usize) -> Option<Value<'_>> {
    let bytes = data.as_bytes();
    let mut off = next_token(bytes)?;
    if bytes[off] != b'[' {
        return None;
    }
    off += 1;
    off += next_token(&bytes[off..])?;
    if bytes[off] == b']' {
        return None;
    }
    for i in 0.. {
        let v = get(&data[off..]).ok()?;
        let end = off + v.end;
        if i == index {
            return Some(v);
        }
        off = end + next_token(&bytes[end..])?;
        if bytes[off] != b',' {
            return None;
        }
        off += 1;
    }
    None
}

/// jsonparser's `Unescape`: JSON escapes including UTF-16 surrogate pairs; `None` on an
/// invalid escape.
pub(super) fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let esc = *rest.as_bytes().get(i + 1).filter(|b| b.is_ascii())?;
        rest = &rest[i + 2..];
        out.push(match esc {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let (c, used) = unicode_escape(rest)?;
                rest = &rest[used..];
                c
            }
            _ => return None,
        });
    }
    out.push_str(rest);
    Some(out)
}

/// Decodes the `XXXX` (and a following `\uXXXX` low surrogate) after a `\u`.
fn unicode_escape(s: &str) -> Option<(char, usize)> {
    let hex4 = |s: &str| s.get(..4).and_then(|h| u32::from_str_radix(h, 16).ok());
    let hi = hex4(s)?;
    if !(0xD800..0xE000).contains(&hi) {
        return Some((char::from_u32(hi)?, 4));
    }
    let lo = s.get(4..6).filter(|p| *p == "\\u").and(hex4(s.get(6..)?))?;
    if lo < 0xDC00 {
        return None;
    }
    let c = 0x10000 + ((hi.wrapping_sub(0xD800)) << 10 | (lo.wrapping_sub(0xDC00)));
    Some((char::from_u32(c).unwrap_or('\u{FFFD}'), 10))
}

/// Loki's `unescapeJSONString`: the unescaped string, empty when an escape is invalid.
pub(super) fn unescape_lossy(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(unescape(raw).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(line: &str) -> (Vec<(String, String, JsonType)>, Option<&'static str>) {
        let mut seen = Vec::new();
        let r = object_each::<()>(line, |k, v| {
            seen.push((k.into_owned(), v.raw.to_string(), v.ty));
            Ok(())
        });
        let err = match r {
            Ok(()) => None,
            Err(EachError::Syntax(m)) => Some(m),
            Err(EachError::Visitor(())) => unreachable!(),
        };
        (seen, err)
    }

    #[test]
    fn object_members_and_errors_match_jsonparser() {
        let (m, e) = members(r#"{"a":"x\"y", "b" : 1.5e3,"c":{"d":[1,2]},"e":null,"f":true}"#);
        assert_eq!(e, None);
        assert_eq!(
            m,
            vec![
                ("a".into(), r#"x\"y"#.into(), JsonType::String),
                ("b".into(), "1.5e3".into(), JsonType::Number),
                ("c".into(), r#"{"d":[1,2]}"#.into(), JsonType::Object),
                ("e".into(), "".into(), JsonType::Null),
                ("f".into(), "true".into(), JsonType::Boolean),
            ]
        );
        assert_eq!(members("{n}").1, Some(MALFORMED_OBJECT));
        assert_eq!(members("hello").1, Some(MALFORMED_OBJECT));
        assert_eq!(members("").1, Some(MALFORMED_OBJECT));
        // Members before the error are still visited.
        let (m, e) = members(r#"{"a":1"#);
        assert_eq!((m.len(), e), (1, Some(MALFORMED_ARRAY)));
        assert_eq!(members(r#"{"a":"b}"#).1, Some(MALFORMED_STRING));
        assert_eq!(members(r#"{"a":xyz}"#).1, Some(UNKNOWN_VALUE_TYPE));
        assert_eq!(members(r#"{"a\u0041":1}"#).0[0].0, "aA");
    }

    #[test]
    fn unescapes_like_jsonparser() {
        assert_eq!(unescape(r#"a\"b\\c\/d\n\t"#).unwrap(), "a\"b\\c/d\n\t");
        assert_eq!(unescape(r"\u00e9\ud83d\ude00").unwrap(), "é😀");
        assert_eq!(unescape(r"\x"), None);
        assert_eq!(unescape(r"\ud83d"), None);
        assert_eq!(unescape_lossy(r"bad \q"), "");
    }

    #[test]
    fn array_elements() {
        assert_eq!(array_index(r#"[1, "two", {"x":3}]"#, 1).unwrap().raw, "two");
        assert_eq!(
            array_index(r#"[1, "two", {"x":3}]"#, 2).unwrap().raw,
            r#"{"x":3}"#
        );
        assert!(array_index("[1]", 3).is_none());
        assert!(array_index("[]", 0).is_none());
    }
}
