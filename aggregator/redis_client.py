"""One Redis client per process, built for the configured topology."""

from redis.asyncio import Redis

from aggregator.settings import Settings


class UnsupportedRedisMode(RuntimeError):
    pass


def connect(settings: Settings, name: str) -> "Redis":
    """A client named `name` (CLIENT LIST shows it) for the configured Redis."""
    if settings.redis_url is None:
        raise UnsupportedRedisMode("AGGREGATOR_REDIS_URL is not set")
    if settings.redis_mode != "standalone":
        raise UnsupportedRedisMode(
            f"AGGREGATOR_REDIS_MODE={settings.redis_mode} is not supported by this version; "
            "use standalone"
        )
    return Redis.from_url(
        settings.redis_url, socket_connect_timeout=2, socket_timeout=2, client_name=name
    )
