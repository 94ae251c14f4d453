"""What one deployment action does to an app's instances, as pure state machines: the rolling restart of
Marathon 1.10's ``TaskReplaceActor`` (reference §7.1) and the scale step of ``DeploymentActor.scaleRunnable``
(``ScalingProposition`` to pick instances to kill, §5, then ``TaskStartActor``), both with the health and
readiness bookkeeping of ``ReadinessBehavior``.

The caller feeds instance changes, health changes and readiness results in (and asks a restart for its
``progress`` after every change) and carries out what comes out: ``Launch(n)`` (queue n new instances of
the app's version), ``Kill(ids, goal)`` (set the goal; the kill service does the rest), ``ResetDelay()``
(reset the launch backoff) and ``Done()``. A new instance that fails keeps goal Running and is relaunched
under the same id by the launcher, not by these machines. The machines know only the checks of the version
they deploy, so the ``Instance`` views the caller hands in carry health by each instance's own version:
a running instance of a version without health checks is ``healthy=True`` (``considered_healthy``).
Arithmetic is Marathon's own, including its IEEE double rounding: ``ceil(N * minimumHealthCapacity)`` and
``floor(N * (1 + maximumOverCapacity))`` (so N=100, maximumOverCapacity=0.15 allows 114, not 115).
"""

from __future__ import annotations

import abc
import functools
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

# InstanceChangedPredicates.considerTerminal: "the old task is gone" (not all of them are terminal).
TERMINAL = frozenset({"Error", "Failed", "Finished", "Killed", "Gone", "Dropped", "Unknown"})
CONSIDER_TERMINAL = TERMINAL | {"Unreachable", "UnreachableInactive"}
ACTIVE = frozenset({"Provisioned", "Killing", "Running", "Staging", "Starting", "Unreachable"})
# ScalingProposition.weight: lower is killed first.
_KILL_WEIGHT = {"Unreachable": 1, "Staging": 2, "Starting": 3, "Running": 4}
_LATEST = "\uffff"  # sorts after every timestamp


@dataclass(frozen=True)
class Instance:
    """What the machines need of an instance. ``version`` is its runSpecVersion; ``goal`` is Running,
    Stopped or Decommissioned; ``healthy`` is None until a health result; timestamps are ISO-8601 strings
    in one format (they sort as text): ``started_at`` = activeSince, ``since`` = when the condition began."""

    id: str
    version: str
    condition: str = "Running"
    goal: str = "Running"
    healthy: bool | None = None
    started_at: str | None = None
    staged_at: str | None = None
    since: str | None = None
    reserved: bool = False


@dataclass(frozen=True)
class Changed:
    """Marathon's InstanceChanged: the instance's new condition and goal."""

    instance: Instance


@dataclass(frozen=True)
class HealthChanged:
    instance_id: str
    version: str
    healthy: bool


@dataclass(frozen=True)
class ReadinessResult:
    instance_id: str
    ready: bool


Event = Changed | HealthChanged | ReadinessResult


@dataclass(frozen=True)
class Launch:
    count: int


@dataclass(frozen=True)
class Kill:
    instance_ids: tuple[str, ...]
    goal: str = "Decommissioned"


@dataclass(frozen=True)
class ResetDelay:
    pass


@dataclass(frozen=True)
class Done:
    pass


Action = Launch | Kill | ResetDelay | Done
ConstraintKill = Callable[[Sequence[Instance], int], Sequence[Instance]]


def _is_resident(app: Mapping[str, Any]) -> bool:
    volumes = (app.get("container") or {}).get("volumes") or ()
    return any("persistent" in v for v in volumes)


@dataclass(frozen=True)
class RestartStrategy:
    min_healthy: int
    max_capacity: int
    kill_immediately: int


