"""Responses rendered with orjson, and RFC 9457 problem documents for every error."""

from http import HTTPStatus
from typing import Any

import orjson
from starlette.responses import Response


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps(
        {
            "type": "about:blank",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": detail,
        }
    )
    return Response(body, status, headers=headers, media_type="application/problem+json")
