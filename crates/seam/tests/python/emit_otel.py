#!/usr/bin/env python3
"""Emits spans, logs and metrics to Seam with the OpenTelemetry Python SDK, then prints ONE JSON
line on stdout describing exactly what was sent, so a Rust test can assert the values it reads back.

Usage: emit_otel.py --protocol http|http-gzip|grpc --endpoint URL [--tenant T] --run-id ID

--endpoint is the OTLP/HTTP base URL (http://127.0.0.1:4318) or the gRPC address (127.0.0.1:4317).
The run id goes into service.name (`pysdk-<run-id>`) and the attribute `seam.run_id`, so a test
finds its own data. --tenant is sent as X-Scope-OrgID (omit it for the default tenant).
"""

import argparse
import json
import sys
import time

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

COUNTER = "seam_test_requests"
HISTOGRAM = "seam_test_latency"
UPDOWN = "seam_test_inflight"
BOUNDARIES = [0.1, 0.5, 1.0, 5.0]
LATENCIES = [0.05, 0.2, 0.7, 3.0]


def exporters(protocol, endpoint, tenant):
    """The span, log and metric exporters for a protocol."""
    if protocol in ("http", "http-gzip"):
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        headers = {"X-Scope-OrgID": tenant} if tenant else {}
        kw = {
            "headers": headers,
            "timeout": 30,
            "compression": Compression.Gzip if protocol == "http-gzip" else Compression.NoCompression,
        }
        base = endpoint.rstrip("/")
        return (
            OTLPSpanExporter(endpoint=f"{base}/v1/traces", **kw),
            OTLPLogExporter(endpoint=f"{base}/v1/logs", **kw),
            OTLPMetricExporter(endpoint=f"{base}/v1/metrics", **kw),
        )
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        # gRPC metadata keys must be lower case.
        headers = {"x-scope-orgid": tenant} if tenant else {}
        kw = {"endpoint": endpoint, "insecure": True, "headers": headers, "timeout": 30}
        return OTLPSpanExporter(**kw), OTLPLogExporter(**kw), OTLPMetricExporter(**kw)
    raise SystemExit(f"unknown --protocol {protocol!r} (use http, http-gzip or grpc)")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--protocol", required=True, choices=["http", "http-gzip", "grpc"])
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--tenant", default="")
    ap.add_argument("--run-id", required=True)
    args = ap.parse_args()

    service = f"pysdk-{args.run_id}"
    resource = Resource.create({"service.name": service, "seam.run_id": args.run_id})
    span_exp, log_exp, metric_exp = exporters(args.protocol, args.endpoint, args.tenant)

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exp))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exp))
    reader = PeriodicExportingMetricReader(metric_exp, export_interval_millis=3_600_000)
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=[reader],
        views=[
            View(
                instrument_name=HISTOGRAM,
                aggregation=ExplicitBucketHistogramAggregation(boundaries=BOUNDARIES),
            )
        ],
    )

    tracer = tracer_provider.get_tracer("seam-test.tracer", "1.0")
    logger = logger_provider.get_logger("seam-test.logger", "1.0")
    meter = meter_provider.get_meter("seam-test.meter", "1.0")

    root_attrs = {
        "http.request.method": "GET",
        "http.response.status_code": 200,
        "seam.ratio": 0.25,
        "seam.cached": True,
        "seam.tags": ["blue", "green"],
        "seam.run_id": args.run_id,
    }
    event_attrs = {"retry.attempt": 2, "retry.reason": "timeout"}
    status_message = "upstream timed out"
    t0 = time.time_ns()
    in_span_line = f"order 42 placed run={args.run_id}"
    json_line = json.dumps({"event": "payment", "amount": 12.5, "run": args.run_id})
    plain_line = f"payment settled run={args.run_id}"
    log_attrs = {"order.id": "42", "user.tier": "gold"}

    with tracer.start_as_current_span("GET /checkout", kind=SpanKind.SERVER, attributes=root_attrs) as root:
        with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT) as child:
            child.set_attribute("db.system", "postgresql")
            child.add_event("retry", attributes=event_attrs)
            logger.emit(
                timestamp=t0,
                context=otel_context.get_current(),
                severity_number=SeverityNumber.WARN,
                severity_text="WARN",
                body=in_span_line,
                attributes=log_attrs,
            )
            child.set_status(Status(StatusCode.ERROR, status_message))
    root_ctx, child_ctx = root.get_span_context(), child.get_span_context()
    # Two records outside any span, with the same metadata (so they share one Loki stream).
    for i, line in enumerate([json_line, plain_line], start=1):
        logger.emit(
            timestamp=t0 + i * 1_000_000,
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            body=line,
        )

    counter = meter.create_counter(COUNTER, description="requests served")
    counter.add(3, {"route": "/checkout"})
    counter.add(4, {"route": "/checkout"})
    hist = meter.create_histogram(HISTOGRAM, unit="s", description="request latency")
    for v in LATENCIES:
        hist.record(v, {"route": "/checkout"})
    updown = meter.create_up_down_counter(UPDOWN, description="requests in flight")
    updown.add(5)
    updown.add(-2)

    ok = True
    for p in (tracer_provider, logger_provider, meter_provider):
        ok = p.force_flush() is not False and ok
    for p in (tracer_provider, logger_provider, meter_provider):
        p.shutdown()

    hist_sum = 0.0
    for v in LATENCIES:
        hist_sum += v
    # Cumulative bucket counts keyed by the `le` value as Prometheus writes it ("1", not "1.0").
    buckets = {}
    for b in BOUNDARIES:
        le = repr(b)[:-2] if repr(b).endswith(".0") else repr(b)
        buckets[le] = sum(1 for v in LATENCIES if v <= b)
    buckets["+Inf"] = len(LATENCIES)
    hexid = lambda n, w: format(n, f"0{w}x")
    report = {
        "protocol": args.protocol,
        "tenant": args.tenant,
        "run_id": args.run_id,
        "service": service,
        "flushed": ok,
        "trace_id": hexid(root_ctx.trace_id, 32),
        "spans": [
            {"name": "GET /checkout", "kind": "SPAN_KIND_SERVER", "span_id": hexid(root_ctx.span_id, 16), "parent_span_id": None},
            {"name": "SELECT orders", "kind": "SPAN_KIND_CLIENT", "span_id": hexid(child_ctx.span_id, 16), "parent_span_id": hexid(root_ctx.span_id, 16)},
        ],
        "root_attributes": root_attrs,
        "event": {"name": "retry", "attributes": event_attrs},
        "status_message": status_message,
        "logs": [
            {"body": in_span_line, "timestamp_ns": t0, "severity_text": "WARN", "attributes": log_attrs,
             "trace_id": hexid(root_ctx.trace_id, 32), "span_id": hexid(child_ctx.span_id, 16)},
            {"body": json_line, "timestamp_ns": t0 + 1_000_000, "severity_text": "INFO", "attributes": {}},
            {"body": plain_line, "timestamp_ns": t0 + 2_000_000, "severity_text": "INFO", "attributes": {}},
        ],
        "metrics": {
            "counter": {"name": COUNTER, "unit": "", "attributes": {"route": "/checkout"}, "value": 7},
            "histogram": {"name": HISTOGRAM, "unit": "s", "attributes": {"route": "/checkout"},
                          "count": len(LATENCIES), "sum": hist_sum, "buckets": buckets},
            "updown": {"name": UPDOWN, "unit": "", "attributes": {}, "value": 3},
        },
    }
    print(json.dumps(report))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
