"""The loopback set-up the benchmark runners share: a private Redis (no persistence), the CPUs
split between the server under test and everything else, and starters for the service, a
sink and plain uvicorn apps, each pinned to its CPUs."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

from aggregator.embedded_redis import RedisServer, free_port

ROOT = Path(__file__).parent.parent
UVICORN = ["-m", "uvicorn", "--host", "127.0.0.1", "--loop", "uvloop", "--http", "httptools",
           "--no-access-log", "--log-level", "warning"]  # fmt: skip


def cpus_split(server_cpus: int) -> tuple[set[int], set[int]]:
    """The first `server_cpus` CPUs serve; the rest (or the last one, on a small machine)
    run Redis, the sink and the load generator."""
    cpus = sorted(os.sched_getaffinity(0))
    server = set(cpus[:server_cpus])
    helpers = set(cpus[server_cpus:]) or {cpus[-1]}
    return server, helpers


def pinned(cpus: set[int], command: list[str]) -> list[str]:
    return ["taskset", "-c", ",".join(map(str, sorted(cpus))), *command]


def listening(base: str) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", int(base.rpartition(":")[2]))) == 0


def ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def running(
    command: list[str],
    port: int,
    env: dict[str, str] | None = None,
    up: Callable[[str], bool] = listening,
    timeout: float = 30,
) -> Iterator[str]:
    """The command's server, once `up` says so (by default: once it listens)."""
    # Output goes where a log collector would take it: away, at the cost of writing it.
    process = subprocess.Popen(
        command, env={**os.environ, **(env or {})}, cwd=ROOT, stdout=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while not up(base):
            if process.poll() is not None:
                raise RuntimeError(f"{process.args} exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{process.args} was not up at {base} within {timeout}s")
            time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


LISTEN, ESTABLISHED = "0A", "01"  # TCP states as /proc/net/tcp writes them


def tcp_sockets(port: int, state: str) -> set[int]:
    """Inodes of the TCP sockets with this local port in this state."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if int(fields[1].rpartition(":")[2], 16) == port and fields[3] == state:
                found.add(int(fields[9]))
    return found


def sockets_held(pid: int) -> set[int]:
    """Inodes of the sockets a process has open; empty for one gone or not ours to read."""
    held = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    held.add(int(target[8:-1]))
    return held


def cpu_seconds(port: int) -> float:
    """CPU time used so far by the processes that listen on `port` (every worker of a server
    with several)."""
    listening = tcp_sockets(port, LISTEN)
    used = 0.0
    for process in Path("/proc").iterdir():
        if not process.name.isdigit() or not sockets_held(int(process.name)) & listening:
            continue
        with contextlib.suppress(OSError):
            stat = (process / "stat").read_text().rpartition(")")[2].split()
            used += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return used


class Machine:
    def __init__(
        self,
        folder: Path,
        *,
        server_cpus: int = 1,
        workers: int = 1,
        log_level: str = "info",
        redis_args: tuple[str, ...] = (),
    ) -> None:
        self.folder = folder
        self.workers = workers
        self.log_level = log_level
        self.server_cpus, self.helper_cpus = cpus_split(server_cpus)
        self.redis = RedisServer(folder / "redis", "--save", "", "--appendonly", "no", *redis_args)
        self.url = self.redis.start()
        self.client = redis.Redis.from_url(self.url)
        os.sched_setaffinity(int(self.client.info("server")["process_id"]), self.helper_cpus)

    @contextmanager
    def sink(self) -> Iterator[str]:
        port = free_port()
        command = [sys.executable, *UVICORN, "--port", str(port), "loadtests.sink:app"]
        with running(pinned(self.helper_cpus, command), port) as base:
            yield base

    @contextmanager
    def app(self, module: str) -> Iterator[str]:
        """A uvicorn app on the server CPUs (Redis at BENCH_REDIS_URL)."""
        port = free_port()
        command = pinned(self.server_cpus, [sys.executable, *UVICORN, "--port", str(port), module])
        with running(command, port, {"BENCH_REDIS_URL": self.url}) as base:
            yield base

    @contextmanager
    def express(self) -> Iterator[str]:
        """The Express toy (loadtests/express, `npm ci` by scripts/bootstrap --test) on the
        server CPUs."""
        toy = ROOT / "loadtests" / "express"
        if not (toy / "node_modules").is_dir():
            raise RuntimeError(f"the Express toy is not installed: npm ci --prefix {toy}")
        port = free_port()
        command = pinned(self.server_cpus, ["node", str(toy / "toy.js")])
        with running(command, port, {"PORT": str(port)}) as base:
            yield base

    @contextmanager
    def service(self, flow: dict[str, Any]) -> Iterator[str]:
        """`aggregator serve` with this one flow and default settings otherwise, but for
        max_pending: a benchmark's backlog must not turn into backpressure (429)."""
        flows = self.folder / f"flows-{flow['name']}.yaml"
        flows.write_text(yaml.safe_dump({"flows": [flow]}))
        port = free_port()
        command = [sys.executable, "-m", "aggregator", "serve", "--host", "127.0.0.1",
                   "--port", str(port), "--workers", str(self.workers)]  # fmt: skip
        env = {
            "AGGREGATOR_REDIS_URL": self.url,
            "AGGREGATOR_FLOWS_FILE": str(flows),
            "AGGREGATOR_LOG_LEVEL": self.log_level,
            "AGGREGATOR_MAX_PENDING": str(10**9),
        }
        # Ready, not just listening: with several workers the first one listens before the
        # others, and connections made then would all be its own.
        with running(pinned(self.server_cpus, command), port, env, up=ready) as base:
            yield base

    def total(self, command: str, keys: list[str]) -> int:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.execute_command(command, key)
        return sum(pipe.execute())

    def stop(self) -> None:
        self.client.close()
        self.redis.stop()
