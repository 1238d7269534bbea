"""The HTTP floor of the benchmarks: a bare Starlette endpoint that reads the body and
answers 202. Nothing a real aggregator can do is cheaper, so every figure is a ratio to it.

    uvicorn loadtests.floor:app --loop uvloop --http httptools --no-access-log
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def accept(request: Request) -> Response:
    await request.body()
    return Response(status_code=202)


app = Starlette(routes=[Route("/{path:path}", accept, methods=["POST"])])