def restart_strategy(
    *,
    instances: int,
    minimum_health_capacity: float,
    maximum_over_capacity: float,
    healthy: int,
    current: int,
    resident: bool = False,
) -> RestartStrategy:
    """``TaskReplaceActor.computeRestartStrategy``: ``healthy`` counts old and new instances with goal
    Running that are considered healthy, ``current`` all instances of the app."""
    if instances <= 0:
        raise ValueError(f"instances must be > 0 but is {instances}")
    min_healthy = math.ceil(instances * minimum_health_capacity)
    max_capacity = int(instances * (1 + maximum_over_capacity))
    kill = max(0, healthy - min_healthy)
    if min_healthy == max_capacity <= healthy:
        if resident:  # no room for an extra instance: go one below minHealthy instead
            kill = healthy - min_healthy + 1
        else:  # allow one temporary extra instance
            max_capacity += 1
    if instances < current:  # leftovers of a forced deployment go at once
        kill = max(current - instances, kill)
    return RestartStrategy(min_healthy, max_capacity, kill)


def considered_healthy(instance: Instance) -> bool:
    """Marathon's ``Instance.consideredHealthy`` as a restart counts it: goal Running, running and healthy.

    Health is judged by the instance's *own* version's checks, which the machines do not know for other
    versions: the caller marks a running instance of a version without health checks healthy (and leaves
    ``healthy`` to the check results otherwise). Unlike Marathon, an instance not running yet is never
    healthy, checks or not."""
    return instance.goal == "Running" and instance.condition == "Running" and instance.healthy is True


class _Readiness(abc.ABC):
    """ReadinessBehavior: which new-version instances with goal Running are healthy (health checks, else
    running) and ready (readiness checks, else healthy). ``_became_ready`` fires when one turns both."""

    def __init__(self, app: Mapping[str, Any], instances: Iterable[Instance]) -> None:
        self.app_id: str = app["id"]
        self.version: str = app["version"]
        self.has_health = bool(app.get("healthChecks"))
        self.has_readiness = bool(app.get("readinessChecks"))
        self.instances: dict[str, Instance] = {i.id: i for i in instances}
        self.healthy: set[str] = set()
        self.ready: set[str] = set()
        self.finished = False

    def _observe(self, event: Event) -> None:
        """Keep ``instances`` as the events show them (a health result updates the instance's health)."""
        if isinstance(event, Changed):
            self.instances[event.instance.id] = event.instance
        elif isinstance(event, HealthChanged):
            inst = self.instances.get(event.instance_id)
            if inst is not None and inst.version == event.version:
                self.instances[inst.id] = replace(inst, healthy=event.healthy)

    def _mark(self, instance_id: str, *, healthy: bool = False, ready: bool = False) -> list[Action]:
        inst = self.instances.get(instance_id)
        if inst is not None and inst.goal != "Running":  # decommissioned: it will not serve
            return []
        before = instance_id in self.healthy and instance_id in self.ready
        if healthy:
            self.healthy.add(instance_id)
        if ready:
            self.ready.add(instance_id)
        if before or instance_id not in self.healthy or instance_id not in self.ready:
            return []
        return self._became_ready(instance_id)

    def _terminated(self, instance_id: str) -> None:
        self.healthy.discard(instance_id)
        self.ready.discard(instance_id)

    def _readiness_event(self, event: Event) -> list[Action]:
        if isinstance(event, HealthChanged):
            if event.version == self.version and event.healthy and self.has_health:
                return self._mark(event.instance_id, healthy=True, ready=not self.has_readiness)
        elif isinstance(event, ReadinessResult):
            if event.ready and self.has_readiness:
                return self._mark(event.instance_id, ready=True)
        elif (
            event.instance.version == self.version
            and event.instance.condition == "Running"
            and not self.has_health
        ):
            return self._mark(event.instance.id, healthy=True, ready=not self.has_readiness)
        return []

    def _target_reached(self, count: int) -> bool:
        return len(self.healthy) == count and len(self.ready) == count

    def _finish(self) -> list[Action]:
        if self.finished:
            return []
        self.finished = True
        return [Done()]

    @abc.abstractmethod
    def _became_ready(self, instance_id: str) -> list[Action]:
        """What the step does once an instance is healthy and ready (each machine decides)."""


