"""Fixtures that give the tests a real Redis and a real `aggregator serve`.

Redis comes from, in order: AGGREGATOR_TEST_REDIS_URL (a disposable server: it is flushed
between tests); a `redis-server` on PATH, started on a free loopback port; a testcontainers
Redis when a Docker engine answers. Without any of them the tests fail, never skip.
"""

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from aggregator.embedded_redis import RedisServer
from tests.support.app import CLUSTER_URLS
from tests.support.processes import ServiceProcess, service_env
from tests.support.topologies import LocalCluster

NO_REDIS = (
    "no Redis for the tests: install redis-server (apt-get install redis-server), "
    "set AGGREGATOR_TEST_REDIS_URL, or make a Docker engine reachable"
)


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        return bool(docker.from_env(timeout=3).ping())
    except Exception:
        return False


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("AGGREGATOR_TEST_REDIS_URL")
    if url:
        yield url
    elif shutil.which("redis-server"):
        with RedisServer(tmp_path_factory.mktemp("redis")) as server:
            yield server.url
    elif _docker_answers():
        from testcontainers.redis import RedisContainer  # type: ignore[import-untyped]

        with RedisContainer() as container:
            host = container.get_container_host_ip()
            yield f"redis://{host}:{container.get_exposed_port(6379)}/0"
    else:
        pytest.fail(NO_REDIS)


@pytest.fixture
def standalone_redis_url(redis_server_url: str) -> str:
    """A real Redis, empty at the start of the test."""
    client = redis.Redis.from_url(redis_server_url)
    client.flushall()
    client.close()
    return redis_server_url


@pytest.fixture
def redis_url(standalone_redis_url: str) -> str:
    return standalone_redis_url


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A 3-master Redis Cluster on loopback (needs redis-server and redis-cli)."""
    if not (shutil.which("redis-server") and shutil.which("redis-cli")):
        pytest.fail(
            "the cluster tests need redis-server and redis-cli (apt-get install redis-server)"
        )
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"))
    CLUSTER_URLS.add(cluster.start())
    yield cluster
    cluster.stop()


@pytest.fixture(params=["standalone", "cluster"])
def any_redis_url(request: pytest.FixtureRequest) -> str:
    """Standalone Redis, then a 3-master Redis Cluster: tests that take it run on both."""
    if request.param == "standalone":
        url: str = request.getfixturevalue("standalone_redis_url")
        return url
    cluster: LocalCluster = request.getfixturevalue("local_cluster")
    cluster.flush()
    return cluster.url


@pytest.fixture
def no_aggregator_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come only from what the test sets."""
    for key in list(os.environ):
        if key.startswith(("AGGREGATOR_", "K_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AGGREGATOR_ANNOTATIONS_FILE", os.devnull)


Serve = Callable[..., ServiceProcess]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """Start real `aggregator serve` processes (in tmp_path); all stop at the end of the test."""
    started: list[ServiceProcess] = []

    def start(*args: str, **env: str) -> ServiceProcess:
        process = ServiceProcess(service_env(**env), tmp_path, args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
