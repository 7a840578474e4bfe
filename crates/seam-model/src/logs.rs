//! Log entries, grouped into streams by their labels, and the mapping from OTLP logs that Loki uses.

use crate::attributes::{to_json, to_text};
use crate::labels::{sanitize_label_name, Label, Labels};
use crate::otlp::collector::logs::v1::ExportLogsServiceRequest;
use crate::otlp::common::v1::any_value::Value;

/// One log line with its time and per-entry metadata.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogEntry {
    /// Time of the entry in nanoseconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub timestamp_ns: i64,
    /// The log line.
    #[prost(string, tag = "2")]
    pub line: String,
    /// Loki structured metadata: per-entry labels that do not define the stream.
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<Label>,
    /// OTLP severity number (0 when unknown).
    #[prost(int32, tag = "4")]
    pub severity_number: i32,
    /// OTLP severity text, or the level a shipper sent.
    #[prost(string, tag = "5")]
    pub severity_text: String,
    /// The trace id the entry belongs to (16 bytes), or empty.
    #[prost(bytes = "vec", tag = "6")]
    pub trace_id: Vec<u8>,
    /// The span id the entry belongs to (8 bytes), or empty.
    #[prost(bytes = "vec", tag = "7")]
    pub span_id: Vec<u8>,
}

/// The entries of one stream, identified by its label set.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogStream {
    /// The stream labels, sorted by name (see [`Labels`]).
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// The entries, in any time order.
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<LogEntry>,
}

/// A write of log entries.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogBatch {
    /// The streams written.
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<LogStream>,
}

impl LogStream {
    /// The stream's labels as a [`Labels`] set.
    pub fn label_set(&self) -> Labels {
        Labels::from_labels(self.labels.clone())
    }
}

impl LogBatch {
    /// The number of entries over all streams.
    pub fn entry_count(&self) -> usize {
        self.streams.iter().map(|s| s.entries.len()).sum()
    }
}

/// Resource attributes that become stream labels, as in Loki's default OTLP configuration.
pub const DEFAULT_STREAM_RESOURCE_ATTRIBUTES: &[&str] = &[
    "service.name",
    "service.namespace",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "cloud.region",
    "cloud.availability_zone",
    "k8s.cluster.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
    "container.name",
    "k8s.replicaset.name",
    "k8s.deployment.name",
    "k8s.statefulset.name",
    "k8s.daemonset.name",
    "k8s.cronjob.name",
    "k8s.job.name",
];

/// What converting an OTLP logs request produced.
#[derive(Debug, Default, PartialEq)]
pub struct OtlpLogsConversion {
    /// The accepted entries.
    pub batch: LogBatch,
    /// How many records were refused as individually invalid.
    pub rejected: u64,
    /// The first reason a record was refused, naming the record.
    pub first_error: Option<String>,
}