class ReplaceMachine(_Readiness):
    """A RestartApplication action: Marathon 1.10's TaskReplaceActor (§7.1), except where that gets stuck
    or drops below ``minHealthy``. Call ``start()`` once, ``handle()`` per event and ``progress()`` after
    every change of the app's instances.

    * Old instances are those of another version with goal Running. Healthy is ``considered_healthy``
      (the caller's contract there); a new instance counts once healthy *and* ready as well. The strategy
      counts old instances with goal Running and new ones that count (not decommissioned ones, nor new ones
      still starting), so a resumed restart does not kill old instances below ``minHealthy``.
    * Old instances go by what is true now (``progress``), not by one kill per new instance turning ready:
      while ready new ones and old ones with goal Running exceed ``instances``, or launches still to come
      need room; healthy ones only while more than ``minHealthy`` are healthy; unhealthy ones first, then
      by killSelection on start time (not those still waiting for their first health verdict). A resumed
      restart thus does not kill again for a new instance that was ready before the failover, and one whose
      strategy was fixed while old instances were still starting is not stuck: the one extra instance of
      ``minHealthy == maxCapacity`` is allowed once that many are healthy.
    * A new instance that fails keeps goal Running and is relaunched by the launcher; one someone else
      decommissioned stops counting and, once gone, is replaced ("instancesStarted -= 1").
    * A resumed restart (``reconcileAlreadyStartedInstances``) counts the new instances with goal Running
      as started and only the running ones as already healthy (and ready, without readiness checks).
    """

    def __init__(self, app: Mapping[str, Any], instances: Iterable[Instance]) -> None:
        super().__init__(app, instances)
        self.target: int = app.get("instances", 1)
        self.goal = "Stopped" if _is_resident(app) else "Decommissioned"
        self.upgrade_strategy: Mapping[str, Any] = app.get("upgradeStrategy") or {}
        current = list(self.instances.values())
        new = [i for i in current if i.version == self.version]
        old_active = [i for i in current if i.version != self.version and i.goal == "Running"]
        self.old_active: set[str] = {i.id for i in old_active}
        self.retired: set[str] = {i.id for i in new if i.goal != "Running"}  # new, but no longer started
        self.started = len(new) - len(self.retired)
        youngest = (app.get("killSelection") or "YOUNGEST_FIRST") == "YOUNGEST_FIRST"
        by_age = sorted(old_active, key=lambda i: i.started_at or "", reverse=youngest)
        by_age.sort(key=considered_healthy)  # stable: unhealthy first
        self.to_kill: deque[str] = deque(i.id for i in by_age)
        for i in new:  # reconcileAlreadyStartedInstances (a resumed restart): running ones only
            if i.goal == "Running" and i.condition == "Running":
                if not self.has_health or i.healthy:
                    self.healthy.add(i.id)
                if not self.has_readiness:
                    self.ready.add(i.id)
        self.strategy = self._strategy() if self.target > 0 else None

    def _counts(self, i: Instance) -> bool:
        """Does ``i`` count as healthy for the restart (a new instance must be healthy and ready too)?"""
        fresh = i.version != self.version or (i.id in self.healthy and i.id in self.ready)
        return fresh and considered_healthy(i)

    def _strategy(self) -> RestartStrategy:
        current = self.instances.values()
        old_running = sum(1 for i in current if i.version != self.version and i.goal == "Running")
        new_ready = sum(1 for i in current if i.version == self.version and self._counts(i))
        return restart_strategy(
            instances=self.target,
            minimum_health_capacity=self.upgrade_strategy.get("minimumHealthCapacity", 1.0),
            maximum_over_capacity=self.upgrade_strategy.get("maximumOverCapacity", 1.0),
            healthy=sum(1 for i in current if self._counts(i)),
            current=old_running + new_ready,
            resident=self.goal == "Stopped",
        )

    def start(self) -> list[Action]:
        if self.strategy is None:  # DeploymentActor.restartRunnable: nothing to do at 0 instances
            return self._finish()
        count = min(self.strategy.kill_immediately, len(self.to_kill))
        kills = [self.to_kill.popleft() for _ in range(count)]
        out: list[Action] = [Kill(tuple(kills), self.goal)] if kills else []
        return out + self._launch() + [ResetDelay()] + self._check_finished()

    def handle(self, event: Event) -> list[Action]:
        if self.finished:
            return []
        self._observe(event)
        out = self._readiness_event(event)
        if isinstance(event, Changed):
            out += self._instance_changed(event.instance)
        return out

    def _instance_changed(self, inst: Instance) -> list[Action]:
        gone = inst.condition in CONSIDER_TERMINAL
        if inst.version == self.version:
            if gone or inst.goal != "Running":
                self._terminated(inst.id)
            if gone and inst.goal != "Running" and inst.id not in self.retired:
                self.retired.add(inst.id)  # someone else decommissioned it: its slot is filled anew
                self.started -= 1
                return self._launch()
            return []  # a failed one keeps goal Running: the launcher relaunches it
        if gone and inst.goal == "Running":  # died on its own: decommission, fill the slot with a new one
            self.old_active.discard(inst.id)
            return [Kill((inst.id,), self.goal), *self._launch(), *self._check_finished()]
        if (gone or inst.condition == "Scheduled") and inst.goal != "Running":
            self.old_active.discard(inst.id)
            return self._launch() + self._check_finished()
        return []

    def _launch(self) -> list[Action]:
        assert self.strategy is not None
        left = max(0, self.strategy.max_capacity - len(self.old_active) - self.started)
        count = min(max(0, self.target - self.started), left)
        self.started += count
        return [Launch(count)] if count > 0 else []

    def _became_ready(self, instance_id: str) -> list[Action]:
        return self.progress() + self._check_finished()

    def progress(self) -> list[Action]:
        """Launch or kill what the instances as they are now allow (see the class)."""
        s = self.strategy
        if self.finished or s is None:
            return []
        room = s.max_capacity - len(self.old_active) - self.started
        if self.started < self.target and room <= 0:
            fresh = self._strategy()
            if fresh.max_capacity > s.max_capacity:
                self.strategy = replace(s, max_capacity=fresh.max_capacity)
                return self._launch()
        now = self.instances  # as the last changes showed them; killed ones are no longer in to_kill
        alive = [iid for iid in self.to_kill if iid in self.old_active and now[iid].goal == "Running"]
        dying = len(self.old_active) - len(alive)
        new_ready = sum(1 for iid in self.healthy & self.ready if iid in now and self._counts(now[iid]))
        need = max(self.target - self.started - max(0, room) - dying, new_ready + len(alive) - self.target)
        healthy = new_ready + sum(1 for iid in alive if considered_healthy(now[iid]))
        victims: list[str] = []
        for iid in sorted(alive, key=lambda iid: considered_healthy(now[iid]))[: max(0, need)]:
            if considered_healthy(now[iid]):
                if healthy <= s.min_healthy:
                    break
                healthy -= 1
            elif now[iid].condition == "Running" and now[iid].healthy is None:
                continue  # no health verdict yet: it may be healthy in a moment
            victims.append(iid)
        self.to_kill = deque(i for i in self.to_kill if i not in victims)
        return [Kill(tuple(victims), self.goal)] if victims else []

    def _check_finished(self) -> list[Action]:
        if self._target_reached(self.target) and not self.old_active:
            return self._finish()
        return []


