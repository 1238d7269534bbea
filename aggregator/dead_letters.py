"""The dead-letter store (DESIGN §5): aggregated events that could not be delivered.

Kept per shard in Redis (a hash of entries and an index by time), bounded in count and
expiring after `dead_letter_retention`. An entry's id names its shard, so every lookup
touches one shard.
"""

import base64
from dataclasses import dataclass, replace
from typing import cast

import orjson

from aggregator.cloudevent import CloudEvent
from aggregator.codec import decode_structured, encode_structured
from aggregator.flows import AggregateFlow
from aggregator.keys import Keyspace
from aggregator.listing import decode_cursor, encode_cursor, page
from aggregator.redis_client import Client
from aggregator.release import rfc3339
from aggregator.sender import Sender, Sent
from aggregator.settings import Settings


class NowhereToRedrive(Exception):
    pass


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    flow: str
    correlation_id: str
    reason: str
    attempts: int
    last_error: str | None
    created_ms: int
    event: CloudEvent

    def encode(self) -> bytes:
        """Metadata as JSON, NUL, then the event in the JSON event format."""
        meta = {
            "flow": self.flow,
            "correlationId": self.correlation_id,
            "reason": self.reason,
            "attempts": self.attempts,
            "lastError": self.last_error,
            "createdAt": self.created_ms,
        }
        return orjson.dumps(meta) + b"\0" + encode_structured(self.event)

    @classmethod
    def decode(cls, letter_id: str, payload: bytes) -> "DeadLetter":
        head, _, event = payload.partition(b"\0")
        meta = orjson.loads(head)
        return cls(
            id=letter_id,
            flow=meta["flow"],
            correlation_id=meta["correlationId"],
            reason=meta["reason"],
            attempts=meta["attempts"],
            last_error=meta["lastError"],
            created_ms=meta["createdAt"],
            event=decode_structured(event),
        )

    def summary(self) -> dict[str, object]:
        return {
            "id": self.id,
            "flow": self.flow,
            "correlationId": self.correlation_id,
            "reason": self.reason,
            "attempts": self.attempts,
            "lastError": self.last_error,
            "createdAt": rfc3339(self.created_ms),
            "event": dict(self.event.attributes),
        }


def error_extensions(destination: str, sent: Sent) -> dict[str, str | int]:
    """What Knative adds to an event it dead-letters: where it failed, the status, and the
    response body in base64, cut so that the base64 stays within 1024 characters."""
    extensions: dict[str, str | int] = {"knativeerrordest": destination}
    if sent.status is not None:
        extensions["knativeerrorcode"] = str(sent.status)
    if sent.body:
        extensions["knativeerrordata"] = base64.b64encode(sent.body[:768]).decode()
    return extensions


def letter_id(shard: int, entry_id: str) -> str:
    return f"{shard}-{entry_id}"


class DeadLetters:
    def __init__(self, redis: "Client", keyspace: Keyspace, settings: Settings) -> None:
        self.redis = redis
        self.keyspace = keyspace
        self.settings = settings

    def _shard(self, letter: str) -> int | None:
        shard, sep, _ = letter.partition("-")
        if not sep or not shard.isdigit() or int(shard) >= self.keyspace.shards:
            return None
        return int(shard)

    async def page(
        self, limit: int, cursor: str | None = None
    ) -> tuple[list[DeadLetter], str | None]:
        """Up to `limit` entries after `cursor`, oldest first per shard, and the cursor of
        the next page (None after the last)."""
        keyspace = self.keyspace
        after = None if cursor is None else decode_cursor(cursor, keyspace.shards)
        keys = [keyspace.dead_letter_index(s) for s in range(keyspace.shards)]
        items, last = await page(self.redis, keys, limit, after)
        async with self.redis.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.hget(keyspace.dead_letters(item.shard), item.member)
            payloads = await pipe.execute()
        letters = [
            DeadLetter.decode(item.member, payload)
            for item, payload in zip(items, payloads, strict=True)
            if payload is not None
        ]
        return letters, None if last is None else encode_cursor(last)

    async def count(self) -> int:
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in range(self.keyspace.shards):
                pipe.zcard(self.keyspace.dead_letter_index(shard))
            return sum(await pipe.execute())

    async def get(self, letter: str) -> DeadLetter | None:
        shard = self._shard(letter)
        if shard is None:
            return None
        payload = await self.redis.hget(self.keyspace.dead_letters(shard), letter)
        return None if payload is None else DeadLetter.decode(letter, cast(bytes, payload))

    async def delete(self, letter: str) -> bool:
        shard = self._shard(letter)
        if shard is None:
            return False
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hdel(self.keyspace.dead_letters(shard), letter)
            pipe.zrem(self.keyspace.dead_letter_index(shard), letter)
            removed, _ = await pipe.execute()
        return bool(removed)

    async def redrive(self, letter: str, sender: Sender) -> Sent | None:
        """One delivery attempt to the flow's sink now; the entry goes on success, else it
        records the attempt. None when there is no such entry."""
        found = await self.get(letter)
        if found is None:
            return None
        flow = self.settings.flow(found.flow)
        sink = self.settings.sink_for(flow) if isinstance(flow, AggregateFlow) else None
        if sink is None or not isinstance(flow, AggregateFlow):
            raise NowhereToRedrive(f"flow {found.flow!r} has no sink to redrive to")
        sent = await sender.send(sink, found.event, flow, attempts=1)
        if sent.delivered:
            await self.delete(letter)
        else:
            shard = self._shard(letter)
            assert shard is not None
            updated = replace(found, attempts=found.attempts + 1, last_error=sent.error)
            await self.redis.hset(self.keyspace.dead_letters(shard), letter, updated.encode())
        return sent
