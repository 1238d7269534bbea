"""Redis Sentinel: the service finds the master through the sentinels and follows a
failover, between requests and under load, without a restart. A coordinated failover loses
nothing acknowledged; a crashed master can lose the writes its replica had not received yet,
and even then nothing is released twice and nothing waits forever."""

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from aggregator.settings import Settings
from tests.support.app import app_client, binary, make_settings
from tests.support.sink import Sink, eventually, running_sink
from tests.support.topologies import LocalSentinel
from tests.test_ingest import outbox_length

pytestmark = pytest.mark.usefixtures("no_aggregator_env")


def sentinel_settings(sentinels: list[str], flow: dict[str, Any], **options: Any) -> Settings:
    return make_settings(
        "redis://127.0.0.1:1/0",  # sentinel mode takes only password and database from it
        flow,
        redis_mode="sentinel",
        redis_sentinels=",".join(sentinels),
        redis_sentinel_master=LocalSentinel.MASTER,
        sweep_interval="50ms",
        outbox_visibility_timeout="1s",
        **options,
    )


async def test_ingest_survives_a_sentinel_failover(tmp_path: Path) -> None:
    group = LocalSentinel(tmp_path)
    try:
        flow = {"name": "pair", "expected_branches": 2, "delivery": "reply"}
        async with app_client(sentinel_settings(group.start(), flow)) as client:
            first = await client.post("/flows/pair", **binary({}, correlationid="c", source="/a"))
            assert first.headers["aggregation-outcome"] == "pending"
            old_master = group.master_port()
            group.failover()
            assert group.master_port() != old_master
            async with asyncio.timeout(30):
                response = await Load(client).send("c", "/b")
        assert response.status_code == 200
        assert response.headers["aggregation-outcome"] == "complete"
        assert response.headers["ce-branchcount"] == "2"  # the branch from before the failover
    finally:
        group.stop()


async def test_a_write_no_replica_confirms_is_refused(standalone_redis_url: str) -> None:
    flow = {"name": "pair", "expected_branches": 2}
    settings = make_settings(
        standalone_redis_url, flow, redis_min_replicas=1, redis_timeout="200ms"
    )  # a server without replicas
    async with app_client(settings) as client:
        for _ in range(2):  # the retry too: the event is there, but no replica holds it
            response = await client.post("/flows/pair", **binary({}, correlationid="c"))
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
            assert "0 of 1 replicas confirmed the write" in response.json()["detail"]


@dataclass
class Load:
    """Eight clients, each sending both branches of fresh correlations, one after the other;
    what the second branch's answer says about the first is kept per correlation."""

    client: httpx.AsyncClient
    outcomes: dict[str, str] = field(default_factory=dict)
    refused: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, worker: int) -> None:
        for n in itertools.count():
            if self.stop.is_set():
                return
            correlation = f"w{worker}-{n}"
            for source in ("/a", "/b"):
                response = await self.send(correlation, source)
                assert response.status_code == 202, response.text
            self.outcomes[correlation] = response.headers["aggregation-outcome"]

    async def send(self, correlation: str, source: str) -> httpx.Response:
        """Post one branch until Redis takes it, as Knative's retries would: 503 while the
        client learns the new master."""
        while True:
            response = await self.client.post(
                "/flows/pair", **binary({}, correlationid=correlation, source=source)
            )
            if response.status_code != 503:
                return response
            self.refused += 1

    async def around(self, action: Callable[[], None], before: int = 40, after: int = 40) -> None:
        """Load before `action` (run in a thread), during it and after it has finished."""
        workers = [asyncio.create_task(self.run(w)) for w in range(8)]
        try:
            await eventually(lambda: len(self.outcomes) >= before, within=30)
            await asyncio.to_thread(action)
            done = len(self.outcomes)
            await eventually(lambda: len(self.outcomes) >= done + after, within=30)
        finally:
            self.stop.set()
            # Bounded: a service that never takes writes again would keep them retrying.
            await asyncio.wait_for(asyncio.gather(*workers), 30)


