"""Ingest over HTTP (DESIGN §3.1, §4, §5 reply mode, §6) through the real app and Redis."""

import base64
from typing import Any

import httpx
import orjson
import pytest
import redis
from redis.crc import key_slot

from aggregator.codec import decode
from aggregator.dead_letters import DeadLetter
from aggregator.keys import Keyspace
from tests.support.app import app_client, binary, make_settings, snapshot, sync_client
from tests.support.sink import eventually, running_sink

pytestmark = pytest.mark.usefixtures("no_aggregator_env")


@pytest.fixture
def redis_url(any_redis_url: str) -> str:
    """Every test here runs on standalone Redis and on a 3-master Redis Cluster."""
    return any_redis_url


BRANCHES = ["virus-scanner", "content-classifier", "ocr-extractor", "metadata-extractor"]
DOCS = {
    "name": "docs",
    "branches": BRANCHES,
    "branch": "path",
    "correlation": "data:/documentId",
    "timeout": "60s",
}
COUNT = {"name": "count", "expected_branches": 2}


def url(branch: str, flow: str = "docs") -> str:
    return f"/flows/{flow}/branches/{branch}"


def dead_letters(redis_url: str) -> list[DeadLetter]:
    client = sync_client(redis_url)
    found = [
        DeadLetter.decode(letter.decode(), payload)
        for key in client.scan_iter(match="agg:*:dl")
        for letter, payload in client.hgetall(key).items()
    ]
    client.close()
    return found


def outbox_length(redis_url: str) -> int:
    client = sync_client(redis_url)
    length = sum(client.xlen(key) for key in client.scan_iter(match="agg:*:outbox"))
    client.close()
    return length


def aggregated(response: httpx.Response) -> tuple[dict[str, str], Any]:
    [event], _ = decode(response.headers.raw, response.content)
    return {k: str(v) for k, v in event.attributes.items()}, event.data_value()


async def complete_docs(client: httpx.AsyncClient, doc: str, **kwargs: Any) -> httpx.Response:
    for branch in BRANCHES[:-1]:
        response = await client.post(url(branch), **binary({"documentId": doc, "b": branch}))
        assert response.headers["aggregation-outcome"] == "pending"
    last = BRANCHES[-1]
    return await client.post(url(last), **binary({"documentId": doc, "b": last}, **kwargs))


async def test_four_branches_then_the_aggregated_event(redis_url: str) -> None:
    async with app_client(make_settings(redis_url, DOCS)) as client:
        response = await complete_docs(
            client,
            "doc-1",
            prefer_reply=True,
            traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
        )
    assert response.status_code == 200
    assert response.headers["aggregation-outcome"] == "complete"
    attributes, data = aggregated(response)
    assert attributes["type"] == "dev.knative.aggregator.completed"
    assert attributes["source"] == "/aggregator/flows/docs"
    assert attributes["subject"] == attributes["correlationid"] == "doc-1"
    assert attributes["aggregationstatus"] == "complete"
    assert (attributes["branchcount"], attributes["expectedbranches"]) == ("4", "4")
    assert attributes["traceparent"] == "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    assert attributes["datacontenttype"] == "application/json"
    assert data["status"] == "complete"
    assert data["received"] == BRANCHES
    assert data["missing"] == []
    assert data["expected"] == 4
    assert data["branches"]["ocr-extractor"]["data"] == {
        "documentId": "doc-1",
        "b": "ocr-extractor",
    }
    assert set(data["branches"]["ocr-extractor"]) == {
        "id",
        "source",
        "type",
        "datacontenttype",
        "data",
    }
    assert outbox_length(redis_url) == 0
    assert dead_letters(redis_url) == []


async def test_redelivery_of_the_completing_event_replays_the_same_event(redis_url: str) -> None:
    async with app_client(make_settings(redis_url, DOCS)) as client:
        await complete_docs(client, "doc-1")
        last = binary({"documentId": "doc-2"}, id="last", prefer_reply=True)
        for branch in BRANCHES[:-1]:
            await client.post(url(branch), **binary({"documentId": "doc-2"}))
        first = await client.post(url(BRANCHES[-1]), **last)
        again = await client.post(url(BRANCHES[-1]), **last)
        other = await client.post(url(BRANCHES[0]), **binary({"documentId": "doc-2"}))
    assert first.status_code == again.status_code == 200
    assert again.headers["aggregation-outcome"] == "complete"
    assert first.content == again.content
    assert {k: v for k, v in first.headers.items() if k != "date"} == {
        k: v for k, v in again.headers.items() if k != "date"
    }
    assert other.status_code == 202
    assert other.headers["aggregation-outcome"] == "late"


