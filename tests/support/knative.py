"""A small, faithful model of Knative's Parallel, to drive the aggregator end to end.

- Branch services are real HTTP servers: they take a CloudEvent and answer with a result
  event (binary mode), or answer nothing (202) when told to lose a document.
- The channel dispatcher fans each event out to every branch's subscriber with
  `Prefer: reply`, forwards a subscriber's reply event to the branch's reply destination
  without it (and throws away what the reply destination answers), and retries as a
  DeliverySpec says: transport errors, 5xx, 404, 408, 409 and 429.
- Faults: duplicate deliveries, random delays (so reordering), and lost branches.
"""

import asyncio
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson

from aggregator.codec import decode, encode_binary

RETRYABLE = {404, 408, 409, 429}


class BranchService:
    """A Parallel branch's subscriber: answers each document with its own result event."""

    def __init__(self, name: str, loses: Callable[[str], bool] = lambda doc: False) -> None:
        self.name = name
        self.calls = 0
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = [
                    (k.lower().encode(), v.encode("latin-1")) for k, v in self.headers.items()
                ]
                [event], _ = decode(headers, body)
                service.calls += 1
                document = event.data_value()["documentId"]
                if service.loses(document):
                    self.send_response(202)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                result = {"documentId": document, "branch": service.name, "ok": True}
                reply_headers, content = encode_binary(
                    {"id": f"{service.name}/{document}", "source": f"/branches/{service.name}",
                     "type": "com.example.analysis.result", "datacontenttype": "application/json"},
                    orjson.dumps(result),
                )  # fmt: skip
                self.send_response(200)
                for name, value in reply_headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.loses = loses
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Branch:
    subscriber: str
    reply: str | None  # None: the subscriber's reply goes nowhere


@dataclass
class Faults:
    duplicate: float = 0.0  # chance that a delivery is made twice
    max_delay: float = 0.0  # seconds; random delays reorder deliveries
    retry: int = 5
    backoff: float = 0.02


class Parallel:
    """The channel dispatcher of one Parallel."""

    def __init__(self, branches: list[Branch], faults: Faults, seed: int = 7) -> None:
        self.branches = branches
        self.faults = faults
        self.random = random.Random(seed)
        self.deliveries = 0
        self.duplicates = 0

    async def _deliver(self, client: httpx.AsyncClient, url: str, headers: dict[str, str],
                       content: bytes, prefer_reply: bool) -> httpx.Response | None:  # fmt: skip
        """One delivery with the DeliverySpec's retries; the final response, or None."""
        if prefer_reply:
            headers = {**headers, "prefer": "reply"}
        for attempt in range(self.faults.retry + 1):
            await asyncio.sleep(self.random.uniform(0, self.faults.max_delay))
            self.deliveries += 1
            try:
                response = await client.post(url, headers=headers, content=content)
            except httpx.TransportError:
                response = None
            if response is not None and not (
                response.status_code >= 500 or response.status_code in RETRYABLE
            ):
                return response
            await asyncio.sleep(self.faults.backoff * 2**attempt)
        return None

    async def _branch(
        self, client: httpx.AsyncClient, branch: Branch, headers: dict[str, str], content: bytes
    ) -> None:
        copies = 2 if self.random.random() < self.faults.duplicate else 1
        self.duplicates += copies - 1
        for _ in range(copies):
            response = await self._deliver(
                client, branch.subscriber, headers, content, prefer_reply=True
            )
            if branch.reply is None or response is None or "ce-id" not in response.headers:
                continue
            reply_headers = {
                k: v
                for k, v in response.headers.items()
                if k.startswith("ce-") or k == "content-type"
            }
            forwards = 2 if self.random.random() < self.faults.duplicate else 1
            self.duplicates += forwards - 1
            for _ in range(forwards):
                # What a reply destination answers is thrown away, as Knative does.
                await self._deliver(
                    client, branch.reply, reply_headers, response.content, prefer_reply=False
                )

    async def send(self, client: httpx.AsyncClient, event_id: str, data: dict[str, Any]) -> None:
        headers, content = encode_binary(
            {"id": event_id, "source": "/uploads", "type": "com.example.document.uploaded",
             "datacontenttype": "application/json"},
            orjson.dumps(data),
        )  # fmt: skip
        await asyncio.gather(*(self._branch(client, b, headers, content) for b in self.branches))
