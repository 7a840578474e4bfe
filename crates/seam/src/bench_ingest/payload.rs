//! The pool of realistic OTLP request bodies, generated before the timed run, and the cheap
//! per-send rewrite that keeps repeated sends of one body distinct.

use std::collections::HashSet;
use std::io::Write;

use bytes::Bytes;
use prost::Message;
use rand::Rng;
use seam_model::attributes::{int_kv, string_kv};
use seam_model::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use seam_model::otlp::resource::v1::Resource;

use super::BenchSignal;

/// Distinct bodies generated per run; workers cycle through them.
pub const POOL_SIZE: usize = 64;

/// One pre-encoded request body.
pub struct Payload {
    /// The body as sent on the wire (gzip-compressed with `--gzip`).
    pub body: Bytes,
    /// Records it carries: spans, log records or metric data points.
    pub records: u64,
    patch: Patch,
}

/// How a body is rewritten per send. Not applied to gzip bodies.
enum Patch {
    None,
    /// XOR the 4 bytes at each offset (the start of every trace and span id) with the send number,
    /// so every send carries fresh ids while parent links and log trace context stay consistent.
    XorIds(Vec<usize>),
    /// Add the round number in milliseconds to the fixed64 timestamp at each offset, so every send
    /// of a metrics body is a later sample of its series.
    ShiftTime(Vec<usize>),
}

impl Payload {
    /// The body for the `seq`-th send overall, which is the `round`-th pass over the pool.
    pub fn body_for(&self, seq: u64, round: u64) -> Bytes {
        match &self.patch {
            Patch::None => self.body.clone(),
            Patch::XorIds(sites) => {
                let mut v = self.body.to_vec();
                let x = ((seq as u32).wrapping_add(1)).to_le_bytes();
                for &o in sites {
                    for (b, k) in v[o..o + 4].iter_mut().zip(x) {
                        *b ^= k;
                    }
                }
                v.into()
            }
            Patch::ShiftTime(sites) => {
                let mut v = self.body.to_vec();
                let shift = round.wrapping_mul(1_000_000);
                for &o in sites {
                    let t = u64::from_le_bytes(v[o..o + 8].try_into().expect("8 bytes"));
                    v[o..o + 8].copy_from_slice(&t.wrapping_add(shift).to_le_bytes());
                }
                v.into()
            }
        }
    }
}

/// Generates the pool for a signal, `batch` records per body.
pub fn pool(signal: BenchSignal, batch: usize, gzip: bool) -> anyhow::Result<Vec<Payload>> {
    let mut rng = rand::rng();
    let now = seam_model::now_ns().max(0) as u64;
    let mut out = Vec::with_capacity(POOL_SIZE);
    for i in 0..POOL_SIZE {
        let (raw, records, patch) = match signal {
            BenchSignal::Traces => {
                let (req, ids) = super::gen_traces::request(&mut rng, batch, now);
                let raw = req.encode_to_vec();
                let sites = find_sites(&raw, &ids, &[16, 8]);
                (raw, batch as u64, Patch::XorIds(sites))
            }
            BenchSignal::Logs => {
                let (req, ids) = super::gen_logs::request(&mut rng, batch, now);
                let raw = req.encode_to_vec();
                let sites = find_sites(&raw, &ids, &[16, 8]);
                (raw, batch as u64, Patch::XorIds(sites))
            }
            BenchSignal::Metrics => {
                let (req, points, t) = super::gen_metrics::request(&mut rng, batch, now, i);
                let raw = req.encode_to_vec();
                // fixed64 field 3 (time_unix_nano of number and histogram points) has tag 0x19.
                let sites = find_sites(&raw, &HashSet::from([t]), &[0x19]);
                (raw, points, Patch::ShiftTime(sites))
            }
        };
        let payload = if gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&raw)?;
            Payload {
                body: enc.finish()?.into(),
                records,
                patch: Patch::None,
            }
        } else {
            Payload {
                body: raw.into(),
                records,
                patch,
            }
        };
        out.push(payload);
    }
    Ok(out)
}

