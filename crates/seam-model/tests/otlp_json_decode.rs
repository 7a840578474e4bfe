//! OTLP/JSON decoding: real payloads, the decoder's leniencies, and its errors.

mod common;

use seam_model::otlp::common::v1::any_value::Value as V;
use seam_model::otlp::common::v1::AnyValue;
use seam_model::otlp::metrics::v1::{metric::Data, number_data_point};
use seam_model::otlp_json::*;
use serde_json::{json, Value};

use common::{attr, fixture, hex, one_span, s};

// ---------------------------------------------------------------------------------------------
// Helpers

fn trace_err(body: &str) -> String {
    decode_traces(body.as_bytes()).unwrap_err().to_string()
}

fn span_err(span: Value) -> String {
    let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]});
    trace_err(&body.to_string())
}

fn first_log(body: Value) -> seam_model::otlp::logs::v1::LogRecord {
    let mut req = decode_logs(body.to_string().as_bytes()).unwrap();
    req.resource_logs
        .remove(0)
        .scope_logs
        .remove(0)
        .log_records
        .remove(0)
}

fn first_metric(body: Value) -> seam_model::otlp::metrics::v1::Metric {
    let mut req = decode_metrics(body.to_string().as_bytes()).unwrap();
    req.resource_metrics
        .remove(0)
        .scope_metrics
        .remove(0)
        .metrics
        .remove(0)
}

// ---------------------------------------------------------------------------------------------
// Fixtures

#[test]
fn example_trace() {
    let req = decode_traces(&fixture("trace.json")).unwrap();
    let rs = &req.resource_spans[0];
    let res = rs.resource.as_ref().unwrap();
    assert_eq!(attr(&res.attributes, "service.name"), &s("my.service"));
    let ss = &rs.scope_spans[0];
    let scope = ss.scope.as_ref().unwrap();
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("my.library", "1.0.0")
    );
    assert_eq!(
        attr(&scope.attributes, "my.scope.attribute"),
        &s("some scope attribute")
    );
    let span = &ss.spans[0];
    // The example writes its ids in upper-case hex.
    assert_eq!(span.trace_id, hex("5b8efff798038103d269b633813fc60c"));
    assert_eq!(span.span_id, hex("eee19b7ec3c1b174"));
    assert_eq!(span.parent_span_id, hex("eee19b7ec3c1b173"));
    assert_eq!(span.name, "I'm a server span");
    assert_eq!(span.kind, 2);
    assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
    assert_eq!(attr(&span.attributes, "my.span.attr"), &s("some value"));
    assert_eq!(span.status, None);
}

#[test]
fn example_logs_with_every_attribute_kind() {
    let req = decode_logs(&fixture("logs.json")).unwrap();
    let sl = &req.resource_logs[0].scope_logs[0];
    assert_eq!(sl.scope.as_ref().unwrap().name, "my.library");
    let log = &sl.log_records[0];
    assert_eq!(log.time_unix_nano, 1_544_712_660_300_000_000);
    assert_eq!(log.observed_time_unix_nano, 1_544_712_660_300_000_000);
    assert_eq!(log.severity_number, 10);
    assert_eq!(log.severity_text, "Information");
    assert_eq!(log.trace_id, hex("5b8efff798038103d269b633813fc60c"));
    assert_eq!(log.span_id, hex("eee19b7ec3c1b174"));
    assert_eq!(
        log.body.as_ref().unwrap().value,
        Some(s("Example log record"))
    );
    let a = &log.attributes;
    assert_eq!(attr(a, "string.attribute"), &s("some string"));
    assert_eq!(attr(a, "boolean.attribute"), &V::BoolValue(true));
    assert_eq!(attr(a, "int.attribute"), &V::IntValue(10));
    assert_eq!(attr(a, "double.attribute"), &V::DoubleValue(637.704));
    let V::ArrayValue(arr) = attr(a, "array.attribute") else {
        panic!("not an array");
    };
    let items: Vec<_> = arr
        .values
        .iter()
        .map(|v| v.value.clone().unwrap())
        .collect();
    assert_eq!(items, vec![s("many"), s("values")]);
    let V::KvlistValue(map) = attr(a, "map.attribute") else {
        panic!("not a kvlist");
    };
    assert_eq!(attr(&map.values, "some.map.key"), &s("some value"));
}

