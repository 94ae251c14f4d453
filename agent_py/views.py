"""What the agent's HTTP endpoints answer, rendered from a snapshot of its state by pure functions.

Shapes follow Mesos 1.11's agent (src/slave/http.cpp, src/common/http.cpp): ``/state`` is the v0 JSON model
(resources as ``{"cpus": 2.0, …, "ports": "[31000-31100]"}`` maps, attributes as ``{name: value}``, tasks
with ``statuses[]`` of ``{state, timestamp, container_status?, healthy?}``, TaskInfo's ``container`` and
``health_check`` passed through); ``/monitor/statistics`` and ``/containers`` list one entry per live
container with its ResourceStatistics; ``/metrics/snapshot`` is a flat name → number map with Mesos'
names, which ``prometheus`` re-renders in the Prometheus text format (``slave/tasks_running`` →
``mesos_slave_tasks_running``).

Every task here runs under Mesos' "command executor" model: its executor has the task's id, the name Mesos
gives it (``Command Executor (Task: t) (Command: sh -c '…')``) and the task's resources.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent_py.checkpoint import TaskCheckpoint
from agent_py.containerizer import Usage
from paas_common.resources import Resources, attributes_model
from paas_common.web import BUILD, MESOS_VERSION

TERMINAL = frozenset(
    {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED", "TASK_GONE"}
)
SCALARS = ("cpus", "gpus", "mem", "disk")

# Counters (Mesos' process::metrics::Counter); every other metric is a gauge.  Help texts: docs/monitoring.md.
COUNTERS: dict[str, str] = {
    "slave/tasks_finished": "Number of finished tasks",
    "slave/tasks_failed": "Number of failed tasks",
    "slave/tasks_killed": "Number of killed tasks",
    "slave/tasks_lost": "Number of lost tasks",
    "slave/tasks_gone": "Number of gone tasks",
    "slave/executors_terminated": "Number of terminated executors",
    "slave/valid_status_updates": "Number of valid status updates",
    "slave/invalid_status_updates": "Number of invalid status updates",
    "slave/container_launch_errors": "Number of container launch errors",
    "slave/recovery_errors": "Number of errors encountered during agent recovery",
    "containerizer/mesos/container_destroy_errors": "Number of containers that failed to be destroyed",
}
GAUGES: dict[str, str] = {
    "slave/registered": "Whether this agent is registered with a master",
    "slave/uptime_secs": "Uptime in seconds",
    "slave/frameworks_active": "Number of active frameworks",
    "slave/tasks_staging": "Number of staging tasks",
    "slave/tasks_starting": "Number of starting tasks",
    "slave/tasks_running": "Number of running tasks",
    "slave/tasks_killing": "Number of killing tasks",
    "slave/executors_registering": "Number of executors registering",
    "slave/executors_running": "Number of executors running",
    "slave/executors_terminating": "Number of terminating executors",
    "system/cpus_total": "Number of CPUs available",
    "system/load_1min": "Load average for the past minute",
    "system/load_5min": "Load average for the past 5 minutes",
    "system/load_15min": "Load average for the past 15 minutes",
    "system/mem_total_bytes": "Total memory in bytes",
    "system/mem_free_bytes": "Free memory in bytes",
}
for _name in SCALARS:
    GAUGES[f"slave/{_name}_total"] = f"Number of {_name} offered by this agent"
    GAUGES[f"slave/{_name}_used"] = f"Number of allocated {_name}"
    GAUGES[f"slave/{_name}_percent"] = f"Percentage of allocated {_name}"


class TaskLike(Protocol):
    """A task as the agent holds it: its checkpoint and the statuses it reported (oldest first)."""

    @property
    def cp(self) -> TaskCheckpoint: ...

    @property
    def statuses(self) -> Sequence[dict[str, Any]]: ...


@dataclass(frozen=True)
class AgentView:
    """A snapshot of the agent for rendering (built by the daemon on each request)."""

    agent_id: str | None
    hostname: str
    ip: str
    port: int
    start_time: float
    resources: Resources
    attributes: Sequence[dict[str, Any]] = ()
    flags: Mapping[str, str] = field(default_factory=dict)
    master: str | None = None  # the master's URL while registered
    registered: bool = False
    tasks: Sequence[TaskLike] = ()  # known now, terminal ones included until their last update is acked
    completed: Sequence[TaskLike] = ()  # done and forgotten (bounded), oldest first
    counters: Mapping[str, int] = field(default_factory=dict)

    @property
    def pid(self) -> str:
        return f"slave(1)@{self.ip if self.ip not in ('', '0.0.0.0') else self.hostname}:{self.port}"


# ---------------------------------------------------------------- /state


def resources_of(task: Mapping[str, Any]) -> Resources:
    try:
        return Resources.from_json(task.get("resources") or [])
    except ValueError:  # a task the agent could not parse still shows, with no resources
        return Resources()


def task_role(task: Mapping[str, Any]) -> str:
    """Mesos takes the role of the task's first resource (MESOS-6636: a task's resources share one)."""
    for r in task.get("resources") or []:
        if not isinstance(r, dict):
            continue
        role = (r.get("allocation_info") or {}).get("role")
        reservations = r.get("reservations") or []
        if not role and reservations and isinstance(reservations[-1], dict):
            role = reservations[-1].get("role")
        return str(role or r.get("role") or "*")
    return "*"


def executor_name(task: Mapping[str, Any]) -> str:
    """The name Mesos gives a task's command executor (``Slave::getExecutorInfo``)."""
    tid = str((task.get("task_id") or {}).get("value", ""))
    command = task.get("command") or {}
    value = command.get("value")
    if command.get("shell", True):
        if value is None:
            what = "(Command: NO COMMAND)"
        else:
            what = f"(Command: sh -c '{value[:12] + '...' if len(value) > 15 else value}')"
    elif value is None:
        what = "(Command: NO EXECUTABLE)"
    else:
        args = ", ".join([value, *[str(a) for a in command.get("arguments") or []]])
        what = f"(Command: [{args[:12] + '...' if len(args) > 15 else args}])"
    return f"Command Executor (Task: {tid}) {what}"


