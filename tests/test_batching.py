"""Script calls made together share one round trip, yet each caller gets its own reply or
its own error; a lost script cache and a dropped connection are recovered from."""

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio
from redis.exceptions import ResponseError

from aggregator.batching import ScriptBatcher
from aggregator.redis_client import Client, connect, ready
from tests.support.app import make_settings

# Echoes its argument under its key; "fail" makes it answer with an error instead.
ECHO = """
if ARGV[1] == 'fail' then return redis.error_reply('ERR asked to fail') end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""


@pytest.fixture
async def client(any_redis_url: str) -> AsyncIterator[Client]:
    client = connect(make_settings(any_redis_url), "batching-test")
    await ready(client)
    yield client
    await client.aclose()


def batcher(client: Client) -> ScriptBatcher:
    return ScriptBatcher(client, client.register_script(ECHO))


async def test_concurrent_calls_each_get_their_own_reply(client: Client) -> None:
    call = batcher(client)
    # Keys of many hash slots: on a cluster the batch spans every master.
    replies = await asyncio.gather(*(call([f"key:{n}"], [f"value {n}"]) for n in range(200)))
    assert replies == [f"value {n}".encode() for n in range(200)]
    assert await client.get("key:7") == b"value 7"


async def test_an_error_reply_fails_only_its_own_caller(client: Client) -> None:
    call = batcher(client)
    replies = await asyncio.gather(
        call(["key:a"], ["a"]), call(["key:b"], ["fail"]), call(["key:c"], ["c"]),
        return_exceptions=True,
    )  # fmt: skip
    assert replies[0] == b"a"
    assert isinstance(replies[1], ResponseError)
    assert "asked to fail" in str(replies[1])
    assert replies[2] == b"c"
    assert await client.get("key:b") is None


async def test_a_flushed_script_cache_is_reloaded(client: Client) -> None:
    call = batcher(client)
    assert await call(["key:1"], ["before"]) == b"before"
    await client.script_flush()
    replies = await asyncio.gather(call(["key:1"], ["after"]), call(["key:2"], ["too"]))
    assert replies == [b"after", b"too"]


async def test_a_connection_redis_dropped_between_batches_is_replaced(redis_url: str) -> None:
    client = connect(make_settings(redis_url), "batching-test")
    call = batcher(client)
    assert await call(["key:1"], ["one"]) == b"one"
    admin = redis.asyncio.Redis.from_url(redis_url)
    killed = await admin.client_kill_filter(_type="normal", skipme=True)
    await admin.aclose()
    assert killed >= 1
    assert await call(["key:1"], ["two"]) == b"two"
    await client.aclose()
