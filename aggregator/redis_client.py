"""One Redis client per purpose and process, built for the configured topology."""

from redis.asyncio import BlockingConnectionPool, Redis

from aggregator.settings import Settings

# Fail fast: a request waits at most this long for Redis before it answers 503.
REDIS_TIMEOUT = 2.0


class UnsupportedRedisMode(RuntimeError):
    pass


def connect(settings: Settings, name: str) -> "Redis":
    """A client named `name` (CLIENT LIST shows it). Its pool blocks for a free connection
    rather than failing when all are busy."""
    if settings.redis_url is None:
        raise UnsupportedRedisMode("AGGREGATOR_REDIS_URL is not set")
    if settings.redis_mode != "standalone":
        raise UnsupportedRedisMode(
            f"AGGREGATOR_REDIS_MODE={settings.redis_mode} is not supported by this version; "
            "use standalone"
        )
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_TIMEOUT,
        socket_timeout=REDIS_TIMEOUT,
        client_name=name,
    )
    return Redis.from_pool(pool)