#[test]
fn example_events_is_a_logs_request_with_an_event_name() {
    let req = decode_logs(&fixture("events.json")).unwrap();
    let log = &req.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(log.event_name, "browser.page_view");
    assert_eq!(log.severity_number, 9);
    assert_eq!(
        attr(&log.attributes, "event.attribute"),
        &s("some event attribute")
    );
    let Some(V::KvlistValue(body)) = log.body.as_ref().and_then(|b| b.value.as_ref()) else {
        panic!("body is not a kvlist");
    };
    // `"intValue": "0"` is set, not absent.
    assert_eq!(attr(&body.values, "type"), &V::IntValue(0));
    assert_eq!(
        attr(&body.values, "title"),
        &s("Free Online GUID Generator")
    );
    assert!(log.trace_id.is_empty());
}

#[test]
fn example_metrics_of_every_kind() {
    let req = decode_metrics(&fixture("metrics.json")).unwrap();
    let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
    assert_eq!(metrics.len(), 4);

    assert_eq!(metrics[0].name, "my.counter");
    assert_eq!(metrics[0].description, "I am a Counter");
    let Some(Data::Sum(sum)) = &metrics[0].data else {
        panic!("not a sum");
    };
    assert_eq!(sum.aggregation_temporality, 1);
    assert!(sum.is_monotonic);
    let p = &sum.data_points[0];
    assert_eq!(p.value, Some(number_data_point::Value::AsDouble(5.0)));
    assert_eq!(p.start_time_unix_nano, 1_544_712_660_300_000_000);
    assert_eq!(attr(&p.attributes, "my.counter.attr"), &s("some value"));

    let Some(Data::Gauge(gauge)) = &metrics[1].data else {
        panic!("not a gauge");
    };
    assert_eq!(
        gauge.data_points[0].value,
        Some(number_data_point::Value::AsDouble(10.0))
    );

    let Some(Data::Histogram(h)) = &metrics[2].data else {
        panic!("not a histogram");
    };
    let p = &h.data_points[0];
    assert_eq!(p.count, 2);
    assert_eq!(p.sum, Some(2.0));
    assert_eq!(p.bucket_counts, vec![1, 1]);
    assert_eq!(p.explicit_bounds, vec![1.0]);
    assert_eq!((p.min, p.max), (Some(0.0), Some(2.0)));

    let Some(Data::ExponentialHistogram(e)) = &metrics[3].data else {
        panic!("not an exponential histogram");
    };
    let p = &e.data_points[0];
    assert_eq!((p.count, p.zero_count, p.scale), (3, 1, 0));
    assert_eq!(p.sum, Some(10.0));
    let pos = p.positive.as_ref().unwrap();
    assert_eq!((pos.offset, pos.bucket_counts.clone()), (1, vec![0, 2]));
    assert_eq!(p.negative, None);
    assert_eq!(p.max, Some(5.0));
}

#[test]
fn node_sdk_traces() {
    let req = decode_traces(&fixture("node_http_traces.json")).unwrap();
    let rs = &req.resource_spans[0];
    let attrs = &rs.resource.as_ref().unwrap().attributes;
    assert_eq!(attr(attrs, "service.name"), &s("node-peer-check"));
    // The Node exporter writes intValue as a JSON number.
    assert_eq!(attr(attrs, "process.pid"), &V::IntValue(19984));
    let V::ArrayValue(args) = attr(attrs, "process.command_args") else {
        panic!("not an array");
    };
    assert_eq!(args.values[1].value, Some(s("/tmp/peers/node/emit.js")));

    let spans = &rs.scope_spans[0].spans;
    assert_eq!(spans.len(), 2);
    let (child, root) = (&spans[0], &spans[1]);
    assert_eq!(child.name, "node-child");
    assert_eq!(child.trace_id, hex("a0306d84cd1772b4240d26924bff3d45"));
    assert_eq!(child.span_id, hex("59fb566c03382022"));
    assert_eq!(child.parent_span_id, root.span_id);
    assert_eq!(child.kind, 1);
    assert_eq!(child.flags, 257);
    assert_eq!(child.end_time_unix_nano, 1_795_335_178_614_077_631);
    assert_eq!(child.status.as_ref().map(|s| s.code), Some(0));
    assert!(root.parent_span_id.is_empty());
    assert_eq!(root.name, "node-root");
}

