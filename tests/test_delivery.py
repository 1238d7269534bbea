"""Delivery of releases (DESIGN §5): retries with Knative's DeliverySpec semantics, dead-letter
sink, dead-letter store and redrive, against real HTTP sinks on loopback and real Redis."""

import base64
import itertools
from typing import Any

import pytest

from aggregator.cloudevent import CloudEvent
from aggregator.flows import AggregateFlow
from aggregator.ingest import prepare
from aggregator.keys import Keyspace
from aggregator.outbox import Outbox
from aggregator.redis_client import connect, ready
from aggregator.scripts import Scripts
from aggregator.sender import backoff
from aggregator.store import Store
from tests.support.app import app_client, binary, make_settings, sync_client
from tests.support.sink import Answer, eventually, running_sink
from tests.test_ingest import dead_letters, outbox_length

pytestmark = pytest.mark.usefixtures("no_aggregator_env")


@pytest.fixture
def redis_url(any_redis_url: str) -> str:
    """Every test here runs on standalone Redis and on a 3-master Redis Cluster."""
    return any_redis_url


def one_branch(sink: str, **options: Any) -> dict[str, Any]:
    return {"name": "one", "expected_branches": 1, "sink": sink, "retry": 2,
            "backoff_delay": "50ms", **options}  # fmt: skip


async def release_one(client: Any, correlation: str = "c") -> None:
    response = await client.post("/flows/one", **binary({"n": 1}, correlationid=correlation))
    assert response.headers["aggregation-outcome"] == "complete"


async def test_503_503_200_is_delivered_once_with_growing_waits(redis_url: str) -> None:
    flow = one_branch("", retry=3, backoff_delay="100ms")
    with running_sink(Answer(503), Answer(503)) as sink:
        flow["sink"] = sink.url
        async with app_client(make_settings(redis_url, flow)) as client:
            await release_one(client)
            received = await eventually(lambda: sink.got(3))
            await eventually(lambda: outbox_length(redis_url) == 0)
    assert len(received) == 3
    ids = {r.event().attributes["id"] for r in received}
    assert len(ids) == 1
    gaps = [b.at - a.at for a, b in itertools.pairwise(received)]
    # Exponential: 100ms before the first retry, 200ms before the second.
    assert gaps[0] >= 0.1
    assert gaps[1] >= 0.2
    assert gaps[1] > gaps[0]
    assert dead_letters(redis_url) == []


@pytest.mark.parametrize(
    ("policy", "delay_ms", "retry", "waits"),
    [("exponential", 200, 4, [0.2, 0.4, 0.8, 1.6]), ("linear", 200, 4, [0.0, 0.2, 0.4, 0.6])],
)
def test_backoff_as_knative_computes_it(
    policy: str, delay_ms: int, retry: int, waits: list[float]
) -> None:
    flow = AggregateFlow(name="f", expected_branches=1, backoff_policy=policy,
                         backoff_delay=f"{delay_ms}ms", retry=retry)  # fmt: skip
    assert [round(backoff(flow, k), 3) for k in range(1, retry + 1)] == waits


async def test_linear_backoff_waits(redis_url: str) -> None:
    with running_sink(Answer(500), Answer(500)) as sink:
        flow = one_branch(sink.url, backoff_policy="linear", backoff_delay="150ms")
        async with app_client(make_settings(redis_url, flow)) as client:
            await release_one(client)
            received = await eventually(lambda: sink.got(3))
    assert received[2].at - received[1].at >= 0.15


async def test_retry_after_is_honoured_and_capped(redis_url: str) -> None:
    answers = [Answer(503, {"Retry-After": "1"}), Answer(429, {"Retry-After": "3600"})]
    with running_sink(*answers) as sink:
        flow = one_branch(sink.url, backoff_delay="10ms", retry_after_max="300ms")
        async with app_client(make_settings(redis_url, flow)) as client:
            await release_one(client)
            received = await eventually(lambda: sink.got(3))
    assert received[1].at - received[0].at >= 0.3  # Retry-After 1s, capped to 300ms
    assert received[1].at - received[0].at < 1.0
    assert received[2].at - received[1].at >= 0.3


