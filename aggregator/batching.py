"""Script calls made concurrently (ingest by requests, settle by deliveries), sent as one
pipeline per turn of the event loop. Redis still runs one script per call; what the batch
saves is redis-py's own work per command (a pool checkout, a retry wrapper, a write and a
read of its own), which costs about as much as the rest of a request (docs/benchmarks.md)."""

import asyncio
from typing import Any

import hiredis
from redis.asyncio import ConnectionPool, RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError, ResponseError

from aggregator.redis_client import Client

Call = tuple[list[str], list[Any], "asyncio.Future[Any]"]
Command = tuple[str | bytes | int, ...]


class NotReplicated(RedisError):
    """The write reached the master but not enough replicas in time: a failover could lose
    it, so it is not acknowledged. Retrying is safe: ingest is idempotent."""


class ScriptBatcher:
    """With `min_replicas`, each batch ends with `WAIT min_replicas wait_ms`: WAIT counts the
    replicas holding this connection's writes, so one after the batch, on its connection,
    covers every call in it; when too few answer, each call fails with NotReplicated."""

    def __init__(
        self, redis: "Client", script: AsyncScript, min_replicas: int = 0, wait_ms: int = 0
    ) -> None:
        self.redis = redis
        self.script = script
        self.min_replicas = min_replicas
        self.wait_ms = wait_ms
        self._queue: list[Call] = []
        self._flushes: set[asyncio.Task[None]] = set()

    async def __call__(self, keys: list[str], args: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._queue:
            loop.call_soon(self._flush)
        self._queue.append((keys, args, future))
        return await future

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        # A task of its own: a request that goes away must not take the others' calls along.
        task = asyncio.ensure_future(self._run(batch))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _run(self, batch: list[Call]) -> None:
        try:
            replies = await self._execute(batch)
        except asyncio.CancelledError:
            for _, _, future in batch:  # shutting down: no caller waits for ever
                future.cancel()
            raise
        except Exception as exc:  # every caller hears of it, whatever it is
            replies = [exc] * len(batch)
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _execute(self, batch: list[Call]) -> list[Any]:
        replies = await self._pipeline(batch)
        missing = [n for n, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            # Redis lost its scripts (a restart): load it, then send again only what did not run.
            await self.redis.script_load(self.script.script)
            again = await self._pipeline([batch[n] for n in missing])
            for n, reply in zip(missing, again, strict=True):
                replies[n] = reply
        return replies

    async def _pipeline(self, batch: list[Call]) -> list[Any]:
        commands = [
            ("EVALSHA", self.script.sha, len(keys), *keys, *args) for keys, args, _ in batch
        ]
        if self.min_replicas:
            commands.append(("WAIT", self.min_replicas, self.wait_ms))
        if isinstance(self.redis, RedisCluster):
            replies = await _cluster_pipeline(self.redis, commands)
        else:
            replies = await _exchange(self.redis.connection_pool, commands)
        if not self.min_replicas:
            return replies
        replicas = replies.pop()
        if isinstance(replicas, Exception):
            raise replicas
        if replicas >= self.min_replicas:
            return replies
        refused = NotReplicated(f"{replicas} of {self.min_replicas} replicas confirmed the write")
        return [reply if isinstance(reply, Exception) else refused for reply in replies]


async def _exchange(pool: ConnectionPool, commands: list[Command]) -> list[Any]:
    """The commands written at once on one pooled connection, their replies read in order;
    an error reply is returned in its place. This is a pipeline without redis-py's per-command
    bookkeeping (argument encoding in Python, a stack of options, a callback lookup per
    reply): a quarter more requests per second for an endpoint that makes one script call
    (docs/benchmarks.md). The connection's own retry policy applies, as it does to every
    redis-py command."""
    # hiredis's stub types its argument as a one-item tuple; any length is packed.
    packed = b"".join(hiredis.pack_command(command) for command in commands)  # type: ignore[arg-type]
    connection = await pool.get_connection()  # type: ignore[no-untyped-call]

    async def attempt() -> list[Any]:
        await connection.send_packed_command(packed)
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(await connection.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies

    async def broken(_: Exception) -> None:
        await connection.disconnect()

    try:
        replies: list[Any] = await connection.retry.call_with_retry(attempt, broken)
        return replies
    finally:
        await pool.release(connection)


async def _cluster_pipeline(redis: RedisCluster, commands: list[Command]) -> list[Any]:
    """A cluster pipeline sends each command to its slot's node and follows MOVED and ASK."""
    async with redis.pipeline(transaction=False) as pipe:
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=False))
