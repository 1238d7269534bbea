"""Redis key names (DESIGN §6).

Every key one script call touches carries the same hash tag, `{<shard>}`, so each call stays
in one Redis Cluster slot. Flow names, correlation ids and event ids never appear in key
syntax: they are hashed, so any string is safe and none can pin a slot.
"""

import hashlib
from dataclasses import dataclass

import orjson

PREFIX = "agg"


def digest(*parts: str) -> bytes:
    """128 bits of SHA-256 over an unambiguous encoding of the parts."""
    return hashlib.sha256(orjson.dumps(parts)).digest()[:16]


@dataclass(frozen=True, slots=True)
class AggregationKeys:
    shard: int
    state: str
    deadlines: str
    outbox: str
    flow_index: str
    member: str  # the aggregation in its shard's deadline set and flow index


class Keyspace:
    def __init__(self, shards: int) -> None:
        self.shards = shards

    def _tag(self, shard: int) -> str:
        return f"{PREFIX}:{{{shard}}}"

    def _shard(self, key_digest: bytes) -> int:
        return int.from_bytes(key_digest[:4], "big") % self.shards

    def deadlines(self, shard: int) -> str:
        return f"{self._tag(shard)}:deadlines"

    def outbox(self, shard: int) -> str:
        return f"{self._tag(shard)}:outbox"

    def dead_letters(self, shard: int) -> str:
        return f"{self._tag(shard)}:dl"

    def dead_letter_index(self, shard: int) -> str:
        return f"{self._tag(shard)}:dlidx"

    def flow_index(self, shard: int, flow: str) -> str:
        """The shard's pending aggregations of one flow, by deadline (for listing)."""
        return f"{self._tag(shard)}:fi:{digest(flow).hex()}"

    def state(self, shard: int, member: str) -> str:
        """The state hash of a deadline-set member (`<flow>:<digest>`)."""
        return f"{self._tag(shard)}:a:{member.rpartition(':')[2]}"

    def aggregation(self, flow: str, correlation_id: str) -> AggregationKeys:
        key_digest = digest(flow, correlation_id)
        shard = self._shard(key_digest)
        member = f"{flow}:{key_digest.hex()}"
        return AggregationKeys(
            shard=shard,
            state=self.state(shard, member),
            deadlines=self.deadlines(shard),
            outbox=self.outbox(shard),
            flow_index=self.flow_index(shard, flow),
            member=member,
        )

    def dedup(self, flow: str, values: tuple[str, ...]) -> str:
        key_digest = digest(flow, *values)
        return f"{self._tag(self._shard(key_digest))}:u:{key_digest.hex()}"


def flow_of(member: str) -> str:
    return member.rpartition(":")[0]


def event_field(source: str, event_id: str) -> bytes:
    """The hash field that remembers an accepted event by its source and id."""
    return b"e:" + digest(source, event_id)
