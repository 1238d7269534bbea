"""The floors of the benchmarks.

`app`: a bare Starlette endpoint that reads the body and answers 202. Nothing a real
aggregator can do is cheaper, so every figure is a ratio to it.

`durable`: the same plus one Redis script call per request that stores the body under the
correlation id (HSET), through the service's own client and batching. Its distance to `app`
is what one durable write costs in this stack before any aggregation logic. Redis is at
BENCH_REDIS_URL.

    uvicorn loadtests.floor:app --loop uvloop --http httptools --no-access-log
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aggregator.batching import ScriptBatcher

STORE = "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1"


async def accept(request: Request) -> Response:
    await request.body()
    return Response(status_code=202)


app = Starlette(routes=[Route("/{path:path}", accept, methods=["POST"])])


@asynccontextmanager
async def _redis(app: Starlette) -> AsyncIterator[None]:
    client = redis.asyncio.Redis.from_url(os.environ["BENCH_REDIS_URL"], max_connections=64)
    script = client.register_script(STORE)
    await client.script_load(STORE)
    app.state.store = ScriptBatcher(client, script)
    yield
    await client.aclose()


async def accept_durably(request: Request) -> Response:
    body = await request.body()
    correlation = request.headers.get("ce-correlationid", "")
    await request.app.state.store([f"floor:{correlation}"], [request.headers["ce-id"], body])
    return Response(status_code=202)


durable = Starlette(
    routes=[Route("/{path:path}", accept_durably, methods=["POST"])], lifespan=_redis
)
