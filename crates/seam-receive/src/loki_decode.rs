//! Decoding Loki push bodies: the `logproto.PushRequest` protobuf, the JSON push format, and the
//! `{name="value", ...}` label text a protobuf stream carries.

use seam_model::labels::Label;

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `logproto.PushRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    /// The streams pushed.
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// `logproto.StreamAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    /// The stream labels as text, `{a="b"}`.
    #[prost(string, tag = "1")]
    pub labels: String,
    /// The entries.
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    /// The client's hash of the labels (ignored).
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// `logproto.EntryAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    /// Time of the entry.
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    /// The line.
    #[prost(string, tag = "2")]
    pub line: String,
    /// Per-entry structured metadata.
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

/// `logproto.LabelPairAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPairAdapter {
    /// The name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// One decoded entry: timestamp (ns), line, structured metadata.
pub type PushEntry = (i64, String, Vec<Label>);

/// One decoded stream, before validation.
#[derive(Debug, PartialEq)]
pub struct PushStream {
    /// The labels, or why the label text could not be parsed (naming the text).
    pub labels: Result<Vec<Label>, String>,
    /// The entries.
    pub entries: Vec<PushEntry>,
}

/// Turns a decoded protobuf request into streams.
pub fn from_proto(req: PushRequest) -> Vec<PushStream> {
    req.streams
        .into_iter()
        .map(|s| PushStream {
            labels: parse_labels(&s.labels)
                .map_err(|e| format!("error parsing labels '{}': {e}", s.labels)),
            entries: s
                .entries
                .into_iter()
                .map(|e| {
                    let ts = e
                        .timestamp
                        .map(|t| {
                            t.seconds
                                .saturating_mul(1_000_000_000)
                                .saturating_add(t.nanos as i64)
                        })
                        .unwrap_or(0);
                    let md = e
                        .structured_metadata
                        .into_iter()
                        .map(|l| Label::new(l.name, l.value))
                        .collect();
                    (ts, e.line, md)
                })
                .collect(),
        })
        .collect()
}

fn string_map(v: &serde_json::Value, what: &str) -> Result<Vec<Label>, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{what} must be an object"))?;
    obj.iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok(Label::new(k.clone(), s.clone())),
            other => Err(format!(
                "{what}: value of {k:?} must be a string, got {other}"
            )),
        })
        .collect()
}

/// Decodes the JSON push format: `{"streams":[{"stream":{..},"values":[["<ns>","line",{..}?]]}]}`.
pub fn from_json(data: &[u8]) -> Result<Vec<PushStream>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| format!("invalid JSON body: {e}"))?;
    let streams = v
        .get("streams")
        .and_then(|s| s.as_array())
        .ok_or("JSON body must have a \"streams\" array")?;
    let mut out = Vec::with_capacity(streams.len());
    for (si, s) in streams.iter().enumerate() {
        let labels = match s.get("stream") {
            Some(m) => string_map(m, &format!("streams[{si}].stream"))?,
            None => Vec::new(),
        };
        let values = s
            .get("values")
            .and_then(|v| v.as_array())
            .ok_or_else(|| format!("streams[{si}].values must be an array"))?;
        let mut entries = Vec::with_capacity(values.len());
        for (vi, v) in values.iter().enumerate() {
            let at = || format!("streams[{si}].values[{vi}]");
            let arr = v
                .as_array()
                .filter(|a| a.len() == 2 || a.len() == 3)
                .ok_or_else(|| format!("{} must be [timestamp, line, metadata?]", at()))?;
            let ts = match &arr[0] {
                serde_json::Value::String(s) => s.parse::<i64>().ok(),
                serde_json::Value::Number(n) => n.as_i64(),
                _ => None,
            }
            .ok_or_else(|| format!("{}: timestamp must be a string of nanoseconds", at()))?;
            let line = arr[1]
                .as_str()
                .ok_or_else(|| format!("{}: line must be a string", at()))?
                .to_string();
            let md = match arr.get(2) {
                Some(m) => string_map(m, &format!("{}[2]", at()))?,
                None => Vec::new(),
            };
            entries.push((ts, line, md));
        }
        out.push(PushStream {
            labels: Ok(labels),
            entries,
        });
    }
    Ok(out)
}

