//! Loki's pattern language (`<name>` captures, `<_>` skips, everything else literal), used by
//! the `pattern` parser and the `|>`/`!>` line filters, with Loki's matching rules.

use memchr::memmem;
use seam_model::labels::is_valid_label_name;

/// One piece of a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    /// Text that must appear verbatim.
    Literal(String),
    /// `<name>`, or `<_>` (`None`) which matches without capturing.
    Capture(Option<String>),
}

/// A compiled pattern.
#[derive(Clone, Debug)]
pub(crate) struct Pattern {
    nodes: Vec<Node>,
    names: Vec<String>,
}

impl Pattern {
    /// Compiles a `pattern` parser expression: at least one named capture, no two captures in
    /// a row, no duplicate names (Loki's messages). The query parser calls it too, so the
    /// rules are written once.
    pub(crate) fn parser(src: &str) -> Result<Pattern, String> {
        let p = Pattern::lex(src);
        if p.names.is_empty() {
            return Err("at least one capture is required".into());
        }
        p.no_consecutive_captures()?;
        for (i, n) in p.names.iter().enumerate() {
            if p.names[..i].contains(n) {
                return Err(format!("duplicate capture name ({n}): invalid expression"));
            }
        }
        Ok(p)
    }

    /// Compiles a `|>` filter expression: only `<_>` captures.
    pub(super) fn filter(src: &str) -> Result<Pattern, String> {
        let p = Pattern::lex(src);
        p.no_consecutive_captures()?;
        if !p.names.is_empty() {
            return Err("named captures are not allowed".into());
        }
        Ok(p)
    }

    /// The names of the named captures, in order.
    pub(super) fn names(&self) -> &[String] {
        &self.names
    }

    fn lex(src: &str) -> Pattern {
        let mut nodes: Vec<Node> = Vec::new();
        let mut rest = src;
        while !rest.is_empty() {
            if let Some(name) = capture_at(rest) {
                nodes.push(Node::Capture((name != "_").then(|| name.to_string())));
                rest = &rest[name.len() + 2..];
                continue;
            }
            let c = rest.chars().next().expect("rest is not empty");
            match nodes.last_mut() {
                Some(Node::Literal(s)) => s.push(c),
                _ => nodes.push(Node::Literal(c.to_string())),
            }
            rest = &rest[c.len_utf8()..];
        }
        let names = nodes
            .iter()
            .filter_map(|n| match n {
                Node::Capture(Some(name)) => Some(name.clone()),
                _ => None,
            })
            .collect();
        Pattern { nodes, names }
    }

    fn no_consecutive_captures(&self) -> Result<(), String> {
        for w in self.nodes.windows(2) {
            if let (Node::Capture(a), Node::Capture(b)) = (&w[0], &w[1]) {
                let show = |c: &Option<String>| format!("<{}>", c.as_deref().unwrap_or("_"));
                return Err(format!(
                    "found consecutive capture '{}{}': invalid expression",
                    show(a),
                    show(b)
                ));
            }
        }
        Ok(())
    }

    /// The named captures of `line`, in order, as Loki's matcher finds them: the leading
    /// literal must start the line, each capture ends at the first occurrence of the next
    /// literal, and a missing literal ends matching with the rest of the line captured.
    pub(super) fn captures<'l>(&self, line: &'l str) -> Vec<&'l str> {
        let mut out = Vec::new();
        if line.is_empty() || self.nodes.is_empty() {
            return out;
        }
        let mut nodes = &self.nodes[..];
        let mut input = line;
        if let Node::Literal(l) = &nodes[0] {
            if !input.starts_with(l.as_str()) {
                return out;
            }
            input = &input[l.len()..];
            nodes = &nodes[1..];
        }
        while let Some(Node::Capture(name)) = nodes.first() {
            // The capture ends where the next literal starts; with no literal after it, or
            // the literal missing, it takes the rest of the line and matching ends.
            let found = match nodes.get(1) {
                Some(Node::Literal(lit)) => {
                    memmem::find(input.as_bytes(), lit.as_bytes()).map(|i| (i, lit.len()))
                }
                _ => None,
            };
            let Some((i, lit_len)) = found else {
                if name.is_some() {
                    out.push(input);
                }
                return out;
            };
            if name.is_some() {
                out.push(&input[..i]);
            }
            input = &input[i + lit_len..];
            nodes = &nodes[2..];
        }
        out
    }

    /// Whether `line` matches as a `|>` filter: literals in order, every `<_>` non-empty, a
    /// trailing literal ending the line (Loki's `Matcher.Test`, whose first literal is not
    /// anchored).
    pub(super) fn test(&self, line: &str) -> bool {
        if line.is_empty() || self.nodes.is_empty() {
            return line.is_empty() && self.nodes.is_empty();
        }
        let bytes = line.as_bytes();
        let mut off = 0;
        for (i, n) in self.nodes.iter().enumerate() {
            let Node::Literal(lit) = n else { continue };
            let Some(j) = memmem::find(&bytes[off..], lit.as_bytes()) else {
                return false;
            };
            if i != 0 && j == 0 {
                return false;
            }
            off += j + lit.len();
        }
        let ends_on_capture = matches!(self.nodes.last(), Some(Node::Capture(_)));
        ends_on_capture == (off != bytes.len())
    }
}

