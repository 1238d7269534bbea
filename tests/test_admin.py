"""The admin API (DESIGN §3.3) against real Redis: auth, paging, inspection and actions."""

from typing import Any

import httpx
import pytest
import redis

from tests.support.app import app_client, binary, make_settings
from tests.support.sink import Answer, eventually, running_sink
from tests.test_ingest import dead_letters

pytestmark = pytest.mark.usefixtures("no_aggregator_env")

TOKEN = "s3cret-admin-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
DOCS = {"name": "docs", "branches": ["a", "b", "c"], "branch": "path", "timeout": "1h"}
COUNT = {"name": "count", "expected_branches": 3, "timeout": "1h"}
ADMIN_ROUTES = [
    ("GET", "/flows"),
    ("GET", "/aggregations"),
    ("GET", "/aggregations/docs/x"),
    ("POST", "/aggregations/docs/x/release"),
    ("DELETE", "/aggregations/docs/x"),
    ("GET", "/dead-letters"),
    ("POST", "/dead-letters/0-1-0/redrive"),
    ("DELETE", "/dead-letters/0-1-0"),
]


def admin(redis_url: str, *flows: dict[str, Any], **options: Any) -> Any:
    return make_settings(redis_url, *(flows or (DOCS, COUNT)), admin_token=TOKEN, **options)


