"""A CloudEvent as the aggregator keeps it: context attributes plus data in one of two forms.

`data_json` is the JSON text of the data (JSON content types, or a structured event's `data`
member); `data_binary` is anything else, kept byte-exact. At most one of them is set.
"""

from dataclasses import dataclass, field
from typing import Any

import orjson

AttributeValue = str | int | bool
REQUIRED = ("id", "source", "type")
_UNPARSED = object()


def is_json_media_type(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media = content_type.partition(";")[0].strip().lower()
    return media in ("application/json", "text/json") or media.endswith("+json")


@dataclass(slots=True)
class CloudEvent:
    attributes: dict[str, AttributeValue]
    data_json: bytes | None = None
    data_binary: bytes | None = None
    _value: Any = field(default=_UNPARSED, repr=False)

    @property
    def id(self) -> str:
        return str(self.attributes["id"])

    @property
    def source(self) -> str:
        return str(self.attributes["source"])

    @property
    def data_size(self) -> int:
        return len(self.data_json or self.data_binary or b"")

    def data_value(self) -> Any:
        """The data as a Python value, for JSON data; None otherwise."""
        if self._value is _UNPARSED:
            self._value = None if self.data_json is None else orjson.loads(self.data_json)
        return self._value
