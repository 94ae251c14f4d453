"""Marathon's instance tracker as a pure core (reference §8 "Instance tracker", "Reconciliation", "Offer
matching"; §4.1 ``unreachableStrategy``; §3 events).  Marathon 1.10.26: ``core/instance/Instance.scala``,
``InstanceUpdater.scala``, ``core/task/TaskCondition.scala``, ``TaskStatusUpdateProcessorImpl.scala``,
``OverdueInstancesActor.scala``, ``ExpungeOverdueLostTasksActor.scala``, ``ScaleAppUpdateStepImpl.scala``.

An instance has a *goal* (Running, Stopped, Decommissioned: what deployments and the API want) and a
*condition* (what Mesos last said).  Inputs — ``schedule``, ``launched``, ``apply`` (a v1 ``TaskStatus``,
mesos.md §2.5), ``set_goal``, ``kill``, ``set_health``, ``tick``, ``scale``, ``reconcile`` — each take ``now``
(seconds since the epoch) and answer with an ``Update``: changed records, Marathon's event JSON, kills to
send, condition changes for the launch backoff (``backoff.LaunchDelay.on_condition``) and apps that need a
scale check.  The caller carries them out.

Rules kept from Marathon: a task's condition never leaves a terminal one; an instance with goal Running and a
terminal condition waits for a relaunch (``to_launch``) under the same id; Decommissioned instances are
expunged once terminal; Unreachable becomes UnreachableInactive after ``inactiveAfterSeconds`` (a scale check
then starts a replacement) and is expunged after ``expungeAfterSeconds`` (0/0 by default: both at once);
tasks staged longer than ``--task_launch_timeout`` are killed.  Unlike Marathon, which only re-evaluates an
unreachable instance when Mesos repeats TASK_UNREACHABLE, ``tick`` also does it as time passes.
Not modelled: resident apps (reservations, goal Stopped semantics), pods.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from marathon_py import upgrade
from marathon_py.constraints import Placement
from marathon_py.eventjson import MESOS_CONDITIONS, event, ip_json, iso_or_none
from marathon_py.healthchecks import MARATHON_PROTOCOLS
from marathon_py.matcher import Match, app_role
from marathon_py.taskinfo import instance_id as make_instance_id
from marathon_py.taskinfo import next_incarnation
from marathon_py.upgrade import ACTIVE, TERMINAL

JsonObj = dict[str, Any]
_STATE_CONDITION = {f"TASK_{c.upper()}": c for c in MESOS_CONDITIONS} | {"TASK_GONE_BY_OPERATOR": "Gone"}
# TaskConditionMapping: TASK_LOST with these reasons may come back; REASON_TASK_UNKNOWN is Unknown; any
# other reason (a missing one reads as the proto default REASON_COMMAND_EXECUTOR_FAILED) is Gone.
_LOST_UNREACHABLE = frozenset(
    {"REASON_RECONCILIATION", "REASON_SLAVE_DISCONNECTED", "REASON_SLAVE_REMOVED"}
    | {"REASON_AGENT_DISCONNECTED", "REASON_AGENT_REMOVED"}
)
_LOST_UNKNOWN_MESSAGE = "Reconciliation: Task is unknown to the"
_IGNORE_WHEN_UNKNOWN = TERMINAL | {"Killing", "Unreachable"}  # never worth killing an unknown task
_SCALE_WORTHY = TERMINAL | {"UnreachableInactive"}
_KILLABLE = ACTIVE | {"UnreachableInactive"}  # its task may still run
_DRAINING = frozenset({"REASON_SLAVE_DRAINING", "REASON_AGENT_DRAINING"})
_TASK_ID_FORMS = (  # Task.Id.parse: instance-era ids (with or without incarnation), then legacy ones
    re.compile(r"^(.+)\.(instance-|marathon-)([^_.]+)[._]([^.]+)(?:\.\d+)?$"),
    re.compile(r"^(.+)[._]()([^_.]+)(?:\.\d+)?$"),
)


def condition_of(status: Mapping[str, Any]) -> str:
    """``TaskCondition.apply``: the Marathon condition of a v1 TaskStatus, TASK_LOST split by reason (§8)."""
    state = status.get("state")
    if state == "TASK_LOST":
        reason = status.get("reason") or "REASON_COMMAND_EXECUTOR_FAILED"
        if (
            str(status.get("message") or "").startswith(_LOST_UNKNOWN_MESSAGE)
            or reason == "REASON_TASK_UNKNOWN"
        ):
            return "Unknown"
        return "Unreachable" if reason in _LOST_UNREACHABLE else "Gone"
    if state not in _STATE_CONDITION:
        raise ValueError(f"unknown task state {state!r}")
    return _STATE_CONDITION[str(state)]


def instance_id_of(task_id: str) -> str | None:
    """The instance a Mesos task id belongs to (legacy ids map to ``<app>.marathon-<uuid>``)."""
    for form in _TASK_ID_FORMS:
        m = form.match(task_id)
        if m:
            return f"{m.group(1)}.{m.group(2) or 'marathon-'}{m.group(3)}"
    return None


def app_id_of(instance_id: str) -> str:
    return "/" + instance_id.rpartition(".")[0].replace("_", "/")


def unreachable_strategy(app: Mapping[str, Any]) -> tuple[float, float] | None:
    """(inactiveAfterSeconds, expungeAfterSeconds); None when ``"disabled"``; 0/0 by default (§4.1)."""
    value = app.get("unreachableStrategy", {})
    if not isinstance(value, Mapping):
        return None
    return float(value.get("inactiveAfterSeconds", 0)), float(value.get("expungeAfterSeconds", 0))


@dataclass(frozen=True)
class InstanceRecord:
    """One instance and its current task (the last one while it waits for a relaunch)."""

    instance_id: str
    app_id: str
    version: str  # runSpecVersion
    goal: str = "Running"
    condition: str = "Scheduled"
    since: float = 0.0  # when the condition (or the Mesos health) last changed
    queued_at: float | None = None  # when it started waiting for a launch (/v2/queue ``since``)
    role: str = "*"
    unreachable: tuple[float, float] | None = (0.0, 0.0)
    marathon_checks: bool = False
    task_id: str | None = None
    agent_id: str | None = None
    placement: Placement | None = None
    host_ports: tuple[int, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    staged_at: float | None = None
    started_at: float | None = None
    mesos_state: str | None = None  # None until Mesos confirmed the launch
    mesos_healthy: bool | None = None
    marathon_healthy: bool | None = None
    message: str = ""
    unreachable_since: float | None = None
    killed_at: float | None = None

    @property
    def host(self) -> str | None:
        return self.placement.hostname if self.placement else None

    @property
    def healthy(self) -> bool | None:
        """From Marathon's own checks if the app has them, else from Mesos' ``healthy`` (§6)."""
        return self.marathon_healthy if self.marathon_checks else self.mesos_healthy

    @property
    def scheduled(self) -> bool:
        """``Instance.isScheduled``: wants to run, is not running, and waits for an offer."""
        return self.goal == "Running" and (self.condition == "Scheduled" or self.condition in TERMINAL)

    @property
    def launching(self) -> bool:
        return self.scheduled or (self.goal == "Running" and self.condition == "Provisioned")

    @property
    def killable(self) -> bool:
        return self.task_id is not None and self.condition in _KILLABLE

    def as_instance(self) -> upgrade.Instance:
        """The view deployments and ``propose_scaling`` work on."""
        return upgrade.Instance(
            self.instance_id, self.version, self.condition, self.goal, self.healthy,
            iso_or_none(self.started_at), iso_or_none(self.staged_at), iso_or_none(self.since),
        )  # fmt: skip

    def next_task_id(self) -> str:
        """The Mesos task id of the next launch: ``<instance>._app.1``, then the next incarnation."""
        return next_incarnation(self.task_id) if self.task_id else f"{self.instance_id}._app.1"


@dataclass(frozen=True)
class Kill:
    task_id: str
    agent_id: str | None
    instance_id: str
    reason: str  # Marathon's KillReason: Overdue, FailedHealthChecks, NotInSync, Unknown, OverCapacity, …


@dataclass(frozen=True)
class ConditionChange:
    """What ``LaunchDelay.on_condition(condition, now, draining)`` of the app's config version needs."""

    app_id: str
    version: str
    condition: str
    draining: bool = False


