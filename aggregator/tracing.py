"""Optional OpenTelemetry spans for ingest, release and delivery.

Off unless AGGREGATOR_OTLP_ENDPOINT is set (an OTLP/HTTP traces URL such as
http://otel-collector:4318/v1/traces); then spans are exported in batches. Off, `span()` is a
shared no-op and OpenTelemetry is not even imported. Spans join the trace of the event's
`traceparent` (CloudEvents distributed-tracing extension) when it has one.
"""

from contextlib import AbstractContextManager, nullcontext
from typing import Any

_NOTHING: AbstractContextManager[None] = nullcontext()
_state: dict[str, Any] = {}


def configure(endpoint: str | None) -> None:
    if not endpoint:
        return
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError as exc:
        raise RuntimeError(
            "AGGREGATOR_OTLP_ENDPOINT is set but OpenTelemetry is not installed: "
            "pip install 'knative-aggregator[otel]'"
        ) from exc
    provider = TracerProvider(resource=Resource.create({"service.name": "knative-aggregator"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    _state.update(
        provider=provider,
        tracer=provider.get_tracer("aggregator"),
        propagator=TraceContextTextMapPropagator(),
    )


def span(
    name: str, traceparent: object = None, **attributes: str | int
) -> AbstractContextManager[Any]:
    tracer = _state.get("tracer")
    if tracer is None:
        return _NOTHING
    parent = None
    if isinstance(traceparent, str):
        parent = _state["propagator"].extract({"traceparent": traceparent})
    return tracer.start_as_current_span(name, context=parent, attributes=attributes)  # type: ignore[no-any-return]


def shutdown() -> None:
    """Export what is buffered; called when the process stops."""
    provider = _state.pop("provider", None)
    _state.clear()
    if provider is not None:
        provider.shutdown()
