"""The outbox streams (one per shard) and their consumer group, as the dispatcher uses them.

Entries are read with XREADGROUP, kept alive while a delivery is under way (XCLAIM with
JUSTID resets their idle time), reclaimed from dead consumers with XAUTOCLAIM once idle
longer than the visibility timeout, and settled (acknowledged and deleted) by one script.
"""

from collections.abc import Collection
from dataclasses import dataclass

from redis.exceptions import ResponseError

from aggregator.batching import ScriptBatcher
from aggregator.keys import Keyspace
from aggregator.redis_client import Client
from aggregator.scripts import Scripts

GROUP = "dispatchers"


@dataclass(frozen=True, slots=True)
class Entry:
    shard: int
    id: str
    fields: list[bytes]  # flat field/value list, as the release wrote it

    @property
    def route(self) -> str:
        return dict(zip(self.fields[::2], self.fields[1::2], strict=True))[b"route"].decode()


def _entries(shard: int, messages: list[tuple[bytes, dict[bytes, bytes]]]) -> list[Entry]:
    return [
        Entry(shard, entry_id.decode(), [item for pair in fields.items() for item in pair])
        for entry_id, fields in messages
        if fields
    ]


def stream_order(entry_id: str) -> tuple[int, int]:
    """A stream entry id ("<ms>-<seq>") as something that sorts as the stream does."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


class Outbox:
    def __init__(self, redis: "Client", keyspace: Keyspace, scripts: Scripts) -> None:
        self.redis = redis
        self.keyspace = keyspace
        self.scripts = scripts
        # Deliveries finish together under load: their settles share a pipeline.
        self._settle = ScriptBatcher(redis, scripts["settle"])
        self._newest: dict[int, tuple[int, int]] = {}  # per shard, of what read() returned

    async def ensure_groups(self) -> None:
        """Create the group on every shard's stream, from the start (entries written before
        any dispatcher ran are delivered too)."""
        for shard in range(self.keyspace.shards):
            try:
                await self.redis.xgroup_create(
                    self.keyspace.outbox(shard), GROUP, "0", mkstream=True
                )
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read(
        self, consumer: str, count: int, shards: Collection[int] | None = None
    ) -> list[Entry]:
        """New entries for this consumer, of the given shards (default: all)."""
        chosen = sorted(range(self.keyspace.shards) if shards is None else shards)
        if not chosen:
            return []
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for shard in chosen:
                    pipe.xreadgroup(GROUP, consumer, {self.keyspace.outbox(shard): ">"}, count)
                replies = await pipe.execute()
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_groups()  # Redis lost its data (restart without persistence)
            return []
        found = []
        for shard, reply in zip(chosen, replies, strict=True):
            for _, messages in reply or []:
                found += _entries(shard, messages)
        for entry in found:
            self._newest[entry.shard] = max(
                self._newest.get(entry.shard, (0, 0)), stream_order(entry.id)
            )
        return found

    def returned(self, shard: int, entry_id: str) -> bool:
        """Whether the group has handed out this entry already, as far as this process's
        reads tell: the group hands out entries in order, so one no newer than the newest a
        read returned has gone to some consumer."""
        return stream_order(entry_id) <= self._newest.get(shard, (0, 0))

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[Entry]:
        """Entries that another consumer took and has not settled for `min_idle_ms`."""
        found = []
        for shard in range(self.keyspace.shards):
            stream = self.keyspace.outbox(shard)
            reply = await self.redis.xautoclaim(stream, GROUP, consumer, min_idle_ms, "0-0", count)
            found += _entries(shard, reply[1])
            deleted = reply[2] if len(reply) > 2 else []
            if deleted:
                await self.redis.xack(stream, GROUP, *deleted)
        return found

    async def keep(self, consumer: str, held: list[Entry]) -> None:
        """Reset the idle time of entries still being delivered, so nobody reclaims them."""
        by_shard: dict[int, list[str | bytes | int | memoryview[int]]] = {}
        for entry in held:
            by_shard.setdefault(entry.shard, []).append(entry.id)
        for shard, ids in by_shard.items():
            await self.redis.xclaim(
                self.keyspace.outbox(shard), GROUP, consumer, 0, ids, justid=True
            )

    async def settle(
        self,
        entry: Entry,
        dead_letter: tuple[str, bytes] | None,
        max_letters: int,
        retention_ms: int,
    ) -> None:
        letter_id, payload = dead_letter or ("", b"")
        await self._settle(
            keys=[
                self.keyspace.outbox(entry.shard),
                self.keyspace.dead_letters(entry.shard),
                self.keyspace.dead_letter_index(entry.shard),
            ],
            args=[GROUP, entry.id, letter_id, payload, max_letters, retention_ms],
        )

    async def length(self) -> int:
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in range(self.keyspace.shards):
                pipe.xlen(self.keyspace.outbox(shard))
            return sum(await pipe.execute())