@dataclass
class Update:
    changed: list[tuple[InstanceRecord | None, InstanceRecord | None]] = field(default_factory=list)
    events: list[JsonObj] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)
    backoff: list[ConditionChange] = field(default_factory=list)
    scale: set[str] = field(default_factory=set)

    def merge(self, other: Update) -> Update:
        self.changed += other.changed
        self.events += other.events
        self.kills += other.kills
        self.backoff += other.backoff
        self.scale |= other.scale
        return self

    @property
    def expunged(self) -> list[InstanceRecord]:
        return [old for old, new in self.changed if new is None and old is not None]


@dataclass(frozen=True)
class TrackerConfig:
    task_launch_timeout: float = 300.0  # --task_launch_timeout: Staging/Starting longer → kill
    task_launch_confirm_timeout: float = 300.0  # --task_launch_confirm_timeout: Provisioned longer → kill
    kill_retry_timeout: float = 10.0  # --kill_retry_timeout: repeat a kill Mesos did not act on
    scale_apps_interval: float = 300.0  # --scale_apps_interval: periodic scale check of every app


def _ip_addresses(status: Mapping[str, Any]) -> tuple[str, ...]:
    infos = (status.get("container_status") or {}).get("network_infos") or []
    return tuple(a["ip_address"] for i in infos for a in i.get("ip_addresses") or [] if "ip_address" in a)


