"""A `redis-server` child process on a free loopback port.

`aggregator serve` uses it when no AGGREGATOR_REDIS_URL is set (local runs and the demo);
the test fixtures use it to get a real Redis without Docker.
"""

import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import redis

INSTALL_HINT = (
    "redis-server was not found on PATH: install it (Debian/Ubuntu: "
    "apt-get install redis-server) or set AGGREGATOR_REDIS_URL to an existing Redis"
)


class RedisServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when its parent dies, even by SIGKILL."""
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class RedisServer:
    def __init__(self, data_dir: Path, *extra_args: str, config: str | None = None) -> None:
        """`config`, when given, is the text of a config file passed first (Sentinel needs
        one it can rewrite)."""
        self.data_dir = data_dir
        self.extra_args = extra_args
        self.config = config
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0, *, same_port: bool = False) -> str:
        """Start (again, on the port it had, with `same_port`); returns the URL."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerError(INSTALL_HINT)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config: list[str] = []
        if self.config is not None:
            (self.data_dir / "redis.conf").write_text(self.config)
            config = [str((self.data_dir / "redis.conf").resolve())]
        # Another process may take the port between free_port() and bind: try again.
        for _ in range(3):
            if not (same_port and self.port):
                self.port = free_port()
            self._process = subprocess.Popen(
                [
                    binary,
                    *config,
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--dir", str(self.data_dir.resolve()),
                    "--appendonly", "yes",
                    "--save", "",
                    "--logfile", "redis.log",
                    *self.extra_args,
                ],
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
            if self._wait_ready(timeout):
                return self.url
        raise RedisServerError(f"redis-server did not start; see {self.data_dir / 'redis.log'}")

    def _wait_ready(self, timeout: float) -> bool:
        assert self._process is not None
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except redis.ConnectionError:
                    time.sleep(0.02)
            self.stop()
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> "RedisServer":
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
