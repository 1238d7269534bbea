"""Redis trouble while the service runs: a restart (append-only, fsync always) answers 503 +
Retry-After while Redis is down, recovers without restarting the service and loses nothing
it acknowledged; a Redis that hangs makes requests fail fast with 503 instead of piling up."""

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import redis
import yaml

from aggregator.embedded_redis import RedisServer
from tests.conftest import Serve
from tests.support.app import binary
from tests.support.sink import running_sink, wait_until
from tests.test_observability import value

FLOW = {"name": "pair", "expected_branches": 2, "timeout": "1h"}


def post(base: str, correlation: str, source: str) -> httpx.Response:
    return httpx.post(
        f"{base}/flows/pair", **binary({}, correlationid=correlation, source=source), timeout=10
    )


def test_redis_restart(serve: Serve, tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", "--appendfsync", "always")
    server.start()
    try:
        with running_sink() as sink:
            flows = tmp_path / "flows.yaml"
            flows.write_text(yaml.safe_dump({"flows": [{**FLOW, "sink": sink.url}]}))
            service = serve(AGGREGATOR_REDIS_URL=server.url, AGGREGATOR_FLOWS_FILE=str(flows),
                            AGGREGATOR_LOG_LEVEL="warning")  # fmt: skip
            service.wait_ready()
            accepted = [
                c
                for c in (f"c{n}" for n in range(20))
                if post(service.base_url, c, "/a").status_code == 202
            ]
            assert len(accepted) == 20
            server.stop()
            down = post(service.base_url, "c0", "/b")
            assert down.status_code == 503
            assert down.headers["retry-after"] == "1"
            assert httpx.get(f"{service.base_url}/readyz", timeout=10).status_code == 503

            def failures(operation: str) -> float:
                text = httpx.get(f"{service.base_url}/metrics", timeout=10).text
                return value(text, "aggregator_redis_errors_total", operation=operation)

            # Long enough for the sweeper and the dispatcher to fail a few ticks each.
            wait_until(lambda: failures("sweep") >= 3 and failures("dispatch") >= 3)
            server.start(same_port=True)
            # The service finds Redis again by itself; the first half is still there.
            wait_until(
                lambda: httpx.get(f"{service.base_url}/readyz", timeout=10).status_code == 200,
                timeout=20,
            )
            outcomes = [post(service.base_url, c, "/b") for c in accepted]
            assert {r.status_code for r in outcomes} == {202}
            assert {r.headers["aggregation-outcome"] for r in outcomes} == {"complete"}
            received = wait_until(lambda: sink.got(len(accepted)), timeout=20)
        assert sorted(str(r.event().attributes["subject"]) for r in received) == sorted(accepted)
        # The sweeper and the dispatcher failed every tick; the outage is one line each.
        for event in ("sweep failed", "outbox unreachable"):
            assert sum(event in line for line in service.lines) <= 1, service.output()
    finally:
        server.stop()


def test_a_hanging_redis_fails_fast(serve: Serve, tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", "--enable-debug-command", "yes")
    server.start()
    try:
        flows = tmp_path / "flows.yaml"
        flows.write_text(yaml.safe_dump({"flows": [FLOW]}))
        service = serve(AGGREGATOR_REDIS_URL=server.url, AGGREGATOR_FLOWS_FILE=str(flows),
                        AGGREGATOR_LOG_LEVEL="warning", AGGREGATOR_REDIS_TIMEOUT="1s")  # fmt: skip
        service.wait_ready()
        assert post(service.base_url, "warm", "/a").status_code == 202
        asleep = threading.Event()
        awake = threading.Event()

        def hang() -> None:
            client = redis.Redis(port=server.port, socket_timeout=30)
            asleep.set()
            client.execute_command("DEBUG", "SLEEP", "6")  # Redis answers nobody meanwhile
            awake.set()
            client.close()

        threading.Thread(target=hang, daemon=True).start()
        asleep.wait(5)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda n: post(service.base_url, f"slow{n}", "/a"), range(8)))
        # All were turned away before Redis woke up: none waited it out.
        assert not awake.is_set()
        assert [a.status_code for a in answers] == [503] * 8
        assert all(a.headers["retry-after"] == "1" for a in answers)
        awake.wait(10)
        assert post(service.base_url, "after", "/a").status_code == 202
    finally:
        server.stop()