#[test]
fn node_sdk_logs() {
    let req = decode_logs(&fixture("node_http_logs.json")).unwrap();
    let log = &req.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(log.body.as_ref().unwrap().value, Some(s("hello from node")));
    assert_eq!(log.severity_text, "INFO");
    assert_eq!(log.severity_number, 0);
    assert_eq!(log.flags, 1);
    assert_eq!(log.time_unix_nano, 1_795_335_178_613_000_000);
    assert_eq!(log.trace_id, hex("a0306d84cd1772b4240d26924bff3d45"));
    assert_eq!(log.span_id, hex("59fb566c03382022"));
    assert_eq!(attr(&log.attributes, "user.id"), &s("7"));
}

#[test]
fn node_sdk_metrics() {
    let req = decode_metrics(&fixture("node_http_metrics.json")).unwrap();
    let sm = &req.resource_metrics[0].scope_metrics[0];
    assert_eq!(sm.scope.as_ref().unwrap().name, "node-peer-check");
    let m = &sm.metrics[0];
    assert_eq!(m.name, "node_requests_total");
    let Some(Data::Sum(sum)) = &m.data else {
        panic!("not a sum");
    };
    assert_eq!(sum.aggregation_temporality, 2);
    assert!(sum.is_monotonic);
    let p = &sum.data_points[0];
    assert_eq!(p.value, Some(number_data_point::Value::AsDouble(5.0)));
    assert_eq!(p.time_unix_nano, 1_795_335_178_619_000_000);
    assert_eq!(attr(&p.attributes, "route"), &s("/x"));
}

// ---------------------------------------------------------------------------------------------
// Decoder leniencies

#[test]
fn hex_ids_in_either_case_and_empty() {
    let upper = one_span(
        json!({"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174"}),
    );
    let lower = one_span(
        json!({"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174"}),
    );
    assert_eq!(upper.trace_id, lower.trace_id);
    assert_eq!(upper.span_id, hex("eee19b7ec3c1b174"));
    let empty = one_span(json!({"traceId": "", "parentSpanId": ""}));
    assert!(empty.trace_id.is_empty() && empty.parent_span_id.is_empty());
    // Lengths are not checked here: that is validation's job.
    assert_eq!(
        one_span(json!({"traceId": "abcd"})).trace_id,
        vec![0xab, 0xcd]
    );
}

#[test]
fn int64_as_string_or_number() {
    let a = one_span(
        json!({"startTimeUnixNano": "1544712660000000000", "endTimeUnixNano": 1544712661000000000u64}),
    );
    assert_eq!(a.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(a.end_time_unix_nano, 1_544_712_661_000_000_000);
    let b = one_span(
        json!({"startTimeUnixNano": 18446744073709551615u64, "droppedAttributesCount": "3",
        "attributes": [{"key": "a", "value": {"intValue": -5}}, {"key": "b", "value": {"intValue": "-9223372036854775808"}}]}),
    );
    assert_eq!(b.start_time_unix_nano, u64::MAX);
    assert_eq!(b.dropped_attributes_count, 3);
    assert_eq!(attr(&b.attributes, "a"), &V::IntValue(-5));
    assert_eq!(attr(&b.attributes, "b"), &V::IntValue(i64::MIN));

    let m = first_metric(json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{
        "histogram": {"dataPoints": [{"count": 3, "bucketCounts": [1, "2"], "explicitBounds": [0.5]}]}
    }]}]}]}));
    let Some(Data::Histogram(h)) = m.data else {
        panic!()
    };
    assert_eq!(h.data_points[0].count, 3);
    assert_eq!(h.data_points[0].bucket_counts, vec![1, 2]);
}

#[test]
fn doubles_accept_special_strings() {
    let m = first_metric(json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{
        "gauge": {"dataPoints": [{"asDouble": "NaN"}, {"asDouble": "Infinity"}, {"asDouble": "-Infinity"}, {"asDouble": "2.5"}, {"asInt": "7"}]}
    }]}]}]}));
    let Some(Data::Gauge(g)) = m.data else {
        panic!()
    };
    let vals: Vec<_> = g.data_points.iter().map(|p| p.value.unwrap()).collect();
    use number_data_point::Value::*;
    assert!(matches!(vals[0], AsDouble(x) if x.is_nan()));
    assert_eq!(
        vals[1..],
        [
            AsDouble(f64::INFINITY),
            AsDouble(f64::NEG_INFINITY),
            AsDouble(2.5),
            AsInt(7)
        ]
    );
}

