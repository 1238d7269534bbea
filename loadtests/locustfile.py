"""Locust load test for a deployed aggregator: each task is one Knative Parallel run.

    locust -f loadtests/locustfile.py --headless -u 50 -r 10 -t 5m \
        --host http://aggregator.default.example.com \
        --branches 4 --payload-bytes 512 --duplicate-rate 0.05 --arrival-spread 0.5 \
        --flow bench --receiver http://receiver.default.example.com

A run posts the replies of branches b0..b<N-1> for one fresh correlation id to
`/flows/<flow>/branches/<branch>` in CloudEvents binary mode, at random moments within
`--arrival-spread` seconds; a `--duplicate-rate` fraction of them comes twice, as Knative
redelivers (same ce-source and ce-id). The flow must expect N branches
(`expected_branches: N`), take the correlation from `ce-correlationid` (the default) and
deliver to the receiver, loadtests/sink.py.

End-to-end latency: the correlation id, `run-<hex>-<epoch ms>`, carries the run's start; the
receiver takes receipt time minus that for every aggregated event (ce-subject is the
correlation id). With `--receiver` (its base URL), the receiver's figures are reset when the
test starts and printed when it stops, once releases stopped arriving. They include the
arrival spread, and need the load generator's and the receiver's clocks in step (NTP).
Runs cut short at the stop are released by the flow's timeout later, outside the figures;
`--stop-timeout` lets them finish instead.

Every option also reads an environment variable: LOCUST_BRANCHES, LOCUST_PAYLOAD_BYTES,
LOCUST_DUPLICATE_RATE, LOCUST_ARRIVAL_SPREAD, LOCUST_FLOW, LOCUST_RECEIVER.
"""

# The PRNG only shapes the load; nothing here is a secret.
# ruff: noqa: S311

import json
import logging
import random
import secrets
import time
from typing import Any

import gevent
import requests
from locust import events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.runners import WorkerRunner

# Locust prints its own summary through this logger: plain lines, also shown in the web UI.
report = logging.getLogger("locust.stats_logger")

# Releases of the last runs are still on their way when the test stops: the figures are read
# once none arrived for QUIET seconds, or after SETTLE_LIMIT seconds.
QUIET = 1.0
SETTLE_LIMIT = 30.0


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument(
        "--branches",
        type=int,
        default=4,
        env_var="LOCUST_BRANCHES",
        help="branch replies per run, to branches b0..b<N-1>",
    )
    parser.add_argument(
        "--payload-bytes",
        type=int,
        default=512,
        env_var="LOCUST_PAYLOAD_BYTES",
        help="size of each branch event's JSON body",
    )
    parser.add_argument(
        "--duplicate-rate",
        type=float,
        default=0.0,
        env_var="LOCUST_DUPLICATE_RATE",
        help="fraction of branch events sent twice",
    )
    parser.add_argument(
        "--arrival-spread",
        type=float,
        default=0.0,
        env_var="LOCUST_ARRIVAL_SPREAD",
        help="seconds over which one run's events arrive, at random",
    )
    parser.add_argument("--flow", default="bench", env_var="LOCUST_FLOW", help="flow name")
    parser.add_argument(
        "--receiver",
        default="",
        env_var="LOCUST_RECEIVER",
        help="base URL of the flow's sink, loadtests/sink.py",
    )


class ParallelBranches(FastHttpUser):
    """The branches of one Parallel run after another, each run a fresh correlation id."""

    @task
    def parallel_run(self) -> None:
        options = self.environment.parsed_options
        correlation = f"run-{secrets.token_hex(8)}-{time.time_ns() // 1_000_000}"
        started = time.monotonic()
        arrivals: list[tuple[float, str, bool]] = []
        for n in range(options.branches):
            at = random.uniform(0, options.arrival_spread)
            arrivals.append((at, f"b{n}", False))
            if random.random() < options.duplicate_rate:
                arrivals.append((random.uniform(at, options.arrival_spread), f"b{n}", True))
        for at, branch, duplicate in sorted(arrivals):
            gevent.sleep(max(0.0, started + at - time.monotonic()))
            self._send(correlation, branch, duplicate)

    def _send(self, correlation: str, branch: str, duplicate: bool) -> None:
        options = self.environment.parsed_options
        fields = {"correlationId": correlation, "branch": branch}
        unpadded = len(json.dumps({**fields, "pad": ""}))
        body = json.dumps({**fields, "pad": "x" * max(0, options.payload_bytes - unpadded)})
        headers = {
            "ce-specversion": "1.0",
            "ce-id": f"{correlation}-{branch}",
            "ce-source": f"/loadtest/{branch}",
            "ce-type": "com.example.loadtest.result",
            "ce-correlationid": correlation,
            "content-type": "application/json",
        }
        name = "/flows/[flow]/branches/[branch]" + (" (duplicate)" if duplicate else "")
        with self.client.post(
            f"/flows/{options.flow}/branches/{branch}",
            data=body,
            headers=headers,
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code not in (200, 202):
                response.failure(f"{response.status_code}: {(response.text or '')[:200]}")


def _receiver(environment: Environment) -> str:
    """The receiver's base URL, on the process that reports (not on a distributed worker)."""
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        return ""
    receiver: str = environment.parsed_options.receiver
    return receiver.rstrip("/")


def _e2e(receiver: str) -> dict[str, Any]:
    response = requests.get(f"{receiver}/stats", timeout=10)
    response.raise_for_status()
    e2e: dict[str, Any] = response.json()["e2e"]
    return e2e


@events.test_start.add_listener
def _reset_receiver(environment: Environment, **_: Any) -> None:
    if receiver := _receiver(environment):
        requests.delete(f"{receiver}/stats", timeout=10).raise_for_status()


@events.test_stop.add_listener
def _report_receiver(environment: Environment, **_: Any) -> None:
    if not (receiver := _receiver(environment)):
        return
    deadline = time.monotonic() + SETTLE_LIMIT
    e2e = _e2e(receiver)
    while time.monotonic() < deadline:
        gevent.sleep(QUIET)
        before, e2e = e2e, _e2e(receiver)
        if e2e["count"] == before["count"]:
            break
    if not e2e["count"]:
        report.error("End-to-end: the receiver %s got no aggregated event of this test", receiver)
        # A load test that aggregated nothing must not pass as a success.
        environment.process_exit_code = 1
        return
    p50, p95, p99 = (f"{e2e[p] * 1000:.0f} ms" for p in ("p50", "p95", "p99"))
    report.info(
        "End-to-end, run start to aggregated event at the receiver: "
        f"{e2e['count']} aggregated events, p50 {p50}, p95 {p95}, p99 {p99}"
    )
    report.info("")
