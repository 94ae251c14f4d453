"""agent_py.views and agent_py.http without an agent: /state, /monitor/statistics, /containers and the
metrics rendered from a hand-made snapshot, the Prometheus text checked by a strict parser, and the
routes (prefixes, 404, 405, 400, 503, JSONP) served from a stub on loopback."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent_py import views
from agent_py.checkpoint import TaskCheckpoint
from agent_py.containerizer import Usage
from agent_py.http import AgentHttp
from paas_common import prometheus
from paas_common.resources import Resources, attributes_model
from tests.support.prometheus import parse

FRAMEWORK = {"id": {"value": "fw-1"}, "name": "marathon", "user": "root", "hostname": "h1"}
MiB = 1024 * 1024


@dataclass
class Task:
    cp: TaskCheckpoint
    statuses: list[dict[str, Any]] = field(default_factory=list)


def task(
    task_id: str,
    state: str = "TASK_RUNNING",
    *,
    framework: dict[str, Any] = FRAMEWORK,
    launched: bool = True,
    killed: bool = False,
    **info: Any,
) -> Task:
    taskinfo = {
        "name": f"{task_id}-name",
        "task_id": {"value": task_id},
        "resources": Resources.parse("cpus:0.5;mem:128;ports:[31001-31001]").to_json(),
        "command": {"value": "sleep 1000"},
        **info,
    }
    cid = f"cid-{task_id}"
    container = {"container_id": cid, "sandbox": f"/sandbox/{task_id}", "pid": 4242} if launched else None
    cp = TaskCheckpoint(framework, taskinfo, cid, "process", state=state, killed=killed, container=container)
    statuses = [
        {"state": "TASK_STARTING", "timestamp": 1.0, "uuid": "a", "source": "SOURCE_EXECUTOR"},
        {
            "state": state,
            "timestamp": 2.0,
            "uuid": "b",
            "container_status": {"container_id": {"value": cid}},
            "healthy": True,
            "reason": "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED",
        },
    ]
    return Task(cp, statuses)


DOCKER = {
    "type": "DOCKER",
    "docker": {
        "image": "baremetal-paas/busybox:latest",
        "network": "BRIDGE",
        "port_mappings": [{"host_port": 31001, "container_port": 8080, "protocol": "tcp"}],
    },
}
HEALTH = {"type": "HTTP", "http": {"port": 8080, "path": "/"}}


def agent_view(**kw: Any) -> views.AgentView:
    base: dict[str, Any] = {
        "agent_id": "m-S0",
        "hostname": "node1",
        "ip": "127.0.0.1",
        "port": 5051,
        "start_time": 1000.0,
        "resources": Resources.parse("cpus:2;mem:1024;disk:100;ports:[31000-31100];cpus(web):1"),
        "attributes": [{"name": "rack", "type": "TEXT", "text": {"value": "a"}}],
        "flags": {"port": "5051"},
        "master": "http://10.0.0.1:5050",
        "registered": True,
    }
    return views.AgentView(**(base | kw))


# ---------------------------------------------------------------- /state


def test_state_models_the_agent_and_its_running_tasks() -> None:
    web = task(
        "web-1", container=DOCKER, health_check=HEALTH, labels={"labels": [{"key": "k", "value": "v"}]}
    )
    doc = views.state(agent_view(tasks=[web]))
    assert doc["id"] == "m-S0" and doc["pid"] == "slave(1)@127.0.0.1:5051" and doc["hostname"] == "node1"
    assert doc["version"] == "1.11.0" and doc["master_hostname"] == "10.0.0.1"
    assert doc["resources"] == {
        "cpus": 3.0,
        "gpus": 0.0,
        "mem": 1024.0,
        "disk": 100.0,
        "ports": "[31000-31100]",
    }
    assert doc["reserved_resources"] == {"web": {"cpus": 1.0, "gpus": 0.0, "mem": 0.0, "disk": 0.0}}
    assert doc["unreserved_resources"]["cpus"] == 2.0
    assert doc["unreserved_resources_allocated"] == {
        "cpus": 0.5,
        "gpus": 0.0,
        "mem": 128.0,
        "disk": 0.0,
        "ports": "[31001-31001]",
    }
    assert doc["attributes"] == {"rack": "a"} and doc["flags"] == {"port": "5051"}
    (fw,) = doc["frameworks"]
    assert (fw["id"], fw["name"], fw["role"], fw["completed_executors"]) == ("fw-1", "marathon", "*", [])
    (executor,) = fw["executors"]
    assert executor["id"] == executor["source"] == "web-1" and executor["container"] == "cid-web-1"
    assert executor["name"] == "Command Executor (Task: web-1) (Command: sh -c 'sleep 1000')"
    assert executor["directory"] == "/sandbox/web-1" and executor["completed_tasks"] == []
    (t,) = executor["tasks"]
    assert t == {
        "id": "web-1",
        "name": "web-1-name",
        "framework_id": "fw-1",
        "executor_id": "",
        "slave_id": "m-S0",
        "state": "TASK_RUNNING",
        "resources": {"cpus": 0.5, "gpus": 0.0, "mem": 128.0, "disk": 0.0, "ports": "[31001-31001]"},
        "role": "*",
        "statuses": [
            {"state": "TASK_STARTING", "timestamp": 1.0},
            {
                "state": "TASK_RUNNING",
                "timestamp": 2.0,
                "container_status": {"container_id": {"value": "cid-web-1"}},
                "healthy": True,
            },
        ],
        "labels": [{"key": "k", "value": "v"}],
        "container": DOCKER,
        "health_check": HEALTH,
    }
    assert doc["completed_frameworks"] == []


def test_terminal_tasks_are_completed_and_finished_frameworks_move_to_completed() -> None:
    other = {
        "id": {"value": "fw-2"},
        "name": "batch",
        "capabilities": [{"type": "MULTI_ROLE"}],
        "roles": ["b"],
    }
    ending = task("a", "TASK_FINISHED")  # terminal, its last update not acknowledged yet
    done_here = task("b", "TASK_KILLED")  # acknowledged and forgotten, framework still has a task
    done_elsewhere = task("c", "TASK_FAILED", framework=other)
    doc = views.state(agent_view(tasks=[ending], completed=[done_here, done_elsewhere]))
    (fw,) = doc["frameworks"]
    (executor,) = fw["executors"]
    assert executor["tasks"] == [] and [t["id"] for t in executor["completed_tasks"]] == ["a"]
    assert [e["id"] for e in fw["completed_executors"]] == ["b"]
    (gone,) = doc["completed_frameworks"]
    assert gone["id"] == "fw-2" and gone["roles"] == ["b"] and "role" not in gone and gone["executors"] == []
    assert gone["completed_executors"][0]["completed_tasks"][0]["state"] == "TASK_FAILED"
    # Nothing of theirs is allocated any more.
    assert doc["unreserved_resources_allocated"]["cpus"] == 0.0


def test_a_stand_in_for_an_unknown_task_is_not_shown() -> None:
    stand_in = task("ghost", "TASK_LOST", launched=False)
    stand_in.cp.container_id = ""
    doc = views.state(agent_view(tasks=[stand_in]))
    assert doc["frameworks"] == []
    assert views.metrics(agent_view(tasks=[stand_in]), 1000.0, {})["slave/tasks_running"] == 0


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ({"value": "echo hi"}, "Command Executor (Task: t) (Command: sh -c 'echo hi')"),
        (
            {"value": "python3 -m http.server"},
            "Command Executor (Task: t) (Command: sh -c 'python3 -m h...')",
        ),
        ({}, "Command Executor (Task: t) (Command: NO COMMAND)"),
        (
            {"shell": False, "value": "ls", "arguments": ["ls", "-l"]},
            "Command Executor (Task: t) (Command: [ls, ls, -l])",
        ),
        ({"shell": False}, "Command Executor (Task: t) (Command: NO EXECUTABLE)"),
    ],
)
def test_executor_names_are_mesos(command: dict[str, Any], name: str) -> None:
    assert views.executor_name({"task_id": {"value": "t"}, "command": command}) == name


def test_attribute_kinds() -> None:
    attributes = [
        {"name": "n", "type": "SCALAR", "scalar": {"value": 2}},
        {
            "name": "r",
            "type": "RANGES",
            "ranges": {"range": [{"begin": 1, "end": 3}, {"begin": 7, "end": 9}]},
        },
        {"name": "s", "type": "SET", "set": {"item": ["a", "b"]}},
    ]
    assert attributes_model(attributes) == {"n": 2.0, "r": "[1-3, 7-9]", "s": "{a, b}"}


# ---------------------------------------------------------------- statistics, containers


USAGE = Usage(
    timestamp=5.0,
    cpus_user_time_secs=1.5,
    cpus_system_time_secs=0.5,
    cpus_limit=0.5,
    mem_rss_bytes=10 * MiB,
    mem_limit_bytes=128 * MiB,
    processes=2,
)


def test_statistics_list_live_containers_with_a_sample() -> None:
    tasks = [task("a"), task("b"), task("c", launched=False), task("d", "TASK_FINISHED")]
    entries = views.statistics(agent_view(tasks=tasks), {"cid-a": USAGE, "cid-d": USAGE})
    assert entries == [
        {
            "executor_id": "a",
            "executor_name": "Command Executor (Task: a) (Command: sh -c 'sleep 1000')",
            "framework_id": "fw-1",
            "source": "a",
            "statistics": {
                "timestamp": 5.0,
                "cpus_user_time_secs": 1.5,
                "cpus_system_time_secs": 0.5,
                "cpus_limit": 0.5,
                "mem_rss_bytes": 10 * MiB,
                "mem_limit_bytes": 128 * MiB,
                "processes": 2,
            },
        }
    ]


def test_containers_and_their_filters() -> None:
    other = {**FRAMEWORK, "id": {"value": "fw-2"}}
    view = agent_view(tasks=[task("a"), task("b", framework=other)])
    every = views.containers(view, {"cid-a": USAGE}, {})
    assert [c["container_id"] for c in every] == ["cid-a", "cid-b"]
    assert every[0]["status"] == {"container_id": {"value": "cid-a"}, "executor_pid": 4242}
    assert every[0]["statistics"]["cpus_limit"] == 0.5 and "statistics" not in every[1]
    ids = {
        "container_id": ["cid-b"],
        "framework_id": ["cid-b"],
        "framework_id&executor_id": ["cid-a"],
    }
    queries = [
        {"container_id": "cid-b"},
        {"framework_id": "fw-2"},
        {"framework_id": "fw-1", "executor_id": "a"},
    ]
    for query, expected in zip(queries, ids.values(), strict=True):
        assert [c["container_id"] for c in views.containers(view, {}, query)] == expected
    for bad in [{"executor_id": "a"}, {"container_id": "x", "framework_id": "fw-1"}]:
        with pytest.raises(views.QueryError):
            views.containers(view, {}, bad)


# ---------------------------------------------------------------- metrics


def test_metrics_snapshot_has_mesos_names_and_figures() -> None:
    tasks = [
        task("a"),
        task("b", "TASK_STAGING", launched=False),
        task("c", killed=True),
        task("d", "TASK_KILLED"),
    ]
    counters = {"slave/tasks_killed": 3, "slave/valid_status_updates": 9}
    m = views.metrics(agent_view(tasks=tasks, counters=counters), 1010.0, {"system/load_1min": 0.5})
    assert m["slave/registered"] == 1.0 and m["slave/uptime_secs"] == 10.0
    assert (m["slave/tasks_running"], m["slave/tasks_staging"], m["slave/tasks_killed"]) == (2, 1, 3)
    assert (
        m["slave/executors_running"],
        m["slave/executors_registering"],
        m["slave/executors_terminating"],
    ) == (
        1,
        1,
        1,
    )
    assert m["slave/cpus_total"] == 3.0 and m["slave/cpus_used"] == 1.5 and m["slave/cpus_percent"] == 0.5
    assert m["slave/gpus_total"] == 0.0 and m["slave/gpus_percent"] == 0.0
    assert m["slave/frameworks_active"] == 1 and m["slave/tasks_failed"] == 0
    assert m["system/load_1min"] == 0.5 and m["slave/valid_status_updates"] == 9


def test_prometheus_text_is_valid_and_carries_every_figure() -> None:
    snapshot = views.metrics(agent_view(tasks=[task("a")]), 1010.0, {"system/load_1min": 0.25})
    snapshot["slave/odd name-here"] = float("inf")
    parsed = parse(prometheus.render(snapshot, views.COUNTERS))
    assert set(parsed) == {prometheus.metric_name(name) for name in snapshot}
    assert parsed["mesos_slave_tasks_running"].value == 1.0
    assert parsed["mesos_slave_tasks_running"].type == "gauge"
    assert parsed["mesos_slave_tasks_finished"].type == "counter"
    assert parsed["mesos_slave_odd_name_here"].value == float("inf")
    assert all(m.help for m in parsed.values())


@pytest.mark.parametrize(
    "bad",
    [
        "x 1",  # no final newline
        "1x 1\n",
        "# TYPE x gauge\n# TYPE x counter\nx 1\n",
        "x 1\n# TYPE x gauge\n",
        "x inf\n",
        "x one\n",
    ],
)
def test_the_parser_is_strict(bad: str) -> None:
    with pytest.raises(ValueError):
        parse(bad)


# ---------------------------------------------------------------- routes


class Stub:
    def __init__(self, recovered: bool = True) -> None:
        self.recovered = recovered
        self.tasks = [task("a", container=DOCKER)]

    def view(self) -> views.AgentView:
        return agent_view(tasks=self.tasks)

    async def usage(self) -> dict[str, Usage]:
        return {"cid-a": USAGE}


def serve(stub: Stub, requests: list[tuple[str, str]]) -> list[tuple[int, str, str]]:
    """(status, content type, body) of each (method, path)."""

    async def go() -> list[tuple[int, str, str]]:
        async with TestClient(TestServer(AgentHttp(stub).app())) as client:
            out = []
            for method, path in requests:
                resp = await client.request(method, path)
                out.append((resp.status, resp.headers.get("Content-Type", ""), await resp.text()))
            return out

    return asyncio.run(go())


def test_routes_with_and_without_the_agent_process_prefix() -> None:
    paths = [
        "/state",
        "/state.json",
        "/slave(1)/state",
        "/slave(1)/state.json",
        "/monitor/statistics",
        "/monitor/statistics.json",
        "/slave(1)/monitor/statistics",
        "/containers",
        "/slave(1)/containers",
        "/flags",
        "/slave(1)/flags",
        "/metrics/snapshot",
        "/version",
    ]
    answers = serve(Stub(), [("GET", p) for p in paths])
    assert [status for status, _, _ in answers] == [200] * len(paths)
    assert all(ctype.startswith("application/json") for _, ctype, _ in answers)
    docs = dict(zip(paths, (json.loads(body) for _, _, body in answers), strict=True))
    assert docs["/state"] == docs["/slave(1)/state.json"]
    assert docs["/monitor/statistics"][0]["statistics"]["cpus_limit"] == 0.5
    assert docs["/containers"][0]["container_id"] == "cid-a"
    assert docs["/flags"] == {"flags": {"port": "5051"}}
    assert docs["/version"]["version"] == "1.11.0"


def test_health_prometheus_and_jsonp() -> None:
    health, slave_health, metrics, jsonp, bad_jsonp = serve(
        Stub(),
        [
            ("GET", "/health"),
            ("GET", "/slave(1)/health"),
            ("GET", "/metrics"),
            ("GET", "/state?jsonp=angular.callbacks._0"),
            ("GET", "/state?jsonp=alert(1)//"),
        ],
    )
    assert health[0] == slave_health[0] == 200 and health[2] == ""
    assert metrics[0] == 200 and metrics[1] == "text/plain; version=0.0.4; charset=utf-8"
    assert parse(metrics[2])["mesos_slave_tasks_running"].value == 1.0
    assert jsonp[0] == 200 and jsonp[1].startswith("text/javascript")
    assert jsonp[2].startswith("angular.callbacks._0({") and jsonp[2].endswith("});")
    assert bad_jsonp[0] == 400


def test_bad_requests() -> None:
    answers = serve(
        Stub(),
        [
            ("GET", "/nope"),
            ("GET", "/slave(2)/state"),
            ("GET", "/slave(1)/metrics/snapshot"),  # served by another libprocess process, unprefixed
            ("POST", "/state"),
            ("PUT", "/metrics/snapshot"),
            ("DELETE", "/slave(1)/health"),
            ("GET", "/containers?executor_id=a"),
        ],
    )
    assert [status for status, _, _ in answers] == [404, 404, 404, 405, 405, 405, 400]
    assert "executor_id and framework_id only" in answers[-1][2]


def test_state_waits_for_recovery() -> None:
    ((status, _, body),) = serve(Stub(recovered=False), [("GET", "/state")])
    assert (status, body) == (503, "Agent has not finished recovery")
