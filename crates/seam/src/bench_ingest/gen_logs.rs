//! Log payloads: nginx-style access lines from the frontend and application lines from the other
//! services, in runs per pod as a log shipper sends them, some with trace context.

use std::collections::{BTreeMap, HashSet};

use rand::seq::IndexedRandom;
use rand::Rng;
use seam_model::attributes::{int_kv, string_kv};
use seam_model::otlp::collector::logs::v1::ExportLogsServiceRequest;
use seam_model::otlp::common::v1::{any_value, AnyValue};
use seam_model::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};

use super::payload::{
    client_ip, fill_route, needle, random_id, resource, status_code, PODS, SERVICES, USER_AGENTS,
};

const MONTHS: &[&str] = &[
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A request of `batch` log records, with the needles of every trace and span id in it.
pub fn request(
    rng: &mut impl Rng,
    batch: usize,
    now: u64,
) -> (ExportLogsServiceRequest, HashSet<u64>) {
    let mut groups: BTreeMap<(usize, usize), Vec<LogRecord>> = BTreeMap::new();
    let mut ids = HashSet::new();
    let mut count = 0;
    while count < batch {
        let svc = rng.random_range(0..SERVICES.len());
        let pod = rng.random_range(0..PODS);
        let n = rng.random_range(5..=60).min(batch - count);
        let mut t = now - rng.random_range(1_000_000_000..10_000_000_000u64);
        let records = groups.entry((svc, pod)).or_default();
        for _ in 0..n {
            t += rng.random_range(10_000..20_000_000u64);
            let mut r = if svc == 0 {
                access_line(rng, t)
            } else {
                app_line(rng, svc)
            };
            r.time_unix_nano = t;
            r.observed_time_unix_nano = t + rng.random_range(200_000..50_000_000u64);
            r.attributes.push(string_kv(
                "log.iostream",
                if r.severity_number >= SeverityNumber::Warn as i32 {
                    "stderr"
                } else {
                    "stdout"
                },
            ));
            r.attributes.push(string_kv(
                "log.file.path",
                &format!(
                    "/var/log/pods/shop_{}/{}/0.log",
                    super::payload::pod_name(svc, pod),
                    SERVICES[svc].name
                ),
            ));
            if rng.random_bool(0.4) {
                r.trace_id = random_id::<16>(rng).to_vec();
                r.span_id = random_id::<8>(rng).to_vec();
                r.flags = 1;
                ids.insert(needle(&r.trace_id));
                ids.insert(needle(&r.span_id));
            }
            records.push(r);
        }
        count += n;
    }
    let resource_logs = groups
        .into_iter()
        .map(|((svc, pod), log_records)| ResourceLogs {
            resource: Some(resource(svc, pod)),
            scope_logs: vec![ScopeLogs {
                scope: Some(seam_model::otlp::common::v1::InstrumentationScope {
                    name: "filelog".into(),
                    ..Default::default()
                }),
                log_records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        })
        .collect();
    (ExportLogsServiceRequest { resource_logs }, ids)
}

fn body(line: String) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(line)),
    })
}

fn severity(code: i64) -> (SeverityNumber, &'static str) {
    match code {
        500.. => (SeverityNumber::Error, "ERROR"),
        400.. => (SeverityNumber::Warn, "WARN"),
        _ => (SeverityNumber::Info, "INFO"),
    }
}

/// A frontend access line in nginx's combined format plus the request time.
fn access_line(rng: &mut impl Rng, t: u64) -> LogRecord {
    let (method, route) = *SERVICES[0].routes.choose(rng).expect("routes");
    let path = fill_route(route, rng);
    let code = status_code(rng);
    let ip = client_ip(rng);
    let bytes = rng.random_range(120..48_000);
    let rt = rng.random_range(0.001..1.2f64);
    let secs = t / 1_000_000_000;
    let (day, rem) = (secs / 86_400, secs % 86_400);
    let line = format!(
        "{ip} - - [{:02}/{}/2025:{:02}:{:02}:{:02} +0000] \"{method} {path} HTTP/1.1\" {code} {bytes} \"https://shop.example.com/\" \"{}\" rt={rt:.3} uct=\"0.000\" uht=\"{:.3}\" urt=\"{:.3}\"",
        1 + day % 28,
        MONTHS[(day / 28 % 12) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        USER_AGENTS.choose(rng).expect("agents"),
        rt * 0.9,
        rt * 0.95,
    );
    let (sev, text) = severity(code);
    LogRecord {
        severity_number: sev as i32,
        severity_text: text.into(),
        body: body(line),
        attributes: vec![
            string_kv("http.request.method", method),
            string_kv("url.path", &path),
            int_kv("http.response.status_code", code),
            string_kv("client.address", &ip),
            int_kv("http.response.body.size", bytes),
        ],
        ..Default::default()
    }
}

/// An application line: logfmt, with level and a few structured attributes.
fn app_line(rng: &mut impl Rng, svc: usize) -> LogRecord {
    let s = &SERVICES[svc];
    let roll = rng.random_range(0..100);
    let user = rng.random_range(10_000..999_999);
    let (sev, text, line, func) = match roll {
        0..10 => (
            SeverityNumber::Debug,
            "DEBUG",
            format!("level=debug msg=\"cache lookup\" key=\"{}:{:x}\" hit={}", s.name, rng.random::<u32>(), rng.random_bool(0.7)),
            "cache.get",
        ),
        10..18 => (
            SeverityNumber::Warn,
            "WARN",
            format!(
                "level=warn msg=\"slow downstream call\" peer={}.shop.svc duration_ms={} threshold_ms=250",
                SERVICES[rng.random_range(0..SERVICES.len())].name,
                rng.random_range(250..3000)
            ),
            "client.call",
        ),
        18..22 => (
            SeverityNumber::Error,
            "ERROR",
            format!(
                "level=error msg=\"request failed\" user_id={user} err=\"context deadline exceeded\" retry={} attempt={}",
                rng.random_bool(0.5),
                rng.random_range(1..4)
            ),
            "handler.serve",
        ),
        22..60 => {
            let (method, route) = *s.routes.choose(rng).expect("routes");
            (
                SeverityNumber::Info,
                "INFO",
                format!(
                    "level=info msg=\"request completed\" method={method} path={} status={} duration_ms={:.2} user_id={user}",
                    fill_route(route, rng),
                    status_code(rng),
                    rng.random_range(0.3..400.0f64)
                ),
                "handler.serve",
            )
        }
        60..80 => (
            SeverityNumber::Info,
            "INFO",
            format!(
                "level=info msg=\"order event processed\" order_id=ord_{:016x} user_id={user} items={} total_cents={}",
                rng.random::<u64>(),
                rng.random_range(1..9),
                rng.random_range(499..250_000)
            ),
            "events.consume",
        ),
        _ => (
            SeverityNumber::Info,
            "INFO",
            format!(
                "level=info msg=\"db pool stats\" open={} in_use={} idle={} wait_count={}",
                20,
                rng.random_range(0..20),
                rng.random_range(0..20),
                rng.random_range(0..500)
            ),
            "db.stats",
        ),
    };
    LogRecord {
        severity_number: sev as i32,
        severity_text: text.into(),
        body: body(line),
        attributes: vec![
            string_kv("code.function.name", func),
            string_kv(
                "thread.name",
                &format!("worker-{}", rng.random_range(0..16)),
            ),
            int_kv("enduser.id", user),
        ],
        ..Default::default()
    }
}