@dataclass(frozen=True)
class ScalingProposition:
    to_decommission: tuple[Instance, ...]
    to_start: int


def _counts_as_running(i: Instance) -> bool:
    """Runs or will (goal Running; a terminal one waits for its relaunch, Marathon's ``isScheduled``), and
    is not UnreachableInactive (the scale check replaces those)."""
    return i.goal == "Running" and i.condition != "UnreachableInactive"


def _select(youngest_first: bool, a: str | None, b: str | None) -> bool:
    """KillSelection.apply: does ``a`` go before ``b``?"""
    if a is None or b is None:
        return a is None and b is not None
    return a > b if youngest_first else a < b


def _kill_order(youngest_first: bool, a: Instance, b: Instance) -> int:
    """ScalingProposition.sortByConditionAndDate as a comparison."""
    wa, wb = _KILL_WEIGHT.get(a.condition, 5), _KILL_WEIGHT.get(b.condition, 5)
    if wa != wb:
        return -1 if wa < wb else 1
    ka: str | None
    kb: str | None
    if a.condition == b.condition == "Staging":  # no staging time yet: Marathon takes "now", the youngest
        ka, kb = a.staged_at or _LATEST, b.staged_at or _LATEST
    elif a.condition == b.condition == "Starting":
        ka, kb = a.since, b.since
    else:
        ka, kb = a.started_at, b.started_at
        if ka is None and kb is None:
            return 0
    if _select(youngest_first, ka, kb):
        return -1
    return 1 if _select(youngest_first, kb, ka) else 0


