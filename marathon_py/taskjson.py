"""Marathon's JSON about instances, pure: timestamps, the task JSON of ``/v2/apps/{id}/tasks`` and
``/v2/tasks`` (reference §2.4), the AppInfo counts, ``tasksStats`` and ``lastTaskFailure`` (§2.1, §4.1), the
``/v2/queue`` items (§2.5).  Marathon 1.10.26: ``raml/TaskConversion.scala``,
``core/appinfo/TaskCounts.scala``, ``TaskStatsByVersion.scala``, ``impl/TaskForStatistics.scala``,
``state/TaskFailure.scala``, ``raml/QueueInfoConversion.scala``, ``api/v2/json/Formats.scala``.

Keys are exactly those Marathon writes, optional ones left out when unset, so the strict models of the
``marathon`` client (§9.1) accept them; the queue item's ``role`` (Marathon ≥ 1.9) is only written on request
because that client rejects it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from marathon_py.eventjson import ip_json, iso, iso_or_none, millis, task_state
from marathon_py.matcher import REASON_FUNNEL
from marathon_py.upgrade import TERMINAL

if TYPE_CHECKING:
    from marathon_py.health import Health
    from marathon_py.instances import InstanceRecord

JsonObj = dict[str, Any]
_FAILURE_STATES = frozenset(  # TaskFailure.isFailureState
    {
        "TASK_FAILED",
        "TASK_ERROR",
        "TASK_LOST",
        "TASK_DROPPED",
        "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
        "TASK_UNKNOWN",
    }
)


# -- tasks ---------------------------------------------------------------------------------------------------


def app_service_ports(app: Mapping[str, Any]) -> list[int]:
    """``AppDefinition.servicePorts``: of the port mappings if there are any, else of the port definitions."""
    mappings = (app.get("container") or {}).get("portMappings") or []
    if mappings:
        return [int(m.get("servicePort", 0)) for m in mappings]
    return [int(d.get("port", 0)) for d in app.get("portDefinitions") or []]


def task_json(
    rec: InstanceRecord, health: Sequence[Health] = (), service_ports: Sequence[int] = ()
) -> JsonObj | None:
    """The task of an instance (``enrichedTaskRamlWrite``); None before its first launch.  Marathon fills
    ``servicePorts`` for ``/v2/tasks`` only (``/v2/apps`` embeds ``[]``); an inactive task loses its times,
    ports and version.  Remembered by record identity (records are values, replaced on every change) and
    shared: callers serialize it, never change it — ``GET /v2/apps?embed=apps.tasks`` renders every task."""
    key = (tuple(health), tuple(service_ports))
    hit = _TASKS.get(id(rec))
    if hit is not None and hit[0] is rec and hit[1] == key:
        return hit[2]
    if len(_TASKS) >= _TASKS_MAX:
        _TASKS.clear()
    doc = _task_json(rec, health, service_ports)
    _TASKS[id(rec)] = (rec, key, doc)
    return doc


_TASKS: dict[int, tuple[InstanceRecord, tuple[tuple[Health, ...], tuple[int, ...]], JsonObj | None]] = {}
_TASKS_MAX = 100_000


def _task_json(rec: InstanceRecord, health: Sequence[Health], service_ports: Sequence[int]) -> JsonObj | None:
    if rec.task_id is None or rec.placement is None:
        return None
    active = rec.condition not in TERMINAL  # Task.isActive (the task of UnreachableInactive is Unreachable)
    doc: JsonObj = {
        "appId": rec.app_id,
        "healthCheckResults": [h.to_json() for h in health],
        "host": rec.host,
        "id": rec.task_id,
        "ipAddresses": ip_json(rec.ip_addresses),
        "ports": list(rec.host_ports) if active else [],
        "servicePorts": list(service_ports),
        "slaveId": rec.agent_id,
        "state": task_state(rec.condition),
        "stagedAt": _task_time(rec.staged_at) if active else None,
        "startedAt": _task_time(rec.started_at) if active else None,
        "version": rec.version if active else None,
        "localVolumes": [],
        "region": rec.placement.region,
        "zone": rec.placement.zone,
        "role": rec.role,
    }
    return {k: v for k, v in doc.items() if v is not None}


@functools.lru_cache(maxsize=1 << 16)
def _task_time(seconds: float | None) -> str | None:
    """``iso_or_none``, remembered: a task's times do not change, and ``GET /v2/apps?embed=apps.tasks``
    renders every task's (``datetime.fromtimestamp`` costs more than the rest of the task)."""
    return iso_or_none(seconds)


def task_list(
    records: Iterable[InstanceRecord],
    health: Mapping[str, Sequence[Health]],
    service_ports: Sequence[int] = (),
    statuses: Iterable[str] = (),
) -> list[JsonObj]:
    """Tasks of instances, filtered as ``/v2/tasks?status=running|staging`` does (by instance condition;
    no valid status given: no filter)."""
    wanted = {s.lower().capitalize() for s in statuses} & {"Running", "Staging"}
    docs = (
        task_json(r, health.get(r.instance_id, ()), service_ports)
        for r in records
        if not wanted or r.condition in wanted
    )
    return [d for d in docs if d is not None]


