"""marathon_py.instances: Marathon 1.10's instance tracker (reference §8): conditions from Mesos states
(TASK_LOST by reason), goals, relaunch of failed instances, expunge of decommissioned ones, the unreachable
strategy (§4.1), launch timeouts, reconciliation, the instance events (§3), and as a property over random
status sequences: no active instance the tracker did not launch, and convergence to ``instances``."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marathon_py.backoff import LaunchDelay
from marathon_py.constraints import Placement
from marathon_py.eventjson import iso, task_state
from marathon_py.instances import (
    ConditionChange,
    InstanceRecord,
    Kill,
    Tracker,
    TrackerConfig,
    Update,
    app_id_of,
    condition_of,
    instance_id_of,
)
from marathon_py.matcher import Match
from marathon_py.upgrade import ACTIVE, TERMINAL
from paas_common.resources import Resources

T0 = 1_600_000_000.0
VERSION = "2020-09-13T12:26:40.000Z"
UUID = "5b4f09a5-1b7c-4b4f-9d1c-2b7e1e0c6d11"


def app(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "/prod/web",
        "version": VERSION,
        "instances": 1,
        "killSelection": "YOUNGEST_FIRST",
        "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
        "healthChecks": [],
        "role": "*",
    }
    doc.update(over)
    return doc


def match(host: str = "agent-1", agent: str = "S1", ports: tuple[int | None, ...] = (31000,)) -> Match:
    return Match("O1", agent, host, Resources(), [], ports, Placement(host))


def status(task_id: str, state: str, **fields: Any) -> dict[str, Any]:
    return {"task_id": {"value": task_id}, "state": state, "agent_id": {"value": "S1"}, **fields}


def started(
    tracker: Tracker, a: dict[str, Any], now: float = T0, state: str = "TASK_RUNNING"
) -> InstanceRecord:
    """Schedule one instance of ``a``, launch it and let Mesos report ``state``."""
    tracker.schedule(a, 1, now)
    rec = tracker.to_launch(a["id"])[-1]
    tracker.launched(rec.instance_id, match(), rec.next_task_id(), now)
    tracker.apply(status(rec.next_task_id(), state), now)
    out = tracker.get(rec.instance_id)
    assert out is not None
    return out


def kinds(up: Update) -> list[str]:
    return [e["eventType"] for e in up.events]


# -- conditions ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "condition"),
    [
        ("TASK_STAGING", "Staging"),
        ("TASK_STARTING", "Starting"),
        ("TASK_RUNNING", "Running"),
        ("TASK_KILLING", "Killing"),
        ("TASK_FINISHED", "Finished"),
        ("TASK_FAILED", "Failed"),
        ("TASK_KILLED", "Killed"),
        ("TASK_ERROR", "Error"),
        ("TASK_DROPPED", "Dropped"),
        ("TASK_GONE", "Gone"),
        ("TASK_GONE_BY_OPERATOR", "Gone"),
        ("TASK_UNREACHABLE", "Unreachable"),
        ("TASK_UNKNOWN", "Unknown"),
    ],
)
def test_condition_of_each_mesos_state(state: str, condition: str) -> None:
    assert condition_of({"state": state}) == condition


@pytest.mark.parametrize(
    ("reason", "message", "condition"),
    [
        ("REASON_RECONCILIATION", "", "Unreachable"),
        ("REASON_AGENT_DISCONNECTED", "", "Unreachable"),
        ("REASON_SLAVE_DISCONNECTED", "", "Unreachable"),
        ("REASON_AGENT_REMOVED", "", "Unreachable"),
        ("REASON_SLAVE_REMOVED", "", "Unreachable"),
        ("REASON_TASK_UNKNOWN", "", "Unknown"),
        ("REASON_RECONCILIATION", "Reconciliation: Task is unknown to the master", "Unknown"),
        ("REASON_EXECUTOR_TERMINATED", "", "Gone"),
        ("REASON_CONTAINER_LAUNCH_FAILED", "", "Gone"),
        (None, "", "Gone"),  # no reason reads as the proto default, COMMAND_EXECUTOR_FAILED
    ],
)
def test_task_lost_by_reason(reason: str | None, message: str, condition: str) -> None:
    doc = {"state": "TASK_LOST", "message": message} | ({"reason": reason} if reason else {})
    assert condition_of(doc) == condition


def test_unknown_state_is_refused() -> None:
    with pytest.raises(ValueError, match="TASK_BOGUS"):
        condition_of({"state": "TASK_BOGUS"})


def test_task_state_of_conditions() -> None:
    assert task_state("Running") == "TASK_RUNNING"
    assert task_state("UnreachableInactive") == "TASK_UNREACHABLE"
    assert task_state("Gone") == "TASK_GONE"
    assert task_state("Scheduled") == task_state("Provisioned") == "TASK_STAGING"


def test_task_ids_name_their_instance_and_app() -> None:
    iid = f"prod_web.instance-{UUID}"
    assert instance_id_of(f"{iid}._app.3") == iid
    assert instance_id_of(f"{iid}._app") == iid
    assert instance_id_of(f"prod_web.{UUID}") == f"prod_web.marathon-{UUID}"  # legacy
    assert instance_id_of("nodots") is None
    assert app_id_of(iid) == "/prod/web"


# -- lifecycle and events -----------------------------------------------------------------------------------


def test_schedule_launch_run_with_marathons_events() -> None:
    tracker, a = Tracker(), app()
    up = tracker.schedule(a, 1, T0)
    (rec,) = tracker.to_launch("/prod/web")
    assert rec.instance_id.startswith("prod_web.instance-") and rec.condition == "Scheduled"
    assert up.events == [
        {
            "instanceId": rec.instance_id,
            "condition": "Scheduled",
            "runSpecId": "/prod/web",
            "agentId": None,
            "host": None,
            "runSpecVersion": VERSION,
            "eventType": "instance_changed_event",
            "timestamp": "2020-09-13T12:26:40.000Z",
        }
    ]
    task_id = rec.next_task_id()
    assert task_id == f"{rec.instance_id}._app.1"
    up = tracker.launched(rec.instance_id, match(), task_id, T0 + 1)
    assert tracker.to_launch("/prod/web") == []
    assert up.backoff == [ConditionChange("/prod/web", VERSION, "Provisioned")]
    assert up.events[0]["condition"] == "Provisioned" and up.events[0]["agentId"] == "S1"
    tracker.apply(status(task_id, "TASK_STAGING"), T0 + 2)
    net = {"container_status": {"network_infos": [{"ip_addresses": [{"ip_address": "10.0.0.7"}]}]}}
    up = tracker.apply(status(task_id, "TASK_RUNNING", message="ok", **net), T0 + 3.5)
    assert up.events[0] == {
        "slaveId": "S1",
        "taskId": task_id,
        "taskStatus": "TASK_RUNNING",
        "message": "ok",
        "appId": "/prod/web",
        "host": "agent-1",
        "ipAddresses": [{"ipAddress": "10.0.0.7", "protocol": "IPv4"}],
        "ports": [31000],
        "version": VERSION,
        "eventType": "status_update_event",
        "timestamp": iso(T0 + 3.5),
    }
    assert kinds(up) == ["status_update_event", "instance_changed_event"]
    now = tracker.get(rec.instance_id)
    assert now is not None and now.condition == "Running" and now.started_at == T0 + 3.5
    assert now.staged_at == T0 + 1 and now.ip_addresses == ("10.0.0.7",)
    assert tracker.apply(status(task_id, "TASK_RUNNING"), T0 + 9).events == []  # nothing changed


def test_iso_timestamps_truncate_to_milliseconds() -> None:
    assert iso(1.0245) == "1970-01-01T00:00:01.024Z"
    assert iso(1.024) == "1970-01-01T00:00:01.024Z"


def test_failed_instance_with_goal_running_waits_for_relaunch_under_its_id() -> None:
    tracker, a = Tracker(), app()
    rec = started(tracker, a)
    assert rec.task_id is not None
    up = tracker.apply(status(rec.task_id, "TASK_FAILED", message="exit 1"), T0 + 10)
    assert up.backoff == [ConditionChange("/prod/web", VERSION, "Failed")]
    assert [r.instance_id for r in tracker.to_launch("/prod/web")] == [rec.instance_id]
    delay = LaunchDelay.of_app(a)
    for change in up.backoff:
        delay.on_condition(change.condition, T0 + 10, change.draining)
    assert delay.ready_at() == T0 + 11  # backoffSeconds 1 after the failure
    failed = tracker.get(rec.instance_id)
    assert failed is not None and failed.next_task_id() == f"{rec.instance_id}._app.2"
    tracker.launched(rec.instance_id, match(), failed.next_task_id(), T0 + 12)
    assert tracker.to_launch("/prod/web") == []
    # a late update for the first task changes nothing; a live one is out of sync and killed
    assert tracker.apply(status(rec.task_id, "TASK_FAILED"), T0 + 13) == Update()
    up = tracker.apply(status(rec.task_id, "TASK_RUNNING"), T0 + 13)
    assert up.kills == [Kill(rec.task_id, "S1", rec.instance_id, "NotInSync")]


def test_terminal_task_never_changes_again() -> None:
    tracker = Tracker()
    rec = started(tracker, app())
    assert rec.task_id is not None
    tracker.apply(status(rec.task_id, "TASK_FINISHED"), T0 + 1)
    assert tracker.apply(status(rec.task_id, "TASK_RUNNING"), T0 + 2) == Update()
    finished = tracker.get(rec.instance_id)
    assert finished is not None and finished.condition == "Finished"


def test_killed_is_not_a_backoff_failure() -> None:
    tracker, a = Tracker(), app()
    rec = started(tracker, a)
    assert rec.task_id is not None
    up = tracker.apply(status(rec.task_id, "TASK_KILLED"), T0 + 1)
    delay = LaunchDelay.of_app(a)
    for change in up.backoff:
        delay.on_condition(change.condition, T0 + 1, change.draining)
    assert not delay.active


def test_agent_draining_resets_the_delay() -> None:
    tracker = Tracker()
    rec = started(tracker, app())
    assert rec.task_id is not None
    up = tracker.apply(status(rec.task_id, "TASK_KILLED", reason="REASON_AGENT_DRAINING"), T0 + 1)
    assert up.backoff == [ConditionChange("/prod/web", VERSION, "Killed", draining=True)]


# -- goals --------------------------------------------------------------------------------------------------


def test_decommissioned_instance_is_killed_then_expunged() -> None:
    tracker = Tracker()
    rec = started(tracker, app())
    assert rec.task_id is not None
    up = tracker.set_goal(rec.instance_id, "Decommissioned", T0 + 1)
    assert up.kills == [Kill(rec.task_id, "S1", rec.instance_id, "OverCapacity")]
    assert kinds(up) == ["instance_changed_event"] and up.events[0]["condition"] == "Running"
    assert tracker.to_launch("/prod/web") == []
    up = tracker.apply(status(rec.task_id, "TASK_KILLED"), T0 + 2)
    assert tracker.get(rec.instance_id) is None
    assert [old.instance_id for old in up.expunged] == [rec.instance_id]
    assert up.events[-1]["condition"] == "Killed"


def test_never_launched_instance_is_expunged_when_decommissioned() -> None:
    tracker = Tracker()
    tracker.schedule(app(), 1, T0)
    (rec,) = tracker.instances()
    up = tracker.set_goal(rec.instance_id, "Decommissioned", T0)
    assert up.kills == [] and tracker.instances() == []


def test_kill_keeps_the_goal_so_the_instance_is_relaunched() -> None:
    tracker = Tracker()
    rec = started(tracker, app())
    assert rec.task_id is not None
    assert tracker.kill(rec.instance_id, "FailedHealthChecks", T0 + 1).kills[0].reason == "FailedHealthChecks"
    tracker.apply(status(rec.task_id, "TASK_KILLED"), T0 + 2)
    assert [r.instance_id for r in tracker.to_launch("/prod/web")] == [rec.instance_id]


def test_scale_schedules_missing_and_decommissions_surplus_by_kill_selection() -> None:
    tracker, a = Tracker(), app(instances=3)
    up = tracker.scale(a, T0)
    assert len(tracker.to_launch("/prod/web")) == 3 and len(up.events) == 3
    for i, rec in enumerate(tracker.to_launch("/prod/web")):
        tracker.launched(rec.instance_id, match(), rec.next_task_id(), T0 + i)
        tracker.apply(status(rec.next_task_id(), "TASK_RUNNING"), T0 + 10 + i)
    by_start = [r.instance_id for r in sorted(tracker.instances(), key=lambda r: r.started_at or 0)]
    assert tracker.scale(a, T0 + 20) == Update()
    assert tracker.to_kill(app(instances=1)) == by_start[:0:-1]  # the two youngest
    assert tracker.to_kill(app(instances=1, killSelection="OLDEST_FIRST")) == by_start[:2]
    up = tracker.scale(app(instances=1), T0 + 20)
    assert {k.instance_id for k in up.kills} == set(by_start[1:])


# -- unreachable --------------------------------------------------------------------------------------------


def test_unreachable_with_defaults_is_replaced_and_expunged_at_once_and_killed_if_it_returns() -> None:
    tracker, a = Tracker(), app()
    rec = started(tracker, a)
    assert rec.task_id is not None
    up = tracker.apply(status(rec.task_id, "TASK_UNREACHABLE", timestamp=T0 + 5), T0 + 5)
    assert tracker.get(rec.instance_id) is None and up.scale == {"/prod/web"}
    assert [e.get("condition") for e in up.events] == [None, "UnreachableInactive"]
    tracker.scale(a, T0 + 5)
    assert len(tracker.to_launch("/prod/web")) == 1
    back = tracker.apply(status(rec.task_id, "TASK_RUNNING"), T0 + 60)
    assert back.kills == [Kill(rec.task_id, "S1", rec.instance_id, "Unknown")]


@pytest.mark.parametrize(("selection", "victim"), [("YOUNGEST_FIRST", "new"), ("OLDEST_FIRST", "old")])
def test_unreachable_instance_that_returns_makes_a_surplus_killed_by_kill_selection(
    selection: str, victim: str
) -> None:
    tracker = Tracker()
    a = app(
        killSelection=selection, unreachableStrategy={"inactiveAfterSeconds": 0, "expungeAfterSeconds": 600}
    )
    old = started(tracker, a)
    assert old.task_id is not None
    up = tracker.apply(status(old.task_id, "TASK_UNREACHABLE", timestamp=T0 + 5), T0 + 5)
    inactive = tracker.get(old.instance_id)
    assert inactive is not None and inactive.condition == "UnreachableInactive" and up.scale == {"/prod/web"}
    tracker.scale(a, T0 + 5)  # UnreachableInactive does not count: a replacement starts at once
    (new,) = tracker.to_launch("/prod/web")
    tracker.launched(new.instance_id, match("agent-2", "S2"), new.next_task_id(), T0 + 6)
    tracker.apply(status(new.next_task_id(), "TASK_RUNNING"), T0 + 7)
    up = tracker.apply(status(old.task_id, "TASK_RUNNING"), T0 + 30)
    assert up.scale == {"/prod/web"}
    expected = new.instance_id if victim == "new" else old.instance_id
    assert tracker.to_kill(a) == [expected]
    assert [k.instance_id for k in tracker.scale(a, T0 + 31).kills] == [expected]


def test_unreachable_inactive_is_expunged_after_expunge_after_seconds() -> None:
    tracker = Tracker()
    a = app(unreachableStrategy={"inactiveAfterSeconds": 0, "expungeAfterSeconds": 600})
    rec = started(tracker, a)
    assert rec.task_id is not None
    tracker.apply(status(rec.task_id, "TASK_UNREACHABLE", timestamp=T0 + 5), T0 + 5)
    assert tracker.tick(T0 + 604).changed == []
    up = tracker.tick(T0 + 605)
    assert tracker.get(rec.instance_id) is None and up.events[0]["condition"] == "Killed"


def test_unreachable_turns_inactive_after_inactive_after_seconds() -> None:
    tracker = Tracker()
    a = app(instances=1, unreachableStrategy={"inactiveAfterSeconds": 300, "expungeAfterSeconds": 600})
    rec = started(tracker, a)
    assert rec.task_id is not None
    since = {"unreachable_time": {"nanoseconds": int((T0 + 10) * 1e9)}}
    up = tracker.apply(status(rec.task_id, "TASK_UNREACHABLE", **since), T0 + 20)
    assert up.scale == set()
    assert tracker.scale(a, T0 + 20) == Update()  # Unreachable still counts as running
    assert tracker.tick(T0 + 309).changed == []
    up = tracker.tick(T0 + 310)
    assert up.scale == {"/prod/web"} and up.events[0]["condition"] == "UnreachableInactive"
    assert len(tracker.scale(a, T0 + 310).events) == 1  # the replacement


def test_disabled_unreachable_strategy_keeps_waiting() -> None:
    tracker = Tracker()
    a = app(unreachableStrategy="disabled")
    rec = started(tracker, a)
    assert rec.task_id is not None
    tracker.apply(status(rec.task_id, "TASK_UNREACHABLE", timestamp=T0), T0)
    assert tracker.tick(T0 + 10**6) == Update()
    kept = tracker.get(rec.instance_id)
    assert kept is not None and kept.condition == "Unreachable"


# -- timers, reconciliation, unknown tasks ------------------------------------------------------------------


def test_tasks_staged_longer_than_the_launch_timeout_are_killed_once_then_retried() -> None:
    tracker = Tracker(TrackerConfig(task_launch_timeout=300, kill_retry_timeout=10))
    rec = started(tracker, app(), state="TASK_STAGING")
    assert rec.task_id is not None
    assert tracker.tick(T0 + 300).kills == []
    assert tracker.tick(T0 + 301).kills == [Kill(rec.task_id, "S1", rec.instance_id, "Overdue")]
    assert tracker.tick(T0 + 302).kills == []
    assert len(tracker.tick(T0 + 311).kills) == 1
    tracker.apply(status(rec.task_id, "TASK_KILLED"), T0 + 312)
    assert tracker.tick(T0 + 400).kills == []


def test_unconfirmed_launch_is_killed_after_the_confirm_timeout_and_running_never() -> None:
    tracker = Tracker(TrackerConfig(task_launch_confirm_timeout=60))
    tracker.schedule(app(instances=2), 2, T0)
    first, second = tracker.to_launch("/prod/web")
    tracker.launched(first.instance_id, match(), first.next_task_id(), T0)
    tracker.launched(second.instance_id, match(), second.next_task_id(), T0)
    tracker.apply(status(second.next_task_id(), "TASK_RUNNING"), T0 + 1)
    assert [k.instance_id for k in tracker.tick(T0 + 61).kills] == [first.instance_id]
    assert tracker.tick(T0 + 10**5).kills == [Kill(first.next_task_id(), "S1", first.instance_id, "Retry")]


def test_reconcile_lists_confirmed_live_tasks_and_decommissions_orphans() -> None:
    tracker = Tracker()
    running = started(tracker, app())
    tracker.schedule(app(id="/gone"), 1, T0)
    tracker.schedule(app(), 1, T0)
    provisioned = tracker.to_launch("/prod/web")[0]
    tracker.launched(provisioned.instance_id, match(), provisioned.next_task_id(), T0)
    tasks, up = tracker.reconcile({"/prod/web"}, T0 + 1)
    assert tasks == [{"task_id": {"value": running.task_id}, "agent_id": {"value": "S1"}}]
    assert [r.app_id for r in tracker.instances()] == ["/prod/web", "/prod/web"]
    assert [old.app_id for old in up.expunged] == ["/gone"]


@pytest.mark.parametrize(
    ("reply", "condition"),
    [
        ({"state": "TASK_GONE", "reason": "REASON_RECONCILIATION"}, "Gone"),
        ({"state": "TASK_UNKNOWN", "reason": "REASON_RECONCILIATION"}, "Unknown"),
        ({"state": "TASK_LOST", "message": "Reconciliation: Task is unknown to the master"}, "Unknown"),
        ({"state": "TASK_LOST", "reason": "REASON_RECONCILIATION"}, "UnreachableInactive"),
    ],
)
def test_reconciliation_answers_for_tasks_mesos_does_not_know(reply: dict[str, Any], condition: str) -> None:
    tracker = Tracker()
    a = app(unreachableStrategy={"inactiveAfterSeconds": 0, "expungeAfterSeconds": 900})
    rec = started(tracker, a)
    assert rec.task_id is not None
    tracker.apply(status(rec.task_id, **reply), T0 + 1)
    now = tracker.get(rec.instance_id)
    assert now is not None and now.condition == condition
    assert (tracker.to_launch("/prod/web") != []) == (condition in TERMINAL)


def test_updates_for_unknown_instances() -> None:
    tracker = Tracker()
    task = f"prod_web.instance-{UUID}._app.1"
    up = tracker.apply(status(task, "TASK_FAILED"), T0)
    assert up.events == [
        {
            "instanceId": f"prod_web.instance-{UUID}",
            "runSpecId": "/prod/web",
            "condition": "Failed",
            "eventType": "unknown_instance_terminated_event",
            "timestamp": iso(T0),
        }
    ]
    assert tracker.apply(status(task, "TASK_RUNNING"), T0).kills == [
        Kill(task, "S1", f"prod_web.instance-{UUID}", "Unknown")
    ]
    assert tracker.apply(status(task, "TASK_KILLING"), T0) == Update()


# -- health -------------------------------------------------------------------------------------------------


def test_mesos_health_from_status_updates() -> None:
    tracker = Tracker()
    rec = started(tracker, app(healthChecks=[{"protocol": "MESOS_HTTP"}]))
    assert rec.task_id is not None and rec.healthy is None
    up = tracker.apply(status(rec.task_id, "TASK_RUNNING", healthy=True), T0 + 30)
    assert kinds(up) == ["status_update_event", "instance_health_changed_event"]
    assert up.events[1] == {
        "instanceId": rec.instance_id,
        "runSpecId": "/prod/web",
        "healthy": True,
        "runSpecVersion": VERSION,
        "eventType": "instance_health_changed_event",
        "timestamp": iso(T0 + 30),
    }
    healthy = tracker.get(rec.instance_id)
    assert healthy is not None and healthy.healthy is True and healthy.since == T0 + 30
    assert tracker.set_health(rec.instance_id, False, T0 + 31).events == []  # Mesos checks decide


def test_marathon_check_health_comes_from_set_health() -> None:
    tracker = Tracker()
    rec = started(tracker, app(healthChecks=[{"protocol": "HTTP"}]))
    assert rec.marathon_checks and rec.task_id is not None
    assert tracker.apply(status(rec.task_id, "TASK_RUNNING", healthy=False), T0 + 1).events[1:] == []
    up = tracker.set_health(rec.instance_id, True, T0 + 2)
    assert kinds(up) == ["instance_health_changed_event"] and up.events[0]["healthy"] is True


# -- property -----------------------------------------------------------------------------------------------

STATES = ["TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_FINISHED", "TASK_FAILED"]
STATES += ["TASK_KILLED", "TASK_ERROR", "TASK_DROPPED", "TASK_GONE", "TASK_UNREACHABLE", "TASK_UNKNOWN"]
STRATEGIES = [(0, 0), (0, 600), (300, 600), None]
status_op = st.tuples(st.just("status"), st.integers(0, 50), st.sampled_from(STATES), st.booleans())
operation = st.one_of(
    st.tuples(st.just("scale")),
    st.tuples(st.just("launch")),
    st.tuples(st.just("tick"), st.integers(1, 400)),
    status_op,
    status_op,
    status_op,
)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 4),
    st.sampled_from(STRATEGIES),
    st.sampled_from(["YOUNGEST_FIRST", "OLDEST_FIRST"]),
    st.lists(operation, min_size=5, max_size=60),
)
def test_random_status_sequences_never_invent_instances_and_converge(
    n: int, strategy: tuple[int, int] | None, selection: str, ops: list[tuple[Any, ...]]
) -> None:
    unreachable: Any = (
        "disabled"
        if strategy is None
        else dict(zip(("inactiveAfterSeconds", "expungeAfterSeconds"), strategy, strict=True))
    )
    a = app(instances=n, killSelection=selection, unreachableStrategy=unreachable)
    tracker, now, launched = Tracker(), T0, []

    def launch_all() -> None:
        for rec in tracker.to_launch(a["id"]):
            launched.append(rec.next_task_id())
            tracker.launched(rec.instance_id, match(), rec.next_task_id(), now)

    def check() -> None:
        records = tracker.instances()
        active = [r for r in records if r.condition in ACTIVE]
        assert all(r.task_id in launched for r in active) and len(active) <= len(launched)
        assert len({r.task_id for r in records if r.task_id}) == len([r for r in records if r.task_id])
        assert not any(r.goal == "Decommissioned" and r.condition in TERMINAL for r in records)

    for op in [("scale",), ("launch",), *ops]:
        if op[0] == "scale":
            tracker.scale(a, now)
            counted = [
                r for r in tracker.instances() if r.goal == "Running" and r.condition != "UnreachableInactive"
            ]
            assert len(counted) == n
        elif op[0] == "launch":
            launch_all()
        elif op[0] == "tick":
            now += op[1]
            tracker.tick(now)
        elif launched:
            task = launched[op[1] % len(launched)]
            tracker.apply(
                status(task, op[2], reason="REASON_RECONCILIATION") if op[3] else status(task, op[2]), now
            )
        check()

    for _ in range(6):  # Mesos runs whatever is launched and kills whatever is killed
        now += 1
        tracker.scale(a, now)
        launch_all()
        for rec in tracker.instances():
            if rec.task_id and rec.condition not in TERMINAL:
                state = "TASK_RUNNING" if rec.goal == "Running" else "TASK_KILLED"
                tracker.apply(status(rec.task_id, state), now)
        check()
    assert tracker.to_launch(a["id"]) == []
    assert len(tracker.instances()) == n
    assert all(r.condition == "Running" and r.goal == "Running" for r in tracker.instances())
