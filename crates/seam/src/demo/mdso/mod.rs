//! `seam demo mdso`: the Beorn -> MDSO -> Arda flow, three unrelated traces per flow, with noise.
//!
//! # How a flow is timed
//! Flow `i` starts `i / rate` seconds into the run, with timestamps at the wall clock (plus the
//! service's clock skew, plus the reuse shift). Beorn's SERVER root contains its CLIENT call to
//! MDSO; MDSO's `CircuitDetailsCollector` root starts inside that call and makes two device calls
//! and a CLIENT call to Arda; Arda's SERVER root starts inside that call. A flow lasts about
//! 0.3–1 s.
//!
//! # How spans are sent
//! Each span becomes due when it ends plus an exporter delay (0–100 ms), like a batch span
//! processor; noise may hold it longer (`--out-of-order`, `--late-ms`). Every 50 ms the due spans
//! and log records are packed into OTLP/HTTP protobuf requests (at most `--batch` records each,
//! many flows per request) and posted by at most `--concurrency` requests in flight. 429 and 503
//! are retried after `Retry-After`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use hyper::Method;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seam_model::attributes::string_kv;
use seam_model::now_ns;
use seam_model::otlp::common::v1::{InstrumentationScope, KeyValue};
use seam_model::otlp::logs::v1::LogRecord;
use seam_model::otlp::resource::v1::Resource;
use seam_model::otlp::trace::v1::span::SpanKind;
use seam_model::otlp::trace::v1::Span;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::http::Http;

mod flow;
mod generate;
mod send;

use send::{pack, post, Body, SendStats};

/// Arguments of `seam demo mdso`. The noise defaults are the default noise profile.
#[derive(clap::Args, Debug)]
pub struct MdsoArgs {
    /// Base URL of Seam's OTLP/HTTP receiver, e.g. http://127.0.0.1:4318
    #[arg(long = "otlp-http")]
    pub otlp_http: String,
    /// Flows to generate (concurrent twins come on top).
    #[arg(long, default_value_t = 100)]
    pub flows: usize,
    /// Flows started per second.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Seed of every random choice: the same seed gives the same ids and the same noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write the true links and every generated trace id (JSON lines; see the module doc
    /// of `seam demo`).
    #[arg(long)]
    pub truth: PathBuf,
    /// Tenant (sent as X-Scope-OrgID).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Fraction of flows that get a second, concurrent flow on the same circuit, started 3–8 s
    /// later (so timing tells the two apart).
    #[arg(long, default_value_t = 0.05)]
    pub concurrent_same_circuit: f64,
    /// Fraction of flows that reuse the circuit id of an earlier flow. Their timestamps are
    /// shifted forward by --reuse-after seconds (instead of waiting), beyond the correlation
    /// window, so the two must not be linked.
    #[arg(long, default_value_t = 0.05)]
    pub reuse_circuits: f64,
    /// How far, in seconds, a reused circuit's flow is shifted after the original.
    #[arg(long, default_value_t = 120.0)]
    pub reuse_after: f64,
    /// Keyless noise: the chance, per trace, of an extra child span without any key, and per
    /// flow, of an extra unrelated trace without keys (a health check, a housekeeping plan).
    #[arg(long, default_value_t = 0.2)]
    pub keyless_spans: f64,
    /// Each service's clock is off by a fixed random amount up to ± this many milliseconds.
    #[arg(long, default_value_t = 200)]
    pub clock_skew_ms: u64,
    /// Shuffle the send order: each span is held a further random 0–--reorder-ms ms (a bounded
    /// reorder buffer), so a downstream segment sometimes arrives before its upstream and a trace's
    /// spans arrive split over several requests. `--out-of-order false` turns it off.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub out_of_order: bool,
    /// The reorder buffer's bound, in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub reorder_ms: u64,
    /// Late delivery: 10% of the spans and log records are delayed by a random 0–N ms more.
    #[arg(long, default_value_t = 500)]
    pub late_ms: u64,
    /// Fraction of requests sent a second time, 0.1–1 s later (duplicate delivery).
    #[arg(long, default_value_t = 0.02)]
    pub duplicates: f64,
    /// Most records (spans or log records) per request.
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    /// Most requests in flight.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

const MS: i64 = 1_000_000;
const TICK: Duration = Duration::from_millis(50);
/// The share of records that get the `--late-ms` delay.
const LATE_SHARE: f64 = 0.1;
/// Attempts per request before it is given up (429/503 and transport errors).
const MAX_ATTEMPTS: u32 = 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Svc {
    Beorn = 0,
    Mdso = 1,
    Arda = 2,
}

impl Svc {
    const ALL: [Svc; 3] = [Svc::Beorn, Svc::Mdso, Svc::Arda];

    fn name(self) -> &'static str {
        match self {
            Svc::Beorn => "beorn",
            Svc::Mdso => "mdso",
            Svc::Arda => "arda",
        }
    }

