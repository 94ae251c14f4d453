"""The reaction loop of ``MarathonCore`` (``core.py``), pure: what follows from a change of an instance.

A tracker ``Update`` is persisted (``SaveInstance``/``DeleteInstance``), published (events), carried out
(kills), fed to the launch backoff and to the deployment machines (``deployer``), whose effects (queue
launches, set goals, reset delays) produce further updates; ``_settle`` drains all of it and lets finished
steps give way to the next ones.  Marathon-run and Mesos-run health (``health.AppHealth``) and the probe
schedule live here too, as do the scale checks of apps no deployment locks (§8).

Rules beyond the modules it drives: the machines see a running instance of a version without health checks
as healthy (Marathon's ``consideredHealthy``); an instance expunged by a goal change reports that goal to
them (the tracker's update only carries the record before the change); restarts re-evaluate after every
change of their app (``upgrade.ReplaceMachine.progress``); and an instance the tracker gives up on
(unreachable past ``expungeAfterSeconds``) while a machine counts on its version is replaced at once, as the
scale check would do outside deployments.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from marathon_py import appdef, groups, upgrade
from marathon_py import deployment as dp
from marathon_py.deployer import Deployer, Effect, StopMachine, full_event
from marathon_py.eventjson import iso
from marathon_py.health import AppHealth, Verdict, first_probe_delay, probe_target
from marathon_py.instances import InstanceRecord, Tracker, TrackerConfig, Update
from marathon_py.launcher import LaunchConfig, Launcher
from marathon_py.outputs import (
    DeleteDeployment,
    DeleteInstance,
    Event,
    Kill,
    Output,
    Probe,
    ReadinessProbe,
    SaveInstance,
    SaveTaskFailure,
    instance_doc,
    ordered,
)
from marathon_py.store import version_key
from marathon_py.taskjson import kill_failure, task_failure
from marathon_py.upgrade import TERMINAL

JsonObj = dict[str, Any]
App = Mapping[str, Any]
AppLookup = Callable[[str, str], App | None]  # (app id, version) → the stored definition
_KILL_REASONS = {"Restart": "Upgrading", "Stop": "DeletingApp"}


@dataclass(frozen=True)
class CoreConfig:
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    launch: LaunchConfig = field(default_factory=LaunchConfig)
    reconciliation_initial_delay: float = 15.0  # --reconciliation_initial_delay
    reconciliation_interval: float = 600.0  # --reconciliation_interval
    max_running_deployments: int = 100  # --max_running_deployments
    port_range: tuple[int, int] = groups.DEFAULT_PORT_RANGE  # --local_port_min/max


class Reactor:
    """The state of the core and the loop that reacts to instance changes."""

    def __init__(
        self,
        root: groups.Group | None,
        instances: Iterable[InstanceRecord],
        task_failures: Mapping[str, JsonObj] | None,
        config: CoreConfig | None,
        rng: random.Random | None,
        app_versions: AppLookup | None,
    ) -> None:
        self.config = config or CoreConfig()
        rng = rng or random.Random(0)
        self._rng = random.Random(rng.getrandbits(64))
        self.tracker = Tracker(self.config.tracker, random.Random(rng.getrandbits(64)))
        self.launcher = Launcher(self.config.launch, random.Random(rng.getrandbits(64)))
        self.deployer = Deployer()
        self._lookup = app_versions
        self._root: groups.Group = root or groups.empty_root()
        self._defs: dict[tuple[str, str], App] = {}
        self.tracker.restore(instances)
        self._failures: dict[str, JsonObj] = dict(task_failures or {})
        self._health: dict[tuple[str, str], AppHealth] = {}
        self._next_probe: dict[tuple[str, int], float] = {}
        self._next_ready: dict[str, float] = {}
        # TaskReadinessCheckResults by plan id, then task id: (app id, result JSON), while the plan runs.
        self._ready_results: dict[str, dict[str, tuple[str, JsonObj]]] = {}
        self._goal_hint: dict[str, str] = {}
        self._work: deque[Update] = deque()
        self._out: list[Output] = []
        self._ready: dict[str, str] = {}
        self._demand_dirty = True
        # ``deployer.advance`` is a pass over every running plan; it can only move after a plan started or
        # a machine was fed (feed, progress), so it is skipped otherwise.  Machines exist for the apps of
        # the plans' current steps, made by ``advance``: feeding another app's instances is a no-op.
        self._fed = True
        self._advanced: tuple[int, str | None] | None = None  # (plans, the newest plan) after ``advance``
        self._machined: Counter[str] = Counter()  # app id → plans with a machine for it (or cancelled since)
        self._plan_machines: dict[str, tuple[str, ...]] = {}  # plan id → the apps counted for it
        self._apps: dict[str, App] = {}
        self._service_ports: Counter[int] = Counter()  # of the apps of the root: what is in use
        self._role_count: Counter[str] = Counter()
        self._roles: set[str] = set()
        # Every app of the root is its own entry in ``_defs`` — unless ``_defs_checked`` is off (``core``'s
        # ``_remember`` of a resumed plan), when the next root checks them all.  ``_replaced`` is the root
        # replaced last and those of its apps the new one does not hold.
        self._defs_checked = False
        self._replaced: tuple[groups.Group | None, list[App]] = (None, [])
        self._set_root(self._root)

    def app(self, app_id: str) -> App | None:
        """The app as the current root has it."""
        return self._apps.get(app_id)

    def _set_root(self, root: groups.Group) -> None:
        """The new root: changed and new apps get their launch delay and ``_defs`` entry (unchanged ones,
        the same objects, have theirs), removed ones lose their delay; ports and roles are counted."""
        old, replaced, self._root = self._apps, self._root, root
        self._apps = dict(groups.apps_by_id(root))
        changed = [(app_id, app) for app_id, app in self._apps.items() if old.get(app_id) is not app]
        gone = old.keys() - self._apps.keys()
        for app_id, app in changed:
            self._count(old.get(app_id), -1)
            self._count(app, 1)
        for app_id in gone:
            self._count(old[app_id], -1)
            self.launcher.app_removed(app_id)
        stale: list[tuple[str, App]] = []  # unchanged apps whose entry is another object
        if not self._defs_checked:
            stale = [(i, a) for i, a in self._apps.items() if self._defs.get((i, a["version"])) is not a]
            self._defs_checked = True
        for app_id, app in [*changed, *stale]:
            self.launcher.app_changed(app)
            self._defs[(app_id, app["version"])] = app
        self._replaced = (replaced, [old[i] for i, _ in changed if i in old] + [old[i] for i in gone])
        self._roles = set(self._role_count)
        self._demand_dirty = True

    def _count(self, app: App | None, delta: int) -> None:
        """The service ports and the role of ``app`` join (1) or leave (-1) those of the root."""
        if app is None:
            return
        role = str(app.get("role") or "*")
        self._role_count[role] += delta
        if not self._role_count[role]:
            del self._role_count[role]
        self._count_ports(app, delta)

    def _count_ports(self, app: App | None, delta: int) -> None:
        for port in appdef.service_ports(app) if app is not None else ():
            self._service_ports[port] += delta
            if not self._service_ports[port]:
                del self._service_ports[port]

    def _settle(self, now: float) -> None:
        """Drain the tracker updates and machine effects until nothing moves (steps finish and start)."""
        while True:
            while self._work:
                self._handle(self._work.popleft(), now)
            effects, events, finished = self._advance(now)
            plans = {p.id: p for p in finished}  # and the running plans the events name (not all of them)
            for e in events:
                pid = e["plan"].get("id") if isinstance(e.get("plan"), dict) else None
                if pid in self.deployer.running and pid not in plans:
                    plans[pid] = self.deployer.running[pid].plan
            for e in events:
                self._event(e, full_event(e, plans))
            for p in finished:
                self._out.append(DeleteDeployment(p.id))
            if not effects:
                return
            self._carry_out(effects, now)

    def _advance(self, now: float) -> tuple[list[Effect], list[JsonObj], list[dp.DeploymentPlan]]:
        if not self._fed and self._advanced == self._plans_state():
            return [], [], []
        effects, events, finished = self.deployer.advance(now, self._machine_view)
        self._fed, self._advanced = False, self._plans_state()
        for plan_id in {e["plan"]["id"] for e in events if isinstance(e.get("plan"), dict)}:
            self._recount(plan_id)  # a step started or the plan ended: the only changes of machines
        if len(self._plan_machines) > 2 * len(self.deployer.running) + 64:  # plans cancelled since
            for plan_id in [p for p in self._plan_machines if p not in self.deployer.running]:
                self._recount(plan_id)
        return effects, events, finished

    def _recount(self, plan_id: str) -> None:
        for app_id in self._plan_machines.pop(plan_id, ()):
            self._machined[app_id] -= 1
            if not self._machined[app_id]:
                del self._machined[app_id]
        r = self.deployer.running.get(plan_id)
        if r is not None and r.machines:
            self._plan_machines[plan_id] = tuple(r.machines)
            self._machined.update(r.machines.keys())

    def _plans_state(self) -> tuple[int, str | None]:
        running = self.deployer.running  # new plans are added last
        return len(running), next(reversed(running), None)

    def _machines_for(self, app_id: str) -> bool:
        return app_id in self._machined

    def _machine_view(self, app_id: str) -> list[upgrade.Instance]:
        return [self._view(r) for r in self.tracker.instances(app_id)]

    def _view(self, rec: InstanceRecord) -> upgrade.Instance:
        """The instance as the machines see it: a running instance of a version without health checks is
        healthy (Marathon's ``consideredHealthy`` asks the instance's own checks, not the new version's)."""
        inst = rec.as_instance()
        if inst.healthy is not True and rec.condition == "Running":
            app = self._definition(rec.app_id, rec.version)
            if app is not None and not app.get("healthChecks"):
                inst = replace(inst, healthy=True)
        return inst

    def _carry_out(self, effects: Iterable[Effect], now: float) -> None:
        for fx in effects:
            a = fx.action
            if isinstance(a, upgrade.Launch):
                self._work.append(self.tracker.schedule(fx.app, a.count, now))
            elif isinstance(a, upgrade.Kill):
                reason = _KILL_REASONS.get(fx.verb, "ScalingApp")
                for iid in a.instance_ids:
                    if self.tracker.get(iid) is not None:
                        self._set_goal(iid, a.goal, reason, now)
            elif isinstance(a, upgrade.ResetDelay) and fx.app["id"] in self.launcher.delays:
                self.launcher.delays[fx.app["id"]].reset()
                self._demand_dirty = True

    def _set_goal(self, instance_id: str, goal: str, reason: str, now: float) -> None:
        self._goal_hint[instance_id] = goal  # an instance expunged by this very change reports its new goal
        self._work.append(self.tracker.set_goal(instance_id, goal, now, reason))

    # -- internals: tracker updates -------------------------------------------------------------------------

    def _handle(self, up: Update, now: float) -> None:
        """Persist, publish, kill, feed the backoff and the machines; scale checks of unlocked apps."""
        for old, new in up.changed:
            self._changed(old, new, now)
        for e in up.events:
            self._event(e)
            failure = task_failure(e) if e["eventType"] == "status_update_event" else None
            if failure is not None:
                self._task_failure(failure)
        for k in up.kills:
            self._out.append(Kill(k.task_id, k.agent_id, self._grace(k.instance_id)))
        for c in up.backoff:
            app = self.app(c.app_id)
            delay = self.launcher.delays.get(c.app_id)
            if app is not None and delay is not None and self.launcher.is_current(app, c.version):
                delay.on_condition(c.condition, now, c.draining)
                self._demand_dirty = True
        self._scale_check(up.scale, now)

    def _changed(self, old: InstanceRecord | None, new: InstanceRecord | None, now: float) -> None:
        if old is None and new is None:
            return
        rec = new if new is not None else old
        assert rec is not None
        self._demand_dirty = self._demand_dirty or (
            old is None or new is None or old.scheduled != new.scheduled
        )
        if new is None:
            self._out.append(DeleteInstance(rec.instance_id))
            goal = self._goal_hint.pop(rec.instance_id, rec.goal)
            condition = rec.condition if rec.condition in TERMINAL else "Killed"
            gone = replace(self._view(rec), condition=condition, goal=goal)
            self.deployer_feed(rec.app_id, upgrade.Changed(gone), now)
            if goal == "Running":
                self._replace_lost(rec, now)
            self._forget_health(replace(rec, condition=condition))
            self._progress(rec.app_id, now)
            return
        self._out.append(SaveInstance(new.instance_id, instance_doc(new)))
        view = self._view(new)
        self.deployer_feed(new.app_id, upgrade.Changed(view), now)
        if old is not None and old.healthy != new.healthy and new.healthy is not None:
            self.deployer_feed(
                new.app_id, upgrade.HealthChanged(new.instance_id, new.version, new.healthy), now
            )
        self._progress(new.app_id, now)
        if new.condition == "Running":
            self._app_health(new.app_id, new.version)
        elif old is not None and old.condition == "Running":
            self._forget_health(new)

    def deployer_feed(self, app_id: str, e: upgrade.Event, now: float) -> None:
        if self._machines_for(app_id):
            self._fed = True
            self._carry_out(self.deployer.feed(app_id, e), now)

    def _progress(self, app_id: str, now: float) -> None:
        if self._machines_for(app_id):
            self._fed = True
            self._carry_out(self.deployer.progress(app_id), now)

    def _replace_lost(self, rec: InstanceRecord, now: float) -> None:
        """An instance the tracker gave up on (unreachable too long) while a machine counts on instances of
        its version: a new one takes its place (outside deployments the scale check does it)."""
        for r, machine in self.deployer.machines_of(rec.app_id):
            if isinstance(machine, StopMachine) or machine.finished or machine.version != rec.version:
                continue
            if isinstance(machine, upgrade.ScaleMachine) and machine.to_start is None:
                continue  # still killing: it counts what is left before it starts any
            app = r.plan.run_spec(next(a for a in r.step.actions if a.run_spec_id == rec.app_id))
            if app is not None:
                self._work.append(self.tracker.schedule(app, 1, now))

    def _scale_check(self, app_ids: Collection[str], now: float) -> None:
        if not app_ids:
            return
        locked = {i for p in self.deployer.plans() for i in p.affected_ids}  # ``deployer.locked``, once
        for app_id in app_ids:
            app = self.app(app_id)
            if app is not None and app_id not in locked:
                self._work.append(self.tracker.scale(app, now))

    def _grace(self, instance_id: str) -> float | None:
        rec = self.tracker.get(instance_id)
        app = self._definition(rec.app_id, rec.version) if rec is not None else None
        grace = app.get("taskKillGracePeriodSeconds") if app is not None else None
        return None if grace is None else float(grace)

    def _task_failure(self, doc: JsonObj) -> None:
        self._failures[doc["appId"]] = doc
        self._out.append(SaveTaskFailure(doc["appId"], doc))

    # -- internals: health ----------------------------------------------------------------------------------

    def _app_health(self, app_id: str, version: str) -> AppHealth | None:
        checks = self._health.get((app_id, version))
        if checks is None:
            app = self._definition(app_id, version)
            if app is None or not app.get("healthChecks"):
                return None
            checks = self._health[(app_id, version)] = AppHealth(app)
        return checks

    def _verdict(self, checks: AppHealth, rec: InstanceRecord, verdict: Verdict, now: float) -> None:
        for e in verdict.events:
            self._event(e)
            if e["eventType"] == "unhealthy_instance_kill_event":
                self._task_failure(kill_failure(e))
        if verdict.kill:
            app, delay = self.app(rec.app_id), self.launcher.delays.get(rec.app_id)
            if app is not None and delay is not None and self.launcher.is_current(app, rec.version):
                delay.record_failure(now)  # health kills grow the backoff (§7.2)
                self._demand_dirty = True
            self._work.append(self.tracker.kill(rec.instance_id, "FailedHealthChecks", now))
        if verdict.health_changed and rec.marathon_checks:
            self._work.append(self.tracker.set_health(rec.instance_id, verdict.healthy, now))

    def _forget_health(self, rec: InstanceRecord) -> None:
        checks = self._health.get((rec.app_id, rec.version))
        if checks is not None:
            checks.purge([rec])
            for i in range(len(checks.checks)):
                self._next_probe.pop((rec.instance_id, i), None)

    def _probes(self, now: float) -> None:
        """Probes due for running instances of versions with Marathon-run checks (every
        ``intervalSeconds``, the first ``first_probe_delay`` after the instance started running)."""
        running: dict[tuple[str, str], list[InstanceRecord]] = {}
        for rec in self.tracker.instances():
            if rec.condition == "Running":
                running.setdefault((rec.app_id, rec.version), []).append(rec)
        for spec, checks in self._health.items():
            app = self._definition(*spec)
            if app is None or not checks.marathon_checks:
                continue
            for rec in running.get(spec, ()):
                for i in checks.marathon_checks:
                    check, key = checks.checks[i], (rec.instance_id, i)
                    due = self._next_probe.setdefault(key, rec.since + first_probe_delay(check))
                    if now < due:
                        continue
                    self._next_probe[key] = now + float(check.get("intervalSeconds", 60))
                    target = probe_target(app, check, rec)
                    if target is not None:
                        self._out.append(Probe(rec.instance_id, i, dict(check), target[0], target[1]))

    def _readiness_probes(self, now: float) -> None:
        """Readiness checks run while a deployment waits for new instances (§6): every ``intervalSeconds``
        for running instances of the new version that the action does not count as ready yet."""
        for r in self.deployer.running.values():
            for app_id, machine in r.machines.items():
                if isinstance(machine, StopMachine) or machine.finished or not machine.has_readiness:
                    continue
                app = r.plan.run_spec(next(a for a in r.step.actions if a.run_spec_id == app_id))
                if app is None:
                    continue
                check = app["readinessChecks"][0]
                for rec in self.tracker.instances(app_id):
                    if (
                        rec.version != machine.version
                        or rec.condition != "Running"
                        or rec.instance_id in machine.ready
                    ):
                        continue
                    if now < self._next_ready.setdefault(rec.instance_id, now):
                        continue
                    self._next_ready[rec.instance_id] = now + float(check.get("intervalSeconds", 30))
                    target = readiness_target(app, check, rec)
                    if target is not None:
                        self._out.append(ReadinessProbe(rec.instance_id, dict(check), target[0], target[1]))

    # -- internals: misc -------------------------------------------------------------------------------------

    def _definition(self, app_id: str, version: str) -> App | None:
        app = self._defs.get((app_id, version))
        if app is None and self._lookup is not None:
            app = self._lookup(app_id, version)
            if app is not None:
                self._defs[(app_id, version)] = app
        return app

    def _forget_unused(self, now: float) -> None:
        """Drop definitions, health state and queue statistics nothing refers to any more."""
        used = {(r.app_id, r.version) for r in self.tracker.instances()}
        used |= {(a["id"], a["version"]) for a in groups.all_apps(self._root)}
        if any(k not in used for k in self._defs) or any(k not in used for k in self._health):
            for plan in self.deployer.plans():  # O(plans x apps): only when something may go
                used |= {
                    (a["id"], a.get("version", ""))
                    for root in (plan.original, plan.target)
                    for a in groups.all_apps(root)
                }
        for key in [k for k in self._defs if k not in used]:
            del self._defs[key]
        for key in [k for k in self._health if k not in used]:
            del self._health[key]
        for iid in [i for i in self._next_ready if self.tracker.get(i) is None]:
            del self._next_ready[iid]
        launching = {r.app_id for r in self.tracker.instances() if r.launching}
        self.launcher.forget_stats([a for a in self.launcher.stats if a not in launching])

    def _placements(self) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for r in self.tracker.instances():
            if r.placement is not None and r.condition not in TERMINAL:
                out.setdefault(r.app_id, []).append(r.placement)
        return out

    def _ready_ids(self, now: float) -> dict[str, str]:
        if self._demand_dirty:
            self._ready = {
                r.instance_id: r.role for r in self.tracker.scheduled() if self.launcher.ready(r.app_id, now)
            }
            self._demand_dirty = False
        return self._ready

    def _event(self, e: JsonObj, full: JsonObj | None = None) -> None:
        self._out.append(Event(e, full))

    def _finish(self, now: float) -> list[Output]:
        self._out += self.launcher.demand(self._ready_ids(now), self._roles, now)
        out, self._out = ordered(self._out), []
        return out

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _next_version(self, now: float) -> str:
        """``now`` as a version, past the current root's (versions name znodes: never reuse one)."""
        version = iso(now)
        current = self._root.get("version")
        if current is not None and version_key(version) <= version_key(str(current)):
            ms = int(version_key(str(current))[0].timestamp() * 1000) + 1
            version = iso(ms / 1000)
        return version


def readiness_target(app: App, check: Mapping[str, Any], rec: InstanceRecord) -> tuple[str, int] | None:
    """Where a readiness check probes an instance: the port named ``portName``."""
    mappings = (app.get("container") or {}).get("portMappings") or []
    names = [p.get("name") for p in mappings or app.get("portDefinitions") or []]
    if check.get("portName") not in names:
        return None
    return probe_target(app, {"portIndex": names.index(check["portName"])}, rec)
