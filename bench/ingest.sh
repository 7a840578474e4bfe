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

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DURATION="${BENCH_DURATION:-10}"
SIGNALS="${BENCH_SIGNALS:-traces logs}"
CONCURRENCY="${BENCH_CONCURRENCY:-1 4 16}"
CEILING_THREADS="${BENCH_CEILING_THREADS:-2}"
SERVE_ARGS="${BENCH_SERVE_ARGS:-}"
OUT="$ROOT/bench/results/ingest.json"
SEAM="$ROOT/target/release/seam"

echo "building release binary..." >&2
cargo build --release -p seam >&2

WORK="$(mktemp -d)"
DATA_DIR="$WORK/data"
LOG="$WORK/seam.log"
RUNS="$WORK/runs.jsonl"
mkdir -p "$DATA_DIR"
: >"$RUNS"
SERVER_PID=""

cleanup() {
    local rc=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "server did not stop within 10 s of SIGTERM; killing it" >&2
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$DATA_DIR"
    if [[ $rc -ne 0 && -f "$LOG" ]]; then
        echo "--- last lines of the server log (kept in $LOG) ---" >&2
        tail -n 20 "$LOG" >&2 || true
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck disable=SC2086 # SERVE_ARGS is a list of words
"$SEAM" serve --data-dir "$DATA_DIR" --listen 127.0.0.1:0 --otlp-http 127.0.0.1:0 \
    --otlp-grpc 127.0.0.1:0 $SERVE_ARGS >"$LOG" 2>&1 &
SERVER_PID=$!

# The start-up line carries the bound addresses: {"listen":"127.0.0.1:N","otlp_http":"127.0.0.1:M",...}
field() { # field NAME: the value of NAME in the first log line that has it
    python3 - "$LOG" "$1" <<'PY'
import json, sys
for line in open(sys.argv[1], errors="replace"):
    try:
        obj = json.loads(line)
    except ValueError:
        continue
    fields = obj.get("fields", {}) if isinstance(obj.get("fields"), dict) else {}
    v = obj.get(sys.argv[2], fields.get(sys.argv[2]))
    if v:
        print(v)
        break
PY
}
OTLP_HTTP=""
for _ in $(seq 1 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "seam serve exited during start-up" >&2; exit 1; }
    OTLP_HTTP="$(field otlp_http)"
    [[ -n "$OTLP_HTTP" ]] && break
    sleep 0.1
done
[[ -n "$OTLP_HTTP" ]] || { echo "no otlp_http address in the server log after 30 s" >&2; exit 1; }
LISTEN="$(field listen)"
echo "seam serve pid $SERVER_PID: listen $LISTEN, otlp_http $OTLP_HTTP" >&2

ready=""
for _ in $(seq 1 600); do
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "seam serve exited before it was ready" >&2; exit 1; }
    if [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$LISTEN/ready" || true)" == "200" ]]; then
        ready=1
        break
    fi
    sleep 0.1
done
[[ -n "$ready" ]] || { echo "GET http://$LISTEN/ready did not return 200 within 60 s" >&2; exit 1; }

rss_kib() { awk '/^'"$1"':/ {print $2}' "/proc/$SERVER_PID/status"; }

# run KIND SIGNAL CONCURRENCY: one bench run; appends its JSON (plus kind and peak RSS) to $RUNS.
run() {
    local kind=$1 signal=$2 conc=$3 out last peak="null" reset=false
    local args=(bench ingest --otlp-http "http://$OTLP_HTTP" --signal "$signal"
        --concurrency "$conc" --duration "$DURATION" --json)
    [[ "$kind" == ceiling ]] && args+=(--decode-only)
    if [[ "$kind" == http ]]; then
        # Reset the peak RSS to the current RSS, so VmHWM is this run's peak.
        if echo 5 >"/proc/$SERVER_PID/clear_refs" 2>/dev/null; then reset=true; fi
    fi
    echo "== $kind $signal concurrency=$conc" >&2
    out="$("$SEAM" "${args[@]}")"
    printf '%s\n' "$out" | sed '$d' >&2
    last="$(printf '%s\n' "$out" | tail -n 1)"
    if [[ "$kind" == http ]]; then
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "seam serve died during the run" >&2; exit 1; }
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

GIT_COMMIT="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
GIT_DIRTY=false
[[ -n "$(git status --porcelain 2>/dev/null || true)" ]] && GIT_DIRTY=true
mkdir -p "$(dirname "$OUT")"
python3 - "$RUNS" "$OUT" "$GIT_COMMIT" "$GIT_DIRTY" "$DURATION" "$SERVE_ARGS" <<'PY'
import datetime, json, os, platform, sys
runs_path, out_path, commit, dirty, duration, serve_args = sys.argv[1:7]
runs = [json.loads(l) for l in open(runs_path) if l.strip()]
model = "unknown"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
mem_mib = None
try:
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            mem_mib = int(line.split()[1]) // 1024
except OSError:
    pass
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
    "benchmark": "ingest",
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "git_commit": commit,
    "git_dirty": dirty == "true",
    "machine": {
        "nproc": os.cpu_count(),
        "model_name": model,
        "mem_total_mib": mem_mib,
        "kernel": platform.release(),
    },
    "duration_s": float(duration),
    "serve_args": serve_args,
    "note": "client and server share the machine; compare ratio_to_decode_ceiling, not absolute rates",
    "decode_ceiling": ceilings,
    "runs": results,
}
with open(out_path, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")

def num(v, fmt):
    return "-" if v is None else format(v, fmt)

print(f"\nmachine: {os.cpu_count()} x {model}; {duration} s per run; commit {commit[:12]}{' (dirty)' if dirty == 'true' else ''}")
for s, c in ceilings.items():
    print(f"decode-only ceiling {s}: {c['records_per_s']:,.0f} records/s on {c['concurrency']} threads ({c['mb_per_s']:.1f} MB/s)")
hdr = f"{'signal':<8} {'conc':>4} {'records/s':>12} {'MB/s':>8} {'p50 ms':>9} {'p99 ms':>9} {'refused':>8} {'errors':>6} {'peak RSS MiB':>12} {'ratio':>6}"
print(hdr)
print("-" * len(hdr))
for r in results:
    print(
        f"{r['signal']:<8} {r['concurrency']:>4} {r['records_per_s']:>12,.0f} {r['mb_per_s']:>8.2f} "
        f"{r['p50_ms']:>9.1f} {r['p99_ms']:>9.1f} {r['refused']:>8} {r['errors']:>6} "
        f"{num(r['peak_rss_mib'], '.0f'):>12} {num(r['ratio_to_decode_ceiling'], '.3f'):>6}"
    )
print(f"\nwrote {out_path}")
PY
