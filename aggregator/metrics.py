"""Prometheus metrics. Labels are flow names and small fixed sets, never ids."""

from prometheus_client import Counter, Histogram

_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)

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
    "Aggregated events that went to dead letters, by flow and reason.",
    ["flow", "reason"],
)
