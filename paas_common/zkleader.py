"""Mesos-format leader election and detection through ZooKeeper.

Each contender joins the group at the ``zk://`` path with an EPHEMERAL_SEQUENTIAL znode
``json.info_<seq>`` holding its MasterInfo as Mesos writes it; the leader is the lowest sequence.
That is exactly what pymesos, mesos-go (mesos-dns) and libmesos detect, so they find our leader
unchanged (kazoo's Election recipe would be invisible to them).  Blocking kazoo calls: asyncio
callers bridge them (``asyncio.to_thread``, ``loop.call_soon_threadsafe`` for watches).
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kazoo.client import KazooClient

LABEL = "json.info_"


class ZkUrlError(ValueError):
    """A ``--zk`` value that is not ``zk://host:port[,host:port…]/path``."""


@dataclass(frozen=True, slots=True)
class ZkUrl:
    hosts: str  # kazoo's connection string
    path: str  # the group's znode, e.g. /mesos


def parse_zk_url(url: str) -> ZkUrl:
    """``zk://h1:2181,h2:2181/mesos`` (optionally ``zk://user:pass@…``, credentials are not supported)."""
    parts = urlsplit(url)
    if parts.scheme != "zk" or not parts.netloc:
        raise ZkUrlError(f"expected zk://host:port[,host:port...]/path, got {url!r}")
    if "@" in parts.netloc:
        raise ZkUrlError("zk:// URLs with credentials are not supported")
    path = parts.path.rstrip("/")
    if not path:
        raise ZkUrlError(f"{url!r} names no znode path (e.g. zk://host:2181/mesos)")
    return ZkUrl(parts.netloc, path)


def ip_as_uint32(ip: str) -> int:
    """MasterInfo.ip: the IPv4 s_addr (network order) read as a little-endian host integer (MESOS-1201)."""
    value: int = struct.unpack("<I", socket.inet_aton(ip))[0]
    return value


def master_info(master_id: str, ip: str, port: int, hostname: str, version: str) -> dict[str, Any]:
    """MasterInfo JSON as ``JSON::protobuf(MasterInfo)`` renders it."""
    return {
        "id": master_id,
        "ip": ip_as_uint32(ip),
        "port": port,
        "pid": f"master@{ip}:{port}",
        "hostname": hostname,
        "version": version,
        "address": {"hostname": hostname, "ip": ip, "port": port},
        "capabilities": [{"type": "AGENT_UPDATE"}, {"type": "AGENT_DRAINING"}, {"type": "QUOTA_V2"}],
    }


def _sequence(name: str) -> int:
    return int(name[len(LABEL) :])


def members(children: list[str]) -> list[str]:
    """The group's ``json.info_`` members, leader first (lowest sequence, as every detector reads it)."""
    return sorted((c for c in children if c.startswith(LABEL) and c[len(LABEL) :].isdigit()), key=_sequence)


def leader_info(client: KazooClient, path: str) -> dict[str, Any] | None:
    """The current leader's MasterInfo, or None when the group is empty."""
    for name in members(client.get_children(path)) if client.exists(path) else []:
        try:
            data, _ = client.get(f"{path}/{name}")
        except Exception:  # gone between the listing and the read: try the next one
            continue
        info: dict[str, Any] = json.loads(data)
        return info
    return None


def leader_url(info: dict[str, Any]) -> str:
    """``http://ip:port`` of a MasterInfo (``address`` first, as pymesos and mesos-go do)."""
    addr = info.get("address") or {}
    ip = addr.get("ip") or socket.inet_ntoa(struct.pack("<I", int(info["ip"])))
    return f"http://{ip}:{addr.get('port', info.get('port'))}"


class Contender:
    """One member of the group: ``join()`` once; ``is_leader()`` / ``watch()`` to follow the outcome."""

    def __init__(self, client: KazooClient, path: str, info: dict[str, Any]) -> None:
        self.client = client
        self.path = path
        self.info = info
        self.node: str | None = None

    def join(self) -> str:
        self.client.ensure_path(self.path)
        created: str = self.client.create(
            f"{self.path}/{LABEL}", json.dumps(self.info).encode(), ephemeral=True, sequence=True
        )
        self.node = created.rsplit("/", 1)[1]
        return self.node

    def is_leader(self) -> bool:
        names = members(self.client.get_children(self.path))
        return bool(names) and names[0] == self.node

    def watch(self, on_change: Callable[[list[str]], None]) -> None:
        """Call ``on_change(members)`` now and on every change of the group (kazoo's thread)."""

        def changed(children: list[str]) -> None:
            on_change(members(children))

        self.client.ChildrenWatch(self.path, changed)