async def test_outcomes_duplicate_late_and_first_wins(redis_url: str) -> None:
    async with app_client(make_settings(redis_url, DOCS)) as client:
        first = binary({"documentId": "d", "v": 1}, id="x1")
        assert (await client.post(url("virus-scanner"), **first)).headers[
            "aggregation-outcome"
        ] == "pending"
        again = await client.post(url("virus-scanner"), **first)
        assert (again.status_code, again.headers["aggregation-outcome"]) == (202, "duplicate")
        other = binary({"documentId": "d", "v": 2}, id="x2")
        assert (await client.post(url("virus-scanner"), **other)).headers[
            "aggregation-outcome"
        ] == "duplicate"
        for branch in BRANCHES[1:]:
            response = await client.post(
                url(branch), **binary({"documentId": "d"}, prefer_reply=True)
            )
        assert response.status_code == 200
        _, data = aggregated(response)
        assert data["branches"]["virus-scanner"]["data"] == {"documentId": "d", "v": 1}
        # After the release: an event accepted before is still a duplicate, a new one is late.
        assert (await client.post(url("virus-scanner"), **first)).headers[
            "aggregation-outcome"
        ] == "duplicate"
        late = await client.post(url("virus-scanner"), **binary({"documentId": "d"}))
        assert (late.status_code, late.headers["aggregation-outcome"]) == (202, "late")


async def test_last_wins_keeps_the_later_reply(redis_url: str) -> None:
    flow = {**DOCS, "duplicate_branch": "last-wins"}
    async with app_client(make_settings(redis_url, flow)) as client:
        await client.post(url("virus-scanner"), **binary({"documentId": "d", "v": 1}))
        replaced = await client.post(url("virus-scanner"), **binary({"documentId": "d", "v": 2}))
        assert replaced.headers["aggregation-outcome"] == "pending"
        for branch in BRANCHES[1:]:
            response = await client.post(
                url(branch), **binary({"documentId": "d"}, prefer_reply=True)
            )
    _, data = aggregated(response)
    assert data["branches"]["virus-scanner"]["data"] == {"documentId": "d", "v": 2}
    assert data["received"] == BRANCHES


@pytest.mark.parametrize(
    ("flow", "kwargs"),
    [({**DOCS, "delivery": "auto"}, {"prefer_reply": True}), ({**DOCS, "delivery": "sink"}, {})],
)
async def test_releases_with_a_sink_are_delivered_there(
    redis_url: str, flow: dict[str, Any], kwargs: dict[str, Any]
) -> None:
    with running_sink() as sink:
        async with app_client(make_settings(redis_url, {**flow, "sink": sink.url})) as client:
            response = await complete_docs(client, "doc-9", **kwargs)
            [received] = await eventually(lambda: sink.got(1))
    assert (response.status_code, response.content) == (202, b"")
    assert response.headers["aggregation-outcome"] == "complete"
    event = received.event()
    assert event.attributes["aggregationstatus"] == "complete"
    data = event.data_value()
    assert data["received"] == BRANCHES
    assert data["branches"][BRANCHES[0]]["data"] == {"documentId": "doc-9", "b": BRANCHES[0]}


@pytest.mark.parametrize(
    ("flow", "kwargs"),
    [(DOCS, {}), ({**DOCS, "delivery": "sink"}, {"prefer_reply": True})],
)
async def test_releases_with_nowhere_to_go_land_in_dead_letters(
    redis_url: str, flow: dict[str, Any], kwargs: dict[str, Any]
) -> None:
    async with app_client(make_settings(redis_url, flow)) as client:
        response = await complete_docs(client, "doc-9", **kwargs)
        [letter] = await eventually(lambda: dead_letters(redis_url))
    assert (response.status_code, response.content) == (202, b"")
    assert letter.reason == "nowhere to deliver"
    assert letter.attempts == 0
    assert letter.event.data_value()["received"] == BRANCHES


