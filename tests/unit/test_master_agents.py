"""Agent life cycle in the master's core: connection, silence → unreachable, re-registration with tasks,
recovery from the registry after a failover, and Mesos' reconciliation answers in each case."""

from __future__ import annotations

from typing import Any

import pytest

from master_py.calls import Call
from master_py.core import MasterCore
from master_py.model import AgentTimeouts, CloseAgent, Persist, ToAgent
from paas_common.resources import Resources
from tests.unit.test_master_core import NOW, call, events_of, launch, sub, task, to_agents

PA = [{"type": "PARTITION_AWARE"}]
TIMEOUTS = AgentTimeouts(ping_timeout=1.0, max_ping_timeouts=3, reregister_timeout=60.0)


def new_core() -> MasterCore:
    return MasterCore("M", {"id": "M"}, timeouts=TIMEOUTS)


def agent_res() -> Resources:
    return Resources.parse("cpus:4;mem:4096;ports:[31000-32000]")


def running(core: MasterCore, *, capabilities: list[dict[str, str]] | None = None) -> tuple[str, str]:
    """A framework with task t1 RUNNING on agent M-S0; returns (framework id, agent id)."""
    info = {"capabilities": capabilities} if capabilities else {}
    fw, _ = core.subscribe(sub(**info), NOW)
    agent, _ = core.add_agent("host1", agent_res(), [], NOW)
    core.agent_connected(agent.id, NOW)
    (ev,) = events_of(core.allocate(NOW), fw.id)
    (offer,) = ev["offers"]["offers"]
    core.call(call(fw.id, "ACCEPT", **launch(offer, task("t1", agent.id), refuse=0)), NOW)
    status = {
        "task_id": {"value": "t1"},
        "framework_id": {"value": fw.id},
        "state": "TASK_RUNNING",
        "uuid": "dTE=",
    }
    core.agent_update(agent.id, status, NOW)
    return fw.id, agent.id


def reported(fid: str, agent_id: str, state: str = "TASK_RUNNING") -> dict[str, Any]:
    return {"framework_id": {"value": fid}, "task": task("t1", agent_id), "state": state}


def persisted(out: list[Any]) -> list[tuple[str, str, bool]]:
    return [(o.kind, o.id, o.doc is not None) for o in out if isinstance(o, Persist)]


def test_registration_is_persisted_and_offers_wait_for_the_stream() -> None:
    core = new_core()
    fw, out = core.subscribe(sub(), NOW)
    assert persisted(out) == [("frameworks", fw.id, True)]
    agent, out = core.add_agent("host1", agent_res(), [], NOW)
    assert persisted(out) == [("agents", agent.id, True)]
    assert core.allocate(NOW) == []  # registered, not subscribed: nothing to offer yet
    core.agent_connected(agent.id, NOW)
    assert events_of(core.allocate(NOW), fw.id)


def test_disconnect_rescinds_offers_and_silence_makes_the_agent_unreachable() -> None:
    core = new_core()
    fid, agent_id = running(core)
    core.allocate(NOW)
    assert core.offers
    out = core.agent_disconnected(agent_id, NOW + 1)
    assert [e["type"] for e in events_of(out, fid)] == ["RESCIND"] and not core.offers
    assert core.tick(NOW + 3) == []  # 3 s of silence is the limit, not beyond it
    out = core.tick(NOW + 3.5)
    assert persisted(out) == [("agents", agent_id, True)]
    (ev,) = events_of(out, fid)
    status = ev["update"]["status"]
    assert (status["state"], status["reason"], status["source"]) == (
        "TASK_LOST",
        "REASON_AGENT_REMOVED",
        "SOURCE_MASTER",
    )
    assert "uuid" not in status
    assert agent_id not in core.agents and agent_id in core.unreachable_agents
    assert not core.tasks and core.frameworks[fid].completed_tasks[0].state == "TASK_LOST"


