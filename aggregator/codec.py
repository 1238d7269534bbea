"""CloudEvents over HTTP (the HTTP protocol binding, JSON event format), both directions.

The mode is decided by Content-Type, as the binding says: structured for
`application/cloudevents+json`, batch for `application/cloudevents-batch+json`, 415 for any
other `application/cloudevents...+<format>`, and binary for everything else.
"""

import base64
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote_to_bytes

import orjson

from aggregator.cloudevent import REQUIRED, AttributeValue, CloudEvent, is_json_media_type
from aggregator.errors import Rejected

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]+")
# RFC 3339 date-time, as the CloudEvents `time` attribute requires.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
# Printable ASCII except space, '"' and '%' stays as it is in a header (binding §3.1.3.2).
_HEADER_SAFE = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in ' "%')
_QUOTED_PAIR = re.compile(rb"\\(.)", re.DOTALL)


def media_type(content_type: str | None) -> str:
    return (content_type or "").partition(";")[0].strip().lower()


def decode(headers: Iterable[tuple[bytes, bytes]], body: bytes) -> tuple[list[CloudEvent], bool]:
    """Decode a request into its events; the flag says whether it was a batch."""
    ce_headers: dict[str, bytes] = {}
    content_type: str | None = None
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        if name == "content-type":
            content_type = raw_value.decode("latin-1")
        elif name.startswith("ce-"):
            attribute = name[3:]
            if attribute in ce_headers:
                raise Rejected(400, f"header ce-{attribute} appears more than once")
            ce_headers[attribute] = raw_value
    media = media_type(content_type)
    if media == STRUCTURED:
        return [decode_structured(body)], False
    if media == BATCH:
        return _batch(body), True
    if media.startswith(("application/cloudevents+", "application/cloudevents-batch+")):
        raise Rejected(415, f"event format {media!r} is not supported; use JSON")
    if not ce_headers:
        raise Rejected(
            400,
            "not a CloudEvent: no ce- headers (binary mode) and Content-Type is not "
            f"{STRUCTURED} or {BATCH}",
        )
    return [_binary(ce_headers, content_type, body)], False


def _header_value(attribute: str, raw: bytes) -> str:
    if len(raw) >= 2 and raw.startswith(b'"') and raw.endswith(b'"'):
        raw = _QUOTED_PAIR.sub(rb"\1", raw[1:-1])
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(400, f"header ce-{attribute} is not valid UTF-8") from None


def _binary(ce_headers: dict[str, bytes], content_type: str | None, body: bytes) -> CloudEvent:
    attributes: dict[str, AttributeValue] = {}
    for attribute, raw in ce_headers.items():
        if attribute == "datacontenttype":
            raise Rejected(400, "binary mode carries datacontenttype in Content-Type, not a header")
        attributes[attribute] = _header_value(attribute, raw)
    if content_type is not None:
        attributes["datacontenttype"] = content_type
    _check(attributes)
    if not body:
        return CloudEvent(attributes)
    if is_json_media_type(content_type):
        event = CloudEvent(attributes, data_json=body)
        try:
            event.data_value()
        except orjson.JSONDecodeError:
            raise Rejected(400, "the body is not valid JSON but Content-Type says it is") from None
        return event
    return CloudEvent(attributes, data_binary=body)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _json_body(body: bytes) -> Any:
    # The standard library keeps integers of any size exact; orjson would turn those beyond
    # 64 bits into floats, and a structured event's data must come out as it went in.
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise Rejected(400, "the body is not valid JSON") from None


def decode_structured(body: bytes) -> CloudEvent:
    """One event in the JSON event format."""
    return _structured(_json_body(body))


def _batch(body: bytes) -> list[CloudEvent]:
    items = _json_body(body)
    if not isinstance(items, list):
        raise Rejected(400, "a batch is a JSON array of events")
    events = []
    for index, item in enumerate(items):
        try:
            events.append(_structured(item))
        except Rejected as exc:
            raise Rejected(exc.status, f"batch event {index}: {exc.detail}") from None
    return events


