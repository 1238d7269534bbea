"""A small CloudEvents receiver for load tests: answers 202 and counts what it got.

    uvicorn loadtests.sink:app --port 9000        # POST anything; GET /stats; DELETE /stats

`/stats` reports the requests received and, for aggregated events (they carry `ce-time`, the
release time), the release-to-receipt latency percentiles.
"""

import time
from datetime import datetime
from typing import Any

import orjson

_state: dict[str, Any] = {"count": 0, "latencies": []}


def _release_latency(headers: list[tuple[bytes, bytes]]) -> float | None:
    for name, value in headers:
        if name == b"ce-time":
            released = datetime.fromisoformat(value.decode().replace("Z", "+00:00"))
            return time.time() - released.timestamp()
    return None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    status, body = 202, b""
    if scope["method"] == "POST":
        _state["count"] += 1
        latency = _release_latency(scope["headers"])
        if latency is not None:
            _state["latencies"].append(latency)
    elif scope["method"] == "DELETE":
        _state.update(count=0, latencies=[])
    else:
        latencies = sorted(_state["latencies"])
        pick = lambda q: latencies[int(q * (len(latencies) - 1))] if latencies else None  # noqa: E731
        status, body = (
            200,
            orjson.dumps({"count": _state["count"], "p50": pick(0.5), "p99": pick(0.99)}),
        )
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})