def status_model(status: Mapping[str, Any]) -> dict[str, Any]:
    """``model(TaskStatus)``: state, timestamp and, when present, labels, container status, healthy."""
    out: dict[str, Any] = {"state": status.get("state"), "timestamp": status.get("timestamp")}
    labels = status.get("labels")
    if isinstance(labels, dict):
        out["labels"] = labels.get("labels") or []
    container = status.get("container_status")
    if isinstance(container, dict):
        out["container_status"] = {
            k: container[k] for k in ("container_id", "network_infos", "cgroup_info") if k in container
        }
    if "healthy" in status:
        out["healthy"] = status["healthy"]
    return out


def task_model(t: TaskLike, agent_id: str | None) -> dict[str, Any]:
    """``json(Task)`` of the v0 model."""
    info = t.cp.task
    out: dict[str, Any] = {
        "id": t.cp.task_id,
        "name": info.get("name", ""),
        "framework_id": t.cp.framework_id,
        "executor_id": "",  # command tasks have no ExecutorInfo of their own
        "slave_id": agent_id or "",
        "state": t.cp.state,
        "resources": resources_of(info).model(),
        "role": task_role(info),
        "statuses": [status_model(s) for s in t.statuses],
    }
    user = (info.get("command") or {}).get("user")
    if user:
        out["user"] = user
    labels = info.get("labels")
    if isinstance(labels, dict):
        out["labels"] = labels.get("labels") or []
    for key in ("discovery", "container", "health_check"):
        if key in info:
            out[key] = info[key]
    return out


def executor_model(t: TaskLike, agent_id: str | None) -> dict[str, Any]:
    """The task's command executor, holding it in ``tasks`` or (once terminal) ``completed_tasks``."""
    task = task_model(t, agent_id)
    done = t.cp.state in TERMINAL
    return {
        "id": t.cp.task_id,
        "name": executor_name(t.cp.task),
        "source": t.cp.task_id,
        "container": t.cp.container_id,
        "directory": str((t.cp.container or {}).get("sandbox", "")),
        "resources": task["resources"],
        "role": task["role"],
        "tasks": [] if done else [task],
        "queued_tasks": [],
        "completed_tasks": [task] if done else [],
    }


