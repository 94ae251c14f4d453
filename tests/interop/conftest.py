"""Fixtures shared by the kazoo interop tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient

from tests.support.clients import ClientFactory, client_factory
from tests.support.servers import ZkServer


@pytest.fixture
def make_client(zk_server: ZkServer) -> Iterator[ClientFactory]:
    """Start kazoo clients on the server under test and always stop them afterwards."""
    with client_factory(zk_server.hosts) as make:
        yield make


@pytest.fixture
def zk(make_client: ClientFactory) -> KazooClient:
    return make_client()
