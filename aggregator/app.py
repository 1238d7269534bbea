"""The Starlette application: routes and the lifespan that owns the Redis client."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aggregator import http_ingest
from aggregator.config import load_config
from aggregator.flows import AggregateFlow
from aggregator.keys import Keyspace
from aggregator.logs import configure_logging, get_logger
from aggregator.redis_client import connect
from aggregator.responses import JSONResponse
from aggregator.runtime import Runtime, runtime
from aggregator.settings import Settings
from aggregator.store import Store

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
        if not await rt.store.scripts_loaded():
            # Redis restarted empty, or was down at start-up.
            await rt.store.load_scripts()
    except (RedisError, OSError):
        return JSONResponse(
            {"status": "redis unavailable", "warnings": rt.warnings},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    return JSONResponse({"status": "ok", "warnings": rt.warnings})


def create_app(settings: Settings | None = None) -> Starlette:
    if settings is None:
        settings = load_config()
        configure_logging(settings.log_level, settings.log_format)
    config = settings

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = Store(connect(config))
        rt = Runtime(config, Keyspace(config.shards), store, delivery_warnings(config))
        app.state.runtime = rt
        for warning in rt.warnings:
            log.warning("flow cannot deliver", detail=warning)
        try:
            await store.load_scripts()
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable at start-up; not ready until it answers", error=str(exc))
        log.info("started", flows=[flow.name for flow in config.flows])
        try:
            yield
        finally:
            await store.redis.aclose()

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/readyz", readyz), *http_ingest.routes],
        lifespan=lifespan,
    )
