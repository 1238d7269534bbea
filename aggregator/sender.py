"""POST an aggregated event to a sink with Knative DeliverySpec semantics (DESIGN §5).

`retry` + 1 attempts; before retry k (1-based) the wait is `backoff_delay * 2**(k-1)`
(exponential) or `backoff_delay * (k-1)` (linear), as Knative's dispatcher computes it; on 429
and 503 a `Retry-After` longer than that wins, capped by `retry_after_max`. Transport errors,
5xx, 404, 408, 409 and 429 are retried; any other answer is final.
"""

import asyncio
import email.utils
import time
from dataclasses import dataclass

import httpx

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


def retry_after(response: httpx.Response) -> float:
    """A `Retry-After` header in seconds (delay-seconds or HTTP-date); 0 when absent."""
    value = response.headers.get("retry-after", "").strip()
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


class Sender:
    def __init__(self, client: httpx.AsyncClient) -> None:
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
                response = await self.client.post(
                    url, headers=headers, content=content, timeout=timeout
                )
            except httpx.HTTPError as exc:
                metrics.DELIVERY_ATTEMPTS.labels(flow.name, "error").inc()
                last = Sent(False, attempt, error=f"{type(exc).__name__}: {exc}"[:500])
                wait = 0.0
            else:
                if response.is_success:
                    metrics.DELIVERY_ATTEMPTS.labels(flow.name, "delivered").inc()
                    return Sent(True, attempt, response.status_code)
                final = not retryable(response.status_code)
                metrics.DELIVERY_ATTEMPTS.labels(flow.name, "rejected" if final else "failed").inc()
                last = Sent(False, attempt, response.status_code, response.content,
                            f"HTTP {response.status_code}")  # fmt: skip
                if final:
                    return last
                wait = 0.0
                if response.status_code in (429, 503):
                    wait = min(retry_after(response), flow.retry_after_max.total_seconds())
            if attempt < total:
                # A real wait between attempts, as Knative's dispatcher makes it.
                await asyncio.sleep(max(backoff(flow, attempt), wait))
        return last
