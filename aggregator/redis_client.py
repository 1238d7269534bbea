"""One Redis client per purpose and process, built for the configured topology: a single
server, a Sentinel-managed master, or a Redis Cluster. Every script call names keys of one
hash slot, so the same code runs on all three."""

from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from aggregator.settings import Settings


def _retry() -> Retry:
    """A refused or broken connection is tried again at once (a failover, a restart); a
    command that timed out is not: the caller answers 503 rather than wait longer. (redis-py
    retries timeouts too by default; our scripts are idempotent either way.)"""
    return Retry(
        ExponentialBackoff(cap=0.2, base=0.02), 2, supported_errors=(RedisConnectionError,)
    )


Client = Redis | RedisCluster


def connect(settings: Settings, name: str) -> "Client":
    """A client named `name` (CLIENT LIST shows it). Pools block for a free connection rather
    than fail when all are busy. A cluster client still has to be initialized (`ready`)."""
    timeout = settings.redis_timeout.total_seconds()
    if settings.redis_mode == "cluster":
        assert settings.redis_url is not None
        urls = [urlsplit(url.strip()) for url in settings.redis_url.split(",")]
        first = urls[0]
        return RedisCluster(
            startup_nodes=[ClusterNode(u.hostname or "localhost", u.port or 6379) for u in urls],
            username=first.username,
            password=first.password,
            ssl=first.scheme == "rediss",
            max_connections=settings.redis_max_connections,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            client_name=name,
            retry=_retry(),
        )
    if settings.redis_mode == "sentinel":
        password, username, db = None, None, 0
        if settings.redis_url:
            parts = urlsplit(settings.redis_url)
            password, username = parts.password, parts.username
            db = int(parts.path.strip("/") or 0)
        sentinels = [
            (host, int(port))
            for host, _, port in (item.rpartition(":") for item in settings.redis_sentinels)
        ]
        sentinel = Sentinel(sentinels, socket_timeout=timeout)
        master: Redis = sentinel.master_for(
            settings.redis_sentinel_master,
            redis_class=Redis,
            db=db,
            username=username,
            password=password,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            client_name=name,
            retry=_retry(),
        )
        return master
    assert settings.redis_url is not None
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=timeout,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        client_name=name,
        retry=_retry(),
    )
    return Redis.from_pool(pool)


async def ready(client: "Client") -> None:
    """Learn the cluster's slots before the first concurrent use."""
    if isinstance(client, RedisCluster):
        await client.initialize()
