"""structlog set-up: JSON lines (orjson) in production, a readable console format on request.

The standard library's loggers (uvicorn's among them) go through the same processors, so
every line the process writes has one shape.
"""

import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
import structlog
from structlog.typing import EventDict, Processor


def _dumps(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _add_pid(logger: Any, method: str, event: EventDict) -> EventDict:
    # Which worker process wrote the line, with `aggregator serve --workers N`.
    event["pid"] = os.getpid()
    return event


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_pid,
    ]
    renderer: Processor = (
        structlog.dev.ConsoleRenderer()
        if fmt == "console"
        else structlog.processors.JSONRenderer(serializer=_dumps)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Calls below the level are no-ops of the class itself: a debug line on the ingest
        # path costs nothing unless debug is on.
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger


class Outage:
    """A warning about a condition that lasts, such as Redis being unreachable, from a loop
    that retries every tick: logged when it starts, then at most once per `every` seconds
    with how many failures it stands for, and once more, at info, when it is over. (A line
    per tick was 8 lines a second per replica while Redis was down.)"""

    def __init__(
        self,
        log: structlog.typing.FilteringBoundLogger,
        event: str,
        over: str,
        every: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.event = event
        self.over_event = over
        self.every = every
        self.clock = clock
        self._logged_at: float | None = None  # None: no outage
        self._failures = 0  # since the last line

    def failed(self, **fields: Any) -> None:
        self._failures += 1
        now = self.clock()
        if self._logged_at is None or now - self._logged_at >= self.every:
            self.log.warning(self.event, failures=self._failures, **fields)
            self._logged_at, self._failures = now, 0

    def over(self) -> None:
        if self._logged_at is not None:
            self.log.info(self.over_event)
            self._logged_at, self._failures = None, 0
