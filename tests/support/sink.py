"""A real HTTP sink on loopback: records what is POSTed to it and answers from a script."""

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from aggregator.cloudevent import CloudEvent
from aggregator.codec import decode

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.02) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)


async def eventually(check: Callable[[], T], within: float = 10.0, interval: float = 0.02) -> T:
    """wait_until for async tests: polls without blocking the event loop."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s (last value: {value!r})")
        await asyncio.sleep(interval)


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic()
    path: str
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def event(self) -> CloudEvent:
        [event], _ = decode(self.headers, self.body)
        return event


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0  # a slow sink: seconds before it answers


class Sink:
    def __init__(self, answers: list[Answer] | None = None, default: Answer | None = None) -> None:
        self.answers = list(answers or [])
        self.default = default or Answer()
        self.received: list[Received] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = [
                    (k.lower().encode(), v.encode("latin-1")) for k, v in self.headers.items()
                ]
                with sink._lock:
                    sink.received.append(Received(time.monotonic(), self.path, headers, body))
                    answer = sink.answers.pop(0) if sink.answers else sink.default
                if answer.delay:
                    time.sleep(answer.delay)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A slow answer must not hold up stop().
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sink"
        # A short poll interval keeps stop() quick (shutdown waits for the next poll).
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def events(self) -> list[CloudEvent]:
        with self._lock:
            return [r.event() for r in self.received]

    def got(self, count: int) -> list[Received] | None:
        """What was received, once there are at least `count` requests."""
        with self._lock:
            return list(self.received) if len(self.received) >= count else None

    def start(self) -> "Sink":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def running_sink(*answers: Answer, default: Answer | None = None) -> Iterator[Sink]:
    sink = Sink(list(answers), default).start()
    try:
        yield sink
    finally:
        sink.stop()