# -- AppInfo counts and tasksStats ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stat:
    """``TaskForStatistics`` of one instance."""

    version: str
    running: bool
    staging: bool
    healthy: bool
    unhealthy: bool
    life_time: float | None


def _stats(
    records: Iterable[InstanceRecord], health: Mapping[str, Sequence[Health]], now: float
) -> list[_Stat]:
    """Instances with a task that do not wait for a relaunch; running/staging read the last Mesos state,
    healthy/unhealthy the health results (§6)."""
    out = []
    for r in records:
        if r.scheduled or r.task_id is None:
            continue
        life = None if r.started_at is None else (millis(now) - millis(r.started_at)) / 1000
        out.append(_Stat(r.version, *_state(r, health.get(r.instance_id, ())), life))
    return out


def _state(r: InstanceRecord, results: Sequence[Health]) -> tuple[bool, bool, bool, bool]:
    """Running, staging (the last Mesos state), healthy, unhealthy (the health results)."""
    return (
        r.mesos_state == "TASK_RUNNING",
        r.mesos_state in (None, "TASK_STAGING"),
        bool(results) and all(h.alive for h in results),
        any(not h.alive for h in results),
    )


def _counts(stats: Sequence[_Stat]) -> JsonObj:
    return {
        "staged": sum(s.staging for s in stats),
        "running": sum(s.running for s in stats),
        "healthy": sum(s.healthy for s in stats),
        "unhealthy": sum(s.unhealthy for s in stats),
    }


def app_counts(records: Iterable[InstanceRecord], health: Mapping[str, Sequence[Health]]) -> JsonObj:
    """AppInfo ``tasksStaged``, ``tasksRunning``, ``tasksHealthy``, ``tasksUnhealthy`` (embed counts); as
    ``_counts(_stats(…))``, without building the statistics (``GET /v2/apps`` counts every app)."""
    running = staged = healthy = unhealthy = 0
    for r in records:
        if r.scheduled or r.task_id is None:
            continue
        is_running, is_staging, is_healthy, is_unhealthy = _state(r, health.get(r.instance_id, ()))
        running, staged = running + is_running, staged + is_staging
        healthy, unhealthy = healthy + is_healthy, unhealthy + is_unhealthy
    return {
        "tasksStaged": staged,
        "tasksRunning": running,
        "tasksHealthy": healthy,
        "tasksUnhealthy": unhealthy,
    }


