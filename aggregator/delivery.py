"""Where a release goes (DESIGN §5): back to the caller, to the sink, or to dead letters."""

from typing import Literal

from aggregator.flows import AggregateFlow
from aggregator.settings import Settings

Route = Literal["reply", "sink", "dead-letter"]


def release_route(
    flow: AggregateFlow, settings: Settings, *, prefer_reply: bool, can_reply: bool
) -> Route:
    """`can_reply` is False where no response can carry an event (batches, origin events)."""
    has_sink = settings.sink_for(flow) is not None
    if flow.delivery == "sink" or (flow.delivery == "auto" and has_sink):
        return "sink" if has_sink else "dead-letter"
    wants_reply = flow.delivery == "reply" or prefer_reply
    if wants_reply and can_reply:
        return "reply"
    return "sink" if has_sink else "dead-letter"


def prefers_reply(prefer_header: str | None) -> bool:
    """RFC 7240 `Prefer: reply`, as Knative's dispatcher sends it to subscribers."""
    if not prefer_header:
        return False
    return any(
        item.split(";")[0].split("=")[0].strip().lower() == "reply"
        for item in prefer_header.split(",")
    )
