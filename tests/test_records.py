"""How a branch event is kept in Redis: every event comes back as it went in, and records
written before the compact J tag still read."""

import orjson
from hypothesis import given
from hypothesis import strategies as st

from aggregator.cloudevent import CloudEvent
from aggregator.release import parse_record, record_of

ATTRIBUTE_NAMES = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True).filter(
    lambda name: name != "datacontenttype"
)
ATTRIBUTE_VALUES = st.one_of(st.text(max_size=20), st.integers(-(2**31), 2**31 - 1), st.booleans())
CONTENT_TYPES = st.sampled_from(
    [None, "application/json", "application/json; charset=utf-8", "text/json", "text/plain"]
)


@st.composite
def events(draw: st.DrawFn) -> CloudEvent:
    attributes = draw(st.dictionaries(ATTRIBUTE_NAMES, ATTRIBUTE_VALUES, max_size=5))
    attributes.update(id=draw(st.text(min_size=1)), source="/s", type="t")
    content_type = draw(CONTENT_TYPES)
    if content_type is not None:
        attributes["datacontenttype"] = content_type
    form = draw(st.sampled_from(["json", "binary", "none"]))
    if form == "json":
        return CloudEvent(
            attributes, data_json=orjson.dumps(draw(st.lists(st.integers(-(2**31), 2**31 - 1))))
        )
    if form == "binary":
        return CloudEvent(attributes, data_binary=draw(st.binary()))
    return CloudEvent(attributes)


@given(events(), st.integers(min_value=0, max_value=2**42))
def test_a_record_gives_back_its_event(event: CloudEvent, received_ms: int) -> None:
    arrival = parse_record("b1", record_of(event, received_ms))
    assert arrival.branch == "b1"
    assert arrival.received_ms == received_ms
    assert arrival.event.attributes == event.attributes
    assert arrival.event.data_json == event.data_json
    assert arrival.event.data_binary == event.data_binary


def test_the_usual_json_event_leaves_its_content_type_out() -> None:
    attributes = {"id": "1", "source": "/s", "type": "t", "datacontenttype": "application/json"}
    record = record_of(CloudEvent(attributes, data_json=b"{}"), 5)
    assert b"datacontenttype" not in record
    assert record.endswith(b"\0J{}")


def test_records_written_before_the_j_tag_was_compact_still_read() -> None:
    # As records were written before: attributes in full, tag j.
    record = b'{"id":"1","source":"/s","type":"t","datacontenttype":"application/json",'
    record += b'"receivedAt":7}\0j{"a":1}'
    arrival = parse_record("b1", record)
    assert arrival.event.attributes["datacontenttype"] == "application/json"
    assert arrival.event.data_json == b'{"a":1}'
    assert arrival.received_ms == 7