def _unreachable_since(
    old: InstanceRecord, status: Mapping[str, Any], condition: str, now: float
) -> float | None:
    """When the task became unreachable: kept from the first TASK_UNREACHABLE (Marathon ignores a repeated
    one), from ``unreachable_time``, else the status ``timestamp`` (whole seconds: ``fromTaskStatus``);
    ``now`` if a status lacks both (Marathon would read 0, the epoch, and expunge at once)."""
    if condition != "Unreachable":
        return None
    if old.unreachable_since is not None:
        return old.unreachable_since
    nanos = (status.get("unreachable_time") or {}).get("nanoseconds")
    if nanos is not None:
        return int(nanos) / 1e9
    return float(int(status["timestamp"])) if "timestamp" in status else now


def _unknown_task(status: Mapping[str, Any], old: InstanceRecord | None, now: float) -> Update:
    """A status for a task Marathon does not know: an unknown instance that ended is announced, anything
    else that may still run is killed (``TaskStatusUpdateProcessorImpl``)."""
    task_id, condition = str(status["task_id"]["value"]), condition_of(status)
    iid = instance_id_of(task_id)
    up = Update()
    if iid and old is None and (condition in TERMINAL or condition == "Unreachable"):
        fields = {"instanceId": iid, "runSpecId": app_id_of(iid), "condition": condition}
        up.events.append(event("unknown_instance_terminated_event", now, **fields))
    elif condition not in _IGNORE_WHEN_UNKNOWN:
        agent = (status.get("agent_id") or {}).get("value")
        up.kills.append(Kill(task_id, agent, iid or task_id, "Unknown" if old is None else "NotInSync"))
    return up


def _expired(rec: InstanceRecord, now: float, which: int) -> bool:
    """``Task.isUnreachableExpired`` against inactiveAfter (0) or expungeAfter (1)."""
    if rec.unreachable is None or rec.condition not in ("Unreachable", "UnreachableInactive"):
        return False
    since = rec.unreachable_since if rec.unreachable_since is not None else rec.since
    return now - since >= rec.unreachable[which]


