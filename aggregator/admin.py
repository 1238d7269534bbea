"""What the admin API reads and does (DESIGN §3.3), over the store's keys."""

import base64
import time
from typing import Any, cast

from aggregator import observe
from aggregator.admin_models import (
    AggregationDetail,
    AggregationPage,
    AggregationSummary,
    DeadLetterItem,
    DeadLetterPage,
    EventInfo,
)
from aggregator.dead_letters import DeadLetter, DeadLetters
from aggregator.flows import AggregateFlow
from aggregator.keys import Keyspace
from aggregator.listing import decode_cursor, encode_cursor, page
from aggregator.redis_client import Client
from aggregator.release import Arrival, arrivals_of, rfc3339
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.sweeper import expiry_for


def _in_flow_order(settings: Settings, flow: str, received: list[str]) -> list[str]:
    """Named branches in the flow's declared order; others sorted."""
    config = settings.flow(flow)
    if isinstance(config, AggregateFlow) and config.branches is not None:
        return [name for name in config.branches if name in received]
    return sorted(received)


def _missing(settings: Settings, flow: str, received: list[str]) -> list[str] | None:
    config = settings.flow(flow)
    if not isinstance(config, AggregateFlow) or config.branches is None:
        return None
    return [name for name in config.branches if name not in received]


def _summary(
    settings: Settings, fields: dict[bytes, bytes], received: list[str], deadline: float
) -> dict[str, Any]:
    flow = fields[b"f"].decode()
    first = int(fields[b"t0"])
    return {
        "flow": flow,
        "correlationId": fields[b"c"].decode(),
        "expected": int(fields[b"x"]),
        "received": received,
        "missing": _missing(settings, flow, received),
        "firstSeen": rfc3339(first),
        "deadline": rfc3339(int(deadline)),
        "ageSeconds": round(time.time() - first / 1000, 3),
    }


def event_info(arrival: Arrival, include_data: bool) -> EventInfo:
    event = arrival.event
    info: dict[str, Any] = {
        "id": event.id,
        "source": event.source,
        "type": str(event.attributes["type"]),
        "time": event.attributes.get("time"),
        "size": event.data_size,
        "receivedAt": rfc3339(arrival.received_ms),
    }
    if include_data and event.data_json is not None:
        info["data"] = event.data_value()
    elif include_data and event.data_binary is not None:
        info["data_base64"] = base64.b64encode(event.data_binary).decode()
    return EventInfo(**info)


class Admin:
    def __init__(
        self, settings: Settings, redis: "Client", store: Store, dead_letters: DeadLetters
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.store = store
        self.keyspace: Keyspace = store.keyspace
        self.dead_letters = dead_letters

    async def aggregations(
        self, flow: str | None, limit: int, cursor: str | None
    ) -> AggregationPage:
        keyspace = self.keyspace
        after = None if cursor is None else decode_cursor(cursor, keyspace.shards)
        keys = [
            keyspace.deadlines(s) if flow is None else keyspace.flow_index(s, flow)
            for s in range(keyspace.shards)
        ]
        items, last = await page(self.redis, keys, limit, after)
        async with self.redis.pipeline(transaction=False) as pipe:
            for item in items:
                state = keyspace.state(item.shard, item.member)
                pipe.hmget(state, "f", "c", "t0", "x", "st")
                pipe.hkeys(state)
            replies = await pipe.execute()
        summaries = []
        for item, values, names in zip(items, replies[::2], replies[1::2], strict=True):
            fields = dict(zip((b"f", b"c", b"t0", b"x", b"st"), values, strict=True))
            if fields[b"t0"] is None or fields[b"st"] is not None:
                continue  # released or expired between the two reads
            received = [n[2:].decode() for n in names if n.startswith(b"b:")]
            received = _in_flow_order(self.settings, fields[b"f"].decode(), received)
            summaries.append(
                AggregationSummary(**_summary(self.settings, fields, received, item.score))
            )
        return AggregationPage(
            items=summaries, nextCursor=None if last is None else encode_cursor(last)
        )

    async def aggregation(
        self, flow: str, correlation_id: str, include_data: bool
    ) -> AggregationDetail | None:
        keys = self.keyspace.aggregation(flow, correlation_id)
        fields = cast(dict[bytes, bytes], await self.redis.hgetall(keys.state))
        deadline = await self.redis.zscore(keys.deadlines, keys.member)
        if not fields or b"st" in fields or deadline is None:
            return None
        arrivals, origin = arrivals_of(fields)
        received = [arrival.branch for arrival in arrivals]
        return AggregationDetail(
            **_summary(self.settings, fields, received, deadline),
            branches={a.branch: event_info(a, include_data) for a in arrivals},
            origin=None if origin is None else event_info(origin, include_data),
        )

    async def release(self, flow: str, correlation_id: str, status: str) -> bool:
        """Release now (`manual`) or discard (`discarded`); False when nothing is pending."""
        keys = self.keyspace.aggregation(flow, correlation_id)
        expiry = expiry_for(self.settings, keys.member, status)
        for done in await self.store.expire(keys.shard, [expiry], only_due=False):
            observe.released(done.flow, done.correlation_id, done.status, done.latency_ms)
            return True
        return False

    async def pending_counts(self) -> dict[str, int]:
        """Pending aggregations per configured flow: a ZCARD per flow and shard."""
        names = [f.name for f in self.settings.flows if isinstance(f, AggregateFlow)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                for shard in range(self.keyspace.shards):
                    pipe.zcard(self.keyspace.flow_index(shard, name))
            counts = await pipe.execute()
        shards = self.keyspace.shards
        return {name: sum(counts[i * shards : (i + 1) * shards]) for i, name in enumerate(names)}

    async def dead_letter_page(
        self, limit: int, cursor: str | None, include_data: bool
    ) -> DeadLetterPage:
        letters, next_cursor = await self.dead_letters.page(limit, cursor)
        return DeadLetterPage(
            items=[dead_letter_item(letter, include_data) for letter in letters],
            nextCursor=next_cursor,
        )


def dead_letter_item(letter: DeadLetter, include_data: bool) -> DeadLetterItem:
    summary: dict[str, Any] = letter.summary()
    if include_data:
        event = letter.event
        summary["event"] = {**summary["event"], "data": event.data_value()}
    return DeadLetterItem(**summary)
