//! Trace payloads: request trees of 5-20 spans across the shop's services.

use std::collections::{BTreeMap, HashSet};

use rand::seq::IndexedRandom;
use rand::Rng;
use seam_model::attributes::{int_kv, string_kv};
use seam_model::otlp::collector::trace::v1::ExportTraceServiceRequest;
use seam_model::otlp::trace::v1::span::{Event, SpanKind};
use seam_model::otlp::trace::v1::status::StatusCode;
use seam_model::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::payload::{
    bool_kv, client_ip, double_kv, fill_route, needle, random_id, resource, scope, status_code,
    PODS, SERVICES, USER_AGENTS,
};

/// What a span does, deciding its attributes and what its children may be.
#[derive(Clone, Copy)]
enum Role {
    /// Serving an HTTP request in `svc`.
    Server,
    /// Calling service `target` over HTTP.
    Client { target: usize },
    /// A database call.
    Db,
    /// In-process work.
    Internal,
}

struct Node {
    svc: usize,
    pod: usize,
    role: Role,
    span: Span,
}

const INTERNAL_OPS: &[&str] = &[
    "render_template",
    "validate_request",
    "compute_price",
    "serialize_response",
    "load_feature_flags",
    "apply_discounts",
    "check_fraud_rules",
];

/// A request of `batch` spans (the last trace is cut short to fit, as an exporter's batch cuts
/// traces), with the needles of every trace and span id in it.
pub fn request(
    rng: &mut impl Rng,
    batch: usize,
    now: u64,
) -> (ExportTraceServiceRequest, HashSet<u64>) {
    let mut groups: BTreeMap<(usize, usize), Vec<Span>> = BTreeMap::new();
    let mut ids = HashSet::new();
    let mut count = 0;
    while count < batch {
        let n = rng.random_range(5..=20).min(batch - count);
        for node in trace(rng, n, now) {
            ids.insert(needle(&node.span.trace_id));
            ids.insert(needle(&node.span.span_id));
            groups
                .entry((node.svc, node.pod))
                .or_default()
                .push(node.span);
        }
        count += n;
    }
    let resource_spans = groups
        .into_iter()
        .map(|((svc, pod), spans)| ResourceSpans {
            resource: Some(resource(svc, pod)),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope(svc)),
                spans,
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
        })
        .collect();
    (ExportTraceServiceRequest { resource_spans }, ids)
}

fn trace(rng: &mut impl Rng, n: usize, now: u64) -> Vec<Node> {
    let trace_id = random_id::<16>(rng).to_vec();
    let start = now - rng.random_range(1_000_000_000..30_000_000_000u64);
    let dur = rng.random_range(2_000_000..900_000_000u64);
    let mut nodes: Vec<Node> = Vec::with_capacity(n);
    let root_pod = rng.random_range(0..PODS);
    nodes.push(node(
        rng,
        &trace_id,
        None,
        0,
        root_pod,
        Role::Server,
        start,
        start + dur,
    ));
    while nodes.len() < n {
        // Mostly extend the deepest recent span, sometimes fan out from an earlier one.
        let pi = if rng.random_bool(0.55) {
            nodes.len() - 1
        } else {
            rng.random_range(0..nodes.len())
        };
        let p = &nodes[pi];
        let (p_start, p_end) = (p.span.start_time_unix_nano, p.span.end_time_unix_nano);
        let p_len = (p_end - p_start).max(10_000);
        let c_start = p_start + rng.random_range(0..p_len / 3 + 1);
        let c_len = rng.random_range(p_len / 10..p_len * 2 / 3 + 1).max(1_000);
        let c_end = (c_start + c_len).min(p_end.max(c_start + 1_000));
        let (svc, pod, role) = match p.role {
            Role::Client { target } => (target, rng.random_range(0..PODS), Role::Server),
            Role::Db => (p.svc, p.pod, Role::Internal),
            Role::Server | Role::Internal => {
                let s = &SERVICES[p.svc];
                let x = rng.random_range(0..100);
                if x < 45 && !s.calls.is_empty() {
                    (
                        p.svc,
                        p.pod,
                        Role::Client {
                            target: *s.calls.choose(rng).expect("non-empty"),
                        },
                    )
                } else if x < 75 && s.db.is_some() {
                    (p.svc, p.pod, Role::Db)
                } else {
                    (p.svc, p.pod, Role::Internal)
                }
            }
        };
        let parent_id = p.span.span_id.clone();
        nodes.push(node(
            rng,
            &trace_id,
            Some(parent_id),
            svc,
            pod,
            role,
            c_start,
            c_end,
        ));
    }
    nodes
}

