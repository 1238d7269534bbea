"""Ingest endpoints (DESIGN §3.1, §3.2): HTTP in, outcome and status codes out."""

import time

import structlog
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from aggregator import metrics, observe, tracing
from aggregator.batching import NotReplicated
from aggregator.cloudevent import CloudEvent
from aggregator.codec import body_of, decode, encode_binary
from aggregator.delivery import prefers_reply, release_route
from aggregator.errors import Rejected
from aggregator.flows import AggregateFlow, DedupFlow
from aggregator.ingest import prepare
from aggregator.logs import get_logger
from aggregator.release import aggregated_event
from aggregator.responses import problem
from aggregator.runtime import Runtime, runtime
from aggregator.sources import value_in

log = get_logger(__name__)
OUTCOME = "Aggregation-Outcome"
REDIS_RETRY_AFTER = "1"
FULL_RETRY_AFTER = "5"


async def _events(request: Request, limit: int) -> tuple[list[CloudEvent], bool]:
    """The request's events and whether it was a batch; 413 past `limit` bytes."""
    too_large = Rejected(413, f"the body is larger than {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return decode(request.headers.raw, b"".join(chunks))


def _unknown_flow(name: str, kind: str) -> Response:
    if name == "default":
        return problem(404, "no flow 'default' is configured, so POST / has nothing to serve")
    return problem(404, f"no {kind} flow {name!r} is configured")


def _redis_down(
    operation: str, detail: str = "Redis is unavailable; nothing was stored"
) -> Response:
    metrics.labelled(metrics.REDIS_ERRORS, operation).inc()
    return problem(503, detail, {"Retry-After": REDIS_RETRY_AFTER})


async def _aggregate(
    request: Request, flow_name: str, *, path_branch: str | None = None, origin: bool = False
) -> Response:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(flow=flow_name)
    rt = runtime(request)
    flow = rt.settings.flow(flow_name)
    if not isinstance(flow, AggregateFlow):
        return _unknown_flow(flow_name, "aggregate")
    started = time.perf_counter()
    response = await _aggregate_timed(request, rt, flow, path_branch, origin)
    if response.status_code < 500:
        metrics.labelled(metrics.INGEST_LATENCY, flow.name).observe(time.perf_counter() - started)
    return response


async def _aggregate_timed(
    request: Request, rt: Runtime, flow: AggregateFlow, path_branch: str | None, origin: bool
) -> Response:
    try:
        events, batch = await _events(request, rt.settings.max_event_bytes)
        arrivals = [
            prepare(flow, event, rt.keyspace, path_branch=path_branch, origin=origin)
            for event in events
        ]
    except Rejected as exc:
        return problem(exc.status, exc.detail)
    route = release_route(
        flow,
        rt.settings,
        prefer_reply=prefers_reply(request.headers.get("prefer")),
        can_reply=not batch and not origin,
    )
    outcomes = []
    release = None
    try:
        for arrival, event in zip(arrivals, events, strict=True):
            with tracing.span("ingest", event.attributes.get("traceparent"), flow=flow.name):
                recorded = await rt.store.record(
                    arrival, flow, route, rt.settings.max_pending_per_shard
                )
            if recorded.outcome == "full":
                return problem(
                    429,
                    f"{rt.settings.max_pending} aggregations are pending; this event would open "
                    "another",
                    {"Retry-After": FULL_RETRY_AFTER},
                )
            outcomes.append("complete" if recorded.outcome == "replay" else recorded.outcome)
            metrics.labelled(metrics.INGESTED, flow.name, outcomes[-1]).inc()
            log.debug(
                "ingested",
                correlation_id=arrival.correlation_id,
                branch=arrival.branch or "(origin)",
                event_id=event.id,
                outcome=outcomes[-1],
            )
            if recorded.outcome == "complete":
                if recorded.outbox_entry is not None:
                    rt.dispatcher.nudge(arrival.keys.shard, recorded.outbox_entry)
                observe.released(flow.name, arrival.correlation_id, "complete", recorded.latency_ms)
            release = recorded.release
    except NotReplicated as exc:
        detail = f"not acknowledged: {exc}, so a failover could lose it; retrying is safe"
        return _redis_down("replication", detail)
    except (RedisError, OSError):
        return _redis_down("ingest")
    if release is not None:
        event = aggregated_event(release, flow, rt.settings.k_ce_overrides)
        headers, content = encode_binary(event.attributes, body_of(event))
        return Response(content, 200, headers={**headers, OUTCOME: "complete"})
    return Response(status_code=202, headers={OUTCOME: ",".join(outcomes)})


async def ingest_default(request: Request) -> Response:
    return await _aggregate(request, "default")


async def ingest_flow(request: Request) -> Response:
    return await _aggregate(request, request.path_params["flow"])


async def ingest_branch(request: Request) -> Response:
    params = request.path_params
    return await _aggregate(request, params["flow"], path_branch=params["branch"])


async def ingest_origin(request: Request) -> Response:
    return await _aggregate(request, request.path_params["flow"], origin=True)


async def dedup(request: Request) -> Response:
    rt = runtime(request)
    flow_name = request.path_params["flow"]
    flow = rt.settings.flow(flow_name)
    if not isinstance(flow, DedupFlow):
        return _unknown_flow(flow_name, "dedup")
    try:
        events, batch = await _events(request, rt.settings.max_event_bytes)
    except Rejected as exc:
        return problem(exc.status, exc.detail)
    if batch:
        return problem(400, "the dedup filter takes one event per request, not a batch")
    [event] = events
    values = tuple(value_in(source, event) for source in flow.key)
    if any(value is None for value in values):
        missing = ", ".join(str(s) for s, v in zip(flow.key, values, strict=True) if v is None)
        return problem(400, f"no dedup key: the event has nothing at {missing}")
    key = rt.keyspace.dedup(flow.name, tuple(v or "" for v in values))
    window_ms = round(flow.window.total_seconds() * 1000)
    try:
        first = await rt.store.first_sighting(key, window_ms)
    except (RedisError, OSError):
        return _redis_down("dedup")
    if not first:
        return Response(status_code=202, headers={"Dedup-Outcome": "duplicate"})
    headers, content = encode_binary(event.attributes, body_of(event))
    return Response(content, 200, headers={**headers, "Dedup-Outcome": "unique"})


routes = [
    Route("/", ingest_default, methods=["POST"]),
    Route("/flows/{flow}", ingest_flow, methods=["POST"]),
    Route("/flows/{flow}/origin", ingest_origin, methods=["POST"]),
    Route("/flows/{flow}/branches/{branch}", ingest_branch, methods=["POST"]),
    Route("/dedup/{flow}", dedup, methods=["POST"]),
]


class IngestFastPath:
    """Middleware: an ingest request goes straight to its endpoint, past the exception
    middleware, the router and the per-route wrappers, which took about 14% of the service's
    CPU under load (docs/benchmarks.md). Everything else, errors included, goes the usual way
    (the server-error middleware stays outside)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for route in routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    response = await route.endpoint(Request({**scope, **child}, receive))
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
