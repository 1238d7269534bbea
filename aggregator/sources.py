"""Where a value comes from in an event: `ce:<attribute>` or `data:<JSON pointer>`.

Used for correlation ids, branch ids, the per-correlation expected count and dedup keys.
"""

import re
from dataclasses import dataclass
from typing import Any, Literal

from aggregator.cloudevent import CloudEvent

# CloudEvents 1.0: attribute names are lower-case ASCII letters and digits.
_ATTRIBUTE = re.compile(r"[a-z0-9]{1,64}")
# RFC 6901: `~` only as `~0` or `~1`.
_POINTER = re.compile(r"(/([^~/]|~[01])*)+")
# RFC 6901 array index: no leading zeros.
_INDEX = re.compile(r"0|[1-9][0-9]*")
_ABSENT = object()


@dataclass(frozen=True, slots=True)
class Source:
    kind: Literal["ce", "data"]
    attribute: str = ""
    pointer: tuple[str, ...] = ()
    text: str = ""

    def __str__(self) -> str:
        return self.text


def parse_source(text: str) -> Source:
    """Parse `ce:<attr>` or `data:<pointer>`; raise ValueError naming what is wrong."""
    kind, sep, rest = text.partition(":")
    if sep and kind == "ce":
        if not _ATTRIBUTE.fullmatch(rest):
            raise ValueError(
                f"invalid source {text!r}: a CloudEvents attribute name is lower-case "
                "letters and digits, e.g. ce:correlationid"
            )
        return Source("ce", attribute=rest, text=text)
    if sep and kind == "data":
        if not _POINTER.fullmatch(rest):
            raise ValueError(
                f"invalid source {text!r}: data: takes an RFC 6901 JSON pointer such as "
                "/documentId ('~' only as ~0 or ~1)"
            )
        tokens = tuple(t.replace("~1", "/").replace("~0", "~") for t in rest.split("/")[1:])
        return Source("data", pointer=tokens, text=text)
    raise ValueError(f"invalid source {text!r}: expected ce:<attribute> or data:<JSON pointer>")


def value_in(source: Source, event: CloudEvent) -> str | None:
    """The source's value in the event as a string; None when absent or not a scalar."""
    if source.kind == "ce":
        attribute = event.attributes.get(source.attribute)
        if isinstance(attribute, bool):
            return "true" if attribute else "false"
        return None if attribute is None else str(attribute)
    value: Any = event.data_value()
    for token in source.pointer:
        if isinstance(value, dict):
            value = value.get(token, _ABSENT)
        elif isinstance(value, list) and _INDEX.fullmatch(token) and int(token) < len(value):
            value = value[int(token)]
        else:
            return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)
