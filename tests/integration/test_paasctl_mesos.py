"""``paasctl master|agent|run`` as subprocesses against real processes on loopback.

One module-wide cluster (zk_py, a leading master-py, a standby, an agent-py) serves every test; the
commands find the leader through ZooKeeper or through the standby's 307.  ``paasctl run`` launches real
command and Docker tasks and is checked through its exit status, its output and what the master then
reports.  Agent commands run against a small fake agent serving Mesos' documented JSON, plus the error
paths (nothing listening, bad input) that must end in one line on stderr with the documented code.
"""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.agents import AgentProc
from tests.support.docker import TASK_IMAGE, require_engine
from tests.support.masters import MasterProc
from tests.support.paasctl import fails, ok, ok_json, start
from tests.support.servers import ZkServer, free_port

CONNECT = ["--timeout", "30"]  # global connect timeout: generous for a loaded host, not a speed claim
RUN = ["--cpus", "0.1", "--mem", "32", "--timeout", "120"]


@dataclass
class Cluster:
    zk: ZkServer
    leader: MasterProc
    standby: MasterProc
    agent: AgentProc

    @property
    def zk_url(self) -> str:
        return f"zk://{self.zk.hosts}/mesos"

    @property
    def leader_pid(self) -> str:
        return f"master@{self.leader.ip}:{self.leader.port}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    work = tmp_path_factory.mktemp("paasctl-mesos")
    zk = ZkServer("zk_py", work / "zk")
    zk.start()
    url = f"zk://{zk.hosts}/mesos"
    leader = MasterProc(work / "leader", zk=url)
    standby = MasterProc(work / "standby", zk=url)
    agent = AgentProc(work / "agent", leader)
    try:
        leader.start()  # joins the group first: the lowest json.info_ sequence leads
        standby.start()
        agent.start()
        yield Cluster(zk, leader, standby, agent)
    finally:
        agent.cleanup()
        standby.kill()
        leader.kill()
        zk.stop()


# ---------------------------------------------------------------------------------------------- master


def test_state_through_zookeeper_and_through_a_standby(cluster: Cluster) -> None:
    leader_url = cluster.leader.url
    for master in (cluster.zk_url, cluster.standby.url):
        text = ok(*CONNECT, "master", "state", "--master", master)
        assert f"leader      {cluster.leader_pid} ({leader_url})" in text, text
        assert "version     1.11.0" in text and "agents      1 active" in text
        doc = ok_json(*CONNECT, "master", "state", "--master", master)
        assert doc["pid"] == doc["leader"] == cluster.leader_pid  # the leader's own /master/state
    # Global options work after the subcommand too, and a plain host:port is a master URL.
    doc = ok_json("master", "state", "--master", f"{cluster.standby.ip}:{cluster.standby.port}", *CONNECT)
    assert doc["leader"] == cluster.leader_pid


def test_agents_table(cluster: Cluster) -> None:
    doc = ok_json(*CONNECT, "master", "agents", "--master", cluster.standby.url)
    (slave,) = doc["slaves"]
    assert slave["hostname"] == "127.0.0.1" and slave["active"] is True
    rows = [
        line.split() for line in ok(*CONNECT, "master", "agents", "--master", cluster.zk_url).splitlines()
    ]
    assert rows[0] == ["ID", "HOSTNAME", "CPUS", "MEM(MB)", "DISK(MB)", "ACTIVE"]
    assert rows[1][:2] == [slave["id"], "127.0.0.1"] and rows[1][2].endswith("/2") and rows[1][-1] == "yes"


