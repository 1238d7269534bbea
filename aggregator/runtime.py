"""What the request handlers share in one process: settings, keys, the store."""

from dataclasses import dataclass, field

from starlette.requests import Request

from aggregator.keys import Keyspace
from aggregator.settings import Settings
from aggregator.store import Store


@dataclass
class Runtime:
    settings: Settings
    keyspace: Keyspace
    store: Store
    warnings: list[str] = field(default_factory=list)


def runtime(request: Request) -> Runtime:
    found: Runtime = request.app.state.runtime
    return found
