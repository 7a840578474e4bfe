#!/usr/bin/env bash
# Ingest benchmark: starts a release `seam serve` on ephemeral ports with a fresh data directory,
# drives it with `seam bench ingest` (OTLP/HTTP protobuf) at several concurrencies, measures the
# in-process decode ceiling (`--decode-only`) on the same payloads, and writes
# bench/results/ingest.json plus a table on stdout.
#
# Environment:
#   BENCH_DURATION      seconds per run (default 10)
#   BENCH_SIGNALS       signals to run (default "traces logs")
#   BENCH_CONCURRENCY   client connections per run (default "1 4 16")
#   BENCH_CEILING_THREADS  threads of the decode-only ceiling (default 2)
#   BENCH_SERVE_ARGS    extra arguments for `seam serve` (e.g. "--fsync interval")
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init ingest

DURATION="${BENCH_DURATION:-10}"
SIGNALS="${BENCH_SIGNALS:-traces logs}"
CONCURRENCY="${BENCH_CONCURRENCY:-1 4 16}"
CEILING_THREADS="${BENCH_CEILING_THREADS:-2}"

bench_build

bench_workdir
KEPT="$LOG"

start_server
wait_for_server

# run KIND SIGNAL CONCURRENCY: one bench run; appends its JSON (plus kind and peak RSS) to $RUNS.
run() {
    local kind=$1 signal=$2 conc=$3 out last peak="null" reset=false
    local args=(bench ingest --otlp-http "http://$OTLP_HTTP" --signal "$signal"
        --concurrency "$conc" --duration "$DURATION" --json)
    [[ "$kind" == ceiling ]] && args+=(--decode-only)
    if [[ "$kind" == http ]]; then reset="$(reset_peak_rss)"; fi
    echo "== $kind $signal concurrency=$conc" >&2
    out="$("$SEAM" "${args[@]}")"
    printf '%s\n' "$out" | sed '$d' >&2
    last="$(printf '%s\n' "$out" | tail -n 1)"
    if [[ "$kind" == http ]]; then
        server_alive
        peak="$(rss_kib VmHWM)"
    fi
    python3 - "$kind" "$peak" "$reset" "$last" >>"$RUNS" <<'PY'
import json, sys
kind, peak, reset, line = sys.argv[1:5]
r = json.loads(line)
r["kind"] = kind
r["peak_rss_mib"] = None if peak == "null" else round(int(peak) / 1024, 1)
r["peak_rss_since_start"] = kind == "http" and reset != "true"
print(json.dumps(r))
PY
}

for signal in $SIGNALS; do
    run ceiling "$signal" "$CEILING_THREADS"
    for conc in $CONCURRENCY; do
        run http "$signal" "$conc"
    done
done

bench_python "$RUNS" "$OUT" "$(bench_meta ingest)" "$DURATION" "$SERVE_ARGS" <<'PY'
runs_path, out_path, meta, duration, serve_args = sys.argv[1:6]
runs = [json.loads(l) for l in open(runs_path) if l.strip()]
meta = json.loads(meta)
ceilings = {r["signal"]: r for r in runs if r["kind"] == "ceiling"}
results = []
for r in runs:
    if r["kind"] != "http":
        continue
    c = ceilings.get(r["signal"])
    r["ratio_to_decode_ceiling"] = (
        round(r["records_per_s"] / c["records_per_s"], 4) if c and c["records_per_s"] > 0 else None
    )
    results.append(r)
doc = {
    **meta,
    "duration_s": float(duration),
    "serve_args": serve_args,
    "note": "client and server share the machine; compare ratio_to_decode_ceiling, not absolute rates",
    "decode_ceiling": ceilings,
    "runs": results,
}
write_results(out_path, doc, f"{duration} s per run; ")
for s, c in ceilings.items():
    print(f"decode-only ceiling {s}: {c['records_per_s']:,.0f} records/s on {c['concurrency']} threads ({c['mb_per_s']:.1f} MB/s)")
hdr = f"{'signal':<8} {'conc':>4} {'records/s':>12} {'MB/s':>8} {'p50 ms':>9} {'p99 ms':>9} {'refused':>8} {'errors':>6} {'peak RSS MiB':>12} {'ratio':>6}"
print_header(hdr)
for r in results:
    print(
        f"{r['signal']:<8} {r['concurrency']:>4} {r['records_per_s']:>12,.0f} {r['mb_per_s']:>8.2f} "
        f"{r['p50_ms']:>9.1f} {r['p99_ms']:>9.1f} {r['refused']:>8} {r['errors']:>6} "
        f"{num(r['peak_rss_mib'], '.0f'):>12} {num(r['ratio_to_decode_ceiling'], '.3f'):>6}"
    )
print(f"\nwrote {out_path}")
PY
