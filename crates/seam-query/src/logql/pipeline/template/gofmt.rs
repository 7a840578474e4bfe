//! Go's `fmt` and `time` printing for template values: `%v` of floats, `printf` verbs, and
//! time layouts (`2006-01-02T15:04:05Z07:00`), all in UTC.

use chrono::{DateTime, Datelike, Timelike, Utc};

use super::Val;
use crate::logql::format::{go_float, go_quote};

/// Go's `strconv.FormatFloat(f, 'g', prec, 64)` (`prec` `None`: shortest, as `%v` prints).
fn format_g(f: f64, prec: Option<usize>) -> String {
    // The shortest form is `%v`'s, which `go_float` already prints.
    let Some(p) = prec else {
        return go_float(f);
    };
    if let Some(s) = non_finite(f) {
        return s.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let p = p.max(1);
    let (digits, exp) = decimal_digits(f, p);
    let eprec = if p > digits.len() && digits.len() as i32 > exp {
        digits.len() as i32
    } else {
        p as i32
    };
    let sign = if f < 0.0 { "-" } else { "" };
    if exp < -4 || exp >= eprec {
        let mut m = digits[..1].to_string();
        if digits.len() > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        format!("{sign}{m}e{}", exp_suffix(exp))
    } else {
        format!("{sign}{}", place_point(&digits, exp))
    }
}

/// The significant digits (trailing zeros dropped) and decimal exponent of `|f|`, rounded to
/// `sig` digits.
fn decimal_digits(f: f64, sig: usize) -> (String, i32) {
    let s = format!("{:.*e}", sig - 1, f.abs());
    let (mant, exp) = s.split_once('e').expect("LowerExp always has an exponent");
    let mut digits: String = mant.chars().filter(|c| *c != '.').collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    (
        digits,
        exp.parse().expect("LowerExp exponent is an integer"),
    )
}

/// Digits `d1d2d3...` times 10^(exp - len + 1) in plain notation.
fn place_point(digits: &str, exp: i32) -> String {
    if exp < 0 {
        return format!("0.{}{digits}", "0".repeat((-exp - 1) as usize));
    }
    let int_len = exp as usize + 1;
    if digits.len() <= int_len {
        format!("{digits}{}", "0".repeat(int_len - digits.len()))
    } else {
        format!("{}.{}", &digits[..int_len], &digits[int_len..])
    }
}

fn exp_suffix(exp: i32) -> String {
    format!("{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

fn non_finite(f: f64) -> Option<&'static str> {
    if f.is_nan() {
        Some("NaN")
    } else if f.is_infinite() {
        Some(if f > 0.0 { "+Inf" } else { "-Inf" })
    } else {
        None
    }
}

/// Go's `%e` with `prec` digits after the point.
fn format_e(f: f64, prec: usize, upper: bool) -> String {
    if let Some(s) = non_finite(f) {
        return s.to_string();
    }
    let s = format!("{:.*e}", prec, f);
    let (m, e) = s.split_once('e').expect("LowerExp always has an exponent");
    let out = format!("{m}e{}", exp_suffix(e.parse().expect("integer exponent")));
    if upper {
        out.to_uppercase()
    } else {
        out
    }
}

/// Go's type name of a value, as `%!d(string=x)` shows it.
pub(super) fn type_name(v: &Val) -> &'static str {
    match v {
        Val::Str(_) => "string",
        Val::Int(_) => "int",
        Val::Float(_) => "float64",
        Val::Bool(_) => "bool",
        Val::Time(_) => "time.Time",
        Val::Map => "map[string]string",
        Val::Nil => "<nil>",
    }
}

/// `fmt.Sprintf` over template values, with Go's `%!verb(type=value)` for mismatches.
pub(super) fn sprintf(format: &str, args: &[Val], fields: &dyn super::Fields) -> String {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = format.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&(_, f)) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                // `#` (alternate forms) is accepted and ignored.
                '#' => {}
                _ => break,
            }
            chars.next();
        }
        spec.width = read_num(&mut chars);
        if chars.peek().map(|p| p.1) == Some('.') {
            chars.next();
            spec.prec = Some(read_num(&mut chars).unwrap_or(0));
        }
        let Some((_, verb)) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        out.push_str(&format_one(&spec, verb, arg, fields));
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| format!("{}={}", type_name(a), display(a, fields)))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

