"""Redis topologies for the tests, from `redis-server` processes on free loopback ports:
a 3-master Redis Cluster (joined with `redis-cli --cluster create`)."""

import subprocess
import time
from pathlib import Path

import redis

from aggregator.embedded_redis import RedisServer, free_port


class LocalCluster:
    def __init__(self, folder: Path, masters: int = 3) -> None:
        # The bus port would default to port + 10000, out of range for high free ports.
        self.nodes = [
            RedisServer(
                folder / f"node{n}",
                *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                *("--cluster-node-timeout", "2000", "--appendonly", "no"),
                *("--cluster-port", str(free_port())),
            )
            for n in range(masters)
        ]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def start(self, timeout: float = 30) -> str:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + timeout
        while not all(self._ok(node) for node in self.nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("the test cluster did not become ready")
            time.sleep(0.05)
        return self.url

    @staticmethod
    def _ok(node: RedisServer) -> bool:
        client = redis.Redis(port=node.port)
        try:
            return bool(client.cluster("INFO").get("cluster_state") == "ok")
        finally:
            client.close()

    def flush(self) -> None:
        for node in self.nodes:
            client = redis.Redis(port=node.port)
            client.flushall()
            client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class LocalSentinel:
    """A master, one replica and three sentinels watching them as `mymaster`."""

    MASTER = "mymaster"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.master = RedisServer(folder / "master", "--appendfsync", "always")
        self.replica: RedisServer | None = None
        self.sentinels: list[RedisServer] = []

    def start(self, timeout: float = 30) -> list[str]:
        self.master.start()
        self.replica = RedisServer(
            self.folder / "replica", "--appendfsync", "always",
            "--replicaof", "127.0.0.1", str(self.master.port),
        )  # fmt: skip
        self.replica.start()
        config = (
            f"sentinel monitor {self.MASTER} 127.0.0.1 {self.master.port} 2\n"
            f"sentinel down-after-milliseconds {self.MASTER} 1000\n"
            f"sentinel failover-timeout {self.MASTER} 5000\n"
        )
        self.sentinels = [
            RedisServer(self.folder / f"sentinel{n}", "--sentinel", config=config) for n in range(3)
        ]
        for sentinel in self.sentinels:
            sentinel.start()
        deadline = time.monotonic() + timeout
        while not self._replica_known():
            if time.monotonic() > deadline:
                raise RuntimeError("the sentinels did not discover the replica")
            time.sleep(0.05)
        return [f"127.0.0.1:{s.port}" for s in self.sentinels]

    def _replica_known(self) -> bool:
        client = redis.Redis(port=self.sentinels[0].port)
        try:
            return bool(client.execute_command("SENTINEL", "REPLICAS", self.MASTER))
        finally:
            client.close()

    def master_port(self) -> int:
        client = redis.Redis(port=self.sentinels[0].port)
        try:
            _, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.MASTER)
            return int(port)
        finally:
            client.close()

    def failover(self, timeout: float = 30) -> None:
        """A manual failover: the replica becomes master once it has caught up."""
        before = self.master_port()
        client = redis.Redis(port=self.sentinels[0].port)
        client.execute_command("SENTINEL", "FAILOVER", self.MASTER)
        client.close()
        deadline = time.monotonic() + timeout
        while self.master_port() == before:
            if time.monotonic() > deadline:
                raise RuntimeError("no failover happened")
            time.sleep(0.05)

    def stop(self) -> None:
        for server in [*self.sentinels, self.replica, self.master]:
            if server is not None:
                server.stop()
