"""Timeouts (DESIGN §2, §5): the sweeper releases what is due by each flow's policy, exactly
once, also when the last branch races the deadline."""

import asyncio
import uuid
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.keys import Keyspace
from aggregator.store import Store
from aggregator.sweeper import Sweeper
from tests.support.app import app_client, async_client, binary, make_settings, sync_client
from tests.support.sink import eventually, running_sink
from tests.test_ingest import dead_letters, outbox_length

pytestmark = pytest.mark.usefixtures("no_aggregator_env")


@pytest.fixture
def redis_url(any_redis_url: str) -> str:
    """Every test here runs on standalone Redis and on a 3-master Redis Cluster."""
    return any_redis_url


BRANCHES = ["a", "b", "c", "d"]


def flow(**options: Any) -> dict[str, Any]:
    return {"name": "f", "branches": BRANCHES, "timeout": "300ms", **options}


def fast(redis_url: str, *flows: dict[str, Any], **options: Any) -> Any:
    return make_settings(redis_url, *flows, **{"sweep_interval": "50ms", **options})


async def send(client: Any, branch: str, correlation: str = "c") -> str:
    response = await client.post(
        f"/flows/f/branches/{branch}", **binary({"b": branch}, correlationid=correlation)
    )
    assert response.status_code == 202
    return str(response.headers["aggregation-outcome"])


def state_status(redis_url: str, correlation: str = "c") -> bytes | None:
    client = sync_client(redis_url)
    status = client.hget(Keyspace(16).aggregation("f", correlation).state, "st")
    client.close()
    return status


async def test_emit_partial_lists_what_is_missing(redis_url: str) -> None:
    with running_sink() as sink:
        async with app_client(fast(redis_url, flow(sink=sink.url))) as client:
            await send(client, "b")
            await send(client, "d")
            [received] = await eventually(lambda: sink.got(1))
            assert await send(client, "a") == "late"
    event = received.event()
    assert event.attributes["aggregationstatus"] == "timeout"
    assert event.attributes["type"] == "dev.knative.aggregator.partial"
    assert (event.attributes["branchcount"], event.attributes["expectedbranches"]) == ("2", "4")
    data = event.data_value()
    assert data["status"] == "timeout"
    assert data["received"] == ["b", "d"]
    assert data["missing"] == ["a", "c"]


async def test_discard_delivers_nothing_and_answers_late(redis_url: str) -> None:
    with running_sink() as sink:
        async with app_client(fast(redis_url, flow(sink=sink.url, on_timeout="discard"))) as client:
            await send(client, "a")
            await eventually(lambda: state_status(redis_url) == b"discarded")
            assert await send(client, "b") == "late"
    assert outbox_length(redis_url) == 0
    assert sink.received == []
    assert dead_letters(redis_url) == []


async def test_dead_letter_policy_uses_the_dead_letter_sink(redis_url: str) -> None:
    with running_sink() as sink, running_sink() as dls:
        options = {"sink": sink.url, "on_timeout": "dead-letter", "dead_letter_sink": dls.url}
        async with app_client(fast(redis_url, flow(**options))) as client:
            await send(client, "a")
            [received] = await eventually(lambda: dls.got(1))
    assert sink.received == []
    event = received.event()
    assert event.attributes["aggregationstatus"] == "timeout"
    assert "knativeerrordest" not in event.attributes


async def test_dead_letter_policy_without_sink_fills_the_store(redis_url: str) -> None:
    with running_sink() as sink:
        async with app_client(
            fast(redis_url, flow(sink=sink.url, on_timeout="dead-letter"))
        ) as client:
            await send(client, "a")
            [letter] = await eventually(lambda: dead_letters(redis_url))
    assert letter.reason == "timed out (on_timeout: dead-letter)"
    assert letter.event.data_value()["missing"] == ["b", "c", "d"]
    assert sink.received == []


