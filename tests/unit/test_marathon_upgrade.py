"""marathon_py.upgrade: Marathon 1.10's rolling-restart arithmetic (TaskReplaceActor, reference §7.1), the
scale step (ScalingProposition + TaskStartActor, §5/§7.3) and, as a property over random event orders,
the upgradeStrategy guarantees: healthy instances never below ceil(minimumHealthCapacity * N), instances
never above N + floor(maximumOverCapacity * N) (plus Marathon's one temporary extra when the two meet)."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marathon_py.upgrade import (
    CONSIDER_TERMINAL,
    Action,
    Changed,
    Done,
    Event,
    HealthChanged,
    Instance,
    Kill,
    Launch,
    ReadinessResult,
    ReplaceMachine,
    ResetDelay,
    RestartStrategy,
    ScaleMachine,
    propose_scaling,
    restart_strategy,
)

OLD, NEW = "2020-01-01T00:00:00.000Z", "2020-02-01T00:00:00.000Z"


def app(instances: int, mhc: float = 1.0, moc: float = 1.0, **fields: Any) -> dict[str, Any]:
    out = {
        "id": "/web",
        "instances": instances,
        "version": NEW,
        "upgradeStrategy": {"minimumHealthCapacity": mhc, "maximumOverCapacity": moc},
        "killSelection": "YOUNGEST_FIRST",
        "healthChecks": [],
        "readinessChecks": [],
    }
    out.update(fields)
    return out


def old(n: int, **fields: Any) -> list[Instance]:
    """n running, healthy old-version instances, old0 started first (the caller marks running instances of
    versions without health checks healthy: ``considered_healthy``)."""
    fields.setdefault("healthy", True)
    return [Instance(f"old{i}", OLD, started_at=f"2020-01-01T00:00:{i:02d}.000Z", **fields) for i in range(n)]


def running(instance_id: str, version: str = NEW, healthy: bool | None = True, **fields: Any) -> Changed:
    """A running instance as the caller shows it: healthy unless its version's health checks say otherwise."""
    return Changed(Instance(instance_id, version, healthy=healthy, **fields))


def killed(instance_id: str, version: str = OLD, goal: str = "Decommissioned") -> Changed:
    return Changed(Instance(instance_id, version, condition="Killed", goal=goal))


# --- the restart strategy ------------------------------------------------------------------------------

# (instances, minimumHealthCapacity, maximumOverCapacity, healthy, current, resident) → strategy
STRATEGY_CASES = [
    ((3, 1.0, 1.0, 3, 3, False), RestartStrategy(3, 6, 0)),  # the default: all new side by side first
    ((3, 0.0, 0.0, 3, 3, False), RestartStrategy(0, 3, 3)),  # 0: kill all old first
    ((3, 0.7, 0.0, 3, 3, False), RestartStrategy(3, 4, 0)),  # docs: ceil(2.1) = 3 stay up; +1 to move
    ((3, 1.0, 0.0, 3, 3, False), RestartStrategy(3, 4, 0)),  # minHealthy == maxCapacity: one extra
    ((3, 1.0, 0.0, 3, 3, True), RestartStrategy(3, 3, 1)),  # ... resident: one below instead
    ((3, 1.0, 0.0, 2, 3, False), RestartStrategy(3, 3, 0)),  # not all healthy: no extra (waits)
    ((4, 0.5, 0.5, 4, 4, False), RestartStrategy(2, 6, 2)),
    ((10, 0.5, 0.1, 10, 10, False), RestartStrategy(5, 11, 5)),
    ((2, 1.0, 0.0, 5, 5, False), RestartStrategy(2, 3, 3)),  # leftovers of a forced deployment go at once
    ((2, 0.0, 1.0, 0, 6, False), RestartStrategy(0, 4, 4)),
    ((100, 0.07, 0.15, 100, 100, False), RestartStrategy(8, 114, 92)),  # IEEE doubles, as on the JVM
    ((1, 1.0, 0.0, 1, 1, False), RestartStrategy(1, 2, 0)),
    ((1, 0.5, 0.0, 0, 1, False), RestartStrategy(1, 1, 0)),
]