def framework_model(
    info: Mapping[str, Any], executors: list[dict[str, Any]], completed: list[dict[str, Any]]
) -> dict[str, Any]:
    """``FrameworkWriter``: role or roles (MULTI_ROLE frameworks), executors and completed executors."""
    out: dict[str, Any] = {
        "id": str((info.get("id") or {}).get("value", "")),
        "name": info.get("name", ""),
        "user": info.get("user", ""),
        "failover_timeout": info.get("failover_timeout", 0),
        "checkpoint": bool(info.get("checkpoint", False)),
        "hostname": info.get("hostname", ""),
    }
    if "principal" in info:
        out["principal"] = info["principal"]
    capabilities = {c.get("type") for c in info.get("capabilities") or [] if isinstance(c, dict)}
    if "MULTI_ROLE" in capabilities:
        out["roles"] = list(info.get("roles") or [])
    else:
        out["role"] = info.get("role", "*")
    out["executors"] = executors
    out["completed_executors"] = completed
    return out


def _shown(tasks: Iterable[TaskLike]) -> list[TaskLike]:
    """Tasks with a container id; a KILL_TASK for a task never seen here gets a TASK_LOST from a stand-in
    without one, which is not a task of this agent."""
    return [t for t in tasks if t.cp.container_id]


def used_resources(tasks: Iterable[TaskLike]) -> Resources:
    """What the agent's live tasks hold."""
    used = Resources()
    for t in tasks:
        if t.cp.state not in TERMINAL:
            used = used + resources_of(t.cp.task)
    return used


def state(view: AgentView) -> dict[str, Any]:
    """``/state``."""
    agent_id = view.agent_id
    live = _shown(view.tasks)
    frameworks: dict[str, tuple[Mapping[str, Any], list[dict[str, Any]], list[dict[str, Any]]]] = {}
    for t in live:
        entry = frameworks.setdefault(t.cp.framework_id, (t.cp.framework, [], []))
        entry[1].append(executor_model(t, agent_id))
    completed: dict[str, tuple[Mapping[str, Any], list[dict[str, Any]], list[dict[str, Any]]]] = {}
    for t in _shown(view.completed):
        target = frameworks if t.cp.framework_id in frameworks else completed
        entry = target.setdefault(t.cp.framework_id, (t.cp.framework, [], []))
        entry[2].append(executor_model(t, agent_id))
    total, used = view.resources, used_resources(live)
    reserved_roles = sorted(r for r in total.roles() if r != "*")
    doc: dict[str, Any] = {
        "version": MESOS_VERSION,
        **BUILD,
        "start_time": view.start_time,
        "id": agent_id or "",
        "pid": view.pid,
        "hostname": view.hostname,
        "capabilities": [],
        "resources": total.model(),
        "reserved_resources": {role: total.reserved(role).model() for role in reserved_roles},
        "unreserved_resources": total.unreserved().model(),
        "reserved_resources_full": {role: total.reserved(role).to_json() for role in reserved_roles},
        "unreserved_resources_full": total.unreserved().to_json(),
        "reserved_resources_allocated": {
            role: used.reserved(role).model() for role in sorted(r for r in used.roles() if r != "*")
        },
        "unreserved_resources_allocated": used.unreserved().model(),
        "resource_providers": [],
        "attributes": attributes_model(view.attributes),
        "flags": dict(view.flags),
        "frameworks": [framework_model(*f) for f in frameworks.values()],
        "completed_frameworks": [framework_model(*f) for f in completed.values()],
    }
    if view.master:
        doc["master_hostname"] = master_hostname(view.master)
    return doc


def master_hostname(url: str) -> str:
    host = url.split("://", 1)[-1].split("/", 1)[0]
    return host.rsplit(":", 1)[0].strip("[]")


