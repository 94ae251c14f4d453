"""paasctl's Mesos commands without a cluster: formatting of Mesos' v0 JSON (paasctl.mesosformat), the
one-shot framework's protocol machine (paasctl.scheduler), argument parsing and the dev cluster's layout
and small helpers (paasctl.devcluster, paasctl.devprocess).

The samples follow Mesos 1.11's documented shapes (reference §2, §4), not only what master-py serves
today, so the commands keep working as the daemons grow.
"""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from agent_py.containerizer.process import BOOT_ID, process_start
from paas_common.schedapi import Event, TaskStatus, event_from_json
from paasctl import devcluster, devprocess, mesosformat, mesoshttp, scheduler
from paasctl.cli import build_parser
from paasctl.common import CliError, UsageError
from paasctl.scheduler import OneShot, PortMapping, RunSpec

NOW = 1_700_000_600.0

SLAVE = {
    "id": "m1-S0",
    "pid": "slave(1)@10.0.0.5:5051",
    "hostname": "node5",
    "port": 5051,
    "resources": {"cpus": 8.0, "gpus": 0.0, "mem": 14877.0, "disk": 34068.0, "ports": "[31000-32000]"},
    "used_resources": {"cpus": 0.5, "gpus": 0.0, "mem": 128.0, "disk": 0.0},
    "active": True,
}
TASK = {
    "id": "web.1",
    "name": "web",
    "framework_id": "m1-0000",
    "executor_id": "",
    "slave_id": "m1-S0",
    "state": "TASK_RUNNING",
    "resources": {"cpus": 0.5, "mem": 128.0},
    "statuses": [
        {"state": "TASK_STARTING", "timestamp": 1.0},
        {"state": "TASK_RUNNING", "timestamp": 2.0, "healthy": False},
        {"state": "TASK_RUNNING", "timestamp": 3.0, "healthy": True},
    ],
}
FRAMEWORK = {
    "id": "m1-0000",
    "name": "marathon",
    "active": True,
    "used_resources": {"cpus": 0.5, "mem": 128.0, "disk": 0.0, "gpus": 0.0},
    "tasks": [TASK],
    "completed_tasks": [{**TASK, "id": "web.0", "state": "TASK_FINISHED", "statuses": []}],
}
STATE = {
    "version": "1.11.0",
    "id": "m1",
    "pid": "master@10.0.0.1:5050",
    "leader": "master@10.0.0.1:5050",
    "start_time": NOW - 3700,
    "elected_time": NOW - 3661,
    "activated_slaves": 1,
    "deactivated_slaves": 0,
    "unreachable_slaves": 0,
    "slaves": [SLAVE],
    "frameworks": [FRAMEWORK, {"id": "m1-0001", "name": "idle", "active": False, "tasks": []}],
    "completed_frameworks": [{"id": "m1-0002", "name": "old", "tasks": [], "completed_tasks": [TASK]}],
}


def lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


# ---------------------------------------------------------------------------------------------- endpoints


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("10.0.0.1:5050", "http://10.0.0.1:5050"),
        ("10.0.0.1", "http://10.0.0.1:5050"),
        ("http://master.example:8080/", "http://master.example:8080"),
        ("[::1]:5050", "http://[::1]:5050"),
    ],
)
def test_base_url(value: str, url: str) -> None:
    assert mesoshttp.base_url(value, 5050, "--master") == url


@pytest.mark.parametrize("value", ["https://m:5050", "m:notaport", "http://m:5050/master/state", "ftp://x"])
def test_base_url_rejects(value: str) -> None:
    with pytest.raises(UsageError, match="--master"):
        mesoshttp.base_url(value, 5050, "--master")


def test_leader_through_zk_rejects_a_bad_url_before_connecting() -> None:
    with pytest.raises(UsageError, match="names no znode path"):
        mesoshttp.find_leader("zk://127.0.0.1:2181", timeout=1.0)


# ---------------------------------------------------------------------------------------------- tables


