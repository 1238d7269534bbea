"""Redis operations, one named Lua script (or one command) each; see `lua/` for the scripts."""

from dataclasses import dataclass
from datetime import timedelta
from importlib.resources import files
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from aggregator.delivery import Route
from aggregator.flows import AggregateFlow
from aggregator.keys import AggregationKeys
from aggregator.release import Release


def _ms(duration: timedelta) -> int:
    return round(duration.total_seconds() * 1000)


def _script(name: str) -> str:
    return files("aggregator").joinpath("lua", name).read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Recorded:
    outcome: str  # pending | duplicate | late | full | complete
    release: Release | None = None  # set when the release goes back to the caller


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


class Store:
    def __init__(self, redis: "Redis") -> None:
        self.redis = redis
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(_script(f"{name}.lua")) for name in ("ingest",)
        }

    async def load_scripts(self) -> None:
        for script in self._scripts.values():
            await self.redis.script_load(script.script)

    async def scripts_loaded(self) -> bool:
        shas = [script.sha for script in self._scripts.values()]
        return all(await self.redis.script_exists(*shas))

    async def record(
        self, arrival: Arrival, flow: AggregateFlow, route: Route, max_pending: int
    ) -> Recorded:
        keys = arrival.keys
        reply: list[Any] = await self._scripts["ingest"](
            keys=[keys.state, keys.deadlines, keys.outbox],
            args=[
                arrival.event_field,
                arrival.branch,
                arrival.record,
                arrival.expected,
                _ms(flow.timeout),
                0 if flow.idle_timeout is None else _ms(flow.idle_timeout),
                "first" if flow.duplicate_branch == "first-wins" else "last",
                _ms(flow.retention),
                max_pending,
                keys.member,
                arrival.flow,
                arrival.correlation_id,
                route,
            ],
        )
        outcome = reply[0].decode()
        if len(reply) > 1:
            return Recorded(outcome, Release.from_fields(reply[1]))
        return Recorded(outcome)

    async def first_sighting(self, key: str, window_ms: int) -> bool:
        """Dedup filter: True the first time `key` is seen within the window."""
        return bool(await self.redis.set(key, b"1", nx=True, px=window_ms))
