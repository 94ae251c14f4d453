"""marathon_py.taskjson: the task JSON of /v2/apps/{id}/tasks and /v2/tasks (reference §2.4), AppInfo counts,
tasksStats and lastTaskFailure (§2.1, §4.1), /v2/queue items (§2.5) — shapes as Marathon 1.10 writes them,
keys limited to what the ``marathon`` client's strict models accept (§9.1)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from marathon_py.constraints import Placement
from marathon_py.eventjson import iso
from marathon_py.health import Health
from marathon_py.instances import InstanceRecord
from marathon_py.taskjson import (
    OfferStats,
    app_counts,
    app_service_ports,
    kill_failure,
    offer_json,
    queue_items,
    task_failure,
    task_json,
    task_list,
    tasks_stats,
)

T0 = 1_600_000_000.0
V1, V2 = "2020-09-13T12:00:00.000Z", "2020-09-13T13:00:00.000Z"
IID = "web.instance-5b4f09a5-1b7c-4b4f-9d1c-2b7e1e0c6d11"
# marathon 0.13.0: MarathonTask, MarathonHealthCheckResult and MarathonQueueItem take exactly these (§9.1).
CLIENT_TASK_KEYS = {
    "appId",
    "healthCheckResults",
    "host",
    "id",
    "ports",
    "servicePorts",
    "slaveId",
    "stagedAt",
}
CLIENT_TASK_KEYS |= {"startedAt", "version", "ipAddresses", "state", "localVolumes", "region", "zone", "role"}
CLIENT_HEALTH_KEYS = {"alive", "consecutiveFailures", "firstSuccess", "lastFailure", "lastSuccess", "taskId"}
CLIENT_HEALTH_KEYS |= {"lastFailureCause", "instanceId"}
CLIENT_QUEUE_KEYS = {
    "app",
    "overdue",
    "count",
    "delay",
    "since",
    "processedOffersSummary",
    "lastUnusedOffers",
}


def rec(n: int = 1, **over: Any) -> InstanceRecord:
    base = InstanceRecord(
        f"{IID}{n}", "/web", V2, condition="Running", since=T0, task_id=f"{IID}{n}._app.1", agent_id="S1",
        placement=Placement("agent-1", region="eu", zone="eu-1"), host_ports=(31000,),
        ip_addresses=("10.0.0.7",), staged_at=T0, started_at=T0 + 2, mesos_state="TASK_RUNNING",
    )  # fmt: skip
    return replace(base, **over)


def test_task_json_of_a_running_task() -> None:
    health = [Health(f"{IID}1", first_success=T0 + 3, last_success=T0 + 3)]
    doc = task_json(rec(), health, [10000])
    assert doc == {
        "appId": "/web",
        "healthCheckResults": [
            {
                "alive": True,
                "consecutiveFailures": 0,
                "firstSuccess": iso(T0 + 3),
                "instanceId": f"{IID}1",
                "lastSuccess": iso(T0 + 3),
            }
        ],
        "host": "agent-1",
        "id": f"{IID}1._app.1",
        "ipAddresses": [{"ipAddress": "10.0.0.7", "protocol": "IPv4"}],
        "ports": [31000],
        "servicePorts": [10000],
        "slaveId": "S1",
        "state": "TASK_RUNNING",
        "stagedAt": "2020-09-13T12:26:40.000Z",
        "startedAt": "2020-09-13T12:26:42.000Z",
        "version": V2,
        "localVolumes": [],
        "region": "eu",
        "zone": "eu-1",
        "role": "*",
    }
    assert set(doc) <= CLIENT_TASK_KEYS
    assert set(doc["healthCheckResults"][0]) <= CLIENT_HEALTH_KEYS


def test_task_json_of_staged_inactive_and_unlaunched_instances() -> None:
    staged = task_json(
        rec(condition="Provisioned", started_at=None, mesos_state=None, placement=Placement("a"))
    )
    assert staged is not None and staged["state"] == "TASK_STAGING" and "startedAt" not in staged
    assert "region" not in staged and staged["stagedAt"] == iso(T0)
    failed = task_json(rec(condition="Failed", mesos_state="TASK_FAILED"))
    assert failed is not None and failed["state"] == "TASK_FAILED" and failed["ports"] == []
    assert not {"stagedAt", "startedAt", "version"} & set(failed)
    inactive = task_json(rec(condition="UnreachableInactive"))
    assert inactive is not None and inactive["state"] == "TASK_UNREACHABLE" and inactive["ports"] == [31000]
    assert task_json(InstanceRecord(IID, "/web", V2)) is None


def test_service_ports_and_task_list_filter() -> None:
    mappings = {"container": {"portMappings": [{"containerPort": 80, "servicePort": 10005}]}}
    assert app_service_ports(mappings | {"portDefinitions": [{"port": 1}]}) == [10005]
    assert app_service_ports({"portDefinitions": [{"port": 10001}, {"port": 10002}]}) == [10001, 10002]
    recs = [rec(1), rec(2, condition="Staging", mesos_state="TASK_STAGING"), rec(3, condition="Killing")]
    recs.append(InstanceRecord(IID, "/web", V2))  # never launched: no task
    assert len(task_list(recs, {})) == 3
    assert [d["id"] for d in task_list(recs, {}, statuses=["running"])] == [f"{IID}1._app.1"]
    assert len(task_list(recs, {}, statuses=["RUNNING", "staging"])) == 2
    assert len(task_list(recs, {}, statuses=["bogus"])) == 3  # Marathon ignores unknown statuses


def test_app_counts() -> None:
    healthy, sick = Health("x", last_success=T0), Health("y", last_failure=T0)
    recs = [
        rec(1),
        rec(2),
        rec(3, condition="Provisioned", mesos_state=None, started_at=None),
        rec(4, condition="Staging", mesos_state="TASK_STAGING", started_at=None),
        rec(5, condition="Failed", mesos_state="TASK_FAILED"),  # waits for a relaunch: not counted
        rec(6, condition="Killing", mesos_state="TASK_KILLING"),
    ]
    health = {f"{IID}1": [healthy], f"{IID}2": [healthy, sick]}
    assert app_counts(recs, health) == {
        "tasksStaged": 2,
        "tasksRunning": 2,
        "tasksHealthy": 1,
        "tasksUnhealthy": 1,
    }


def test_tasks_stats_by_version() -> None:
    app = {"versionInfo": {"lastScalingAt": V2, "lastConfigChangeAt": V1}}
    recs = [rec(1, version=V1, started_at=T0), rec(2, started_at=T0 + 10), rec(3, started_at=T0 + 40)]
    stats = tasks_stats(app, recs, {}, T0 + 100)
    counts = {"staged": 0, "running": 3, "healthy": 0, "unhealthy": 0}
    assert stats["totalSummary"] == {
        "stats": {"counts": counts, "lifeTime": {"averageSeconds": 250 / 3, "medianSeconds": 90.0}}
    }
    assert stats["startedAfterLastScaling"]["stats"]["counts"]["running"] == 2
    assert stats["withLatestConfig"]["stats"]["counts"]["running"] == 3
    assert "withOutdatedConfig" not in stats  # no instance older than the last config change
    assert list(tasks_stats({}, recs, {}, T0)) == ["totalSummary"]
    assert tasks_stats(app, [], {}, T0) == {}


def test_last_task_failure_from_status_and_kill_events() -> None:
    event = {
        "slaveId": "S1",
        "taskId": "t1",
        "taskStatus": "TASK_FAILED",
        "message": "exit 1",
        "appId": "/web",
        "host": "agent-1",
        "ipAddresses": [],
        "ports": [],
        "version": V2,
        "eventType": "status_update_event",
        "timestamp": iso(T0),
    }
    assert task_failure(event) == {
        "appId": "/web",
        "host": "agent-1",
        "message": "exit 1",
        "state": "TASK_FAILED",
        "taskId": "t1",
        "timestamp": iso(T0),
        "version": V2,
        "slaveId": "S1",
    }
    assert task_failure(event | {"taskStatus": "TASK_LOST"}) is not None
    assert task_failure(event | {"taskStatus": "TASK_KILLED"}) is None
    kill = {
        "appId": "/web",
        "taskId": "t1",
        "instanceId": IID,
        "version": V2,
        "reason": "503 Service Unavailable",
    }
    kill |= {"host": "agent-1", "eventType": "unhealthy_instance_kill_event", "timestamp": iso(T0)}
    assert kill_failure(kill) == {
        "appId": "/web",
        "host": "agent-1",
        "message": "Task was killed since health check failed. Reason: 503 Service Unavailable",
        "state": "TASK_KILLED",
        "taskId": "t1",
        "timestamp": iso(T0),
        "version": V2,
    }


OFFER = {
    "id": {"value": "O7"},
    "agent_id": {"value": "S2"},
    "hostname": "agent-2",
    "resources": [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}},
        {
            "name": "ports",
            "type": "RANGES",
            "role": "web",
            "ranges": {"range": [{"begin": 31000, "end": 31009}]},
        },
    ],
    "attributes": [{"name": "rack", "type": "TEXT", "text": {"value": "r1"}}],
}


def test_offer_json() -> None:
    assert offer_json(OFFER) == {
        "id": "O7",
        "hostname": "agent-2",
        "agentId": "S2",
        "resources": [
            {"name": "cpus", "role": "*", "scalar": 0.5},
            {"name": "ports", "role": "web", "ranges": [{"begin": 31000, "end": 31009}]},
        ],
        "attributes": [{"name": "rack", "text": "r1"}],
    }


def test_queue_items_count_since_delay_and_offer_summary() -> None:
    app = {"id": "/web", "instances": 3}
    recs = [
        rec(1),
        rec(2, condition="Scheduled", task_id=None, queued_at=T0 + 5),
        rec(3, condition="Failed", queued_at=T0 + 3),
        rec(4, condition="Provisioned", queued_at=T0 + 4),
        rec(5, condition="Failed", goal="Stopped"),
    ]
    stats = OfferStats()
    stats.unmatched(OFFER, ["InsufficientMemory", "UnfulfilledRole"], T0 + 6)
    stats.unmatched(OFFER | {"agent_id": {"value": "S3"}}, ["InsufficientCpus"], T0 + 7)
    stats.unmatched(OFFER | {"agent_id": {"value": "S3"}}, ["InsufficientMemory"], T0 + 8)
    stats.matched(T0 + 9)
    delay = {"timeLeftSeconds": 0, "overdue": True}
    (item,) = queue_items(app, recs, delay=delay, stats=stats)
    assert set(item) <= CLIENT_QUEUE_KEYS
    assert (item["count"], item["since"], item["delay"], item["app"]) == (3, iso(T0 + 3), delay, app)
    summary = item["processedOffersSummary"]
    assert summary["processedOffersCount"] == 4 and summary["unusedOffersCount"] == 3
    assert (summary["lastUnusedOfferAt"], summary["lastUsedOfferAt"]) == (iso(T0 + 8), iso(T0 + 9))
    attempt = {s["reason"]: (s["declined"], s["processed"]) for s in summary["rejectSummaryLaunchAttempt"]}
    assert attempt["UnfulfilledRole"] == (1, 4)  # the funnel's first reason of the first offer
    assert attempt["InsufficientCpus"] == (1, 3) and attempt["InsufficientMemory"] == (1, 2)
    assert attempt["DeclinedScarceResources"] == (0, 1)
    last = {s["reason"]: (s["declined"], s["processed"]) for s in summary["rejectSummaryLastOffers"]}
    assert last["UnfulfilledRole"] == (1, 2) and last["InsufficientMemory"] == (1, 1)  # per agent: S2, S3
    assert "lastUnusedOffers" not in item and "role" not in item
    (full,) = queue_items(app, recs, delay=delay, stats=stats, last_unused=True, with_role=True)
    assert full["role"] == "*" and [u["offer"]["agentId"] for u in full["lastUnusedOffers"]] == ["S2", "S3"]
    assert full["lastUnusedOffers"][1]["reason"] == ["InsufficientMemory"]
    assert queue_items(app, [rec(1)], delay=delay, stats=OfferStats()) == []