@pytest.mark.parametrize(("args", "expected"), STRATEGY_CASES)
def test_restart_strategy(args: tuple[int, float, float, int, int, bool], expected: RestartStrategy) -> None:
    n, mhc, moc, healthy, current, resident = args
    got = restart_strategy(
        instances=n,
        minimum_health_capacity=mhc,
        maximum_over_capacity=moc,
        healthy=healthy,
        current=current,
        resident=resident,
    )
    assert got == expected


def test_restart_strategy_needs_instances() -> None:
    with pytest.raises(ValueError, match="instances must be > 0"):
        restart_strategy(
            instances=0, minimum_health_capacity=1, maximum_over_capacity=1, healthy=0, current=0
        )


# --- rolling restart, step by step ---------------------------------------------------------------------


def test_default_strategy_starts_all_new_then_kills_old_one_per_ready_new() -> None:
    m = ReplaceMachine(app(2), old(2))
    assert m.start() == [Launch(2), ResetDelay()]
    assert m.handle(running("new0")) == [Kill(("old1",))]  # YOUNGEST_FIRST among equally healthy
    assert m.handle(running("new1")) == [Kill(("old0",))]
    assert m.handle(killed("old1")) == []
    assert m.handle(killed("old0")) == [Done()]
    assert m.handle(killed("old0")) == []


def test_zero_min_health_kills_everything_first() -> None:
    m = ReplaceMachine(app(2, mhc=0.0, moc=0.0), old(2))
    assert m.start() == [Kill(("old1", "old0")), ResetDelay()]  # no capacity left to launch into
    assert m.handle(killed("old0")) == [Launch(1)]
    assert m.handle(killed("old1")) == [Launch(1)]
    assert m.handle(running("new0")) == []
    assert m.handle(running("new1")) == [Done()]


def test_full_health_without_over_capacity_moves_one_at_a_time() -> None:
    m = ReplaceMachine(app(2, mhc=1.0, moc=0.0), old(2))
    assert m.start() == [Launch(1), ResetDelay()]  # the one temporary extra instance
    assert m.handle(running("new0")) == [Kill(("old1",))]
    assert m.handle(killed("old1")) == [Launch(1)]
    assert m.handle(running("new1")) == [Kill(("old0",))]
    assert m.handle(killed("old0")) == [Done()]


def test_resident_apps_go_one_below_instead_and_stop_rather_than_decommission() -> None:
    resident = app(2, mhc=1.0, moc=0.0, container={"volumes": [{"containerPath": "data", "persistent": {}}]})
    m = ReplaceMachine(resident, old(2))
    assert m.start() == [Kill(("old1",), "Stopped"), ResetDelay()]
    assert m.handle(killed("old1", goal="Stopped")) == [Launch(1)]


def test_health_and_readiness_gate_the_kills() -> None:
    checked = app(1, healthChecks=[{"protocol": "HTTP"}], readinessChecks=[{"name": "readinessCheck"}])
    m = ReplaceMachine(checked, old(1, healthy=True))
    assert m.start() == [Launch(1), ResetDelay()]
    assert m.handle(running("new0", healthy=None)) == []  # running is not healthy
    assert m.handle(HealthChanged("new0", OLD, True)) == []  # another version's health
    assert m.handle(ReadinessResult("new0", True)) == []  # ready but not yet healthy
    assert m.handle(HealthChanged("new0", NEW, True)) == [Kill(("old0",))]
    assert m.handle(HealthChanged("new0", NEW, True)) == []  # no second kill for the same instance
    assert m.handle(killed("old0")) == [Done()]