/// Maps OTLP logs to Loki streams the way Loki's OTLP endpoint does: the default resource attributes
/// (dots turned to underscores) form the stream labels, `service_name` falls back to
/// `unknown_service`, and everything else (other resource attributes, scope name and version,
/// record attributes, trace and span ids, severity) becomes structured metadata.
/// Records with a trace id other than 16 bytes or a span id other than 8 are refused.
pub fn from_otlp(req: &ExportLogsServiceRequest, now_ns: i64) -> OtlpLogsConversion {
    let mut out = OtlpLogsConversion::default();
    let mut streams: std::collections::HashMap<Labels, usize> = std::collections::HashMap::new();
    for (ri, rl) in req.resource_logs.iter().enumerate() {
        let res_attrs = rl
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or(&[]);
        let mut stream_labels = Vec::new();
        let mut resource_metadata = Vec::new();
        for kv in res_attrs {
            let Some(v) = kv.value.as_ref() else { continue };
            let label = Label::new(sanitize_label_name(&kv.key), to_text(v));
            if DEFAULT_STREAM_RESOURCE_ATTRIBUTES.contains(&kv.key.as_str()) {
                stream_labels.push(label);
            } else {
                resource_metadata.push(label);
            }
        }
        if !stream_labels.iter().any(|l| l.name == "service_name") {
            stream_labels.push(Label::new("service_name", "unknown_service"));
        }
        let labels = Labels::from_labels(stream_labels);
        for (si, sl) in rl.scope_logs.iter().enumerate() {
            let mut scope_metadata = Vec::new();
            if let Some(scope) = &sl.scope {
                if !scope.name.is_empty() {
                    scope_metadata.push(Label::new("scope_name", scope.name.clone()));
                }
                if !scope.version.is_empty() {
                    scope_metadata.push(Label::new("scope_version", scope.version.clone()));
                }
                for kv in &scope.attributes {
                    if let Some(v) = &kv.value {
                        scope_metadata.push(Label::new(sanitize_label_name(&kv.key), to_text(v)));
                    }
                }
            }
            for (li, rec) in sl.log_records.iter().enumerate() {
                let bad = if !rec.trace_id.is_empty() && rec.trace_id.len() != 16 {
                    Some(format!(
                        "trace id must be 16 bytes, got {}",
                        rec.trace_id.len()
                    ))
                } else if !rec.span_id.is_empty() && rec.span_id.len() != 8 {
                    Some(format!(
                        "span id must be 8 bytes, got {}",
                        rec.span_id.len()
                    ))
                } else {
                    None
                };
                if let Some(reason) = bad {
                    out.rejected += 1;
                    out.first_error.get_or_insert_with(|| {
                        format!("resourceLogs[{ri}].scopeLogs[{si}].logRecords[{li}]: {reason}")
                    });
                    continue;
                }
                let timestamp_ns = [rec.time_unix_nano, rec.observed_time_unix_nano]
                    .into_iter()
                    .find(|t| *t != 0)
                    .map(|t| t.min(i64::MAX as u64) as i64)
                    .unwrap_or(now_ns);
                let line = match rec.body.as_ref().and_then(|b| b.value.as_ref()) {
                    None => String::new(),
                    Some(Value::StringValue(s)) => s.clone(),
                    Some(_) => to_json(rec.body.as_ref().unwrap()).to_string(),
                };
                let mut md = resource_metadata.clone();
                md.extend(scope_metadata.iter().cloned());
                for kv in &rec.attributes {
                    if let Some(v) = &kv.value {
                        md.push(Label::new(sanitize_label_name(&kv.key), to_text(v)));
                    }
                }
                if !rec.trace_id.is_empty() {
                    md.push(Label::new("trace_id", hex::encode(&rec.trace_id)));
                }
                if !rec.span_id.is_empty() {
                    md.push(Label::new("span_id", hex::encode(&rec.span_id)));
                }
                if !rec.severity_text.is_empty() {
                    md.push(Label::new("severity_text", rec.severity_text.clone()));
                }
                if rec.severity_number != 0 {
                    md.push(Label::new(
                        "severity_number",
                        rec.severity_number.to_string(),
                    ));
                }
                if rec.flags != 0 {
                    md.push(Label::new("flags", rec.flags.to_string()));
                }
                let entry = LogEntry {
                    timestamp_ns,
                    line,
                    structured_metadata: Labels::from_labels(md).into_vec(),
                    severity_number: rec.severity_number,
                    severity_text: rec.severity_text.clone(),
                    trace_id: rec.trace_id.clone(),
                    span_id: rec.span_id.clone(),
                };
                let idx = *streams.entry(labels.clone()).or_insert_with(|| {
                    out.batch.streams.push(LogStream {
                        labels: labels.as_slice().to_vec(),
                        entries: Vec::new(),
                    });
                    out.batch.streams.len() - 1
                });
                out.batch.streams[idx].entries.push(entry);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::string_kv;
    use crate::otlp::common::v1::AnyValue;
    use crate::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use crate::otlp::resource::v1::Resource;

    fn record(trace_id: Vec<u8>) -> LogRecord {
        LogRecord {
            time_unix_nano: 5,
            body: Some(AnyValue {
                value: Some(Value::StringValue("hello".into())),
            }),
            attributes: vec![string_kv("http.method", "GET")],
            trace_id,
            severity_text: "INFO".into(),
            severity_number: 9,
            ..Default::default()
        }
    }

    #[test]
    fn maps_like_loki() {
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        string_kv("service.name", "api"),
                        string_kv("host.name", "h1"),
                    ],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![record(vec![1; 16]), record(vec![1; 3])],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let out = from_otlp(&req, 99);
        assert_eq!(out.rejected, 1);
        assert!(out
            .first_error
            .unwrap()
            .contains("logRecords[1]: trace id must be 16 bytes, got 3"));
        let s = &out.batch.streams[0];
        assert_eq!(
            Labels::from_labels(s.labels.clone()).to_string(),
            r#"{service_name="api"}"#
        );
        let e = &s.entries[0];
        assert_eq!(e.line, "hello");
        assert_eq!(e.timestamp_ns, 5);
        let md = Labels::from_labels(e.structured_metadata.clone());
        assert_eq!(md.get("host_name"), Some("h1"));
        assert_eq!(md.get("http_method"), Some("GET"));
        assert_eq!(md.get("trace_id"), Some("01010101010101010101010101010101"));
        assert_eq!(md.get("severity_text"), Some("INFO"));
    }
}
