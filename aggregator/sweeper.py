"""The timeout sweeper: every replica scans every shard's deadline set on a jittered tick and
releases what is due (DESIGN §5, §6). Claiming happens inside the expire script, so any
number of replicas can sweep at once."""

import asyncio
import contextlib
import random
import time
from collections.abc import Callable

from redis.exceptions import RedisError

from aggregator import metrics, observe
from aggregator.delivery import release_route
from aggregator.flows import AggregateFlow
from aggregator.keys import flow_of
from aggregator.logs import Outage, get_logger
from aggregator.settings import Settings
from aggregator.store import Expiry, Store, ms

log = get_logger(__name__)
_UNKNOWN_FLOW_RETENTION_MS = 3_600_000


def expiry_for(settings: Settings, member: str, status: str) -> Expiry:
    """What releasing this aggregation with `status` (timeout, manual, or discarded) does,
    by its flow's policy."""
    flow = settings.flow(flow_of(member))
    if not isinstance(flow, AggregateFlow):
        # The flow was removed: keep its releases in dead letters rather than drop them.
        return Expiry(member, status, "dead-letter", _UNKNOWN_FLOW_RETENTION_MS)
    retention = ms(flow.retention)
    if status == "discarded" or (status == "timeout" and flow.on_timeout == "discard"):
        return Expiry(member, "discarded", "none", retention)
    if status == "timeout" and flow.on_timeout == "dead-letter":
        return Expiry(member, status, "dead-letter", retention)
    return Expiry(
        member,
        status,
        release_route(flow, settings, prefer_reply=False, can_reply=False),
        retention,
    )


class Sweeper:
    def __init__(self, settings: Settings, store: Store, on_release: Callable[[], None]) -> None:
        self.settings = settings
        self.store = store
        self.on_release = on_release
        self._stopped = asyncio.Event()
        self._outage = Outage(log, "sweep failed; next tick retries", "sweeps succeed again")

    def stop(self) -> None:
        self._stopped.set()

    async def run(self) -> None:
        interval = self.settings.sweep_interval.total_seconds()
        while not self._stopped.is_set():
            try:
                await self.sweep()
                self._outage.over()
            except (RedisError, OSError) as exc:
                metrics.labelled(metrics.REDIS_ERRORS, "sweep").inc()
                self._outage.failed(error=str(exc))
            except Exception:
                # The loop must outlive any surprise: a dead sweeper releases nothing.
                log.exception("sweep failed; next tick retries")
            # Jitter spreads the replicas' scans over the tick.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), interval * random.uniform(0.8, 1.2))  # noqa: S311

    async def sweep(self) -> int:
        """Release everything due now; returns how many aggregations this call released."""
        released = 0
        limit = self.settings.sweep_batch
        while True:
            before = released
            due = await self.store.due(int(time.time() * 1000), limit)
            # The shards' scripts go out together: Redis runs them back to back instead of
            # waiting for a round trip and this process's turn between them.
            per_shard = await asyncio.gather(
                *(
                    self.store.expire(
                        shard,
                        [expiry_for(self.settings, member, "timeout") for member in members],
                        only_due=True,
                    )
                    for shard, members in due.items()
                )
            )
            for done in (expired for shard in per_shard for expired in shard):
                released += 1
                observe.released(done.flow, done.correlation_id, done.status, done.latency_ms)
            if released > before:
                self.on_release()
            # A full batch means more may be due; none released means this clock runs ahead
            # of Redis's, and the next tick will do.
            if released == before or all(len(members) < limit for members in due.values()):
                return released
