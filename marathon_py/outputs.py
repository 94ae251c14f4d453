"""What ``MarathonCore`` decides, as records the edge carries out in the order given: calls to Mesos (the
builders are ``paas_common.schedapi``'s), writes to the store (``zkstore.ZkStore``), events for the SSE bus,
probes for Marathon-run health checks, and the acknowledgement of a status update.

Within one answer every store write comes first: the edge writes them (in order) before it sends anything
to Mesos, publishes an event or acknowledges, so nothing anyone is told can be forgotten by the next leader
(reference §7.4 "store … then start", §8 "ack after handling").  The instance payload is this module's
``instance_doc``; recovery reads it back with ``instance_of_doc``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from marathon_py.constraints import Placement
from marathon_py.instances import InstanceRecord

JsonObj = dict[str, Any]


# -- Mesos calls ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    """ACCEPT with one LAUNCH of ``task_infos``; the rest of the offers is declined for ``refuse_seconds``
    (Marathon: 0, so the remainder comes back in the next allocation)."""

    offer_ids: tuple[str, ...]
    task_infos: tuple[JsonObj, ...]
    refuse_seconds: float = 0.0


@dataclass(frozen=True)
class Decline:
    offer_ids: tuple[str, ...]
    refuse_seconds: float


@dataclass(frozen=True)
class Kill:
    task_id: str
    agent_id: str | None
    grace_period_seconds: float | None = None  # the app's taskKillGracePeriodSeconds


@dataclass(frozen=True)
class Revive:
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Suppress:
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Reconcile:
    """RECONCILE: explicit for ``tasks`` (v1 ``{"task_id", "agent_id"?}``), implicit when empty."""

    tasks: tuple[JsonObj, ...] = ()


@dataclass(frozen=True)
class Ack:
    """Acknowledge this status update (the v1 TaskStatus as received; no-op without a uuid)."""

    status: Mapping[str, Any]


# -- store writes --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SaveRoot:
    """The new current root group (apps inline; ``apps_changed`` are rewritten even if stored)."""

    root: Mapping[str, Any]
    apps_changed: tuple[str, ...] = ()


@dataclass(frozen=True)
class SaveDeployment:
    id: str
    doc: JsonObj  # json.loads(deployment.dump_plan(plan))


@dataclass(frozen=True)
class DeleteDeployment:
    id: str


@dataclass(frozen=True)
class SaveInstance:
    id: str
    doc: JsonObj  # instance_doc(record)


@dataclass(frozen=True)
class DeleteInstance:
    id: str


@dataclass(frozen=True)
class SaveTaskFailure:
    app_id: str
    doc: JsonObj  # the app's lastTaskFailure


# -- the rest ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One event for ``/v2/events``.  Deployment events also come in the full plan format (``full``: with
    ``original``/``target``), for subscribers that did not ask for ``plan-format=light`` (§3, §9.1)."""

    event: JsonObj
    full: JsonObj | None = field(default=None, compare=False)

    @property
    def event_type(self) -> str:
        return str(self.event["eventType"])


@dataclass(frozen=True)
class Probe:
    """Run a Marathon health check (``probes.probe(check, host, port)``) and hand the result to
    ``MarathonCore.health_result(instance_id, check_index, result, now)``."""

    instance_id: str
    check_index: int
    check: JsonObj
    host: str
    port: int


@dataclass(frozen=True)
class ReadinessProbe:
    """Run an app's readiness check (``GET path`` at host:port; ready when the status is one of
    ``httpStatusCodesForReady``) and hand the answer to ``MarathonCore.readiness_result``."""

    instance_id: str
    check: JsonObj
    host: str
    port: int


Persist = SaveRoot | SaveDeployment | DeleteDeployment | SaveInstance | DeleteInstance | SaveTaskFailure
MesosCall = Launch | Decline | Kill | Revive | Suppress | Reconcile
Output = Persist | MesosCall | Event | Probe | ReadinessProbe | Ack
PERSISTS = (SaveRoot, SaveDeployment, DeleteDeployment, SaveInstance, DeleteInstance, SaveTaskFailure)


def _key(out: Persist) -> tuple[str, str]:
    if isinstance(out, SaveRoot):
        return ("root", "")
    if isinstance(out, SaveDeployment | DeleteDeployment):
        return ("deployment", out.id)
    if isinstance(out, SaveInstance | DeleteInstance):
        return ("instance", out.id)
    return ("taskFailure", out.app_id)


def ordered(outputs: Iterable[Output]) -> list[Output]:
    """Store writes first (one per key, the last decision, at the place of the first), then everything
    else in decision order, the acknowledgement last."""
    persists: dict[tuple[str, str], Persist] = {}
    rest: list[Output] = []
    acks: list[Output] = []
    for out in outputs:
        if isinstance(out, PERSISTS):
            persists[_key(out)] = out
        elif isinstance(out, Ack):
            acks.append(out)
        else:
            rest.append(out)
    return [*persists.values(), *rest, *acks]


# -- the instance payload ------------------------------------------------------------------------------------

_PLAIN = (
    "instance_id", "app_id", "version", "goal", "condition", "since", "queued_at", "role", "marathon_checks",
    "task_id", "agent_id", "staged_at", "started_at", "mesos_state", "mesos_healthy", "marathon_healthy",
    "message", "unreachable_since", "killed_at",
)  # fmt: skip


def instance_doc(rec: InstanceRecord) -> JsonObj:
    """What is stored under ``/state/instance``: every field, the placement as plain JSON."""
    doc: JsonObj = {name: getattr(rec, name) for name in _PLAIN}
    doc["unreachable"] = list(rec.unreachable) if rec.unreachable is not None else None
    doc["host_ports"] = list(rec.host_ports)
    doc["ip_addresses"] = list(rec.ip_addresses)
    p = rec.placement
    doc["placement"] = (
        None
        if p is None
        else {
            "hostname": p.hostname,
            "attributes": dict(p.attributes),
            "region": p.region,
            "zone": p.zone,
            "version": p.version,
        }
    )
    return doc


def instance_of_doc(doc: Mapping[str, Any]) -> InstanceRecord:
    """Inverse of ``instance_doc``."""
    unreachable = doc.get("unreachable")
    p = doc.get("placement")
    plain: dict[str, Any] = {name: doc[name] for name in _PLAIN if name in doc}
    return InstanceRecord(
        **plain,
        unreachable=None if unreachable is None else (float(unreachable[0]), float(unreachable[1])),
        host_ports=tuple(doc.get("host_ports") or ()),
        ip_addresses=tuple(doc.get("ip_addresses") or ()),
        placement=None
        if p is None
        else Placement(p["hostname"], dict(p["attributes"]), p["region"], p["zone"], p["version"]),
    )
