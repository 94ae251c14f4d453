"""The one-shot framework of ``paasctl run`` as pure protocol logic: events in, calls and lines out.

:class:`OneShot` holds the whole behaviour of a framework that runs one task — decline offers that do
not fit (briefly: the cluster may free resources), launch on the first that does, acknowledge and print
each status update once, kill on request — with no I/O and no clock, so every step is unit-tested
(tests/unit/test_paasctl_format.py); paasctl.run moves its calls and events over HTTP.  Calls and
events are paas_common.schedapi's (the v1 scheduler API, shared/reference/mesos.md §2); calls leave here
stamped with the framework id.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from paas_common.resources import ResourceError, Resources, coalesce
from paas_common.schedapi import (
    Error,
    Event,
    Failure,
    JsonObj,
    Offers,
    Subscribed,
    TaskStatus,
    Update,
    accept,
    acknowledgement,
    decline,
    kill,
    launch,
    offer_id,
    stamp,
    subscribe,
    suppress,
)

FRAMEWORK_NAME = "paasctl-run"
DECLINE_SECONDS = 2.0  # offers that do not fit come back soon: the cluster may free resources
DONE_DECLINE_SECONDS = 3600.0  # once launched this framework needs nothing more
TERMINAL = frozenset(
    {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED", "TASK_GONE"}
)


@dataclass(frozen=True)
class PortMapping:
    """One ``--port-mapping``: a container port published on a host port of the offer."""

    container_port: int
    host_port: int = 0  # 0: any port of the offer's "ports"
    protocol: str = "tcp"


@dataclass(frozen=True)
class RunSpec:
    """What to run: the task as the command line describes it."""

    task_id: str
    name: str
    cpus: float
    mem: float
    command: tuple[str, ...] = ()
    image: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    ports: tuple[PortMapping, ...] = ()
    role: str = "*"

    @property
    def wanted(self) -> Resources:
        return Resources.scalars({"cpus": self.cpus, "mem": self.mem}, self.role)


def subscribe_call(user: str, hostname: str, role: str = "*") -> JsonObj:
    """SUBSCRIBE as a new framework that does not outlive its connection (failover timeout 0)."""
    info = {"user": user, "name": FRAMEWORK_NAME, "hostname": hostname, "role": role, "failover_timeout": 0.0}
    return subscribe(info)


def command_info(spec: RunSpec) -> dict[str, Any]:
    """One argument is a shell command line (``-- 'echo hi && exit 3'``); several are quoted into one, so
    the command means the same to both containerizers; none keeps the image's default command."""
    info: dict[str, Any] = {"shell": bool(spec.command)}
    if spec.command:
        info["value"] = spec.command[0] if len(spec.command) == 1 else shlex.join(spec.command)
    if spec.env:
        info["environment"] = {"variables": [{"name": k, "value": v} for k, v in spec.env]}
    return info


def match_offer(spec: RunSpec, offer: Mapping[str, Any]) -> tuple[Resources, list[int]] | str:
    """The task's resources (with the host ports picked) if the offer fits, else why not."""
    try:
        offered = Resources.from_json(offer.get("resources") or [])
    except ResourceError as e:
        return f"unreadable resources ({e})"
    usable = offered.allocatable_to(spec.role)
    wanted = spec.wanted
    if not usable.contains(wanted):
        return f"offers {usable.filter_names(['cpus', 'mem'])}, needs {wanted}"
    free = [p for b, e in usable.ranges("ports") for p in range(b, min(e, b + 65536) + 1)]
    fixed = {m.host_port for m in spec.ports if m.host_port}
    if not fixed <= set(free):
        return f"lacks host ports {sorted(fixed - set(free))}"
    spare = iter(p for p in free if p not in fixed)
    host_ports = [m.host_port or next(spare, 0) for m in spec.ports]
    if 0 in host_ports:
        return f"has too few ports for {len(spec.ports)} mapping(s)"
    if host_ports:
        wanted = wanted + Resources({("ports", spec.role): coalesce((p, p) for p in host_ports)})
    return wanted, host_ports


def task_info(
    spec: RunSpec, offer: Mapping[str, Any], resources: Resources, host_ports: list[int]
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": spec.name,
        "task_id": {"value": spec.task_id},
        "agent_id": offer["agent_id"],
        "resources": resources.to_json(),
        "command": command_info(spec),
    }
    if spec.image:
        docker: dict[str, Any] = {"image": spec.image}
        if spec.ports:
            docker["network"] = "BRIDGE"
            docker["port_mappings"] = [
                {"host_port": h, "container_port": m.container_port, "protocol": m.protocol}
                for m, h in zip(spec.ports, host_ports, strict=True)
            ]
        info["container"] = {"type": "DOCKER", "docker": docker}
    return info


