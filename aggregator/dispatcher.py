"""The outbox dispatcher: every replica delivers releases from every shard's outbox.

An entry is settled only after its event reached the sink, the dead-letter sink or the
dead-letter store; until then it stays pending in the consumer group, so a replica that dies
mid-delivery loses nothing: another reclaims the entry after the visibility timeout.
"""

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections import Counter
from dataclasses import replace

from redis.exceptions import RedisError

from aggregator import metrics
from aggregator.dead_letters import DeadLetter, error_extensions, letter_id
from aggregator.flows import AggregateFlow
from aggregator.logs import Outage, get_logger
from aggregator.outbox import Entry, Outbox, stream_order
from aggregator.release import Release, aggregated_event
from aggregator.sender import Sender, Sent
from aggregator.settings import Settings
from aggregator.store import ms

log = get_logger(__name__)


class Dispatcher:
    def __init__(self, settings: Settings, outbox: Outbox, sender: Sender) -> None:
        self.settings = settings
        self.outbox = outbox
        self.sender = sender
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._wake = asyncio.Event()
        # Shards to read at the next wake, each with the newest entry a release nudged for
        # (None: read it whatever it holds); None: all of them. A release nudges its own
        # shard, so a busy ingest path costs at most a stream read per release, not one per
        # shard; and none for an entry that a read has returned already.
        self._due: dict[int, str | None] | None = None
        self._held: dict[tuple[int, str], Entry] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._finished = asyncio.Event()  # run() has left its loop
        self._last_reclaim = self._last_keep = 0.0
        self._outage = Outage(log, "outbox unreachable", "outbox reachable again")

    def nudge(self, shard: int | None = None, entry: str | None = None) -> None:
        """A release was just written to the outbox (of `shard`, as `entry`, or of any shard):
        look now rather than at the next tick."""
        if shard is None:
            self._due = None
        else:
            self._want(shard, entry)
        self._wake.set()

    def _want(self, shard: int, entry: str | None) -> None:
        if self._due is None:
            return
        if shard not in self._due:
            self._due[shard] = entry
            return
        known = self._due[shard]
        if known is None or entry is None:
            self._due[shard] = None
        else:
            self._due[shard] = max(known, entry, key=stream_order)

    async def run(self) -> None:
        try:
            while not self._stopping:
                await self._turn()
        finally:
            self._finished.set()

    async def _turn(self) -> None:
        """Read what is due, start delivering it, then wait for a nudge or the tick."""
        visibility = self.settings.outbox_visibility_timeout.total_seconds()
        # Cleared before reading, so that a nudge arriving during the read is not lost.
        self._wake.clear()
        free = self.settings.dispatch_concurrency - len(self._held)
        # With every slot busy, what is due stays due: a finished delivery wakes the loop.
        due, self._due = (self._due, {}) if free > 0 else ({}, self._due)
        # A read under way when a release was written often returned its entry already.
        shards = (
            None
            if due is None
            else [
                s for s, entry in due.items() if entry is None or not self.outbox.returned(s, entry)
            ]
        )
        try:
            entries = await self.outbox.read(self.consumer, free, shards)
            if shards != []:  # Redis was asked, and answered
                self._outage.over()
            # More may wait only in the streams whose read stopped at the count: look again
            # there. (Looking again wherever the read looked made most reads come back empty.)
            found = Counter(entry.shard for entry in entries)
            for shard, count in found.items():
                if count >= free:
                    self._want(shard, None)
            now = time.monotonic()
            if free > len(entries) and now - self._last_reclaim >= visibility / 2:
                self._last_reclaim = now
                entries += await self.outbox.reclaim(
                    self.consumer, ms(self.settings.outbox_visibility_timeout), free
                )
            if self._held and now - self._last_keep >= visibility / 3:
                self._last_keep = now
                await self.outbox.keep(self.consumer, list(self._held.values()))
        except (RedisError, OSError) as exc:
            metrics.labelled(metrics.REDIS_ERRORS, "dispatch").inc()
            self._outage.failed(error=str(exc))
            entries, self._due = [], None
        except Exception:
            # The loop must outlive any surprise: a dead dispatcher delivers nothing.
            log.exception("outbox read failed")
            entries, self._due = [], None
        for entry in entries:
            self._start(entry)
        try:
            await asyncio.wait_for(self._wake.wait(), self.settings.sweep_interval.total_seconds())
        except TimeoutError:
            self._due = None  # the tick reads every shard: nothing waits longer than that

    def _start(self, entry: Entry) -> None:
        key = (entry.shard, entry.id)
        if key in self._held:
            return
        self._held[key] = entry
        task = asyncio.create_task(self._deliver(entry))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self, grace: float) -> None:
        """Stop taking entries; give deliveries under way `grace` seconds, then leave what is
        unsettled to the other replicas."""
        self._stopping = True
        self._wake.set()
        # A read under way may still hand out entries: the loop finishes it first, so that
        # what it read is delivered now rather than reclaimed after the visibility timeout.
        started = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._finished.wait(), grace)
        grace = max(0.0, grace - (time.monotonic() - started))
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _deliver(self, entry: Entry) -> None:
        try:
            letter = await self._outcome(entry)
            await self.outbox.settle(
                entry,
                None if letter is None else (letter.id, letter.encode()),
                max(1, self.settings.dead_letter_max // self.settings.shards),
                ms(self.settings.dead_letter_retention),
            )
        except (RedisError, OSError) as exc:
            metrics.labelled(metrics.REDIS_ERRORS, "dispatch").inc()
            log.warning("outbox entry left for a retry", entry=entry.id, error=str(exc))
        except Exception:
            log.exception("outbox entry left for a retry", entry=entry.id)
        finally:
            self._held.pop((entry.shard, entry.id), None)
            # Read more once half the slots are free: a read per finished delivery would cost
            # a stream read per release, for one or two entries each.
            if len(self._held) <= self.settings.dispatch_concurrency // 2:
                self._wake.set()

    async def _outcome(self, entry: Entry) -> DeadLetter | None:
        """Deliver the entry's event; return the dead letter to keep, or None."""
        try:
            release = Release.from_fields(entry.fields)
        except (KeyError, ValueError):
            # Not written by the release scripts: nothing to build an event from.
            log.error("malformed outbox entry dropped", shard=entry.shard, entry=entry.id)
            return None
        flow = self.settings.flow(release.flow)
        if not isinstance(flow, AggregateFlow):
            # The flow was removed while the release waited: keep it, it is not ours to drop.
            reason = "flow not configured"
            return self._letter(entry, release, flow=None, reason=reason, sent=None)
        event = aggregated_event(release, flow, self.settings.k_ce_overrides)
        sink = self.settings.sink_for(flow)
        sent: Sent | None = None
        if entry.route == "sink" and sink is not None:
            sent = await self.sender.send(sink, event, flow)
            if sent.delivered:
                return None
            reason = "delivery failed"
        elif release.status == "timeout" and flow.on_timeout == "dead-letter":
            reason = "timed out (on_timeout: dead-letter)"
        else:
            reason = "nowhere to deliver"
            log.warning("release has nowhere to deliver", flow=flow.name, status=release.status)
        if flow.dead_letter_sink is not None:
            failed = event
            if sent is not None and sink is not None:
                failed = replace(
                    event, attributes={**event.attributes, **error_extensions(sink, sent)}
                )
            dead_sent = await self.sender.send(flow.dead_letter_sink, failed, flow)
            if dead_sent.delivered:
                metrics.labelled(metrics.DEAD_LETTERS, flow.name, "dead_letter_sink").inc()
                return None
        return self._letter(entry, release, flow=flow, reason=reason, sent=sent)

    def _letter(
        self,
        entry: Entry,
        release: Release,
        *,
        flow: AggregateFlow | None,
        reason: str,
        sent: Sent | None,
    ) -> DeadLetter:
        metrics.labelled(metrics.DEAD_LETTERS, release.flow, "store").inc()
        stand_in = flow or AggregateFlow(name=release.flow, expected_branches=release.expected)
        return DeadLetter(
            id=letter_id(entry.shard, entry.id),
            flow=release.flow,
            correlation_id=release.correlation_id,
            reason=reason,
            attempts=0 if sent is None else sent.attempts,
            last_error=None if sent is None else sent.error,
            created_ms=int(time.time() * 1000),
            event=aggregated_event(release, stand_in, self.settings.k_ce_overrides),
        )