def tasks_stats(
    app: Mapping[str, Any],
    records: Iterable[InstanceRecord],
    health: Mapping[str, Sequence[Health]],
    now: float,
) -> JsonObj:
    """AppInfo ``tasksStats`` (``TaskStatsByVersion``); the split by version needs a full ``versionInfo``."""

    def stats(selected: list[_Stat]) -> JsonObj | None:
        if not selected:
            return None
        doc: JsonObj = {"counts": _counts(selected)}
        lives = sorted(s.life_time for s in selected if s.life_time is not None)
        if lives:
            doc["lifeTime"] = {
                "averageSeconds": sum(lives) / len(lives),
                "medianSeconds": lives[len(lives) // 2],
            }
        return {"stats": doc}

    everything = _stats(records, health, now)
    info = app.get("versionInfo") or {}
    scaled, changed = info.get("lastScalingAt"), info.get("lastConfigChangeAt")
    parts: dict[str, JsonObj | None] = {}
    if scaled and changed:  # ISO timestamps in one format compare as text
        parts["startedAfterLastScaling"] = stats([s for s in everything if s.version >= scaled])
        parts["withLatestConfig"] = stats([s for s in everything if s.version >= changed])
        parts["withOutdatedConfig"] = stats([s for s in everything if s.version < changed])
    parts["totalSummary"] = stats(everything)
    return {k: v for k, v in parts.items() if v is not None}


def task_failure(status_event: Mapping[str, Any]) -> JsonObj | None:
    """``lastTaskFailure`` from a ``status_update_event`` of a failure state (TASK_LOST: any reason)."""
    if status_event.get("taskStatus") not in _FAILURE_STATES:
        return None
    e = status_event
    return _failure(e["appId"], e["host"], e["message"], e["taskStatus"], e["taskId"], e, e["slaveId"])


def kill_failure(kill_event: Mapping[str, Any]) -> JsonObj:
    """``lastTaskFailure`` from an ``unhealthy_instance_kill_event`` (``FromUnhealthyInstanceKillEvent``)."""
    e = kill_event
    message = f"Task was killed since health check failed. Reason: {e['reason']}"
    return _failure(e["appId"], e["host"], message, "TASK_KILLED", e["taskId"], e, e.get("slaveId"))


def _failure(
    app_id: str, host: str, message: str, state: str, task_id: str, e: Mapping[str, Any], slave: str | None
) -> JsonObj:
    doc = {"appId": app_id, "host": host, "message": message, "state": state, "taskId": task_id}
    doc |= {"timestamp": e["timestamp"], "version": e["version"]}
    return doc if slave is None else doc | {"slaveId": slave}


# -- /v2/queue -----------------------------------------------------------------------------------------------


@dataclass
class OfferStats:
    """``OfferMatchStatistics`` of one app's launch attempt (start a fresh one when nothing is left to launch,
    Marathon's ``LaunchFinished``)."""

    processed: int = 0
    unused: int = 0
    reject_summary: dict[str, int] = field(default_factory=dict)
    last_match_at: float | None = None
    last_no_match_at: float | None = None
    last_no_matches: dict[str, JsonObj] = field(default_factory=dict)  # per agent: the last unused offer

    def matched(self, now: float) -> None:
        self.processed += 1
        self.last_match_at = now

    def unmatched(self, offer: Mapping[str, Any], reasons: Sequence[str], now: float) -> None:
        self.processed += 1
        self.unused += 1
        self.last_no_match_at = now
        if reasons:
            first = min(reasons, key=REASON_FUNNEL.index)
            self.reject_summary[first] = self.reject_summary.get(first, 0) + 1
        agent = str((offer.get("agent_id") or {}).get("value", ""))
        self.last_no_matches[agent] = {
            "offer": offer_json(offer),
            "reason": list(reasons),
            "timestamp": iso(now),
        }

    def summary(self) -> JsonObj:
        last = [
            min(u["reason"], key=REASON_FUNNEL.index) for u in self.last_no_matches.values() if u["reason"]
        ]
        doc: JsonObj = {"processedOffersCount": self.processed, "unusedOffersCount": self.unused}
        doc |= {"lastUnusedOfferAt": iso_or_none(self.last_no_match_at)}
        doc |= {"lastUsedOfferAt": iso_or_none(self.last_match_at)}
        doc["rejectSummaryLastOffers"] = _funnel(len(self.last_no_matches), {r: last.count(r) for r in last})
        doc["rejectSummaryLaunchAttempt"] = _funnel(self.processed, self.reject_summary)
        return {k: v for k, v in doc.items() if v is not None}


def _funnel(processed: int, summary: Mapping[str, int]) -> list[JsonObj]:
    """``declinedOfferSteps``: each reason of the funnel declines some of what the previous ones let pass."""
    steps = []
    for reason in REASON_FUNNEL:
        declined = summary.get(reason, 0)
        steps.append({"reason": reason, "declined": declined, "processed": processed})
        processed -= declined
    return steps


def offer_json(offer: Mapping[str, Any]) -> JsonObj:
    """A v1 Offer as the RAML ``Offer`` of ``lastUnusedOffers`` (``OfferConversion``)."""

    def values(doc: Mapping[str, Any]) -> JsonObj:
        kind = doc.get("type")
        if kind == "SCALAR":
            return {"scalar": doc["scalar"]["value"]}
        if kind == "RANGES":
            return {
                "ranges": [{"begin": r["begin"], "end": r["end"]} for r in doc["ranges"].get("range", [])]
            }
        if kind == "SET":
            return {"set": list(doc["set"].get("item", []))}
        return {"text": doc["text"]["value"]} if kind == "TEXT" else {}

    return {
        "id": offer["id"]["value"],
        "hostname": offer.get("hostname", ""),
        "agentId": offer["agent_id"]["value"],
        "resources": [
            {"name": r["name"], "role": r.get("role", "*")} | values(r) for r in offer["resources"]
        ],
        "attributes": [{"name": a["name"]} | values(a) for a in offer.get("attributes") or []],
    }


def queue_items(
    app: Mapping[str, Any],
    records: Iterable[InstanceRecord],
    *,
    delay: Mapping[str, Any],
    stats: OfferStats,
    last_unused: bool = False,
    with_role: bool = False,
) -> list[JsonObj]:
    """``/v2/queue`` items of an app, one per role with instances waiting for (or in) a launch: ``count`` is
    what is left, ``since`` when the oldest started waiting; ``delay`` is ``LaunchDelay.queue_delay(now)``."""
    by_role: dict[str, list[InstanceRecord]] = {}
    for r in records:
        if r.launching:
            by_role.setdefault(r.role, []).append(r)
    items = []
    for role, waiting in by_role.items():
        item: JsonObj = {"count": len(waiting)} | ({"role": role} if with_role else {})
        item |= {"delay": dict(delay), "since": iso(min(r.queued_at or 0.0 for r in waiting))}
        item["processedOffersSummary"] = stats.summary()
        if last_unused:
            item["lastUnusedOffers"] = list(stats.last_no_matches.values())
        items.append(item | {"app": dict(app)})
    return items
