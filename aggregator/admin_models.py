"""The admin API's requests and answers (DESIGN §3.3): these models validate the query
parameters and are the source of the OpenAPI schemas."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_PAGE = 1000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PageQuery(_Model):
    limit: int = Field(100, ge=1, description="items per page; above 1000 is read as 1000")
    cursor: str | None = Field(None, description="the previous page's nextCursor")
    include: str | None = Field(None, pattern="^data$", description="`data` adds payloads")

    @field_validator("limit")
    @classmethod
    def _clamp(cls, value: int) -> int:
        return min(value, MAX_PAGE)


class AggregationQuery(PageQuery):
    flow: str | None = Field(None, min_length=1, description="only this flow")


class DetailQuery(_Model):
    include: str | None = Field(None, pattern="^data$", description="`data` adds payloads")


class AggregationSummary(_Model):
    flow: str
    correlationId: str
    expected: int
    received: list[str]
    missing: list[str] | None
    firstSeen: str = Field(description="RFC 3339")
    deadline: str = Field(description="RFC 3339")
    ageSeconds: float


class AggregationPage(_Model):
    items: list[AggregationSummary]
    nextCursor: str | None


class EventInfo(_Model):
    id: str
    source: str
    type: str
    time: str | None = None
    size: int = Field(description="bytes of the event's data")
    receivedAt: str = Field(description="RFC 3339")
    data: Any = None
    data_base64: str | None = None


class AggregationDetail(AggregationSummary):
    branches: dict[str, EventInfo]
    origin: EventInfo | None


class Released(_Model):
    flow: str
    correlationId: str
    status: str = Field(description="manual")


class DeadLetterItem(_Model):
    id: str
    flow: str
    correlationId: str
    reason: str
    attempts: int
    lastError: str | None
    createdAt: str = Field(description="RFC 3339")
    event: dict[str, Any] = Field(description="the event's attributes; data with include=data")


class DeadLetterPage(_Model):
    items: list[DeadLetterItem]
    nextCursor: str | None


class Redriven(_Model):
    id: str
    delivered: bool
    status: int | None = Field(description="the sink's answer")


class FlowList(_Model):
    flows: list[dict[str, Any]]


class Problem(_Model):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