    fn resource(self) -> Resource {
        let (version, lang, ns) = match self {
            Svc::Beorn => ("4.12.0", "python", "provisioning"),
            Svc::Mdso => ("23.08.1", "java", "orchestration"),
            Svc::Arda => ("2.3.5", "python", "inventory"),
        };
        Resource {
            attributes: vec![
                string_kv("service.name", self.name()),
                string_kv("service.namespace", ns),
                string_kv("service.version", version),
                string_kv("service.instance.id", &format!("{}-0", self.name())),
                string_kv("deployment.environment.name", "demo"),
                string_kv("telemetry.sdk.language", lang),
            ],
            ..Default::default()
        }
    }

    fn scope(self) -> InstrumentationScope {
        let name = match self {
            Svc::Beorn => "opentelemetry.instrumentation.flask",
            Svc::Mdso => "mdso.scriptplan",
            Svc::Arda => "opentelemetry.instrumentation.fastapi",
        };
        InstrumentationScope {
            name: name.into(),
            version: "0.48b0".into(),
            ..Default::default()
        }
    }
}

/// What one scheduled record is.
enum Record {
    Span(Span),
    Log(LogRecord),
}

/// A record waiting for its send time.
struct Item {
    due_ns: i64,
    seq: u64,
    svc: Svc,
    record: Record,
}

impl PartialEq for Item {
    fn eq(&self, o: &Item) -> bool {
        (self.due_ns, self.seq) == (o.due_ns, o.seq)
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Item) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    fn cmp(&self, o: &Item) -> std::cmp::Ordering {
        (self.due_ns, self.seq).cmp(&(o.due_ns, o.seq))
    }
}

/// Counts for the summary.
#[derive(Default)]
struct Counts {
    flows: u64,
    twins: u64,
    reused: u64,
    traces: u64,
    keyless_traces: u64,
    spans: u64,
    logs: u64,
}

/// Makes flows: ids, times, noise decisions, truth lines. Deterministic for a seed.
struct Generator {
    rng: StdRng,
    wall0: i64,
    skew_ns: [i64; 3],
    flows: usize,
    rate: f64,
    p_twin: f64,
    p_reuse: f64,
    reuse_shift_ns: i64,
    p_keyless: f64,
    reorder_ns: i64,
    late_ns: i64,
    /// Circuits of earlier flows that may still be reused (each at most once).
    reusable: Vec<String>,
    next_instance: u64,
    seq: u64,
    truth: BufWriter<File>,
    counts: Counts,
}

/// One flow instance to emit.
struct FlowPlan {
    circuit: String,
    real0: i64,
    shift: i64,
    noise: Vec<&'static str>,
}

/// A span under construction, in real (unskewed, unshifted) nanoseconds from the run start.
struct SpanPlan {
    name: String,
    kind: SpanKind,
    start: i64,
    end: i64,
    parent: Vec<u8>,
    attrs: Vec<KeyValue>,
}

pub(super) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn check_fraction(name: &str, v: f64) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&v) {
        bail!("{name} must be between 0 and 1, got {v}");
    }
    Ok(())
}