def format_status(status: TaskStatus) -> str:
    """``TASK_FAILED: Command exited with status 3 (REASON_COMMAND_EXECUTOR_FAILED)``."""
    line = status.state
    if status.message:
        line += f": {status.message}"
    if status.reason:
        line += f" ({status.reason})"
    if status.healthy is not None:
        line += " [healthy]" if status.healthy else " [unhealthy]"
    return line


def _value(obj: Any) -> str:
    return str(obj.get("value", "")) if isinstance(obj, dict) else ""


@dataclass
class Step:
    """What one event asks of the driver: calls to send (in order) and lines to print."""

    calls: list[JsonObj] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


@dataclass
class OneShot:
    """The framework's whole behaviour as a state machine; no I/O, no clock."""

    spec: RunSpec
    framework_id: str = ""
    agent_id: str = ""
    hostname: str = ""
    launched: bool = False
    error: str | None = None
    mismatch: str | None = None  # why the latest offer that did not fit did not
    updates: list[dict[str, Any]] = field(default_factory=list)  # TaskStatus JSON, as printed

    @property
    def state(self) -> str | None:
        return str(self.updates[-1].get("state")) if self.updates else None

    @property
    def done(self) -> bool:
        return self.error is not None or self.state in TERMINAL

    def on_event(self, event: Event) -> Step:
        if isinstance(event, Subscribed):
            self.framework_id = event.framework_id
            return Step(lines=[f"subscribed as framework {self.framework_id}"])
        if isinstance(event, Offers):
            return self._offers(event.offers)
        if isinstance(event, Update):
            return self._update(event.status)
        if isinstance(event, Error):
            self.error = event.message or "unknown error"
            return Step(lines=[f"framework error: {self.error}"])
        if isinstance(event, Failure) and self.launched and event.agent_id == self.agent_id:
            return Step(lines=[f"agent {self.agent_id} failed"])
        return Step()  # HEARTBEAT, RESCIND, MESSAGE, ...

    def _stamped(self, call: JsonObj) -> JsonObj:
        return stamp(call, self.framework_id)

    def _offers(self, offers: Iterable[Mapping[str, Any]]) -> Step:
        step = Step()
        declined: list[str] = []
        for offer in offers:
            fit = None if self.launched else match_offer(self.spec, offer)
            if not isinstance(fit, tuple):
                declined.append(offer_id(offer))
                self.mismatch = fit if fit is not None else self.mismatch
                continue
            resources, host_ports = fit
            self.launched = True
            self.agent_id = _value(offer.get("agent_id"))
            self.hostname = str(offer.get("hostname", ""))
            operation = launch([task_info(self.spec, offer, resources, host_ports)])
            step.calls.append(self._stamped(accept([offer_id(offer)], [operation], DONE_DECLINE_SECONDS)))
            step.calls.append(self._stamped(suppress()))
            ports = f" ports {host_ports}" if host_ports else ""
            step.lines.append(
                f"TASK_STAGING: task {self.spec.task_id} on agent {self.agent_id} ({self.hostname}) "
                f"with {resources.filter_names(['cpus', 'mem'])}{ports}"
            )
        if declined:
            refuse = DONE_DECLINE_SECONDS if self.launched else DECLINE_SECONDS
            step.calls.insert(0, self._stamped(decline(declined, refuse)))
        return step

    def _update(self, status: TaskStatus) -> Step:
        step = Step()
        ack = acknowledgement(status)
        if ack is not None:
            step.calls.append(self._stamped(ack))
        mine = status.task_id == self.spec.task_id
        resent = status.uuid is not None and any(u.get("uuid") == status.uuid for u in self.updates)
        if mine and not resent and not self.done:  # updates come at least once: print each once
            self.updates.append(dict(status.raw))
            step.lines.append(format_status(status))
        return step

    def kill_calls(self) -> list[JsonObj]:
        if not self.launched or self.done:
            return []
        return [self._stamped(kill(self.spec.task_id, self.agent_id))]

    def result(self) -> dict[str, Any]:
        last = self.updates[-1] if self.updates else {}
        return {
            "framework_id": self.framework_id or None,
            "task_id": self.spec.task_id,
            "agent_id": self.agent_id or None,
            "state": self.state,
            "status_message": last.get("message"),
            "reason": last.get("reason"),
            "updates": self.updates,
        }
