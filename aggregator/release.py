"""A release and the aggregated CloudEvent built from it (DESIGN §4).

The event is a pure function of the release record written by the release decision, so
every replay and redelivery of a release carries the same event, id included.
"""

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from aggregator.cloudevent import AttributeValue, CloudEvent
from aggregator.flows import AggregateFlow

_ID_NAMESPACE = uuid.UUID("5f0f2a4e-3c1d-4e55-9a53-6b0d1c0a7e21")
_SHAPE = ("id", "source", "type", "time", "datacontenttype")
_TRACE = ("traceparent", "tracestate")
# Not an attribute name (those are lower-case letters and digits), so it cannot collide.
_RECEIVED = "receivedAt"
_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Arrival:
    branch: str
    event: CloudEvent
    received_ms: int


@dataclass(frozen=True, slots=True)
class Release:
    flow: str
    correlation_id: str
    status: str
    first_arrival_ms: int
    released_ms: int
    expected: int
    arrivals: tuple[Arrival, ...]  # in arrival order
    origin: Arrival | None
    completed_by: str | None

    @classmethod
    def from_fields(cls, flat: list[bytes]) -> "Release":
        """Parse the flat field list of a state hash or an outbox entry."""
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        arrivals, origin = arrivals_of(fields)
        completed_by = fields.get(b"cb")
        return cls(
            flow=fields[b"f"].decode(),
            correlation_id=fields[b"c"].decode(),
            status=fields[b"st"].decode(),
            first_arrival_ms=int(fields[b"t0"]),
            released_ms=int(fields[b"rt"]),
            expected=int(fields[b"x"]),
            arrivals=tuple(arrivals),
            origin=origin,
            completed_by=None if completed_by is None else completed_by.decode(),
        )

    @property
    def event_id(self) -> str:
        name = orjson.dumps([self.flow, self.correlation_id, self.first_arrival_ms]).decode()
        return str(uuid.uuid5(_ID_NAMESPACE, name))


def rfc3339(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _data_member(event: CloudEvent) -> dict[str, Any]:
    """The event's data as the JSON event format writes it; JSON data byte for byte."""
    if event.data_json is not None:
        return {"data": orjson.Fragment(event.data_json)}
    if event.data_binary is not None:
        return {"data_base64": base64.b64encode(event.data_binary).decode()}
    return {}


def _result(event: CloudEvent) -> Any:
    """A `results` item: the JSON data itself, else the data_base64 member, else null."""
    member = _data_member(event)
    return member.get("data", member or None)


def _shape(arrival: Arrival) -> dict[str, Any]:
    attributes = arrival.event.attributes
    shape = {name: attributes[name] for name in _SHAPE if name in attributes}
    return {**shape, **_data_member(arrival.event)}


def _merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _data(release: Release, flow: AggregateFlow) -> dict[str, Any]:
    received = [arrival.branch for arrival in release.arrivals]
    document: dict[str, Any] = {
        "flow": release.flow,
        "correlationId": release.correlation_id,
        "status": release.status,
        "expected": release.expected,
        "received": received,
        "missing": None
        if flow.branches is None
        else [name for name in flow.branches if name not in received],
        "branches": {arrival.branch: _shape(arrival) for arrival in release.arrivals},
    }
    if release.origin is not None:
        document["origin"] = _shape(release.origin)
    if flow.result == "merge":
        by_branch = {arrival.branch: arrival.event for arrival in release.arrivals}
        order = received if flow.branches is None else [b for b in flow.branches if b in by_branch]
        merged: dict[str, Any] = {}
        for branch in order:
            data = by_branch[branch].data_value()
            if isinstance(data, dict):
                _merge(merged, data)
        document["merged"] = merged
    elif flow.result == "list":
        document["results"] = [_result(arrival.event) for arrival in release.arrivals]
    return document


def aggregated_event(
    release: Release, flow: AggregateFlow, overrides: dict[str, str | int]
) -> CloudEvent:
    partial = release.status != "complete"
    attributes: dict[str, AttributeValue] = {
        "id": release.event_id,
        "source": flow.output.source or f"/aggregator/flows/{release.flow}",
        "type": flow.output.type
        or ("dev.knative.aggregator.partial" if partial else "dev.knative.aggregator.completed"),
        "subject": release.correlation_id,
        "time": rfc3339(release.released_ms),
        "datacontenttype": _JSON,
        "correlationid": release.correlation_id,
        "aggregationstatus": release.status,
        "branchcount": len(release.arrivals),
        "expectedbranches": release.expected,
    }
    trace_from = release.origin
    if release.completed_by is not None:
        trace_from = next((a for a in release.arrivals if a.branch == release.completed_by), None)
    for name in _TRACE:
        if trace_from is not None and name in trace_from.event.attributes:
            attributes[name] = trace_from.event.attributes[name]
    attributes.update(overrides)
    return CloudEvent(attributes, data_json=orjson.dumps(_data(release, flow)))


def record_of(event: CloudEvent, received_ms: int) -> bytes:
    """How one branch (or origin) event is kept in Redis: its attributes and receipt time as
    JSON, then NUL (never part of JSON text) and the data, raw, after a tag: b bytes, j JSON,
    J JSON whose datacontenttype is application/json. J leaves that attribute out of the
    JSON: it is most events' and would take 35 of the about 200 bytes a record adds to its
    data (docs/benchmarks.md, memory)."""
    attributes = {**event.attributes, _RECEIVED: received_ms}
    if event.data_json is not None:
        implied = attributes.get("datacontenttype") == _JSON
        if implied:
            del attributes["datacontenttype"]
        return orjson.dumps(attributes) + (b"\0J" if implied else b"\0j") + event.data_json
    if event.data_binary is not None:
        return orjson.dumps(attributes) + b"\0b" + event.data_binary
    return orjson.dumps(attributes)


def arrivals_of(fields: dict[bytes, bytes]) -> tuple[list[Arrival], Arrival | None]:
    """The branch events of a state hash (or an outbox entry) in arrival order, and its
    origin event. Each is stored as `<arrival number>:<record>`."""
    numbered = []
    for name, value in fields.items():
        if name.startswith(b"b:"):
            seq, _, record = value.partition(b":")
            numbered.append((int(seq), parse_record(name[2:].decode(), record)))
    numbered.sort(key=lambda item: item[0])
    origin = fields.get(b"o")
    return (
        [arrival for _, arrival in numbered],
        None if origin is None else parse_record("", origin.partition(b":")[2]),
    )


def parse_record(branch: str, record: bytes) -> Arrival:
    head, _, data = record.partition(b"\0")
    attributes = orjson.loads(head)
    received_ms = attributes.pop(_RECEIVED)
    tag, data = data[:1], data[1:]
    if tag == b"J":
        attributes["datacontenttype"] = _JSON
    event = CloudEvent(
        attributes,
        data_json=data if tag in (b"j", b"J") else None,
        data_binary=data if tag == b"b" else None,
    )
    return Arrival(branch, event, received_ms)