def test_unhealthy_old_instances_are_killed_first_then_by_kill_selection() -> None:
    instances = old(4)
    instances[1] = replace(instances[1], healthy=False)
    checked = app(4, mhc=0.25, moc=0.0, healthChecks=[{"protocol": "TCP"}])
    healthy = [replace(i, healthy=True) if i.id != "old1" else i for i in instances]
    start = ReplaceMachine(checked, healthy).start()
    assert start[0] == Kill(("old1", "old3"))  # H=3, minHealthy=1: kill 2, the unhealthy one first
    oldest = ReplaceMachine({**checked, "killSelection": "OLDEST_FIRST"}, healthy).start()
    assert oldest[0] == Kill(("old1", "old0"))


def test_old_instance_dying_on_its_own_is_decommissioned_and_replaced() -> None:
    m = ReplaceMachine(app(2, mhc=1.0, moc=0.0), old(2))
    assert m.start() == [Launch(1), ResetDelay()]
    died = Changed(Instance("old0", OLD, condition="Failed", goal="Running"))
    assert m.handle(died) == [Kill(("old0",)), Launch(1)]
    assert m.handle(killed("old0")) == []  # the follow-up with the new goal changes nothing
    assert m.handle(running("new0")) == []  # new0 and old1 are the 2 of minHealthy: old1 stays
    assert m.handle(running("new1")) == [Kill(("old1",))]
    assert m.handle(killed("old1")) == [Done()]


def test_failed_new_instance_is_left_to_the_launcher_and_counts_again_when_back() -> None:
    m = ReplaceMachine(app(1), old(1))
    assert m.start() == [Launch(1), ResetDelay()]
    assert m.handle(Changed(Instance("new0", NEW, condition="Failed"))) == []
    assert m.handle(running("new0")) == [Kill(("old0",))]
    assert m.handle(killed("old0")) == [Done()]


def test_resumed_deployment_reconciles_started_instances() -> None:
    """After failover the new leader finds one new instance already running."""
    m = ReplaceMachine(app(2, mhc=1.0, moc=0.0), [*old(1), Instance("new0", NEW, healthy=True)])
    assert m.start() == [Launch(1), ResetDelay()]  # H=2 counts new0; capacity 3 - 1 old - 1 started
    assert m.handle(running("new1")) == [Kill(("old0",))]
    assert m.handle(killed("old0")) == [Done()]


def test_zero_instances_is_done_at_once() -> None:
    m = ReplaceMachine(app(0), old(2))
    assert m.start() == [Done()]
    assert m.handle(killed("old0")) == []


def test_nothing_left_to_replace_is_done_at_start() -> None:
    m = ReplaceMachine(app(1), [Instance("new0", NEW)])
    assert m.start() == [ResetDelay(), Done()]


def test_resumed_restart_reconciles_only_running_new_instances() -> None:
    """After failover the new leader finds new0 still staging (started, but neither healthy nor ready yet)
    and new1 decommissioned by someone else (not started: its slot is filled at once, not again when gone)."""
    leaving = Instance("new1", NEW, goal="Decommissioned", healthy=True)
    m = ReplaceMachine(app(2), [*old(2), Instance("new0", NEW, condition="Staging"), leaving])
    assert m.start() == [Launch(1), ResetDelay()]
    assert m.handle(killed("new1", NEW)) == []
    assert m.handle(running("new0")) == [Kill(("old1",))]
    assert m.handle(running("new2")) == [Kill(("old0",))]
    assert m.handle(killed("old1")) == []
    assert m.handle(killed("old0")) == [Done()]


def test_resumed_restart_does_not_kill_below_min_healthy() -> None:
    """Before the failover new0 turned ready and old1 was told to go; the new leader finds old1 still
    running. It is no surplus to kill at once (goal-Running old instances and new ones that count are):
    old0 stays until a second new instance is ready."""
    leaving = replace(old(2)[1], goal="Decommissioned")
    m = ReplaceMachine(app(2, mhc=1.0, moc=0.0), [old(1)[0], leaving, Instance("new0", NEW, healthy=True)])
    assert m.start() == [Launch(1), ResetDelay()]
    assert m.handle(running("new1")) == [Kill(("old0",))]
    assert m.handle(killed("old1")) == []
    assert m.handle(killed("old0")) == [Done()]


