#!/usr/bin/env bash
# Log benchmark: starts a release `seam serve` on 127.0.0.1 with a fresh data directory, pushes
# BENCH_BYTES of realistic log lines through Loki push (protobuf + snappy) with `seam bench logs`
# (which also writes the same lines to a text file), then measures queries against `grep` over
# that file. Writes bench/results/logs.json plus a table on stdout.
#
# Measured:
#   - push ingest: raw line MB/s and lines/s (bodies are generated before the timed run);
#   - a substring scan, `sum(count_over_time({env="bench"} |= "deadline" [2h]))` as a one-step
#     query_range, in GB/s of raw line bytes, against `grep -c -F deadline` over the text file in
#     the same run (the physical baseline; the counts must agree);
#   - a needle query for one trace id (`{env="bench"} |= "<id>"`, limit 1000): ms, and the bytes
#     the server read (from /proc/<pid>/io) as a fraction of the segment bytes;
#   - `sum by (level) (rate({env="bench"}[1m]))` over the pushed hour, step 60 s: ms;
#   - the server's peak RSS (VmHWM) during ingest and during the queries.
# The queries run once the head has been flushed to segments, on files in the page cache.
#
# Environment:
#   BENCH_BYTES        raw line bytes to push (default 5000000000)
#   BENCH_CONCURRENCY  push connections (default 4)
#   BENCH_QUERY_RUNS   runs of each query; the table shows the median (default 3)
#   BENCH_SERVE_ARGS   extra arguments for `seam serve`
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init logs

BYTES="${BENCH_BYTES:-5000000000}"
CONCURRENCY="${BENCH_CONCURRENCY:-4}"
QUERY_RUNS="${BENCH_QUERY_RUNS:-3}"

bench_build

bench_workdir
RAW="$WORK/lines.txt"
# The text file is as large as the pushed lines: never leave it behind, even when keeping WORK.
trap 'rc=$?; rm -f "$RAW"; (exit $rc); bench_cleanup' EXIT

start_server
wait_for_server

echo "== pushing $BYTES bytes of log lines to http://$LISTEN" >&2
reset_ingest="$(reset_peak_rss)"
push_out="$("$SEAM" bench logs --url "http://$LISTEN" --bytes "$BYTES" \
    --concurrency "$CONCURRENCY" --raw-out "$RAW" --json)"
printf '%s\n' "$push_out" | sed '$d' >&2
PUSH_JSON="$(printf '%s\n' "$push_out" | tail -n 1)"
server_alive
INGEST_HWM="$(rss_kib VmHWM)"