fn read_num(chars: &mut std::iter::Peekable<std::str::CharIndices>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|p| p.1.to_digit(10)) {
        n = Some(n.unwrap_or(0) * 10 + d as usize);
        chars.next();
    }
    n
}

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn format_one(spec: &Spec, verb: char, arg: &Val, fields: &dyn super::Fields) -> String {
    let bad = || format!("%!{verb}({}={})", type_name(arg), display(arg, fields));
    let (body, numeric) = match (verb, arg) {
        ('v', _) | ('s', Val::Str(_) | Val::Time(_) | Val::Map) => {
            let s = display(arg, fields);
            match spec.prec {
                Some(p) if verb == 's' => (s.chars().take(p).collect(), false),
                _ => (s, matches!(arg, Val::Int(_) | Val::Float(_))),
            }
        }
        ('d', Val::Int(i)) => (i.abs().to_string(), true),
        ('b', Val::Int(i)) => (format!("{:b}", i.abs()), true),
        ('o', Val::Int(i)) => (format!("{:o}", i.abs()), true),
        ('x', Val::Int(i)) => (format!("{:x}", i.abs()), true),
        ('X', Val::Int(i)) => (format!("{:X}", i.abs()), true),
        ('x', Val::Str(s)) => (s.bytes().map(|b| format!("{b:02x}")).collect(), false),
        ('X', Val::Str(s)) => (s.bytes().map(|b| format!("{b:02X}")).collect(), false),
        ('c', Val::Int(i)) => (
            char::from_u32(*i as u32).unwrap_or('\u{FFFD}').to_string(),
            false,
        ),
        ('q', Val::Str(s)) => (go_quote(s), false),
        ('t', Val::Bool(b)) => (b.to_string(), false),
        ('f' | 'F', Val::Float(f)) => (fixed(f.abs(), spec.prec.unwrap_or(6)), true),
        ('e' | 'E', Val::Float(f)) => {
            (format_e(f.abs(), spec.prec.unwrap_or(6), verb == 'E'), true)
        }
        ('g' | 'G', Val::Float(f)) => {
            let s = format_g(f.abs(), spec.prec);
            (if verb == 'G' { s.to_uppercase() } else { s }, true)
        }
        _ => return bad(),
    };
    let negative = match arg {
        Val::Int(i) => *i < 0,
        Val::Float(f) => f.is_sign_negative() && !f.is_nan(),
        _ => false,
    };
    let body = if numeric && verb == 'v' {
        body.trim_start_matches('-').to_string()
    } else {
        body
    };
    let sign = match (numeric, negative) {
        (true, true) => "-",
        (true, false) if spec.plus => "+",
        (true, false) if spec.space => " ",
        _ => "",
    };
    pad(spec, sign, &body, numeric)
}

fn fixed(f: f64, prec: usize) -> String {
    non_finite(f).map_or_else(|| format!("{f:.prec$}"), str::to_string)
}

