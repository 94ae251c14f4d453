"""Mesos-format leader election through a real ZooKeeper (zk_py and Apache): what pymesos detects."""

from __future__ import annotations

import json
import threading

import pytest

from paas_common.zkleader import (
    Contender,
    ZkUrlError,
    leader_info,
    leader_url,
    master_info,
    members,
    parse_zk_url,
)
from tests.support.clients import WAIT, client_factory
from tests.support.servers import ZkServer


def test_zk_urls() -> None:
    assert parse_zk_url("zk://h1:2181,h2:2181/mesos/") == parse_zk_url("zk://h1:2181,h2:2181/mesos")
    assert parse_zk_url("zk://127.0.0.1:2181/a/b").path == "/a/b"
    for bad in ("http://h/mesos", "zk://h1:2181", "zk:///mesos", "zk://u:p@h:2181/mesos"):
        with pytest.raises(ZkUrlError):
            parse_zk_url(bad)


def test_master_info_is_what_mesos_writes() -> None:
    info = master_info("abc", "127.0.0.1", 5050, "localhost", "1.11.0")
    assert info["ip"] == 16777343  # 127.0.0.1 as Mesos stores it (network order read little-endian)
    assert info["pid"] == "master@127.0.0.1:5050"
    assert leader_url(info) == "http://127.0.0.1:5050"
    assert leader_url({"ip": 16777343, "port": 5051}) == "http://127.0.0.1:5051"


def test_members_ignore_other_children_and_sort_by_sequence() -> None:
    names = ["json.info_0000000231", "log_replicas", "json.info_0000000229", "info_0000000001"]
    assert members(names) == ["json.info_0000000229", "json.info_0000000231"]


def test_lowest_sequence_leads_and_the_next_takes_over(zk_server: ZkServer) -> None:
    with client_factory(zk_server.hosts) as make:
        a_zk, b_zk, observer = make(), make(), make()
        a = Contender(a_zk, "/mesos", master_info("a", "127.0.0.1", 5050, "a", "1.11.0"))
        b = Contender(b_zk, "/mesos", master_info("b", "127.0.0.2", 5050, "b", "1.11.0"))
        a.join()
        b.join()
        assert a.is_leader() and not b.is_leader()
        info = leader_info(observer, "/mesos")
        assert info is not None and info["id"] == "a"
        # pymesos' detector: min() of the children after dropping log_replicas, then the JSON address.
        children = [c for c in observer.get_children("/mesos") if c != "log_replicas"]
        data, _ = observer.get(f"/mesos/{min(children)}")
        assert json.loads(data)["address"] == {"hostname": "a", "ip": "127.0.0.1", "port": 5050}
        changed = threading.Event()
        b.watch(lambda names: changed.set() if names and names[0] == b.node else None)
        a_zk.stop()  # the leader's session ends: its ephemeral znode goes
        assert changed.wait(WAIT)
        assert b.is_leader()
        info = leader_info(observer, "/mesos")
        assert info is not None and info["id"] == "b"