def test_new_instance_decommissioned_by_someone_else_is_replaced_once_gone() -> None:
    m = ReplaceMachine(app(1), old(1))
    assert m.start() == [Launch(1), ResetDelay()]
    leaving = Changed(Instance("new0", NEW, goal="Decommissioned", healthy=True))
    assert m.handle(leaving) == []  # running, but it will not serve: no kill for it
    assert m.handle(killed("new0", NEW)) == [Launch(1)]
    assert m.handle(killed("new0", NEW)) == []  # a repeated report changes nothing
    assert m.handle(running("new1")) == [Kill(("old0",))]
    assert m.handle(killed("old0")) == [Done()]


def test_old_instances_are_healthy_by_their_own_version_checks() -> None:
    """The new version has no health checks, the old one had: an old instance its checks found unhealthy
    does not count towards minHealthy, and goes first to make room (``progress``, after every change)."""
    instances = old(2)
    instances[1] = replace(instances[1], healthy=False)
    m = ReplaceMachine(app(2, mhc=1.0, moc=0.0), instances)
    assert m.start() == [ResetDelay()]  # 1 healthy < minHealthy 2 == maxCapacity: no extra instance
    assert m.progress() == [Kill(("old1",))]
    assert m.handle(killed("old1")) == [Launch(1)]
    assert m.handle(running("new0")) == [Launch(1)]  # now 2 are healthy: the one extra instance
    assert m.handle(running("new1")) == [Kill(("old0",))]
    assert m.handle(killed("old0")) == [Done()]


def test_restart_begun_before_the_old_instance_was_healthy_gets_its_extra_instance_later() -> None:
    """minHealthy == maxCapacity == 1 and the old instance has no health verdict yet: no extra instance at
    the start (Marathon then waits forever), nor a kill; ``progress`` allows one once the old is healthy."""
    m = ReplaceMachine(app(1, mhc=0.5, moc=0.5, healthChecks=[{"protocol": "HTTP"}]), old(1, healthy=None))
    assert m.start() == [ResetDelay()]
    assert m.progress() == []  # it may be healthy in a moment
    assert m.handle(HealthChanged("old0", OLD, True)) == []
    assert m.progress() == [Launch(1)]
    assert m.handle(running("new0", healthy=None)) == []
    assert m.handle(HealthChanged("new0", NEW, True)) == [Kill(("old0",))]
    assert m.handle(killed("old0")) == [Done()]


# --- scaling -------------------------------------------------------------------------------------------


def test_scale_down_kill_selection() -> None:
    instances = old(4)
    youngest = propose_scaling(instances, scale_to=2)
    assert [i.id for i in youngest.to_decommission] == ["old3", "old2"]
    assert youngest.to_start == 0
    oldest = propose_scaling(instances, scale_to=2, kill_selection="OLDEST_FIRST")
    assert [i.id for i in oldest.to_decommission] == ["old0", "old1"]


def test_scale_down_prefers_unreachable_then_staging_then_starting() -> None:
    instances = [
        Instance("run", OLD, started_at="2020-01-01T00:00:09.000Z"),
        Instance("starting", OLD, condition="Starting", since="2020-01-01T00:00:01.000Z"),
        Instance("staging-late", OLD, condition="Staging", staged_at="2020-01-01T00:00:05.000Z"),
        Instance("staging-early", OLD, condition="Staging", staged_at="2020-01-01T00:00:02.000Z"),
        Instance("unreachable", OLD, condition="Unreachable"),
        Instance("inactive", OLD, condition="UnreachableInactive"),  # not counted as running
        Instance("leaving", OLD, goal="Decommissioned"),  # not counted either
    ]
    p = propose_scaling(instances, scale_to=1)
    assert [i.id for i in p.to_decommission] == ["unreachable", "staging-late", "staging-early", "starting"]


