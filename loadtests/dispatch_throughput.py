"""Dispatcher throughput to a local sink, against a baseline measured in the same run.

    .venv/bin/python -m loadtests.dispatch_throughput [--releases 5000] [--rounds 3]

(a) baseline: the same HTTP client POSTs the same aggregated event to the sink, with the
    dispatcher's concurrency: the HTTP ceiling of one process;
(b) dispatcher: N releases wait in the outbox (written by the ingest script, as in
    production); one dispatcher drains them: read, build the event, POST, settle.
Rounds alternate (a) and (b); the report gives each median and (b)/(a).
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from redis.asyncio import Redis

from aggregator.cloudevent import CloudEvent
from aggregator.dispatcher import Dispatcher
from aggregator.embedded_redis import RedisServer, free_port
from aggregator.flows import AggregateFlow
from aggregator.keys import Keyspace, event_field
from aggregator.outbox import Outbox
from aggregator.release import Release, aggregated_event, record_of
from aggregator.sender import Sender, request_of, session
from aggregator.settings import Settings
from aggregator.store import Arrival, Store
from loadtests.machine import UVICORN, running


async def baseline(
    sink: str, event: CloudEvent, flow: AggregateFlow, count: int, concurrency: int
) -> float:
    headers, content = request_of(event, flow)
    async with session(concurrency) as client:
        queue = iter(range(count))

        async def worker() -> None:
            for _ in queue:
                async with client.post(f"{sink}/sink", headers=headers, data=content) as answer:
                    answer.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


async def fill_outbox(
    settings: Settings, store: Store, flow: AggregateFlow, count: int, tag: str
) -> None:
    keyspace = Keyspace(settings.shards)
    for n in range(count):
        correlation = f"{tag}-{n}"
        attributes: dict[str, str | int | bool] = {"id": correlation, "source": "/b", "type": "t"}
        event = CloudEvent(attributes, data_json=b'{"result": "ok"}')
        arrival = Arrival(
            keys=keyspace.aggregation(flow.name, correlation),
            event_field=event_field("/b", correlation),
            branch="only",
            record=record_of(event, 0),
            expected=1,
            flow=flow.name,
            correlation_id=correlation,
        )
        recorded = await store.record(arrival, flow, "sink", settings.max_pending_per_shard)
        assert recorded.outcome == "complete"


async def dispatcher_round(
    settings: Settings, redis: "Redis", sink: str, count: int, tag: str
) -> float:
    flow = settings.flows[0]
    assert isinstance(flow, AggregateFlow)
    keyspace = Keyspace(settings.shards)
    store = Store(redis, keyspace)
    await store.scripts.load()
    await fill_outbox(settings, store, flow, count, tag)
    async with httpx.AsyncClient() as control:
        await control.delete(f"{sink}/stats")
    async with session(settings.dispatch_concurrency) as client:
        outbox = Outbox(redis, keyspace, store.scripts)
        dispatcher = Dispatcher(settings, outbox, Sender(client))
        started = time.perf_counter()
        running = asyncio.create_task(dispatcher.run())
        # The measurement ends when the last entry is settled; polling is the clock here.
        while await outbox.length() > 0:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        await dispatcher.stop(grace=5)
        await asyncio.wait({running}, timeout=5)
    async with httpx.AsyncClient() as control:
        delivered = (await control.get(f"{sink}/stats")).json()["count"]
    assert delivered == count, (delivered, count)
    return count / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--releases", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    sink_command = [sys.executable, *UVICORN, "--port", str(port), "loadtests.sink:app"]
    with (
        running(sink_command, port) as sink,
        tempfile.TemporaryDirectory() as directory,
        RedisServer(Path(directory)) as server,
    ):
        settings = Settings(
            redis_url=server.url,
            flows=[{"name": "bench", "expected_branches": 1, "sink": f"{sink}/sink"}],
        )
        flow = settings.flows[0]
        assert isinstance(flow, AggregateFlow)
        redis = Redis.from_url(server.url)
        # The event the baseline posts: an aggregated event of the same size.
        event = aggregated_event(
            Release("bench", "sample", "complete", 0, 0, 1, (), None, None), flow, {}
        )
        a, b = [], []
        for round_ in range(args.rounds):
            a.append(
                await baseline(sink, event, flow, args.releases, settings.dispatch_concurrency)
            )
            b.append(await dispatcher_round(settings, redis, sink, args.releases, f"r{round_}"))
            await redis.flushall()
        await redis.aclose()
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"releases per round: {args.releases}, rounds: {args.rounds}")
    print(f"(a) baseline HTTP POSTs/s:   median {ma:8.0f}  rounds {[round(x) for x in a]}")
    print(f"(b) dispatcher releases/s:   median {mb:8.0f}  rounds {[round(x) for x in b]}")
    print(f"(b)/(a): {mb / ma:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
