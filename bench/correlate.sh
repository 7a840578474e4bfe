#!/usr/bin/env bash
# Correlation benchmark, in two parts; writes bench/results/correlate.json plus a table on stdout.
#
# 1. In-process: the `correlate_bench` example of seam-correlate (Beorn -> MDSO -> Arda flows with
#    typed spans, one segment per observe call by default) with 10K and 100K active circuits, with
#    no configuration and with the flow pattern: segments/s on one core, matches (links)/s, and the
#    p99 time of the observe calls that decided a link.
# 2. End to end: a release `seam serve` on ephemeral ports with a fresh data directory per
#    configuration, driven by `seam demo mdso` (a fresh seed per run): with no configuration at
#    BENCH_RATES, then with the flow pattern [beorn, mdso, arda], then the harsh noise profile
#    (BENCH_HARSH) with and without the pattern. After each run: bridges/s, the share of links
#    held for a better candidate, and the p99 arrival-to-bridge latency from the deltas of
#    /metrics, the server's RSS, the generator's achieved flows/s, and `seam demo score --json`.
#
# Environment:
#   BENCH_CIRCUITS        active circuits of the in-process runs (default "10000 100000")
#   BENCH_INPROC_FLOWS    flows per in-process run (default: 3 x circuits, at least 100000)
#   BENCH_INPROC_BATCH    segments per observe call in-process (default 1)
#   BENCH_RATES           flows/s of the no-configuration runs (default "1000 5000 10000")
#   BENCH_OTHER_RATE      flows/s of the pattern and harsh runs (default 1000)
#   BENCH_HARSH           `seam demo mdso` noise arguments of the harsh runs (default: ±1 s skew,
#                         20% duplicate requests, 10% circuits reused 20 s later, 10% twins)
#   BENCH_FLOWS_SECONDS   each end-to-end run sends rate x this many flows (default 10) ...
#   BENCH_MAX_FLOWS       ... capped at this many (default 10000)
#   BENCH_SCORE_WAIT      `seam demo score --wait` seconds (default 3)
#   BENCH_SCORE_TIMEOUT   seconds before scoring a run is abandoned (precision/recall null; default 90)
#   BENCH_SETTLE          if set, `correlation.settle` of the server (e.g. 0s, 500ms; default: the
#                         server's default, 2 s)
#   BENCH_SERVE_ARGS      extra arguments for `seam serve` (e.g. "--fsync interval")
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init correlate

CIRCUITS="${BENCH_CIRCUITS:-10000 100000}"
INPROC_FLOWS="${BENCH_INPROC_FLOWS:-}"
INPROC_BATCH="${BENCH_INPROC_BATCH:-1}"
RATES="${BENCH_RATES:-1000 5000 10000}"
OTHER_RATE="${BENCH_OTHER_RATE:-1000}"
HARSH="${BENCH_HARSH:---clock-skew-ms 1000 --duplicates 0.2 --reuse-after 20 --reuse-circuits 0.1 --concurrent-same-circuit 0.1}"
FLOWS_SECONDS="${BENCH_FLOWS_SECONDS:-10}"
MAX_FLOWS="${BENCH_MAX_FLOWS:-10000}"
SCORE_WAIT="${BENCH_SCORE_WAIT:-3}"
SCORE_TIMEOUT="${BENCH_SCORE_TIMEOUT:-90}"
SETTLE="${BENCH_SETTLE:-}"
EXAMPLE="$ROOT/target/release/examples/correlate_bench"

bench_build -p seam-correlate --example correlate_bench

bench_workdir
CONFIG="$WORK/seam.yaml"
INPROC="$WORK/inproc.jsonl"
: >"$INPROC"

# ---------------------------------------------------------------- 1. in-process
for pattern in 0 1; do
    for circuits in $CIRCUITS; do
        flows="$INPROC_FLOWS"
        [[ -n "$flows" ]] || flows=$((circuits * 3 > 100000 ? circuits * 3 : 100000))
        echo "== in-process: $circuits active circuits, $flows flows, batch $INPROC_BATCH, pattern $pattern" >&2
        line="$("$EXAMPLE" --circuits "$circuits" --flows "$flows" --batch "$INPROC_BATCH" --pattern "$pattern" | tail -n 1)"
        echo "$line" >&2
        echo "$line" >>"$INPROC"
    done