/// Offsets of every 8-byte little-endian word of `needles` that directly follows one of the
/// `prefixes` bytes (the protobuf length or tag byte before an id or timestamp).
fn find_sites(buf: &[u8], needles: &HashSet<u64>, prefixes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 1;
    while i + 8 <= buf.len() {
        if prefixes.contains(&buf[i - 1]) {
            let w = u64::from_le_bytes(buf[i..i + 8].try_into().expect("8 bytes"));
            if needles.contains(&w) {
                out.push(i);
                i += 8;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// The first 8 bytes of an id as a needle for [`find_sites`].
pub fn needle(id: &[u8]) -> u64 {
    u64::from_le_bytes(id[..8].try_into().expect("id of at least 8 bytes"))
}

/// A random id of `N` bytes, never all zero (OTLP treats that as absent).
pub fn random_id<const N: usize>(rng: &mut impl Rng) -> [u8; N] {
    let mut id = [0u8; N];
    rng.fill(&mut id[..]);
    id[N - 1] |= 1;
    id
}

/// One service of the simulated shop.
pub struct Service {
    pub name: &'static str,
    pub version: &'static str,
    pub language: &'static str,
    pub scope: &'static str,
    /// (method, route) pairs the service serves.
    pub routes: &'static [(&'static str, &'static str)],
    /// Services it calls.
    pub calls: &'static [usize],
    /// Database it uses, if any: (db.system.name, server.address).
    pub db: Option<(&'static str, &'static str)>,
}

/// The services; index 0 is the entry point.
pub const SERVICES: &[Service] = &[
    Service {
        name: "frontend",
        version: "2.14.1",
        language: "nodejs",
        scope: "@opentelemetry/instrumentation-http",
        routes: &[
            ("GET", "/"),
            ("GET", "/product/{id}"),
            ("GET", "/cart"),
            ("POST", "/cart"),
            ("POST", "/checkout"),
            ("GET", "/search"),
        ],
        calls: &[1, 2, 5, 6, 7],
        db: None,
    },
    Service {
        name: "cart",
        version: "1.8.0",
        language: "go",
        scope: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
        routes: &[
            ("GET", "/api/cart/{id}"),
            ("POST", "/api/cart/{id}/items"),
            ("DELETE", "/api/cart/{id}/items/{id}"),
        ],
        calls: &[4],
        db: Some(("redis", "redis-cart.shop.svc")),
    },
    Service {
        name: "checkout",
        version: "3.2.7",
        language: "java",
        scope: "io.opentelemetry.spring-webmvc-6.0",
        routes: &[("POST", "/api/checkout"), ("GET", "/api/orders/{id}")],
        calls: &[1, 3, 4],
        db: Some(("postgresql", "pg-orders.shop.svc")),
    },
    Service {
        name: "payment",
        version: "0.9.12",
        language: "python",
        scope: "opentelemetry.instrumentation.flask",
        routes: &[("POST", "/api/charge"), ("POST", "/api/refund")],
        calls: &[],
        db: Some(("postgresql", "pg-payments.shop.svc")),
    },
    Service {
        name: "inventory",
        version: "1.3.4",
        language: "go",
        scope: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
        routes: &[
            ("GET", "/api/stock/{id}"),
            ("POST", "/api/stock/{id}/reserve"),
        ],
        calls: &[],
        db: Some(("postgresql", "pg-inventory.shop.svc")),
    },
    Service {
        name: "auth",
        version: "5.0.2",
        language: "java",
        scope: "io.opentelemetry.spring-webmvc-6.0",
        routes: &[("POST", "/oauth/token"), ("GET", "/api/session")],
        calls: &[],
        db: Some(("redis", "redis-sessions.shop.svc")),
    },
    Service {
        name: "search",
        version: "4.1.0",
        language: "rust",
        scope: "tower-http",
        routes: &[("GET", "/api/search"), ("GET", "/api/suggest")],
        calls: &[4],
        db: Some(("elasticsearch", "es-products.shop.svc")),
    },
    Service {
        name: "recommendation",
        version: "1.0.5",
        language: "python",
        scope: "opentelemetry.instrumentation.fastapi",
        routes: &[("GET", "/api/recommendations")],
        calls: &[4],
        db: None,
    },
];

/// Pods per service in traces and logs (metrics give every pool entry its own pods).
pub const PODS: usize = 3;

const NODES: &[&str] = &[
    "ip-10-0-1-17.eu-west-1.compute.internal",
    "ip-10-0-2-45.eu-west-1.compute.internal",
    "ip-10-0-3-201.eu-west-1.compute.internal",
    "ip-10-0-1-88.eu-west-1.compute.internal",
];

/// The pod name of replica `pod` of a service.
pub fn pod_name(svc: usize, pod: usize) -> String {
    format!(
        "{}-{:x}-{}",
        SERVICES[svc].name,
        0x6b8f5d9c_u32.wrapping_add(svc as u32 * 7919),
        pod_suffix(pod)
    )
}

fn pod_suffix(pod: usize) -> String {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut x = pod as u64 * 2_654_435_761 + 12345;
    (0..5)
        .map(|_| {
            let c = ALPHA[(x % ALPHA.len() as u64) as usize] as char;
            x /= ALPHA.len() as u64;
            c
        })
        .collect()
}

/// The resource of replica `pod` of service `svc`, as the OpenTelemetry SDK and the k8s attributes
/// processor would describe it.
pub fn resource(svc: usize, pod: usize) -> Resource {
    let s = &SERVICES[svc];
    let pod_name = pod_name(svc, pod);
    let node = NODES[(svc + pod) % NODES.len()];
    Resource {
        attributes: vec![
            string_kv("service.name", s.name),
            string_kv("service.namespace", "shop"),
            string_kv("service.version", s.version),
            string_kv(
                "service.instance.id",
                &format!("{pod_name}-{:08x}", (svc * 131 + pod) as u32 ^ 0x5eed_cafe),
            ),
            string_kv("deployment.environment.name", "production"),
            string_kv("host.name", node),
            string_kv("k8s.cluster.name", "prod-eu-west-1"),
            string_kv("k8s.namespace.name", "shop"),
            string_kv("k8s.deployment.name", s.name),
            string_kv("k8s.pod.name", &pod_name),
            string_kv("k8s.node.name", node),
            string_kv("k8s.container.name", s.name),
            string_kv("cloud.provider", "aws"),
            string_kv("cloud.region", "eu-west-1"),
            string_kv("telemetry.sdk.name", "opentelemetry"),
            string_kv("telemetry.sdk.language", s.language),
            string_kv("telemetry.sdk.version", "1.38.0"),
            int_kv("process.pid", 1 + (svc * 17 + pod) as i64),
        ],
        ..Default::default()
    }
}

/// The instrumentation scope of a service.
pub fn scope(svc: usize) -> InstrumentationScope {
    InstrumentationScope {
        name: SERVICES[svc].scope.to_string(),
        version: "0.52.0".to_string(),
        ..Default::default()
    }
}

/// A floating-point attribute.
pub fn double_kv(key: &str, value: f64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::DoubleValue(value)),
        }),
        ..Default::default()
    }
}

