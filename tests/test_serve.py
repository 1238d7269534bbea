"""`aggregator serve` as a real process: health, readiness, embedded Redis, shutdown."""

import json
import os
import socket
import sys
from pathlib import Path

import httpx
import pytest

from aggregator.cli import _parser
from aggregator.embedded_redis import RedisServer
from loadtests.machine import ESTABLISHED, LISTEN, sockets_held, tcp_sockets
from tests.conftest import Serve
from tests.support.sink import wait_until

DEMO_FLOWS = str(Path(__file__).parent.parent / "examples" / "document-analysis.yaml")


def port_open(url: str) -> bool:
    host, port = url.removeprefix("redis://").split("/")[0].split(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) == 0


def test_health_and_readiness(serve: Serve, redis_url: str) -> None:
    service = serve(AGGREGATOR_REDIS_URL=redis_url, AGGREGATOR_FLOWS_FILE=DEMO_FLOWS)
    service.wait_ready()
    assert httpx.get(f"{service.base_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{service.base_url}/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ok"
    assert "'document-analysis' has nowhere to deliver" in body["warnings"][0]
    assert service.stop() == 0
    assert "Application shutdown complete." in service.output()


def test_no_warning_when_a_sink_is_set(serve: Serve, redis_url: str) -> None:
    service = serve(
        AGGREGATOR_REDIS_URL=redis_url,
        AGGREGATOR_FLOWS_FILE=DEMO_FLOWS,
        K_SINK="http://127.0.0.1:9/sink",
    )
    service.wait_ready()
    assert httpx.get(f"{service.base_url}/readyz").json() == {"status": "ok", "warnings": []}


def test_not_ready_while_redis_is_down(serve: Serve, tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as redis_server:
        service = serve(AGGREGATOR_REDIS_URL=redis_server.url)
        service.wait_ready()
    down = httpx.get(f"{service.base_url}/readyz", timeout=10)
    assert down.status_code == 503
    assert down.headers["retry-after"] == "1"
    assert down.json()["status"] == "redis unavailable"
    assert httpx.get(f"{service.base_url}/healthz").status_code == 200


def test_embedded_redis_without_url(serve: Serve, tmp_path: Path) -> None:
    service = serve(AGGREGATOR_FLOWS_FILE=DEMO_FLOWS)
    service.wait_ready()
    first = json.loads(service.lines[0])
    assert first["event"].startswith("embedded redis started")
    redis_url = first["redis_url"]
    assert redis_url.startswith("redis://127.0.0.1:")
    assert port_open(redis_url)
    assert (tmp_path / ".aggregator" / "redis" / "appendonlydir").is_dir()
    service.stop()
    assert "embedded redis stopped" in service.output()
    assert not port_open(redis_url)


def test_missing_redis_server_binary_is_one_clear_error(serve: Serve) -> None:
    service = serve(PATH=os.path.dirname(sys.executable))
    assert service.process.wait(30) == 2
    service.stop()
    assert service.lines == [
        "error: redis-server was not found on PATH: install it (Debian/Ubuntu: "
        "apt-get install redis-server) or set AGGREGATOR_REDIS_URL to an existing Redis"
    ]


def test_invalid_configuration_stops_start_up(serve: Serve, redis_url: str) -> None:
    service = serve(AGGREGATOR_REDIS_URL=redis_url, AGGREGATOR_EXPECTED_BRANCHES="many")
    assert service.process.wait(30) == 2
    service.stop()
    assert service.lines == [
        "configuration error: environment AGGREGATOR_EXPECTED_BRANCHES: Input should be a "
        "valid integer, unable to parse string as an integer"
    ]


def test_several_workers(serve: Serve, redis_url: str) -> None:
    service = serve("--workers", "2", AGGREGATOR_REDIS_URL=redis_url)
    service.wait_ready()
    for _ in range(10):
        assert httpx.get(f"{service.base_url}/readyz").status_code == 200
    service.wait_for_line(lambda line: "Started parent process" in line)


def test_each_worker_listens_for_itself_and_gets_its_share(serve: Serve, redis_url: str) -> None:
    """With one shared socket a worker could take every connection (docs/benchmarks.md)."""
    service = serve("--workers", "2", AGGREGATOR_REDIS_URL=redis_url)
    service.wait_ready()
    children = Path(f"/proc/{service.process.pid}/task/{service.process.pid}/children")
    pids = [int(pid) for pid in children.read_text().split()]

    def listening() -> list[int]:
        sockets = tcp_sockets(service.port, LISTEN)
        return [pid for pid in pids if sockets_held(pid) & sockets]

    assert len(wait_until(lambda: len(listening()) == 2 and listening())) == 2
    assert not sockets_held(service.process.pid) & tcp_sockets(service.port, LISTEN)
    clients = [socket.create_connection(("127.0.0.1", service.port)) for _ in range(32)]
    try:

        def shares() -> list[int]:
            accepted = tcp_sockets(service.port, ESTABLISHED)
            return [len(sockets_held(pid) & accepted) for pid in listening()]

        found = wait_until(lambda: sum(shares()) == 32 and shares())
        # The kernel hashes each connection to a socket: fewer than 4 of 32 on one of two
        # is a chance of about 3 in a million.
        assert min(found) >= 4, found
    finally:
        for client in clients:
            client.close()


def test_console_log_format(serve: Serve, redis_url: str) -> None:
    service = serve(AGGREGATOR_REDIS_URL=redis_url, AGGREGATOR_LOG_FORMAT="console")
    service.wait_ready()
    line = service.wait_for_line(lambda line: "Application startup complete" in line)
    assert not line.startswith("{")


def test_port_defaults_to_the_port_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9123")
    assert _parser().parse_args(["serve"]).port == 9123
    monkeypatch.delenv("PORT")
    assert _parser().parse_args(["serve"]).port == 8080