def test_numbers_and_durations() -> None:
    assert [mesosformat.num(x) for x in (2.0, 0.5, 0.1 + 0.2, 14877.0, 0, None, "[1-2]")] == [
        "2",
        "0.5",
        "0.3",
        "14877",
        "0",
        "-",
        "[1-2]",
    ]
    assert mesosformat.used_of({"cpus": 0.5}, {"cpus": 8.0}, "cpus") == "0.5/8"
    assert mesosformat.used_of(None, {}, "mem") == "0/0"
    assert mesosformat.format_duration(3661) == "1h1m1s" and mesosformat.format_duration(59) == "59s"
    assert mesosformat.format_duration(90061) == "1d1h1m1s"
    assert mesosformat.format_time(0) == "-" and mesosformat.format_time(86400) == "1970-01-02 00:00:00Z"


def test_table_aligns_and_empty_is_header() -> None:
    text = mesosformat.table(("A", "LONGER"), [("xxxx", "y"), ("z", "")])
    assert text.splitlines() == ["A     LONGER", "xxxx  y", "z"]
    assert mesosformat.table(("ID", "NAME"), []) == "ID  NAME"


def test_summary() -> None:
    text = mesosformat.format_summary(STATE, "http://10.0.0.1:5050", NOW)
    rows = {line[:10].strip(): line[12:] for line in text.splitlines()}
    assert rows["leader"] == "master@10.0.0.1:5050 (http://10.0.0.1:5050)"
    assert rows["master id"] == "m1" and rows["version"] == "1.11.0"
    assert rows["elected"] == "2023-11-14 21:22:19Z (leading for 1h1m1s)"
    assert rows["agents"] == "1 active, 0 deactivated, 0 unreachable"
    assert rows["frameworks"] == "1 active, 1 inactive, 1 completed"
    assert rows["tasks"] == "1 TASK_RUNNING"


def test_summary_of_a_sparse_state() -> None:
    """A standby or an older master: missing fields show as '-', never as an error."""
    text = mesosformat.format_summary({"pid": "master@h:1", "leader": ""}, "http://h:1", NOW)
    assert "leader      - (asked http://h:1)" in text
    assert "elected     -" in text and "tasks       none running" in text


def test_agents_frameworks_tasks_tables() -> None:
    agents = lines(mesosformat.agents_table([SLAVE]))
    assert agents == [
        ["ID", "HOSTNAME", "CPUS", "MEM(MB)", "DISK(MB)", "ACTIVE"],
        ["m1-S0", "node5", "0.5/8", "128/14877", "0/34068", "yes"],
    ]
    frameworks = lines(mesosformat.frameworks_table(STATE["frameworks"]))
    assert frameworks[1] == ["m1-0000", "marathon", "yes", "1", "0.5", "128"]
    assert frameworks[2] == ["m1-0001", "idle", "no", "0", "0", "0"]
    tasks = lines(mesosformat.tasks_table(mesosformat.state_tasks(STATE)))
    assert tasks[0] == ["ID", "NAME", "FRAMEWORK", "AGENT", "STATE", "HEALTHY"]
    assert tasks[1] == ["web.1", "web", "m1-0000", "m1-S0", "TASK_RUNNING", "yes"]  # the latest health
    assert [t[0] for t in tasks[1:]] == ["web.1", "web.0", "web.1"]  # live, completed, completed framework
    assert tasks[2][-1] == "-"


def test_tasks_table_reads_protobuf_ids() -> None:
    """The v1 operator API's tasks carry {"value": ...} ids and agent_id; both models render alike."""
    task = {
        "task_id": {"value": "t"},
        "name": "n",
        "framework_id": {"value": "f"},
        "agent_id": {"value": "a"},
    }
    assert lines(mesosformat.tasks_table([task]))[1] == ["t", "n", "f", "a", "-", "-"]