def test_pongs_keep_a_connected_agent_and_a_silent_stream_is_closed() -> None:
    core = new_core()
    fid, agent_id = running(core, capabilities=PA)
    for t in range(1, 10):
        core.agent_seen(agent_id, NOW + t)
        assert core.tick(NOW + t + 0.5) == []
    out = core.tick(NOW + 13.5)
    assert CloseAgent(agent_id) in out
    (ev,) = events_of(out, fid)
    assert ev["update"]["status"]["state"] == "TASK_UNREACHABLE"
    assert "unreachable_time" in ev["update"]["status"]
    # Reconciling it now: the master knows it as unreachable.
    (ev,) = events_of(core.call(call(fid, "RECONCILE", tasks=[{"task_id": {"value": "t1"}}]), NOW + 14), fid)
    assert ev["update"]["status"]["state"] == "TASK_UNREACHABLE"
    assert [t.id for t in core.frameworks[fid].unreachable_tasks] == ["t1"]


@pytest.mark.parametrize("aware", [False, True])
def test_unreachable_agent_returning(aware: bool) -> None:
    """Non-partition-aware frameworks were told LOST: their tasks are killed; aware ones get them back."""
    core = new_core()
    fid, agent_id = running(core, capabilities=PA if aware else None)
    core.agent_disconnected(agent_id, NOW)
    core.tick(NOW + 10)
    agent, out = core.add_agent(
        "host1", agent_res(), [], NOW + 20, agent_id=agent_id, tasks=[reported(fid, agent_id)]
    )
    assert agent.reregistered_time == NOW + 20 and agent_id not in core.unreachable_agents
    kills = [m for m in to_agents(out) if m["type"] == "KILL_TASK"]
    if aware:
        assert kills == [] and core.tasks[(fid, "t1")].state == "TASK_RUNNING"
        assert core.frameworks[fid].unreachable_tasks == []
    else:
        assert [k["kill_task"]["task_id"]["value"] for k in kills] == ["t1"]
        assert (fid, "t1") not in core.tasks


def test_reregistration_without_a_known_task_loses_it() -> None:
    core = new_core()
    fid, agent_id = running(core)
    core.agent_disconnected(agent_id, NOW)
    _, out = core.add_agent("host1", agent_res(), [], NOW + 1, agent_id=agent_id, tasks=[])
    (ev,) = events_of(out, fid)
    status = ev["update"]["status"]
    assert (status["state"], status["reason"]) == ("TASK_LOST", "REASON_RECONCILIATION")
    # Its resources are free again: the whole agent is offered.
    core.agent_connected(agent_id, NOW + 1)
    (ev,) = events_of(core.allocate(NOW + 10), fid)
    assert Resources.from_json(ev["offers"]["offers"][0]["resources"]).cpus == 4


def test_failover_recovers_agents_and_frameworks_from_the_registry() -> None:
    old = new_core()
    fid, agent_id = running(old)
    fw_entry = old.frameworks[fid].entry()
    agent_entry = old.agents[agent_id].entry()

    core = MasterCore("N", {"id": "N"}, timeouts=TIMEOUTS)
    core.recover([agent_entry], [fw_entry], NOW + 100)
    assert agent_id in core.recovered_agents and core.frameworks[fid].recovered
    # The framework re-subscribes with its id before the agent is back: no answer about t1 yet.
    fw, _ = core.subscribe(Call("SUBSCRIBE", fid, *_payload(fid)), NOW)
    assert fw.id == fid and fw.connected and not fw.recovered
    assert core.call(call(fid, "RECONCILE", tasks=[]), NOW + 101) == []
    explicit = [{"task_id": {"value": "t1"}, "agent_id": {"value": agent_id}}]
    assert core.call(call(fid, "RECONCILE", tasks=explicit), NOW + 101) == []
    # The agent comes back with its task: the master adopts it and accounts its resources.
    agent, out = core.add_agent(
        "host1", agent_res(), [], NOW + 102, agent_id=agent_id, tasks=[reported(fid, agent_id)]
    )
    assert persisted(out) == [("agents", agent_id, True)] and not to_agents(out)
    assert agent.reregistered_time == NOW + 102 and not core.recovered_agents
    (ev,) = events_of(core.call(call(fid, "RECONCILE", tasks=[]), NOW + 103), fid)
    assert (ev["update"]["status"]["state"], ev["update"]["status"]["reason"]) == (
        "TASK_RUNNING",
        "REASON_RECONCILIATION",
    )
    core.agent_connected(agent_id, NOW + 103)
    (ev,) = events_of(core.allocate(NOW + 103), fid)
    assert Resources.from_json(ev["offers"]["offers"][0]["resources"]).cpus == 3  # 4 minus t1's 1


