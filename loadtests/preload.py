"""Fill Redis with pending aggregations, through the service's own ingest script, so that
benchmarks can measure the service with a large backlog of state."""

import asyncio
import time

import redis.asyncio

from aggregator.cloudevent import CloudEvent
from aggregator.codec import decode
from aggregator.delivery import Route
from aggregator.flows import AggregateFlow
from aggregator.ingest import prepare
from aggregator.keys import Keyspace
from aggregator.store import Store

CONCURRENCY = 64  # one connection each


def branch_event(correlation: str, branch: int, payload: bytes) -> CloudEvent:
    """As loadtests/branches.lua sends it, read by the service's own codec."""
    headers = {
        "ce-specversion": "1.0",
        "ce-id": f"{correlation}/b{branch}",
        "ce-source": f"/bench/b{branch}",
        "ce-type": "com.example.bench.result",
        "ce-correlationid": correlation,
        "content-type": "application/json",
    }
    [event], _ = decode([(k.encode(), v.encode()) for k, v in headers.items()], payload)
    return event


def payload_of(size: int) -> bytes:
    return b'{"result":"' + b"x" * (size - len(b'{"result":""}')) + b'"}'


async def preload(
    redis_url: str,
    flow: AggregateFlow,
    count: int,
    *,
    branches: int = 1,
    payload: int = 512,
    shards: int = 16,
    route: Route = "sink",
) -> float:
    """Open `count` aggregations of `flow`, each with `branches` branch results; returns
    the seconds it took."""
    client = redis.asyncio.Redis.from_url(redis_url, max_connections=CONCURRENCY)
    keyspace = Keyspace(shards)
    store = Store(client, keyspace)
    body = payload_of(payload)
    started = time.perf_counter()
    queue = iter(range(count))

    async def worker() -> None:
        for n in queue:
            for branch in range(branches):
                event = branch_event(f"pending-{n}", branch, body)
                arrival = prepare(flow, event, keyspace, path_branch=f"b{branch}")
                await store.record(arrival, flow, route, max_pending=count + 1)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    await client.aclose()
    return time.perf_counter() - started