async def test_reply_mode_answers_without_prefer(redis_url: str) -> None:
    async with app_client(make_settings(redis_url, {**DOCS, "delivery": "reply"})) as client:
        response = await complete_docs(client, "d")
    assert response.status_code == 200


async def test_the_sink_from_k_sink(redis_url: str) -> None:
    with running_sink() as sink:
        async with app_client(make_settings(redis_url, DOCS, K_SINK=sink.url)) as client:
            response = await complete_docs(client, "d", prefer_reply=True)
            [received] = await eventually(lambda: sink.got(1))
    assert response.status_code == 202
    assert received.event().attributes["subject"] == "d"


async def test_origin_is_carried_and_never_counts(redis_url: str) -> None:
    async with app_client(make_settings(redis_url, DOCS)) as client:
        origin = binary(
            {"documentId": "d", "url": "s3://doc"}, type="com.example.document", prefer_reply=True
        )
        response = await client.post("/flows/docs/origin", **origin)
        assert (response.status_code, response.headers["aggregation-outcome"]) == (202, "pending")
        again = await client.post("/flows/docs/origin", **origin)
        assert again.headers["aggregation-outcome"] == "duplicate"
        response = await complete_docs(client, "d", prefer_reply=True)
        late = await client.post("/flows/docs/origin", **binary({"documentId": "d"}))
    _, data = aggregated(response)
    assert data["origin"]["type"] == "com.example.document"
    assert data["origin"]["data"] == {"documentId": "d", "url": "s3://doc"}
    assert data["received"] == BRANCHES
    assert late.headers["aggregation-outcome"] == "late"


async def test_result_merge_and_list_and_binary_data(redis_url: str) -> None:
    merge = {"name": "merge", "branches": ["a", "b", "c"], "result": "merge", "delivery": "reply"}
    listed = {"name": "listed", "expected_branches": 3, "result": "list", "delivery": "reply"}
    async with app_client(make_settings(redis_url, merge, listed)) as client:
        for flow in ("merge", "listed"):
            await client.post(
                f"/flows/{flow}/branches/b",
                **binary({"x": {"p": 2, "q": 2}, "y": 1}, correlationid="c"),
            )
            await client.post(
                f"/flows/{flow}/branches/a",
                **binary({"x": {"p": 1, "r": 1}, "z": 1}, correlationid="c"),
            )
            octets = binary(
                body=b"\x00\xff", content_type="application/octet-stream", correlationid="c"
            )
            response = await client.post(f"/flows/{flow}/branches/c", **octets)
            assert response.status_code == 200
            _, data = aggregated(response)
            assert data["branches"]["c"]["data_base64"] == base64.b64encode(b"\x00\xff").decode()
            assert "data" not in data["branches"]["c"]
            if flow == "merge":
                # Declared order a, b, c: b wins over a, c is not an object.
                assert data["merged"] == {"x": {"p": 2, "q": 2, "r": 1}, "y": 1, "z": 1}
            else:
                assert data["missing"] is None
                assert data["results"] == [
                    {"x": {"p": 2, "q": 2}, "y": 1},
                    {"x": {"p": 1, "r": 1}, "z": 1},
                    {"data_base64": "AP8="},
                ]


async def test_count_flow_with_branch_from_source_and_expected_from(redis_url: str) -> None:
    flow = {"name": "dyn", "expected_branches": 5, "expected_from": "ce:branchcount",
            "delivery": "reply", "output": {"type": "com.example.done", "source": "/me"}}  # fmt: skip
    settings = make_settings(redis_url, flow, K_CE_OVERRIDES='{"extensions": {"cluster": "eu1"}}')
    async with app_client(settings) as client:
        one = await client.post(
            "/flows/dyn", **binary({}, source="/one", correlationid="k", branchcount="2")
        )
        assert one.headers["aggregation-outcome"] == "pending"
        same_source = await client.post(
            "/flows/dyn", **binary({}, source="/one", correlationid="k")
        )
        assert same_source.headers["aggregation-outcome"] == "duplicate"
        response = await client.post("/flows/dyn", **binary({}, source="/two", correlationid="k"))
    attributes, data = aggregated(response)
    assert data["received"] == ["/one", "/two"]
    assert (attributes["type"], attributes["source"], attributes["cluster"]) == (
        "com.example.done",
        "/me",
        "eu1",
    )
    assert attributes["expectedbranches"] == "2"