def test_sentenced_instances_go_first_even_without_a_size_change() -> None:
    instances = old(3)
    p = propose_scaling(instances, scale_to=3, sentenced=["old0"])
    assert [i.id for i in p.to_decommission] == ["old0"]
    assert p.to_start == 1
    picked = propose_scaling(
        instances, scale_to=1, sentenced=["old0"], meet_constraints=lambda rest, n: rest[:1]
    )
    assert [i.id for i in picked.to_decommission] == ["old0", "old1"]


def test_scale_up_launches_the_difference_and_waits_for_them() -> None:
    m = ScaleMachine(app(4), old(2))
    assert m.start() == [Launch(2)]
    assert m.handle(running("old0", OLD)) == []  # other versions do not count
    assert m.handle(running("new0")) == []
    assert m.sync() == [Launch(1)]  # the tracker does not know the second one yet
    assert m.handle(Changed(Instance("new1", NEW, condition="Staging"))) == []
    assert m.sync() == []
    assert m.handle(Changed(Instance("new1", NEW, condition="Killed", goal="Decommissioned"))) == [Launch(1)]
    assert m.handle(running("new2")) == [Done()]
    assert m.sync() == []


def test_scale_down_waits_for_the_kills_then_is_done() -> None:
    m = ScaleMachine(app(1), [*old(2), replace(old(3)[2], reserved=True)])
    assert m.start() == [Kill(("old2",), "Stopped"), Kill(("old1",))]
    assert m.handle(killed("old1")) == []
    assert m.handle(killed("old2", goal="Stopped")) == [Done()]


def test_scale_with_health_checks_and_resync() -> None:
    m = ScaleMachine(app(1, healthChecks=[{"protocol": "HTTP"}]), [], scale_to=2)
    assert m.start() == [Launch(2)]
    assert m.sync() == [Launch(2)]  # nothing showed up in the tracker yet
    m.handle(Changed(Instance("new0", NEW, condition="Scheduled")))
    m.handle(running("new1"))
    assert m.sync() == []
    assert m.handle(HealthChanged("new0", NEW, True)) == []
    assert m.handle(HealthChanged("new1", NEW, True)) == [Done()]


def test_scale_to_what_is_running_is_done_at_once() -> None:
    assert ScaleMachine(app(2), old(2)).start() == [Done()]


def test_scale_counts_what_runs_or_will_with_goal_running() -> None:
    """An instance being decommissioned still runs but will not serve; a failed one with goal Running waits
    for its relaunch (TaskStartActor's ``isScheduled``): it is not started twice."""
    leaving = Instance("old1", OLD, condition="Killing", goal="Decommissioned")
    assert ScaleMachine(app(2), [*old(1), leaving]).start() == [Launch(1)]
    failed = Instance("old1", OLD, condition="Failed")
    assert ScaleMachine(app(2), [*old(1), failed]).start() == [Done()]


# --- property: the upgradeStrategy guarantees under random event orders ------------------------------