class Tracker:
    """All instances Marathon knows, by id.  ``rng`` only makes instance UUIDs."""

    def __init__(self, config: TrackerConfig | None = None, rng: random.Random | None = None) -> None:
        self.config = config or TrackerConfig()
        self._rng = rng or random.Random(0)
        self._records: dict[str, InstanceRecord] = {}
        self._by_app: dict[str, dict[str, InstanceRecord]] = {}  # the same records by app: O(app) reads
        self._scheduled: dict[str, InstanceRecord] = {}  # those waiting for an offer (``scheduled``)
        self._last_scale: float | None = None

    def get(self, instance_id: str) -> InstanceRecord | None:
        return self._records.get(instance_id)

    def restore(self, records: Iterable[InstanceRecord]) -> None:
        """A new leader's instances, as the store held them."""
        for r in records:
            self._put(r)

    def instances(self, app_id: str | None = None) -> list[InstanceRecord]:
        if app_id is None:
            return list(self._records.values())
        return list(self._by_app.get(app_id, {}).values())

    def scheduled(self) -> list[InstanceRecord]:
        """Every instance waiting for an offer (``InstanceRecord.scheduled``), in no particular order."""
        return list(self._scheduled.values())

    def to_launch(self, app_id: str) -> list[InstanceRecord]:
        """Instances waiting for an offer: new ones and those whose task ended while the goal is Running."""
        return [r for r in self._by_app.get(app_id, {}).values() if r.scheduled]

    def to_kill(
        self, app: Mapping[str, Any], meet_constraints: upgrade.ConstraintKill | None = None
    ) -> list[str]:
        """The instances above ``instances``, in ScalingProposition's order (§5, killSelection)."""
        return [i.id for i in self._proposition(app, meet_constraints).to_decommission]

    def _proposition(
        self, app: Mapping[str, Any], meet: upgrade.ConstraintKill | None
    ) -> upgrade.ScalingProposition:
        return upgrade.propose_scaling(
            [r.as_instance() for r in self.instances(app["id"])],
            scale_to=int(app.get("instances", 1)),
            kill_selection=app.get("killSelection") or "YOUNGEST_FIRST",
            meet_constraints=meet,
        )

    # -- inputs ----------------------------------------------------------------------------------------

    def schedule(self, app: Mapping[str, Any], count: int, now: float) -> Update:
        """``LaunchQueue.add``: ``count`` new instances of the app's current version, condition Scheduled."""
        up = Update()
        checks = app.get("healthChecks") or []
        for _ in range(count):
            iid = make_instance_id(app["id"], str(uuid.UUID(int=self._rng.getrandbits(128), version=4)))
            rec = InstanceRecord(
                iid, app["id"], app["version"], since=now, queued_at=now, role=app_role(app),
                unreachable=unreachable_strategy(app),
                marathon_checks=any(c.get("protocol") in MARATHON_PROTOCOLS for c in checks),
            )  # fmt: skip
            self._commit(None, rec, now, up)
        return up

    def launched(self, instance_id: str, match: Match, task_id: str, now: float) -> Update:
        """An offer was accepted for a waiting instance: Provisioned, staged now (``provisioned``)."""
        old = self._records[instance_id]
        if not old.scheduled:
            raise ValueError(f"{instance_id} is {old.condition}/{old.goal}, not waiting for a launch")
        ports = tuple(p for p in match.host_ports if p is not None)
        new = InstanceRecord(
            old.instance_id, old.app_id, old.version, old.goal, "Provisioned", now, old.queued_at, old.role,
            old.unreachable, old.marathon_checks, task_id, match.agent_id, match.placement, ports,
            staged_at=now,
        )  # fmt: skip
        return self._commit(old, new, now, Update())

    def apply(self, status: Mapping[str, Any], now: float) -> Update:
        """A Mesos status update (``TaskStatusUpdateProcessorImpl``); the caller acknowledges it anyway."""
        task_id, condition = str(status["task_id"]["value"]), condition_of(status)
        iid = instance_id_of(task_id)
        old = self._records.get(iid) if iid else None
        if old is None or old.task_id != task_id:
            return _unknown_task(status, old, now)
        up = Update()
        if old.condition in TERMINAL:
            return up  # Task.update: a terminal task never changes again
        healthy = status.get("healthy") if condition == "Running" else None
        new = replace(
            old, mesos_state=status["state"], message=str(status.get("message", "")), mesos_healthy=healthy,
            ip_addresses=_ip_addresses(status) or old.ip_addresses,
            started_at=now if condition == "Running" and old.started_at is None else old.started_at,
            unreachable_since=_unreachable_since(old, status, condition, now),
        )  # fmt: skip
        new = self._with_condition(new, condition, now)
        task_changed = (
            new.started_at != old.started_at
            or condition in TERMINAL
            or status["state"] != old.mesos_state
            or ("healthy" in status and status["healthy"] != old.mesos_healthy)
        )
        if not task_changed and (old.condition, old.healthy) == (new.condition, new.healthy):
            return up
        if task_changed:
            up.events.append(status_update_event(new, status, now))
        draining = (
            status["state"] in ("TASK_KILLED", "TASK_GONE_BY_OPERATOR") and status.get("reason") in _DRAINING
        )
        if draining:
            up.backoff.append(ConditionChange(new.app_id, new.version, new.condition, True))
        return self._commit(old, new, now, up, notify_backoff=not draining)

    def set_goal(self, instance_id: str, goal: str, now: float, reason: str = "OverCapacity") -> Update:
        """``ChangeGoal``: Stopped/Decommissioned kill the task; Decommissioned and terminal is expunged."""
        old = self._records[instance_id]
        new = replace(old, goal=goal)
        up = Update()
        if goal != "Running" and new.killable:
            new = self._kill(new, reason, now, up)
        return self._commit(old, new, now, up)

    def kill(self, instance_id: str, reason: str, now: float) -> Update:
        """Kill the task, keep the goal (``killInstancesAndForget``): relaunched if it stays Running."""
        old = self._records[instance_id]
        up = Update()
        if old.killable:
            self._put(self._kill(old, reason, now, up))
        return up

    def set_health(self, instance_id: str, healthy: bool | None, now: float) -> Update:
        """The verdict of Marathon-run checks (``health.AppHealth``); ignored for apps with Mesos checks."""
        old = self._records.get(instance_id)
        if old is None or old.marathon_healthy == healthy:
            return Update()
        return self._commit(old, replace(old, marathon_healthy=healthy), now, Update())

    def tick(self, now: float) -> Update:
        """Timers: launch timeouts (``OverdueInstancesActor``), unreachable → inactive → expunged
        (``ExpungeOverdueLostTasksActor``) and kill retries."""
        up, cfg = Update(), self.config
        for old in list(self._records.values()):
            if old.condition == "Unreachable" and _expired(old, now, 0):
                self._commit(old, self._with_condition(old, "Unreachable", now), now, up)
            elif old.condition == "UnreachableInactive" and _expired(old, now, 1):
                self._commit(old, replace(old, condition="Killed"), now, up, force_expunge=True)
            elif old.killed_at is not None and old.killable and now - old.killed_at >= cfg.kill_retry_timeout:
                self._put(self._kill(old, "Retry", now, up))
            elif old.killed_at is None and old.staged_at is not None and old.goal == "Running":
                provisioned = old.condition == "Provisioned"
                limit = cfg.task_launch_confirm_timeout if provisioned else cfg.task_launch_timeout
                if old.condition in ("Provisioned", "Staging", "Starting") and old.staged_at < now - limit:
                    self._put(self._kill(old, "Overdue", now, up))
        return up

    def scale_due(self, now: float) -> bool:
        """True once per ``--scale_apps_interval``: time to ``scale`` every app."""
        if self._last_scale is not None and now - self._last_scale < self.config.scale_apps_interval:
            return False
        self._last_scale = now
        return True

    def scale(
        self, app: Mapping[str, Any], now: float, meet_constraints: upgrade.ConstraintKill | None = None
    ) -> Update:
        """``SchedulerActions.scale``: decommission the surplus, schedule what is missing (§5, §8)."""
        prop = self._proposition(app, meet_constraints)
        up = Update()
        for victim in prop.to_decommission:
            up.merge(self.set_goal(victim.id, "Decommissioned", now, "OverCapacity"))
        if prop.to_start > 0:
            up.merge(self.schedule(app, prop.to_start, now))
        return up

    def reconcile(self, app_ids: Collection[str], now: float) -> tuple[list[JsonObj], Update]:
        """Explicit reconciliation: the tasks to ask Mesos about (those it confirmed and that are not
        terminal) and the decommissioning of instances whose app is gone (``reconcileTasks``)."""
        tasks = [
            {"task_id": {"value": r.task_id}} | ({"agent_id": {"value": r.agent_id}} if r.agent_id else {})
            for r in self._records.values()
            if r.mesos_state is not None and r.condition not in TERMINAL
        ]
        up = Update()
        for r in list(self._records.values()):
            if r.app_id not in app_ids and r.goal != "Decommissioned":
                up.merge(self.set_goal(r.instance_id, "Decommissioned", now, "Orphaned"))
        return tasks, up

    # -- internals ---------------------------------------------------------------------------------------

    def _with_condition(self, rec: InstanceRecord, condition: str, now: float) -> InstanceRecord:
        """``InstanceState.transitionTo``: Unreachable past ``inactiveAfterSeconds`` reads
        UnreachableInactive; ``since`` moves when the condition or the Mesos health changes."""
        if condition == "Unreachable" and _expired(replace(rec, condition=condition), now, 0):
            condition = "UnreachableInactive"
        old = self._records.get(rec.instance_id)
        same = old is not None and (old.condition, old.mesos_healthy) == (condition, rec.mesos_healthy)
        return replace(rec, condition=condition, since=rec.since if same else now)

    def _kill(self, rec: InstanceRecord, reason: str, now: float, up: Update) -> InstanceRecord:
        assert rec.task_id is not None
        up.kills.append(Kill(rec.task_id, rec.agent_id, rec.instance_id, reason))
        return replace(rec, killed_at=now)

    def _commit(
        self,
        old: InstanceRecord | None,
        new: InstanceRecord,
        now: float,
        up: Update,
        *,
        notify_backoff: bool = True,
        force_expunge: bool = False,
    ) -> Update:
        """Store ``new`` (or expunge it) and say so: instance_changed_event when condition or goal moved,
        instance_health_changed_event when the health did, the backoff and scale-check signals."""
        if new.condition in TERMINAL or new.condition == "Scheduled":
            new = replace(new, killed_at=None)
        if new.launching and (old is None or not old.launching):
            new = replace(new, queued_at=now)
        elif not new.launching:
            new = replace(new, queued_at=None)
        moved = old is None or (old.condition, old.goal) != (new.condition, new.goal)
        if moved:
            up.events.append(instance_changed_event(new, now))
        if old is not None and old.healthy != new.healthy:
            up.events.append(instance_health_changed_event(new, now))
        if notify_backoff and old is not None and old.condition != new.condition:
            up.backoff.append(ConditionChange(new.app_id, new.version, new.condition))
        if new.condition in _SCALE_WORTHY and (old is None or old.condition not in _SCALE_WORTHY):
            up.scale.add(new.app_id)
        elif old is not None and old.condition == "UnreachableInactive" and new.condition in ACTIVE:
            up.scale.add(new.app_id)  # back from the dead: its replacement is now surplus
        expunge = (
            force_expunge
            or _expired(new, now, 1)
            or (new.goal == "Decommissioned" and (new.task_id is None or new.condition in TERMINAL))
        )
        if expunge:
            self._pop(new.instance_id)
            up.changed.append((old, None))
        elif moved or old != new:
            self._put(new)
            up.changed.append((old, new))
        return up

    def _put(self, rec: InstanceRecord) -> None:
        self._records[rec.instance_id] = rec
        self._by_app.setdefault(rec.app_id, {})[rec.instance_id] = rec
        if rec.scheduled:
            self._scheduled[rec.instance_id] = rec
        else:
            self._scheduled.pop(rec.instance_id, None)

    def _pop(self, instance_id: str) -> None:
        rec = self._records.pop(instance_id, None)
        if rec is not None:
            self._scheduled.pop(instance_id, None)
            of_app = self._by_app[rec.app_id]
            del of_app[instance_id]
            if not of_app:
                del self._by_app[rec.app_id]