/// Runs `seam demo mdso`.
pub async fn run(args: MdsoArgs) -> anyhow::Result<()> {
    check_fraction("--concurrent-same-circuit", args.concurrent_same_circuit)?;
    check_fraction("--reuse-circuits", args.reuse_circuits)?;
    check_fraction("--keyless-spans", args.keyless_spans)?;
    check_fraction("--duplicates", args.duplicates)?;
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate must be positive, got {}", args.rate);
    }
    if !(args.reuse_after.is_finite() && args.reuse_after >= 0.0) {
        bail!(
            "--reuse-after must be a number of seconds, got {}",
            args.reuse_after
        );
    }
    if args.concurrency == 0 || args.batch == 0 {
        bail!("--concurrency and --batch must be at least 1");
    }
    let http = Http::new(&args.otlp_http, "--otlp-http", args.tenant.as_deref())?;
    // Fail fast when nothing listens.
    http.exchange(Method::GET, "/", None, None, Bytes::new())
        .await
        .with_context(|| format!("cannot reach the OTLP/HTTP receiver at {}", http.base()))?;

    let file = File::create(&args.truth)
        .with_context(|| format!("cannot create the truth file {}", args.truth.display()))?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let skew = args.clock_skew_ms as i64 * MS;
    let skew_ns = [0; 3].map(|_: i64| {
        if skew > 0 {
            rng.random_range(-skew..=skew)
        } else {
            0
        }
    });
    let mut send_rng = StdRng::seed_from_u64(args.seed ^ 0x5eed_d00d);
    let mut g = Generator {
        rng,
        wall0: now_ns(),
        skew_ns,
        flows: args.flows,
        rate: args.rate,
        p_twin: args.concurrent_same_circuit,
        p_reuse: args.reuse_circuits,
        reuse_shift_ns: (args.reuse_after * 1e9) as i64,
        p_keyless: args.keyless_spans,
        reorder_ns: if args.out_of_order {
            args.reorder_ms as i64 * MS
        } else {
            0
        },
        late_ns: args.late_ms as i64 * MS,
        reusable: Vec::new(),
        next_instance: 0,
        seq: 0,
        truth: BufWriter::new(file),
        counts: Counts::default(),
    };
    g.line(
        json!({"kind": "meta", "seed": args.seed, "flows": args.flows, "rate": args.rate,
        "concurrent_same_circuit": args.concurrent_same_circuit,
        "reuse_circuits": args.reuse_circuits, "reuse_after": args.reuse_after,
        "keyless_spans": args.keyless_spans, "clock_skew_ms": args.clock_skew_ms,
        "skew_ms": {"beorn": skew_ns[0] / MS, "mdso": skew_ns[1] / MS, "arda": skew_ns[2] / MS},
        "out_of_order": args.out_of_order, "reorder_ms": args.reorder_ms,
        "late_ms": args.late_ms, "duplicates": args.duplicates}),
    )?;

    let stats = Arc::new(SendStats::default());
    let sem = Arc::new(Semaphore::new(args.concurrency));
    let mut tasks: JoinSet<Result<(), String>> = JoinSet::new();
    let mut heap: BinaryHeap<Reverse<Item>> = BinaryHeap::new();
    let mut dups: BinaryHeap<Reverse<(i64, u64)>> = BinaryHeap::new();
    let mut dup_bodies: std::collections::HashMap<u64, Body> = Default::default();
    let mut dup_seq = 0u64;
    let mut errors: Vec<String> = Vec::new();
    let mut next_flow = 0usize;
    let start = Instant::now();
    let lookahead = TICK.as_nanos() as i64;

    loop {
        let now = start.elapsed().as_nanos() as i64;
        while next_flow < g.flows && g.real_start(next_flow) <= now + lookahead {
            g.flow(next_flow, &mut heap)?;
            next_flow += 1;
        }
        let mut due = Vec::new();
        while heap.peek().is_some_and(|Reverse(it)| it.due_ns <= now) {
            due.push(heap.pop().unwrap().0);
        }
        let mut bodies = pack(due, args.batch);
        while dups.peek().is_some_and(|Reverse((t, _))| *t <= now) {
            let Reverse((_, k)) = dups.pop().unwrap();
            if let Some(b) = dup_bodies.remove(&k) {
                stats.duplicates.fetch_add(1, Ordering::Relaxed);
                bodies.push(b);
            }
        }
        for b in bodies {
            if args.duplicates > 0.0 && send_rng.random_bool(args.duplicates) {
                dup_seq += 1;
                let at = now + send_rng.random_range(100 * MS..1000 * MS);
                dups.push(Reverse((at, dup_seq)));
                dup_bodies.insert(
                    dup_seq,
                    Body {
                        logs: b.logs,
                        bytes: b.bytes.clone(),
                    },
                );
            }
            let permit = sem.clone().acquire_owned().await?;
            let (http, stats) = (http.clone(), stats.clone());
            tasks.spawn(async move {
                let r = post(http, b, stats).await;
                drop(permit);
                r
            });
        }
        while let Some(r) = tasks.try_join_next() {
            if let Err(e) = r.context("a send task panicked")? {
                errors.push(e);
            }
        }
        if next_flow >= g.flows && heap.is_empty() && dups.is_empty() {
            break;
        }
        tokio::time::sleep(TICK).await;
    }
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r.context("a send task panicked")? {
            errors.push(e);
        }
    }
    g.truth.flush().context("writing the truth file")?;
    let elapsed = start.elapsed();

    let c = &g.counts;
    let s = &stats;
    println!(
        "seam demo mdso: {} flows ({} concurrent twins, {} on reused circuits), {} traces ({} keyless), {} spans, {} log records",
        c.flows, c.twins, c.reused, c.traces, c.keyless_traces, c.spans, c.logs
    );
    println!(
        "  {} requests ({} refused with 429/503 and retried, {} duplicates, {} records rejected, {} failed) in {:.1} s",
        s.requests.load(Ordering::Relaxed),
        s.refused.load(Ordering::Relaxed),
        s.duplicates.load(Ordering::Relaxed),
        s.rejected.load(Ordering::Relaxed),
        errors.len(),
        elapsed.as_secs_f64()
    );
    println!(
        "  clock skew: beorn {:+} ms, mdso {:+} ms, arda {:+} ms; truth: {}",
        skew_ns[0] / MS,
        skew_ns[1] / MS,
        skew_ns[2] / MS,
        args.truth.display()
    );
    if !errors.is_empty() {
        bail!(
            "{} requests were not delivered; first: {}",
            errors.len(),
            errors[0]
        );
    }
    Ok(())
}
