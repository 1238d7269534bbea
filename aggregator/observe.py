"""One place that tells of a release: the metrics, and one log line."""

from aggregator import metrics, tracing
from aggregator.logs import get_logger

log = get_logger("aggregator.release")


def released(flow: str, correlation_id: str, status: str, latency_ms: int) -> None:
    with tracing.span("release", flow=flow, status=status, latency_ms=latency_ms):
        pass
    metrics.RELEASES.labels(flow, status).inc()
    metrics.RELEASE_LATENCY.labels(flow).observe(latency_ms / 1000)
    log.info(
        "released", flow=flow, correlation_id=correlation_id, status=status, latency_ms=latency_ms
    )
