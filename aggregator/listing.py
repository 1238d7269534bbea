"""Pages over the per-shard sorted sets (pending aggregations by deadline, dead letters by
creation time), at a cost of O(shards + page) whatever the number of keys in Redis.

Order is (shard, score, member). A cursor names the last item served; the next page starts
strictly after it, so items added or removed meanwhile never shift what comes next.
"""

import base64
from dataclasses import dataclass
from typing import cast

import orjson

from aggregator.errors import Rejected
from aggregator.redis_client import Client


@dataclass(frozen=True, slots=True)
class Item:
    shard: int
    member: str
    score: float


def encode_cursor(item: Item) -> str:
    raw = orjson.dumps([item.shard, item.score, item.member])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, shards: int) -> Item:
    try:
        shard, score, member = orjson.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
        if not (isinstance(shard, int) and 0 <= shard < shards and isinstance(member, str)):
            raise ValueError
        return Item(shard, member, float(score))
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise Rejected(
            400, "invalid cursor: pass nextCursor of the previous page as it is"
        ) from None


async def _range(
    redis: "Client", key: str, low: float | str, high: float | str, count: int | None
) -> list[tuple[bytes, float]]:
    """Members with their scores, by score, at most `count` (all when None)."""
    if count is None:
        found = await redis.zrange(key, low, high, byscore=True, withscores=True)
    else:
        found = await redis.zrange(
            key, low, high, byscore=True, withscores=True, offset=0, num=count
        )
    return cast(list[tuple[bytes, float]], found)


async def page(
    redis: "Client", keys: list[str], limit: int, after: Item | None
) -> tuple[list[Item], Item | None]:
    """Up to `limit` items after `after`, and the item to continue from (None at the end)."""
    items: list[Item] = []
    first = 0 if after is None else after.shard
    for shard in range(first, len(keys)):
        wanted = limit + 1 - len(items)
        found: list[tuple[bytes, float]] = []
        if after is not None and shard == after.shard:
            # Same score as the cursor: members sort by bytes, take those after it.
            ties = await _range(redis, keys[shard], after.score, after.score, None)
            found += [(m, s) for m, s in ties if m.decode() > after.member][:wanted]
            low = f"({after.score!r}"
        else:
            low = "-inf"
        if len(found) < wanted:
            found += await _range(redis, keys[shard], low, "+inf", wanted - len(found))
        items += [Item(shard, member.decode(), score) for member, score in found]
        if len(items) > limit:
            return items[:limit], items[limit - 1]
    return items, None