async def pend(
    client: httpx.AsyncClient, flow: str, correlation: str, branch: str = "a", **ext: str
) -> None:
    path = f"/flows/{flow}/branches/{branch}" if flow == "docs" else f"/flows/{flow}"
    data = {"payload": correlation}
    response = await client.post(
        path, **binary(data, correlationid=correlation, source=f"/{branch}", **ext)
    )
    assert response.headers["aggregation-outcome"] == "pending"


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
async def test_no_token_configured_is_403_with_how_to(
    redis_url: str, method: str, path: str
) -> None:
    async with app_client(make_settings(redis_url, DOCS)) as client:
        response = await client.request(method, path)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "AGGREGATOR_ADMIN_TOKEN" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", f"bearer {TOKEN}", TOKEN, f"Bearer {TOKEN}x"]
)
async def test_missing_or_wrong_token_is_401(
    redis_url: str, method: str, path: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    async with app_client(admin(redis_url)) as client:
        response = await client.request(method, path, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in response.text


async def test_open_admin_for_local_development(redis_url: str) -> None:
    async with app_client(make_settings(redis_url, DOCS, admin_open=True)) as client:
        assert (await client.get("/flows")).status_code == 200


async def test_flows_show_configuration_without_secrets(redis_url: str) -> None:
    async with app_client(admin(redis_url)) as client:
        response = await client.get("/flows", headers=AUTH)
    assert response.status_code == 200
    names = [flow["name"] for flow in response.json()["flows"]]
    assert names == ["docs", "count"]
    assert TOKEN not in response.text


async def test_listing_pages_through_everything_once(redis_url: str) -> None:
    async with app_client(admin(redis_url)) as client:
        for n in range(23):
            await pend(client, "docs", f"d{n:02}")
        for n in range(7):
            await pend(client, "count", f"k{n}")
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params = {"limit": "4"} if cursor is None else {"limit": "4", "cursor": cursor}
            body = (await client.get("/aggregations", params=params, headers=AUTH)).json()
            pages += 1
            seen += [f"{i['flow']}/{i['correlationId']}" for i in body["items"]]
            assert len(body["items"]) <= 4
            cursor = body["nextCursor"]
            if cursor is None:
                break
        only_docs = (
            await client.get(
                "/aggregations", params={"flow": "docs", "limit": "1000"}, headers=AUTH
            )
        ).json()
    assert sorted(seen) == sorted(
        [f"docs/d{n:02}" for n in range(23)] + [f"count/k{n}" for n in range(7)]
    )
    assert pages == 8
    assert only_docs["nextCursor"] is None
    assert sorted(i["correlationId"] for i in only_docs["items"]) == [f"d{n:02}" for n in range(23)]
    item = only_docs["items"][0]
    assert (item["expected"], item["received"], item["missing"]) == (3, ["a"], ["b", "c"])
    assert item["firstSeen"] < item["deadline"]
    assert item["ageSeconds"] >= 0


async def test_count_flows_have_no_missing_names(redis_url: str) -> None:
    async with app_client(admin(redis_url)) as client:
        await pend(client, "count", "k", branch="x")
        [item] = (await client.get("/aggregations", headers=AUTH)).json()["items"]
    assert (item["received"], item["missing"], item["expected"]) == (["/x"], None, 3)


@pytest.mark.parametrize(
    ("params", "detail"),
    [({"limit": "0"}, "limit"), ({"limit": "many"}, "limit"), ({"cursor": "???"}, "invalid cursor"),
     ({"include": "everything"}, "include"), ({"flow": ""}, "flow"), ({"colour": "red"}, "colour")],
)  # fmt: skip
async def test_bad_listing_parameters_are_400(
    redis_url: str, params: dict[str, str], detail: str
) -> None:
    async with app_client(admin(redis_url)) as client:
        response = await client.get("/aggregations", params=params, headers=AUTH)
    assert response.status_code == 400
    assert detail in response.json()["detail"]


async def test_limit_is_clamped(redis_url: str) -> None:
    async with app_client(admin(redis_url)) as client:
        await pend(client, "docs", "d")
        response = await client.get("/aggregations", params={"limit": "5000"}, headers=AUTH)
    assert response.status_code == 200
    assert len(response.json()["items"]) == 1


async def commands_for_a_page(client: httpx.AsyncClient, redis_url: str) -> list[str]:
    """The Redis commands (names only) one page of 5 costs, seen by MONITOR."""
    monitor_client = redis.Redis.from_url(redis_url)
    requests_clients = {
        c["addr"] for c in monitor_client.client_list() if c["name"] == "aggregator-requests"
    }
    commands: list[str] = []
    with monitor_client.monitor() as monitor:
        await client.get("/aggregations", params={"limit": "5"}, headers=AUTH)
        await client.get("/aggregations/marker/marker", headers=AUTH)  # ends with an HGETALL
        for entry in monitor.listen():
            if f"{entry['client_address']}:{entry['client_port']}" not in requests_clients:
                continue
            name = entry["command"].split()[0]
            if name == "HGETALL":
                break
            commands.append(name)
    monitor_client.close()
    return commands


async def test_a_page_costs_the_same_with_many_more_pending(redis_url: str) -> None:
    async with app_client(admin(redis_url, shards=4)) as client:
        for n in range(10):
            await pend(client, "count", f"few{n}")
        few = await commands_for_a_page(client, redis_url)
        for n in range(300):
            await pend(client, "count", f"many{n}")
        many = await commands_for_a_page(client, redis_url)
    # At most a range per shard and two reads per item, with 10 pending as with 310.
    assert len(few) <= 4 + 2 * 5
    assert len(many) <= 4 + 2 * 5
    assert many.count("HMGET") == many.count("HKEYS") == 5


async def test_detail_with_and_without_data(redis_url: str) -> None:
    async with app_client(admin(redis_url)) as client:
        origin = binary({"doc": 1}, type="com.example.doc", correlationid="d")
        await client.post("/flows/docs/origin", **origin)
        await pend(client, "docs", "d", branch="b")
        plain = (await client.get("/aggregations/docs/d", headers=AUTH)).json()
        full = (
            await client.get("/aggregations/docs/d", params={"include": "data"}, headers=AUTH)
        ).json()
        missing = await client.get("/aggregations/docs/nope", headers=AUTH)
    branch = plain["branches"]["b"]
    assert set(branch) >= {"id", "source", "type", "time", "size", "receivedAt"}
    assert branch["size"] == len(b'{"payload":"d"}')
    assert branch.get("data") is None
    assert full["branches"]["b"]["data"] == {"payload": "d"}
    assert plain["origin"]["type"] == "com.example.doc"
    assert full["origin"]["data"] == {"doc": 1}
    assert (plain["received"], plain["missing"]) == (["b"], ["a", "c"])
    assert missing.status_code == 404


async def test_release_now_delivers_a_manual_partial(redis_url: str) -> None:
    with running_sink() as sink:
        async with app_client(admin(redis_url, {**DOCS, "sink": sink.url})) as client:
            await pend(client, "docs", "d")
            response = await client.post("/aggregations/docs/d/release", headers=AUTH)
            assert response.status_code == 200
            assert response.json() == {"flow": "docs", "correlationId": "d", "status": "manual"}
            [received] = await eventually(lambda: sink.got(1))
            late = await client.post("/flows/docs/branches/b", **binary({}, correlationid="d"))
            again = await client.post("/aggregations/docs/d/release", headers=AUTH)
    event = received.event()
    assert event.attributes["aggregationstatus"] == "manual"
    assert event.attributes["type"] == "dev.knative.aggregator.partial"
    assert late.headers["aggregation-outcome"] == "late"
    assert again.status_code == 404


async def test_delete_discards_and_leaves_a_tombstone(redis_url: str) -> None:
    with running_sink() as sink:
        async with app_client(admin(redis_url, {**DOCS, "sink": sink.url})) as client:
            await pend(client, "docs", "d")
            assert (await client.delete("/aggregations/docs/d", headers=AUTH)).status_code == 204
            late = await client.post("/flows/docs/branches/b", **binary({}, correlationid="d"))
            assert (await client.delete("/aggregations/docs/d", headers=AUTH)).status_code == 404
            listed = (await client.get("/aggregations", headers=AUTH)).json()["items"]
    assert late.headers["aggregation-outcome"] == "late"
    assert listed == []
    assert sink.received == []


async def test_dead_letters_list_redrive_delete(redis_url: str) -> None:
    flow = {"name": "one", "expected_branches": 1, "retry": 0}
    with running_sink(default=Answer(500)) as sink:
        async with app_client(admin(redis_url, {**flow, "sink": sink.url}, shards=2)) as client:
            for n in range(5):
                await client.post("/flows/one", **binary({"n": n}, correlationid=f"c{n}"))
            await eventually(lambda: len(dead_letters(redis_url)) == 5)
            first = (await client.get("/dead-letters", params={"limit": "3"}, headers=AUTH)).json()
            second = (
                await client.get(
                    "/dead-letters",
                    params={"limit": "3", "cursor": first["nextCursor"]},
                    headers=AUTH,
                )
            ).json()
            assert second["nextCursor"] is None
            items = first["items"] + second["items"]
            assert sorted(i["correlationId"] for i in items) == [f"c{n}" for n in range(5)]
            item = items[0]
            assert (item["reason"], item["attempts"], item["lastError"]) == (
                "delivery failed",
                1,
                "HTTP 500",
            )
            assert "data" not in item["event"]
            with_data = (
                await client.get("/dead-letters", params={"include": "data"}, headers=AUTH)
            ).json()
            assert all("data" in i["event"] for i in with_data["items"])
            failed = await client.post(f"/dead-letters/{item['id']}/redrive", headers=AUTH)
            assert failed.status_code == 502
            sink.default = Answer(200)
            redriven = await client.post(f"/dead-letters/{item['id']}/redrive", headers=AUTH)
            assert redriven.status_code == 200
            assert redriven.json() == {"id": item["id"], "delivered": True, "status": 200}
            assert (
                await client.post(f"/dead-letters/{item['id']}/redrive", headers=AUTH)
            ).status_code == 404
            other = items[1]["id"]
            assert (await client.delete(f"/dead-letters/{other}", headers=AUTH)).status_code == 204
            assert (await client.delete(f"/dead-letters/{other}", headers=AUTH)).status_code == 404
            assert (await client.delete("/dead-letters/not-an-id", headers=AUTH)).status_code == 404
    assert len(dead_letters(redis_url)) == 3


async def test_redrive_without_a_sink_is_409(redis_url: str) -> None:
    async with app_client(admin(redis_url, {"name": "one", "expected_branches": 1})) as client:
        await client.post("/flows/one", **binary({}, correlationid="c"))
        [letter] = await eventually(lambda: dead_letters(redis_url))
        response = await client.post(f"/dead-letters/{letter.id}/redrive", headers=AUTH)
    assert response.status_code == 409


async def test_redis_down_is_503(tmp_path: Any) -> None:
    from aggregator.embedded_redis import RedisServer

    with RedisServer(tmp_path / "redis") as server:
        async with app_client(admin(server.url)) as client:
            server.stop()
            response = await client.get("/aggregations", headers=AUTH)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
