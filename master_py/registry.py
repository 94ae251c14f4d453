"""The master's registry in ZooKeeper: the agents and frameworks a new leader must expect back.

Mesos keeps its registry in a replicated log beside the masters; ours lives in the ZooKeeper ensemble
the masters already elect through, next to the ``json.info_`` group (as Mesos' ``log_replicas`` does):

    <path>/registry/agents/<agent id>          {"id", "hostname", "ip", "port", "resources", ...}
    <path>/registry/frameworks/<framework id>  {"id", "info", "registered_time"}

An agent entry with ``unreachable_time`` is an agent marked unreachable.  The leader writes an entry
before it acts on the change (an agent is answered only once it is admitted), so whatever a framework
or an agent was told survives the leader.  Writes go through one lock in decision order.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, NoNodeError

from .model import Persist

KINDS = ("agents", "frameworks")


class ZkRegistry:
    def __init__(self, client: KazooClient, group_path: str) -> None:
        self.client = client
        self.root = f"{group_path.rstrip('/')}/registry"

    def load(self) -> dict[str, list[dict[str, Any]]]:
        """Every entry by kind (blocking: run it in a thread)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for kind in KINDS:
            path = f"{self.root}/{kind}"
            self.client.ensure_path(path)
            entries = []
            for name in sorted(self.client.get_children(path)):
                try:
                    data, _ = self.client.get(f"{path}/{name}")
                except NoNodeError:
                    continue
                entries.append(json.loads(data))
            found[kind] = entries
        return found

    def apply(self, ops: list[Persist]) -> None:
        """Store or delete entries in order (blocking: run it in a thread)."""
        for op in ops:
            path = f"{self.root}/{op.kind}/{op.id}"
            if op.doc is None:
                with contextlib.suppress(NoNodeError):
                    self.client.delete(path)
                continue
            data = json.dumps(op.doc, separators=(",", ":")).encode()
            try:
                self.client.set(path, data)
            except NoNodeError:
                try:
                    self.client.create(path, data, makepath=True)
                except NodeExistsError:
                    self.client.set(path, data)