def _structured(document: Any) -> CloudEvent:
    if not isinstance(document, dict):
        raise Rejected(400, "a structured event is a JSON object")
    attributes: dict[str, AttributeValue] = {}
    data_json: bytes | None = None
    data_binary: bytes | None = None
    for name, value in document.items():
        if value is None:
            continue  # JSON format: null means the attribute is not set
        if name == "data":
            try:
                data_json = json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
            except ValueError:
                raise Rejected(400, "data holds a number out of range") from None
        elif name == "data_base64":
            if not isinstance(value, str):
                raise Rejected(400, "data_base64 must be a string")
            try:
                data_binary = base64.b64decode(value, validate=True)
            except ValueError:  # binascii.Error, or text that is not ASCII
                raise Rejected(400, "data_base64 is not valid base64") from None
        elif isinstance(value, int):  # bool is an int
            attributes[name] = value
        elif isinstance(value, str):
            if not _encodable(value):
                raise Rejected(400, f"attribute {name!r} is not valid Unicode text")
            attributes[name] = value
        else:
            raise Rejected(400, f"attribute {name!r} must be a string, integer or boolean")
    if data_json is not None and data_binary is not None:
        raise Rejected(400, "an event has either data or data_base64, not both")
    if data_json is not None:
        # The JSON format: `data` without datacontenttype is JSON.
        attributes.setdefault("datacontenttype", "application/json")
    _check(attributes)
    return CloudEvent(attributes, data_json=data_json, data_binary=data_binary)


def _encodable(text: str) -> bool:
    """JSON escapes can spell lone surrogates, which no UTF-8 text can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check(attributes: dict[str, AttributeValue]) -> None:
    specversion = attributes.pop("specversion", None)
    if specversion is None:
        raise Rejected(400, "missing required attribute specversion")
    if specversion != "1.0":
        raise Rejected(400, f"specversion {specversion!r} is not supported; expected '1.0'")
    for name in REQUIRED:
        value = attributes.get(name)
        if value is None:
            raise Rejected(400, f"missing required attribute {name}")
        if not isinstance(value, str) or not value:
            raise Rejected(400, f"attribute {name} must be a non-empty string")
    for name in attributes:
        if not _ATTRIBUTE_NAME.fullmatch(name):
            raise Rejected(
                400, f"invalid attribute name {name!r}: only lower-case letters and digits"
            )
        if name in ("data", "data_base64"):
            raise Rejected(400, f"{name} is not an attribute name")
    time = attributes.get("time")
    if time is not None and (not isinstance(time, str) or not _RFC3339.fullmatch(time)):
        raise Rejected(400, f"attribute time {time!r} is not an RFC 3339 timestamp")


def header_value(value: AttributeValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return quote(str(value), safe=_HEADER_SAFE)


def encode_binary(
    attributes: dict[str, AttributeValue], body: bytes | None
) -> tuple[dict[str, str], bytes]:
    """Binary mode: attributes as percent-encoded ce- headers, data as the body."""
    headers = {"ce-specversion": "1.0"}
    for name, value in attributes.items():
        if name == "datacontenttype":
            headers["content-type"] = str(value)
        else:
            headers[f"ce-{name}"] = header_value(value)
    return headers, body or b""


def encode_structured(event: CloudEvent) -> bytes:
    """The JSON event format of one event (`application/cloudevents+json`)."""
    document: dict[str, Any] = {"specversion": "1.0", **event.attributes}
    if event.data_json is not None:
        document["data"] = orjson.Fragment(event.data_json)
    elif event.data_binary is not None:
        document["data_base64"] = base64.b64encode(event.data_binary).decode()
    return orjson.dumps(document)


def body_of(event: CloudEvent) -> bytes | None:
    return event.data_json if event.data_json is not None else event.data_binary
