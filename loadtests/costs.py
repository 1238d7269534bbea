"""How the service's costs grow: Redis memory per pending aggregation, Redis commands per
ingested event, and how fast the sweeper releases a backlog that is all due at once.

    .venv/bin/python -m loadtests.costs [--json costs.json]
    .venv/bin/python -m loadtests.costs --aggregations 500 --duration 1 --backlog 500

Redis is private (no persistence) and shares the helper CPU with the sink and wrk; the
service serves on the server CPU alone, as in loadtests/bench.py.
"""

import argparse
import asyncio
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from aggregator.flows import AggregateFlow
from aggregator.keys import PREFIX, Keyspace
from aggregator.scripts import Scripts
from loadtests.bench import FLOW, get_json, wrk
from loadtests.machine import Machine
from loadtests.preload import preload

PAYLOAD = 512
BRANCHES = 4
SHARDS = 16  # the service's default, and preload's
KEYSPACE = Keyspace(SHARDS)
DEADLINES = [KEYSPACE.deadlines(shard) for shard in range(SHARDS)]
OUTBOXES = [KEYSPACE.outbox(shard) for shard in range(SHARDS)]
# The polls of this runner itself, not the service's (it sends XLEN only for /metrics).
OWN_COMMANDS = {"info", "xlen"}


def wait_until(done: Callable[[], bool], timeout: float) -> float:
    """Seconds until `done()`; polling every 10 ms is the clock of these measurements."""
    started = time.perf_counter()
    while not done():
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"not done within {timeout}s")
        time.sleep(0.01)
    return time.perf_counter() - started


def printable(field: bytes) -> str:
    """Event fields end in a binary digest."""
    return "e:" + field[2:].hex() if field.startswith(b"e:") else field.decode()


def memory(machine: Machine, count: int) -> dict[str, Any]:
    client = machine.client
    client.flushall()
    held = 4  # of 5 branches: every aggregation stays pending
    flow = AggregateFlow.model_validate({"name": "memory", "expected_branches": 5, "timeout": "1h"})
    clients = client.info("clients")["connected_clients"]
    before = client.info("memory")["used_memory"]
    asyncio.run(preload(machine.url, flow, count, branches=held, payload=PAYLOAD))
    # Preload's connections hold buffers until Redis has seen them close.
    wait_until(lambda: client.info("clients")["connected_clients"] <= clients, 10)
    per_aggregation = (client.info("memory")["used_memory"] - before) / count
    state = next(client.scan_iter(match=f"{PREFIX}:*:a:*", count=1000))
    hash_bytes = int(client.memory_usage(state, samples=0) or 0)
    fields = {printable(name): len(value) for name, value in sorted(client.hgetall(state).items())}
    payload = held * PAYLOAD
    return {
        "aggregations": count,
        "used_memory_per_aggregation": per_aggregation,
        "state_hash_memory_usage": hash_bytes,
        "state_hash_encoding": client.object("encoding", state).decode(),
        "payload_bytes": payload,
        "used_memory_ratio": per_aggregation / payload,
        "state_hash_ratio": hash_bytes / payload,
        "state_hash_fields": fields,
    }


def lua_callers(command: str) -> list[str]:
    """The Lua files that call `command`: Redis counts the commands scripts run as calls too,
    so a row no script calls is one the service sent itself."""
    pattern = re.compile(rf"redis\.call\('{re.escape(command)}'", re.IGNORECASE)
    names = [*Scripts.NAMES, "release"]
    lua = files("aggregator").joinpath("lua")
    return sorted(n for n in names if pattern.search(lua.joinpath(f"{n}.lua").read_text()))


def commands(machine: Machine, args: argparse.Namespace) -> dict[str, Any]:
    client = machine.client
    client.flushall()
    run, cpus = f"costs{os.getpid()}", machine.helper_cpus
    flow = {**FLOW, "expected_branches": BRANCHES, "delivery": "sink"}
    with machine.sink() as sink, machine.service({**flow, "sink": f"{sink}/"}) as base:
        if args.warmup:
            wrk(cpus, base, args.warmup, args.connections, run + "w", BRANCHES, PAYLOAD)
        # Every command the measured events cause falls in the window: the releases of the
        # warm-up are delivered before it opens, its own before it closes.
        wait_until(lambda: machine.total("XLEN", OUTBOXES) == 0, 120)
        before = client.info("commandstats")
        delivered = int(str(get_json(f"{sink}/stats")["count"]))
        measured = wrk(cpus, base, args.duration, args.connections, run, BRANCHES, PAYLOAD)
        wait_until(lambda: machine.total("XLEN", OUTBOXES) == 0, 120)
        after = client.info("commandstats")
        delivered = int(str(get_json(f"{sink}/stats")["count"])) - delivered
    calls = {}
    for name, stats in after.items():
        command = name.removeprefix("cmdstat_")
        count = stats["calls"] - before.get(name, {}).get("calls", 0)
        if count and command not in OWN_COMMANDS:
            calls[command] = count
    evalsha, requests = calls.get("evalsha", 0), measured.requests
    return {
        "requests": requests,
        "errors": measured.errors,
        "releases_delivered": delivered,
        "commands_per_request": sum(calls.values()) / requests,
        "evalsha_per_request": evalsha / requests,
        # One settle script call per delivered release; no sweep releases (1h timeout).
        "ingest_evalsha_per_request": (evalsha - delivered) / requests,
        "calls": dict(sorted(calls.items(), key=lambda item: -item[1])),
        "lua_callers": {command: lua_callers(command) for command in calls},
    }


