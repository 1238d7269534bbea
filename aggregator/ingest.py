"""From a decoded event to a stored arrival: which flow, correlation, branch (DESIGN §2)."""

import time

from aggregator.cloudevent import CloudEvent
from aggregator.errors import Rejected
from aggregator.flows import MAX_BRANCHES, AggregateFlow
from aggregator.keys import Keyspace, event_field
from aggregator.release import record_of
from aggregator.sources import Source, value_in
from aggregator.store import Arrival


def _required(source: Source, event: CloudEvent, what: str) -> str:
    value = value_in(source, event)
    if not value:
        raise Rejected(400, f"no {what}: the event has no string or integer at {source}")
    return value


def _branch(flow: AggregateFlow, event: CloudEvent, path_branch: str | None) -> str:
    if flow.branch == "path" or (flow.branch == "auto" and path_branch is not None):
        if path_branch is None:
            raise Rejected(
                400,
                f"flow {flow.name!r} takes the branch from the URL: "
                f"POST /flows/{flow.name}/branches/<branch>",
            )
        branch = path_branch
    elif flow.branch == "auto":
        branch = event.source
    else:
        branch = _required(flow.branch, event, "branch id")
    if flow.branches is not None and branch not in flow.branches:
        raise Rejected(
            400,
            f"branch {branch!r} is not one of flow {flow.name!r}'s branches: "
            + ", ".join(flow.branches),
        )
    return branch


def _expected(flow: AggregateFlow, event: CloudEvent) -> int:
    if flow.expected_from is None:
        return flow.expected
    value = value_in(flow.expected_from, event)
    if value is None:
        return flow.expected
    if not value.isdigit() or not 1 <= int(value) <= MAX_BRANCHES:
        raise Rejected(400, f"{flow.expected_from} must be a branch count from 1 to {MAX_BRANCHES}")
    return int(value)


def prepare(
    flow: AggregateFlow,
    event: CloudEvent,
    keyspace: Keyspace,
    *,
    path_branch: str | None = None,
    origin: bool = False,
) -> Arrival:
    """Everything the store needs for this event; raises Rejected, touches no state."""
    correlation_id = _required(flow.correlation, event, "correlation id")
    return Arrival(
        keys=keyspace.aggregation(flow.name, correlation_id),
        event_field=event_field(event.source, event.id),
        branch="" if origin else _branch(flow, event, path_branch),
        record=record_of(event, int(time.time() * 1000)),
        expected=_expected(flow, event),
        flow=flow.name,
        correlation_id=correlation_id,
    )
