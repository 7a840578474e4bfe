#!/usr/bin/env python3
"""Emits one Beorn -> MDSO -> Arda flow to Seam with the OpenTelemetry Python SDK, the way the three
systems do it in production: three tracer providers (one per service, each with its own OTLP/HTTP
exporter) and NO context propagation between them, so the flow arrives as three unrelated traces
that share only the business key `circuit_id`. Prints ONE JSON line on stdout describing exactly
what was sent, so a Rust test can assert what Seam stitched.

Usage: emit_flow.py --endpoint URL --circuit-id ID [--tenant T] [--t0-ns NS] [--services S,...]

--endpoint is the OTLP/HTTP base URL (http://127.0.0.1:4318). --tenant is sent as X-Scope-OrgID
(omit it for the default tenant). --t0-ns sets the flow's start (Unix nanoseconds; default a second
before now). --services sends only the spans of those services (default beorn,mdso,arda), so a
test can send a flow in parts; the report still describes all of it.

Timing is explicit (start_time=/end_time= in nanoseconds) so the test is deterministic:
  beorn  beorn.create_network_service        SERVER  t0+0   .. t0+300 ms  (root)
  beorn  POST /bpocore/market/api/v1/resources CLIENT t0+50  .. t0+250 ms  (calls MDSO)
  mdso   CircuitDetailsCollector             SERVER  t0+60  .. t0+240 ms  (root, own trace)
  mdso   GET /api/v3/topologies/<id>         CLIENT  t0+90  .. t0+160 ms  (calls Arda)
  arda   arda.get_topology                   SERVER  t0+100 .. t0+150 ms  (root, own trace)
"""

import argparse
import json
import sys
import time

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

MS = 1_000_000


def provider(service, endpoint, tenant, export=True):
    """A tracer provider of its own for one service, exporting over OTLP/HTTP (or, with
    export=False, making spans that are never sent)."""
    p = TracerProvider(resource=Resource.create({"service.name": service}))
    if not export:
        return p
    headers = {"X-Scope-OrgID": tenant} if tenant else {}
    exporter = OTLPSpanExporter(
        endpoint=f"{endpoint.rstrip('/')}/v1/traces",
        headers=headers,
        timeout=30,
        compression=Compression.NoCompression,
    )
    p.add_span_processor(BatchSpanProcessor(exporter))
    return p


def hexid(n, width):
    return format(n, f"0{width}x")


def describe(span, service, kind, parent=None):
    ctx = span.get_span_context()
    return {
        "service": service,
        "name": span.name,
        "kind": kind,
        "trace_id": hexid(ctx.trace_id, 32),
        "span_id": hexid(ctx.span_id, 16),
        "parent_span_id": hexid(parent.get_span_context().span_id, 16) if parent else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--circuit-id", required=True)
    ap.add_argument("--tenant", default="")
    ap.add_argument("--t0-ns", type=int, default=0)
    ap.add_argument("--services", default="beorn,mdso,arda")
    args = ap.parse_args()
    send = set(args.services.split(","))
    cid = args.circuit_id

    providers = {
        s: provider(s, args.endpoint, args.tenant, s in send) for s in ("beorn", "mdso", "arda")
    }
    tracers = {s: p.get_tracer(f"{s}.tracer", "1.0") for s, p in providers.items()}
    # An empty context for every root: nothing propagates between the services.
    no_parent = otel_context.Context()
    t0 = args.t0_ns or time.time_ns() - 1_000 * MS

    # Beorn: the API call that provisions the circuit, and its HTTP call to MDSO.
    beorn_root = tracers["beorn"].start_span(
        "beorn.create_network_service",
        context=no_parent,
        kind=SpanKind.SERVER,
        attributes={"circuit_id": cid, "http.route": "/network-services"},
        start_time=t0,
    )
    beorn_client = tracers["beorn"].start_span(
        "POST /bpocore/market/api/v1/resources",
        context=trace.set_span_in_context(beorn_root, no_parent),
        kind=SpanKind.CLIENT,
        attributes={
            "circuit_id": cid,
            "http.request.method": "POST",
            "url.full": "http://mdso.example/bpocore/market/api/v1/resources",
            "http.request.header.x_circuit_id": [cid],
        },
        start_time=t0 + 50 * MS,
    )

    # MDSO: the scriptplan, in its own trace (MDSO cannot read W3C trace context).
    mdso_root = tracers["mdso"].start_span(
        "CircuitDetailsCollector",
        context=no_parent,
        kind=SpanKind.SERVER,
        attributes={"circuit_id": cid, "scriptplan": "CircuitDetailsCollector"},
        start_time=t0 + 60 * MS,
    )
    mdso_client = tracers["mdso"].start_span(
        f"GET /api/v3/topologies/{cid}",
        context=trace.set_span_in_context(mdso_root, no_parent),
        kind=SpanKind.CLIENT,
        attributes={"http.request.method": "GET", "url.full": f"http://arda.example/api/v3/topologies/{cid}"},
        start_time=t0 + 90 * MS,
    )

    # Arda: serves the topology, in its own trace again.
    arda_root = tracers["arda"].start_span(
        "arda.get_topology",
        context=no_parent,
        kind=SpanKind.SERVER,
        attributes={
            "circuit_id": cid,
            "http.request.method": "GET",
            "http.route": "/api/v3/topologies/{circuit_id}",
            "url.path": f"/api/v3/topologies/{cid}",
        },
        start_time=t0 + 100 * MS,
    )

    arda_root.end(end_time=t0 + 150 * MS)
    mdso_client.end(end_time=t0 + 160 * MS)
    mdso_root.end(end_time=t0 + 240 * MS)
    beorn_client.end(end_time=t0 + 250 * MS)
    beorn_root.end(end_time=t0 + 300 * MS)

    flushed = True
    for s in ("beorn", "mdso", "arda"):
        flushed = providers[s].force_flush() is not False and flushed
    for p in providers.values():
        p.shutdown()

    spans = [
        describe(beorn_root, "beorn", "SPAN_KIND_SERVER"),
        describe(beorn_client, "beorn", "SPAN_KIND_CLIENT", beorn_root),
        describe(mdso_root, "mdso", "SPAN_KIND_SERVER"),
        describe(mdso_client, "mdso", "SPAN_KIND_CLIENT", mdso_root),
        describe(arda_root, "arda", "SPAN_KIND_SERVER"),
    ]
    report = {
        "circuit_id": cid,
        "tenant": args.tenant,
        "flushed": flushed,
        "trace_ids": {
            "beorn": hexid(beorn_root.get_span_context().trace_id, 32),
            "mdso": hexid(mdso_root.get_span_context().trace_id, 32),
            "arda": hexid(arda_root.get_span_context().trace_id, 32),
        },
        "spans": spans,
    }
    print(json.dumps(report))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
