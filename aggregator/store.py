"""Aggregation state in Redis: one script call per ingested event, per sweep batch."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aggregator.batching import ScriptBatcher
from aggregator.delivery import Route
from aggregator.flows import AggregateFlow
from aggregator.keys import AggregationKeys, Keyspace, flow_of
from aggregator.redis_client import Client
from aggregator.release import Release
from aggregator.scripts import Scripts


def ms(duration: timedelta) -> int:
    return round(duration.total_seconds() * 1000)


@dataclass(frozen=True, slots=True)
class Arrival:
    """One event, ready for the ingest script."""

    keys: AggregationKeys
    event_field: bytes
    branch: str  # "" for the origin event
    record: bytes
    expected: int
    flow: str
    correlation_id: str


@dataclass(frozen=True, slots=True)
class Recorded:
    outcome: str  # pending | duplicate | late | full | complete | replay
    release: Release | None = None  # when the release goes back to the caller
    latency_ms: int = 0  # first arrival to release, for `complete`
    outbox_entry: str | None = None  # when the release went to the outbox


@dataclass(frozen=True, slots=True)
class Expiry:
    """What to do with one aggregation the expire script may release."""

    member: str
    status: str  # timeout | manual | discarded
    route: str  # sink | dead-letter | none
    retention_ms: int


@dataclass(frozen=True, slots=True)
class Expired:
    flow: str
    correlation_id: str
    status: str
    latency_ms: int  # first arrival to release


class Store:
    def __init__(
        self, redis: "Client", keyspace: Keyspace, min_replicas: int = 0, wait_ms: int = 0
    ) -> None:
        self.redis = redis
        self.keyspace = keyspace
        self.scripts = Scripts(redis)
        self._ingest = ScriptBatcher(redis, self.scripts["ingest"], min_replicas, wait_ms)

    async def record(
        self, arrival: Arrival, flow: AggregateFlow, route: Route, max_pending: int
    ) -> Recorded:
        keys = arrival.keys
        reply: list[Any] = await self._ingest(
            keys=[keys.state, keys.deadlines, keys.outbox, keys.flow_index],
            args=[
                arrival.event_field,
                arrival.branch,
                arrival.record,
                arrival.expected,
                ms(flow.timeout),
                0 if flow.idle_timeout is None else ms(flow.idle_timeout),
                "first" if flow.duplicate_branch == "first-wins" else "last",
                ms(flow.retention),
                max_pending,
                keys.member,
                arrival.flow,
                arrival.correlation_id,
                route,
            ],
        )
        outcome = reply[0].decode()
        release = Release.from_fields(reply[1]) if len(reply) > 1 and reply[1] else None
        if outcome != "complete":
            return Recorded(outcome, release)
        entry = reply[4].decode() if reply[4] else None
        return Recorded(outcome, release, int(reply[3]) - int(reply[2]), entry)

    async def due(self, now_ms: int, limit: int) -> dict[int, list[str]]:
        """Members whose deadline has passed, per shard (at most `limit` each)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in range(self.keyspace.shards):
                pipe.zrangebyscore(self.keyspace.deadlines(shard), "-inf", now_ms, 0, limit)
            replies = await pipe.execute()
        return {
            shard: [member.decode() for member in members]
            for shard, members in enumerate(replies)
            if members
        }

    async def expire(self, shard: int, expiries: list[Expiry], *, only_due: bool) -> list[Expired]:
        """Release (or discard) aggregations of one shard; what this call released."""
        args: list[str | int] = ["due" if only_due else "now"]
        for expiry in expiries:
            args += [expiry.member, expiry.status, expiry.route, expiry.retention_ms]
        keys = [self.keyspace.deadlines(shard), self.keyspace.outbox(shard)]
        for expiry in expiries:
            keys += [
                self.keyspace.state(shard, expiry.member),
                self.keyspace.flow_index(shard, flow_of(expiry.member)),
            ]
        reply: list[Any] = await self.scripts["expire"](keys=keys, args=args)
        now = int(reply[0])
        return [
            Expired(flow_of(expiry.member), correlation.decode(), expiry.status, now - int(t0))
            for expiry, t0, correlation in zip(expiries, reply[1::2], reply[2::2], strict=True)
            if int(t0)
        ]

    async def first_sighting(self, key: str, window_ms: int) -> bool:
        """Dedup filter: True the first time `key` is seen within the window."""
        return bool(await self.redis.set(key, b"1", nx=True, px=window_ms))
