"""The admin API over HTTP (DESIGN §3.3): bearer-token guarded JSON endpoints."""

import hmac
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aggregator import metrics
from aggregator.admin_models import (
    AggregationQuery,
    DetailQuery,
    FlowList,
    PageQuery,
    Redriven,
    Released,
)
from aggregator.dead_letters import NowhereToRedrive
from aggregator.errors import Rejected
from aggregator.responses import JSONResponse, problem
from aggregator.runtime import runtime

Q = TypeVar("Q", bound=BaseModel)
Endpoint = Callable[[Request], Awaitable[Response]]

ADMIN_DISABLED = (
    "the admin API is disabled: set AGGREGATOR_ADMIN_TOKEN and send it as "
    "'Authorization: Bearer <token>' (or AGGREGATOR_ADMIN_OPEN=true, for local development only)"
)


def _authorized(request: Request) -> Response | None:
    settings = runtime(request).settings
    if settings.admin_token is None:
        return None if settings.admin_open else problem(403, ADMIN_DISABLED)
    expected = f"Bearer {settings.admin_token.get_secret_value()}".encode()
    given = request.headers.get("authorization", "").encode("latin-1")
    if hmac.compare_digest(given, expected):
        return None
    return problem(
        401, "missing or wrong bearer token", {"WWW-Authenticate": 'Bearer realm="aggregator"'}
    )


def guarded(endpoint: Endpoint) -> Endpoint:
    """The token check, then the endpoint; bad input answers 400, Redis trouble 503."""

    async def handle(request: Request) -> Response:
        refused = _authorized(request)
        if refused is not None:
            return refused
        try:
            return await endpoint(request)
        except Rejected as exc:
            return problem(exc.status, exc.detail)
        except (RedisError, OSError):
            metrics.labelled(metrics.REDIS_ERRORS, "admin").inc()
            return problem(503, "Redis is unavailable", {"Retry-After": "1"})

    return handle


def query(request: Request, model: type[Q]) -> Q:
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "query"
        raise Rejected(400, f"{where}: {first['msg']}") from None


def _json(model: BaseModel, status: int = 200) -> Response:
    return JSONResponse(model.model_dump(mode="json"), status_code=status)


async def flows(request: Request) -> Response:
    settings = runtime(request).settings
    return _json(FlowList(flows=[flow.model_dump(mode="json") for flow in settings.flows]))


async def aggregations(request: Request) -> Response:
    q = query(request, AggregationQuery)
    return _json(await runtime(request).admin.aggregations(q.flow, q.limit, q.cursor))


async def aggregation(request: Request) -> Response:
    q = query(request, DetailQuery)
    flow, correlation = request.path_params["flow"], request.path_params["correlation"]
    found = await runtime(request).admin.aggregation(flow, correlation, q.include == "data")
    if found is None:
        return problem(404, f"no pending aggregation {correlation!r} in flow {flow!r}")
    return _json(found)


async def release(request: Request) -> Response:
    flow, correlation = request.path_params["flow"], request.path_params["correlation"]
    rt = runtime(request)
    if not await rt.admin.release(flow, correlation, "manual"):
        return problem(404, f"no pending aggregation {correlation!r} in flow {flow!r}")
    rt.dispatcher.nudge()
    return _json(Released(flow=flow, correlationId=correlation, status="manual"))


async def discard(request: Request) -> Response:
    flow, correlation = request.path_params["flow"], request.path_params["correlation"]
    if not await runtime(request).admin.release(flow, correlation, "discarded"):
        return problem(404, f"no pending aggregation {correlation!r} in flow {flow!r}")
    return Response(status_code=204)


async def dead_letters(request: Request) -> Response:
    q = query(request, PageQuery)
    return _json(
        await runtime(request).admin.dead_letter_page(q.limit, q.cursor, q.include == "data")
    )


async def redrive(request: Request) -> Response:
    rt = runtime(request)
    letter = request.path_params["id"]
    try:
        sent = await rt.dead_letters.redrive(letter, rt.sender)
    except NowhereToRedrive as exc:
        return problem(409, str(exc))
    if sent is None:
        return problem(404, f"no dead letter {letter!r}")
    result = Redriven(id=letter, delivered=sent.delivered, status=sent.status)
    if not sent.delivered:
        return problem(502, f"the sink did not take it: {sent.error}; the dead letter is kept")
    return _json(result)


async def delete_dead_letter(request: Request) -> Response:
    letter = request.path_params["id"]
    if not await runtime(request).dead_letters.delete(letter):
        return problem(404, f"no dead letter {letter!r}")
    return Response(status_code=204)


routes = [
    Route("/flows", guarded(flows), methods=["GET"]),
    Route("/aggregations", guarded(aggregations), methods=["GET"]),
    Route("/aggregations/{flow}/{correlation}", guarded(aggregation), methods=["GET"]),
    Route("/aggregations/{flow}/{correlation}", guarded(discard), methods=["DELETE"]),
    Route("/aggregations/{flow}/{correlation}/release", guarded(release), methods=["POST"]),
    Route("/dead-letters", guarded(dead_letters), methods=["GET"]),
    Route("/dead-letters/{id}", guarded(delete_dead_letter), methods=["DELETE"]),
    Route("/dead-letters/{id}/redrive", guarded(redrive), methods=["POST"]),
]
