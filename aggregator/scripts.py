"""The Lua scripts of `lua/`, loaded once per process and registered with the client.

A script may pull in a shared fragment with a line `-- @include <file>.lua`; the fragment
is pasted in at load time, so every script is still one self-contained EVALSHA body.
"""

import re
from importlib.resources import files

from redis.commands.core import AsyncScript

from aggregator.redis_client import Client

_INCLUDE = re.compile(r"^-- @include (\S+\.lua)$", re.MULTILINE)


def _source(name: str) -> str:
    text = files("aggregator").joinpath("lua", name).read_text(encoding="utf-8")
    return _INCLUDE.sub(lambda match: _source(match.group(1)), text)


class Scripts:
    NAMES = ("ingest", "expire", "settle")

    def __init__(self, redis: "Client") -> None:
        self.redis = redis
        self._scripts = {name: redis.register_script(_source(f"{name}.lua")) for name in self.NAMES}

    def __getitem__(self, name: str) -> AsyncScript:
        return self._scripts[name]

    async def load(self) -> None:
        for script in self._scripts.values():
            await self.redis.script_load(script.script)

    async def loaded(self) -> bool:
        return all(await self.redis.script_exists(*(s.sha for s in self._scripts.values())))