# Queries measure the segment read path: wait until the head has been flushed (it flushes at
# storage.flush_age, two minutes by default, after the last push).
metric() { curl -s "http://$LISTEN/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
echo "waiting for the head to be flushed..." >&2
for _ in $(seq 1 100); do
    [[ "$(metric seam_head_bytes)" == "0" ]] && break
    sleep 3
done

reset_query="$(reset_peak_rss)"
bench_python "$OUT" "$(bench_meta logs)" "$PUSH_JSON" "$RAW" "$LISTEN" "$SERVER_PID" \
    "$QUERY_RUNS" "$INGEST_HWM" "$reset_ingest" "$reset_query" "$SERVE_ARGS" "$LOG" <<'PY'
import os, statistics, subprocess, time, urllib.parse, urllib.request

(out_path, meta, push_json, raw, listen, pid, runs, ingest_hwm, reset_ingest, reset_query,
 serve_args, log_path) = sys.argv[1:13]
runs = int(runs)
push = json.loads(push_json)
meta = json.loads(meta)
first_ns, last_ns = int(push["first_ns"]), int(push["last_ns"])
raw_bytes = push["raw_bytes"]

def proc_field(name, path):
    with open(path) as f:
        for line in f:
            if line.startswith(name):
                return int(line.split()[1])
    return None

def rchar():
    return proc_field("rchar:", f"/proc/{pid}/io")

def metrics():
    text = urllib.request.urlopen(f"http://{listen}/metrics").read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            parts = line.split()
            if len(parts) == 2:
                out[parts[0]] = float(parts[1])
    return out

def query(path, **params):
    url = f"http://{listen}{path}?{urllib.parse.urlencode(params)}"
    before = rchar()
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as r:
        body = r.read()
    ms = (time.perf_counter() - t0) * 1000
    doc = json.loads(body)
    if doc.get("status") != "success":
        raise SystemExit(f"query failed: {url}: {body[:500]!r}")
    return doc["data"], ms, rchar() - before

def repeat(path, **params):
    res = [query(path, **params) for _ in range(runs)]
    return res[-1][0], [r[1] for r in res], [r[2] for r in res]

def store_stats(data):
    chunk = data.get("stats", {}).get("querier", {}).get("store", {}).get("chunk", {})
    summ = data.get("stats", {}).get("summary", {})
    return {
        "lines_processed": summ.get("totalLinesProcessed"),
        "bytes_processed": summ.get("totalBytesProcessed"),
        "compressed_bytes": chunk.get("compressedBytes") or None,
    }

def grep(needle):
    best, count = None, None
    for _ in range(2):  # the second run reads the file from the page cache, as seam does
        t0 = time.perf_counter()
        p = subprocess.run(["grep", "-c", "-F", needle, raw], capture_output=True, text=True,
                           env={**os.environ, "LC_ALL": "C"})
        s = time.perf_counter() - t0
        count = int(p.stdout.strip() or 0)
        best = s if best is None else min(best, s)
    return count, best

def written_segments():
    """(segment bytes, token filter bytes) of the log segments, from the server's log."""
    seg, filt = 0, 0
    for line in open(log_path, errors="replace"):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        f = obj.get("fields") if isinstance(obj.get("fields"), dict) else obj
        if f.get("message") == "segment written" and "/logs/" in str(f.get("path", "")):
            seg += int(f.get("bytes", 0))
            filt += int(f.get("token_filter_bytes", 0))
    return seg, filt

m = metrics()
segment_bytes = int(m.get("seam_segment_bytes", 0))
head_bytes = int(m.get("seam_head_bytes", 0))
end_s = last_ns // 1_000_000_000 + 1
start_s = first_ns // 1_000_000_000 - 1

# 1. Substring scan vs grep.
scan_q = 'sum(count_over_time({env="bench"} |= "deadline" [2h]))'
data, scan_ms, scan_read = repeat("/loki/api/v1/query_range", query=scan_q, start=end_s, end=end_s, step=60)
values = data["result"][0]["values"] if data["result"] else []
seam_count = int(float(values[-1][1])) if values else 0
grep_count, grep_s = grep("deadline")
scan_s = statistics.median(scan_ms) / 1000
scan = {
    "query": scan_q,
    "ms": [round(x, 1) for x in scan_ms],
    "median_ms": round(scan_s * 1000, 1),
    "gb_per_s": round(raw_bytes / 1e9 / scan_s, 3),
    "count": seam_count,
    "grep_count": grep_count,
    "counts_agree": seam_count == grep_count,
    "grep_s": round(grep_s, 3),
    "grep_gb_per_s": round(raw_bytes / 1e9 / grep_s, 3),
    "ratio_to_grep": round(grep_s / scan_s, 3),
    "bytes_read": scan_read[-1],
    **store_stats(data),
}

# 2. Needle: one trace id.
needle = push["needle_trace_id"]
needle_q = '{env="bench"} |= "%s"' % needle
data, needle_ms, needle_read = repeat("/loki/api/v1/query_range", query=needle_q,
                                      start=start_s, end=end_s, limit=1000, direction="backward")
entries = sum(len(s["values"]) for s in data["result"])
needle_grep, _ = grep(needle)
needle = {
    "query": needle_q,
    "ms": [round(x, 1) for x in needle_ms],
    "median_ms": round(statistics.median(needle_ms), 1),
    "entries": entries,
    "grep_count": needle_grep,
    "counts_agree": entries == needle_grep,
    "bytes_read_first": needle_read[0],
    "bytes_read": needle_read[-1],
    "fraction_of_segment_bytes": round(needle_read[-1] / segment_bytes, 6) if segment_bytes else None,
    **store_stats(data),
}

# 3. Rate by level over the hour.
rate_q = 'sum by (level) (rate({env="bench"}[1m]))'
data, rate_ms, _ = repeat("/loki/api/v1/query_range", query=rate_q, start=start_s, end=end_s, step=60)
rate = {
    "query": rate_q,
    "ms": [round(x, 1) for x in rate_ms],
    "median_ms": round(statistics.median(rate_ms), 1),
    "series": len(data["result"]),
    "points": sum(len(s["values"]) for s in data["result"]),
}

log_seg, filter_bytes = written_segments()
query_hwm = proc_field("VmHWM:", f"/proc/{pid}/status")
doc = {
    **meta,
    "serve_args": serve_args,
    "note": "client and server share the machine; files are in the page cache for grep and seam alike",
    "push": push,
    "store": {"segment_bytes": segment_bytes, "head_bytes": head_bytes,
              "raw_to_segment_ratio": round(raw_bytes / segment_bytes, 2) if segment_bytes else None,
              "log_segment_bytes": log_seg, "token_filter_bytes": filter_bytes,
              "token_filter_fraction": round(filter_bytes / log_seg, 4) if log_seg else None},
    "peak_rss_mib": {
        "ingest": round(int(ingest_hwm) / 1024, 1),
        "ingest_since_start": reset_ingest != "true",
        "queries": round(query_hwm / 1024, 1),
        "queries_since_start": reset_query != "true",
    },
    "scan": scan,
    "needle": needle,
    "rate_by_level": rate,
}
write_results(out_path, doc, f"{raw_bytes / 1e9:.2f} GB of lines; ")
print(f"push      {push['lines']:,} lines, {raw_bytes / 1e9:.2f} GB raw: {push['raw_mb_per_s']:.1f} MB/s "
      f"({push['lines_per_s']:,.0f} lines/s), p99 {push['p99_ms']:.0f} ms, {push['retries']} retries")
print(f"store     {segment_bytes / 1e6:.1f} MB of segments (raw/segment {doc['store']['raw_to_segment_ratio']}), "
      f"{head_bytes / 1e6:.1f} MB in the head; token filters {num(doc['store']['token_filter_fraction'], '.2%')} of the log segments")
print(f"scan      {scan['median_ms']:.0f} ms = {scan['gb_per_s']:.2f} GB/s; grep -c {scan['grep_s'] * 1000:.0f} ms = "
      f"{scan['grep_gb_per_s']:.2f} GB/s; seam/grep speed {scan['ratio_to_grep']:.2f}; "
      f"counts {scan['count']} vs {scan['grep_count']}")
print(f"needle    {needle['median_ms']:.1f} ms, {needle['entries']} entries (grep {needle['grep_count']}), "
      f"read {needle['bytes_read'] / 1e6:.2f} MB = {num(needle['fraction_of_segment_bytes'], '.4%')} of the segments")
print(f"rate      {rate['median_ms']:.0f} ms for {rate['series']} series x {rate['points'] // max(rate['series'], 1)} steps")
print(f"peak RSS  ingest {doc['peak_rss_mib']['ingest']:.0f} MiB, queries {doc['peak_rss_mib']['queries']:.0f} MiB")
print(f"\nwrote {out_path}")
PY
