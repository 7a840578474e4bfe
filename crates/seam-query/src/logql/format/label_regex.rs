//! Whether Loki prints a `=~` label filter's regex in backticks. Loki turns label regexes it
//! can into literal filters (`err.*`, `error|warn`, `(?i)foo`) and prints those as matchers
//! (`level=~"err.*"`); any other regex keeps its source and prints in backticks
//! (``path=~`/api/v[0-9]+` ``). Deciding takes Go's regex parse tree, including the way Go
//! factors alternations (`bar|baz` becomes `ba[rz]`, which Loki cannot simplify), so this
//! models that tree for the regexes Loki's simplifier can accept and treats everything else
//! as not simplifiable.

#[derive(Clone, Debug, PartialEq)]
enum Node {
    /// Literal text (Go merges adjacent literal characters into one node).
    Lit(Vec<char>),
    /// `.*`
    AnyStar,
    /// `.+`
    AnyPlus,
    /// A character class (Go's factoring makes one from single-character alternatives).
    Class,
    /// Matches the empty string.
    Empty,
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Capture(Box<Node>),
}

/// A recursive-descent reader for the regex subset the simplifier cares about; `None` for
/// anything outside it.
struct Reader {
    chars: Vec<char>,
    i: usize,
}

impl Reader {
    fn alt(&mut self) -> Option<Node> {
        let mut branches = vec![self.concat()?];
        while self.chars.get(self.i) == Some(&'|') {
            self.i += 1;
            branches.push(self.concat()?);
        }
        Some(if branches.len() == 1 {
            branches.pop().expect("one branch")
        } else {
            collapse_alt(branches)
        })
    }

    fn concat(&mut self) -> Option<Node> {
        let mut items: Vec<Node> = Vec::new();
        while let Some(&c) = self.chars.get(self.i) {
            let node = match c {
                '|' | ')' => break,
                '(' => self.group()?,
                '.' => {
                    let node = match self.chars.get(self.i + 1) {
                        Some('*') => Node::AnyStar,
                        Some('+') => Node::AnyPlus,
                        _ => return None,
                    };
                    self.i += 2;
                    node
                }
                '\\' => {
                    let e = *self.chars.get(self.i + 1)?;
                    if e.is_alphanumeric() {
                        return None;
                    }
                    self.i += 2;
                    Node::Lit(vec![e])
                }
                '[' | ']' | '^' | '$' | '*' | '+' | '?' | '{' => return None,
                c => {
                    self.i += 1;
                    Node::Lit(vec![c])
                }
            };
            if matches!(self.chars.get(self.i), Some('*' | '+' | '?' | '{')) {
                return None;
            }
            push_concat(&mut items, node);
        }
        Some(match items.len() {
            0 => Node::Empty,
            1 => items.pop().expect("one item"),
            _ => Node::Concat(items),
        })
    }

    fn group(&mut self) -> Option<Node> {
        self.i += 1;
        let rest: String = self.chars[self.i..].iter().take(3).collect();
        let capture = if rest.starts_with("?:") {
            self.i += 2;
            false
        } else if rest.starts_with("?P<") || rest.starts_with("?<") {
            let close = self.chars[self.i..].iter().position(|c| *c == '>')?;
            self.i += close + 1;
            true
        } else if rest.starts_with('?') {
            return None;
        } else {
            true
        };
        let inner = self.alt()?;
        if self.chars.get(self.i) != Some(&')') {
            return None;
        }
        self.i += 1;
        Some(if capture {
            Node::Capture(Box::new(inner))
        } else {
            inner
        })
    }
}

/// Appends to a concatenation as Go's parser does: literals merge, nested concatenations
/// flatten, empty matches vanish.
fn push_concat(items: &mut Vec<Node>, node: Node) {
    match node {
        Node::Concat(subs) => {
            for s in subs {
                push_concat(items, s);
            }
        }
        Node::Empty => {}
        Node::Lit(text) => match items.last_mut() {
            Some(Node::Lit(prev)) => prev.extend(text),
            _ => items.push(Node::Lit(text)),
        },
        other => items.push(other),
    }
}

fn leading_string(n: &Node) -> &[char] {
    match n {
        Node::Lit(t) => t,
        Node::Concat(subs) => match subs.first() {
            Some(Node::Lit(t)) => t,
            _ => &[],
        },
        _ => &[],
    }
}

fn remove_leading(n: Node, len: usize) -> Node {
    match n {
        Node::Lit(t) if t.len() == len => Node::Empty,
        Node::Lit(t) => Node::Lit(t[len..].to_vec()),
        Node::Concat(mut subs) => {
            let first = remove_leading(subs.remove(0), len);
            if first != Node::Empty {
                subs.insert(0, first);
            }
            match subs.len() {
                0 => Node::Empty,
                1 => subs.pop().expect("one sub"),
                _ => Node::Concat(subs),
            }
        }
        other => other,
    }
}

