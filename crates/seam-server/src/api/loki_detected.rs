//! `/loki/api/v1/detected_labels`, `/detected_fields` and `/detected_field/{name}/values`, the
//! endpoints Grafana's Logs Drilldown and query builder use to offer labels and fields. The
//! shapes and rules are Loki's (`pkg/querier/querier.go` `DetectedLabels`,
//! `pkg/querier/queryrange/detected_fields.go`): fields come from the entries' structured
//! metadata, the query's own parsers, and each line parsed as JSON or else logfmt by the LogQL
//! pipeline.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use seam_model::labels::sanitize_label_name;
use seam_model::{Labels, Signal, Tenant};
use seam_query::logql::{self, units, Expr, LabelExtraction, LogEntry, Pipeline, QueryTime, Stage};
use seam_store::Direction;
use serde_json::{json, Map, Value};

use super::params::{self as lp, bad};
use super::query::{evaluate_logs, with_deadline};
use crate::api::{param, store_or_503, Params};
use crate::AppState;

/// Loki's defaults for `line_limit` (entries read) and `limit` (fields or values answered).
const DEFAULT_LINE_LIMIT: usize = 1000;
const DEFAULT_FIELD_LIMIT: usize = 1000;

/// Labels Loki always offers, whatever their values look like.
const STATIC_LABELS: [&str; 4] = ["cluster", "namespace", "instance", "pod"];

/// Labels the pipeline writes that are never fields.
const ERROR_LABELS: [&str; 3] = ["__error__", "__error_details__", "__preserve_error__"];

