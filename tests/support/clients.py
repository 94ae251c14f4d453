"""kazoo clients for tests: started on a server under test and always stopped afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from kazoo.client import KazooClient

WAIT = 20.0  # upper bound for any single expected event or step; never a performance claim
ClientFactory = Callable[..., KazooClient]


@contextlib.contextmanager
def client_factory(hosts: str) -> Iterator[ClientFactory]:
    """Yield ``make(**kazoo_kwargs)``; every client it made is stopped and closed on exit."""
    made: list[KazooClient] = []

    def make(**kw: Any) -> KazooClient:
        kw.setdefault("timeout", 10.0)
        zk = KazooClient(hosts=hosts, **kw)
        made.append(zk)
        zk.start(timeout=WAIT)
        return zk

    try:
        yield make
    finally:
        for zk in made:
            with contextlib.suppress(Exception):
                zk.stop()
                zk.close()
