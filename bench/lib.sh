# Shared helpers of the bench scripts; sourced by bench/ingest.sh, bench/logs.sh and
# bench/correlate.sh, which call bench_init first.
# shellcheck shell=bash

# bench_init NAME: sets ROOT (the repository, made the working directory), SEAM (the release
# binary), SERVE_ARGS (from BENCH_SERVE_ARGS) and OUT (bench/results/NAME.json).
bench_init() {
    ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    cd "$ROOT"
    SEAM="$ROOT/target/release/seam"
    SERVE_ARGS="${BENCH_SERVE_ARGS:-}"
    OUT="$ROOT/bench/results/$1.json"
}

# bench_build [CARGO_ARGS...]: builds SEAM in release mode, then (with arguments) the release build
# of CARGO_ARGS too, e.g. `-p seam-correlate --example correlate_bench`; cargo's output on stderr.
bench_build() {
    if (($#)); then
        echo "building release binaries..." >&2
    else
        echo "building release binary..." >&2
    fi
    cargo build --release -p seam >&2
    if (($#)); then
        cargo build --release "$@" >&2
    fi
}

# bench_workdir: a fresh temp dir WORK with DATA_DIR, LOG and an empty RUNS (JSON lines), and the
# traps that stop the server and clean up on exit. KEPT (default WORK) is what a failure names.
bench_workdir() {
    WORK="$(mktemp -d)"
    DATA_DIR="$WORK/data"
    LOG="$WORK/seam.log"
    RUNS="$WORK/runs.jsonl"
    mkdir -p "$DATA_DIR"
    : >"$RUNS"
    SERVER_PID=""
    KEPT="$WORK"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

# bench_cleanup: the EXIT trap. Stops the server (SIGTERM, then SIGKILL after 10 s), removes the
# data dir, and removes WORK unless the script failed (then it names KEPT and tails the log).
bench_cleanup() {
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
        echo "--- last lines of the server log (kept in $KEPT) ---" >&2
        tail -n 20 "$LOG" >&2 || true
    else
        rm -rf "$WORK"
    fi
    exit $rc
}

# start_server [ARGS...]: `seam serve ARGS...` on ephemeral ports with DATA_DIR and SERVE_ARGS in
# the background, logging to LOG; sets SERVER_PID.
start_server() {
    # shellcheck disable=SC2086 # SERVE_ARGS is a list of words
    "$SEAM" serve "$@" --data-dir "$DATA_DIR" --listen 127.0.0.1:0 --otlp-http 127.0.0.1:0 \
        --otlp-grpc 127.0.0.1:0 $SERVE_ARGS >"$LOG" 2>&1 &
    SERVER_PID=$!
}

# stop_server: SIGTERM the server started by start_server and wait for it (a graceful stop).
stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}

# field NAME: the value of NAME in the first log line that has it. The start-up line carries the
# bound addresses: {"listen":"127.0.0.1:N","otlp_http":"127.0.0.1:M",...}
field() {
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

# wait_for_server: sets OTLP_HTTP and LISTEN from the server log (30 s at most), then waits up to
# 60 s for GET /ready to return 200; exits if the server dies or does not come up.
wait_for_server() {
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

    local ready=""
    for _ in $(seq 1 600); do
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "seam serve exited before it was ready" >&2; exit 1; }
        if [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$LISTEN/ready" || true)" == "200" ]]; then
            ready=1
            break
        fi
        sleep 0.1
    done
    [[ -n "$ready" ]] || { echo "GET http://$LISTEN/ready did not return 200 within 60 s" >&2; exit 1; }
}

# server_alive: exits with an error if the server has died (call after a run).
server_alive() {
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "seam serve died during the run" >&2; exit 1; }
}

# rss_kib FIELD: the server's FIELD (VmRSS, VmHWM) from /proc/<pid>/status, in KiB.
rss_kib() { awk '/^'"$1"':/ {print $2}' "/proc/$SERVER_PID/status"; }

# reset_peak_rss: resets the server's peak RSS to its current RSS, so VmHWM is the next run's peak;
# prints true, or false where the kernel does not allow it.
reset_peak_rss() {
    if echo 5 >"/proc/$SERVER_PID/clear_refs" 2>/dev/null; then echo true; else echo false; fi
}

# bench_meta NAME: the JSON header of a results file: benchmark, date, git_commit, git_dirty and
# machine (nproc, CPU model, memory, kernel).
bench_meta() {
    local commit dirty=false
    commit="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
    [[ -n "$(git status --porcelain 2>/dev/null || true)" ]] && dirty=true
    python3 - "$1" "$commit" "$dirty" <<'PY'
import datetime, json, os, platform, sys
name, commit, dirty = sys.argv[1:4]
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
print(json.dumps({
    "benchmark": name,
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "git_commit": commit,
    "git_dirty": dirty == "true",
    "machine": {
        "nproc": os.cpu_count(),
        "model_name": model,
        "mem_total_mib": mem_mib,
        "kernel": platform.release(),
    },
}))
PY
}

# Python helpers that bench_python puts before the script: write_results OUT DOC [DETAIL] writes the
# results file (creating its directory) and prints the machine line, print_header HDR prints a
# table header and its rule, num V FMT formats V or prints "-" for None.
BENCH_PY='
import json, os, sys

def write_results(out_path, doc, detail=""):
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    nproc, model = doc["machine"]["nproc"], doc["machine"]["model_name"]
    commit, dirty = doc["git_commit"][:12], " (dirty)" if doc["git_dirty"] else ""
    print(f"\nmachine: {nproc} x {model}; {detail}commit {commit}{dirty}")

def print_header(hdr):
    print(hdr)
    print("-" * len(hdr))

def num(v, fmt):
    return "-" if v is None else format(v, fmt)
'

# bench_python ARGS... <<'PY' ... PY: runs the Python script on stdin with ARGS as sys.argv[1:],
# after the helpers of BENCH_PY.
bench_python() { python3 -c "$BENCH_PY$(cat)" "$@"; }