/// `GET /loki/api/v1/detected_labels[?query=]`: stream labels worth offering, with their
/// cardinality. A label whose values all look like ids (numbers or UUIDs; 0/1 excepted) is left
/// out, as Loki leaves it out.
pub(super) async fn labels(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> Response {
    let run = || -> Result<Value, Response> {
        let tenant = lp::tenant_of(&headers)?;
        let (start, end) = lp::bounds(&p, lp::DEFAULT_SINCE_NS)?;
        let matchers = lp::optional_selector(&p)?;
        lp::check_query_length(state.limits.for_tenant(&tenant), start, end)?;
        let store = store_or_503(&state)?;
        // One selection gives every label's values (what `label_names` and a `label_values` per
        // name would select again and again).
        let mut by_name: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (_, labels) in store.select_series(&tenant, Signal::Logs, &matchers, start, end) {
            for l in labels.into_vec() {
                by_name.entry(l.name).or_default().insert(l.value);
            }
        }
        let mut out = Vec::new();
        for (name, values) in by_name {
            let values: Vec<String> = values.into_iter().collect();
            let keep = (STATIC_LABELS.contains(&name.as_str()) && !values.is_empty())
                || !reject_label(&values);
            if keep {
                out.push(json!({"label": name, "cardinality": values.len()}));
            }
        }
        Ok(json!({ "detectedLabels": out }))
    };
    match run() {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// Loki's `shouldRejectLabel`: no values, or every value an id.
fn reject_label(values: &[String]) -> bool {
    if values.is_empty() {
        return true;
    }
    let boolean = values.len() <= 2 && values.iter().all(|v| v == "0" || v == "1");
    !boolean
        && values
            .iter()
            .all(|v| v.parse::<f64>().is_ok() || is_uuid(v))
}

/// A UUID as Go's `uuid.Parse` accepts it in its common forms (hyphenated, optionally braced or
/// `urn:uuid:` prefixed, or 32 bare hex digits).
fn is_uuid(v: &str) -> bool {
    let v = v.strip_prefix("urn:uuid:").unwrap_or(v);
    let v = v
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(v);
    let b = v.as_bytes();
    match b.len() {
        32 => b.iter().all(u8::is_ascii_hexdigit),
        36 => b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        }),
        _ => false,
    }
}

/// What one detected field has shown so far.
#[derive(Default)]
struct Field {
    kind: &'static str,
    values: BTreeSet<String>,
    /// The values as the values endpoint prints them (parsed sizes in go-humanize's form).
    shown: BTreeSet<String>,
    /// Parsers that found it; empty (answered as `null`, as Loki does) for structured metadata.
    parsers: Vec<&'static str>,
    json_path: Option<Vec<String>>,
}

/// The fields of the entries, at most `limit` of them: structured metadata, then the labels the
/// query's parsers wrote together with those of the line parsed as JSON or else logfmt (listing
/// that parser). A field's type is that of the last value seen, as in Loki.
fn detect(entries: &[LogEntry], limit: usize) -> BTreeMap<String, Field> {
    let json = Pipeline::new(&[Stage::Json(Vec::<LabelExtraction>::new())]).ok();
    let logfmt = Pipeline::new(&[Stage::Logfmt {
        strict: false,
        keep_empty: false,
        params: Vec::new(),
    }])
    .ok();
    let mut fields: BTreeMap<String, Field> = BTreeMap::new();
    let mut note = |name: &str,
                    value: &str,
                    from_line: bool,
                    parser: Option<&'static str>,
                    path: Option<&Vec<String>>| {
        if ERROR_LABELS.contains(&name) || (!fields.contains_key(name) && fields.len() >= limit) {
            return;
        }
        let f = fields.entry(name.to_string()).or_default();
        if let Some(p) = parser.filter(|p| !f.parsers.contains(p)) {
            f.parsers.push(p);
        }
        if f.json_path.is_none() {
            f.json_path = path.cloned();
        }
        f.kind = field_type(value);
        f.values.insert(value.to_string());
        let shown = from_line.then(|| shown_size(value)).flatten();
        f.shown.insert(shown.unwrap_or_else(|| value.to_string()));
    };
    for e in entries {
        for l in e.labels.structured_metadata.as_slice() {
            note(&l.name, &l.value, false, None, None);
        }
        let line = parse_line(&e.line, &e.labels.stream, &json, &logfmt);
        let parser = line.as_ref().map(|(p, _)| *p);
        let paths = match parser {
            Some("json") => json_paths(&e.line),
            _ => BTreeMap::new(),
        };
        let line_labels = line.as_ref().map(|(_, l)| l.as_slice()).unwrap_or_default();
        for l in e.labels.parsed.as_slice().iter().chain(line_labels) {
            note(&l.name, &l.value, true, parser, paths.get(&l.name));
        }
    }
    fields
}

/// Parses a line as JSON, or else logfmt, with the pipeline's parsers: the parser that succeeded
/// and the labels it wrote.
fn parse_line(
    line: &str,
    stream: &Labels,
    json: &Option<Pipeline>,
    logfmt: &Option<Pipeline>,
) -> Option<(&'static str, Labels)> {
    let none = Labels::default();
    for (name, p) in [("json", json), ("logfmt", logfmt)] {
        let Some(p) = p else { continue };
        if let Some(e) = p.process(0, line, stream, &none) {
            if e.labels.parsed.get("__error__").is_none() && !e.labels.parsed.is_empty() {
                return Some((name, e.labels.parsed));
            }
        }
    }
    None
}

/// For each label `| json` writes from `line`, the JSON keys leading to it (Loki's `jsonPath`):
/// nested keys are joined with `_` and sanitized into one label name; arrays are not descended.
fn json_paths(line: &str) -> BTreeMap<String, Vec<String>> {
    fn walk(
        v: &Map<String, Value>,
        prefix: &str,
        path: &mut Vec<String>,
        out: &mut BTreeMap<String, Vec<String>>,
    ) {
        for (k, child) in v {
            let name = if prefix.is_empty() {
                sanitize_label_name(k)
            } else {
                format!("{prefix}_{}", sanitize_label_name(k))
            };
            path.push(k.clone());
            match child {
                Value::Object(m) => walk(m, &name, path, out),
                Value::Array(_) => {}
                _ => {
                    out.insert(name, path.clone());
                }
            }
            path.pop();
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(line) {
        walk(&m, "", &mut Vec::new(), &mut out);
    }
    out
}

/// Loki's `determineType`: the first of int, float, boolean, duration, bytes the value parses
/// as, else string.
fn field_type(v: &str) -> &'static str {
    if v.parse::<i64>().is_ok() {
        "int"
    } else if v.parse::<f64>().is_ok() {
        "float"
    } else if matches!(
        v,
        "1" | "t" | "T" | "TRUE" | "true" | "True" | "0" | "f" | "F" | "FALSE" | "false" | "False"
    ) {
        "boolean"
    } else if units::parse_go_duration(v).is_some() {
        "duration"
    } else if units::parse_bytes(v).is_some() {
        "bytes"
    } else {
        "string"
    }
}

/// A parsed size as Loki's values endpoint rewrites it so it can go straight into a query
/// (`10KB` → `10kB`, `2MiB` → `2.1MB`): go-humanize's `Bytes` without the space, for values that
/// parse as a size and end in a size unit.
fn shown_size(v: &str) -> Option<String> {
    let lower = v.to_ascii_lowercase();
    let unit = ["b", "k", "m", "g", "t", "p", "e", "i"]
        .iter()
        .any(|u| lower.ends_with(u));
    units::parse_bytes(v)
        .filter(|_| unit)
        .map(units::format_bytes)
}

/// A detected-fields request: the log query to sample and the answer's limit.
struct FieldsRequest {
    tenant: Tenant,
    expr: Expr,
    time: QueryTime,
    limit: usize,
}

fn fields_request(
    state: &AppState,
    headers: &HeaderMap,
    p: &Params,
) -> Result<FieldsRequest, Response> {
    let tenant = lp::tenant_of(headers)?;
    let (start, end) = lp::bounds(p, lp::DEFAULT_SINCE_NS)?;
    let line_limit = lp::positive(p, "line_limit", DEFAULT_LINE_LIMIT)?;
    let limit = lp::positive(p, "limit", DEFAULT_FIELD_LIMIT)?;
    let step = lp::step(p, start, end)?;
    let limits = state.limits.for_tenant(&tenant);
    lp::check_query_length(limits, start, end)?;
    lp::check_entries_limit(limits, line_limit)?;
    let log = logql::parse_log_query(param(p, "query").unwrap_or_default())
        .map_err(|e| bad(e.to_string()))?;
    Ok(FieldsRequest {
        tenant,
        expr: Expr::Log(log),
        time: QueryTime {
            start_ns: start,
            end_ns: end,
            step_ns: step,
            limit: line_limit,
            direction: Direction::Backward,
        },
        limit,
    })
}

/// Samples the request's entries under the tenant's deadline and detects their fields.
async fn sample_fields(
    state: &AppState,
    req: FieldsRequest,
) -> Result<BTreeMap<String, Field>, Response> {
    let store = store_or_503(state)?;
    let tl = state.limits.for_tenant(&req.tenant).clone();
    with_deadline(tl.query_timeout, move |deadline| {
        let entries = evaluate_logs(
            &store,
            &req.tenant,
            &req.expr,
            &req.time,
            &tl.query_until(deadline),
        )?;
        Ok(detect(&entries, req.limit))
    })
    .await
}

/// `GET /loki/api/v1/detected_fields?query=`: `{"fields":[{label,type,cardinality,parsers,
/// jsonPath?}],"limit":N}` (no `limit` when nothing was found, as Loki answers).
pub(super) async fn fields(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> Response {
    let req = match fields_request(&state, &headers, &p) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let limit = req.limit;
    let found = match sample_fields(&state, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let list: Vec<Value> = found
        .into_iter()
        .map(|(label, f)| {
            let mut o = Map::new();
            o.insert("label".into(), json!(label));
            o.insert("type".into(), json!(f.kind));
            o.insert("cardinality".into(), json!(f.values.len()));
            let parsers = (!f.parsers.is_empty()).then_some(f.parsers);
            o.insert("parsers".into(), json!(parsers));
            if let Some(path) = f.json_path {
                o.insert("jsonPath".into(), json!(path));
            }
            Value::Object(o)
        })
        .collect();
    let mut body = Map::new();
    if !list.is_empty() {
        body.insert("limit".into(), json!(limit));
    }
    body.insert("fields".into(), Value::Array(list));
    Json(Value::Object(body)).into_response()
}

/// `GET /loki/api/v1/detected_field/{name}/values?query=`: `{"values":[..],"limit":N}`, the
/// field's distinct values (at most `limit`, sorted).
pub(super) async fn field_values(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> Response {
    let mut req = match fields_request(&state, &headers, &p) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let limit = req.limit;
    // Every field is detected so that `name` is found however many others come first.
    req.limit = usize::MAX;
    let found = match sample_fields(&state, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let values: Vec<String> = found
        .get(&name)
        .map(|f| f.shown.iter().take(limit).cloned().collect())
        .unwrap_or_default();
    let mut body = Map::new();
    if !values.is_empty() {
        body.insert("limit".into(), json!(limit));
    }
    body.insert("values".into(), json!(values));
    Json(Value::Object(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_as_loki_determines_them() {
        for (v, t) in [
            ("42", "int"),
            ("-7", "int"),
            ("3.5", "float"),
            ("1e3", "float"),
            ("true", "boolean"),
            ("F", "boolean"),
            ("250ms", "duration"),
            ("1h30m", "duration"),
            ("10KB", "bytes"),
            ("1.5 GiB", "bytes"),
            ("hello", "string"),
            ("", "string"),
        ] {
            assert_eq!(field_type(v), t, "{v}");
        }
    }

    #[test]
    fn parsed_sizes_are_shown_as_loki_prints_them() {
        assert_eq!(shown_size("10KB").as_deref(), Some("10kB"));
        assert_eq!(shown_size("42"), None);
        assert_eq!(shown_size("250ms"), None);
        assert_eq!(shown_size("hello"), None);
    }

    #[test]
    fn ids_are_not_offered_as_labels() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(reject_label(&s(&[])));
        assert!(reject_label(&s(&["1", "2", "3"])));
        assert!(reject_label(&s(&["0b6f3a2e-2c1d-4a8e-9f1a-1234567890ab"])));
        assert!(!reject_label(&s(&["0", "1"])));
        assert!(!reject_label(&s(&["api", "web"])));
    }

    #[test]
    fn json_paths_follow_nested_keys() {
        let p = json_paths(r#"{"user":{"id":7,"na-me":"x"},"tags":[1],"msg":"hi"}"#);
        assert_eq!(p["user_id"], vec!["user", "id"]);
        assert_eq!(p["user_na_me"], vec!["user", "na-me"]);
        assert_eq!(p["msg"], vec!["msg"]);
        assert!(!p.contains_key("tags"));
    }
}
