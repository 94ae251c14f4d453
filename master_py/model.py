"""The master's records and the core's outputs: plain data shared by the core, its edge and its views.

``MasterCore`` (``core.py``) owns and changes these; ``app.py`` carries out the outputs; ``state.py``
renders the records as Mesos' operator JSON; ``registry.py`` stores ``Persist`` entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from paas_common.resources import Resources

from . import events

ONE_YEAR_S = 365 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class ToFramework:
    framework_id: str
    event: events.Event


@dataclass(frozen=True, slots=True)
class CloseStream:
    framework_id: str
    stream_id: str


@dataclass(frozen=True, slots=True)
class ToAgent:
    """A message for an agent (our agent protocol: RUN_TASK, KILL_TASK, ACKNOWLEDGE, SHUTDOWN_FRAMEWORK)."""

    agent_id: str
    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CloseAgent:
    """End an agent's stream (it stopped answering pings and was marked unreachable)."""

    agent_id: str


@dataclass(frozen=True, slots=True)
class Persist:
    """Store (``doc``) or delete (``None``) a registry entry before acting on the change: ``kind`` is
    ``agents`` or ``frameworks``.  The edge writes it to ZooKeeper so that a new leader knows them."""

    kind: str
    id: str
    doc: dict[str, Any] | None


Output = ToFramework | CloseStream | ToAgent | CloseAgent | Persist

TERMINAL = frozenset(
    {
        "TASK_FINISHED",
        "TASK_FAILED",
        "TASK_KILLED",
        "TASK_ERROR",
        "TASK_DROPPED",
        "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
        "TASK_LOST",
    }
)


MAX_COMPLETED_TASKS = 1000  # --max_completed_tasks_per_framework
MAX_COMPLETED_FRAMEWORKS = 50  # --max_completed_frameworks


@dataclass(frozen=True)
class AgentTimeouts:
    """How long an agent may be silent before it is unreachable (``--agent_ping_timeout`` times
    ``--max_agent_ping_timeouts``), and how long after a failover a recovered agent has to re-register
    (``--agent_reregister_timeout``)."""

    ping_timeout: float = 15.0
    max_ping_timeouts: int = 5
    reregister_timeout: float = 600.0

    @property
    def silence(self) -> float:
        return self.ping_timeout * self.max_ping_timeouts


@dataclass
class Agent:
    id: str
    hostname: str
    resources: Resources
    attributes: list[dict[str, Any]]
    registered_time: float
    ip: str = "127.0.0.1"
    port: int = 5051
    reregistered_time: float | None = None
    connected: bool = False  # its stream is open
    last_seen: float = 0.0  # any call from it, PONGs included

    @property
    def pid(self) -> str:
        return f"slave(1)@{self.ip}:{self.port}"

    def entry(self) -> dict[str, Any]:
        """Its registry entry: what a new leader needs to expect it back."""
        return {
            "id": self.id,
            "hostname": self.hostname,
            "ip": self.ip,
            "port": self.port,
            "resources": self.resources.to_json(),
            "attributes": self.attributes,
            "registered_time": self.registered_time,
        }


@dataclass
class OfferRecord:
    id: str
    framework_id: str
    agent_id: str
    role: str
    resources: Resources


@dataclass
class Task:
    id: str
    framework_id: str
    agent_id: str
    role: str
    info: dict[str, Any]
    resources: Resources
    state: str = "TASK_STAGING"
    statuses: list[dict[str, Any]] = field(default_factory=list)
    unreachable_time: float | None = None
    holding: bool = True  # its resources are allocated on its agent (until a terminal state)

    @property
    def live(self) -> bool:
        return self.state not in TERMINAL and self.state != "TASK_UNREACHABLE"


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
    recovered: bool = False  # known from the registry or an agent, not (re)subscribed to this master yet
    completed_tasks: list[Task] = field(default_factory=list)
    unreachable_tasks: list[Task] = field(default_factory=list)

    def entry(self) -> dict[str, Any]:
        return {"id": self.id, "info": self.info, "registered_time": self.registered_time}

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