@pytest.mark.parametrize("status", [404, 408, 409, 429, 500, 502, 503])
async def test_retryable_statuses(redis_url: str, status: int) -> None:
    with running_sink(Answer(status)) as sink:
        async with app_client(
            make_settings(redis_url, one_branch(sink.url, backoff_delay="10ms"))
        ) as client:
            await release_one(client)
            received = await eventually(lambda: sink.got(2))
            await eventually(lambda: outbox_length(redis_url) == 0)
    assert len(received) == 2
    assert dead_letters(redis_url) == []


@pytest.mark.parametrize("status", [400, 401, 403, 413, 415, 301])
async def test_final_statuses_go_straight_to_dead_letters(redis_url: str, status: int) -> None:
    with running_sink(default=Answer(status, body=b"no thanks")) as sink:
        async with app_client(make_settings(redis_url, one_branch(sink.url))) as client:
            await release_one(client)
            [letter] = await eventually(lambda: dead_letters(redis_url))
    assert len(sink.received) == 1
    assert (letter.attempts, letter.last_error, letter.reason) == (
        1,
        f"HTTP {status}",
        "delivery failed",
    )


async def test_exhausted_retries_go_to_the_dead_letter_sink_as_knative_does(redis_url: str) -> None:
    body = bytes(range(256)) * 8  # 2 KiB: knativeerrordata is cut to 1024 base64 characters
    with running_sink(default=Answer(500, body=body)) as sink, running_sink() as dls:
        flow = one_branch(sink.url, retry=1, backoff_delay="10ms", dead_letter_sink=dls.url)
        async with app_client(make_settings(redis_url, flow)) as client:
            await release_one(client)
            [received] = await eventually(lambda: dls.got(1))
            await eventually(lambda: outbox_length(redis_url) == 0)
    assert len(sink.received) == 2
    event = received.event()
    assert event.attributes["knativeerrordest"] == sink.url
    assert event.attributes["knativeerrorcode"] == "500"
    data = str(event.attributes["knativeerrordata"])
    assert len(data) <= 1024
    assert base64.b64decode(data) == body[:768]
    assert event.attributes["id"] == sink.received[0].event().attributes["id"]
    assert dead_letters(redis_url) == []


async def test_without_a_dead_letter_sink_the_store_keeps_it_and_redrive_delivers(
    redis_url: str,
) -> None:
    with running_sink(default=Answer(503)) as sink:
        flow = one_branch(sink.url, retry=1, backoff_delay="10ms")
        async with app_client(make_settings(redis_url, flow)) as client:
            await release_one(client)
            [letter] = await eventually(lambda: dead_letters(redis_url))
            assert (letter.attempts, letter.last_error) == (2, "HTTP 503")
            assert letter.event.attributes["aggregationstatus"] == "complete"
            rt = client._transport.app.state.runtime  # type: ignore[attr-defined]
            failed = await rt.dead_letters.redrive(letter.id, rt.sender)
            assert failed is not None
            assert not failed.delivered
            [kept] = dead_letters(redis_url)
            assert kept.attempts == 3
            sink.default = Answer(200)
            sent = await rt.dead_letters.redrive(letter.id, rt.sender)
            assert sent is not None
            assert sent.delivered
            assert await rt.dead_letters.redrive(letter.id, rt.sender) is None
    assert dead_letters(redis_url) == []
    ids = {r.event().attributes["id"] for r in sink.received}
    assert ids == {letter.event.attributes["id"]}


async def test_a_failing_dead_letter_sink_falls_back_to_the_store(redis_url: str) -> None:
    with running_sink(default=Answer(500)) as sink:
        flow = one_branch(sink.url, retry=0, dead_letter_sink=sink.url)
        async with app_client(make_settings(redis_url, flow)) as client:
            await release_one(client)
            [letter] = await eventually(lambda: dead_letters(redis_url))
    assert len(sink.received) == 2  # the sink, then the dead-letter sink
    assert letter.reason == "delivery failed"


async def test_transport_errors_are_retried(redis_url: str) -> None:
    from aggregator.embedded_redis import free_port

    closed = f"http://127.0.0.1:{free_port()}/nobody"
    async with app_client(
        make_settings(redis_url, one_branch(closed, backoff_delay="10ms"))
    ) as client:
        await release_one(client)
        [letter] = await eventually(lambda: dead_letters(redis_url))
    assert letter.attempts == 3
    assert letter.last_error is not None
    assert "Cannot connect to host" in letter.last_error