AGENT_STATE = {
    "id": "m1-S0",
    "hostname": "node5",
    "resources": {"cpus": 2.0, "mem": 1024.0, "disk": 100.0, "gpus": 0.0, "ports": "[31000-31100]"},
    "frameworks": [
        {
            "executors": [
                {"id": "a", "resources": {"cpus": 0.5, "mem": 64.0, "disk": 0.0}},
                {"id": "b", "tasks": [{"resources": {"cpus": 0.25, "mem": 32.0}}]},  # no executor resources
            ],
            "completed_executors": [{"id": "c", "resources": {"cpus": 1.0, "mem": 512.0}}],
        }
    ],
}


def test_agent_resources() -> None:
    summary = mesosformat.agent_resources(AGENT_STATE)
    assert summary["used"] == {"cpus": 0.75, "mem": 96.0, "disk": 0.0, "gpus": 0.0}
    text = mesosformat.resources_table(summary)
    assert text.splitlines()[0] == "agent m1-S0 (node5)"
    rows = {r[0]: r[1:] for r in lines(text)[2:]}
    assert rows == {
        "cpus": ["2", "0.75", "1.25"],
        "mem": ["1024", "96", "928"],
        "disk": ["100", "0", "100"],
        "gpus": ["0", "0", "0"],
        "ports": ["[31000-31100]", "-", "-"],
    }
    empty = mesosformat.agent_resources({})
    assert empty["total"] == {} and empty["used"] == {}
    assert mesosformat.resources_table(empty).splitlines()[1].split() == ["RESOURCE", "TOTAL", "USED", "FREE"]


def test_containers_table() -> None:
    stats = {
        "timestamp": 1.0,
        "cpus_limit": 0.6,
        "cpus_user_time_secs": 1.25,
        "cpus_system_time_secs": 0.5,
        "mem_rss_bytes": 10 * 1048576,
        "mem_limit_bytes": 64 * 1048576,
    }
    entry = {"container_id": "c1", "framework_id": "f", "executor_id": "e", "statistics": stats}
    from_containers = lines(mesosformat.containers_table([entry]))
    assert from_containers[1] == ["c1", "f", "e", "0.6", "10/64", "1.75"]
    monitor = {"framework_id": "f", "executor_id": "e", "statistics": {"timestamp": 1.0}}  # no container id
    assert lines(mesosformat.containers_table([monitor]))[1] == ["-", "f", "e", "-", "-/-", "-"]


# ---------------------------------------------------------------------------------------------- run: messages


def spec(**kw: Any) -> RunSpec:
    base: dict[str, Any] = {"task_id": "t.1", "name": "t", "cpus": 0.5, "mem": 64.0, "command": ("echo hi",)}
    return RunSpec(**(base | kw))


def offer(oid: str, resources: str, agent: str = "S0") -> dict[str, Any]:
    from paas_common.resources import Resources

    return {
        "id": {"value": oid},
        "agent_id": {"value": agent},
        "hostname": "node5",
        "resources": Resources.parse(resources).to_json(),
    }


def test_command_info() -> None:
    assert scheduler.command_info(spec()) == {"shell": True, "value": "echo hi"}
    quoted = scheduler.command_info(spec(command=("sh", "-c", "exit 3"), env=(("A", "1"), ("B", "x=y"))))
    assert quoted["value"] == "sh -c 'exit 3'" and quoted["shell"] is True
    assert quoted["environment"] == {
        "variables": [{"name": "A", "value": "1"}, {"name": "B", "value": "x=y"}]
    }
    assert scheduler.command_info(spec(command=(), image="img")) == {
        "shell": False
    }  # the image's own command


