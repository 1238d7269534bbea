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