class Cluster:
    """A simulated instance tracker: carries out the machine's actions and offers the events that could
    happen next. New instances may fail once before they are healthy and ready (the launcher relaunches
    them under the same id); killed instances die when the simulation says so."""

    def __init__(self, spec: dict[str, Any], instances: list[Instance]) -> None:
        self.spec = spec
        self.has_health = bool(spec["healthChecks"])
        self.has_readiness = bool(spec["readinessChecks"])
        self.inst = {i.id: i for i in instances}
        self.ready: set[str] = {i.id for i in instances}
        self.failed: set[str] = set()
        self.launched = 0

    def apply(self, actions: list[Action]) -> list[Event]:
        events: list[Event] = []
        for a in actions:
            if isinstance(a, Launch):
                for _ in range(a.count):
                    i = Instance(f"new{self.launched}", NEW, condition="Scheduled")
                    self.launched += 1
                    self.inst[i.id] = i
            elif isinstance(a, Kill):
                for iid in a.instance_ids:
                    self.inst[iid] = replace(self.inst[iid], goal=a.goal)
                    events.append(Changed(self.inst[iid]))
        return events

    def serving(self) -> int:
        return sum(
            1
            for i in self.inst.values()
            if i.condition == "Running"
            and i.goal == "Running"
            and (i.healthy or not self.has_health)
            and (i.id in self.ready or not self.has_readiness)
        )

    def alive(self) -> int:
        return sum(1 for i in self.inst.values() if i.condition not in CONSIDER_TERMINAL)

    def possible(self) -> list[tuple[str, str]]:
        out = []
        for i in self.inst.values():
            if i.goal != "Running" and i.condition == "Running":
                out.append(("die", i.id))
            elif i.version == NEW and i.goal == "Running":
                done = (i.healthy or not self.has_health) and (i.id in self.ready or not self.has_readiness)
                if i.condition == "Scheduled":
                    out.append(("run", i.id))
                elif i.condition == "Running" and not done:
                    out.append(("health" if self.has_health and not i.healthy else "ready", i.id))
                if i.condition in ("Scheduled", "Running") and not done and i.id not in self.failed:
                    out.append(("fail", i.id))
        return sorted(out)

    def happen(self, kind: str, iid: str) -> Event:
        i = self.inst[iid]
        if kind == "die":
            self.inst[iid] = replace(i, condition="Killed")
        elif kind == "run":  # the caller's view: running is healthy without health checks
            self.inst[iid] = replace(i, condition="Running", healthy=None if self.has_health else True)
        elif kind == "health":
            self.inst[iid] = replace(i, healthy=True)
            return HealthChanged(iid, NEW, True)
        elif kind == "ready":
            self.ready.add(iid)
            return ReadinessResult(iid, True)
        else:  # fail: the launcher puts it back to Scheduled right after
            self.failed.add(iid)
            self.inst[iid] = replace(i, condition="Scheduled", healthy=None)
            self.ready.discard(iid)
            return Changed(replace(i, condition="Failed", healthy=None))
        return Changed(self.inst[iid])


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 7),
    mhc=st.integers(0, 100),
    moc=st.integers(0, 100),
    checks=st.sampled_from([(False, False), (True, False), (False, True), (True, True)]),
    kill_selection=st.sampled_from(["YOUNGEST_FIRST", "OLDEST_FIRST"]),
    data=st.data(),
)
def test_rolling_restart_keeps_capacity_bounds(
    n: int, mhc: int, moc: int, checks: tuple[bool, bool], kill_selection: str, data: st.DataObject
) -> None:
    health, readiness = checks
    spec = app(
        n,
        mhc=mhc / 100,
        moc=moc / 100,
        killSelection=kill_selection,
        healthChecks=[{"protocol": "HTTP"}] if health else [],
        readinessChecks=[{"name": "r"}] if readiness else [],
    )
    cluster = Cluster(spec, old(n))
    min_healthy = math.ceil(n * Fraction(mhc, 100))
    over = n + math.floor(n * Fraction(moc, 100))
    raw_max = int(n * (1 + moc / 100))
    extra = 1 if math.ceil(n * mhc / 100) == raw_max <= n else 0  # Marathon's one temporary extra
    m = ReplaceMachine(spec, list(cluster.inst.values()))
    assert m.strategy is not None and m.strategy.max_capacity <= over + extra
    pending = cluster.apply(m.start())
    for _ in range(50 * n):
        while pending:
            pending += cluster.apply(m.handle(pending.pop(0)))
            pending += cluster.apply(m.progress())  # the caller's part: after every change
        assert cluster.serving() >= min_healthy
        assert cluster.alive() <= m.strategy.max_capacity
        options = cluster.possible()
        if not options:
            break
        pending.append(cluster.happen(*data.draw(st.sampled_from(options))))
    assert m.finished
    assert all(i.version == NEW for i in cluster.inst.values() if i.condition not in CONSIDER_TERMINAL)
    assert cluster.serving() == n