def test_match_offer() -> None:
    fit = scheduler.match_offer(spec(), offer("o1", "cpus:2;mem:1024;ports:[31000-31002]"))
    assert isinstance(fit, tuple) and str(fit[0]) == "cpus:0.5;mem:64" and fit[1] == []
    small = scheduler.match_offer(spec(), offer("o2", "cpus:0.25;mem:1024"))
    assert small == "offers cpus:0.25;mem:1024, needs cpus:0.5;mem:64"

    ports = spec(image="img", ports=(PortMapping(80), PortMapping(53, 31002, "udp"), PortMapping(443)))
    res, host = scheduler.match_offer(ports, offer("o3", "cpus:2;mem:1024;ports:[31000-31002]"))  # type: ignore[misc]
    assert host == [31000, 31002, 31001] and str(res) == "cpus:0.5;mem:64;ports:[31000-31002]"
    assert (
        scheduler.match_offer(ports, offer("o4", "cpus:2;mem:1024;ports:[31000-31001]"))
        == "lacks host ports [31002]"
    )
    two = spec(image="img", ports=(PortMapping(80), PortMapping(81)))
    assert scheduler.match_offer(two, offer("o5", "cpus:2;mem:1024;ports:[31000-31000]")) == (
        "has too few ports for 2 mapping(s)"
    )


def test_task_info_docker_with_ports() -> None:
    s = spec(image="busybox", ports=(PortMapping(80),))
    o = offer("o1", "cpus:1;mem:128;ports:[31000-31000]")
    res, host = scheduler.match_offer(s, o)  # type: ignore[misc]
    info = scheduler.task_info(s, o, res, host)
    assert info["task_id"] == {"value": "t.1"} and info["agent_id"] == {"value": "S0"}
    assert info["container"] == {
        "type": "DOCKER",
        "docker": {
            "image": "busybox",
            "network": "BRIDGE",
            "port_mappings": [{"host_port": 31000, "container_port": 80, "protocol": "tcp"}],
        },
    }
    assert {r["name"] for r in info["resources"]} == {"cpus", "mem", "ports"}
    assert "container" not in scheduler.task_info(spec(), o, res, [])


def test_format_status() -> None:
    status = TaskStatus("t", "TASK_FAILED", message="Command exited with status 3", reason="REASON_X")
    assert scheduler.format_status(status) == "TASK_FAILED: Command exited with status 3 (REASON_X)"
    assert (
        scheduler.format_status(TaskStatus("t", "TASK_RUNNING", healthy=False)) == "TASK_RUNNING [unhealthy]"
    )
    assert scheduler.format_status(TaskStatus("t", "TASK_RUNNING", healthy=True)) == "TASK_RUNNING [healthy]"


def test_subscribe_call_is_a_new_framework_gone_with_its_connection() -> None:
    assert scheduler.subscribe_call("alice", "node1", "web") == {
        "type": "SUBSCRIBE",
        "subscribe": {
            "framework_info": {
                "user": "alice",
                "name": "paasctl-run",
                "hostname": "node1",
                "role": "web",
                "failover_timeout": 0.0,
            }
        },
    }


# ---------------------------------------------------------------------------------------------- run: machine


def update(state: str, uid: str | None, task: str = "t.1", **extra: Any) -> Event:
    status: dict[str, Any] = {
        "task_id": {"value": task},
        "state": state,
        "agent_id": {"value": "S0"},
        **extra,
    }
    if uid:
        status["uuid"] = uid
    return event_from_json({"type": "UPDATE", "update": {"status": status}})


def offers(*docs: dict[str, Any]) -> Event:
    return event_from_json({"type": "OFFERS", "offers": {"offers": list(docs)}})


SUBSCRIBED = event_from_json({"type": "SUBSCRIBED", "subscribed": {"framework_id": {"value": "F"}}})


def test_one_shot_declines_what_does_not_fit_briefly() -> None:
    m = OneShot(spec())
    step = m.on_event(offers(offer("small", "cpus:0.1;mem:1024")))
    assert [c["type"] for c in step.calls] == ["DECLINE"] and not m.launched
    assert step.calls[0]["decline"]["filters"] == {"refuse_seconds": scheduler.DECLINE_SECONDS}
    assert m.mismatch == "offers cpus:0.1;mem:1024, needs cpus:0.5;mem:64"


