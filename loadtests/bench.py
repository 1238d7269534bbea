"""The loopback benchmark: the service against an HTTP floor and a naive in-memory aggregator,
side by side in one run, driven by wrk on pinned CPUs.

    .venv/bin/python -m loadtests.bench                      # (a)-(d) and more, 3 rounds of 10 s
    .venv/bin/python -m loadtests.bench --pending 0,10000,100000,1000000 --only sink
    .venv/bin/python -m loadtests.bench --workers 2 --only sink

Targets: (a) `floor` a bare Starlette endpoint that reads the body and answers 202; (b)
`naive` the in-memory toy (loadtests/naive.py), and `express` the same toy as people write
it in Express (loadtests/express/toy.js); (c) `sink` the service releasing to a local sink;
(d) `reply` the service answering the completing request with the aggregated event; and, to
explain the distance between them, `durable`: the floor plus one Redis script call
per request (loadtests/floor.py). Each serves on the server CPUs alone (uvloop, httptools, no
access log, like `aggregator serve`); Redis, the sink and wrk share the other CPUs. Rounds
interleave the targets; the report gives the median of rounds and every figure as a ratio to
(a) of the same run.
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from aggregator.flows import AggregateFlow
from loadtests.machine import Machine, cpu_seconds, pinned
from loadtests.preload import preload

HERE = Path(__file__).parent
FLOW = {"name": "bench", "expected_branches": 4, "timeout": "1h"}


@dataclass
class Figures:
    target: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    releases_per_s: float | None
    errors: int
    percentiles_ms: dict[float, float]
    server_cores: float  # CPU the server under test used, in cores: its share of the machine


def get_json(url: str) -> dict[str, object]:
    return dict(httpx.get(url, timeout=10).json())


def service_releases(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("aggregator_releases_total{")
    )


@dataclass
class Run:
    requests_per_s: float
    requests: int
    errors: int  # socket errors and non-2xx answers
    percentiles_ms: dict[float, float]  # from branches.lua's done()


def parse_wrk(output: str) -> Run:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if rate is None or total is None:
        raise ValueError(f"unexpected wrk output:\n{output}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors += int(non_2xx.group(1)) if non_2xx else 0
    percentiles = {
        float(p): int(us) / 1000 for p, us in re.findall(r"^percentile (\S+) (\d+)$", output, re.M)
    }
    return Run(float(rate.group(1)), int(total.group(1)), errors, percentiles)


def wrk(
    cpus: set[int], base: str, seconds: int, connections: int, run: str, branches: int, payload: int
) -> tuple[float, float, float, int, int]:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(HERE / "branches.lua"),
        base,
    ]
    env = {
        **os.environ,
        "BENCH_RUN": run,
        "BENCH_BRANCHES": str(branches),
        "BENCH_PAYLOAD": str(payload),
    }
    done = subprocess.run(
        pinned(cpus, command), env=env, capture_output=True, text=True, check=True
    )
    return parse_wrk(done.stdout)


class Bench:
    def __init__(self, args: argparse.Namespace, machine: Machine) -> None:
        self.args = args
        self.machine = machine
        self.runs = 0

    def measure(self, target: str, base: str, releases: Callable[[], float] | None) -> Figures:
        args = self.args
        self.runs += 1
        run = f"r{os.getpid()}x{self.runs}"
        if args.warmup:
            wrk(
                self.machine.helper_cpus,
                base,
                args.warmup,
                args.connections,
                run + "w",
                args.branches,
                args.payload,
            )
        before = releases() if releases else 0.0
        port = int(base.rpartition(":")[2])
        cpu_before, started = cpu_seconds(port), time.monotonic()
        done = wrk(
            self.machine.helper_cpus,
            base,
            args.duration,
            args.connections,
            run,
            args.branches,
            args.payload,
        )
        cores = (cpu_seconds(port) - cpu_before) / (time.monotonic() - started)
        released = (releases() - before) / args.duration if releases else None
        return Figures(
            target,
            done.requests_per_s,
            done.percentiles_ms[50.0],
            done.percentiles_ms[99.0],
            released,
            done.errors,
            done.percentiles_ms,
            cores,
        )

    def service(self, delivery: str, sink: str) -> AbstractContextManager[str]:
        """The service with the bench flow; in reply mode the sink only takes timeouts."""
        flow = {**FLOW, "expected_branches": self.args.branches, "delivery": delivery}
        return self.machine.service({**flow, "sink": f"{sink}/"})

    def one(self, target: str) -> Figures:
        if target in ("floor", "durable"):
            with self.machine.app(
                f"loadtests.floor:{'app' if target == 'floor' else 'durable'}"
            ) as base:
                return self.measure(target, base, None)
        if target in ("naive", "express"):
            toy = (
                self.machine.express()
                if target == "express"
                else self.machine.app("loadtests.naive:app")
            )
            with toy as base:
                return self.measure(
                    target, base, lambda: float(str(get_json(f"{base}/stats")["released"]))
                )
        with self.machine.sink() as sink, self.service(target, sink) as base:
            return self.measure(target, base, lambda: service_releases(base))

    def rounds(self, targets: list[str]) -> dict[str, list[Figures]]:
        found: dict[str, list[Figures]] = {t: [] for t in targets}
        for n in range(self.args.rounds):
            # Interleaved, and the order turns each round: no target always goes first.
            for target in targets[n % len(targets) :] + targets[: n % len(targets)]:
                found[target].append(self.one(target))
                print(f"  round {n + 1} {target}: {asdict(found[target][-1])}", file=sys.stderr)
        return found


def median(figures: list[Figures]) -> Figures:
    def mid(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None

    return Figures(
        figures[0].target,
        statistics.median(f.requests_per_s for f in figures),
        statistics.median(f.p50_ms for f in figures),
        statistics.median(f.p99_ms for f in figures),
        mid([f.releases_per_s for f in figures]),
        sum(f.errors for f in figures),
        {
            p: statistics.median(f.percentiles_ms[p] for f in figures)
            for p in figures[0].percentiles_ms
        },
        statistics.median(f.server_cores for f in figures),
    )


def report(results: dict[str, list[Figures]], baseline: str) -> list[dict[str, object]]:
    summary = {target: median(figures) for target, figures in results.items()}
    base = summary.get(baseline)
    rows = []
    print(
        "| target | requests/s | ratio | p50 ms | p99 ms | p99 ratio | releases/s | errors "
        "| server cores |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for target, figures in summary.items():
        ratio = figures.requests_per_s / base.requests_per_s if base else None
        p99_ratio = figures.p99_ms / base.p99_ms if base else None
        releases = "-" if figures.releases_per_s is None else f"{figures.releases_per_s:.0f}"
        print(
            f"| {target} | {figures.requests_per_s:.0f} | {fmt(ratio)} | {figures.p50_ms:.2f} "
            f"| {figures.p99_ms:.2f} | {fmt(p99_ratio)} | {releases} | {figures.errors} "
            f"| {figures.server_cores:.2f} |"
        )
        rows.append({**asdict(figures), "ratio": ratio, "p99_ratio": p99_ratio})
    return rows


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before each")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--branches", type=int, default=4)
    parser.add_argument("--payload", type=int, default=512, help="bytes of each branch body")
    parser.add_argument(
        "--only", default="floor,naive,express,sink,reply,durable", help="targets, comma list"
    )
    parser.add_argument("--workers", type=int, default=1, help="service worker processes")
    parser.add_argument("--server-cpus", type=int, default=1)
    parser.add_argument("--pending", default="0", help="pending aggregations before each set")
    parser.add_argument("--log-level", default="info", help="of the service")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("loadtests.bench needs wrk (Debian: apt-get install wrk)")
    targets = args.only.split(",")
    every: dict[str, object] = {"args": {k: str(v) for k, v in vars(args).items()}, "sets": []}
    with tempfile.TemporaryDirectory(prefix="aggregator-bench-") as folder:
        machine = Machine(
            Path(folder),
            server_cpus=args.server_cpus,
            workers=args.workers,
            log_level=args.log_level,
        )
        bench = Bench(args, machine)
        try:
            for pending in (int(p) for p in args.pending.split(",")):
                machine.client.flushall()
                if pending:
                    flow = AggregateFlow.model_validate(FLOW)
                    took = asyncio.run(preload(machine.url, flow, pending))
                    print(
                        f"preloaded {pending} pending aggregations in {took:.1f}s", file=sys.stderr
                    )
                where = (
                    f"server CPUs {sorted(machine.server_cpus)}, "
                    f"others {sorted(machine.helper_cpus)}"
                )
                print(f"\npending aggregations: {pending}, {where}, workers {args.workers}")
                rows = report(bench.rounds(targets), targets[0])
                every["sets"].append({"pending": pending, "rows": rows})  # type: ignore[attr-defined]
        finally:
            machine.stop()
    if args.json:
        args.json.write_text(json.dumps(every, indent=2))


if __name__ == "__main__":
    main()
