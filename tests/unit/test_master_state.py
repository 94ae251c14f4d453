"""The master's operator views in Mesos' v0 JSON model, and their Prometheus rendering."""

from __future__ import annotations

import re

from master_py import state
from master_py.core import MasterCore
from paas_common import prometheus
from tests.unit.test_master_agents import PA, TIMEOUTS, running
from tests.unit.test_master_core import NOW, call

PID = re.compile(r"^[^@]+@[^:]+:\d+$")  # mesos-dns refuses the whole document otherwise


def meta(leading: bool = True) -> state.Meta:
    leader = {"id": "M", "pid": "master@127.0.0.1:5050", "port": 5050, "hostname": "m1"}
    return state.Meta(
        version="1.11.0",
        id="M",
        pid="master@127.0.0.1:5050",
        hostname="m1",
        start_time=NOW - 10,
        elected_time=NOW - 5,
        leading=leading,
        leader=leader,
        flags={"port": "5050"},
    )


def busy_core() -> tuple[MasterCore, str, str]:
    core = MasterCore("M", {"id": "M"}, timeouts=TIMEOUTS)
    fid, agent_id = running(core, capabilities=PA)
    return core, fid, agent_id


def test_state_lists_agents_frameworks_and_tasks() -> None:
    core, fid, agent_id = busy_core()
    doc = state.state(core, meta())
    assert doc["leader"] == "master@127.0.0.1:5050" and doc["elected_time"] == NOW - 5
    assert doc["activated_slaves"] == 1 and doc["orphan_tasks"] == []
    (slave,) = doc["slaves"]
    assert PID.match(slave["pid"]) and slave["id"] == agent_id and slave["active"]
    assert slave["resources"]["cpus"] == 4 and slave["resources"]["ports"] == "[31000-32000]"
    assert slave["used_resources"]["cpus"] == 1 and slave["used_resources"]["mem"] == 128
    (fw,) = doc["frameworks"]
    assert fw["id"] == fid and fw["capabilities"] == ["PARTITION_AWARE"] and "pid" not in fw
    (task,) = fw["tasks"]
    assert (task["id"], task["slave_id"], task["state"], task["framework_id"]) == (
        "t1",
        agent_id,
        "TASK_RUNNING",
        fid,
    )
    assert [s["state"] for s in task["statuses"]] == ["TASK_STAGING", "TASK_RUNNING"]
    assert task["resources"] == {"cpus": 1.0, "gpus": 0.0, "mem": 128.0, "disk": 0.0}


def test_standby_state_has_no_cluster_and_points_at_the_leader() -> None:
    core, _, _ = busy_core()
    doc = state.state(core, meta(leading=False))
    assert doc["slaves"] == [] and doc["frameworks"] == [] and "elected_time" not in doc
    assert doc["leader_info"]["hostname"] == "m1"
    assert state.metrics(core, meta(leading=False), NOW)["master/elected"] == 0


def test_summary_slaves_frameworks_and_tasks_views() -> None:
    core, fid, agent_id = busy_core()
    summary = state.state_summary(core, meta())
    assert summary["slaves"][0]["TASK_RUNNING"] == 1 and summary["slaves"][0]["framework_ids"] == [fid]
    assert summary["frameworks"][0]["slave_ids"] == [agent_id] and "tasks" not in summary["frameworks"][0]
    assert [s["id"] for s in state.slaves(core, meta(), agent_id)["slaves"]] == [agent_id]
    assert state.slaves(core, meta(), "other")["slaves"] == []
    assert [f["id"] for f in state.frameworks(core, meta(), fid)["frameworks"]] == [fid]
    # A finished task moves to completed_tasks once acknowledged, and /tasks pages over both.
    done = {
        "task_id": {"value": "t1"},
        "framework_id": {"value": fid},
        "state": "TASK_FINISHED",
        "uuid": "Zg==",
    }
    core.agent_update(agent_id, done, NOW + 1)
    ack = call(fid, "ACKNOWLEDGE", agent_id={"value": agent_id}, task_id={"value": "t1"}, uuid="Zg==")
    core.call(ack, NOW + 1)
    fw = state.frameworks(core, meta())["frameworks"][0]
    assert fw["tasks"] == [] and [t["state"] for t in fw["completed_tasks"]] == ["TASK_FINISHED"]
    assert [t["id"] for t in state.tasks(core, meta())["tasks"]] == ["t1"]
    assert state.tasks(core, meta(), offset=1)["tasks"] == []
    assert state.tasks(core, meta(), framework_id="nope")["tasks"] == []
    figures = state.metrics(core, meta(), NOW + 2)
    assert figures["master/tasks_finished"] == 1 and figures["master/tasks_running"] == 0
    assert figures["master/cpus_total"] == 4 and figures["master/cpus_used"] == 0


def test_metrics_snapshot_and_prometheus_text() -> None:
    core, _, _ = busy_core()
    figures = state.metrics(core, meta(), NOW)
    assert figures["master/elected"] == 1 and figures["master/slaves_active"] == 1
    assert figures["master/tasks_running"] == 1 and figures["master/cpus_percent"] == 0.25
    text = prometheus.render(figures, state.COUNTERS)
    assert "# TYPE mesos_master_tasks_running gauge\nmesos_master_tasks_running 1.0\n" in text
    assert "# TYPE mesos_master_tasks_finished counter\n" in text
    assert "mesos_master_cpus_percent 0.25" in text
    for line in text.splitlines():  # every sample line is `name value` with a valid name
        if not line.startswith("#"):
            name, value = line.split(" ")
            assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name) and float(value) >= 0
