"""The master's pure core: frameworks, their subscriptions and calls (agents, tasks and offers join it).

Sans-I/O: the HTTP edge (``app.py``) validates a request (``calls.py``), hands the call and the
clock to :class:`MasterCore`, and delivers what comes back: events for a framework's stream,
or the order to close one.  Nothing here touches a socket, a clock or ZooKeeper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import events
from .calls import ApiError, Call, new_stream_id

ONE_YEAR_S = 365 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class ToFramework:
    framework_id: str
    event: events.Event


@dataclass(frozen=True, slots=True)
class CloseStream:
    framework_id: str
    stream_id: str


Output = ToFramework | CloseStream


@dataclass
class Framework:
    id: str
    info: dict[str, Any]
    registered_time: float
    stream_id: str | None = None
    connected: bool = False
    active: bool = True
    reregistered_time: float | None = None
    unregistered_time: float | None = None
    failover_deadline: float | None = None  # set while disconnected
    roles: list[str] = field(default_factory=list)
    suppressed_roles: set[str] = field(default_factory=set)

    @property
    def partition_aware(self) -> bool:
        return any(c.get("type") == "PARTITION_AWARE" for c in self.info.get("capabilities", []))

    @property
    def failover_timeout(self) -> float:
        value = self.info.get("failover_timeout", 0.0)
        try:
            return min(max(float(value), 0.0), ONE_YEAR_S)
        except (TypeError, ValueError):
            return 0.0


def framework_roles(info: dict[str, Any]) -> list[str]:
    """MULTI_ROLE frameworks list ``roles``; others have the deprecated ``role`` (default "*")."""
    roles = info.get("roles")
    if isinstance(roles, list) and roles:
        return [str(r) for r in roles]
    return [str(info.get("role") or "*")]


class MasterCore:
    """Framework bookkeeping of a leading master."""

    def __init__(self, master_id: str, master_info: dict[str, Any]) -> None:
        self.master_id = master_id
        self.master_info = master_info
        self.frameworks: dict[str, Framework] = {}
        self.completed_frameworks: list[Framework] = []
        self._next_framework = 0

    # ---- subscription

    def subscribe(self, call: Call, now: float) -> tuple[Framework, list[Output]]:
        """SUBSCRIBE: a new framework, or a known one (re)connecting; the caller opens the new stream."""
        info = dict(call.payload["framework_info"])
        fid = call.framework_id
        out: list[Output] = []
        fw = self.frameworks.get(fid) if fid else None
        if fid and fw is None and any(f.id == fid for f in self.completed_frameworks):
            raise ApiError(403, "Framework has been removed")
        if fw is None:
            if fid is None:
                fid = f"{self.master_id}-{self._next_framework:04d}"
                self._next_framework += 1
            info["id"] = {"value": fid}
            fw = Framework(fid, info, registered_time=now)
            self.frameworks[fid] = fw
        else:
            if fw.stream_id is not None:  # one stream per framework: the old one ends
                out.append(CloseStream(fw.id, fw.stream_id))
            info["id"] = {"value": fw.id}
            fw.info = info
            fw.reregistered_time = now
        fw.roles = framework_roles(info)
        fw.suppressed_roles = set(call.payload.get("suppressed_roles") or [])
        fw.stream_id = new_stream_id()
        fw.connected = fw.active = True
        fw.failover_deadline = None
        out.append(ToFramework(fw.id, events.subscribed(fw.id, self.master_info)))
        return fw, out

    def disconnected(self, framework_id: str, stream_id: str, now: float) -> None:
        """The framework's stream broke: calls get 403 until it re-subscribes; failover_timeout starts."""
        fw = self.frameworks.get(framework_id)
        if fw is None or fw.stream_id != stream_id:
            return  # an older stream, already replaced
        fw.stream_id = None
        fw.connected = fw.active = False
        fw.unregistered_time = now
        fw.failover_deadline = now + fw.failover_timeout

    def tick(self, now: float) -> list[Output]:
        """Remove frameworks whose failover timeout expired."""
        out: list[Output] = []
        for fw in list(self.frameworks.values()):
            if fw.failover_deadline is not None and now >= fw.failover_deadline:
                out += self._remove(fw, now)
        return out

    def _remove(self, fw: Framework, now: float) -> list[Output]:
        del self.frameworks[fw.id]
        fw.connected = fw.active = False
        fw.unregistered_time = now
        self.completed_frameworks.append(fw)
        del self.completed_frameworks[:-50]  # --max_completed_frameworks
        return [CloseStream(fw.id, fw.stream_id)] if fw.stream_id else []

    # ---- calls on an established stream

    def call(self, call: Call, now: float) -> list[Output]:
        """Every call but SUBSCRIBE, after ``check_stream``; effects come back as outputs."""
        fw = self.frameworks[call.framework_id or ""]
        handler = getattr(self, f"_call_{call.type.lower()}", None)
        if handler is None:
            return []  # accepted and ignored (REQUEST, inverse offers, operations: nothing to do yet)
        result: list[Output] = handler(fw, call.payload, now)
        return result

    def _call_teardown(self, fw: Framework, payload: dict[str, Any], now: float) -> list[Output]:
        return self._remove(fw, now)

    def _call_suppress(self, fw: Framework, payload: dict[str, Any], now: float) -> list[Output]:
        fw.suppressed_roles |= set(payload.get("roles") or fw.roles)
        return []

    def _call_revive(self, fw: Framework, payload: dict[str, Any], now: float) -> list[Output]:
        fw.suppressed_roles -= set(payload.get("roles") or fw.roles)
        return []

    def _call_kill(self, fw: Framework, payload: dict[str, Any], now: float) -> list[Output]:
        task_id = _value(payload.get("task_id"))
        if task_id is None:
            raise ApiError(400, "Failed to validate scheduler::Call: Expecting 'kill.task_id' to be present")
        # Unknown task (MESOS-2127): reconcile it as lost, from the master.
        state = "TASK_UNKNOWN" if fw.partition_aware else "TASK_LOST"
        status = events.task_status(
            task_id,
            state,
            now=now,
            reason="REASON_RECONCILIATION",
            message="Attempted to kill an unknown task",
        )
        return [ToFramework(fw.id, events.update(status))]

    def _call_reconcile(self, fw: Framework, payload: dict[str, Any], now: float) -> list[Output]:
        out: list[Output] = []
        for item in payload.get("tasks") or []:
            task_id = _value(item.get("task_id")) if isinstance(item, dict) else None
            if task_id is None:
                continue
            state = "TASK_UNKNOWN" if fw.partition_aware else "TASK_LOST"
            agent_id = _value(item.get("agent_id"))
            status = events.task_status(
                task_id, state, now=now, reason="REASON_RECONCILIATION", agent_id=agent_id
            )
            out.append(ToFramework(fw.id, events.update(status)))
        return out


def _value(obj: object) -> str | None:
    if isinstance(obj, dict) and isinstance(obj.get("value"), str):
        return str(obj["value"])
    return None
