//! Go (RE2) regexes on the `regex` crate. The two agree on syntax except that Go reads a `{`
//! that does not open a valid repetition (`{"level":"error"}`, `a{`, `x{,3}`) as a literal
//! brace where the `regex` crate refuses it, so such braces are escaped first.

use std::borrow::Cow;

use regex::Regex;

/// True when `s` (just after a `{`) is a repetition Go accepts: `n}`, `n,}` or `n,m}`.
fn is_repetition(s: &[char]) -> bool {
    let digits = |from: usize| s[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let n = digits(0);
    if n == 0 {
        return false;
    }
    match s.get(n) {
        Some('}') => true,
        Some(',') => {
            let m = digits(n + 1);
            s.get(n + 1 + m) == Some(&'}')
        }
        _ => false,
    }
}

/// Rewrites a Go regex so the `regex` crate reads it the same way: the one translation every
/// LogQL regex goes through, whether compiled here ([`compile_go_regex`]) or handed to the
/// store as a matcher's pattern (`Matcher::to_label_matcher`), so the two cannot disagree.
pub(crate) fn go_to_rust_regex(pattern: &str) -> Cow<'_, str> {
    if !pattern.contains('{') {
        return Cow::Borrowed(pattern);
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 4);
    let (mut i, mut in_class) = (0, false);
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                out.push(c);
                if let Some(&n) = chars.get(i + 1) {
                    out.push(n);
                    i += 1;
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // A `]` right after `[` or `[^` is a literal member of the class.
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i + 1) == Some(&']') {
                    out.push(']');
                    i += 1;
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '{' if !in_class && !is_repetition(&chars[i + 1..]) => out.push_str("\\{"),
            _ => out.push(c),
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// Go's wording for the `regex` crate's common syntax errors, and whether Go quotes the
/// whole expression (rather than the offending part) after it.
fn go_reason(rust: &str) -> (String, bool) {
    let (reason, whole) = match rust {
        "unrecognized escape sequence" => ("invalid escape sequence", false),
        "unclosed group" => ("missing closing )", true),
        "unopened group" => ("unexpected )", true),
        "unclosed character class" => ("missing closing ]", true),
        "repetition operator missing expression" => {
            ("missing argument to repetition operator", false)
        }
        r if r.starts_with("invalid character class range") => {
            ("invalid character class range", false)
        }
        r => (r, false),
    };
    (reason.to_string(), whole)
}

/// The part of the pattern the `regex` crate's error underlines with carets, if it shows one.
fn underlined(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let carets = lines.iter().position(|l| {
        let t = l.trim();
        !t.is_empty() && t.chars().all(|c| c == '^')
    })?;
    let pattern: Vec<char> = lines.get(carets.checked_sub(1)?)?.chars().collect();
    let marks = lines[carets];
    let start = marks.find('^')?;
    let end = marks.rfind('^')? + 1;
    (end <= pattern.len()).then(|| pattern[start..end].iter().collect())
}

/// Compiles a Go regex; the error reads like Go's (`error parsing regexp: invalid escape
/// sequence: `\q``).
pub(crate) fn compile_go_regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(&go_to_rust_regex(pattern)).map_err(|e| go_regex_error(pattern, &e))
}

/// Go's message for the `regex` crate's refusal of `pattern` (as written, before
/// [`go_to_rust_regex`]), for callers that compile the translation themselves, such as the
/// store's matchers.
pub(super) fn go_regex_error(pattern: &str, e: &regex::Error) -> String {
    let text = e.to_string();
    let Some(rust) = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
    else {
        return format!("error parsing regexp: {}", text.trim());
    };
    let (reason, whole) = go_reason(rust);
    let part = match underlined(&text) {
        Some(p) if !whole => p,
        _ => pattern.to_string(),
    };
    format!("error parsing regexp: {reason}: `{part}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_braces_are_literal_unless_repetitions() {
        assert_eq!(go_to_rust_regex(r#"{"a":1}"#), r#"\{"a":1}"#);
        assert_eq!(go_to_rust_regex("a{2}b{1,}c{1,3}"), "a{2}b{1,}c{1,3}");
        assert_eq!(go_to_rust_regex("a{,3}[{]x{"), r"a\{,3}[{]x\{");
        assert_eq!(go_to_rust_regex(r"\{[]{]"), r"\{[]{]");
        assert!(compile_go_regex(r#"{"level":"error"}"#)
            .unwrap()
            .is_match(r#"x{"level":"error"}"#));
        assert_eq!(
            compile_go_regex(r"a\q").unwrap_err(),
            r"error parsing regexp: invalid escape sequence: `\q`"
        );
        assert_eq!(
            compile_go_regex("(a").unwrap_err(),
            "error parsing regexp: missing closing ): `(a`"
        );
    }
}