fn pad(spec: &Spec, sign: &str, body: &str, numeric: bool) -> String {
    let len = sign.chars().count() + body.chars().count();
    let width = spec.width.unwrap_or(0);
    if len >= width {
        return format!("{sign}{body}");
    }
    let fill = width - len;
    if spec.minus {
        format!("{sign}{body}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        format!("{sign}{}{body}", "0".repeat(fill))
    } else {
        format!("{}{sign}{body}", " ".repeat(fill))
    }
}

/// How Go prints a value with `%v` (and in a template action).
pub(super) fn display(v: &Val, fields: &dyn super::Fields) -> String {
    match v {
        Val::Str(s) => s.clone(),
        Val::Int(i) => i.to_string(),
        Val::Float(f) => go_float(*f),
        Val::Bool(b) => b.to_string(),
        Val::Time(ns) => format_layout(*ns, "2006-01-02 15:04:05.999999999 -0700 MST"),
        Val::Map => {
            let pairs: Vec<String> = fields
                .all()
                .into_iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect();
            format!("map[{}]", pairs.join(" "))
        }
        Val::Nil => "<nil>".to_string(),
    }
}

/// Formats a time (ns since the epoch, UTC) with a Go layout such as
/// `"2006-01-02T15:04:05.000Z07:00"`.
pub(super) fn format_layout(ns: i64, layout: &str) -> String {
    let t: DateTime<Utc> = DateTime::from_timestamp_nanos(ns);
    let mut out = String::new();
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        const CHUNKS: &[&str] = &[
            "January",
            "Jan",
            "Monday",
            "Mon",
            "MST",
            "2006",
            "002",
            "01",
            "02",
            "03",
            "04",
            "05",
            "06",
            "__2",
            "_2",
            "15",
            "1",
            "2",
            "3",
            "4",
            "5",
            "PM",
            "pm",
            "-07:00:00",
            "-070000",
            "-07:00",
            "-0700",
            "-07",
            "Z07:00:00",
            "Z070000",
            "Z07:00",
            "Z0700",
            "Z07",
        ];
        for chunk in CHUNKS {
            if rest.starts_with(chunk) {
                out.push_str(&layout_chunk(&t, chunk));
                rest = &rest[chunk.len()..];
                continue 'outer;
            }
        }
        // Fractional seconds: `.000` (fixed) or `.999` (trailing zeros dropped).
        if let Some(digit) = rest.strip_prefix(['.', ',']).and_then(|r| r.chars().next()) {
            if digit == '0' || digit == '9' {
                let n = rest[1..].chars().take_while(|c| *c == digit).count();
                if !rest[1 + n..].starts_with(|c: char| c.is_ascii_digit()) {
                    let frac = format!("{:09}", t.nanosecond() % 1_000_000_000);
                    let mut frac = frac[..n.min(9)].to_string();
                    if digit == '9' {
                        frac.truncate(frac.trim_end_matches('0').len());
                    }
                    if !frac.is_empty() {
                        out.push_str(&rest[..1]);
                        out.push_str(&frac);
                    }
                    rest = &rest[1 + n..];
                    continue;
                }
            }
        }
        let c = rest.chars().next().expect("rest is not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn layout_chunk(t: &DateTime<Utc>, chunk: &str) -> String {
    let h12 = match t.hour() % 12 {
        0 => 12,
        h => h,
    };
    match chunk {
        "January" => t.format("%B").to_string(),
        "Jan" => t.format("%b").to_string(),
        "Monday" => t.format("%A").to_string(),
        "Mon" => t.format("%a").to_string(),
        "MST" => "UTC".to_string(),
        "2006" => format!("{:04}", t.year()),
        "002" => format!("{:03}", t.ordinal()),
        "__2" => format!("{:>3}", t.ordinal()),
        "01" => format!("{:02}", t.month()),
        "02" => format!("{:02}", t.day()),
        "_2" => format!("{:>2}", t.day()),
        "03" => format!("{h12:02}"),
        "04" => format!("{:02}", t.minute()),
        "05" => format!("{:02}", t.second()),
        "06" => format!("{:02}", t.year() % 100),
        "15" => format!("{:02}", t.hour()),
        "1" => t.month().to_string(),
        "2" => t.day().to_string(),
        "3" => h12.to_string(),
        "4" => t.minute().to_string(),
        "5" => t.second().to_string(),
        "PM" => if t.hour() >= 12 { "PM" } else { "AM" }.to_string(),
        "pm" => if t.hour() >= 12 { "pm" } else { "am" }.to_string(),
        c if c.starts_with('Z') => "Z".to_string(),
        offset => offset.replace("-07", "+00"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoFields;
    impl super::super::Fields for NoFields {
        fn get(&self, _: &str) -> Option<&str> {
            None
        }
        fn all(&self) -> Vec<(&str, &str)> {
            Vec::new()
        }
    }

    #[test]
    fn floats_print_like_go() {
        let cases = [
            (1.0, "1"),
            (0.5, "0.5"),
            (123456.0, "123456"),
            (1_000_000.0, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (f64::INFINITY, "+Inf"),
        ];
        for (f, want) in cases {
            assert_eq!(format_g(f, None), want, "{f}");
        }
        assert_eq!(format_g(1.0, Some(3)), "1");
        assert_eq!(format_g(1234.5678, Some(3)), "1.23e+03");
        assert_eq!(format_g(1.23456, Some(3)), "1.23");
    }

    #[test]
    fn printf_verbs() {
        let f = NoFields;
        let s = |v: &str| Val::Str(v.into());
        let cases: &[(&str, Vec<Val>, &str)] = &[
            ("%s=%d", vec![s("a"), Val::Int(5)], "a=5"),
            ("%5s|%-5s|", vec![s("ab"), s("cd")], "   ab|cd   |"),
            (
                "%05d %+d %x",
                vec![Val::Int(42), Val::Int(3), Val::Int(255)],
                "00042 +3 ff",
            ),
            (
                "%.2f %e",
                vec![Val::Float(1.23456), Val::Float(1234.5)],
                "1.23 1.234500e+03",
            ),
            (
                "%q %v %t",
                vec![s("a\"b"), Val::Float(0.5), Val::Bool(true)],
                r#""a\"b" 0.5 true"#,
            ),
            ("%.3s", vec![s("abcdef")], "abc"),
            ("%d", vec![s("x")], "%!d(string=x)"),
            ("%d %d", vec![Val::Int(1)], "1 %!d(MISSING)"),
            ("%d", vec![Val::Int(1), s("x")], "1%!(EXTRA string=x)"),
            ("100%%", vec![], "100%"),
        ];
        for (fmt, args, want) in cases {
            assert_eq!(sprintf(fmt, args, &f), *want, "{fmt}");
        }
    }

    #[test]
    fn layouts() {
        // 2021-02-03T04:05:06.789Z
        let ns = 1_612_325_106_789_000_000;
        assert_eq!(
            format_layout(ns, "2006-01-02T15:04:05.000Z07:00"),
            "2021-02-03T04:05:06.789Z"
        );
        assert_eq!(format_layout(ns, "Jan _2 3:04PM"), "Feb  3 4:05AM");
        assert_eq!(
            format_layout(ns, "2006-01-02 15:04:05.999999999 -0700 MST"),
            "2021-02-03 04:05:06.789 +0000 UTC"
        );
        assert_eq!(format_layout(ns - 789_000_000, "15:04:05.999"), "04:05:06");
    }
}
