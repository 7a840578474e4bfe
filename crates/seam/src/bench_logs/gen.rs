//! Realistic log lines for the log benchmark: nginx access lines from the edge, logfmt from the Go
//! services, JSON from the Java and Python ones, with levels, durations, user and order ids, and
//! trace context on most application lines (several lines share a request's trace id).

use std::fmt::Write;

use rand::rngs::SmallRng;
use rand::Rng;

/// Services, their line format and the routes they serve.
const SERVICES: &[(&str, Format, &[&str])] = &[
    (
        "edge",
        Format::Access,
        &["/", "/product/", "/cart", "/checkout", "/search?q="],
    ),
    ("cart", Format::Logfmt, &["/api/cart/", "/api/cart/items/"]),
    ("checkout", Format::Json, &["/api/checkout", "/api/orders/"]),
    ("payment", Format::Json, &["/api/charge", "/api/refund"]),
    (
        "inventory",
        Format::Logfmt,
        &["/api/stock/", "/api/stock/reserve/"],
    ),
    ("auth", Format::Json, &["/oauth/token", "/api/session"]),
    ("search", Format::Logfmt, &["/api/search", "/api/suggest"]),
    ("shipping", Format::Json, &["/api/quote", "/api/shipments/"]),
];

/// Replicas per service; each is its own stream per level.
pub const PODS: usize = 3;

/// Stream levels, with the share of lines of each (per mille).
const LEVELS: &[(&str, u32)] = &[("debug", 80), ("info", 780), ("warn", 90), ("error", 50)];

#[derive(Clone, Copy)]
enum Format {
    Access,
    Logfmt,
    Json,
}

const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "okhttp/4.12.0",
    "Go-http-client/1.1",
];

const ERRORS: &[&str] = &[
    "context deadline exceeded",
    "connection reset by peer",
    "upstream connect error or disconnect/reset before headers",
    "pq: could not serialize access due to concurrent update",
    "card_declined: insufficient funds",
    "redis: connection pool timeout",
];

const WARNINGS: &[&str] = &[
    "slow downstream call",
    "retrying request",
    "cache miss storm",
    "queue depth above threshold",
];

const INFOS: &[&str] = &[
    "request completed",
    "order event processed",
    "session refreshed",
    "stock reserved",
    "quote computed",
];

/// One stream: service, pod and level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamKey {
    /// Index into the services.
    pub service: usize,
    /// Replica.
    pub pod: usize,
    /// Index into the levels.
    pub level: usize,
}

impl StreamKey {
    /// Number of distinct streams.
    pub fn count() -> usize {
        SERVICES.len() * PODS * LEVELS.len()
    }

    /// A dense index of the stream.
    pub fn index(&self) -> usize {
        (self.service * PODS + self.pod) * LEVELS.len() + self.level
    }

    /// The stream's labels in Loki's text form.
    pub fn labels(&self) -> String {
        let (name, _, _) = SERVICES[self.service];
        format!(
            "{{env=\"bench\", service_name=\"{name}\", pod=\"{name}-7d9f8b6c5-{}\", level=\"{}\"}}",
            pod_suffix(self.pod),
            LEVELS[self.level].0
        )
    }
}

fn pod_suffix(pod: usize) -> &'static str {
    ["x2k4p", "q8mzt", "h5vnr"][pod % 3]
}

/// Generates lines. Requests of one to eight lines share a trace id and a stream.
pub struct LineGen {
    rng: SmallRng,
    /// The current request: stream, trace and span ids, lines left.
    request: Option<(StreamKey, [u8; 32], [u8; 16], u32)>,
    /// The request counter, mixed into ids so they never repeat across a run.
    requests: u64,
}

fn hex<const N: usize>(rng: &mut SmallRng, salt: u64) -> [u8; N] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; N];
    let mut x = rng.random::<u64>() ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for (i, c) in out.iter_mut().enumerate() {
        if i % 16 == 0 && i > 0 {
            x = rng.random::<u64>();
        }
        *c = DIGITS[(x & 15) as usize];
        x >>= 4;
    }
    out
}

impl LineGen {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> LineGen {
        use rand::SeedableRng;
        LineGen {
            rng: SmallRng::seed_from_u64(seed),
            request: None,
            requests: seed << 40,
        }
    }

    fn pick_level(&mut self) -> usize {
        let mut roll = self.rng.random_range(0..1000);
        for (i, (_, share)) in LEVELS.iter().enumerate() {
            if roll < *share {
                return i;
            }
            roll -= share;
        }
        1
    }