/// A boolean attribute.
pub fn bool_kv(key: &str, value: bool) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::BoolValue(value)),
        }),
        ..Default::default()
    }
}

/// A route with its `{id}` placeholders filled in.
pub fn fill_route(route: &str, rng: &mut impl Rng) -> String {
    let mut out = String::with_capacity(route.len() + 8);
    let mut rest = route;
    while let Some(i) = rest.find("{id}") {
        out.push_str(&rest[..i]);
        out.push_str(&rng.random_range(1000..999_999).to_string());
        rest = &rest[i + 4..];
    }
    out.push_str(rest);
    out
}

/// An HTTP status code with a realistic mix of errors.
pub fn status_code(rng: &mut impl Rng) -> i64 {
    match rng.random_range(0..1000) {
        0..15 => 500,
        15..20 => 503,
        20..50 => 404,
        50..60 => 400,
        60..65 => 401,
        _ => 200,
    }
}

/// A client address inside the cluster or out on the internet.
pub fn client_ip(rng: &mut impl Rng) -> String {
    if rng.random_bool(0.5) {
        format!(
            "10.0.{}.{}",
            rng.random_range(0..4),
            rng.random_range(2..254)
        )
    } else {
        format!(
            "{}.{}.{}.{}",
            rng.random_range(20..220),
            rng.random_range(0..255),
            rng.random_range(0..255),
            rng.random_range(1..254)
        )
    }
}

/// Browser user agents.
pub const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "okhttp/4.12.0",
];
