"""paas_common.mesosmaster: ``--master`` values, 307 Locations and the ZooKeeper leader lookup.

The lookup runs against a stand-in for KazooClient holding a ``json.info_`` group as master_py writes it
(paas_common.zkleader.master_info), so the URL is the one every detector derives from MasterInfo; the
real ZooKeeper path is covered by the agent, paasctl and marathon_py integration tests.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kazoo.exceptions import NoNodeError
from kazoo.handlers.threading import KazooTimeoutError

from paas_common import mesosmaster
from paas_common.mesosmaster import InvalidPort, address, parse_master, redirect_base
from paas_common.zkleader import ZkUrl, ZkUrlError, master_info

# ---------------------------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("127.0.0.1:5050", "http://127.0.0.1:5050"),
        (" http://M1.example:5051/ ", "http://m1.example:5051"),
        ("https://m1:5050", "https://m1:5050"),
        ("[::1]:5050", "http://[::1]:5050"),
        ("//m1:5050", "http://m1:5050"),
    ],
)
def test_address(text: str, url: str) -> None:
    assert address(text) == url


def test_address_default_port_and_schemes() -> None:
    assert address("m1", default_port=5050) == "http://m1:5050"
    assert address("m1:6000", default_port=5050) == "http://m1:6000"
    with pytest.raises(ValueError, match="expected host:port or http://host:port"):
        address("https://m1:5050", schemes=("http",))


@pytest.mark.parametrize("text", ["m1", "m1:port", "m1:99999", "m1:1,m2:2"])
def test_address_port_errors(text: str) -> None:
    with pytest.raises(InvalidPort):
        address(text)


@pytest.mark.parametrize(
    "text", ["", "ftp://m1:21", "http://m1:5050/master/state", "m1:5050?x=1", "http://:1"]
)
def test_address_rejects(text: str) -> None:
    with pytest.raises(ValueError) as e:
        address(text)
    assert not isinstance(e.value, InvalidPort)


def test_parse_master() -> None:
    assert parse_master("127.0.0.1:5050") == ("http://127.0.0.1:5050",)
    assert parse_master(" m1:5050, http://m2:5051 ") == ("http://m1:5050", "http://m2:5051")
    assert parse_master("zk://h1:2181,h2:2181/mesos") == ZkUrl("h1:2181,h2:2181", "/mesos")
    for bad in ("", "m1", "m1:port", "ftp://m1:21", "m1:5050,", "m1:5050/x"):
        with pytest.raises(ValueError, match=r"expected host:port\[,host:port...\] or zk://"):
            parse_master(bad)
    with pytest.raises(ZkUrlError, match="names no znode path"):
        parse_master("zk://h1:2181")


def test_redirect_base() -> None:
    here = "http://127.0.0.1:5050"
    assert redirect_base(here, "//127.0.0.2:5051/api/v1/scheduler") == "http://127.0.0.2:5051"
    assert redirect_base("https://m:1", "//m2:2/master/api/v1/scheduler") == "https://m2:2"
    assert redirect_base(here, "m2:5050") == "http://m2:5050"  # the docs' form
    assert redirect_base(here, "http://m3:5050/x") == "http://m3:5050"
    with pytest.raises(ValueError, match="names no master"):
        redirect_base(here, "")


# ---------------------------------------------------------------------------------------------- ZooKeeper


class FakeZk:
    """The few KazooClient calls the lookup makes, over a dict of znodes; records its lifecycle."""

    instances: list[FakeZk] = []

    def __init__(self, hosts: str, timeout: float, nodes: dict[str, bytes], start_error: bool) -> None:
        self.hosts, self.timeout, self.nodes, self.start_error = hosts, timeout, nodes, start_error
        self.calls: list[str] = []
        FakeZk.instances.append(self)

    def start(self, timeout: float) -> None:
        self.calls.append(f"start {timeout:g}")
        if self.start_error:
            raise KazooTimeoutError("Connection time-out")

    def stop(self) -> None:
        self.calls.append("stop")

    def close(self) -> None:
        self.calls.append("close")

    def exists(self, path: str) -> bool:
        return any(p == path or p.startswith(path + "/") for p in self.nodes)

    def get_children(self, path: str) -> list[str]:
        return [p[len(path) + 1 :] for p in self.nodes if p.startswith(path + "/")]

    def get(self, path: str) -> tuple[bytes, None]:
        if path not in self.nodes:
            raise NoNodeError(path)
        return self.nodes[path], None


@pytest.fixture
def zk(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The znodes the next lookups see; ``start_error`` makes connecting time out."""
    state: dict[str, Any] = {"nodes": {}, "start_error": False}
    FakeZk.instances = []

    def client(hosts: str, timeout: float) -> FakeZk:
        return FakeZk(hosts, timeout, state["nodes"], state["start_error"])

    monkeypatch.setattr(mesosmaster, "KazooClient", client)
    return state


def info(ip: str, port: int) -> bytes:
    return json.dumps(master_info("id", ip, port, "host", "1.11.0")).encode()


def test_leader_is_the_lowest_sequence(zk: dict[str, Any]) -> None:
    zk["nodes"].update(
        {
            "/mesos/json.info_0000000003": info("127.0.0.3", 5053),
            "/mesos/json.info_0000000001": info("127.0.0.1", 5051),
            "/mesos/log_replicas": b"",
        }
    )
    url = mesosmaster.leader_url_from_zk(ZkUrl("h1:2181", "/mesos"), timeout=2.5)
    assert url == "http://127.0.0.1:5051"
    (client,) = FakeZk.instances
    assert (client.hosts, client.timeout, client.calls) == ("h1:2181", 2.5, ["start 2.5", "stop", "close"])


def test_no_leader_is_none(zk: dict[str, Any]) -> None:
    assert mesosmaster.leader_url_from_zk(ZkUrl("h1:2181", "/mesos"), timeout=1.0) is None  # no group
    zk["nodes"]["/mesos/log_replicas"] = b""
    assert mesosmaster.leader_url_from_zk(ZkUrl("h1:2181", "/mesos"), timeout=1.0) is None  # no member


def test_the_session_is_closed_when_connecting_fails(zk: dict[str, Any]) -> None:
    zk["start_error"] = True
    with pytest.raises(KazooTimeoutError):
        mesosmaster.leader_url_from_zk(ZkUrl("h1:2181", "/mesos"), timeout=1.0)
    assert FakeZk.instances[0].calls == ["start 1", "stop", "close"]
