"""The Locust load test runs: a short headless run against a real `aggregator serve` whose flow
delivers to the load-test receiver (loadtests/sink.py under uvicorn), which then holds
end-to-end latency figures. Nothing here asserts on time."""

import csv
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from aggregator.embedded_redis import free_port
from tests.conftest import Serve
from tests.support.sink import wait_until

ROOT = Path(__file__).parent.parent


def _stats(url: str) -> dict[str, Any] | None:
    try:
        stats: dict[str, Any] = httpx.get(f"{url}/stats", timeout=1).json()
    except httpx.TransportError:
        return None
    return stats


@pytest.fixture
def receiver() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "loadtests.sink:app", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _stats(url))
        yield url
    finally:
        process.terminate()
        process.wait(10)


def test_locust_run(serve: Serve, redis_url: str, receiver: str, tmp_path: Path) -> None:
    flows = tmp_path / "flows.yaml"
    flows.write_text(yaml.safe_dump(
        {"flows": [{"name": "bench", "expected_branches": 4, "sink": f"{receiver}/"}]}
    ))  # fmt: skip
    aggregator = serve(AGGREGATOR_REDIS_URL=redis_url, AGGREGATOR_FLOWS_FILE=str(flows),
                       AGGREGATOR_LOG_LEVEL="warning")  # fmt: skip
    aggregator.wait_ready()

    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--headless",
         "-u", "4", "-r", "4", "-t", "5s", "--host", aggregator.base_url,
         "--receiver", receiver, "--duplicate-rate", "0.2", "--arrival-spread", "0.05",
         "--csv", str(tmp_path / "locust"), "--only-summary"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    with (tmp_path / "locust_stats.csv").open() as stats_file:
        rows = {row["Name"]: row for row in csv.DictReader(stats_file)}
    assert int(rows["Aggregated"]["Request Count"]) > 0, output
    assert rows["Aggregated"]["Failure Count"] == "0", output
    assert int(rows["/flows/[flow]/branches/[branch] (duplicate)"]["Request Count"]) > 0
    assert "End-to-end, run start to aggregated event at the receiver" in output
    # The locustfile read the receiver once releases stopped arriving: nothing to wait for.
    e2e = httpx.get(f"{receiver}/stats").json()["e2e"]
    assert e2e["count"] > 0
    assert None not in (e2e["p50"], e2e["p95"], e2e["p99"])