def test_run_command_task_finishes(cluster: Cluster) -> None:
    """Through the standby's redirect; the task and the torn-down framework show up in the master."""
    text = ok(*CONNECT, "run", "--master", cluster.standby.url, *RUN, "--name", "ok-task", "--", "echo hi")
    out = text.splitlines()
    assert out[0].startswith("subscribed as framework ")
    assert out[1].startswith("TASK_STAGING: task ok-task.") and "cpus:0.1;mem:32" in out[1]
    assert "TASK_RUNNING" in out and out[-1] == "TASK_FINISHED: Command exited with status 0"

    result = ok_json(*CONNECT, "run", "--master", cluster.zk_url, *RUN, "--", "true")
    assert result["ok"] is True and result["state"] == "TASK_FINISHED"
    assert [u["state"] for u in result["updates"]][-1] == "TASK_FINISHED"
    tasks = ok_json(*CONNECT, "master", "tasks", "--master", cluster.zk_url)["tasks"]
    mine = [t for t in tasks if t["id"] == result["task_id"]]
    assert [t["state"] for t in mine] == ["TASK_FINISHED"]
    assert result["task_id"] in ok(*CONNECT, "master", "tasks", "--master", cluster.zk_url)
    frameworks = ok_json(*CONNECT, "master", "frameworks", "--master", cluster.zk_url)
    assert result["framework_id"] not in {f["id"] for f in frameworks["frameworks"]}  # torn down
    assert result["framework_id"] in {f["id"] for f in frameworks["completed_frameworks"]}
    listed = ok(*CONNECT, "master", "frameworks", "--all", "--master", cluster.zk_url)
    assert any(line.startswith(result["framework_id"]) and " no " in line for line in listed.splitlines())


def test_run_command_task_fails(cluster: Cluster) -> None:
    r = fails(1, *CONNECT, "run", "--master", cluster.zk_url, *RUN, "--", "echo oops >&2; exit 3")
    assert r.stdout.splitlines()[-1] == "TASK_FAILED: Command exited with status 3"
    assert "ended TASK_FAILED: Command exited with status 3" in r.stderr
    r = fails(1, *CONNECT, "--json", "run", "--master", cluster.zk_url, *RUN, "--", "exit 4")
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["error"] == "task_failed" and doc["state"] == "TASK_FAILED"
    assert doc["status_message"] == "Command exited with status 4"


@pytest.mark.docker
def test_run_docker_task(cluster: Cluster) -> None:
    require_engine()
    text = ok(
        *CONNECT, "run", "--master", cluster.zk_url, "--image", TASK_IMAGE, *RUN,
        "--env", "GREETING=hello docker", "--port-mapping", "8080",
        "--", 'test "$GREETING" = "hello docker"',
    )  # fmt: skip
    lines = text.splitlines()
    assert "ports [31000]" in lines[1]  # the host port came from the agent's offer
    assert lines[-1] == "TASK_FINISHED: Command exited with status 0"
    r = fails(1, *CONNECT, "run", "--master", cluster.zk_url, "--image", TASK_IMAGE, *RUN, "--", "exit 7")
    assert "ended TASK_FAILED" in r.stderr


def test_run_timeout(cluster: Cluster) -> None:
    r = fails(
        5,
        *CONNECT,
        "run",
        "--master",
        cluster.zk_url,
        "--cpus",
        "64",
        "--mem",
        "32",
        "--timeout",
        "3",
        "--",
        "true",
    )
    assert "--timeout expired: no offer fitting cpus:64;mem:32 arrived" in r.stderr
    assert "needs cpus:64;mem:32" in r.stderr  # says why the offers did not fit
    r = fails(
        5,
        *CONNECT,
        "--json",
        "run",
        "--master",
        cluster.zk_url,
        *RUN[:4],
        "--timeout",
        "6",
        "--",
        "sleep 120",
    )
    doc = json.loads(r.stdout)
    assert doc["error"] == "timeout"
    if doc["agent_id"]:  # launched within the 6 s: it was killed, not left behind
        assert doc["state"] in ("TASK_KILLED", "TASK_FAILED")


def _read_lines(stream: Any, into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def test_ctrl_c_kills_the_task_and_tears_down(cluster: Cluster) -> None:
    proc = start(*CONNECT, "run", "--master", cluster.zk_url, *RUN, "--", "sleep 120")
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while not any(s.startswith("TASK_RUNNING") for s in seen):
            assert time.monotonic() < deadline and proc.poll() is None, seen
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=0.5))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    reader.join(timeout=10)  # it ends at the pipe's end, with every line in the queue
    while not lines.empty():
        seen.append(lines.get())
    assert proc.stderr is not None and proc.stderr.read().splitlines()[-1] == "paasctl: interrupted"
    assert any(s.startswith("TASK_KILLED") for s in seen), seen
    framework_id = seen[0].split()[-1]
    completed = ok_json(*CONNECT, "master", "frameworks", "--master", cluster.zk_url)["completed_frameworks"]
    assert framework_id in {f["id"] for f in completed}


# ---------------------------------------------------------------------------------------------- bad input


