#!/usr/bin/env python3
"""Emits log records with the OpenTelemetry Python SDK over OTLP/HTTP (protobuf), for the LogQL
tests: a resource with stream-label attributes (service.name, service.namespace,
deployment.environment) and one that is not (host.name), one record inside a span, records with JSON
string bodies and one with a map body. Prints ONE JSON line on stdout describing exactly what was
sent.

Usage: emit_otel_logs.py --endpoint http://127.0.0.1:4318 --run-id ID
"""

import argparse
import json
import sys
import time

from opentelemetry import context as otel_context
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--run-id", required=True)
    args = ap.parse_args()

    base = args.endpoint.rstrip("/")
    service = f"shop-{args.run_id}"
    resource_attrs = {
        "service.name": service,
        "service.namespace": "checkout",
        "deployment.environment": "e2e",
        "host.name": "node-7",
    }
    resource = Resource.create(resource_attrs)
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=30)))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{base}/v1/logs", timeout=30))
    )
    tracer = tracer_provider.get_tracer("shop.tracer", "2.1")
    logger = logger_provider.get_logger("shop.logger", "2.1")

    t0 = time.time_ns() - 5_000_000_000
    login = json.dumps({"user_id": 42, "action": "login", "latency_ms": 12.5})
    logout = json.dumps({"user_id": 7, "action": "logout", "latency_ms": 3})
    boom_body = {"user_id": 42, "msg": "boom"}
    records = []

    with tracer.start_as_current_span("POST /orders") as span:
        line = f"order 42 placed run={args.run_id}"
        attrs = {"order.id": "42", "http.route": "/orders"}
        logger.emit(
            timestamp=t0,
            context=otel_context.get_current(),
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            body=line,
            attributes=attrs,
        )
        ctx = span.get_span_context()
        records.append({"body": line, "timestamp_ns": t0, "severity_text": "WARN", "severity_number": 13,
                        "attributes": attrs, "trace_id": format(ctx.trace_id, "032x"),
                        "span_id": format(ctx.span_id, "016x"), "flags": int(ctx.trace_flags)})
    for i, (body, sev, num) in enumerate(
        [(login, "INFO", SeverityNumber.INFO), (logout, "INFO", SeverityNumber.INFO), (boom_body, "ERROR", SeverityNumber.ERROR)],
        start=1,
    ):
        ts = t0 + i * 1_000_000
        logger.emit(timestamp=ts, severity_number=num, severity_text=sev, body=body)
        records.append({"body": body, "timestamp_ns": ts, "severity_text": sev, "severity_number": num.value,
                        "attributes": {}})

    ok = tracer_provider.force_flush() is not False
    ok = logger_provider.force_flush() is not False and ok
    tracer_provider.shutdown()
    logger_provider.shutdown()
    print(json.dumps({
        "flushed": ok,
        "service": service,
        # Every resource attribute, the SDK's own telemetry.sdk.* included.
        "resource": {k: v for k, v in resource.attributes.items()},
        "scope": {"name": "shop.logger", "version": "2.1"},
        "records": records,
    }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
