"""Flow definitions (DESIGN §7): what one fan-in or dedup filter does, fully validated."""

import re
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PlainValidator,
    Tag,
    WithJsonSchema,
    model_validator,
)

from aggregator.durations import format_duration, parse_duration
from aggregator.sources import Source, parse_source

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# A release carries every branch through one script call; this keeps it within Lua's limits.
MAX_BRANCHES = 1000


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError("a duration is a string such as 30s, 5m, 1h, 250ms or PT30S")


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be greater than zero")
    return value


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a DNS label (lower-case letters, digits and '-', "
            "at most 63 characters, starting and ending with a letter or digit)"
        )
    return value


def _comma_list(value: object) -> object:
    """Annotations and environment variables spell lists as `a,b,c`."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",")]
    return value


def _branch_names(names: tuple[str, ...]) -> tuple[str, ...]:
    if not names:
        raise ValueError("needs at least one branch name")
    if len(names) > MAX_BRANCHES:
        raise ValueError(f"at most {MAX_BRANCHES} branches")
    if any(not name for name in names):
        raise ValueError("branch names must not be empty")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"branch names repeat: {', '.join(duplicates)}")
    return names


def _source(value: object) -> Source:
    if isinstance(value, Source):
        return value
    if isinstance(value, str):
        return parse_source(value)
    raise ValueError("expected ce:<attribute> or data:<JSON pointer>")


def _branch_source(value: object) -> Literal["auto", "path"] | Source:
    if value == "auto":
        return "auto"
    if value == "path":
        return "path"
    if isinstance(value, str) and ":" not in value:
        raise ValueError(
            f"invalid branch source {value!r}: expected auto, path, ce:<attribute> "
            "or data:<JSON pointer>"
        )
    return _source(value)


def _source_list(value: object) -> tuple[Source, ...]:
    parts = _comma_list(value)
    if not isinstance(parts, list | tuple) or not parts:
        raise ValueError("expected a comma list of ce:<attribute> or data:<JSON pointer>")
    return tuple(_source(part) for part in parts)


def _url(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("expected an http(s) URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


_STRING_SCHEMA = WithJsonSchema({"type": "string"})

Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, return_type=str),
    _STRING_SCHEMA,
]
PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
FlowName = Annotated[str, AfterValidator(_dns_label)]
BranchNames = Annotated[
    tuple[str, ...], BeforeValidator(_comma_list), AfterValidator(_branch_names)
]
EventSource = Annotated[
    Source, PlainValidator(_source), PlainSerializer(str, return_type=str), _STRING_SCHEMA
]
BranchSource = Annotated[
    Literal["auto", "path"] | Source,
    PlainValidator(_branch_source),
    PlainSerializer(str, return_type=str),
    _STRING_SCHEMA,
]
EventSources = Annotated[
    tuple[Source, ...],
    PlainValidator(_source_list),
    PlainSerializer(lambda v: ",".join(map(str, v)), return_type=str),
    _STRING_SCHEMA,
]
HttpUrl = Annotated[str, PlainValidator(_url), _STRING_SCHEMA]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Output(_Strict):
    type: str | None = None
    source: str | None = None


class AggregateFlow(_Strict):
    name: FlowName
    kind: Literal["aggregate"] = "aggregate"
    branches: BranchNames | None = None
    expected_branches: Annotated[int, Field(ge=1, le=MAX_BRANCHES)] | None = None
    expected_from: EventSource | None = None
    correlation: EventSource = parse_source("ce:correlationid")
    branch: BranchSource = "auto"
    timeout: PositiveDuration = timedelta(seconds=60)
    idle_timeout: PositiveDuration | None = None
    on_timeout: Literal["emit-partial", "discard", "dead-letter"] = "emit-partial"
    duplicate_branch: Literal["first-wins", "last-wins"] = "first-wins"
    retention: PositiveDuration = timedelta(hours=1)
    result: Literal["map", "merge", "list"] = "map"
    delivery: Literal["auto", "reply", "sink"] = "auto"
    sink: HttpUrl | None = None
    dead_letter_sink: HttpUrl | None = None
    retry: Annotated[int, Field(ge=0)] = 5
    backoff_policy: Literal["linear", "exponential"] = "exponential"
    backoff_delay: Duration = timedelta(milliseconds=200)
    delivery_timeout: PositiveDuration = timedelta(seconds=10)
    retry_after_max: Duration = timedelta(seconds=30)
    format: Literal["binary", "json"] = "binary"
    output: Output = Output()

    @model_validator(mode="after")
    def _one_expectation(self) -> "AggregateFlow":
        if (self.branches is None) == (self.expected_branches is None):
            raise ValueError("set exactly one of `branches` and `expected_branches`")
        if self.expected_from is not None and self.branches is not None:
            raise ValueError("`expected_from` overrides a count: use it with `expected_branches`")
        return self

    @property
    def expected(self) -> int:
        return len(self.branches) if self.branches is not None else self.expected_branches or 0


class DedupFlow(_Strict):
    name: FlowName
    kind: Literal["dedup"]
    key: EventSources = (parse_source("ce:source"), parse_source("ce:id"))
    window: PositiveDuration = timedelta(minutes=10)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("kind", "aggregate"))
    return str(getattr(value, "kind", "aggregate"))


Flow = Annotated[
    Annotated[AggregateFlow, Tag("aggregate")] | Annotated[DedupFlow, Tag("dedup")],
    Discriminator(
        _kind,
        custom_error_type="invalid_kind",
        custom_error_message="`kind` must be aggregate or dedup",
    ),
]

# Every option a flow takes, in the flat spelling annotations and environment variables use.
FLOW_OPTIONS: frozenset[str] = frozenset(
    (set(AggregateFlow.model_fields) | set(DedupFlow.model_fields)) - {"name", "output"}
) | {f"output_{field}" for field in Output.model_fields}