/// The name of a `<name>` capture starting `s` (`[A-Za-z_][A-Za-z0-9_]*` between brackets).
fn capture_at(s: &str) -> Option<&str> {
    let body = s.strip_prefix('<')?;
    let end = body.find('>')?;
    let name = &body[..end];
    is_valid_label_name(name).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_follow_lokis_matcher() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                r#"<ip> <userid> <user> [<_>] "<method> <path> <_>" <status> <size>"#,
                r#"127.0.0.1 user-identifier frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#,
                &[
                    "127.0.0.1",
                    "user-identifier",
                    "frank",
                    "GET",
                    "/apache_pb.gif",
                    "200",
                    "2326",
                ],
            ),
            // A missing literal ends matching; the capture takes the rest of the line.
            ("<a> | <b> end", "x | y and more", &["x", "y and more"]),
            // Trailing text after the last capture must follow it.
            ("<a>, done", "one, done, extra", &["one"]),
            // The leading literal anchors the match.
            ("foo <f>", "bar foo x", &[]),
            ("foo <f>", "foo x", &["x"]),
            ("<a> <_> <b>", "1 2 3 4", &["1", "3 4"]),
        ];
        for (pat, line, want) in cases {
            let p = Pattern::parser(pat).unwrap();
            assert_eq!(p.captures(line), *want, "{pat} on {line}");
        }
    }

    #[test]
    fn filter_test_follows_lokis_rules() {
        let cases = [
            ("<_> bar", "foo bar baz", false),
            ("<_> baz", "foo bar baz", true),
            ("foo <_>", "foo bar baz", true),
            ("<_> bar <_>", " bar ", false),
            ("<_>bar<_>", " bar ", true),
            ("<_> level=error <_>", "ts=1 level=error msg=x", true),
            ("<_> level=error <_>", "ts=1 level=info msg=x", false),
            ("", "", true),
            ("", "x", false),
        ];
        for (pat, line, want) in cases {
            assert_eq!(
                Pattern::filter(pat).unwrap().test(line),
                want,
                "{pat} on {line:?}"
            );
        }
    }

    #[test]
    fn compile_errors() {
        assert_eq!(
            Pattern::parser("<_> foo").unwrap_err(),
            "at least one capture is required"
        );
        assert_eq!(
            Pattern::parser("<a><b>").unwrap_err(),
            "found consecutive capture '<a><b>': invalid expression"
        );
        assert_eq!(
            Pattern::parser("<a> <a>").unwrap_err(),
            "duplicate capture name (a): invalid expression"
        );
        assert_eq!(
            Pattern::filter("<a> x").unwrap_err(),
            "named captures are not allowed"
        );
        assert_eq!(
            Pattern::parser("<f> f<d><_>").unwrap_err(),
            "found consecutive capture '<d><_>': invalid expression"
        );
        // Not a capture: `<` followed by an invalid name is literal text.
        assert_eq!(Pattern::parser("<1a> <b>").unwrap().names(), ["b"]);
        assert_eq!(Pattern::parser("<ünï> <a>").unwrap().names(), ["a"]);
        assert_eq!(
            Pattern::parser("<ip> - <_> <status>").unwrap().names(),
            ["ip", "status"]
        );
    }
}
