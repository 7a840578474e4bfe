//! OTLP attribute values as the text Loki and Prometheus labels need.

use crate::otlp::common::v1::{any_value::Value, AnyValue, KeyValue};
use base64::Engine;

/// The attribute `key` among `attrs`, if present.
pub fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

/// The string value of attribute `key`, if present and a string.
pub fn find_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match find(attrs, key)?.value.as_ref()? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

/// A value as text: strings as they are, numbers and booleans as literals, bytes as base64, and
/// arrays and maps as JSON (the rule Loki's OTLP ingestion and the Prometheus exporter follow).
pub fn to_text(v: &AnyValue) -> String {
    match v.value.as_ref() {
        Some(Value::StringValue(s)) => s.clone(),
        None => String::new(),
        _ => match to_json(v) {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        },
    }
}

/// A value as plain JSON (not OTLP/JSON's tagged form): used for non-string bodies and labels.
pub fn to_json(v: &AnyValue) -> serde_json::Value {
    use serde_json::Value as J;
    match v.value.as_ref() {
        None => J::Null,
        Some(Value::StringValue(s)) => J::String(s.clone()),
        Some(Value::BoolValue(b)) => J::Bool(*b),
        Some(Value::IntValue(i)) => J::from(*i),
        Some(Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(J::Number)
            .unwrap_or_else(|| J::String(d.to_string())),
        Some(Value::BytesValue(b)) => {
            J::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(Value::ArrayValue(a)) => J::Array(a.values.iter().map(to_json).collect()),
        // String-table indexes only mean something inside a profiles dictionary.
        Some(Value::StringValueStrindex(_)) => J::Null,
        Some(Value::KvlistValue(kv)) => J::Object(
            kv.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        kv.value.as_ref().map(to_json).unwrap_or(J::Null),
                    )
                })
                .collect(),
        ),
    }
}

/// A string attribute, for building OTLP data in tests, demos and load generators.
pub fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

/// An integer attribute.
pub fn int_kv(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::common::v1::ArrayValue;

    #[test]
    fn values_as_text() {
        assert_eq!(
            to_text(&AnyValue {
                value: Some(Value::IntValue(42))
            }),
            "42"
        );
        assert_eq!(
            to_text(&AnyValue {
                value: Some(Value::BoolValue(true))
            }),
            "true"
        );
        let arr = AnyValue {
            value: Some(Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(Value::StringValue("a".into())),
                }],
            })),
        };
        assert_eq!(to_text(&arr), r#"["a"]"#);
    }
}
