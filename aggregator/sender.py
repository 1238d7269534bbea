"""POST an aggregated event to a sink with Knative DeliverySpec semantics (DESIGN §5).

`retry` + 1 attempts; before retry k (1-based) the wait is `backoff_delay * 2**(k-1)`
(exponential) or `backoff_delay * (k-1)` (linear), as Knative's dispatcher computes it; on 429
and 503 a `Retry-After` longer than that wins, capped by `retry_after_max`. Transport errors,
5xx, 404, 408, 409 and 429 are retried; any other answer is final.
"""

import asyncio
import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from aggregator import metrics, tracing
from aggregator.cloudevent import CloudEvent
from aggregator.codec import STRUCTURED, body_of, encode_binary, encode_structured
from aggregator.flows import AggregateFlow

RETRYABLE = frozenset({404, 408, 409, 429})


@dataclass(frozen=True, slots=True)
class Sent:
    delivered: bool
    attempts: int
    status: int | None = None  # of the last answer; None after a transport error
    body: bytes = b""  # of the last answer
    error: str | None = None  # what went wrong last, for the dead-letter store


def retryable(status: int) -> bool:
    return status >= 500 or status in RETRYABLE


def backoff(flow: AggregateFlow, retry: int) -> float:
    """Seconds to wait before retry number `retry` (1-based)."""
    delay = flow.backoff_delay.total_seconds()
    if flow.backoff_policy == "exponential":
        return float(delay * 2 ** (retry - 1))
    return delay * (retry - 1)


def retry_after(headers: Mapping[str, str]) -> float:
    """A `Retry-After` header in seconds (delay-seconds or HTTP-date); 0 when absent."""
    value = headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, when.timestamp() - time.time())


def request_of(event: CloudEvent, flow: AggregateFlow) -> tuple[dict[str, str], bytes]:
    if flow.format == "json":
        return {"content-type": STRUCTURED}, encode_structured(event)
    return encode_binary(event.attributes, body_of(event))


def session(connections: int) -> aiohttp.ClientSession:
    """The HTTP client of the dispatcher: at most `connections` at once, kept alive. (aiohttp
    rather than httpx: on one core it POSTs about 8x as many events per second, see
    docs/benchmarks.md.) No Content-Type is made up for an event that has none."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        skip_auto_headers=("Content-Type",),
    )


class Sender:
    def __init__(self, client: aiohttp.ClientSession) -> None:
        self.client = client

    async def send(
        self, url: str, event: CloudEvent, flow: AggregateFlow, *, attempts: int | None = None
    ) -> Sent:
        """Deliver with retries (`attempts` overrides `retry + 1`)."""
        with tracing.span("deliver", event.attributes.get("traceparent"), flow=flow.name):
            return await self._send(url, event, flow, attempts)

    async def _send(
        self, url: str, event: CloudEvent, flow: AggregateFlow, attempts: int | None
    ) -> Sent:
        headers, content = request_of(event, flow)
        total = flow.retry + 1 if attempts is None else attempts
        timeout = flow.delivery_timeout.total_seconds()
        last = Sent(False, 0)
        for attempt in range(1, total + 1):
            try:
                async with self.client.post(
                    url, headers=headers, data=content, timeout=aiohttp.ClientTimeout(timeout)
                ) as response:
                    status, body = response.status, await response.read()
                    hinted = retry_after(response.headers)
            except (aiohttp.ClientError, TimeoutError) as exc:
                metrics.labelled(metrics.DELIVERY_ATTEMPTS, flow.name, "error").inc()
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                last = Sent(False, attempt, error=error[:500])
                wait = 0.0
            else:
                if 200 <= status < 300:
                    metrics.labelled(metrics.DELIVERY_ATTEMPTS, flow.name, "delivered").inc()
                    return Sent(True, attempt, status)
                final = not retryable(status)
                metrics.labelled(
                    metrics.DELIVERY_ATTEMPTS, flow.name, "rejected" if final else "failed"
                ).inc()
                last = Sent(False, attempt, status, body, f"HTTP {status}")
                if final:
                    return last
                wait = 0.0
                if status in (429, 503):
                    wait = min(hinted, flow.retry_after_max.total_seconds())
            if attempt < total:
                # A real wait between attempts, as Knative's dispatcher makes it.
                await asyncio.sleep(max(backoff(flow, attempt), wait))
        return last
