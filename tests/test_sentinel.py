"""Redis Sentinel: the service finds the master through the sentinels and follows a
failover without a restart; what was acknowledged before the failover is still there."""

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.support.app import app_client, binary, make_settings
from tests.support.topologies import LocalSentinel

pytestmark = pytest.mark.usefixtures("no_aggregator_env")


async def test_ingest_survives_a_sentinel_failover(tmp_path: Path) -> None:
    group = LocalSentinel(tmp_path)
    try:
        sentinels = group.start()
        flow = {"name": "pair", "expected_branches": 2, "delivery": "reply"}
        settings = make_settings(
            "redis://127.0.0.1:1/0",  # sentinel mode takes only password and database from it
            flow,
            redis_mode="sentinel",
            redis_sentinels=",".join(sentinels),
            redis_sentinel_master=LocalSentinel.MASTER,
        )
        async with app_client(settings) as client:
            first = await client.post("/flows/pair", **binary({}, correlationid="c", source="/a"))
            assert first.headers["aggregation-outcome"] == "pending"
            old_master = group.master_port()
            group.failover()
            assert group.master_port() != old_master

            async def second_branch() -> httpx.Response | None:
                response = await client.post(
                    "/flows/pair", **binary({}, correlationid="c", source="/b")
                )
                return response if response.status_code != 503 else None

            async def completed() -> httpx.Response:
                while True:  # 503 while the client learns the new master, then through
                    response = await second_branch()
                    if response is not None:
                        return response

            response = await asyncio.wait_for(completed(), timeout=30)
        assert response.status_code == 200
        assert response.headers["aggregation-outcome"] == "complete"
        assert response.headers["ce-branchcount"] == "2"  # the branch from before the failover
    finally:
        group.stop()