async def test_json_data_is_carried_byte_for_byte(redis_url: str) -> None:
    flow = {"name": "exact", "expected_branches": 1, "delivery": "reply"}
    body = b'{"big": 1180591620717411303424, "f": 1.10, "s": "\\u00e9"}'
    async with app_client(make_settings(redis_url, flow)) as client:
        response = await client.post("/flows/exact", **binary(body=body, correlationid="c"))
    assert b'"data":' + body in response.content


async def test_aggregated_event_id_is_deterministic(redis_url: str) -> None:
    flow = {"name": "ids", "expected_branches": 1, "delivery": "reply"}
    async with app_client(make_settings(redis_url, flow)) as client:
        a = await client.post("/flows/ids", **binary({}, correlationid="one"))
        b = await client.post("/flows/ids", **binary({}, correlationid="two"))
    assert a.headers["ce-id"] != b.headers["ce-id"]
    assert len(a.headers["ce-id"]) == 36


ERRORS = [
    ("/flows/docs/branches/virus-scanner", {"headers": {"content-type": "text/plain"}, "content": b"hi"}, 400, "not a CloudEvent"),
    ("/flows/docs/branches/virus-scanner", binary({"other": 1}), 400, "no correlation id"),
    ("/flows/docs/branches/virus-scanner", binary({"documentId": {"nested": 1}}), 400, "no correlation id"),
    ("/flows/docs/branches/printer", binary({"documentId": "d"}), 400, "'printer' is not one of flow 'docs'"),
    ("/flows/docs", binary({"documentId": "d"}), 400, "takes the branch from the URL"),
    ("/flows/count", binary({}), 400, "no correlation id"),
    ("/flows/dyn", binary({}, correlationid="c", branchcount="zero"), 400, "branch count from 1 to 1000"),
    ("/flows/nope", binary({}), 404, "no aggregate flow 'nope'"),
    ("/flows/nope/branches/a", binary({}), 404, "no aggregate flow 'nope'"),
    ("/flows/seen", binary({}), 404, "no aggregate flow 'seen'"),
    ("/", binary({}), 404, "no flow 'default' is configured"),
    ("/dedup/docs", binary({}), 404, "no dedup flow 'docs'"),
    ("/flows/docs/branches/virus-scanner", {"headers": {"content-type": "application/cloudevents+xml"}, "content": b"<x/>"}, 415, "not supported"),
    ("/flows/docs/branches/virus-scanner", binary(body=b"x" * 2049), 413, "larger than 2048 bytes"),
    (
        "/flows/docs/branches/virus-scanner",
        {"headers": {"content-type": "application/cloudevents-batch+json"},
         "content": orjson.dumps([{"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data": {"documentId": "d"}},
                                  {"specversion": "1.0", "id": "2", "source": "/s", "type": "t", "data": {}}])},
        400, "no correlation id",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("path", "request_kwargs", "status", "detail"), ERRORS)
async def test_bad_requests_answer_4xx_and_change_nothing(
    redis_url: str, path: str, request_kwargs: dict[str, Any], status: int, detail: str
) -> None:
    flows = [DOCS, COUNT, {"name": "dyn", "expected_branches": 2, "expected_from": "ce:branchcount"},
             {"name": "seen", "kind": "dedup"}]  # fmt: skip
    async with app_client(make_settings(redis_url, *flows, max_event_bytes=2048)) as client:
        await client.post(url("ocr-extractor"), **binary({"documentId": "d"}))
        before = snapshot(redis_url)
        response = await client.post(path, **request_kwargs)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert "aggregation-outcome" not in response.headers
    problem = response.json()
    assert problem["status"] == status
    assert detail in problem["detail"]
    assert snapshot(redis_url) == before


async def test_max_pending_answers_429_for_new_aggregations_only(redis_url: str) -> None:
    async with app_client(make_settings(redis_url, COUNT, max_pending=2, shards=1)) as client:
        for cid in ("a", "b"):
            assert (
                await client.post("/flows/count", **binary({}, correlationid=cid))
            ).status_code == 202
        before = snapshot(redis_url)
        full = await client.post("/flows/count", **binary({}, correlationid="c"))
        assert full.status_code == 429
        assert full.headers["retry-after"] == "5"
        assert snapshot(redis_url) == before
        # An aggregation that is already pending is always accepted.
        done = await client.post("/flows/count", **binary({}, correlationid="a", source="/other"))
        assert done.headers["aggregation-outcome"] == "complete"
        assert (
            await client.post("/flows/count", **binary({}, correlationid="c"))
        ).status_code == 202


async def test_batch_outcomes_in_order_and_429_midway(redis_url: str) -> None:
    def event(id: str, cid: str) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": id,
            "source": f"/{id}",
            "type": "t",
            "correlationid": cid,
        }

    batch = [event("1", "a"), event("1", "a"), event("3", "b"), event("4", "c"), event("2", "a")]
    request = {"headers": {"content-type": "application/cloudevents-batch+json", "prefer": "reply"},
               "content": orjson.dumps(batch)}  # fmt: skip
    async with app_client(make_settings(redis_url, COUNT, max_pending=2, shards=1)) as client:
        full = await client.post("/flows/count", **request)
        assert full.status_code == 429
        async with app_client(make_settings(redis_url, COUNT, shards=1)) as roomy:
            response = await roomy.post("/flows/count", **request)
            [letter] = await eventually(lambda: dead_letters(redis_url))
    assert (response.status_code, response.content) == (202, b"")
    assert (
        response.headers["aggregation-outcome"] == "duplicate,duplicate,duplicate,pending,complete"
    )
    assert letter.correlation_id == "a"