def test_unreachable_master_and_no_leader(cluster: Cluster) -> None:
    port = free_port()
    r = fails(3, "master", "state", "--master", f"127.0.0.1:{port}")
    assert r.stderr == f"paasctl: cannot reach master at http://127.0.0.1:{port}: connection refused\n"
    r = fails(3, *CONNECT, "master", "tasks", "--master", f"zk://{cluster.zk.hosts}/nobody-here")
    assert "no leading master in zk://" in r.stderr
    r = fails(3, "--timeout", "1", "master", "agents", "--master", f"zk://127.0.0.1:{port}/mesos")
    assert f"cannot connect to 127.0.0.1:{port} within 1s" in r.stderr
    r = fails(3, "--json", "run", "--master", f"127.0.0.1:{port}", *RUN, "--", "true")
    assert json.loads(r.stdout)["error"] == "connection"
    r = fails(3, "agent", "resources", "--agent", f"127.0.0.1:{port}")
    assert r.stderr == f"paasctl: cannot reach agent at http://127.0.0.1:{port}: connection refused\n"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["run", "--cpus", "-1", "--mem", "32", "--", "true"], "invalid --cpus '-1'"),
        (["run", "--cpus", "lots", "--mem", "32", "--", "true"], "invalid --cpus 'lots'"),
        (["run", "--cpus", "1", "--mem", "0", "--", "true"], "invalid --mem '0'"),
        (["run", "--mem", "32", "--", "true"], "the following arguments are required: --cpus"),
        (["run", "--cpus", "1", "--mem", "32"], "a command is needed without --image"),
        (["run", "--cpus", "1", "--mem", "32", "--port-mapping", "80", "--", "true"], "--port-mapping needs"),
        (["master", "state", "--master", "https://m:5050"], "expected host:port or http://host:port"),
        (["master", "state", "--master", "zk://127.0.0.1:1"], "names no znode path"),
        (["master", "nonsense"], "invalid choice"),
        (["agent", "containers", "--agent", "h:port"], "invalid port"),
    ],
)
def test_usage_errors(args: list[str], says: str) -> None:
    r = fails(2, *args)
    assert says in r.stderr


# ---------------------------------------------------------------------------------------------- agent


AGENT_STATE = {
    "id": "M-S0",
    "hostname": "127.0.0.1",
    "resources": {"cpus": 2.0, "mem": 1024.0, "disk": 10.0, "gpus": 0.0, "ports": "[31000-31100]"},
    "frameworks": [{"id": "M-0000", "executors": [{"id": "t", "resources": {"cpus": 0.5, "mem": 64.0}}]}],
}
STATISTICS = [
    {
        "framework_id": "M-0000",
        "executor_id": "t",
        "executor_name": "Command Executor",
        "source": "t",
        "statistics": {
            "timestamp": 1.0,
            "cpus_limit": 0.6,
            "mem_rss_bytes": 2097152,
            "mem_limit_bytes": 67108864,
        },
    }
]


class _FakeAgent(BaseHTTPRequestHandler):
    """Mesos agent JSON for /state and /monitor/statistics only (an agent without /containers)."""

    routes: dict[str, Any] = {"/state": AGENT_STATE, "/monitor/statistics": STATISTICS}

    def do_GET(self) -> None:
        body = self.routes.get(self.path)
        data = json.dumps(body).encode() if body is not None else b"not found"
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_agent() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeAgent)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_agent_resources_and_containers(fake_agent: str) -> None:
    rows = [line.split() for line in ok("agent", "resources", "--agent", fake_agent).splitlines()]
    assert rows[0] == ["agent", "M-S0", "(127.0.0.1)"]
    assert rows[2] == ["cpus", "2", "0.5", "1.5"] and rows[3] == ["mem", "1024", "64", "960"]
    doc = ok_json("agent", "resources", "--agent", f"http://{fake_agent}")
    assert (
        doc["agent"] == f"http://{fake_agent}" and doc["used"]["cpus"] == 0.5 and doc["total"]["cpus"] == 2.0
    )
    text = ok("agent", "containers", "--agent", fake_agent)  # /containers is 404: /monitor/statistics
    assert text.splitlines()[1].split() == ["-", "M-0000", "t", "0.6", "2/64", "-"]
    assert ok_json("agent", "containers", "--agent", fake_agent) == STATISTICS
