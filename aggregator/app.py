"""The Starlette application: routes and the lifespan that owns the Redis client."""

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aggregator import http_admin, http_ingest, metrics, openapi, tracing
from aggregator.admin import Admin
from aggregator.config import load_config
from aggregator.dead_letters import DeadLetters
from aggregator.dispatcher import Dispatcher
from aggregator.flows import AggregateFlow
from aggregator.keys import Keyspace
from aggregator.logs import configure_logging, get_logger
from aggregator.outbox import Outbox
from aggregator.redis_client import connect, ready
from aggregator.responses import JSONResponse
from aggregator.runtime import Runtime, runtime
from aggregator.sender import Sender, session
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.sweeper import Sweeper

log = get_logger(__name__)


def delivery_warnings(settings: Settings) -> list[str]:
    """Flows whose releases cannot reach anyone but the dead-letter store (DESIGN §5)."""
    warnings = []
    for flow in settings.flows:
        if not isinstance(flow, AggregateFlow) or settings.sink_for(flow):
            continue
        if flow.delivery == "sink":
            warnings.append(f"flow {flow.name!r}: delivery is sink but no sink or K_SINK is set")
        elif flow.delivery == "auto":
            warnings.append(
                f"flow {flow.name!r} has nowhere to deliver: no sink or K_SINK, so releases "
                "without a Prefer: reply request go to the dead-letter store"
            )
    return warnings


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    rt = runtime(request)
    try:
        await rt.store.redis.ping()
        if not await rt.store.scripts.loaded():
            # Redis restarted empty, or was down at start-up.
            await rt.store.scripts.load()
    except (RedisError, OSError):
        return JSONResponse(
            {"status": "redis unavailable", "warnings": rt.warnings},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    return JSONResponse({"status": "ok", "warnings": rt.warnings})


async def metrics_endpoint(request: Request) -> Response:
    rt = runtime(request)
    try:
        gauges: metrics.RedisGauges | None = metrics.RedisGauges(
            await rt.admin.pending_counts(),
            await rt.outbox.length(),
            await rt.dead_letters.count(),
        )
    except (RedisError, OSError):
        metrics.labelled(metrics.REDIS_ERRORS, "metrics").inc()
        gauges = None
    body, media_type = metrics.exposition(gauges)
    return Response(body, media_type=media_type)


_DASHBOARD = files("aggregator").joinpath("ui", "dashboard.html").read_bytes()


async def dashboard(request: Request) -> Response:
    # Public like /openapi.json: the page holds no data; it asks for the token itself.
    return Response(_DASHBOARD, media_type="text/html; charset=utf-8")


async def openapi_endpoint(request: Request) -> Response:
    return JSONResponse(openapi.document())


def _quiet_gc() -> None:
    """Start-up's long-lived objects (modules, settings, clients) leave the collector's view,
    and collections run less often: full collections walking them made the p99 of ingest
    (45 ms against 11 ms with this, under load; docs/benchmarks.md)."""
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def create_app(settings: Settings | None = None) -> Starlette:
    if settings is None:
        settings = load_config()
        configure_logging(settings.log_level, settings.log_format)
    config = settings

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        redis = connect(config, "aggregator-requests")
        # Background work has a client of its own: it cannot starve requests of connections.
        background = connect(config, "aggregator-background")
        keyspace = Keyspace(config.shards)
        # WAIT gives up after half the Redis timeout, so its answer beats the socket timeout.
        wait_ms = round(config.redis_timeout.total_seconds() * 500)
        store = Store(redis, keyspace, config.redis_min_replicas, wait_ms)
        background_store = Store(background, keyspace)
        outbox = Outbox(background, keyspace, background_store.scripts)
        client = session(config.dispatch_concurrency)
        sender = Sender(client)
        dispatcher = Dispatcher(config, outbox, sender)
        sweeper = Sweeper(config, background_store, dispatcher.nudge)
        dead_letters = DeadLetters(redis, keyspace, config)
        rt = Runtime(
            settings=config,
            keyspace=keyspace,
            store=store,
            outbox=outbox,
            dead_letters=dead_letters,
            sender=sender,
            dispatcher=dispatcher,
            admin=Admin(config, redis, store, dead_letters),
            warnings=delivery_warnings(config),
        )
        app.state.runtime = rt
        for warning in rt.warnings:
            log.warning("flow cannot deliver", detail=warning)
        tracing.configure(config.otlp_endpoint)
        try:
            await ready(redis)
            await ready(background)
            await store.scripts.load()  # one SCRIPT LOAD serves both clients
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable at start-up; not ready until it answers", error=str(exc))
        loops = [asyncio.create_task(sweeper.run()), asyncio.create_task(dispatcher.run())]
        _quiet_gc()
        log.info("started", flows=[f.name for f in config.flows], consumer=dispatcher.consumer)
        try:
            yield
        finally:
            # The loops end on their own when told to stop; cancelling them could leave a
            # Redis connection mid-command.
            sweeper.stop()
            await dispatcher.stop(grace=config.shutdown_timeout.total_seconds() / 2)
            await asyncio.wait(loops, timeout=5)
            await client.close()
            await redis.aclose()
            await background.aclose()
            tracing.shutdown()

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            Route("/openapi.json", openapi_endpoint),
            Route("/ui", dashboard),
            *http_ingest.routes,
            *http_admin.routes,
        ],
        middleware=[Middleware(http_ingest.IngestFastPath)],
        lifespan=lifespan,
    )
