"""A small CloudEvents receiver for load tests: answers 202 and counts what it got.

    uvicorn loadtests.sink:app --port 9000        # POST anything; GET /stats; DELETE /stats

`/stats` reports the requests received and, for aggregated events (they carry `ce-time`, the
release time), the release-to-receipt latency percentiles. Under `e2e` it reports the
end-to-end latency of the aggregated events whose `ce-subject` (the correlation id) has the
form `run-<hex>-<epoch ms>`, as loadtests/locustfile.py makes them: receipt time minus the
time the run started, in seconds (sender's and receiver's clocks must agree).
"""

import re
import time
from datetime import datetime
from typing import Any

import orjson

_state: dict[str, Any] = {"count": 0, "latencies": [], "e2e": []}
_RUN = re.compile(rb"run-[0-9a-f]+-([0-9]+)")


def _header(headers: list[tuple[bytes, bytes]], wanted: bytes) -> bytes | None:
    return next((value for name, value in headers if name == wanted), None)


def _percentiles(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    return {
        f"p{q}": ordered[int(q / 100 * (len(ordered) - 1))] if ordered else None
        for q in (50, 95, 99)
    }


def _record(headers: list[tuple[bytes, bytes]]) -> None:
    now = time.time()
    released = _header(headers, b"ce-time")
    if released is not None:
        at = datetime.fromisoformat(released.decode().replace("Z", "+00:00"))
        _state["latencies"].append(now - at.timestamp())
    run = _RUN.fullmatch(_header(headers, b"ce-subject") or b"")
    if run is not None:
        _state["e2e"].append(now - int(run[1]) / 1000)


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
        _record(scope["headers"])
    elif scope["method"] == "DELETE":
        _state.update(count=0, latencies=[], e2e=[])
    else:
        e2e = _state["e2e"]
        status, body = (
            200,
            orjson.dumps(
                {
                    "count": _state["count"],
                    **_percentiles(_state["latencies"]),
                    "e2e": {"count": len(e2e), **_percentiles(e2e)},
                }
            ),
        )
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})