/// Parses `{name="value", ...}` (values quoted, with `\"`, `\\`, `\n`, `\t`, `\r` escapes); the
/// error names the byte offset.
pub fn parse_labels(text: &str) -> Result<Vec<Label>, String> {
    let b = text.as_bytes();
    let ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    let mut i = 0;
    ws(&mut i);
    if b.get(i) != Some(&b'{') {
        return Err(format!("expected '{{' at offset {i}"));
    }
    i += 1;
    let mut out = Vec::new();
    loop {
        ws(&mut i);
        if b.get(i) == Some(&b'}') {
            i += 1;
            break;
        }
        // Names are checked later, so that a bad one is reported as such.
        let start = i;
        while i < b.len()
            && !matches!(b[i], b'=' | b'"' | b',' | b'}' | b'{')
            && !b[i].is_ascii_whitespace()
        {
            i += 1;
        }
        if i == start {
            return Err(format!("expected a label name at offset {i}"));
        }
        let name = &text[start..i];
        ws(&mut i);
        if b.get(i) != Some(&b'=') {
            return Err(format!("expected '=' at offset {i}"));
        }
        i += 1;
        ws(&mut i);
        if b.get(i) != Some(&b'"') {
            return Err(format!("expected '\"' at offset {i}"));
        }
        i += 1;
        let mut value = String::new();
        loop {
            let Some(&c) = b.get(i) else {
                return Err(format!("unterminated quoted value at offset {i}"));
            };
            match c {
                b'"' => {
                    i += 1;
                    break;
                }
                b'\\' => {
                    let esc = match b.get(i + 1) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'n') => '\n',
                        Some(b't') => '\t',
                        Some(b'r') => '\r',
                        Some(b'\'') => '\'',
                        _ => return Err(format!("invalid escape at offset {i}")),
                    };
                    value.push(esc);
                    i += 2;
                }
                _ => {
                    let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
                    value.push(ch);
                    i += ch.len_utf8();
                }
            }
        }
        out.push(Label::new(name, value));
        ws(&mut i);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => {}
            _ => return Err(format!("expected ',' or '}}' at offset {i}")),
        }
    }
    ws(&mut i);
    if i != b.len() {
        return Err(format!("unexpected text at offset {i}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_label_text() {
        let l = parse_labels(r#"{a="x", b_2 = "q\"uo\\te\n" ,}"#).unwrap();
        assert_eq!(
            l,
            vec![Label::new("a", "x"), Label::new("b_2", "q\"uo\\te\n")]
        );
        assert_eq!(parse_labels("{}").unwrap(), vec![]);
        assert_eq!(
            parse_labels(r#"{bad-name="é"}"#).unwrap(),
            vec![Label::new("bad-name", "é")]
        );
        assert!(parse_labels(r#"{a="x""#).unwrap_err().contains("offset 6"));
        assert!(parse_labels(r#"{a=x}"#).unwrap_err().contains("offset 3"));
        assert!(parse_labels(r#"a="x""#).unwrap_err().contains("offset 0"));
        assert!(parse_labels(r#"{a="\q"}"#)
            .unwrap_err()
            .contains("escape at offset 4"));
    }

    #[test]
    fn decodes_json() {
        let s = from_json(
            br#"{"streams":[{"stream":{"a":"b"},"values":[["5","l",{"m":"1"}],["6","k"]]}]}"#,
        )
        .unwrap();
        assert_eq!(s[0].labels, Ok(vec![Label::new("a", "b")]));
        assert_eq!(s[0].entries[0], (5, "l".into(), vec![Label::new("m", "1")]));
        assert_eq!(s[0].entries[1], (6, "k".into(), vec![]));
        assert!(from_json(br#"{"streams":[{"values":[[1]]}]}"#).is_err());
    }
}