#[test]
fn enums_as_integers_or_names() {
    let by_int = one_span(json!({"kind": 3, "status": {"code": 2, "message": "boom"}}));
    let by_name = one_span(
        json!({"kind": "SPAN_KIND_CLIENT", "status": {"code": "STATUS_CODE_ERROR", "message": "boom"}}),
    );
    assert_eq!(by_int, by_name);
    assert_eq!(by_name.kind, 3);
    assert_eq!(by_name.status.unwrap().code, 2);

    let log = first_log(
        json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"severityNumber": "SEVERITY_NUMBER_WARN"}]}]}]}),
    );
    assert_eq!(log.severity_number, 13);

    let m = first_metric(json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{
        "sum": {"aggregationTemporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
                "dataPoints": [{"flags": "DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK"}, {"flags": 1}]}
    }]}]}]}));
    let Some(Data::Sum(sum)) = m.data else {
        panic!()
    };
    assert_eq!(sum.aggregation_temporality, 2);
    assert_eq!(sum.data_points[0].flags, 1);
    assert_eq!(sum.data_points[1].flags, 1);
}

#[test]
fn unknown_fields_are_ignored_and_null_means_default() {
    let span = one_span(json!({
        "name": "n", "futureField": {"deep": [1, 2, {"x": null}]}, "kind": null, "status": null,
        "attributes": [{"key": "k", "value": {"stringValue": "v"}, "extra": true}],
        "events": null, "links": [{"spanId": "0102030405060708", "whatever": "x"}]
    }));
    assert_eq!(span.name, "n");
    assert_eq!(span.kind, 0);
    assert_eq!(span.status, None);
    assert!(span.events.is_empty());
    assert_eq!(attr(&span.attributes, "k"), &s("v"));
    assert_eq!(span.links[0].span_id, hex("0102030405060708"));
    let req = decode_traces(br#"{"resourceSpans": null, "other": 1}"#).unwrap();
    assert!(req.resource_spans.is_empty());
}

#[test]
fn snake_case_names_are_accepted() {
    let body = r#"{"resource_spans": [{"scope_spans": [{"spans": [{
        "trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174",
        "parent_span_id": "eee19b7ec3c1b173", "start_time_unix_nano": "5", "trace_state": "a=b",
        "dropped_attributes_count": 2,
        "attributes": [{"key": "k", "value": {"string_value": "v"}},
                       {"key": "m", "value": {"kvlist_value": {"values": [{"key": "i", "value": {"int_value": 1}}]}}}]
    }]}]}]}"#;
    let req = decode_traces(body.as_bytes()).unwrap();
    let span = &req.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.trace_id, hex("5b8efff798038103d269b633813fc60c"));
    assert_eq!(span.parent_span_id, hex("eee19b7ec3c1b173"));
    assert_eq!(span.start_time_unix_nano, 5);
    assert_eq!(span.trace_state, "a=b");
    assert_eq!(span.dropped_attributes_count, 2);
    assert_eq!(attr(&span.attributes, "k"), &s("v"));

    let log = first_log(json!({"resource_logs": [{"scope_logs": [{"log_records": [{
        "observed_time_unix_nano": "9", "severity_number": 17, "event_name": "e"}]}]}]}));
    assert_eq!((log.observed_time_unix_nano, log.severity_number), (9, 17));
    assert_eq!(log.event_name, "e");

    let m = first_metric(
        json!({"resource_metrics": [{"scope_metrics": [{"metrics": [{
        "exponential_histogram": {"aggregation_temporality": 1, "data_points": [{"zero_count": "4"}]}}]}]}]}),
    );
    let Some(Data::ExponentialHistogram(e)) = m.data else {
        panic!()
    };
    assert_eq!(e.data_points[0].zero_count, 4);
}

#[test]
fn bytes_values_are_base64() {
    let span = one_span(json!({"attributes": [
        {"key": "std", "value": {"bytesValue": "3q2+7w=="}},
        {"key": "url", "value": {"bytesValue": "3q2-7w"}},
        {"key": "strindex", "value": {"stringValueStrindex": 4}},
        {"key": "empty", "value": {}}
    ]}));
    assert_eq!(
        attr(&span.attributes, "std"),
        &V::BytesValue(vec![0xde, 0xad, 0xbe, 0xef])
    );
    assert_eq!(
        attr(&span.attributes, "url"),
        &V::BytesValue(vec![0xde, 0xad, 0xbe, 0xef])
    );
    // Profiles-only string-table references are treated as absent.
    for key in ["strindex", "empty"] {
        let kv = span.attributes.iter().find(|kv| kv.key == key).unwrap();
        assert_eq!(kv.value, Some(AnyValue { value: None }));
    }
}