async def test_idle_timeout_releases_when_branches_stop_coming(redis_url: str) -> None:
    with running_sink() as sink:
        async with app_client(
            fast(redis_url, flow(sink=sink.url, timeout="1h", idle_timeout="200ms"))
        ) as client:
            await send(client, "a")
            await send(client, "b")
            [received] = await eventually(lambda: sink.got(1))
    data = received.event().data_value()
    assert (data["status"], data["received"]) == ("timeout", ["a", "b"])


async def test_an_origin_alone_times_out_and_is_reported(redis_url: str) -> None:
    with running_sink() as sink:
        async with app_client(fast(redis_url, flow(sink=sink.url))) as client:
            origin = binary({"doc": 1}, type="com.example.document", correlationid="c")
            response = await client.post("/flows/f/origin", **origin)
            assert response.headers["aggregation-outcome"] == "pending"
            [received] = await eventually(lambda: sink.got(1))
    data = received.event().data_value()
    assert data["received"] == []
    assert data["missing"] == BRANCHES
    assert data["origin"]["data"] == {"doc": 1}
    assert received.event().attributes["branchcount"] == "0"


async def test_timeouts_of_a_reply_flow_go_to_its_sink(redis_url: str) -> None:
    with running_sink() as sink:
        async with app_client(fast(redis_url, flow(sink=sink.url, delivery="reply"))) as client:
            await send(client, "a")
            [received] = await eventually(lambda: sink.got(1))
    assert received.event().attributes["aggregationstatus"] == "timeout"


async def race(redis_url: str, sink_url: str, correlation: str, head_start: float) -> str:
    """Three branches in, the deadline passes, then the last branch and a sweep at once (the
    app's own sweeper joins in on its tick)."""
    # The timeout leaves room for the first three branches even on a slow moment of the
    # machine: were it to fire before the race is set up, there would be no race.
    settings_ = fast(redis_url, flow(sink=sink_url, timeout="400ms"))
    async with app_client(settings_) as client:
        for branch in BRANCHES[:-1]:
            await send(client, branch, correlation)
        keys = Keyspace(16).aggregation("f", correlation)
        probe = async_client(redis_url)
        deadline = await probe.zscore(keys.deadlines, keys.member)
        assert deadline is not None, "the timeout fired before the race was set up"

        seconds, micros = await probe.time()
        # What this waits for is time itself: Redis's clock passing the deadline.
        await asyncio.sleep(max(0.0, deadline - (seconds * 1000 + micros // 1000)) / 1000 + 0.002)
        other_replica = Sweeper(settings_, Store(probe, Keyspace(16)), lambda: None)

        async def last_branch() -> str:
            await asyncio.sleep(head_start)
            return await send(client, "d", correlation)

        async def sweep() -> int:
            await asyncio.sleep(-head_start if head_start < 0 else 0)
            return await other_replica.sweep()

        outcome, _ = await asyncio.gather(last_branch(), sweep())
        await eventually(lambda: outbox_length(redis_url) == 0)
        await probe.aclose()
    return outcome


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(head_start=st.floats(min_value=-0.003, max_value=0.003))
def test_last_branch_racing_the_sweeper_gives_one_release(
    any_redis_url: str, head_start: float
) -> None:
    redis_url = any_redis_url
    correlation = f"race-{uuid.uuid4()}"
    with running_sink() as sink:
        outcome = asyncio.run(race(redis_url, sink.url, correlation, head_start))
        ours = [e for e in sink.events() if e.attributes["subject"] == correlation]
    assert outcome in ("complete", "late")
    hypothesis.event(outcome)
    [event] = ours
    assert event.attributes["aggregationstatus"] == (
        "complete" if outcome == "complete" else "timeout"
    )


async def test_a_removed_flow_still_releases_into_dead_letters(redis_url: str) -> None:
    async with app_client(fast(redis_url, flow())) as client:
        await send(client, "a")
    # The next deployment no longer has flow f; its pending aggregation is not dropped.
    async with app_client(fast(redis_url, {"name": "other", "expected_branches": 1})):
        [letter] = await eventually(lambda: dead_letters(redis_url))
    assert (letter.flow, letter.reason) == ("f", "flow not configured")
    assert letter.event.attributes["aggregationstatus"] == "timeout"
