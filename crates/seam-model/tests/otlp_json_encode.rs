//! OTLP/JSON encoding: the two styles, partial-success responses, and round trips.

mod common;

use seam_model::otlp::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use seam_model::otlp::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use seam_model::otlp::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use seam_model::otlp::common::v1::any_value::Value as V;
use seam_model::otlp::metrics::v1::{exemplar, metric::Data};
use seam_model::otlp_json::*;
use serde_json::json;

use common::{attr, fixture, hex, one_span, s};

// ---------------------------------------------------------------------------------------------
// Helpers

fn traces_body(req: &ExportTraceServiceRequest, style: JsonStyle) -> Vec<u8> {
    json!({"resourceSpans": encode_resource_spans(&req.resource_spans, style)})
        .to_string()
        .into_bytes()
}

fn logs_body(req: &ExportLogsServiceRequest) -> Vec<u8> {
    json!({"resourceLogs": encode_resource_logs(&req.resource_logs, JsonStyle::Otlp)})
        .to_string()
        .into_bytes()
}

fn metrics_body(req: &ExportMetricsServiceRequest) -> Vec<u8> {
    json!({"resourceMetrics": encode_resource_metrics(&req.resource_metrics, JsonStyle::Otlp)})
        .to_string()
        .into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Encoding

#[test]
fn otlp_style_is_the_spec_form() {
    let req = decode_traces(&fixture("trace.json")).unwrap();
    let mut rs = req.resource_spans;
    rs[0].scope_spans[0].spans[0].status = Some(Default::default());
    let out = encode_resource_spans(&rs, JsonStyle::Otlp);
    assert_eq!(
        out[0]["scopeSpans"][0]["spans"][0],
        json!({
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "eee19b7ec3c1b174",
            "parentSpanId": "eee19b7ec3c1b173",
            "name": "I'm a server span",
            "startTimeUnixNano": "1544712660000000000",
            "endTimeUnixNano": "1544712661000000000",
            "kind": 2,
            "attributes": [{"key": "my.span.attr", "value": {"stringValue": "some value"}}],
            "status": {}
        })
    );
    assert_eq!(
        out[0]["resource"],
        json!({"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]})
    );
}

#[test]
fn tempo_style_uses_base64_ids_and_enum_names() {
    let span = one_span(json!({
        "traceId": "00000000000000000000000000000001", "spanId": "0000000000001234",
        "name": "GET /", "kind": 2, "startTimeUnixNano": "10", "status": {"code": 2, "message": "boom"},
        "links": [{"traceId": "00000000000000000000000000000002", "spanId": "0000000000000001"}],
        "attributes": [{"key": "n", "value": {"intValue": 3}}]
    }));
    let rs = [seam_model::otlp::trace::v1::ResourceSpans {
        scope_spans: vec![seam_model::otlp::trace::v1::ScopeSpans {
            spans: vec![span],
            ..Default::default()
        }],
        ..Default::default()
    }];
    let out = encode_resource_spans(&rs, JsonStyle::Tempo);
    assert_eq!(
        out,
        json!([{"scopeSpans": [{"spans": [{
            "traceId": "AAAAAAAAAAAAAAAAAAAAAQ==",
            "spanId": "AAAAAAAAEjQ=",
            "name": "GET /",
            "kind": "SPAN_KIND_SERVER",
            "startTimeUnixNano": "10",
            "attributes": [{"key": "n", "value": {"intValue": "3"}}],
            "links": [{"traceId": "AAAAAAAAAAAAAAAAAAAAAg==", "spanId": "AAAAAAAAAAE="}],
            "status": {"code": "STATUS_CODE_ERROR", "message": "boom"}
        }]}]}])
    );
}

#[test]
fn special_doubles_are_written_as_strings() {
    let body = json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{
        "gauge": {"dataPoints": [{"asDouble": "NaN"}, {"asDouble": "-Infinity"}, {"asDouble": 0}]}}]}]}]});
    let req = decode_metrics(body.to_string().as_bytes()).unwrap();
    let out = encode_resource_metrics(&req.resource_metrics, JsonStyle::Otlp);
    assert_eq!(
        out[0]["scopeMetrics"][0]["metrics"][0]["gauge"]["dataPoints"],
        json!([{"asDouble": "NaN"}, {"asDouble": "-Infinity"}, {"asDouble": 0.0}])
    );
}

