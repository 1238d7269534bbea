"""Redis topologies for the tests, from `redis-server` processes on free loopback ports:
a 3-master Redis Cluster (joined with `redis-cli --cluster create`)."""

import os
import signal
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
    """A master, its replicas and three sentinels watching them as `mymaster`."""

    MASTER = "mymaster"

    def __init__(self, folder: Path, replicas: int = 1) -> None:
        self.folder = folder
        self.master = RedisServer(folder / "master", "--appendfsync", "always")
        self.replicas: list[RedisServer] = []
        self.replica_count = replicas
        self.sentinels: list[RedisServer] = []

    def start(self, timeout: float = 30) -> list[str]:
        self.master.start()
        self.replicas = [
            RedisServer(
                self.folder / f"replica{n}",
                "--appendfsync",
                "always",
                "--replicaof",
                "127.0.0.1",
                str(self.master.port),
            )
            for n in range(self.replica_count)
        ]
        for replica in self.replicas:
            replica.start()
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
        while not self._replicas_known():
            if time.monotonic() > deadline:
                raise RuntimeError("the replicas did not sync or the sentinels did not see them")
            time.sleep(0.05)
        return [f"127.0.0.1:{s.port}" for s in self.sentinels]

    def _replicas_known(self) -> bool:
        """Every replica is in sync with the master and the sentinels know them all."""
        sentinel = redis.Redis(port=self.sentinels[0].port)
        try:
            known = sentinel.execute_command("SENTINEL", "REPLICAS", self.MASTER)
            return len(known) == len(self.replicas) and all(map(self._linked, self.replicas))
        finally:
            sentinel.close()

    @staticmethod
    def _linked(replica: RedisServer) -> bool:
        client = redis.Redis(port=replica.port)
        try:
            return bool(client.info("replication")["master_link_status"] == "up")
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
        """SENTINEL FAILOVER: a replica is promoted at once. The old master goes on taking
        writes until the sentinels reconfigure it as a replica, and drops them then."""
        before = self.master_port()
        client = redis.Redis(port=self.sentinels[0].port)
        client.execute_command("SENTINEL", "FAILOVER", self.MASTER)
        client.close()
        self._await_new_master(before, timeout)

    def _await_new_master(self, before: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.master_port() == before:
            if time.monotonic() > deadline:
                raise RuntimeError("no failover happened")
            time.sleep(0.05)

    def crash_master(self, timeout: float = 30) -> None:
        """SIGKILL the master; the sentinels promote a replica once they agree it is down."""
        before = self.master_port()
        client = redis.Redis(port=before)
        pid = client.info("server")["process_id"]
        client.close()
        os.kill(pid, signal.SIGKILL)
        self._await_new_master(before, timeout)

    def stop(self) -> None:
        for server in [*self.sentinels, *self.replicas, self.master]:
            server.stop()