    /// Writes the next line (without a newline) into `out`, which is cleared first; returns its
    /// stream and its trace id (hex).
    pub fn next_line(&mut self, ts_ns: i64, out: &mut String) -> (StreamKey, [u8; 32]) {
        out.clear();
        let (key, trace, span, left) = match self.request.take() {
            Some(r) if r.3 > 0 => r,
            _ => {
                self.requests += 1;
                let key = StreamKey {
                    service: self.rng.random_range(0..SERVICES.len()),
                    pod: self.rng.random_range(0..PODS),
                    level: self.pick_level(),
                };
                let n = self.rng.random_range(1..=8);
                (
                    key,
                    hex::<32>(&mut self.rng, self.requests),
                    hex::<16>(&mut self.rng, self.requests),
                    n,
                )
            }
        };
        self.request = Some((key, trace, span, left - 1));
        let (svc, format, routes) = SERVICES[key.service];
        let level = LEVELS[key.level].0;
        let route = routes[self.rng.random_range(0..routes.len())];
        let trace_s = std::str::from_utf8(&trace).expect("hex");
        let span_s = std::str::from_utf8(&span).expect("hex");
        let user = self.rng.random_range(10_000..999_999u32);
        let dur = self.rng.random_range(0.2..900.0f64);
        let msg = match level {
            "error" => ERRORS[self.rng.random_range(0..ERRORS.len())],
            "warn" => WARNINGS[self.rng.random_range(0..WARNINGS.len())],
            "debug" => "cache lookup",
            _ => INFOS[self.rng.random_range(0..INFOS.len())],
        };
        let status = match level {
            "error" => [500, 502, 503][self.rng.random_range(0..3)],
            "warn" => [404, 429, 400][self.rng.random_range(0..3)],
            _ => 200,
        };
        let secs = ts_ns.div_euclid(1_000_000_000);
        let millis = ts_ns.rem_euclid(1_000_000_000) / 1_000_000;
        let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
        let id = self.rng.random_range(1000..99_999u32);
        // Writing into a String cannot fail.
        let _ = match format {
            Format::Access => write!(
                out,
                "10.0.{}.{} - - [{:02}:{:02}:{:02}.{:03}] \"{} {}{} HTTP/1.1\" {} {} \"-\" \"{}\" rt={:.3} trace_id={}",
                self.rng.random_range(0..4),
                self.rng.random_range(2..254),
                h,
                m,
                s,
                millis,
                if route.contains("checkout") || route == "/cart" { "POST" } else { "GET" },
                route,
                if route.ends_with('/') || route.ends_with('=') { id.to_string() } else { String::new() },
                status,
                self.rng.random_range(120..48_000),
                AGENTS[self.rng.random_range(0..AGENTS.len())],
                dur / 1000.0,
                trace_s,
            ),
            Format::Logfmt => write!(
                out,
                "ts={:02}:{:02}:{:02}.{:03}Z level={level} caller={svc}/handler.go:{} msg=\"{msg}\" method=GET path={route}{} status={status} duration_ms={dur:.2} user_id={user} trace_id={trace_s} span_id={span_s}",
                h,
                m,
                s,
                millis,
                self.rng.random_range(40..400),
                if route.ends_with('/') { id.to_string() } else { String::new() },
            ),
            Format::Json => write!(
                out,
                "{{\"@timestamp\":\"{:02}:{:02}:{:02}.{:03}Z\",\"level\":\"{}\",\"logger\":\"com.shop.{svc}.Api\",\"message\":\"{msg}\",\"path\":\"{route}\",\"status\":{status},\"duration_ms\":{dur:.1},\"user_id\":\"u{user}\",\"order_id\":\"ord-{:08x}-{:04x}\",\"traceId\":\"{trace_s}\",\"spanId\":\"{span_s}\"}}",
                h,
                m,
                s,
                millis,
                level.to_uppercase(),
                self.rng.random::<u32>(),
                self.rng.random::<u16>(),
            ),
        };
        (key, trace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_realistic_and_share_trace_ids_within_a_request() {
        let mut g = LineGen::new(1);
        let mut line = String::new();
        let mut total = 0usize;
        let mut traces = std::collections::HashSet::new();
        for i in 0..10_000 {
            let (key, trace) = g.next_line(1_700_000_000_000_000_000 + i, &mut line);
            assert!(key.index() < StreamKey::count());
            assert!(line.contains(std::str::from_utf8(&trace).unwrap()));
            assert!(!line.contains('\n'));
            total += line.len();
            traces.insert(trace);
        }
        let avg = total / 10_000;
        assert!((150..=300).contains(&avg), "average line of {avg} bytes");
        // Requests of 1-8 lines: about 4.5 lines per trace id.
        assert!(
            (1500..4000).contains(&traces.len()),
            "{} traces",
            traces.len()
        );
        assert_eq!(
            StreamKey {
                service: 0,
                pod: 1,
                level: 3
            }
            .labels(),
            "{env=\"bench\", service_name=\"edge\", pod=\"edge-7d9f8b6c5-q8mzt\", level=\"error\"}"
        );
    }
}