def test_one_shot_runs_to_finished() -> None:
    m = OneShot(spec())
    assert m.on_event(SUBSCRIBED).lines == ["subscribed as framework F"]
    step = m.on_event(offers(offer("small", "cpus:0.1;mem:1024"), offer("ok", "cpus:4;mem:1024")))
    assert [c["type"] for c in step.calls] == ["DECLINE", "ACCEPT", "SUPPRESS"]
    decline, accept = step.calls[0], step.calls[1]
    assert decline["decline"] == {  # launched: nothing more is needed from any agent
        "offer_ids": [{"value": "small"}],
        "filters": {"refuse_seconds": scheduler.DONE_DECLINE_SECONDS},
    }
    assert accept["framework_id"] == {"value": "F"} and accept["accept"]["offer_ids"] == [{"value": "ok"}]
    (op,) = accept["accept"]["operations"]
    assert op["type"] == "LAUNCH" and op["launch"]["task_infos"][0]["task_id"] == {"value": "t.1"}
    assert step.lines[0].startswith("TASK_STAGING: task t.1 on agent S0 (node5)")
    assert m.launched and m.agent_id == "S0"

    # Offers after the launch are declined for long; a resent update is acknowledged but printed once.
    later = m.on_event(offers(offer("late", "cpus:4;mem:1024")))
    assert [c["type"] for c in later.calls] == ["DECLINE"]
    assert later.calls[0]["decline"]["filters"]["refuse_seconds"] == scheduler.DONE_DECLINE_SECONDS
    running = m.on_event(update("TASK_RUNNING", "u1"))
    assert running.lines == ["TASK_RUNNING"] and running.calls[0]["type"] == "ACKNOWLEDGE"
    assert running.calls[0]["acknowledge"] == {
        "agent_id": {"value": "S0"},
        "task_id": {"value": "t.1"},
        "uuid": "u1",
    }
    again = m.on_event(update("TASK_RUNNING", "u1"))
    assert again.lines == [] and [c["type"] for c in again.calls] == ["ACKNOWLEDGE"]
    assert m.kill_calls() == [
        {
            "type": "KILL",
            "framework_id": {"value": "F"},
            "kill": {"task_id": {"value": "t.1"}, "agent_id": {"value": "S0"}},
        }
    ]
    other = m.on_event(update("TASK_FAILED", "u9", task="someone-else"))
    assert other.lines == [] and not m.done
    done = m.on_event(update("TASK_FINISHED", "u2", message="Command exited with status 0"))
    assert done.lines == ["TASK_FINISHED: Command exited with status 0"] and m.done and m.kill_calls() == []
    result = m.result()
    assert result["state"] == "TASK_FINISHED" and result["status_message"] == "Command exited with status 0"
    assert [u["state"] for u in result["updates"]] == ["TASK_RUNNING", "TASK_FINISHED"]


def test_one_shot_master_updates_and_errors() -> None:
    m = OneShot(spec())
    m.on_event(SUBSCRIBED)
    m.on_event(offers(offer("ok", "cpus:4;mem:1024")))
    failed = event_from_json({"type": "FAILURE", "failure": {"agent_id": {"value": "S0"}}})
    assert m.on_event(failed).lines == ["agent S0 failed"]
    lost = m.on_event(update("TASK_LOST", None, reason="REASON_INVALID_OFFERS"))  # from the master: no uuid
    assert lost.calls == [] and m.done and m.state == "TASK_LOST"

    e = OneShot(spec())
    removed = event_from_json({"type": "ERROR", "error": {"message": "Framework has been removed"}})
    assert e.on_event(removed).lines == ["framework error: Framework has been removed"]
    assert e.done and e.error == "Framework has been removed" and e.kill_calls() == []
    assert OneShot(spec()).on_event(event_from_json({"type": "HEARTBEAT"})).calls == []


