"""CloudEvents HTTP binding rules (binary, structured, batch), table-driven, plus interop
with the CloudEvents SDK as an independent encoder."""

import base64
import json
from typing import Any

import orjson
import pytest
from cloudevents.core.bindings.http import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent
from hypothesis import given
from hypothesis import strategies as st

from aggregator.cloudevent import CloudEvent
from aggregator.codec import decode, encode_binary
from aggregator.errors import Rejected

BASE = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}


def raw(headers: dict[str, str | bytes]) -> list[tuple[bytes, bytes]]:
    return [
        (name.encode(), value if isinstance(value, bytes) else value.encode("latin-1"))
        for name, value in headers.items()
    ]


def one(headers: dict[str, str | bytes], body: bytes = b"") -> CloudEvent:
    events, batch = decode(raw(headers), body)
    assert not batch
    [event] = events
    return event


def structured(document: Any) -> CloudEvent:
    return one({"content-type": "application/cloudevents+json"}, orjson.dumps(document))


DOC = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}


@pytest.mark.parametrize(
    ("header", "sent", "decoded"),
    [
        ("ce-subject", "plain", "plain"),
        ("ce-subject", "with%20space", "with space"),
        ("ce-subject", "100%25", "100%"),
        ("ce-subject", "%C3%A9t%C3%A9", "été"),
        ("ce-subject", '"quoted value"', "quoted value"),
        ("ce-subject", '"a \\"b\\" c"', 'a "b" c'),
        ("ce-subject", '"%22percent%22"', '"percent"'),
        ("ce-subject", "%2541", "%41"),
        ("ce-subject", "été".encode(), "été"),
        ("ce-subject", '"', '"'),
        ("CE-Subject", "case", "case"),
        ("ce-myext", "x", "x"),
    ],
)
def test_binary_header_values(header: str, sent: str | bytes, decoded: str) -> None:
    event = one({**BASE, header: sent})
    assert event.attributes[header.lower().removeprefix("ce-")] == decoded


@pytest.mark.parametrize(
    ("headers", "body", "status", "message"),
    [
        ({**BASE, "ce-specversion": "0.3"}, b"", 400, "specversion '0.3' is not supported"),
        ({k: v for k, v in BASE.items() if k != "ce-specversion"}, b"", 400, "specversion"),
        ({k: v for k, v in BASE.items() if k != "ce-id"}, b"", 400, "missing required attribute id"),
        ({k: v for k, v in BASE.items() if k != "ce-source"}, b"", 400, "attribute source"),
        ({k: v for k, v in BASE.items() if k != "ce-type"}, b"", 400, "attribute type"),
        ({**BASE, "ce-id": ""}, b"", 400, "id must be a non-empty string"),
        ({**BASE, "ce-subject": "%FF"}, b"", 400, "ce-subject is not valid UTF-8"),
        ({**BASE, "ce-subject": b"\xff\xfe"}, b"", 400, "not valid UTF-8"),
        ({**BASE, "ce-bad-name": "x"}, b"", 400, "invalid attribute name 'bad-name'"),
        ({**BASE, "ce-datacontenttype": "a/b"}, b"", 400, "in Content-Type, not a header"),
        ({**BASE, "ce-time": "yesterday"}, b"", 400, "not an RFC 3339 timestamp"),
        ({**BASE, "content-type": "application/json"}, b"{nope", 400, "not valid JSON"),
        ({"content-type": "text/plain"}, b"hello", 400, "not a CloudEvent"),
        ({}, b"", 400, "not a CloudEvent"),
        ({"content-type": "application/cloudevents+xml"}, b"<e/>", 415, "not supported"),
        ({**BASE, "content-type": "application/cloudevents+avro"}, b"", 415, "not supported"),
        ({"content-type": "application/cloudevents-batch+proto"}, b"", 415, "not supported"),
    ],
)  # fmt: skip
def test_binary_errors(
    headers: dict[str, str | bytes], body: bytes, status: int, message: str
) -> None:
    with pytest.raises(Rejected) as caught:
        decode(raw(headers), body)
    assert caught.value.status == status
    assert message in caught.value.detail


def test_repeated_ce_header_is_rejected() -> None:
    headers = [*raw(BASE), (b"ce-subject", b"a"), (b"Ce-Subject", b"b")]
    with pytest.raises(Rejected, match="more than once"):
        decode(headers, b"")


def test_binary_json_body() -> None:
    event = one({**BASE, "content-type": "application/json; charset=utf-8"}, b'{"a": [1, 2]}')
    assert event.data_json == b'{"a": [1, 2]}'
    assert event.data_value() == {"a": [1, 2]}
    assert event.attributes["datacontenttype"] == "application/json; charset=utf-8"


def test_binary_non_json_body_is_kept_byte_exact() -> None:
    body = bytes(range(256))
    event = one({**BASE, "content-type": "application/octet-stream"}, body)
    assert event.data_binary == body
    assert event.data_json is None


@pytest.mark.parametrize("content_type", ["application/vnd.api+json", "text/json"])
def test_json_suffix_media_types(content_type: str) -> None:
    assert one({**BASE, "content-type": content_type}, b"[1]").data_value() == [1]


def test_empty_body_has_no_data() -> None:
    event = one(BASE)
    assert (event.data_json, event.data_binary) == (None, None)


