"""agent-py's HTTP endpoints with real master-py, agent-py and Docker: /state, /monitor/statistics,
/containers, /metrics/snapshot and Prometheus /metrics describe a running Docker task and a running
process task (and, once killed, their completion); bad requests get Mesos' answers; the port the agent
registers is the one it bound."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.agents import AgentProc, agent_of, bindable_port, launcher
from tests.support.docker import TASK_IMAGE, require_engine
from tests.support.masters import MasterProc
from tests.support.prometheus import parse
from tests.support.pymesos_fw import command_task, docker_task, offered_ports

MiB = 1024 * 1024


def web_task(offer: Any) -> dict[str, Any]:
    port = bindable_port(offered_ports(offer))
    return docker_task(
        "web-1",
        "exec httpd -f -p 8080 -h /var/www",
        f"cpus:0.2;mem:64;ports:[{port}-{port}]",
        network="BRIDGE",
        port_mappings=[{"host_port": port, "container_port": 8080, "protocol": "tcp"}],
    )


def by_id(entries: list[dict[str, Any]], key: str = "executor_id") -> dict[str, dict[str, Any]]:
    return {e[key]: e for e in entries}


def test_endpoints_describe_docker_and_process_tasks(agent: AgentProc) -> None:
    require_engine()
    with launcher(agent.master) as launch:
        sched, driver = launch([web_task, command_task("proc-1", "sleep 600", "cpus:0.3;mem:32")])
        running = {tid: sched.wait_for(tid, "TASK_RUNNING") for tid in ("web-1", "proc-1")}
        cids = {tid: u["container_status"]["container_id"]["value"] for tid, u in running.items()}
        agent_id = running["web-1"]["agent_id"]["value"]

        state = agent.get_json("/state")
        assert state["id"] == agent_id and state["pid"] == f"slave(1)@127.0.0.1:{agent.port}"
        assert state["hostname"] == "127.0.0.1" and state["flags"]["port"] == str(agent.port)
        assert (state["resources"]["cpus"], state["resources"]["mem"]) == (2.0, 1024.0)
        assert state["unreserved_resources_allocated"]["cpus"] == pytest.approx(0.5)
        assert state["master_hostname"] == "127.0.0.1"
        (fw,) = state["frameworks"]
        assert fw["id"] == sched.framework_id and fw["name"] == "agent-test"
        executors = by_id(fw["executors"], "id")
        assert set(executors) == {"web-1", "proc-1"}
        for tid, executor in executors.items():
            assert executor["container"] == cids[tid]
            assert Path(executor["directory"]) == agent.sandbox(tid)
            (task,) = executor["tasks"]
            assert task["id"] == tid and task["state"] == "TASK_RUNNING" and task["slave_id"] == agent_id
            assert [s["state"] for s in task["statuses"]] == ["TASK_STARTING", "TASK_RUNNING"]
        web = executors["web-1"]["tasks"][0]
        (mapping,) = web["container"]["docker"]["port_mappings"]
        assert mapping["container_port"] == 8080 and web["container"]["docker"]["image"] == TASK_IMAGE
        assert web["resources"]["ports"] == f"[{mapping['host_port']}-{mapping['host_port']}]"
        for alias in ("/state.json", "/slave(1)/state", "/slave(1)/state.json"):
            assert agent.get_json(alias)["id"] == agent_id

        stats = by_id(agent.get_json("/monitor/statistics"))
        assert set(stats) == {"web-1", "proc-1"}
        for tid, cpus, mem in (("web-1", 0.2, 64), ("proc-1", 0.3, 32)):
            entry = stats[tid]
            assert entry["framework_id"] == sched.framework_id and entry["source"] == tid
            assert entry["executor_name"].startswith(f"Command Executor (Task: {tid}) (Command: sh -c '")
            figures = entry["statistics"]
            assert figures["cpus_limit"] == cpus and figures["mem_limit_bytes"] == mem * MiB
            assert figures["mem_rss_bytes"] > 0 and figures["timestamp"] > 0
            assert figures["cpus_user_time_secs"] >= 0 and figures["cpus_system_time_secs"] >= 0
        assert by_id(agent.get_json("/monitor/statistics.json")).keys() == stats.keys()

        containers = by_id(agent.get_json("/containers"))
        assert {tid: c["container_id"] for tid, c in containers.items()} == cids
        assert containers["proc-1"]["status"]["executor_pid"] > 0
        assert containers["web-1"]["status"]["container_id"] == {"value": cids["web-1"]}
        assert containers["web-1"]["statistics"]["cpus_limit"] == 0.2
        only = agent.get_json(f"/slave(1)/containers?container_id={cids['proc-1']}")
        assert [c["executor_id"] for c in only] == ["proc-1"]

        snapshot = agent.get_json("/metrics/snapshot")
        assert snapshot["slave/registered"] == 1 and snapshot["slave/tasks_running"] == 2
        assert snapshot["slave/cpus_total"] == 2 and snapshot["slave/cpus_used"] == pytest.approx(0.5)
        assert snapshot["slave/mem_used"] == 96 and snapshot["slave/executors_running"] == 2
        status, headers, body = agent.get("/metrics")
        assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
        prometheus = parse(body.decode())
        assert prometheus["mesos_slave_tasks_running"].value == 2
        assert prometheus["mesos_slave_valid_status_updates"].type == "counter"

        driver.killTask({"value": "web-1"})
        driver.killTask({"value": "proc-1"})
        for tid in ("web-1", "proc-1"):
            sched.wait_for(tid, "TASK_KILLED")
        # Once their last updates are acknowledged the tasks are completed executors of a framework that
        # has nothing left here.
        agent.wait_until("tasks not completed", lambda: not agent.get_json("/state")["frameworks"])
        (done,) = agent.get_json("/state")["completed_frameworks"]
        finished = {e["id"]: e["completed_tasks"][0]["state"] for e in done["completed_executors"]}
        assert finished == {"web-1": "TASK_KILLED", "proc-1": "TASK_KILLED"}
        snapshot = agent.get_json("/metrics/snapshot")
        assert (snapshot["slave/tasks_running"], snapshot["slave/tasks_killed"]) == (0, 2)
        assert snapshot["slave/cpus_used"] == 0 and agent.get_json("/monitor/statistics") == []


def test_bad_requests_get_mesos_answers(agent: AgentProc) -> None:
    assert agent.get("/health")[0::2] == (200, b"")
    assert agent.get_json("/version")["version"] == "1.11.0"
    for path in ("/nope", "/slave(2)/state", "/slave(1)/version", "/master/state"):
        assert agent.get(path)[0] == 404, path
    for method, path in (("POST", "/state"), ("PUT", "/metrics/snapshot"), ("DELETE", "/slave(1)/health")):
        assert agent.get(path, method)[0] == 405, (method, path)
    status, _, body = agent.get("/containers?executor_id=x")
    assert status == 400 and b"executor_id and framework_id only" in body


def test_port_zero_binds_a_free_port_and_registers_it(master: MasterProc, tmp_path: Path) -> None:
    with agent_of(tmp_path / "agent0", master, port=0) as a:
        state = a.get_json("/state")
        assert a.port != 0 and state["pid"] == f"slave(1)@127.0.0.1:{a.port}"
        with urllib.request.urlopen(f"{master.url}/master/state", timeout=10) as r:
            slaves = json.loads(r.read())["slaves"]
        (registered,) = [s for s in slaves if s["id"] == state["id"]]
        assert registered["port"] == a.port
