"""The master's pure core: subscriptions, offers from the allocator, ACCEPT/LAUNCH validation, status
updates and acknowledgements, kills, reconciliation, teardown."""

from __future__ import annotations

import base64
from typing import Any

from master_py.calls import Call
from master_py.core import MasterCore
from master_py.model import CloseStream, Output, ToAgent, ToFramework
from paas_common.resources import Resources

NOW = 1000.0


def sub(name: str = "fw", **info: Any) -> Call:
    payload = {"framework_info": {"user": "root", "name": name, **info}}
    return Call("SUBSCRIBE", None, payload, {"type": "SUBSCRIBE", "subscribe": payload})


def call(fid: str, type_: str, **payload: Any) -> Call:
    return Call(type_, fid, payload, {})


def events_of(out: list[Output], fid: str) -> list[dict[str, Any]]:
    return [o.event for o in out if isinstance(o, ToFramework) and o.framework_id == fid]


def to_agents(out: list[Output]) -> list[dict[str, Any]]:
    return [o.message for o in out if isinstance(o, ToAgent)]


def setup(cpus: float = 4, mem: float = 4096, **info: Any) -> tuple[MasterCore, str, str, dict[str, Any]]:
    core = MasterCore("M", {"id": "M"})
    fw, _ = core.subscribe(sub(**info), NOW)
    agent, _ = core.add_agent("host1", Resources.parse(f"cpus:{cpus};mem:{mem};ports:[31000-32000]"), [], NOW)
    core.agent_connected(agent.id, NOW)
    (offers_event,) = events_of(core.allocate(NOW), fw.id)
    (offer,) = offers_event["offers"]["offers"]
    return core, fw.id, agent.id, offer


def task(tid: str, agent_id: str, cpus: float = 1, mem: float = 128) -> dict[str, Any]:
    return {
        "name": tid,
        "task_id": {"value": tid},
        "agent_id": {"value": agent_id},
        "resources": Resources.parse(f"cpus:{cpus};mem:{mem}").to_json(),
        "command": {"value": "sleep 10"},
    }


def launch(offer: dict[str, Any], *tasks: dict[str, Any], refuse: float | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "offer_ids": [offer["id"]],
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": list(tasks)}}],
    }
    if refuse is not None:
        payload["filters"] = {"refuse_seconds": refuse}
    return payload


def test_subscription_ids_and_offers() -> None:
    _core, fid, agent_id, offer = setup()
    assert fid == "M-0000" and agent_id == "M-S0"
    assert offer["id"]["value"] == "M-O0" and offer["hostname"] == "host1"
    assert Resources.from_json(offer["resources"]) == Resources.parse("cpus:4;mem:4096;ports:[31000-32000]")


def test_launch_sends_run_task_and_declines_the_rest() -> None:
    core, fid, agent_id, offer = setup()
    out = core.call(call(fid, "ACCEPT", **launch(offer, task("t1", agent_id), refuse=60)), NOW)
    (msg,) = to_agents(out)
    assert msg["type"] == "RUN_TASK" and msg["run_task"]["task"]["task_id"] == {"value": "t1"}
    assert core.tasks[(fid, "t1")].state == "TASK_STAGING"
    assert core.allocate(NOW + 1) == []  # the unused part is filtered for 60 s
    (ev,) = events_of(core.allocate(NOW + 61), fid)
    left = Resources.from_json(ev["offers"]["offers"][0]["resources"])
    assert left == Resources.parse("cpus:3;mem:3968;ports:[31000-32000]")


def test_invalid_offers_lose_every_task() -> None:
    core, fid, agent_id, offer = setup()
    bogus = {
        "offer_ids": [{"value": "nope"}],
        "operations": launch(offer, task("t1", agent_id))["operations"],
    }
    (ev,) = events_of(core.call(call(fid, "ACCEPT", **bogus), NOW), fid)
    status = ev["update"]["status"]
    assert (status["state"], status["reason"]) == ("TASK_LOST", "REASON_INVALID_OFFERS")
    core2, fid2, agent2, offer2 = setup(capabilities=[{"type": "PARTITION_AWARE"}])
    core2.call(call(fid2, "ACCEPT", **launch(offer2, task("a", agent2))), NOW)
    (ev,) = events_of(core2.call(call(fid2, "ACCEPT", **launch(offer2, task("b", agent2))), NOW), fid2)
    assert ev["update"]["status"]["state"] == "TASK_DROPPED"  # an offer is usable once