def test_structured_body_wins_over_ce_headers() -> None:
    event = one(
        {**BASE, "ce-id": "header-id", "content-type": "application/cloudevents+json"},
        orjson.dumps({**DOC, "id": "body-id", "data": {"x": 1}}),
    )
    assert event.id == "body-id"
    assert event.data_value() == {"x": 1}


def test_structured_null_attribute_is_absent() -> None:
    event = structured({**DOC, "subject": None, "data": None})
    assert "subject" not in event.attributes
    assert event.data_json is None
    with pytest.raises(Rejected, match="missing required attribute id"):
        structured({**DOC, "id": None})


def test_structured_extension_types_and_base64() -> None:
    event = structured({**DOC, "count": 3, "flag": True, "data_base64": "AAEC"})
    assert event.attributes["count"] == 3
    assert event.attributes["flag"] is True
    assert event.data_binary == b"\x00\x01\x02"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1], "a structured event is a JSON object"),
        ({**DOC, "ratio": 1.5}, "'ratio' must be a string, integer or boolean"),
        ({**DOC, "nested": {"a": 1}}, "'nested' must be a string"),
        ({**DOC, "id": 5}, "id must be a non-empty string"),
        ({**DOC, "data": 1, "data_base64": "AA=="}, "either data or data_base64"),
        ({**DOC, "data_base64": "%%%"}, "not valid base64"),
        ({**DOC, "data_base64": 5}, "data_base64 must be a string"),
        ({**DOC, "specversion": "1.1"}, "specversion '1.1'"),
        ({**DOC, "Upper": "x"}, "invalid attribute name 'Upper'"),
    ],
)
def test_structured_errors(document: Any, message: str) -> None:
    with pytest.raises(Rejected) as caught:
        structured(document)
    assert caught.value.status == 400
    assert message in caught.value.detail


def test_structured_data_keeps_big_integers_exact() -> None:
    event = one(
        {"content-type": "application/cloudevents+json"},
        b'{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"n":1180591620717411303424}}',
    )
    assert event.data_json == b'{"n":1180591620717411303424}'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"specversion":"1.0","id":"\\ud800","source":"/s","type":"t"}', "not valid Unicode"),
        (b'{"specversion":"1.0","id":"1","source":"/s","type":"t","data":1e999}', "out of range"),
        (b'{"specversion":"1.0","id":"1","source":"/s","type":"t","data":NaN}', "not valid JSON"),
        (
            b'{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"\\udbd3\\u00e9"}',
            "not valid base64",
        ),
        (b"[" * 100_000, "not valid JSON"),
    ],
)
def test_structured_json_edge_cases(body: bytes, message: str) -> None:
    with pytest.raises(Rejected, match=message):
        decode(raw({"content-type": "application/cloudevents+json"}), body)


def test_structured_invalid_json() -> None:
    with pytest.raises(Rejected, match="not valid JSON"):
        one({"content-type": "application/cloudevents+json"}, b"{")


def test_batch() -> None:
    body = orjson.dumps([{**DOC, "id": "a"}, {**DOC, "id": "b", "data": "x"}])
    events, batch = decode(raw({"content-type": "application/cloudevents-batch+json"}), body)
    assert batch
    assert [event.id for event in events] == ["a", "b"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"not": "a list"}', "a batch is a JSON array"),
        (orjson.dumps([DOC, {**DOC, "id": None}]), "batch event 1: missing required attribute id"),
        (orjson.dumps([DOC, 7]), "batch event 1: a structured event is a JSON object"),
    ],
)
def test_bad_batches(body: bytes, message: str) -> None:
    with pytest.raises(Rejected, match=message):
        decode(raw({"content-type": "application/cloudevents-batch+json"}), body)


def test_encode_binary_round_trips() -> None:
    attributes = {"id": "1", "source": "/s", "type": "t", "subject": 'a "b" 100% é',
                  "count": 3, "flag": False, "datacontenttype": "application/json"}  # fmt: skip
    headers, body = encode_binary(attributes, b"{}")
    assert headers["ce-subject"] == "a%20%22b%22%20100%25%20%C3%A9"
    event = one(dict(headers), body)
    assert event.attributes == {**attributes, "count": "3", "flag": "false"}


text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1)


@given(subject=text, extension=text, data=st.dictionaries(text, st.integers()))
def test_reads_what_the_sdk_writes(subject: str, extension: str, data: dict[str, int]) -> None:
    attributes = {"id": "i", "source": "/s", "type": "t", "subject": subject, "myext": extension,
                  "datacontenttype": "application/json"}  # fmt: skip
    sdk_event = SdkEvent(dict(attributes), data)
    for message in (to_binary(sdk_event, JSONFormat()), to_structured(sdk_event, JSONFormat())):
        event = one(dict(message.headers), message.body)
        assert event.attributes["subject"] == subject
        assert event.attributes["myext"] == extension
        assert event.data_json is not None
        assert json.loads(event.data_json) == data


def test_sdk_binary_data_round_trips_as_base64() -> None:
    sdk_event = SdkEvent({"id": "i", "source": "/s", "type": "t"}, b"\x00\xff")
    event = one(dict(to_structured(sdk_event, JSONFormat()).headers),
                to_structured(sdk_event, JSONFormat()).body)  # fmt: skip
    assert event.data_binary == b"\x00\xff"
    assert base64.b64encode(event.data_binary) == b"AP8="