done

# ---------------------------------------------------------------- 2. end to end
# config_yaml NAME: the server config of a run group: "none" (nothing configured) or "pattern".
config_yaml() {
    local lines=()
    [[ $1 == pattern ]] && lines+=("  flow_patterns: [[beorn, mdso, arda]]")
    [[ -n "$SETTLE" ]] && lines+=("  settle: $SETTLE")
    if ((${#lines[@]})); then
        printf 'correlation:\n'
        printf '%s\n' "${lines[@]}"
    else
        printf 'correlation: {}\n'
    fi
}

metrics() { curl -sf "http://$LISTEN/metrics"; }

# Run groups: "config profile rates"; each group gets a fresh server and data directory.
GROUPS_LIST=("none default $RATES" "pattern default $OTHER_RATE" "none harsh $OTHER_RATE" "pattern harsh $OTHER_RATE")
seed=0
for group in "${GROUPS_LIST[@]}"; do
    read -r config profile rates <<<"$group"
    config_yaml "$config" >"$CONFIG"
    rm -rf "$DATA_DIR"
    mkdir -p "$DATA_DIR"
    start_server --config "$CONFIG"
    wait_for_server
    demo_args=()
    [[ $profile == harsh ]] && read -r -a demo_args <<<"$HARSH"
for rate in $rates; do
    seed=$((seed + 1))
    flows=$(python3 -c "print(max(1, min(int(float('$rate') * float('$FLOWS_SECONDS')), int('$MAX_FLOWS'))))")
    truth="$WORK/truth-$seed.jsonl"
    # Reset the peak RSS to the current RSS, so VmHWM is this run's peak.
    reset="$(reset_peak_rss)"
    metrics >"$WORK/before-$seed.prom"
    echo "== end to end ($config, $profile noise): $flows flows at $rate flows/s, seed $seed" >&2
    t0=$(date +%s.%N)
    "$SEAM" demo mdso --otlp-http "http://$OTLP_HTTP" --flows "$flows" --rate "$rate" \
        --seed "$seed" --truth "$truth" "${demo_args[@]}" | tee "$WORK/demo-$seed.txt" >&2
    t1=$(date +%s.%N)
    server_alive
    metrics >"$WORK/sent-$seed.prom"
    rss_sent="$(rss_kib VmRSS)"
    # Scoring waits until the bridge count has settled (late and out-of-order segments).
    # It fetches every trace of the truth file through the query API, so it is bounded.
    timeout "$SCORE_TIMEOUT" "$SEAM" demo score --truth "$truth" --api "http://$LISTEN" --json \
        --wait "$SCORE_WAIT" --max-wait 60 --concurrency 8 | tee "$WORK/score-$seed.txt" >&2 ||
        echo "seam demo score did not finish within $SCORE_TIMEOUT s (BENCH_SCORE_TIMEOUT)" >&2
    metrics >"$WORK/after-$seed.prom"
    python3 - "$rate" "$flows" "$seed" "$t0" "$t1" "$reset" "$rss_sent" "$(rss_kib VmRSS)" \
        "$(rss_kib VmHWM)" "$WORK" "$config" "$profile" >>"$RUNS" <<'PY'
import json, math, re, sys
rate, flows, seed, t0, t1, reset, rss_sent, rss_after, hwm, work, config, profile = sys.argv[1:13]
rate, flows, seed = float(rate), int(flows), int(seed)
wall = float(t1) - float(t0)

def parse(path):
    m = {}
    for line in open(path):
        if not line.strip() or line.startswith("#"):
            continue
        mm = re.match(r"^([A-Za-z_:][A-Za-z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)", line)
        if mm:
            m[mm.group(1)] = float(mm.group(2))
    return m

def total(m, name):
    return sum(v for k, v in m.items() if k == name or k.startswith(name + "{"))

def buckets(m, name):
    out = {}
    for k, v in m.items():
        if k.startswith(name + "_bucket{"):
            le = re.search(r'le="([^"]+)"', k).group(1)
            le = math.inf if le == "+Inf" else float(le)
            out[le] = out.get(le, 0) + v
    return out

def quantile(q, before, after):
    """histogram_quantile over the bucket deltas, with Prometheus' linear interpolation."""
    d = sorted((le, after.get(le, 0) - before.get(le, 0)) for le in after)
    if not d or d[-1][1] <= 0:
        return None
    rank = q * d[-1][1]
    prev_le, prev_c = 0.0, 0.0
    for i, (le, c) in enumerate(d):
        if c >= rank:
            if math.isinf(le):  # in the +Inf bucket: the highest finite bound
                return d[i - 1][0] if i > 0 else None
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c) if c > prev_c else le
        prev_le, prev_c = le, c
    return None

b, s, a = (parse(f"{work}/{p}-{seed}.prom") for p in ("before", "sent", "after"))
H = "correlation_match_latency_seconds"
C = "correlation_bridge_spans_created_total"
hb, ha = buckets(b, H), buckets(a, H)
demo = open(f"{work}/demo-{seed}.txt").read()
m = re.search(r"seam demo mdso: (\d+) flows \((\d+) concurrent twins", demo)
gen_flows, twins = (int(m.group(1)), int(m.group(2))) if m else (flows, None)
m = re.search(r"\) in ([0-9.]+) s", demo)
gen_s = float(m.group(1)) if m else wall
score = None
for line in reversed(open(f"{work}/score-{seed}.txt").read().splitlines()):
    if line.startswith("{"):
        score = json.loads(line)
        break
score_text = open(f"{work}/score-{seed}.txt").read()
m = re.search(r"(\d+) traces fetched in ([0-9.]+) s", score_text)
score_fetch = {"traces": int(m.group(1)), "seconds": float(m.group(2))} if m else None
bridges_sent = total(s, C) - total(b, C)
bridges = total(a, C) - total(b, C)
matches = total(a, H + "_count") - total(b, H + "_count")
lat_sum = total(a, H + "_sum") - total(b, H + "_sum")
p50, p99 = quantile(0.50, hb, ha), quantile(0.99, hb, ha)
held = total(a, 'correlation_links_decided_total{when="after_hold"}') - total(b, 'correlation_links_decided_total{when="after_hold"}')
at_end = total(a, 'correlation_links_decided_total{when="batch_end"}') - total(b, 'correlation_links_decided_total{when="batch_end"}')
print(json.dumps({
    "config": config,
    "profile": profile,
    "rate": rate,
    "flows": gen_flows,
    "concurrent_twins": twins,
    "seed": seed,
    "scheduled_s": round(gen_flows / rate, 3),
    "generator_s": round(gen_s, 2),
    "flows_per_generator_s": round(gen_flows / gen_s, 1) if gen_s > 0 else None,
    "bridges": int(bridges),
    "bridges_when_sent": int(bridges_sent),
    "bridges_per_generator_s": round(bridges / gen_s, 1) if gen_s > 0 else None,
    "matches_timed": int(matches),
    "links_held": int(held),
    "share_held": round(held / (held + at_end), 4) if held + at_end else None,
    "match_latency_mean_ms": round(lat_sum / matches * 1e3, 3) if matches else None,
    "match_latency_p50_ms": None if p50 is None else round(p50 * 1e3, 3),
    "match_latency_p99_ms": None if p99 is None else round(p99 * 1e3, 3),
    "rss_mib_when_sent": round(int(rss_sent) / 1024, 1),
    "rss_mib_after": round(int(rss_after) / 1024, 1),
    "peak_rss_mib": round(int(hwm) / 1024, 1),
    "peak_rss_since_start": reset != "true",
    "active_keys": total(a, "correlation_active_keys"),
    "precision": score and score.get("precision"),
    "recall": score and score.get("recall"),
    "score_timed_out": score is None,
    "score_fetch": score_fetch,
    "score": score and {k: v for k, v in score.items() if k not in ("missed", "wrong")},
    "score_missed": score and score.get("missed"),
    "score_wrong": score and score.get("wrong"),
}))
PY
    tail -n 1 "$RUNS" >&2
done
    stop_server
done

bench_python "$INPROC" "$RUNS" "$OUT" "$(bench_meta correlate)" "$FLOWS_SECONDS" "$MAX_FLOWS" "$SERVE_ARGS" "$HARSH" <<'PY'
inproc_path, runs_path, out_path, meta, flows_seconds, max_flows, serve_args, harsh = sys.argv[1:9]
inproc = [json.loads(l) for l in open(inproc_path) if l.strip()]
runs = [json.loads(l) for l in open(runs_path) if l.strip()]
meta = json.loads(meta)
# The generator's elapsed time includes a tail after the last flow starts (concurrent twins start
# 3-8 s later, then the flow's own duration, reorder/late delays and duplicate resends). The tail
# does not depend on the rate, so it is measured on the lowest-rate run (which keeps up) and taken
# off every run's elapsed time: achieved flows/s = flows / (generator_s - tail_s).
tail_s = None
if runs:
    base = min((r for r in runs if r["profile"] == "default"), key=lambda r: r["rate"], default=runs[0])
    tail_s = max(0.0, base["generator_s"] - base["scheduled_s"])
for r in runs:
    send_s = r["generator_s"] - tail_s
    r["tail_s"] = round(tail_s, 2)
    r["send_s"] = round(send_s, 2)
    r["achieved_flows_per_s"] = round(r["flows"] / send_s, 1) if send_s > 0 else None
    r["ratio_to_requested_rate"] = (
        round(r["achieved_flows_per_s"] / r["rate"], 4) if r["achieved_flows_per_s"] else None
    )
    r["bridges_per_s"] = round(r["bridges"] / send_s, 1) if send_s > 0 else None
doc = {
    **meta,
    "in_process": inproc,
    "end_to_end": {
        "configs": {"none": "correlation: {}", "pattern": "correlation: {flow_patterns: [[beorn, mdso, arda]]}"},
        "harsh_profile": harsh,
        "flows_seconds": float(flows_seconds),
        "max_flows": int(max_flows),
        "serve_args": serve_args,
        "tail_s": tail_s,
        "note": "generator and server share the machine. achieved_flows_per_s and bridges_per_s are "
        "over send_s = generator_s - tail_s, the tail (twins, flow duration, late and duplicate "
        "sends) measured on the lowest-rate run; *_per_generator_s use the whole elapsed time. "
        "Match latency is from the arrival of the segment that completed a match to its bridge "
        "being written (includes correlation.settle for links held back)",
        "runs": runs,
    },
}
write_results(out_path, doc)
print("\nin-process (correlate_bench example)")
hdr = f"{'config':>7} {'circuits':>9} {'batch':>5} {'active keys':>11} {'segments/s':>12} {'matches/s':>12} {'p99 call us':>11} {'p99 match us':>12}"
print_header(hdr)
for r in inproc:
    print(
        f"{r.get('config', ''):>7} {r['circuits']:>9} {r['batch']:>5} {r['peak_active_keys']:>11} {r['segments_per_s']:>12,.0f} "
        f"{r['links_per_s']:>12,.0f} {r['p99_us']:>11.2f} {num(r.get('match_p99_us'), '.2f'):>12}"
    )
print(f"\nend to end (seam demo mdso -> seam serve); generator tail {num(tail_s, '.1f')} s taken off each run")
hdr = (f"{'config':>7} {'noise':>7} {'rate':>6} {'flows':>6} {'achieved/s':>10} {'ratio':>6} {'bridges':>7} {'bridges/s':>9} {'held':>6} "
       f"{'p50 ms':>7} {'p99 ms':>7} {'RSS MiB':>7} {'peak MiB':>8} {'precision':>9} {'recall':>7} {'score s':>7}")
print_header(hdr)
for r in runs:
    print(
        f"{r['config']:>7} {r['profile']:>7} {r['rate']:>6.0f} {r['flows']:>6} {num(r['achieved_flows_per_s'], ',.0f'):>10} "
        f"{num(r['ratio_to_requested_rate'], '.3f'):>6} {r['bridges']:>7} {num(r['bridges_per_s'], ',.0f'):>9} {num(r['share_held'], '.3f'):>6} "
        f"{num(r['match_latency_p50_ms'], '.2f'):>7} {num(r['match_latency_p99_ms'], '.2f'):>7} "
        f"{r['rss_mib_after']:>7.0f} {r['peak_rss_mib']:>8.0f} "
        f"{num(r['precision'], '.4f'):>9} {num(r['recall'], '.4f'):>7} "
        f"{num(r['score_fetch'] and r['score_fetch']['seconds'], '.1f'):>7}"
    )
print(f"\nwrote {out_path}")
PY
