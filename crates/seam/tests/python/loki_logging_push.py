#!/usr/bin/env python3
"""Logs records through python-logging-loki's LokiHandler (emitter version "1": one JSON push per
record, sent synchronously) to a Loki push endpoint, then prints ONE JSON line on stdout:

    {"records": [{"message", "lo_ns", "hi_ns"}], "errors": [...]}

python-logging-loki stamps each entry with `time.time()` at send time, so the report brackets it:
the entry's timestamp lies in [lo_ns, hi_ns] (within the float's sub-microsecond rounding).

Usage: loki_logging_push.py URL SPEC_JSON

SPEC_JSON: {"logger": "name", "tags": {...}, "records": [{"level": "info", "message": "...",
            "tags": {...}}]}
"""

import json
import logging
import sys
import time

import logging_loki


def main():
    url, spec = sys.argv[1], json.loads(sys.argv[2])
    handler = logging_loki.LokiHandler(url=url, tags=spec["tags"], version="1")
    errors = []
    # The handler reports a failed push through handleError; keep the reason for the report.
    handler.handleError = lambda record: errors.append(repr(sys.exc_info()[1]))
    logger = logging.getLogger(spec["logger"])
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    records = []
    for r in spec["records"]:
        extra = {"tags": r["tags"]} if r.get("tags") else None
        lo = time.time_ns()
        logger.log(logging.getLevelName(r["level"].upper()), r["message"], extra=extra)
        hi = time.time_ns()
        records.append({"message": r["message"], "lo_ns": lo, "hi_ns": hi})
    handler.emitter.close()
    print(json.dumps({"records": records, "errors": errors}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