// ---------------------------------------------------------------------------------------------
// Decoder errors

#[test]
fn bad_hex_names_its_path() {
    let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": []}, {"spans": [{}, {}, {}, {"traceId": "5b8efff798038103d269b633813fc6zz"}]}]}]});
    let err = trace_err(&body.to_string());
    assert_eq!(
        err,
        "resourceSpans[0].scopeSpans[1].spans[3].traceId: invalid hex character 'z' at position 30"
    );
    let err = span_err(json!({"spanId": "abc"}));
    assert_eq!(
        err,
        "resourceSpans[0].scopeSpans[0].spans[0].spanId: odd number of hex characters (3)"
    );
    let err = span_err(json!({"links": [{"traceId": "AAAAAAAAAADW6TKdZ7YUag=="}]}));
    assert!(
        err.starts_with(
            "resourceSpans[0].scopeSpans[0].spans[0].links[0].traceId: invalid hex character"
        ),
        "{err}"
    );
    let body = json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"gauge": {"dataPoints": [{"exemplars": [{"spanId": "xy"}]}]}}]}]}]});
    let err = decode_metrics(body.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].exemplars[0].spanId: invalid hex character 'x' at position 0"
    );
}

#[test]
fn wrong_types_name_their_path() {
    assert_eq!(
        span_err(json!({"name": 5})),
        "resourceSpans[0].scopeSpans[0].spans[0].name: expected a string, got number 5"
    );
    assert_eq!(
        span_err(json!({"startTimeUnixNano": true})),
        "resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: expected uint64 (a number or a string), got boolean true"
    );
    assert_eq!(
        span_err(json!({"startTimeUnixNano": "soon"})),
        "resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: expected an integer (uint64), got string \"soon\""
    );
    assert_eq!(
        span_err(json!({"startTimeUnixNano": -1})),
        "resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: -1 is out of range for uint64"
    );
    assert_eq!(
        span_err(json!({"attributes": {"key": "k"}})),
        "resourceSpans[0].scopeSpans[0].spans[0].attributes: expected an array, got an object"
    );
    assert_eq!(
        span_err(json!({"attributes": [{"key": "k", "value": {"boolValue": "yes"}}]})),
        "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.boolValue: expected a boolean, got string \"yes\""
    );
    assert_eq!(
        span_err(json!({"kind": "SPAN_KIND_SIDEWAYS"})),
        "resourceSpans[0].scopeSpans[0].spans[0].kind: unknown SpanKind name \"SPAN_KIND_SIDEWAYS\""
    );
    assert_eq!(
        span_err(json!({"attributes": [{"key": "b", "value": {"bytesValue": "!!"}}]}))
            .split(": invalid base64")
            .next()
            .unwrap(),
        "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.bytesValue"
    );
    // The path spells keys as the sender did.
    assert_eq!(
        trace_err(r#"{"resource_spans": [{"scope_spans": [{"spans": [{"span_id": 1}]}]}]}"#),
        "resource_spans[0].scope_spans[0].spans[0].span_id: expected a hex string, got number 1"
    );
    assert_eq!(trace_err("[]"), "<root>: expected an object, got an array");
    assert_eq!(
        trace_err(r#"{"resourceSpans": [7]}"#),
        "resourceSpans[0]: expected an object, got number 7"
    );
}

#[test]
fn syntax_errors_give_their_position() {
    let body = b"{\"resourceSpans\": [\n  {\"scopeSpans\": [}\n]}";
    let err = decode_traces(body).unwrap_err();
    let JsonDecodeError::Syntax {
        line,
        column,
        offset,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!((*line, *column), (2, 19));
    assert_eq!(body[*offset], b'}');
    assert_eq!(
        err.to_string(),
        "invalid JSON at line 2, column 19 (byte 38): expected value"
    );

    let err = decode_logs(b"").unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid JSON at line 1, column 0 (byte 0): EOF while parsing a value"
    );
    let err = decode_metrics(br#"{"resourceMetrics": [}"#)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("invalid JSON at line 1, column 22 (byte 21)"),
        "{err}"
    );
}
