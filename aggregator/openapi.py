"""The OpenAPI 3.1 description of every endpoint (DESIGN §3), built from the same pydantic
models that validate the admin API's input and shape its answers."""

from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from aggregator import __version__
from aggregator.admin_models import (
    AggregationDetail,
    AggregationPage,
    DeadLetterPage,
    FlowList,
    Problem,
    Redriven,
    Released,
)


class CloudEventDocument(BaseModel):
    """A CloudEvent in the JSON event format (structured mode)."""

    model_config = ConfigDict(extra="allow")
    specversion: str = Field(pattern="^1\\.0$")
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    data: Any = None
    data_base64: str | None = None


_MODELS: list[type[BaseModel]] = [
    AggregationDetail,
    AggregationPage,
    CloudEventDocument,
    DeadLetterPage,
    FlowList,
    Problem,
    Redriven,
    Released,
]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _problem(description: str, **headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref(Problem)}},
    }
    if headers:
        answer["headers"] = {
            name: {"schema": {"type": "string"}, "description": text}
            for name, text in headers.items()
        }
    return answer


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


_PATH_TEXT = {"type": "string", "minLength": 1}
_FLOW = {"name": "flow", "in": "path", "required": True, "schema": _PATH_TEXT}
_REDIS_DOWN = _problem("Redis is unavailable; nothing was stored", **{"Retry-After": "seconds"})
_ADMIN_ERRORS = {
    "401": _problem("missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"}),
    "403": _problem("the admin API is disabled: no AGGREGATOR_ADMIN_TOKEN is configured"),
    "503": _REDIS_DOWN,
}
_CE_HEADERS = [
    {
        "name": f"ce-{name}",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": f"binary mode: the {name} attribute",
    }
    for name in ("specversion", "id", "source", "type")
]
_OUTCOME = {
    "Aggregation-Outcome": {
        "description": "pending | duplicate | late | complete (comma list for batches)",
        "schema": {"type": "string"},
    }
}


def _ingest(summary: str, *parameters: dict[str, Any], reply: bool = True) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "202": {"description": "stored (see Aggregation-Outcome)", "headers": _OUTCOME},
        "400": _problem("not a valid CloudEvent, no correlation or branch id, unknown branch"),
        "404": _problem("unknown flow"),
        "413": _problem("the body is larger than AGGREGATOR_MAX_EVENT_BYTES"),
        "415": _problem("a CloudEvents format other than JSON"),
        "429": _problem("AGGREGATOR_MAX_PENDING reached", **{"Retry-After": "seconds"}),
        "503": _REDIS_DOWN,
    }
    if reply:
        responses["200"] = {
            "description": "complete, in reply mode: the aggregated event in binary mode",
            "headers": _OUTCOME,
            "content": {"application/json": {"schema": {}}},
        }
    return {
        "post": {
            "summary": summary,
            "tags": ["ingest"],
            "parameters": [*parameters, *_CE_HEADERS],
            "requestBody": {
                "required": False,
                "content": {
                    "application/cloudevents+json": {"schema": _ref(CloudEventDocument)},
                    "application/cloudevents-batch+json": {
                        "schema": {"type": "array", "items": _ref(CloudEventDocument)}
                    },
                    "application/json": {"schema": {}},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                },
            },
            "responses": responses,
        }
    }


def _admin(
    method: str,
    summary: str,
    ok: dict[str, Any],
    *parameters: dict[str, Any],
    errors: tuple[str, ...] = (),
) -> dict[str, Any]:
    responses = {**ok, **_ADMIN_ERRORS}
    for status in errors:
        responses[status] = _problem(
            {
                "400": "bad parameters",
                "404": "not found",
                "409": "nowhere to redrive to",
                "502": "the sink did not take it",
            }[status]
        )
    return {
        method: {
            "summary": summary,
            "tags": ["admin"],
            "security": [{"bearer": []}],
            "parameters": list(parameters),
            "responses": responses,
        }
    }


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


_LIMIT = _query("limit", {"type": "integer", "minimum": 1}, "items per page (at most 1000)")
_CURSOR = _query("cursor", {"type": "string"}, "nextCursor of the previous page")
_INCLUDE = _query("include", {"type": "string", "enum": ["data"]}, "add payloads")
_CORRELATION = {"name": "correlationId", "in": "path", "required": True, "schema": _PATH_TEXT}
_LETTER = {"name": "id", "in": "path", "required": True, "schema": _PATH_TEXT}


def _plain(summary: str, status: dict[str, Any]) -> dict[str, Any]:
    return {"get": {"summary": summary, "tags": ["operations"], "responses": status}}


