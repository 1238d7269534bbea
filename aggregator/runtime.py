"""What the request handlers and background tasks of one process share."""

from dataclasses import dataclass, field

from starlette.requests import Request

from aggregator.admin import Admin
from aggregator.dead_letters import DeadLetters
from aggregator.dispatcher import Dispatcher
from aggregator.keys import Keyspace
from aggregator.outbox import Outbox
from aggregator.sender import Sender
from aggregator.settings import Settings
from aggregator.store import Store


@dataclass
class Runtime:
    settings: Settings
    keyspace: Keyspace
    store: Store
    outbox: Outbox
    dead_letters: DeadLetters
    sender: Sender
    dispatcher: Dispatcher
    admin: Admin
    warnings: list[str] = field(default_factory=list)


def runtime(request: Request) -> Runtime:
    found: Runtime = request.app.state.runtime
    return found
