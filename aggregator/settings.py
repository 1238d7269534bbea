"""The one typed settings model (DESIGN §7): global options from `AGGREGATOR_*`, plus flows."""

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationInfo,
    field_serializer,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from aggregator.flows import AggregateFlow, DedupFlow, Duration, Flow, PositiveDuration

ENV_PREFIX = "AGGREGATOR_"
DEFAULT_ANNOTATIONS_FILE = Path("/etc/podinfo/annotations")


def _split(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _redis_urls(value: str) -> str:
    for url in value.split(","):
        parts = urlsplit(url.strip())
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError(f"expected redis:// or rediss:// URLs, got {mask_url(url)!r}")
    return value


def _host_ports(value: tuple[str, ...]) -> tuple[str, ...]:
    for item in value:
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{item!r} is not host:port")
    return value


def _ce_overrides(value: object) -> object:
    """K_CE_OVERRIDES as Knative sets it: `{"extensions": {"name": "value", ...}}`."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("K_CE_OVERRIDES is not JSON") from None
    if value is None:
        return {}
    if not isinstance(value, dict) or not isinstance(value.get("extensions", {}), dict):
        raise ValueError('expected {"extensions": {...}}')
    extensions = value.get("extensions", {})
    for name, ext in extensions.items():
        if not re.fullmatch(r"[a-z0-9]+", name) or not isinstance(ext, str | int):
            raise ValueError(f"extension {name!r}: names are lower-case letters and digits")
    return extensions


def _http_url(value: str) -> str:
    if urlsplit(value).scheme not in ("http", "https"):
        raise ValueError("expected an http(s) URL of an OTLP/HTTP traces endpoint")
    return value


def mask_url(url: str) -> str:
    """Hide the password of every URL in a comma list."""
    masked = []
    for one in url.split(","):
        parts = urlsplit(one.strip())
        if parts.password is not None:
            user = parts.username or ""
            host = parts.netloc.rpartition("@")[2]
            parts = parts._replace(netloc=f"{user}:***@{host}")
        masked.append(urlunsplit(parts))
    return ",".join(masked)


class SourceFiles(BaseSettings):
    """Where flows come from; read first, because the flows themselves depend on it."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    flows_file: Path | None = None
    annotations_file: Path = DEFAULT_ANNOTATIONS_FILE


class Settings(SourceFiles):
    redis_url: Annotated[str, AfterValidator(_redis_urls)] | None = None
    redis_mode: Literal["standalone", "cluster", "sentinel"] = "standalone"
    redis_sentinels: Annotated[
        tuple[str, ...], NoDecode, BeforeValidator(_split), AfterValidator(_host_ports)
    ] = ()
    redis_sentinel_master: str = "mymaster"
    max_event_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024
    max_pending: Annotated[int, Field(gt=0)] = 1_000_000
    admin_token: SecretStr | None = None
    admin_open: bool = False
    log_level: Annotated[
        Literal["debug", "info", "warning", "error"], BeforeValidator(lambda v: str(v).lower())
    ] = "info"
    log_format: Literal["json", "console"] = "json"
    shards: Annotated[int, Field(ge=1, le=1024)] = 16
    otlp_endpoint: Annotated[str, AfterValidator(_http_url)] | None = None
    sweep_interval: PositiveDuration = timedelta(milliseconds=250)
    sweep_batch: Annotated[int, Field(ge=1, le=1000)] = 200
    outbox_visibility_timeout: PositiveDuration = timedelta(seconds=30)
    # Deliveries under way per replica. httpx's pool slows down as connections grow (see
    # docs/benchmarks.md); a few replicas with a few connections each beat one with many.
    dispatch_concurrency: Annotated[int, Field(ge=1, le=256)] = 8
    redis_max_connections: Annotated[int, Field(ge=2)] = 64
    # How long a request waits for Redis before it answers 503.
    redis_timeout: PositiveDuration = timedelta(seconds=2)
    # Replicas that must hold an ingested event before it is acknowledged (Redis WAIT), so
    # that a failover cannot lose it; 0 acknowledges what the master alone has.
    redis_min_replicas: Annotated[int, Field(ge=0)] = 0
    dead_letter_max: Annotated[int, Field(ge=1)] = 10_000
    dead_letter_retention: PositiveDuration = timedelta(days=7)
    shutdown_timeout: Duration = timedelta(seconds=20)
    k_sink: Annotated[str | None, Field(validation_alias="K_SINK")] = None
    k_ce_overrides: Annotated[dict[str, str | int], NoDecode, BeforeValidator(_ce_overrides)] = (
        Field(default_factory=dict, validation_alias="K_CE_OVERRIDES")
    )
    flows: tuple[Flow, ...] = ()

    @field_validator("redis_min_replicas")
    @classmethod
    def _replicas_need_one_master(cls, value: int, info: ValidationInfo) -> int:
        if value and info.data.get("redis_mode") == "cluster":
            raise ValueError(
                "not supported in cluster mode: WAIT must follow the write on the connection "
                "to the node that owns the key"
            )
        return value

    @field_serializer("redis_url")
    def _mask_redis_url(self, value: str | None) -> str | None:
        return None if value is None else mask_url(value)

    def flow(self, name: str) -> AggregateFlow | DedupFlow | None:
        return next((flow for flow in self.flows if flow.name == name), None)

    def sink_for(self, flow: AggregateFlow) -> str | None:
        return flow.sink or self.k_sink

    @property
    def max_pending_per_shard(self) -> int:
        """One script call sees one shard, so `max_pending` is enforced per shard: the total
        stays within it (but for the floor of one per shard)."""
        return max(1, self.max_pending // self.shards)
