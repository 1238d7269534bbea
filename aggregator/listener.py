"""A listening socket of its own for each worker process (`aggregator serve --workers N`).

uvicorn binds one socket in its supervisor and every worker accepts from it: whichever worker
wakes first takes the next connection. A client that keeps a few connections open, as
Knative's queue-proxy does, can so load one worker and leave the others idle (16 of 16
connections on one worker in one run of three, docs/benchmarks.md). With SO_REUSEPORT every
worker listens on a socket of its own on the same address, and the kernel spreads new
connections over them evenly.
"""

import socket


class SharedPort(socket.socket):
    """The address the workers share. The supervisor binds it, so that a port another server
    holds fails at once and there, but never listens on it (a listening socket in the group
    would take its share of connections and nobody would accept them). Pickled into a spawned
    worker, it becomes that worker's own listening socket on the same address. (As
    SO_REUSEPORT allows for one user, a second `serve --workers` on the same port would not
    fail but split the connections with the first.)"""

    def __init__(self, host: str, port: int, backlog: int) -> None:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        super().__init__(family, kind, proto)
        _share(self)
        self.bind(address)
        self.backlog = backlog

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return _listening, (self.family, self.getsockname(), self.backlog)


def _share(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)


def _listening(
    family: socket.AddressFamily, address: tuple[str, int], backlog: int
) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    _share(sock)
    sock.bind(address)
    sock.listen(backlog)
    return sock