# ---------------------------------------------------------------------------------------------- parsing


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_run_arguments() -> None:
    args = parse(
        "run",
        "--cpus",
        "0.5",
        "--mem",
        "64",
        "--env",
        "A=1",
        "--port-mapping",
        "8080:80/udp",
        "--timeout",
        "30",
        "--",
        "echo",
        "--json",
    )
    assert args.cpus == 0.5 and args.mem == 64 and args.env == [("A", "1")]
    assert args.port_mapping == [PortMapping(80, 8080, "udp")] and args.run_timeout == 30
    assert args.command == ["--", "echo", "--json"] and args.json is False  # after --, all is the command
    before = parse("--timeout", "7", "run", "--cpus", "1", "--mem", "1", "--", "true")
    assert before.timeout == 7 and not hasattr(before, "run_timeout")  # the connect timeout, not the run's
    assert parse("zk", "ls", "/", "--timeout", "9").timeout == 9  # run's --timeout leaves the others alone


@pytest.mark.parametrize(
    "argv",
    [
        ["--cpus", "0"],
        ["--cpus", "-1"],
        ["--cpus", "abc"],
        ["--cpus", "nan"],
        ["--mem", "inf"],
        ["--env", "NOEQUALS"],
        ["--env", "=x"],
        ["--port-mapping", "70000"],
        ["--port-mapping", "80:x"],
        ["--timeout", "0"],
    ],
)
def test_run_rejects(argv: list[str]) -> None:
    full = ["run", "--cpus", "1", "--mem", "32", *argv, "--", "true"]
    with pytest.raises(CliError) as e:
        parse(*full)
    assert e.value.code == 2 and e.value.kind == "usage"


def test_master_and_dev_arguments() -> None:
    assert parse("master", "tasks", "--limit", "5", "--master", "zk://h:1/mesos").limit == 5
    assert parse("master", "frameworks", "-a").all is True
    up = parse("dev", "up", "--zk-port", "0", "--master-port", "6050", "--workdir", "/tmp/x", "--no-docker")
    assert (up.zookeeper_port, up.master_port, up.agent_port, up.workdir, up.no_docker) == (
        0,
        6050,
        None,
        "/tmp/x",
        True,
    )
    for bad in (
        ["master", "tasks", "--limit", "0"],
        ["dev", "up", "--zk-port", "-1"],
        ["dev", "up", "--wait", "0"],
    ):
        with pytest.raises(CliError):
            parse(*bad)


# ---------------------------------------------------------------------------------------------- dev helpers


def test_pick_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert not devprocess.port_free(port)
        other = devprocess.pick_port(None, port, set())
        assert other != port and devprocess.port_free(other)
        with pytest.raises(CliError, match="in use"):
            devprocess.pick_port(port, 5050, set())
    assert devprocess.pick_port(None, port, {port}) != port  # taken by an earlier part
    assert devprocess.pick_port(port, 1, set()) == port  # free again


def test_dev_state_helpers(tmp_path: Any) -> None:
    me = process_start(os.getpid())
    assert me is not None
    assert devprocess.alive({"pid": os.getpid(), "start_time": me[1], "boot_id": BOOT_ID})
    for stranger in (
        None,
        {"pid": 0},
        {"pid": os.getpid()},  # no start time: a reused pid could not be told apart
        {"pid": os.getpid(), "create_time": me[1]},  # the old (v1) entry format
        {"pid": os.getpid(), "start_time": me[1] + 1},  # another process with this pid
        {"pid": os.getpid(), "start_time": me[1], "boot_id": "another-boot"},
    ):
        assert not devprocess.alive(stranger), stranger
    assert devcluster.load(tmp_path) is None
    state = {
        "workdir": str(tmp_path),
        "zk_url": "zk://127.0.0.1:1/mesos",
        "containerizers": ["mesos"],
        "zookeeper": {"pid": 10, "port": 1},
        "master": {"pid": 11, "port": 2, "url": "http://127.0.0.1:2"},
        "agent": {"pid": 12, "port": 3},
    }
    devcluster.save(tmp_path, state)
    assert devcluster.load(tmp_path) == state
    eps = devcluster.endpoints(state)
    assert (eps["zookeeper"], eps["master"], eps["agent"], eps["zk"]) == (
        "127.0.0.1:1",
        "http://127.0.0.1:2",
        "127.0.0.1:3",
        "zk://127.0.0.1:1/mesos",
    )
    assert eps["pids"] == {"zookeeper": 10, "master": 11, "agent": 12}
    (tmp_path / devcluster.STATE_FILE).write_text("{not json")
    with pytest.raises(CliError, match="unreadable"):
        devcluster.load(tmp_path)