def released(sink: Sink) -> dict[str, list[str]]:
    """Aggregated event ids received, per correlation (a redelivery repeats its id)."""
    found: dict[str, set[str]] = {}
    statuses: dict[str, list[str]] = {}
    for event in sink.events():
        subject = str(event.attributes["subject"])
        if str(event.attributes["id"]) not in found.setdefault(subject, set()):
            found[subject].add(str(event.attributes["id"]))
            statuses.setdefault(subject, []).append(str(event.attributes["aggregationstatus"]))
    return statuses


def settled(redis_url: str) -> bool:
    """Nothing pending and nothing left to deliver."""
    client = redis.Redis.from_url(redis_url)
    try:
        waiting = sum(client.zcard(key) for key in client.scan_iter(match="agg:*:deadlines"))
    finally:
        client.close()
    return waiting == 0 and outbox_length(redis_url) == 0


async def failover_under_load(
    tmp_path: Path,
    action: Callable[[LocalSentinel], None],
    min_replicas: int = 0,
    flow_timeout: str = "2s",
) -> tuple[Load, dict[str, list[str]]]:
    group = LocalSentinel(tmp_path)
    try:
        with running_sink() as sink:
            flow = {
                "name": "pair",
                "expected_branches": 2,
                "timeout": flow_timeout,
                "sink": sink.url,
            }
            settings = sentinel_settings(group.start(), flow, redis_min_replicas=min_replicas)
            async with app_client(settings) as client:
                load = Load(client)
                await load.around(lambda: action(group))
                master = f"redis://127.0.0.1:{group.master_port()}"
                await eventually(lambda: settled(master), within=30)
            return load, released(sink)
    finally:
        group.stop()


def crash_and_come_back(group: LocalSentinel) -> None:
    group.crash_master()
    group.master.start(same_port=True)  # the sentinels make it a replica of the new master


async def test_with_min_replicas_a_crashed_master_loses_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    # The timeout outlasts the outage: branches stored but refused while no replica confirmed
    # them must not be released partial before their retries get through.
    load, statuses = await failover_under_load(
        tmp_path, crash_and_come_back, min_replicas=1, flow_timeout="30s"
    )
    # An event is acknowledged only once the one replica holds it, so the promoted replica
    # has every first branch whose second was acknowledged: each correlation is released
    # once, complete. Until the old master is back as a replica, WAIT finds none and ingest
    # answers 503. (A completing branch refused with 503 after its release was stored
    # answers `late` when retried.)
    assert set(load.outcomes.values()) <= {"complete", "late"}
    assert statuses == {c: ["complete"] for c in load.outcomes}
    print(f"correlations {len(load.outcomes)}, events sent {2 * len(load.outcomes)}, "
          f"refused with 503 {load.refused}, lost 0, double releases 0")  # fmt: skip


@pytest.mark.parametrize(
    "action", [LocalSentinel.crash_master, LocalSentinel.failover], ids=["killed", "failover"]
)
async def test_without_min_replicas_a_failover_loses_recent_writes_but_nothing_twice(
    tmp_path: Path, action: Callable[[LocalSentinel], None]
) -> None:
    load, statuses = await failover_under_load(tmp_path, action)
    # Replication is asynchronous: writes acknowledged just before the crash (or by the old
    # master after the promotion of the replica) are missing on the new master. A correlation
    # missing one branch waits for it and the timeout releases it partial; one whose both
    # branches were lost is gone without trace.
    # Nothing hangs and nothing is released twice.
    first_lost = {c for c, outcome in load.outcomes.items() if outcome == "pending"}
    partial = {c for c, releases in statuses.items() if releases != ["complete"]}
    gone = set(load.outcomes) - set(statuses)
    assert set(statuses) <= set(load.outcomes)
    assert all(len(releases) == 1 for releases in statuses.values())
    assert first_lost <= partial
    print(f"correlations {len(load.outcomes)}, events sent {2 * len(load.outcomes)}, "
          f"refused with 503 {load.refused}, released partial {len(partial)}, "
          f"lost entirely {len(gone)}, double releases 0")  # fmt: skip
