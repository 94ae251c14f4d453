"""The master's operator views as Mesos renders them (v0 JSON model, reference §4.2 to 4.4).

Pure functions of the core and a few facts about this master process (``Meta``): ``/master/state``,
``/master/state-summary``, ``/master/slaves``, ``/master/frameworks``, ``/master/tasks`` and
``/metrics/snapshot``.  Consumers are picky (mesos-dns drops the whole document if one ``pid`` does
not parse as ``name@host:port``; the web UI needs ``leader_info``), so field names follow Mesos.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from paas_common.resources import EMPTY, Resources, attributes_model
from paas_common.web import BUILD

from .core import MasterCore
from .model import Agent, Framework, Task

TASK_STATES = (
    "TASK_STAGING",
    "TASK_STARTING",
    "TASK_RUNNING",
    "TASK_KILLING",
    "TASK_FINISHED",
    "TASK_KILLED",
    "TASK_FAILED",
    "TASK_LOST",
    "TASK_ERROR",
    "TASK_DROPPED",
    "TASK_UNREACHABLE",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
    "TASK_UNKNOWN",
)
TASKS_LIMIT = 100  # /master/tasks default page size
# Mesos' counters among the snapshot's keys (the rest are gauges), for the Prometheus types.
COUNTERS = frozenset(
    [f"master/tasks_{s}" for s in ("finished", "failed", "killed", "lost", "error", "dropped", "gone")]
    + ["master/slave_registrations", "master/slave_reregistrations", "master/valid_status_updates"]
)


@dataclass(frozen=True)
class Meta:
    """What the views say about the master itself."""

    version: str
    id: str
    pid: str
    hostname: str
    start_time: float
    elected_time: float | None
    leading: bool
    leader: Mapping[str, Any] | None
    flags: Mapping[str, str]


def _sum(items: Iterable[Resources]) -> Resources:
    total = EMPTY
    for r in items:
        total = total + r
    return total


def task_json(task: Task) -> dict[str, Any]:
    info = task.info
    doc: dict[str, Any] = {
        "id": task.id,
        "name": info.get("name", ""),
        "framework_id": task.framework_id,
        "executor_id": "",
        "slave_id": task.agent_id,
        "state": task.state,
        "resources": task.resources.model(),
        "role": task.role,
        "statuses": [_status_json(s) for s in task.statuses],
    }
    for key in ("labels", "discovery", "container", "health_check", "kill_policy", "user"):
        if key in info:
            doc[key] = info[key]
    if task.unreachable_time is not None:
        doc["unreachable_time"] = {"nanoseconds": int(task.unreachable_time * 1e9)}
    return doc


def _status_json(status: Mapping[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"state": status.get("state"), "timestamp": status.get("timestamp", 0.0)}
    for key in ("labels", "container_status", "healthy"):
        if key in status:
            doc[key] = status[key]
    return doc


def _used(core: MasterCore, agent_id: str | None = None, framework_id: str | None = None) -> Resources:
    return _sum(
        t.resources
        for t in core.tasks.values()
        if t.holding
        and (agent_id is None or t.agent_id == agent_id)
        and (framework_id is None or t.framework_id == framework_id)
    )


def _offered(core: MasterCore, agent_id: str | None = None, framework_id: str | None = None) -> Resources:
    return _sum(
        o.resources
        for o in core.offers.values()
        if (agent_id is None or o.agent_id == agent_id)
        and (framework_id is None or o.framework_id == framework_id)
    )


def agent_json(core: MasterCore, agent: Agent, version: str) -> dict[str, Any]:
    reserved = {role: agent.resources.reserved(role).model() for role in sorted(agent.resources.roles())}
    doc: dict[str, Any] = {
        "id": agent.id,
        "hostname": agent.hostname,
        "port": agent.port,
        "pid": agent.pid,
        "attributes": attributes_model(agent.attributes),
        "registered_time": agent.registered_time,
        "resources": agent.resources.model(),
        "used_resources": _used(core, agent_id=agent.id).model(),
        "offered_resources": _offered(core, agent_id=agent.id).model(),
        "reserved_resources": reserved,
        "unreserved_resources": agent.resources.unreserved().model(),
        "active": agent.connected,
        "deactivated": not agent.connected,
        "version": version,
        "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
    }
    if agent.reregistered_time is not None:
        doc["reregistered_time"] = agent.reregistered_time
    return doc


def framework_json(core: MasterCore, fw: Framework) -> dict[str, Any]:
    info = fw.info
    tasks = [task_json(t) for t in core.tasks.values() if t.framework_id == fw.id]
    used = _used(core, framework_id=fw.id).model()
    doc: dict[str, Any] = {
        "id": fw.id,
        "name": info.get("name", ""),
        "user": info.get("user", ""),
        "hostname": info.get("hostname", ""),
        "webui_url": info.get("webui_url", ""),
        "active": fw.active,
        "connected": fw.connected,
        "recovered": fw.recovered,
        "failover_timeout": fw.failover_timeout,
        "checkpoint": bool(info.get("checkpoint", False)),
        "registered_time": fw.registered_time,
        "unregistered_time": fw.unregistered_time or 0,
        "roles": fw.roles,
        "capabilities": [c.get("type") for c in info.get("capabilities", []) if isinstance(c, dict)],
        "resources": used,
        "used_resources": used,
        "offered_resources": _offered(core, framework_id=fw.id).model(),
        "tasks": tasks,
        "unreachable_tasks": [task_json(t) for t in fw.unreachable_tasks],
        "completed_tasks": [task_json(t) for t in fw.completed_tasks],
        "offers": [
            {
                "id": o.id,
                "framework_id": o.framework_id,
                "slave_id": o.agent_id,
                "allocation_info": {"role": o.role},
                "resources": o.resources.model(),
            }
            for o in core.offers.values()
            if o.framework_id == fw.id
        ],
        "executors": [],
        "offer_constraints": {},
    }
    for key in ("principal", "labels"):
        if key in info:
            doc[key] = info[key]
    if fw.reregistered_time is not None:
        doc["reregistered_time"] = fw.reregistered_time
    return doc


def _header(meta: Meta) -> dict[str, Any]:
    leader = dict(meta.leader or {})
    doc: dict[str, Any] = {
        "version": meta.version,
        **BUILD,
        "start_time": meta.start_time,
        "id": meta.id,
        "pid": meta.pid,
        "hostname": meta.hostname,
        "leader": leader.get("pid", ""),
        "leader_info": {k: leader[k] for k in ("id", "pid", "port", "hostname") if k in leader},
        "flags": dict(meta.flags),
        "capabilities": ["AGENT_UPDATE", "AGENT_DRAINING"],
    }
    if meta.elected_time is not None and meta.leading:
        doc["elected_time"] = meta.elected_time
    return doc


def state(core: MasterCore, meta: Meta) -> dict[str, Any]:
    """``/master/state``.  A standby knows nothing of the cluster: only its header and the leader."""
    doc = _header(meta)
    agents = list(core.agents.values()) if meta.leading else []
    doc.update(
        {
            "activated_slaves": sum(a.connected for a in agents),
            "deactivated_slaves": sum(not a.connected for a in agents),
            "unreachable_slaves": len(core.unreachable_agents) if meta.leading else 0,
            "slaves": [agent_json(core, a, meta.version) for a in agents],
            "recovered_slaves": _recovered(core) if meta.leading else [],
            "frameworks": [framework_json(core, f) for f in core.frameworks.values()] if meta.leading else [],
            "completed_frameworks": [framework_json(core, f) for f in core.completed_frameworks]
            if meta.leading
            else [],
            "orphan_tasks": [],
            "unregistered_frameworks": [],
        }
    )
    return doc


def _recovered(core: MasterCore) -> list[dict[str, Any]]:
    out = []
    for entry in core.recovered_agents.values():
        res = Resources.from_json(entry.get("resources") or [])
        out.append(
            {
                "id": entry["id"],
                "hostname": entry.get("hostname", ""),
                "port": entry.get("port", 5051),
                "pid": f"slave(1)@{entry.get('ip', '127.0.0.1')}:{entry.get('port', 5051)}",
                "resources": res.model(),
                "attributes": attributes_model(entry.get("attributes") or []),
            }
        )
    return out


def state_summary(core: MasterCore, meta: Meta) -> dict[str, Any]:
    """``/master/state-summary``: agents and frameworks with task counts, no task lists."""
    per_agent: dict[str, Counter[str]] = {}
    per_fw: dict[str, Counter[str]] = {}
    agent_fws: dict[str, set[str]] = {}
    fw_agents: dict[str, set[str]] = {}
    for t in core.tasks.values():
        per_agent.setdefault(t.agent_id, Counter())[t.state] += 1
        per_fw.setdefault(t.framework_id, Counter())[t.state] += 1
        agent_fws.setdefault(t.agent_id, set()).add(t.framework_id)
        fw_agents.setdefault(t.framework_id, set()).add(t.agent_id)
    for fw in core.frameworks.values():
        for t in fw.completed_tasks + fw.unreachable_tasks:
            per_fw.setdefault(fw.id, Counter())[t.state] += 1
    slaves = []
    for a in core.agents.values() if meta.leading else []:
        doc = agent_json(core, a, meta.version)
        doc.update({s: per_agent.get(a.id, Counter())[s] for s in TASK_STATES})
        doc["framework_ids"] = sorted(agent_fws.get(a.id, ()))
        slaves.append(doc)
    frameworks = []
    for fw in core.frameworks.values() if meta.leading else []:
        doc = {k: v for k, v in framework_json(core, fw).items() if not k.endswith("tasks") and k != "offers"}
        doc.update({s: per_fw.get(fw.id, Counter())[s] for s in TASK_STATES})
        doc["slave_ids"] = sorted(fw_agents.get(fw.id, ()))
        frameworks.append(doc)
    return {"hostname": meta.hostname, "slaves": slaves, "frameworks": frameworks}


def slaves(core: MasterCore, meta: Meta, agent_id: str | None = None) -> dict[str, Any]:
    """``/master/slaves`` (``?slave_id=`` filters)."""
    agents = [a for a in core.agents.values() if agent_id is None or a.id == agent_id]
    return {
        "slaves": [agent_json(core, a, meta.version) for a in agents] if meta.leading else [],
        "recovered_slaves": _recovered(core) if meta.leading else [],
    }


def frameworks(core: MasterCore, meta: Meta, framework_id: str | None = None) -> dict[str, Any]:
    """``/master/frameworks`` (``?framework_id=`` filters)."""

    def pick(fws: Iterable[Framework]) -> list[dict[str, Any]]:
        if not meta.leading:
            return []
        return [framework_json(core, f) for f in fws if framework_id is None or f.id == framework_id]

    return {
        "frameworks": pick(core.frameworks.values()),
        "completed_frameworks": pick(core.completed_frameworks),
        "unregistered_frameworks": [],
    }


def tasks(
    core: MasterCore,
    meta: Meta,
    *,
    limit: int = TASKS_LIMIT,
    offset: int = 0,
    order: str = "des",
    framework_id: str | None = None,
    task_id: str | None = None,
) -> dict[str, Any]:
    """``/master/tasks``: live, unreachable and completed tasks, newest first unless ``order=asc``."""
    if not meta.leading:
        return {"tasks": []}
    every: list[Task] = list(core.tasks.values())
    for fw in list(core.frameworks.values()) + core.completed_frameworks:
        every += fw.unreachable_tasks + fw.completed_tasks
    chosen = [
        t
        for t in every
        if (framework_id is None or t.framework_id == framework_id) and (task_id is None or t.id == task_id)
    ]
    chosen.sort(key=_started, reverse=order != "asc")
    return {"tasks": [task_json(t) for t in chosen[offset : offset + limit]]}


def _started(task: Task) -> float:
    return float(task.statuses[0].get("timestamp", 0.0)) if task.statuses else 0.0


def metrics(core: MasterCore, meta: Meta, now: float) -> dict[str, float]:
    """``/metrics/snapshot`` with Mesos' key names (reference §4.4)."""
    fws = list(core.frameworks.values()) if meta.leading else []
    agents = list(core.agents.values()) if meta.leading else []
    live = Counter(t.state for t in core.tasks.values()) if meta.leading else Counter()
    ended: Counter[str] = Counter()
    for fw in fws + (core.completed_frameworks if meta.leading else []):
        ended.update(t.state for t in fw.completed_tasks)
    out: dict[str, float] = {
        "master/elected": 1.0 if meta.leading else 0.0,
        "master/uptime_secs": now - meta.start_time,
        "master/frameworks_active": sum(f.active for f in fws),
        "master/frameworks_inactive": sum(not f.active for f in fws),
        "master/frameworks_connected": sum(f.connected for f in fws),
        "master/frameworks_disconnected": sum(not f.connected for f in fws),
        "master/slaves_active": sum(a.connected for a in agents),
        "master/slaves_inactive": sum(not a.connected for a in agents),
        "master/slaves_connected": sum(a.connected for a in agents),
        "master/slaves_disconnected": sum(not a.connected for a in agents),
        "master/slaves_unreachable": len(core.unreachable_agents) if meta.leading else 0,
        "master/outstanding_offers": len(core.offers) if meta.leading else 0,
        "master/tasks_staging": live["TASK_STAGING"],
        "master/tasks_starting": live["TASK_STARTING"],
        "master/tasks_running": live["TASK_RUNNING"],
        "master/tasks_killing": live["TASK_KILLING"],
    }
    for state_name in ("finished", "failed", "killed", "lost", "error", "dropped", "gone", "unreachable"):
        key = f"master/tasks_{state_name}"
        name = f"TASK_{state_name.upper()}"
        out[key] = max(core.counters.get(key, 0), ended[name] + live[name])
    total = _sum(a.resources for a in agents)
    used = _used(core) if meta.leading else EMPTY
    for name in ("cpus", "mem", "disk", "gpus"):
        t, u = total.scalar(name), used.scalar(name)
        out[f"master/{name}_total"] = t
        out[f"master/{name}_used"] = u
        out[f"master/{name}_percent"] = u / t if t else 0.0
    for key in ("master/slave_registrations", "master/slave_reregistrations", "master/valid_status_updates"):
        out[key] = core.counters.get(key, 0)
    return out
