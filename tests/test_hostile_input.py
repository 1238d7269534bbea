"""Hostile input over HTTP: whatever the headers, content types, bodies, encodings, sizes and
batch shapes, the service never answers 5xx, and a 4xx changes nothing in Redis."""

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.app import app_client, make_settings, snapshot

pytestmark = pytest.mark.usefixtures("no_aggregator_env")

FLOWS = [
    {"name": "default", "expected_branches": 2},
    {"name": "docs", "branches": ["a", "b"], "branch": "path", "correlation": "data:/id"},
    {"name": "dyn", "expected_branches": 3, "expected_from": "ce:count", "branch": "data:/who"},
    {"name": "seen", "kind": "dedup", "key": "data:/k"},
]
PATHS = ["/", "/flows/docs", "/flows/docs/branches/a", "/flows/docs/branches/zzz",
         "/flows/docs/origin", "/flows/dyn", "/flows/nope", "/dedup/seen", "/dedup/docs"]  # fmt: skip
CONTENT_TYPES = ["application/json", "application/cloudevents+json", "application/cloudevents-batch+json",
                 "application/cloudevents+xml", "text/plain", "application/octet-stream",
                 "application/json; charset=utf-8", "", "application/vnd.x+json"]  # fmt: skip
ATTRIBUTES = ["specversion", "id", "source", "type", "time", "subject", "correlationid", "count",
              "datacontenttype", "Bad-Name", "data", "traceparent"]  # fmt: skip

text = st.text(max_size=40)


def _dumps(value: object) -> bytes:
    # The standard library writes what orjson refuses: huge integers, lone surrogates.
    return json.dumps(value).encode()


header_value = st.one_of(
    text.map(lambda s: s.encode("utf-8", "surrogatepass").decode("latin-1", "replace")),
    st.sampled_from(["1.0", "0.3", "%", "%zz", "%C3%A9", '"quoted"', '"', "", "x" * 300]),
)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
structured = st.dictionaries(st.sampled_from(ATTRIBUTES) | text, json_value, max_size=8)
body = st.one_of(
    st.binary(max_size=300),
    structured.map(_dumps),
    st.lists(structured, max_size=4).map(_dumps),
    st.lists(json_value, max_size=3).map(_dumps),
    st.just(b"x" * 5000),
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    headers = {
        f"ce-{draw(st.sampled_from(ATTRIBUTES))}": draw(header_value)
        for _ in range(draw(st.integers(0, 7)))
    }
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type:
        headers["content-type"] = content_type
    if draw(st.booleans()):
        headers["prefer"] = "reply"
    return {"path": draw(st.sampled_from(PATHS)), "headers": headers, "content": draw(body)}


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(requests(), min_size=1, max_size=5))
def test_never_a_server_error_and_4xx_changes_nothing(
    redis_url: str, batch: list[dict[str, Any]]
) -> None:
    async def play() -> None:
        async with app_client(make_settings(redis_url, *FLOWS, max_event_bytes=4096)) as client:
            for request in batch:
                before = snapshot(redis_url)
                headers = [(k.encode(), v.encode("latin-1")) for k, v in request["headers"].items()]
                response = await client.post(
                    request["path"], headers=headers, content=request["content"]
                )
                assert response.status_code < 500, (request, response.text)
                if response.status_code >= 400:
                    assert response.headers["content-type"] == "application/problem+json"
                    assert snapshot(redis_url) == before, request

    asyncio.run(play())