@cache
def document() -> dict[str, Any]:
    _, schemas = models_json_schema(
        [(model, "serialization") for model in _MODELS], ref_template="#/components/schemas/{model}"
    )
    ready = {
        "type": "object",
        "properties": {
            "status": {"type": "string"},
            "warnings": {"type": "array", "items": {"type": "string"}},
        },
    }
    branch = {"name": "branch", "in": "path", "required": True, "schema": _PATH_TEXT}
    paths = {
        "/": _ingest("a branch reply for flow default"),
        "/flows/{flow}": _ingest("a branch reply; the branch comes from the event", _FLOW),
        "/flows/{flow}/branches/{branch}": _ingest(
            "a branch reply, branch named by the path", _FLOW, branch
        ),
        "/flows/{flow}/origin": _ingest("the fanned-out event itself", _FLOW, reply=False),
        "/dedup/{flow}": {
            "post": {
                "summary": "dedup filter: the event back the first time its key is seen",
                "tags": ["ingest"],
                "parameters": [_FLOW, *_CE_HEADERS],
                "requestBody": _ingest("", _FLOW)["post"]["requestBody"],
                "responses": {
                    "200": {
                        "description": "unique: the same event, binary mode",
                        "content": {
                            "application/json": {"schema": {}},
                            "application/octet-stream": {"schema": {}},
                        },
                    },
                    "202": {
                        "description": "duplicate",
                        "headers": {"Dedup-Outcome": {"schema": {"type": "string"}}},
                    },
                    "400": _problem("not a valid CloudEvent, no dedup key, or a batch"),
                    "404": _problem("unknown dedup flow"),
                    "413": _problem("the body is larger than AGGREGATOR_MAX_EVENT_BYTES"),
                    "415": _problem("a CloudEvents format other than JSON"),
                    "503": _REDIS_DOWN,
                },
            }
        },
        "/flows": _admin("get", "the effective flows", {"200": _json(FlowList, "flows")}),
        "/aggregations": _admin(
            "get",
            "pending aggregations, paged",
            {"200": _json(AggregationPage, "a page")},
            _query("flow", {"type": "string", "minLength": 1}, "only this flow"),
            _LIMIT,
            _CURSOR,
            errors=("400",),
        ),
        "/aggregations/{flow}/{correlationId}": {
            **_admin(
                "get",
                "one pending aggregation",
                {"200": _json(AggregationDetail, "it")},
                _FLOW,
                _CORRELATION,
                _INCLUDE,
                errors=("400", "404"),
            ),
            **_admin(
                "delete",
                "discard it (a tombstone stays)",
                {"204": {"description": "discarded"}},
                _FLOW,
                _CORRELATION,
                errors=("404",),
            ),
        },
        "/aggregations/{flow}/{correlationId}/release": _admin(
            "post",
            "release it now (status manual)",
            {"200": _json(Released, "released")},
            _FLOW,
            _CORRELATION,
            errors=("404",),
        ),
        "/dead-letters": _admin(
            "get",
            "dead letters, paged",
            {"200": _json(DeadLetterPage, "a page")},
            _LIMIT,
            _CURSOR,
            _INCLUDE,
            errors=("400",),
        ),
        "/dead-letters/{id}": _admin(
            "delete",
            "delete a dead letter",
            {"204": {"description": "deleted"}},
            _LETTER,
            errors=("404",),
        ),
        "/dead-letters/{id}/redrive": _admin(
            "post",
            "deliver it to the flow's sink now",
            {"200": _json(Redriven, "delivered")},
            _LETTER,
            errors=("404", "409", "502"),
        ),
        "/healthz": _plain(
            "the process runs",
            {
                "200": {
                    "description": "ok",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        ),
        "/readyz": _plain(
            "Redis answers and scripts are loaded",
            {
                "200": {"description": "ready", "content": {"application/json": {"schema": ready}}},
                "503": {
                    "description": "not ready",
                    "content": {"application/json": {"schema": ready}},
                },
            },
        ),
        "/metrics": _plain(
            "Prometheus metrics",
            {
                "200": {
                    "description": "text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        ),
        "/openapi.json": _plain(
            "this document",
            {
                "200": {
                    "description": "OpenAPI 3.1",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        ),
        "/ui": _plain(
            "the dashboard",
            {
                "200": {
                    "description": "HTML",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                }
            },
        ),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "knative-aggregator",
            "version": __version__,
            "description": "Fan-in for Knative Parallel: DESIGN §3.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