# ---------------------------------------------------------------- /monitor/statistics, /containers


def live_containers(view: AgentView) -> list[TaskLike]:
    """Tasks whose container exists (launched, not terminal): the ones with statistics."""
    return [t for t in _shown(view.tasks) if t.cp.container is not None and t.cp.state not in TERMINAL]


def _executor_entry(t: TaskLike) -> dict[str, Any]:
    return {
        "executor_id": t.cp.task_id,
        "executor_name": executor_name(t.cp.task),
        "framework_id": t.cp.framework_id,
        "source": t.cp.task_id,
    }


def statistics(view: AgentView, usage: Mapping[str, Usage]) -> list[dict[str, Any]]:
    """``/monitor/statistics``: containers without a sample (it failed or timed out) are left out."""
    return [
        {**_executor_entry(t), "statistics": usage[t.cp.container_id].to_json()}
        for t in live_containers(view)
        if t.cp.container_id in usage
    ]


class QueryError(ValueError):
    """A query the endpoint does not support (400)."""


def containers(view: AgentView, usage: Mapping[str, Usage], query: Mapping[str, str]) -> list[dict[str, Any]]:
    """``/containers``, filtered by ``container_id`` alone, ``framework_id`` alone, or ``executor_id`` with
    ``framework_id`` (Mesos' rule)."""
    cid, fid, eid = query.get("container_id"), query.get("framework_id"), query.get("executor_id")
    if (cid is not None and (eid is not None or fid is not None)) or (
        cid is None and eid is not None and fid is None
    ):
        raise QueryError(
            "Supported query parameters are container_id only, framework_id only,"
            " or executor_id and framework_id only"
        )
    out = []
    for t in live_containers(view):
        if (cid, fid, eid) != (None, None, None) and not (
            cid == t.cp.container_id
            or (cid is None and fid == t.cp.framework_id and eid in (None, t.cp.task_id))
        ):
            continue
        status: dict[str, Any] = {"container_id": {"value": t.cp.container_id}}
        pid = (t.cp.container or {}).get("pid")
        if pid:
            status["executor_pid"] = pid
        entry = {**_executor_entry(t), "container_id": t.cp.container_id, "status": status}
        if t.cp.container_id in usage:
            entry["statistics"] = usage[t.cp.container_id].to_json()
        out.append(entry)
    return out


# ---------------------------------------------------------------- metrics


def metrics(view: AgentView, now: float, system: Mapping[str, float]) -> dict[str, float]:
    """``/metrics/snapshot`` (``system/*`` from the caller's sample, as libprocess' system metrics)."""
    tasks = _shown(view.tasks)
    states = [t.cp.state for t in tasks]
    live = [t for t in tasks if t.cp.state not in TERMINAL]
    used = used_resources(live)
    out: dict[str, float] = {name: float(view.counters.get(name, 0)) for name in COUNTERS}
    out.update(
        {
            "slave/registered": 1.0 if view.registered else 0.0,
            "slave/uptime_secs": max(0.0, now - view.start_time),
            "slave/frameworks_active": float(len({t.cp.framework_id for t in live})),
            "slave/tasks_staging": float(states.count("TASK_STAGING")),
            "slave/tasks_starting": float(states.count("TASK_STARTING")),
            "slave/tasks_running": float(states.count("TASK_RUNNING")),
            "slave/tasks_killing": float(states.count("TASK_KILLING")),
            "slave/executors_registering": float(sum(t.cp.container is None for t in live)),
            "slave/executors_running": float(
                sum(t.cp.container is not None and not t.cp.killed for t in live)
            ),
            "slave/executors_terminating": float(
                sum(t.cp.container is not None and t.cp.killed for t in live)
            ),
        }
    )
    for name in SCALARS:
        total, in_use = view.resources.scalar(name), used.scalar(name)
        out[f"slave/{name}_total"] = total
        out[f"slave/{name}_used"] = in_use
        out[f"slave/{name}_percent"] = in_use / total if total else 0.0
    out.update({k: float(v) for k, v in system.items() if k in GAUGES})
    return out