# -- instance events (§3; Formats.scala writes every field, ``None`` as null) ---------------------------


def instance_changed_event(rec: InstanceRecord, now: float) -> JsonObj:
    return event(
        "instance_changed_event", now, instanceId=rec.instance_id, condition=rec.condition,
        runSpecId=rec.app_id, agentId=rec.agent_id, host=rec.host, runSpecVersion=rec.version,
    )  # fmt: skip


def instance_health_changed_event(rec: InstanceRecord, now: float) -> JsonObj:
    return event(
        "instance_health_changed_event", now, instanceId=rec.instance_id, runSpecId=rec.app_id,
        healthy=rec.healthy, runSpecVersion=rec.version,
    )  # fmt: skip


def status_update_event(rec: InstanceRecord, status: Mapping[str, Any], now: float) -> JsonObj:
    """``MesosStatusUpdateEvent`` as ``InstanceChangedEventsGenerator`` fills it."""
    return event(
        "status_update_event", now, slaveId=(status.get("agent_id") or {}).get("value", ""),
        taskId=rec.task_id, taskStatus=status["state"], message=status.get("message", ""), appId=rec.app_id,
        host=rec.host or "unknown", ipAddresses=ip_json(rec.ip_addresses), ports=list(rec.host_ports),
        version=rec.version,
    )  # fmt: skip