def sweep(machine: Machine, count: int) -> dict[str, Any]:
    machine.client.flushall()
    with machine.sink() as sink:
        flow = {
            "name": "sweep",
            "expected_branches": BRANCHES,
            "timeout": "1ms",
            "sink": f"{sink}/",
        }
        preloaded = asyncio.run(preload(machine.url, AggregateFlow.model_validate(flow), count))
        started = time.perf_counter()
        with machine.service(flow):
            startup = time.perf_counter() - started
            # The sweeper starts before the port listens: what it released by then is not
            # in the measurement.
            pending = machine.total("ZCARD", DEADLINES)
            swept = wait_until(lambda: machine.total("ZCARD", DEADLINES) == 0, 600)
            drained = swept + wait_until(lambda: machine.total("XLEN", OUTBOXES) == 0, 600)
        delivered = int(str(get_json(f"{sink}/stats")["count"]))
    return {
        "aggregations": count,
        "preload_seconds": preloaded,
        "startup_seconds": startup,
        "pending_when_ready": pending,
        "swept_seconds": swept,
        "releases_per_s": pending / swept,
        "drained_seconds": drained,
        "deliveries_per_s": pending / drained,
        "delivered": delivered,
    }


def table(rows: list[tuple[str, object]]) -> None:
    print("| figure | value |\n| --- | --- |")
    for label, value in rows:
        print(f"| {label} | {f'{value:.2f}' if isinstance(value, float) else value} |")
    print()


def report(found: dict[str, Any]) -> None:
    m, c, s = found["memory"], found["commands"], found["sweep"]
    print(f"## Redis memory per pending aggregation ({m['aggregations']}, 4 of 5 branches in)\n")
    table(
        [
            ("used_memory delta / aggregation, bytes", m["used_memory_per_aggregation"]),
            ("MEMORY USAGE of one state hash, bytes", m["state_hash_memory_usage"]),
            ("payload bytes / aggregation", m["payload_bytes"]),
            ("used_memory / payload", m["used_memory_ratio"]),
            ("state hash / payload", m["state_hash_ratio"]),
            ("state hash encoding", m["state_hash_encoding"]),
        ]
    )
    print("| state hash field | value bytes |\n| --- | --- |")
    for name, size in m["state_hash_fields"].items():
        print(f"| `{name}` | {size} |")
    print(f"\n## Redis commands per ingested event ({c['requests']} requests)\n")
    table(
        [
            ("requests (errors)", f"{c['requests']} ({c['errors']})"),
            ("releases delivered", c["releases_delivered"]),
            ("commands / request, script-run included", c["commands_per_request"]),
            ("EVALSHA / request", c["evalsha_per_request"]),
            ("EVALSHA / request, less one settle per release", c["ingest_evalsha_per_request"]),
        ]
    )
    print("| command | calls | per request | Lua scripts calling it |\n| --- | --- | --- | --- |")
    for command, count in c["calls"].items():
        callers = ", ".join(c["lua_callers"][command]) or "-"
        print(f"| {command} | {count} | {count / c['requests']:.3f} | {callers} |")
    print("\nRedis counts the commands a script runs as calls of their own; a row no script calls")
    print("is a command the service sent itself.")
    print(f"\n## Sweeper: {s['aggregations']} aggregations due at once\n")
    table(
        [
            ("preload, s", s["preload_seconds"]),
            ("service start to ready, s", s["startup_seconds"]),
            ("pending when ready", s["pending_when_ready"]),
            ("ready to deadline sets empty, s", s["swept_seconds"]),
            ("releases/s", s["releases_per_s"]),
            ("ready to outboxes drained, s", s["drained_seconds"]),
            ("deliveries/s", s["deliveries_per_s"]),
            ("delivered to the sink", s["delivered"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--aggregations", type=int, default=10_000, help="for the memory figure")
    parser.add_argument("--duration", type=int, default=5, help="seconds of measured load")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before it")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--backlog", type=int, default=100_000, help="due aggregations to sweep")
    parser.add_argument("--log-level", default="info", help="of the service")
    parser.add_argument(
        "--redis-arg",
        action="append",
        default=[],
        help="passed to redis-server, e.g. --redis-arg=--hash-max-listpack-value --redis-arg=1024",
    )
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aggregator-costs-") as folder:
        machine = Machine(Path(folder), log_level=args.log_level, redis_args=tuple(args.redis_arg))
        try:
            found = {
                "args": {k: str(v) for k, v in vars(args).items()},
                "memory": memory(machine, args.aggregations),
                "commands": commands(machine, args),
                "sweep": sweep(machine, args.backlog),
            }
        finally:
            machine.stop()
    report(found)
    if args.json:
        args.json.write_text(json.dumps(found, indent=2))


if __name__ == "__main__":
    main()