async def test_an_empty_batch_has_empty_outcomes(redis_url: str) -> None:
    async with app_client(make_settings(redis_url, COUNT)) as client:
        response = await client.post(
            "/flows/count",
            headers={"content-type": "application/cloudevents-batch+json"},
            content=b"[]",
        )
    assert (response.status_code, response.headers["aggregation-outcome"]) == (202, "")


async def test_redis_down_answers_503_and_nothing_is_acknowledged(tmp_path: Any) -> None:
    from aggregator.embedded_redis import RedisServer

    with RedisServer(tmp_path / "redis") as server:
        async with app_client(make_settings(server.url, COUNT)) as client:
            assert (
                await client.post("/flows/count", **binary({}, correlationid="a"))
            ).status_code == 202
            server.stop()
            response = await client.post(
                "/flows/count", **binary({}, correlationid="a", source="/b")
            )
            ready = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "aggregation-outcome" not in response.headers
    assert ready.status_code == 503


HOSTILE_IDS = [
    "{x}",
    "}{",
    "a:b",
    "with space",
    "ünï©ødé",
    "{0}",
    "",
    "x" * 10_000,
    "nul\x00byte",
    ":",
]


async def test_hostile_ids_are_isolated_and_stay_in_one_slot(redis_url: str) -> None:
    flow = {"name": "count", "expected_branches": 2, "delivery": "reply", "correlation": "data:/c"}
    ids = [i for i in HOSTILE_IDS if i]
    async with app_client(make_settings(redis_url, flow)) as client:
        for cid in ids:
            response = await client.post("/flows/count", **binary({"c": cid}, source="/first"))
            assert response.headers["aggregation-outcome"] == "pending"
        for cid in ids:
            response = await client.post("/flows/count", **binary({"c": cid}, source="/second"))
            assert response.status_code == 200
            _, data = aggregated(response)
            assert data["correlationId"] == cid
    keyspace = Keyspace(16)
    for cid in ids:
        keys = keyspace.aggregation("count", cid)
        same_call = (keys.state, keys.deadlines, keys.outbox, keys.flow_index)
        assert len({key_slot(k.encode()) for k in same_call}) == 1


async def test_every_per_correlation_key_expires(redis_url: str) -> None:
    async with app_client(
        make_settings(redis_url, DOCS, COUNT, {"name": "seen", "kind": "dedup"})
    ) as client:
        await complete_docs(client, "done")
        await client.post(url("ocr-extractor"), **binary({"documentId": "pending"}))
        await client.post("/dedup/seen", **binary({}))
    client_ = sync_client(redis_url)
    shared = (b":deadlines", b":outbox")
    keys = list(client_.scan_iter())
    assert len(keys) >= 3
    for key in keys:
        # Shared structures are bounded instead: by max_pending, or trimmed by the dispatcher.
        if not key.endswith(shared) and b":fi:" not in key:
            assert client_.pttl(key) > 0, key
    client_.close()