def test_impossible_tasks_get_task_error_and_others_still_launch() -> None:
    core, fid, agent_id, offer = setup(cpus=2)
    tasks = [task("big", agent_id, cpus=3), task("ok", agent_id), task("ok", agent_id), {"name": "x"}]
    out = core.call(call(fid, "ACCEPT", **launch(offer, *tasks)), NOW)
    errors = [e["update"]["status"] for e in events_of(out, fid)]
    assert [(s["task_id"]["value"], s["state"], s["reason"]) for s in errors] == [
        ("big", "TASK_ERROR", "REASON_TASK_INVALID"),
        ("ok", "TASK_ERROR", "REASON_TASK_INVALID"),
        ("", "TASK_ERROR", "REASON_TASK_INVALID"),
    ]
    assert "more resources" in errors[0]["message"] and "already exists" in errors[1]["message"]
    assert [m["run_task"]["task"]["name"] for m in to_agents(out)] == ["ok"]


def test_status_updates_flow_to_the_framework_and_acks_back_to_the_agent() -> None:
    core, fid, agent_id, offer = setup()
    core.call(call(fid, "ACCEPT", **launch(offer, task("t1", agent_id), refuse=0)), NOW)
    uuid = base64.b64encode(b"0123456789abcdef").decode()
    status = {
        "task_id": {"value": "t1"},
        "framework_id": {"value": fid},
        "state": "TASK_RUNNING",
        "source": "SOURCE_EXECUTOR",
        "uuid": uuid,
        "agent_id": {"value": agent_id},
    }
    (ev,) = events_of(core.agent_update(agent_id, status, NOW), fid)
    assert ev["update"]["status"]["state"] == "TASK_RUNNING" and ev["update"]["status"]["uuid"] == uuid
    # Only the task's own agent speaks for it; an update nobody can acknowledge is acknowledged by the master.
    (stray,) = to_agents(core.agent_update("other-agent", status, NOW))
    assert stray["type"] == "ACKNOWLEDGE" and stray["acknowledge"]["uuid"] == uuid
    ack = core.call(
        call(fid, "ACKNOWLEDGE", agent_id={"value": agent_id}, task_id={"value": "t1"}, uuid=uuid), NOW
    )
    assert to_agents(ack) == [
        {
            "type": "ACKNOWLEDGE",
            "acknowledge": {"framework_id": {"value": fid}, "task_id": {"value": "t1"}, "uuid": uuid},
        }
    ]
    core.agent_update(agent_id, {**status, "state": "TASK_FINISHED"}, NOW)
    (ev,) = events_of(core.allocate(NOW), fid)  # the finished task's resources are offered again
    assert Resources.from_json(ev["offers"]["offers"][0]["resources"]).cpus == 4


def test_kill_and_reconcile_known_and_unknown_tasks() -> None:
    core, fid, agent_id, offer = setup()
    core.call(call(fid, "ACCEPT", **launch(offer, task("t1", agent_id))), NOW)
    (msg,) = to_agents(core.call(call(fid, "KILL", task_id={"value": "t1"}), NOW))
    assert msg["type"] == "KILL_TASK" and msg["kill_task"]["task_id"] == {"value": "t1"}
    (ev,) = events_of(core.call(call(fid, "KILL", task_id={"value": "ghost"}), NOW), fid)
    assert ev["update"]["status"]["state"] == "TASK_LOST"
    implicit = events_of(core.call(call(fid, "RECONCILE", tasks=[]), NOW), fid)
    assert [
        (e["update"]["status"]["task_id"]["value"], e["update"]["status"]["state"]) for e in implicit
    ] == [("t1", "TASK_STAGING")]
    assert all("uuid" not in e["update"]["status"] for e in implicit)  # master-generated: no ack expected