def test_dev_cluster_layout(tmp_path: Path) -> None:
    ports = {"zookeeper": 2281, "master": 6050, "agent": 6051, "marathon": 8180, "lb": 9190}
    steps = devcluster.commands(tmp_path, ports, ["docker", "mesos"], "cpus:2", agent_ip_flag=True)
    assert [part for part, _, _ in steps] == ["zookeeper", "master", "agent", "marathon"]  # no haproxy
    with_lb = devcluster.commands(
        tmp_path, ports, ["mesos"], None, agent_ip_flag=True, haproxy="/usr/sbin/haproxy"
    )
    assert [part for part, _, _ in with_lb] == list(devcluster.PARTS)
    lb, lb_extra = with_lb[-1][1], with_lb[-1][2]
    assert lb[:4] == ["marathon_py", "lb", "--marathon", "http://127.0.0.1:8180"] and "--stats-port" in lb
    assert lb_extra == {"url": "http://127.0.0.1:9190"}
    (_, zk, _), (_, master, master_extra), (_, agent, agent_extra), (_, marathon, marathon_extra) = steps
    assert zk == ["zk_py", str(tmp_path / "zookeeper" / "zoo.cfg")]
    assert master == ["master_py", "--ip", "127.0.0.1", "--port", "6050", "--zk", "zk://127.0.0.1:2281/mesos"]
    assert master_extra == {"url": "http://127.0.0.1:6050"}
    assert agent[agent.index("--master") + 1] == "zk://127.0.0.1:2281/mesos"
    assert agent[agent.index("--containerizers") + 1] == "docker,mesos"
    assert agent[-4:] == ["--ip", "127.0.0.1", "--resources", "cpus:2"]
    assert agent_extra == {"work_dir": str(tmp_path / "agent")}
    assert marathon[:5] == [
        "marathon_py",
        "--master",
        "zk://127.0.0.1:2281/mesos",
        "--zk",
        "zk://127.0.0.1:2281/marathon",
    ]
    assert marathon[-2:] == ["--http_port", "8180"] and marathon_extra == {"url": "http://127.0.0.1:8180"}
    older = devcluster.commands(tmp_path, ports, ["mesos"], None, agent_ip_flag=False)[2][1]
    assert "--ip" not in older and "--resources" not in older
    cfg = devcluster.zoo_cfg(tmp_path / "data", 2281).splitlines()
    assert (
        "clientPort=2281" in cfg
        and "clientPortAddress=127.0.0.1" in cfg
        and "4lw.commands.whitelist=*" in cfg
    )


def test_dev_texts() -> None:
    stopped = {"marathon": "stopped", "agent": "stopped", "master": "killed", "zookeeper": "not running"}
    tasks = {"process_tasks_killed": 2, "containers_removed": ["mesos-x"]}
    assert devcluster.down_text(stopped, tasks).splitlines() == [
        "zookeeper  not running",
        "master     killed",
        "agent      stopped",
        "marathon   stopped",
        "tasks      2 process task(s) killed, 1 container(s) removed",
    ]
    row = {"endpoint": None, "pid": 7, "running": True, "healthy": False, "detail": "not leading"}
    assert lines(devcluster.status_text({"master": row}))[1] == [
        "master",
        "-",
        "7",
        "yes",
        "no",
        "not",
        "leading",
    ]