async def test_one_redis_command_per_event(standalone_redis_url: str) -> None:
    redis_url = standalone_redis_url
    async with app_client(make_settings(redis_url, DOCS)) as client:
        await complete_docs(client, "warm-up")
        monitor_client = redis.Redis.from_url(redis_url)
        requests = {
            c["addr"] for c in monitor_client.client_list() if c["name"] == "aggregator-requests"
        }
        assert requests
        with monitor_client.monitor() as monitor:
            for n, branch in enumerate(BRANCHES):
                await client.post(url(branch), **binary({"documentId": f"doc-{n // 2}"}))
            commands = []
            for entry in monitor.listen():
                address = f"{entry['client_address']}:{entry['client_port']}"
                if entry["client_type"] != "lua" and address in requests:
                    commands.append(entry["command"])
                if len(commands) == len(BRANCHES):
                    break
        monitor_client.close()
    assert all(command.startswith("EVALSHA ") for command in commands), commands


async def test_dedup_filter(redis_url: str) -> None:
    async with app_client(
        make_settings(redis_url, {"name": "seen", "kind": "dedup", "window": "10m"})
    ) as client:
        structured = {"headers": {"content-type": "application/cloudevents+json"},
                      "content": orjson.dumps({"specversion": "1.0", "id": "1", "source": "/s",
                                               "type": "t", "subject": "a b", "data": {"k": 1}})}  # fmt: skip
        first = await client.post("/dedup/seen", **structured)
        second = await client.post("/dedup/seen", **structured)
        other = await client.post("/dedup/seen", **binary({}, id="2", source="/s"))
        batch = await client.post(
            "/dedup/seen",
            headers={"content-type": "application/cloudevents-batch+json"},
            content=b"[]",
        )
    assert (first.status_code, first.headers["dedup-outcome"]) == (200, "unique")
    assert first.headers["ce-id"] == "1"
    assert first.headers["ce-subject"] == "a%20b"
    assert first.headers["content-type"] == "application/json"
    assert orjson.loads(first.content) == {"k": 1}
    assert (second.status_code, second.headers["dedup-outcome"], second.content) == (
        202,
        "duplicate",
        b"",
    )
    assert other.headers["dedup-outcome"] == "unique"
    assert batch.status_code == 400
    client_ = sync_client(redis_url)
    keys = [k for k in client_.scan_iter() if b":u:" in k]
    assert len(keys) == 2
    assert all(0 < client_.pttl(key) <= 600_000 for key in keys)
    client_.close()


async def test_dedup_key_from_data(redis_url: str) -> None:
    async with app_client(
        make_settings(redis_url, {"name": "seen", "kind": "dedup", "key": "data:/order"})
    ) as client:
        a = await client.post("/dedup/seen", **binary({"order": 7}))
        b = await client.post("/dedup/seen", **binary({"order": 7}))
        missing = await client.post("/dedup/seen", **binary({"other": 7}))
    assert (a.status_code, b.status_code, missing.status_code) == (200, 202, 400)
    assert "no dedup key" in missing.json()["detail"]


async def test_idle_timeout_moves_the_deadline(redis_url: str) -> None:
    flow = {**COUNT, "expected_branches": 3, "timeout": "1h", "idle_timeout": "10s"}
    async with app_client(make_settings(redis_url, flow)) as client:
        await client.post("/flows/count", **binary({}, correlationid="c", source="/a"))
        keys = Keyspace(16).aggregation("count", "c")
        client_ = sync_client(redis_url)
        first = client_.zscore(keys.deadlines, keys.member)
        await client.post("/flows/count", **binary({}, correlationid="c", source="/b"))
        second = client_.zscore(keys.deadlines, keys.member)
        t0 = int(client_.hget(keys.state, "t0"))
        client_.close()
    assert first is not None
    assert second is not None
    assert t0 + 10_000 <= first <= second < t0 + 3_600_000