def _payload(fid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    payload = {"framework_info": {"user": "root", "name": "fw", "id": {"value": fid}}}
    return payload, {"type": "SUBSCRIBE", "subscribe": payload}


def test_agent_brings_back_a_framework_the_new_leader_never_heard_of() -> None:
    core = new_core()
    info = {"user": "root", "name": "fw", "id": {"value": "F1"}, "failover_timeout": 5.0}
    _, out = core.add_agent(
        "host1",
        agent_res(),
        [],
        NOW,
        agent_id="A1",
        tasks=[{"framework_id": {"value": "F1"}, "task": task("t1", "A1"), "state": "TASK_RUNNING"}],
        frameworks=[info],
    )
    fw = core.frameworks["F1"]
    assert fw.recovered and not fw.connected and (("F1", "t1") in core.tasks)
    # Recovered frameworks get at least the re-register timeout to come back.
    core.agent_seen("A1", NOW + 29)
    assert core.tick(NOW + 30) == [] and "F1" in core.frameworks
    core.agent_seen("A1", NOW + 60)
    out = core.tick(NOW + 61)
    assert [m["type"] for m in to_agents(out)] == ["KILL_TASK", "SHUTDOWN_FRAMEWORK"]
    assert ("frameworks", "F1", False) in persisted(out)


def test_tasks_of_removed_frameworks_are_killed_on_reregistration() -> None:
    core = new_core()
    fid, agent_id = running(core)
    core.call(call(fid, "TEARDOWN"), NOW)
    _, out = core.add_agent("host1", agent_res(), [], NOW, agent_id=agent_id, tasks=[reported(fid, agent_id)])
    assert [m["type"] for m in to_agents(out)] == ["KILL_TASK"]
    assert not any(isinstance(o, ToAgent) and o.message["type"] == "RUN_TASK" for o in out)


def test_recovered_agent_that_never_returns_becomes_unreachable() -> None:
    core = new_core()
    entry = {"id": "A1", "hostname": "h", "ip": "127.0.0.1", "port": 5051, "resources": [], "attributes": []}
    core.recover([entry], [], NOW)
    fw, _ = core.subscribe(sub(capabilities=PA), NOW)
    assert core.call(call(fw.id, "RECONCILE", tasks=[{"task_id": {"value": "x"}}]), NOW) == []
    assert core.tick(NOW + 59) == []
    out = core.tick(NOW + 60)
    (op,) = [o for o in out if isinstance(o, Persist)]
    assert op.id == "A1" and op.doc is not None and op.doc["unreachable_time"] == NOW + 60
    assert "A1" in core.unreachable_agents and not core.recovered_agents
    explicit = [{"task_id": {"value": "x"}, "agent_id": {"value": "A1"}}]
    (ev,) = events_of(core.call(call(fw.id, "RECONCILE", tasks=explicit), NOW + 61), fw.id)
    assert ev["update"]["status"]["state"] == "TASK_UNREACHABLE"


def test_reconcile_answers_for_unknown_tasks_follow_mesos() -> None:
    core = new_core()
    fw, _ = core.subscribe(sub(capabilities=PA), NOW)
    agent, _ = core.add_agent("host1", agent_res(), [], NOW)

    def state_of(agent_id: str | None) -> str:
        item: dict[str, Any] = {"task_id": {"value": "nope"}}
        if agent_id:
            item["agent_id"] = {"value": agent_id}
        (ev,) = events_of(core.call(call(fw.id, "RECONCILE", tasks=[item]), NOW), fw.id)
        return str(ev["update"]["status"]["state"])

    assert state_of(agent.id) == "TASK_GONE"
    assert state_of("elsewhere") == "TASK_UNKNOWN"
    assert state_of(None) == "TASK_UNKNOWN"


def test_unregistered_agent_is_forgotten_not_unreachable() -> None:
    core = new_core()
    fid, agent_id = running(core, capabilities=PA)
    out = core.remove_agent(agent_id, NOW + 1)
    assert persisted(out)[0] == ("agents", agent_id, False) and CloseAgent(agent_id) in out
    (ev,) = events_of(out, fid)
    assert (ev["update"]["status"]["state"], ev["update"]["status"]["reason"]) == (
        "TASK_GONE",
        "REASON_AGENT_REMOVED",
    )
    assert agent_id not in core.agents and agent_id not in core.unreachable_agents
    assert core.remove_agent(agent_id, NOW + 2) == []
