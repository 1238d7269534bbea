"""Tracing: traceparent carried onto the aggregated event, and optional OpenTelemetry spans
exported over OTLP/HTTP to a real endpoint; off, a span is one shared no-op."""

import subprocess
import sys

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.support.app import app_client, binary, make_settings
from tests.support.sink import eventually, running_sink

pytestmark = pytest.mark.usefixtures("no_aggregator_env")

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def test_spans_for_ingest_release_and_delivery(redis_url: str) -> None:
    with running_sink() as collector, running_sink() as sink:
        flow = {"name": "pair", "expected_branches": 2, "sink": sink.url}
        settings = make_settings(redis_url, flow, otlp_endpoint=collector.url)
        async with app_client(settings) as client:
            await client.post("/flows/pair", **binary({}, correlationid="c", source="/a"))
            await client.post(
                "/flows/pair", **binary({}, correlationid="c", source="/b", traceparent=TRACEPARENT)
            )
            [delivered] = await eventually(lambda: sink.got(1))
        # The app's shutdown flushed the batch.
        exports = collector.got(1)
    assert exports is not None
    assert delivered.event().attributes["traceparent"] == TRACEPARENT
    spans = []
    for export in exports:
        assert dict(export.headers)[b"content-type"] == b"application/x-protobuf"
        request = ExportTraceServiceRequest.FromString(export.body)
        spans += [s for r in request.resource_spans for scope in r.scope_spans for s in scope.spans]
    names = sorted(s.name for s in spans)
    assert names == ["deliver", "ingest", "ingest", "release"]
    traced = [s for s in spans if s.trace_id.hex() == TRACE_ID]
    assert sorted(s.name for s in traced) == ["deliver", "ingest"]


def test_tracing_is_off_by_default_and_costs_a_shared_no_op() -> None:
    probe = (
        "import aggregator.app, aggregator.tracing as t; t.configure(None); "
        "print(t._state == {}, t.span('x') is t.span('y', flow='f'))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]