#[test]
fn partial_success_responses() {
    assert_eq!(
        encode_traces_response(&ExportTraceServiceResponse::default()),
        json!({})
    );
    let zero = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess::default()),
    };
    assert_eq!(encode_traces_response(&zero), json!({}));
    let rejected = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: 3,
            error_message: "bad ids".into(),
        }),
    };
    assert_eq!(
        encode_traces_response(&rejected),
        json!({"partialSuccess": {"rejectedSpans": "3", "errorMessage": "bad ids"}})
    );
    let logs = ExportLogsServiceResponse {
        partial_success: Some(ExportLogsPartialSuccess {
            rejected_log_records: 2,
            error_message: String::new(),
        }),
    };
    assert_eq!(
        encode_logs_response(&logs),
        json!({"partialSuccess": {"rejectedLogRecords": "2"}})
    );
    let warning = ExportMetricsServiceResponse {
        partial_success: Some(ExportMetricsPartialSuccess {
            rejected_data_points: 0,
            error_message: "slow down".into(),
        }),
    };
    assert_eq!(
        encode_metrics_response(&warning),
        json!({"partialSuccess": {"errorMessage": "slow down"}})
    );
    let metrics = ExportMetricsServiceResponse {
        partial_success: Some(ExportMetricsPartialSuccess {
            rejected_data_points: 5,
            error_message: "x".into(),
        }),
    };
    assert_eq!(
        encode_metrics_response(&metrics),
        json!({"partialSuccess": {"rejectedDataPoints": "5", "errorMessage": "x"}})
    );
}

// ---------------------------------------------------------------------------------------------
// Round trips: decode -> encode(Otlp) -> decode gives the same message.

const FULL_TRACES: &str = r#"{"resourceSpans": [{
  "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}], "droppedAttributesCount": 1,
               "entityRefs": [{"schemaUrl": "u", "type": "service", "idKeys": ["service.name"], "descriptionKeys": ["d"]}]},
  "schemaUrl": "https://opentelemetry.io/schemas/1.21.0",
  "scopeSpans": [{
    "scope": {"name": "lib", "version": "2", "attributes": [{"key": "a", "value": {"boolValue": false}}], "droppedAttributesCount": 4},
    "schemaUrl": "s",
    "spans": [{
      "traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "1112131415161718", "parentSpanId": "2122232425262728",
      "traceState": "k=v", "flags": 769, "name": "op", "kind": 5,
      "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000000000001",
      "attributes": [
        {"key": "s", "value": {"stringValue": ""}}, {"key": "b", "value": {"boolValue": true}},
        {"key": "i", "value": {"intValue": "-42"}}, {"key": "d", "value": {"doubleValue": -0.5}},
        {"key": "z", "value": {"doubleValue": 0}}, {"key": "y", "value": {"bytesValue": "AAE="}},
        {"key": "arr", "value": {"arrayValue": {"values": [{"intValue": 1}, {"kvlistValue": {"values": [{"key": "n", "value": {}}]}}, {}]}}},
        {"key": "empty", "value": {"arrayValue": {}}}, {"key": "novalue"}
      ],
      "droppedAttributesCount": 1,
      "events": [{"timeUnixNano": "1700000000000000000", "name": "exception", "attributes": [{"key": "exception.message", "value": {"stringValue": "boom"}}], "droppedAttributesCount": 2}],
      "droppedEventsCount": 3,
      "links": [{"traceId": "ffffffffffffffffffffffffffffffff", "spanId": "ffffffffffffffff", "traceState": "x=y",
                 "attributes": [{"key": "l", "value": {"intValue": 0}}], "droppedAttributesCount": 1, "flags": 256}],
      "droppedLinksCount": 4,
      "status": {"code": 2, "message": "failed"}
    }, {"traceId": "", "name": "", "status": {}}]
  }, {}]
}, {}]}"#;

const FULL_LOGS: &str = r#"{"resourceLogs": [{
  "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
  "schemaUrl": "r",
  "scopeLogs": [{"scope": {"name": "lib"}, "schemaUrl": "s", "logRecords": [{
    "timeUnixNano": "1", "observedTimeUnixNano": "2", "severityNumber": 17, "severityText": "ERROR",
    "body": {"kvlistValue": {"values": [{"key": "msg", "value": {"stringValue": "hi"}}]}},
    "attributes": [{"key": "k", "value": {"doubleValue": 1.25}}], "droppedAttributesCount": 3, "flags": 1,
    "traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "1112131415161718", "eventName": "ev"
  }, {"body": {}}]}]
}]}"#;

const FULL_METRICS: &str = r#"{"resourceMetrics": [{
  "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
  "schemaUrl": "r",
  "scopeMetrics": [{"scope": {"name": "lib"}, "schemaUrl": "s", "metrics": [
    {"name": "g", "description": "gauge", "unit": "ms", "metadata": [{"key": "m", "value": {"stringValue": "v"}}],
     "gauge": {"dataPoints": [{"asInt": "-3", "timeUnixNano": "5", "flags": 1,
        "exemplars": [{"filteredAttributes": [{"key": "f", "value": {"stringValue": "x"}}], "timeUnixNano": "4",
                       "traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "1112131415161718", "asInt": "9"},
                      {"asDouble": 0.5}, {}]}, {}]}},
    {"name": "s", "sum": {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": [{"asDouble": 0, "startTimeUnixNano": "1"}]}},
    {"name": "h", "histogram": {"aggregationTemporality": 1, "dataPoints": [{
        "attributes": [{"key": "a", "value": {"stringValue": "b"}}], "count": "6", "sum": 0, "bucketCounts": ["1", "2", "3"],
        "explicitBounds": [0.1, 1], "min": 0.05, "max": 0, "flags": 1, "exemplars": [{"asDouble": 0.7}]}]}},
    {"name": "e", "exponentialHistogram": {"aggregationTemporality": 2, "dataPoints": [{
        "count": "10", "sum": 12.5, "scale": -2, "zeroCount": "1", "zeroThreshold": 0.001,
        "positive": {"offset": -1, "bucketCounts": ["1", "0", "4"]}, "negative": {}, "min": -1, "max": 9}]}},
    {"name": "q", "summary": {"dataPoints": [{"count": "4", "sum": 10, "quantileValues": [{"quantile": 0, "value": 1}, {"quantile": 0.99, "value": 4}], "flags": 0}]}},
    {"name": "nodata"}
  ]}]
}]}"#;

