"""Resource bounds: max_pending holds across replicas, and abandoned state goes away by
itself (TTLs), also when no replica is left to sweep it."""

import asyncio

import pytest

from aggregator.keys import Keyspace
from tests.support.app import app_client, binary, make_settings, sync_client
from tests.support.sink import eventually, wait_until
from tests.test_ingest import dead_letters

pytestmark = pytest.mark.usefixtures("no_aggregator_env")

FLOW = {"name": "f", "expected_branches": 2}


async def test_max_pending_holds_across_replicas(redis_url: str) -> None:
    settings = make_settings(redis_url, FLOW, max_pending=3, shards=1)
    async with app_client(settings) as one, app_client(settings) as other:
        statuses = [
            (await replica.post("/flows/f", **binary({}, correlationid=f"c{n}"))).status_code
            for n, replica in enumerate([one, other, one])
        ]
        assert statuses == [202, 202, 202]
        for replica in (one, other):
            refused = await replica.post("/flows/f", **binary({}, correlationid="c9"))
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "5"


def test_abandoned_state_expires_without_any_replica(redis_url: str) -> None:
    flow = {**FLOW, "timeout": "100ms", "retention": "200ms", "on_timeout": "discard"}
    settings = make_settings(redis_url, flow, sweep_interval="1h")
    keys = Keyspace(settings.shards).aggregation("f", "lost")

    async def open_one() -> None:
        # The app's sweeper ticks at start-up only: after that nobody sweeps.
        async with app_client(settings) as client:
            await client.post("/flows/f", **binary({}, correlationid="lost"))

    asyncio.run(open_one())
    client = sync_client(redis_url)
    assert client.exists(keys.state)
    assert 0 < client.pttl(keys.state) <= 300 + 200
    wait_until(lambda: not client.exists(keys.state), timeout=5)
    assert client.zscore(keys.deadlines, keys.member) is not None

    async def sweep_again() -> None:
        # A replica comes back: the dangling deadline is claimed and nothing is released.
        async with app_client(make_settings(redis_url, flow, sweep_interval="50ms")):
            await eventually(lambda: client.zscore(keys.deadlines, keys.member) is None)

    asyncio.run(sweep_again())
    assert dead_letters(redis_url) == []
    client.close()
