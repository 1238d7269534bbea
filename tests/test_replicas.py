"""Several real `aggregator serve` processes on one Redis: no double delivery, nothing lost
when one is killed (SIGKILL) or stopped (SIGTERM) in the middle of its work."""

import asyncio
import random
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import Serve
from tests.support.processes import ServiceProcess
from tests.support.sink import Answer, Sink, eventually, running_sink, wait_until
from tests.test_ingest import outbox_length

BRANCHES = ["a", "b", "c", "d"]


def replica_env(tmp_path: Path, redis_url: str, sink: Sink, **flow: Any) -> dict[str, str]:
    flows = tmp_path / "flows.yaml"
    flows.write_text(
        yaml.safe_dump(
            {
                "flows": [
                    {
                        "name": "f",
                        "branches": BRANCHES,
                        "timeout": "5s",
                        "sink": sink.url,
                        "retry": 2,
                        "backoff_delay": "50ms",
                        **flow,
                    }
                ]
            }
        )
    )
    return {
        "AGGREGATOR_REDIS_URL": redis_url,
        "AGGREGATOR_FLOWS_FILE": str(flows),
        "AGGREGATOR_SWEEP_INTERVAL": "50ms",
        "AGGREGATOR_OUTBOX_VISIBILITY_TIMEOUT": "1s",
        "AGGREGATOR_SHUTDOWN_TIMEOUT": "4s",
        "AGGREGATOR_LOG_LEVEL": "warning",
    }


async def post(client: httpx.AsyncClient, base: str, correlation: str, branch: str) -> int:
    request = {
        "headers": {"ce-specversion": "1.0", "ce-id": f"{correlation}/{branch}", "ce-source": "/t",
                    "ce-type": "t", "ce-correlationid": correlation, "content-type": "application/json"},
        "content": b'{"x": 1}',
    }  # fmt: skip
    response = await client.post(f"{base}/flows/f/branches/{branch}", **request)
    return response.status_code


def subjects(sink: Sink) -> dict[str, set[str]]:
    """Aggregated event ids received, per correlation."""
    found: dict[str, set[str]] = {}
    for event in sink.events():
        found.setdefault(str(event.attributes["subject"]), set()).add(str(event.attributes["id"]))
    return found


async def test_two_replicas_deliver_each_release_once(
    serve: Serve, redis_url: str, tmp_path: Path
) -> None:
    with running_sink() as sink:
        env = replica_env(tmp_path, redis_url, sink)
        replicas = [serve(**env), serve(**env)]
        for replica in replicas:
            replica.wait_ready()
        correlations = [f"c{n}" for n in range(40)]
        async with httpx.AsyncClient(timeout=10) as client:
            sends = [
                post(client, random.choice(replicas).base_url, c, b)
                for c in correlations
                for b in BRANCHES
            ]
            random.shuffle(sends)
            assert set(await asyncio.gather(*sends)) == {202}
        await eventually(lambda: sink.got(len(correlations)))
        await eventually(lambda: outbox_length(redis_url) == 0)
    received = subjects(sink)
    assert sorted(received) == sorted(correlations)
    assert all(len(ids) == 1 for ids in received.values())
    assert len(sink.received) == len(correlations)


def test_sigkill_mid_delivery_another_replica_delivers(
    serve: Serve, redis_url: str, tmp_path: Path
) -> None:
    # The sink hangs on the first deliveries, so the first replica holds them unsettled.
    with running_sink(default=Answer(200, delay=30)) as sink:
        env = replica_env(tmp_path, redis_url, sink)
        first = serve(**env)
        first.wait_ready()
        correlations = [f"k{n}" for n in range(5)]
        for correlation in correlations:
            for branch in BRANCHES:
                assert asyncio.run(_post_once(first.base_url, correlation, branch)) == 202
        wait_until(lambda: len(sink.received) >= len(correlations))
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
        sink.default = Answer(200)
        second = serve(**env)
        second.wait_ready()
        # After the visibility timeout the second replica reclaims and delivers everything:
        # each release arrives a second time, now answered.
        redelivered = wait_until(lambda: sink.got(2 * len(correlations)), timeout=20)
        wait_until(lambda: outbox_length(redis_url) == 0)
    assert sorted(str(r.event().attributes["subject"]) for r in redelivered[5:]) == correlations
    received = subjects(sink)
    assert sorted(received) == sorted(correlations)
    assert all(len(ids) == 1 for ids in received.values())


async def _post_once(base: str, correlation: str, branch: str) -> int:
    async with httpx.AsyncClient(timeout=10) as client:
        return await post(client, base, correlation, branch)


async def _load(replicas: list[ServiceProcess], correlations: list[str], on_half: Any) -> None:
    """Send every branch of every correlation; a send a replica refuses goes to another, as
    Knative's retries would."""
    async with httpx.AsyncClient(timeout=10) as client:
        sends = [(c, b) for c in correlations for b in BRANCHES]
        random.shuffle(sends)
        for n, (correlation, branch) in enumerate(sends):
            if n == len(sends) // 2:
                on_half()
            for replica in [random.choice(replicas), *replicas]:
                try:
                    if await post(client, replica.base_url, correlation, branch) == 202:
                        break
                except httpx.TransportError:
                    continue
            else:
                pytest.fail(f"no replica took {correlation}/{branch}")


def test_sigterm_under_load_loses_nothing(serve: Serve, redis_url: str, tmp_path: Path) -> None:
    with running_sink() as sink:
        env = replica_env(tmp_path, redis_url, sink)
        leaving, staying = serve(**env), serve(**env)
        leaving.wait_ready()
        staying.wait_ready()
        correlations = [f"t{n}" for n in range(60)]
        asyncio.run(
            _load(
                [leaving, staying],
                correlations,
                lambda: leaving.process.send_signal(signal.SIGTERM),
            )
        )
        assert leaving.process.wait(30) == 0
        wait_until(lambda: len(subjects(sink)) == len(correlations), timeout=30)
        wait_until(lambda: outbox_length(redis_url) == 0)
    received = subjects(sink)
    assert sorted(received) == sorted(correlations)
    assert all(len(ids) == 1 for ids in received.values())
    statuses = {e.attributes["aggregationstatus"] for e in sink.events()}
    assert statuses == {"complete"}


def test_sigkill_one_of_three_under_load_loses_nothing(
    serve: Serve, redis_url: str, tmp_path: Path
) -> None:
    with running_sink() as sink:
        env = replica_env(tmp_path, redis_url, sink)
        replicas = [serve(**env) for _ in range(3)]
        for replica in replicas:
            replica.wait_ready()
        correlations = [f"k{n}" for n in range(90)]
        victim = replicas[0]

        def kill_and_restart() -> None:
            victim.stop(signal.SIGKILL)
            replacement = serve(**env)
            replicas.append(replacement)

        asyncio.run(_load(replicas, correlations, kill_and_restart))
        replicas[-1].wait_ready()
        wait_until(lambda: len(subjects(sink)) == len(correlations), timeout=30)
        wait_until(lambda: outbox_length(redis_url) == 0, timeout=30)
    received = subjects(sink)
    # Every correlation released, none twice: one aggregated event id each (a release whose
    # delivery was cut by the kill may arrive again, with the same id).
    assert sorted(received) == sorted(correlations)
    assert all(len(ids) == 1 for ids in received.values())
    print(f"events sent {4 * len(correlations)}, replicas killed 1, correlations {len(correlations)}, "
          f"lost 0, double releases 0, deliveries {len(sink.received)}")  # fmt: skip
