"""Drive the real ASGI app (with its lifespan) over httpx, against a real Redis."""

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import redis
import redis.asyncio

from aggregator.app import create_app
from aggregator.settings import Settings

_ids = itertools.count()
# URLs of the test clusters: settings and clients for them speak Redis Cluster.
CLUSTER_URLS: set[str] = set()


def make_settings(redis_url: str, *flows: dict[str, Any], **options: Any) -> Settings:
    if redis_url in CLUSTER_URLS:
        options.setdefault("redis_mode", "cluster")
    return Settings(redis_url=redis_url, flows=list(flows), **options)


def async_client(redis_url: str) -> "redis.asyncio.Redis | redis.asyncio.RedisCluster":
    if redis_url in CLUSTER_URLS:
        return redis.asyncio.RedisCluster.from_url(redis_url)
    return redis.asyncio.Redis.from_url(redis_url)


def sync_client(redis_url: str) -> "redis.Redis | redis.RedisCluster":
    """A plain client for inspecting Redis in tests, of the URL's topology."""
    if redis_url in CLUSTER_URLS:
        return redis.RedisCluster.from_url(redis_url)
    return redis.Redis.from_url(redis_url)


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://aggregator") as client:
            yield client


def binary(
    data: Any = None,
    *,
    id: str | None = None,
    source: str = "/test",
    type: str = "com.example.result",
    content_type: str = "application/json",
    body: bytes | None = None,
    prefer_reply: bool = False,
    **extensions: str,
) -> dict[str, Any]:
    """Keyword arguments for httpx's post(): one binary-mode event."""
    headers = {
        "ce-specversion": "1.0",
        "ce-id": id or f"event-{next(_ids)}",
        "ce-source": source,
        "ce-type": type,
        "content-type": content_type,
        **{f"ce-{name}": value for name, value in extensions.items()},
    }
    if prefer_reply:
        headers["prefer"] = "reply"
    if body is None:
        body = b"" if data is None else orjson.dumps(data)
    return {"headers": headers, "content": body}


def snapshot(redis_url: str) -> dict[bytes, Any]:
    """Every key with its content, to prove a request changed nothing. Streams count by their
    entries: the dispatchers create them empty and update their group bookkeeping as they
    read."""
    client = sync_client(redis_url)
    try:
        content = {}
        for key in client.scan_iter(count=1000):
            value = client.xrange(key) if client.type(key) == b"stream" else client.dump(key)
            if value:
                content[key] = value
        return content
    finally:
        client.close()