#[allow(clippy::too_many_arguments)]
fn node(
    rng: &mut impl Rng,
    trace_id: &[u8],
    parent: Option<Vec<u8>>,
    svc: usize,
    pod: usize,
    role: Role,
    start: u64,
    end: u64,
) -> Node {
    let s = &SERVICES[svc];
    let mut attributes = Vec::with_capacity(12);
    let mut status = None;
    let (name, kind) = match role {
        Role::Server => {
            let (method, route) = *s.routes.choose(rng).expect("routes");
            let code = status_code(rng);
            attributes.extend([
                string_kv("http.request.method", method),
                string_kv("http.route", route),
                string_kv("url.path", &fill_route(route, rng)),
                string_kv("url.scheme", "http"),
                string_kv("server.address", s.name),
                int_kv("server.port", 8080),
                string_kv("network.protocol.version", "1.1"),
                string_kv("client.address", &client_ip(rng)),
                int_kv("http.response.status_code", code),
            ]);
            if svc == 0 {
                attributes.push(string_kv(
                    "user_agent.original",
                    USER_AGENTS.choose(rng).expect("agents"),
                ));
            }
            if code >= 500 {
                status = Some(Status {
                    code: StatusCode::Error as i32,
                    message: String::new(),
                });
            }
            (format!("{method} {route}"), SpanKind::Server)
        }
        Role::Client { target } => {
            let t = &SERVICES[target];
            let (method, route) = *t.routes.choose(rng).expect("routes");
            let code = status_code(rng);
            attributes.extend([
                string_kv("http.request.method", method),
                string_kv(
                    "url.full",
                    &format!("http://{}.shop.svc:8080{}", t.name, fill_route(route, rng)),
                ),
                string_kv("server.address", &format!("{}.shop.svc", t.name)),
                int_kv("server.port", 8080),
                string_kv("network.protocol.version", "1.1"),
                int_kv("http.response.status_code", code),
            ]);
            if code >= 500 {
                status = Some(Status {
                    code: StatusCode::Error as i32,
                    message: String::new(),
                });
            }
            (method.to_string(), SpanKind::Client)
        }
        Role::Db => {
            let (system, host) = s.db.expect("db role only for services with a db");
            let (name, query, op) = match system {
                "redis" => {
                    let op = *["GET", "SET", "HGETALL", "EXPIRE"].choose(rng).expect("ops");
                    (op.to_string(), format!("{op} {}:{:x}", s.name, rng.random::<u32>()), op)
                }
                "elasticsearch" => (
                    "search products".to_string(),
                    r#"{"query":{"multi_match":{"query":"?","fields":["name^3","description"]}},"size":24}"#.to_string(),
                    "search",
                ),
                _ => {
                    let (op, q) = *[
                        ("SELECT", "SELECT id, sku, quantity, price_cents FROM order_items WHERE order_id = $1"),
                        ("SELECT", "SELECT * FROM accounts WHERE user_id = $1 FOR UPDATE"),
                        ("INSERT", "INSERT INTO orders (id, user_id, total_cents, status) VALUES ($1, $2, $3, 'pending')"),
                        ("UPDATE", "UPDATE stock SET reserved = reserved + $1 WHERE sku = $2 AND available >= $1"),
                    ]
                    .choose(rng)
                    .expect("queries");
                    (format!("{op} shop"), q.to_string(), op)
                }
            };
            attributes.extend([
                string_kv("db.system.name", system),
                string_kv("db.namespace", "shop"),
                string_kv("db.operation.name", op),
                string_kv("db.query.text", &query),
                string_kv("server.address", host),
            ]);
            (name, SpanKind::Client)
        }
        Role::Internal => {
            let op = *INTERNAL_OPS.choose(rng).expect("ops");
            attributes.push(string_kv("code.function.name", op));
            if rng.random_bool(0.3) {
                attributes.push(bool_kv("cache.hit", rng.random_bool(0.7)));
            }
            (op.to_string(), SpanKind::Internal)
        }
    };
    let mut events = Vec::new();
    let roll = rng.random_range(0..100);
    if roll < 5 || status.is_some() {
        status = Some(Status {
            code: StatusCode::Error as i32,
            message: "upstream request failed".into(),
        });
        events.push(Event {
            time_unix_nano: end.saturating_sub(1_000),
            name: "exception".into(),
            attributes: vec![
                string_kv("exception.type", "java.net.SocketTimeoutException"),
                string_kv("exception.message", "Read timed out after 500 ms"),
                string_kv(
                    "exception.stacktrace",
                    "java.net.SocketTimeoutException: Read timed out\n\tat java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)\n\tat java.base/java.net.Socket$SocketInputStream.read(Socket.java:1099)\n\tat shop.checkout.PaymentClient.charge(PaymentClient.java:87)",
                ),
            ],
            dropped_attributes_count: 0,
        });
    } else if roll < 15 {
        events.push(Event {
            time_unix_nano: start + (end - start) / 2,
            name: "cache.miss".into(),
            attributes: vec![
                string_kv(
                    "cache.key",
                    &format!("product:{}", rng.random_range(1000..99_999)),
                ),
                double_kv("cache.lookup_ms", 0.4),
            ],
            dropped_attributes_count: 0,
        });
    }
    Node {
        svc,
        pod,
        role,
        span: Span {
            trace_id: trace_id.to_vec(),
            span_id: random_id::<8>(rng).to_vec(),
            parent_span_id: parent.unwrap_or_default(),
            flags: 0x101,
            name,
            kind: kind as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes,
            events,
            status,
            ..Default::default()
        },
    }
}