#[test]
fn round_trip_traces() {
    for body in [
        fixture("trace.json"),
        fixture("node_http_traces.json"),
        FULL_TRACES.as_bytes().to_vec(),
    ] {
        let req = decode_traces(&body).unwrap();
        let again = decode_traces(&traces_body(&req, JsonStyle::Otlp)).unwrap();
        assert_eq!(again, req);
    }
    // The full example really does set every span field.
    let req = decode_traces(FULL_TRACES.as_bytes()).unwrap();
    let span = &req.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.flags, 769);
    assert_eq!(span.kind, 5);
    assert_eq!(span.events[0].dropped_attributes_count, 2);
    assert_eq!(span.links[0].flags, 256);
    assert_eq!(span.links[0].trace_id, vec![0xff; 16]);
    assert_eq!(
        (span.dropped_events_count, span.dropped_links_count),
        (3, 4)
    );
    assert_eq!(span.status.as_ref().unwrap().message, "failed");
    assert_eq!(attr(&span.attributes, "s"), &s(""));
    assert_eq!(attr(&span.attributes, "z"), &V::DoubleValue(0.0));
    let r = req.resource_spans[0].resource.as_ref().unwrap();
    assert_eq!(r.entity_refs[0].id_keys, vec!["service.name".to_string()]);
    assert_eq!(req.resource_spans.len(), 2);
}

#[test]
fn round_trip_logs() {
    for body in [
        fixture("logs.json"),
        fixture("events.json"),
        fixture("node_http_logs.json"),
        FULL_LOGS.as_bytes().to_vec(),
    ] {
        let req = decode_logs(&body).unwrap();
        assert_eq!(decode_logs(&logs_body(&req)).unwrap(), req);
    }
}

#[test]
fn round_trip_metrics() {
    for body in [
        fixture("metrics.json"),
        fixture("node_http_metrics.json"),
        FULL_METRICS.as_bytes().to_vec(),
    ] {
        let req = decode_metrics(&body).unwrap();
        assert_eq!(decode_metrics(&metrics_body(&req)).unwrap(), req);
    }
    let req = decode_metrics(FULL_METRICS.as_bytes()).unwrap();
    let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
    let Some(Data::Gauge(g)) = &metrics[0].data else {
        panic!()
    };
    let ex = &g.data_points[0].exemplars;
    assert_eq!(ex[0].value, Some(exemplar::Value::AsInt(9)));
    assert_eq!(ex[0].span_id, hex("1112131415161718"));
    assert_eq!(ex[1].value, Some(exemplar::Value::AsDouble(0.5)));
    let Some(Data::Histogram(h)) = &metrics[2].data else {
        panic!()
    };
    assert_eq!(h.data_points[0].max, Some(0.0));
    let Some(Data::ExponentialHistogram(e)) = &metrics[3].data else {
        panic!()
    };
    assert_eq!(e.data_points[0].scale, -2);
    assert_eq!(e.data_points[0].positive.as_ref().unwrap().offset, -1);
    assert_eq!(e.data_points[0].negative, Some(Default::default()));
    let Some(Data::Summary(q)) = &metrics[4].data else {
        panic!()
    };
    assert_eq!(q.data_points[0].quantile_values[1].quantile, 0.99);
    assert_eq!(metrics[5].data, None);
}

#[test]
fn encoding_is_stable_even_with_nan() {
    let body = json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{
        "histogram": {"dataPoints": [{"sum": "NaN", "explicitBounds": ["-Infinity", 0, "Infinity"]}]}}]}]}]});
    let req = decode_metrics(body.to_string().as_bytes()).unwrap();
    let once = encode_resource_metrics(&req.resource_metrics, JsonStyle::Otlp);
    let req2 = decode_metrics(&metrics_body(&req)).unwrap();
    let twice = encode_resource_metrics(&req2.resource_metrics, JsonStyle::Otlp);
    assert_eq!(once, twice);
    assert_eq!(
        once[0]["scopeMetrics"][0]["metrics"][0]["histogram"]["dataPoints"][0]["explicitBounds"],
        json!(["-Infinity", 0.0, "Infinity"])
    );
}
