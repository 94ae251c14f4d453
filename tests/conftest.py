"""Shared fixtures: real ZooKeeper servers (zk_py and Apache 3.8.0), each in its own tmp_path."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import ZkServer, apache_available, require_apache

APACHE_MISSING = (
    "Apache ZooKeeper not installed (needs java and Debian's zookeeper package: apt-get install zookeeper)"
)


def pytest_sessionstart(session: pytest.Session) -> None:
    """On CI the comparison tests are part of the bar: a missing Apache ZooKeeper fails the run."""
    if os.environ.get("CI") and not apache_available():
        raise pytest.UsageError(f"CI run without Apache ZooKeeper: {APACHE_MISSING}")
    if os.environ.get("CI"):
        from tests.support.docker import SETUP_HINT, _probe

        problem = _probe()
        if problem is not None:
            raise pytest.UsageError(f"CI run without a usable Docker Engine: {problem}: {SETUP_HINT}")


def _serve(request: pytest.FixtureRequest, kind: str, workdir: Path) -> Iterator[ZkServer]:
    """Start a server, hand it to the test, and always stop it; print its log if the test failed."""
    if kind == "apache":
        require_apache()
    failed_before = request.session.testsfailed
    srv = ZkServer(kind, workdir)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        if request.session.testsfailed > failed_before:
            print(srv.log_tail(), file=sys.stderr)


@pytest.fixture
def apache_zk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ZkServer]:
    """A fresh Apache ZooKeeper 3.8.0 standalone server."""
    yield from _serve(request, "apache", tmp_path / "apache")


@pytest.fixture
def zkpy_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ZkServer]:
    """A fresh zk_py standalone server."""
    yield from _serve(request, "zk_py", tmp_path / "zk_py")


@pytest.fixture(params=["zk_py", pytest.param("apache", marks=pytest.mark.apache)])
def zk_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ZkServer]:
    """The same test against zk_py and Apache: behaviour must match for zk_py to be a drop-in."""
    yield from _serve(request, request.param, tmp_path / request.param)
