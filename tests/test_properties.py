"""Property: whatever the order, duplication and interleaving of deliveries across two
replicas sharing one Redis, an aggregation is released exactly once, holding the
first-accepted reply of every branch."""

import asyncio
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.app import app_client, binary, make_settings
from tests.support.sink import Sink, eventually, running_sink
from tests.test_ingest import outbox_length

pytestmark = pytest.mark.usefixtures("no_aggregator_env")


@dataclass(frozen=True)
class Delivery:
    branch: str
    event: int  # which of the branch's distinct events
    replica: int


@dataclass(frozen=True)
class Scenario:
    branches: tuple[str, ...]
    named: bool
    last_wins: bool
    deliveries: tuple[Delivery, ...]
    chunks: tuple[int, ...]  # sizes of groups sent concurrently, in order


branch_names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=8
).filter(lambda name: "," not in name and name.strip() == name and "/" not in name)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    branches = tuple(draw(st.lists(branch_names, min_size=1, max_size=5, unique=True)))
    deliveries = []
    for branch in branches:
        if draw(st.integers(0, 9)) == 0:
            continue  # this branch never answers
        for event in range(draw(st.integers(1, 2))):
            copies = draw(st.integers(1, 3))
            deliveries += [Delivery(branch, event, draw(st.integers(0, 1))) for _ in range(copies)]
    order = tuple(draw(st.permutations(deliveries)))
    chunks = []
    remaining = len(order)
    while remaining:
        size = draw(st.integers(1, remaining))
        chunks.append(size)
        remaining -= size
    return Scenario(branches, draw(st.booleans()), draw(st.booleans()), order, tuple(chunks))


async def play(
    redis_url: str, sink: Sink, scenario: Scenario
) -> tuple[list[tuple[Delivery, str]], str]:
    correlation = str(uuid.uuid4())
    flow: dict[str, Any] = {
        "name": "prop",
        "correlation": "ce:correlationid",
        "branch": "ce:branchname",
        "sink": sink.url,
        "duplicate_branch": "last-wins" if scenario.last_wins else "first-wins",
    }
    if scenario.named:
        flow["branches"] = list(scenario.branches)
    else:
        flow["expected_branches"] = len(scenario.branches)
    settings_ = make_settings(redis_url, flow)
    async with AsyncExitStack() as stack:
        replicas = [await stack.enter_async_context(app_client(settings_)) for _ in range(2)]

        async def send(delivery: Delivery) -> tuple[Delivery, str]:
            request = binary(
                {"branch": delivery.branch, "event": delivery.event},
                id=f"{correlation}/{delivery.branch}/{delivery.event}",
                source="/branches",
                correlationid=correlation,
                branchname=delivery.branch,
            )
            response: httpx.Response = await replicas[delivery.replica].post(
                "/flows/prop", **request
            )
            assert response.status_code == 202, response.text
            return delivery, response.headers["aggregation-outcome"]

        results = []
        start = 0
        for size in scenario.chunks:
            chunk = scenario.deliveries[start : start + size]
            results += await asyncio.gather(*(send(d) for d in chunk))
            start += size
        # Every release reaches the sink before the outbox is empty.
        await eventually(lambda: outbox_length(redis_url) == 0)
    return results, correlation


@settings(
    max_examples=75,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_exactly_one_release_with_the_accepted_replies(redis_url: str, scenario: Scenario) -> None:
    # Branch names travel hex-encoded in an extension (attribute values are any text, but
    # this keeps the generated names exotic without testing header encoding here).
    scenario = Scenario(
        tuple(name.encode().hex() for name in scenario.branches),
        scenario.named,
        scenario.last_wins,
        tuple(Delivery(d.branch.encode().hex(), d.event, d.replica) for d in scenario.deliveries),
        scenario.chunks,
    )
    with running_sink() as sink:
        results, correlation = asyncio.run(play(redis_url, sink, scenario))
        releases = [e for e in sink.events() if e.attributes["subject"] == correlation]
    answered = {d.branch for d in scenario.deliveries}
    if answered != set(scenario.branches):
        assert releases == []
        assert all(outcome in ("pending", "duplicate") for _, outcome in results)
        return
    [aggregated] = releases
    release = aggregated.data_value()
    assert release["status"] == "complete"
    # Per event: at most one delivery was taken; the others are duplicates (or, for the
    # completing event, replays of the completion).
    completers = {(d.branch, d.event) for d, outcome in results if outcome == "complete"}
    assert len(completers) == 1
    taken: dict[tuple[str, int], list[str]] = {}
    for delivery, outcome in results:
        if outcome in ("pending", "complete"):
            taken.setdefault((delivery.branch, delivery.event), []).append(outcome)
    for outcomes in taken.values():
        assert outcomes.count("pending") + min(1, outcomes.count("complete")) == 1
    # Content: every branch exactly once; first-wins holds the only accepted event of the
    # branch, last-wins one of the accepted ones.
    released = {name: branch["data"]["event"] for name, branch in release["branches"].items()}
    assert sorted(released) == sorted(scenario.branches)
    for branch, event in released.items():
        accepted = {e for (b, e) in taken if b == branch}
        if scenario.last_wins:
            assert event in accepted
        else:
            assert accepted == {event}
    assert int(aggregated.attributes["branchcount"]) == len(scenario.branches)
