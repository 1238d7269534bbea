"""Prometheus metrics (DESIGN §3.4). Labels are flow names and small fixed sets, never ids.

Counters and histograms live in each process; with several uvicorn workers they go through
prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by `aggregator serve`),
so any worker's /metrics shows the sum. Gauges of what is in Redis (pending aggregations per
flow, outbox length, dead letters kept) are read from Redis at scrape time: they are the same
whichever replica answers.
"""

import os
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector

_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)
_INGEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

INGESTED = Counter(
    "aggregator_ingested_events_total", "Events ingested, by flow and outcome.", ["flow", "outcome"]
)
INGEST_LATENCY = Histogram(
    "aggregator_ingest_latency_seconds",
    "Time to answer an ingest request.",
    ["flow"],
    buckets=_INGEST_BUCKETS,
)
RELEASES = Counter(
    "aggregator_releases_total", "Aggregations released, by flow and status.", ["flow", "status"]
)
RELEASE_LATENCY = Histogram(
    "aggregator_release_latency_seconds",
    "Time from an aggregation's first arrival to its release.",
    ["flow"],
    buckets=_LATENCY_BUCKETS,
)
DELIVERY_ATTEMPTS = Counter(
    "aggregator_delivery_attempts_total",
    "HTTP delivery attempts of aggregated events, by flow and result.",
    ["flow", "result"],
)
DEAD_LETTERS = Counter(
    "aggregator_dead_letters_total",
    "Aggregated events that went to dead letters, by flow and where they went.",
    ["flow", "reason"],
)
REDIS_ERRORS = Counter(
    "aggregator_redis_errors_total", "Redis calls that failed, by what made them.", ["operation"]
)

Metric = TypeVar("Metric", bound=MetricWrapperBase)
_children: dict[tuple[int, tuple[str, ...]], Any] = {}


def labelled(metric: Metric, *values: str) -> Metric:
    """`metric.labels(*values)`, looked up once: prometheus-client checks and converts the
    values and takes a lock on every call, a few percent of the service's CPU under load.
    The values are flow names and fixed words, so the cache stays small."""
    key = (id(metric), values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*values)
    return child


def exposition(gauges: "RedisGauges | None") -> tuple[bytes, str]:
    """The text format of every metric; the Redis gauges when Redis could be read."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    if gauges is not None:
        live = CollectorRegistry()
        live.register(gauges)
        text += generate_latest(live)
    return text, CONTENT_TYPE_LATEST


class RedisGauges:
    def __init__(self, pending: dict[str, int], outbox: int, dead_letters: int) -> None:
        self.pending, self.outbox, self.dead_letters = pending, outbox, dead_letters

    def collect(self) -> list[GaugeMetricFamily]:
        pending = GaugeMetricFamily(
            "aggregator_pending_aggregations", "Aggregations waiting, by flow.", labels=["flow"]
        )
        for flow, count in sorted(self.pending.items()):
            pending.add_metric([flow], count)
        return [
            pending,
            GaugeMetricFamily(
                "aggregator_outbox_entries", "Releases waiting for delivery.", value=self.outbox
            ),
            GaugeMetricFamily(
                "aggregator_dead_letters_stored",
                "Entries in the dead-letter store.",
                value=self.dead_letters,
            ),
        ]
