"""The aggregator people write today, in Python, for comparison: partial results in a dict
in process memory keyed by correlation id, released when the fourth branch arrives. No
validation, no duplicate suppression, no persistence, no timeout; one process only.

    uvicorn loadtests.naive:app --loop uvloop --http httptools --no-access-log
"""

from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

EXPECTED = 4
partial: dict[str, list[Any]] = {}
released = 0


async def branch(request: Request) -> Response:
    global released
    correlation = request.headers.get("ce-correlationid", "")
    results = partial.setdefault(correlation, [])
    results.append(orjson.loads(await request.body()))
    if len(results) < EXPECTED:
        return JSONResponse({"status": "partial", "count": len(results)})
    del partial[correlation]
    released += 1
    return JSONResponse({"correlationid": correlation, "results": results})


async def stats(request: Request) -> Response:
    return JSONResponse({"released": released, "pending": len(partial)})


app = Starlette(routes=[Route("/stats", stats), Route("/{path:path}", branch, methods=["POST"])])
