"""One place that tells of a release: the metrics, and one log line."""

from aggregator import metrics, tracing
from aggregator.logs import get_logger

log = get_logger("aggregator.release")


def released(flow: str, correlation_id: str, status: str, latency_ms: int) -> None:
    with tracing.span("release", flow=flow, status=status, latency_ms=latency_ms):
        pass
    metrics.labelled(metrics.RELEASES, flow, status).inc()
    metrics.labelled(metrics.RELEASE_LATENCY, flow).observe(latency_ms / 1000)
    log.info(
        "released", flow=flow, correlation_id=correlation_id, status=status, latency_ms=latency_ms
    )
