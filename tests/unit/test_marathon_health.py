"""marathon_py.health: Marathon 1.10's health bookkeeping (reference §6): HTTP status classes, alive, the
grace period, kills after maxConsecutiveFailures (counted as Marathon does), the instance aggregate over
several checks, Mesos-run results from status updates, the events of §3 and where a probe goes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from marathon_py.constraints import Placement
from marathon_py.eventjson import iso
from marathon_py.health import (
    AppHealth,
    Health,
    Result,
    first_probe_delay,
    http_result,
    is_marathon_check,
    probe_target,
    results_by_instance,
)
from marathon_py.instances import InstanceRecord, Tracker

T0 = 1_600_000_000.0
VERSION = "2020-09-13T12:26:40.000Z"
IID = "web.instance-5b4f09a5-1b7c-4b4f-9d1c-2b7e1e0c6d11"
HTTP = {"protocol": "HTTP", "path": "/health", "portIndex": 0, "gracePeriodSeconds": 300}
HTTP |= {"intervalSeconds": 60, "timeoutSeconds": 20, "maxConsecutiveFailures": 3, "ignoreHttp1xx": False}
OK, BAD = Result(True), Result(False, "503 Service Unavailable")


def app(*checks: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {"id": "/web", "version": VERSION, "healthChecks": list(checks) or [HTTP], **over}


def running(since: float = T0, **over: Any) -> InstanceRecord:
    rec = InstanceRecord(
        IID, "/web", VERSION, condition="Running", since=since, task_id=f"{IID}._app.1", agent_id="S1",
        placement=Placement("agent-1"), host_ports=(31000, 31001), marathon_checks=True,
    )  # fmt: skip
    return replace(rec, **over)


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["eventType"] for e in events]


@pytest.mark.parametrize(
    ("status", "reason", "ignore", "expected"),
    [
        (200, "OK", False, Result(True)),
        (302, "Found", False, Result(True)),
        (399, "", False, Result(True)),
        (404, "Not Found", False, Result(False, "404 Not Found")),
        (503, "Service Unavailable", False, Result(False, "503 Service Unavailable")),
        (102, "Processing", True, Result(None)),
        (102, "Processing", False, Result(False, "102 Processing")),
    ],
)
def test_http_status_classes(status: int, reason: str, ignore: bool, expected: Result) -> None:
    assert http_result(status, reason, ignore) == expected


def test_health_records_and_alive() -> None:
    h = Health(IID)
    assert not h.alive and h.to_json() == {"alive": False, "consecutiveFailures": 0, "instanceId": IID}
    h = h.updated(OK, T0).updated(BAD, T0 + 1).updated(BAD, T0 + 2)
    assert not h.alive and h.consecutive_failures == 2 and h.first_success == T0
    assert h.updated(Result(None), T0 + 3) == h
    h = h.updated(OK, T0 + 4)
    assert h.alive and h.consecutive_failures == 0
    assert h.to_json() == {
        "alive": True,
        "consecutiveFailures": 0,
        "firstSuccess": iso(T0),
        "instanceId": IID,
        "lastSuccess": iso(T0 + 4),
        "lastFailure": iso(T0 + 2),
        "lastFailureCause": "503 Service Unavailable",
    }


def test_which_checks_marathon_runs() -> None:
    assert [is_marathon_check({"protocol": p}) for p in ("HTTP", "HTTPS", "TCP")] == [True] * 3
    assert [is_marathon_check({"protocol": p}) for p in ("COMMAND", "MESOS_HTTP", "MESOS_TCP")] == [False] * 3
    assert first_probe_delay(HTTP) == 5.0 and first_probe_delay(HTTP | {"intervalSeconds": 2}) == 2.0


def test_failures_within_the_grace_period_are_ignored_until_first_healthy() -> None:
    ah, rec = AppHealth(app()), running()
    v = ah.result(0, rec, BAD, T0 + 299)
    assert v.events == [] and ah.results(IID) == [Health(IID)]
    v = ah.result(0, rec, BAD, T0 + 300)
    assert kinds(v.events) == ["failed_health_check_event"]
    assert v.events[0] == {
        "appId": "/web",
        "healthCheck": HTTP,
        "taskId": IID,  # Marathon writes the instance id under "taskId"
        "eventType": "failed_health_check_event",
        "timestamp": iso(T0 + 300),
    }
    ah2 = AppHealth(app())
    ah2.result(0, rec, OK, T0 + 10)
    assert kinds(ah2.result(0, rec, BAD, T0 + 20).events) == [
        "failed_health_check_event",
        "health_status_changed_event",
    ]


def test_failures_of_instances_that_are_not_running_are_ignored() -> None:
    ah = AppHealth(app())
    assert ah.result(0, running(condition="Killing"), BAD, T0 + 1000).events == []
    assert ah.results(IID)[0].consecutive_failures == 0


def test_kill_after_max_consecutive_failures_as_marathon_counts_them() -> None:
    ah, rec = AppHealth(app()), running()
    ah.result(0, rec, OK, T0 + 1)
    verdicts = [ah.result(0, rec, Result(False, f"cause {i}"), T0 + 10 * i) for i in range(1, 5)]
    assert [v.kill for v in verdicts] == [False, False, False, True]
    kill = verdicts[3].events[1]
    assert kill == {
        "appId": "/web",
        "taskId": f"{IID}._app.1",
        "instanceId": IID,
        "version": VERSION,
        "reason": "cause 3",  # the failure counted before this one
        "host": "agent-1",
        "slaveId": "S1",
        "eventType": "unhealthy_instance_kill_event",
        "timestamp": iso(T0 + 30),
    }


def test_zero_max_consecutive_failures_never_kills() -> None:
    ah, rec = AppHealth(app(HTTP | {"maxConsecutiveFailures": 0})), running(since=T0 - 1000)
    assert not any(ah.result(0, rec, BAD, T0 + i).kill for i in range(10))


def test_health_status_changed_on_alive_transitions() -> None:
    ah, rec = AppHealth(app()), running(since=T0 - 1000)
    v = ah.result(0, rec, OK, T0)
    assert v.events == [
        {
            "appId": "/web",
            "instanceId": IID,
            "version": VERSION,
            "alive": True,
            "eventType": "health_status_changed_event",
            "timestamp": iso(T0),
        }
    ]
    assert ah.result(0, rec, OK, T0 + 1).events == []
    assert kinds(ah.result(0, rec, BAD, T0 + 2).events)[-1] == "health_status_changed_event"


def test_instance_health_over_all_checks_feeds_the_tracker() -> None:
    tcp = {"protocol": "TCP", "portIndex": 1, "gracePeriodSeconds": 0, "maxConsecutiveFailures": 3}
    ah, rec = AppHealth(app(HTTP, tcp)), running(since=T0 - 1000)
    v = ah.result(0, rec, OK, T0)
    assert (v.health_changed, ah.healthy(IID)) == (False, None)  # the TCP check has no result yet
    v = ah.result(1, rec, OK, T0 + 1)
    assert (v.health_changed, v.healthy) == (True, True)
    v = ah.result(1, rec, BAD, T0 + 2)
    assert (v.health_changed, v.healthy) == (True, False)
    tracker = Tracker()
    tracker.schedule({"id": "/web", "version": VERSION, "healthChecks": [HTTP, tcp]}, 1, T0)
    (sched,) = tracker.instances()
    up = tracker.set_health(sched.instance_id, v.healthy, T0 + 2)
    assert [e["eventType"] for e in up.events] == ["instance_health_changed_event"]


def test_results_of_another_version_are_ignored() -> None:
    ah = AppHealth(app())
    assert ah.result(0, running(version="2019-01-01T00:00:00.000Z"), OK, T0).events == []
    assert ah.results(IID) == []


def test_mesos_run_checks_take_healthy_from_status_updates() -> None:
    mesos = {"protocol": "MESOS_HTTP", "gracePeriodSeconds": 0, "maxConsecutiveFailures": 3}
    ah, rec = AppHealth(app(mesos)), running(since=T0 - 10, marathon_checks=False)
    assert ah.mesos_status(rec, {"state": "TASK_RUNNING"}, T0).events == []
    v = ah.mesos_status(rec, {"state": "TASK_RUNNING", "healthy": True}, T0)
    assert kinds(v.events) == ["health_status_changed_event"] and v.healthy is True
    v = ah.mesos_status(rec, {"state": "TASK_RUNNING", "healthy": False}, T0 + 1)
    assert ah.results(IID)[0].last_failure_cause == ""
    assert AppHealth(app(HTTP)).mesos_status(rec, {"healthy": True}, T0).events == []  # not Mesos-run


def test_purge_forgets_inactive_instances_and_results_are_gathered_per_instance() -> None:
    ah = AppHealth(app())
    ah.result(0, running(), OK, T0)
    assert results_by_instance([ah], [IID, "other"]) == {IID: ah.results(IID), "other": []}
    ah.purge([running()])
    assert len(ah.results(IID)) == 1
    ah.purge([running(condition="Killed")])
    assert ah.results(IID) == []


def test_to_probe_selects_running_instances_of_the_version() -> None:
    ah = AppHealth(app())
    recs = [running(), running(instance_id="b", condition="Staging"), running(instance_id="c", version="old")]
    assert [r.instance_id for r in ah.to_probe(recs)] == [IID]


# -- probe targets (effectivePort over the port assignments) --------------------------------------------


def test_probe_target_host_networking() -> None:
    a = {"portDefinitions": [{"port": 10000}, {"port": 10001}], "networks": [{"mode": "host"}]}
    assert probe_target(a, HTTP, running()) == ("agent-1", 31000)
    assert probe_target(a, HTTP | {"portIndex": 1}, running()) == ("agent-1", 31001)
    assert probe_target(a, HTTP | {"portIndex": 2}, running()) is None
    assert probe_target(a, {"protocol": "TCP", "port": 8080}, running()) == ("agent-1", 8080)


def test_probe_target_bridge_and_container_networking() -> None:
    mappings = [
        {"containerPort": 80, "hostPort": 0},
        {"containerPort": 9000},
        {"containerPort": 8080, "hostPort": 0},
    ]
    bridge = {"container": {"portMappings": mappings[::2]}, "networks": [{"mode": "container/bridge"}]}
    assert probe_target(bridge, HTTP | {"portIndex": 1}, running()) == ("agent-1", 31001)
    container = {"container": {"portMappings": mappings}, "networks": [{"mode": "container", "name": "n"}]}
    with_ip = running(ip_addresses=("10.0.0.7",))
    assert probe_target(container, HTTP | {"portIndex": 0}, with_ip) == ("agent-1", 31000)
    assert probe_target(container, HTTP | {"portIndex": 1}, with_ip) == ("10.0.0.7", 9000)
    assert probe_target(container, HTTP | {"portIndex": 2}, with_ip) == ("agent-1", 31001)
    assert probe_target(container, HTTP | {"portIndex": 1}, running()) is None  # no IP yet
    assert probe_target(container, {"protocol": "TCP", "port": 7000}, with_ip) == ("10.0.0.7", 7000)