/// Go's `collapse(subs, OpAlternate)`: flatten, then factor.
fn collapse_alt(branches: Vec<Node>) -> Node {
    let mut flat = Vec::new();
    for b in branches {
        match b {
            Node::Alt(subs) => flat.extend(subs),
            other => flat.push(other),
        }
    }
    let mut out = factor(flat);
    if out.len() == 1 {
        out.pop().expect("one alternative")
    } else {
        Node::Alt(out)
    }
}

/// Go's `factor`: common literal prefixes of consecutive alternatives move out
/// (`abc|abd` → `ab(?:c|d)`), runs of single characters become a class, runs of empty
/// matches become one.
fn factor(subs: Vec<Node>) -> Vec<Node> {
    let mut round1: Vec<Node> = Vec::new();
    let mut run: Vec<Node> = Vec::new();
    let mut prefix: Vec<char> = Vec::new();
    let flush = |run: &mut Vec<Node>, prefix: &[char], out: &mut Vec<Node>| {
        if run.len() > 1 {
            let suffixes = run
                .drain(..)
                .map(|n| remove_leading(n, prefix.len()))
                .collect();
            out.push(Node::Concat(vec![
                Node::Lit(prefix.to_vec()),
                collapse_alt(suffixes),
            ]));
        } else {
            out.append(run);
        }
    };
    for sub in subs {
        let lead = leading_string(&sub).to_vec();
        let same = prefix.iter().zip(&lead).take_while(|(a, b)| a == b).count();
        if !run.is_empty() && same > 0 {
            prefix.truncate(same);
            run.push(sub);
            continue;
        }
        flush(&mut run, &prefix, &mut round1);
        prefix = lead;
        run.push(sub);
    }
    flush(&mut run, &prefix, &mut round1);
    let is_char = |n: &Node| matches!(n, Node::Lit(t) if t.len() == 1) || *n == Node::Class;
    let mut out: Vec<Node> = Vec::new();
    let mut chars = 0;
    for sub in round1 {
        if is_char(&sub) {
            chars += 1;
            if chars >= 2 {
                out.pop();
                out.push(Node::Class);
                continue;
            }
        } else {
            chars = 0;
        }
        if sub == Node::Empty && out.last() == Some(&Node::Empty) {
            continue;
        }
        out.push(sub);
    }
    out
}

fn uncapture(n: &Node) -> &Node {
    match n {
        Node::Capture(inner) => uncapture(inner),
        other => other,
    }
}

/// Loki's `RegexSimplifier.Simplify`.
fn simplify(n: &Node) -> bool {
    match uncapture(n) {
        Node::Alt(subs) => subs.iter().all(simplify),
        Node::Concat(subs) => simplify_concat(subs, false),
        Node::Lit(_) | Node::AnyStar | Node::AnyPlus | Node::Empty => true,
        Node::Class | Node::Capture(_) => false,
    }
}

fn simplify_concat(subs: &[Node], mut has_literal: bool) -> bool {
    let subs: Vec<&Node> = subs
        .iter()
        .map(uncapture)
        .filter(|n| **n != Node::Empty)
        .collect();
    if subs.len() > 3 {
        return false;
    }
    let mut literals = 0;
    for sub in subs {
        match sub {
            Node::Lit(_) if literals == 0 => {
                literals += 1;
                has_literal = true;
            }
            Node::Alt(alts) if has_literal => {
                let ok = alts.iter().all(|a| match a {
                    Node::Empty | Node::Lit(_) | Node::AnyStar => true,
                    Node::Concat(s) => simplify_concat(s, true),
                    _ => false,
                });
                if !ok {
                    return false;
                }
            }
            Node::AnyStar => {}
            _ => return false,
        }
    }
    has_literal
}

/// True when Loki turns the label regex into literal filters (and so prints it quoted).
pub(super) fn simplifiable(regex: &str) -> bool {
    let body = regex.strip_prefix("(?i)").unwrap_or(regex);
    let mut r = Reader {
        chars: body.chars().collect(),
        i: 0,
    };
    match r.alt() {
        Some(tree) if r.i == r.chars.len() => simplify(&tree),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::simplifiable;

    #[test]
    fn lokis_simplifications() {
        for re in [
            "boop",
            "err.*",
            ".*timeout.*",
            ".*",
            ".+",
            "",
            "error|warn|info",
            "(?i)error",
            "foo|foobar",
            "bar|bazz",
            "(error|warn)",
            "api\\.v1",
        ] {
            assert!(simplifiable(re), "{re}");
        }
        for re in [
            "a|b",
            "bar|baz",
            "/api/v[0-9]+",
            "^foo",
            "foo.*bar.*baz",
            ".*?(GET|POST) /loki",
            "\\w.*",
            "a+",
            ".*foo.*bar",
        ] {
            assert!(!simplifiable(re), "{re}");
        }
    }
}