async def test_structured_mode_and_ce_overrides(redis_url: str) -> None:
    with running_sink() as sink:
        flow = one_branch(sink.url, format="json")
        settings = make_settings(redis_url, flow, K_CE_OVERRIDES='{"extensions": {"tenant": "t1"}}')
        async with app_client(settings) as client:
            await release_one(client)
            [received] = await eventually(lambda: sink.got(1))
    assert dict(received.headers)[b"content-type"] == b"application/cloudevents+json"
    event = received.event()
    assert event.attributes["tenant"] == "t1"
    assert event.data_value()["branches"]["/test"]["data"] == {"n": 1}


async def test_dead_letter_store_is_bounded_and_expires(redis_url: str) -> None:
    flow = {"name": "one", "expected_branches": 1}  # nowhere to deliver
    settings = make_settings(
        redis_url, flow, shards=1, dead_letter_max=2, dead_letter_retention="1h"
    )
    async with app_client(settings) as client:
        for n in range(3):
            await release_one(client, f"c{n}")
            await eventually(
                lambda n=n: f"c{n}" in {letter.correlation_id for letter in dead_letters(redis_url)}
            )
    kept = sorted(letter.correlation_id for letter in dead_letters(redis_url))
    assert kept == ["c1", "c2"]
    client_ = sync_client(redis_url)
    for key in client_.scan_iter(match="agg:*:dl*"):
        assert 0 < client_.pttl(key) <= 3_600_000
    client_.close()


async def test_a_malformed_outbox_entry_is_dropped_not_retried_forever(redis_url: str) -> None:
    client_ = sync_client(redis_url)
    client_.xadd("agg:{3}:outbox", {"something": "else"})
    client_.close()
    async with app_client(make_settings(redis_url, one_branch("http://127.0.0.1:9/x"))):
        await eventually(lambda: outbox_length(redis_url) == 0)
    assert dead_letters(redis_url) == []


async def test_the_outbox_knows_which_entries_its_reads_returned(redis_url: str) -> None:
    """What lets a release's nudge skip a stream read: the group hands entries out in order."""
    settings = make_settings(redis_url, one_branch("http://127.0.0.1:9/x"))
    client = connect(settings, "outbox-test")
    await ready(client)
    keyspace = Keyspace(settings.shards)
    outbox = Outbox(client, keyspace, Scripts(client))
    await outbox.ensure_groups()
    first = (await client.xadd(keyspace.outbox(3), {"route": "sink"})).decode()
    second = (await client.xadd(keyspace.outbox(3), {"route": "sink"})).decode()
    assert not outbox.returned(3, first)
    [entry] = await outbox.read("reader", 1, [3])
    assert entry.id == first
    assert outbox.returned(3, first)
    assert not outbox.returned(3, second)
    assert not outbox.returned(4, first)  # another shard's stream
    await outbox.read("reader", 1, [3])
    assert outbox.returned(3, second)
    await client.aclose()


async def test_a_release_to_the_outbox_names_its_entry(redis_url: str) -> None:
    settings = make_settings(redis_url, {"name": "pair", "expected_branches": 2})
    client = connect(settings, "store-test")
    await ready(client)
    keyspace = Keyspace(settings.shards)
    store = Store(client, keyspace)
    flow = settings.flow("pair")
    assert isinstance(flow, AggregateFlow)
    recorded = []
    for n in (1, 2):
        event = CloudEvent(
            {"id": str(n), "source": f"/b{n}", "type": "t", "correlationid": "c"}, data_json=b"1"
        )
        recorded.append(await store.record(prepare(flow, event, keyspace), flow, "sink", 100))
    assert [r.outcome for r in recorded] == ["pending", "complete"]
    assert recorded[0].outbox_entry is None
    entries = await client.xrange(prepare(flow, event, keyspace).keys.outbox)
    assert [entry_id.decode() for entry_id, _ in entries] == [recorded[1].outbox_entry]
    await client.aclose()