def propose_scaling(
    instances: Iterable[Instance],
    *,
    scale_to: int,
    kill_selection: str = "YOUNGEST_FIRST",
    sentenced: Iterable[str] = (),
    meet_constraints: ConstraintKill | None = None,
) -> ScalingProposition:
    """Which instances go, and how many to start (§5 "Scale-down order"): explicitly sentenced ones, then
    those ``meet_constraints`` picks (GROUP_BY rebalancing), then the rest by condition and killSelection.
    Only goal-Running instances that are not UnreachableInactive count as running."""
    running = [i for i in instances if _counts_as_running(i)]
    doomed = set(sentenced)
    chosen = [i for i in running if i.id in doomed]
    rest = [i for i in running if i.id not in doomed]
    count = max(len(running) - scale_to, len(chosen))
    if meet_constraints is not None and count > len(chosen):
        picked = list(meet_constraints(rest, count - len(chosen)))
        chosen += picked
        rest = [i for i in rest if i not in picked]
    order = functools.cmp_to_key(functools.partial(_kill_order, kill_selection == "YOUNGEST_FIRST"))
    victims = (chosen + sorted(rest, key=order))[:count]
    return ScalingProposition(tuple(victims), scale_to - len(running) + count)


class ScaleMachine(_Readiness):
    """A ScaleApplication (or StartApplication-then-scale) action: decommission what ``propose_scaling``
    picks, wait until those are gone, then start what is missing up to ``scale_to`` (TaskStartActor) and
    finish when that many new instances of the app's version are healthy and ready."""

    def __init__(
        self,
        app: Mapping[str, Any],
        instances: Iterable[Instance],
        *,
        scale_to: int | None = None,
        sentenced: Iterable[str] = (),
        meet_constraints: ConstraintKill | None = None,
    ) -> None:
        super().__init__(app, instances)
        self.scale_to: int = app.get("instances", 1) if scale_to is None else scale_to
        self.proposition = propose_scaling(
            self.instances.values(),
            scale_to=self.scale_to,
            kill_selection=app.get("killSelection") or "YOUNGEST_FIRST",
            sentenced=sentenced,
            meet_constraints=meet_constraints,
        )
        self.waiting: set[str] = set()
        self.to_start: int | None = None  # set once the start phase begins

    def start(self) -> list[Action]:
        victims = self.proposition.to_decommission
        if not victims:
            return self._start_phase()
        self.waiting = {i.id for i in victims}
        out: list[Action] = []
        for goal, reserved in (("Stopped", True), ("Decommissioned", False)):
            ids = tuple(i.id for i in victims if i.reserved == reserved)
            if ids:
                out.append(Kill(ids, goal))
        return out

    def _live_count(self) -> int:
        """TaskStartActor's ``isActive || isScheduled`` count, as ``propose_scaling`` counts: instances
        someone decommissions are not live even while their task still runs."""
        return sum(1 for i in self.instances.values() if _counts_as_running(i))

    def _start_phase(self) -> list[Action]:
        self.to_start = max(0, self.scale_to - self._live_count())
        out: list[Action] = [Launch(self.to_start)] if self.to_start else []
        return out + self._check_finished()

    def sync(self) -> list[Action]:
        """TaskStartActor's periodic Sync (every 5 s): queue instances that went missing meanwhile."""
        if self.to_start is None or self.finished:
            return []
        missing = max(0, self.scale_to - self._live_count())
        return [Launch(missing)] if missing else []

    def handle(self, event: Event) -> list[Action]:
        if self.finished:
            return []
        self._observe(event)
        if isinstance(event, Changed):
            inst = event.instance
            if self.to_start is None:
                if inst.id in self.waiting and inst.condition in CONSIDER_TERMINAL:
                    self.waiting.discard(inst.id)
                    if not self.waiting:
                        return self._start_phase()
                return []
            if inst.version == self.version and inst.condition in TERMINAL:
                self._terminated(inst.id)
                return [Launch(1)] if inst.goal != "Running" else []
        if self.to_start is None:
            return []
        return self._readiness_event(event)

    def _became_ready(self, instance_id: str) -> list[Action]:
        return self._check_finished()

    def _check_finished(self) -> list[Action]:
        if self.to_start is not None and self._target_reached(self.to_start):
            return self._finish()
        return []