def test_teardown_kills_tasks_on_their_agents_and_closes_the_stream() -> None:
    core, fid, agent_id, offer = setup()
    core.call(call(fid, "ACCEPT", **launch(offer, task("t1", agent_id))), NOW)
    stream = core.frameworks[fid].stream_id
    out = core.call(call(fid, "TEARDOWN"), NOW)
    assert [m["type"] for m in to_agents(out)] == ["KILL_TASK", "SHUTDOWN_FRAMEWORK"]
    assert CloseStream(fid, stream or "") in out
    assert fid not in core.frameworks and core.tasks == {}
    assert [f.id for f in core.completed_frameworks] == [fid]


def test_resubscription_rescinds_outstanding_offers() -> None:
    core, fid, _agent_id, _offer = setup()
    fw, out = core.subscribe(
        Call("SUBSCRIBE", fid, {"framework_info": {"user": "root", "name": "fw", "id": {"value": fid}}}, {}),
        NOW,
    )
    assert fw.id == fid
    kinds = [e["type"] for e in events_of(out, fid)]
    assert kinds == ["RESCIND", "SUBSCRIBED"]
    assert core.offers == {}
    (ev,) = events_of(core.allocate(NOW), fid)  # the rescinded resources are offered anew
    assert ev["type"] == "OFFERS"


def test_disconnected_framework_is_removed_after_its_failover_timeout() -> None:
    core, fid, _, _ = setup(failover_timeout=30)
    core.disconnected(fid, core.frameworks[fid].stream_id or "", NOW)
    assert core.offers == {} and core.tick(NOW + 29) == [] and fid in core.frameworks
    core.tick(NOW + 30)
    assert fid not in core.frameworks


def test_launch_group_is_all_or_nothing() -> None:
    core, fid, agent_id, offer = setup(cpus=2)

    def group(*tasks: dict[str, Any]) -> dict[str, Any]:
        op = {"type": "LAUNCH_GROUP", "launch_group": {"task_group": {"tasks": list(tasks)}}}
        return {"offer_ids": [offer["id"]], "operations": [op]}

    out = core.call(call(fid, "ACCEPT", **group(task("a", agent_id), task("b", agent_id, cpus=2))), NOW)
    statuses = [e["update"]["status"] for e in events_of(out, fid)]
    assert [(s["task_id"]["value"], s["state"], s["reason"]) for s in statuses] == [
        ("a", "TASK_ERROR", "REASON_TASK_GROUP_INVALID"),
        ("b", "TASK_ERROR", "REASON_TASK_GROUP_INVALID"),
    ]
    assert statuses[0]["message"].startswith("Task group is invalid: Task uses more resources")
    assert to_agents(out) == [] and not core.tasks
    (ev,) = events_of(core.allocate(NOW + 10), fid)
    (offer,) = ev["offers"]["offers"]
    out = core.call(call(fid, "ACCEPT", **group(task("a", agent_id), task("b", agent_id))), NOW + 10)
    assert [m["run_task"]["task"]["name"] for m in to_agents(out)] == ["a", "b"]


def test_invalid_health_check_is_a_task_error() -> None:
    core, fid, agent_id, offer = setup()
    bad = {**task("hc", agent_id), "health_check": {"type": "HTTP", "http": {"port": 0}}}
    out = core.call(call(fid, "ACCEPT", **launch(offer, bad)), NOW)
    (ev,) = events_of(out, fid)
    status = ev["update"]["status"]
    assert status["state"] == "TASK_ERROR" and "health check is invalid" in status["message"]
    assert "http.port" in status["message"] and to_agents(out) == []


def test_malformed_operations_are_ignored_not_fatal() -> None:
    core, fid, _agent_id, offer = setup()
    ops = [1, {"type": "LAUNCH", "launch": []}, {"type": "LAUNCH_GROUP", "launch_group": {"task_group": 3}}]
    assert core.call(call(fid, "ACCEPT", offer_ids=[offer["id"]], operations=ops), NOW) == []
