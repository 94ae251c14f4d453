"""``paasctl dev``: a whole development cluster brought up, used, inspected and brought down.

``dev up --json`` → ``dev status`` → ``paasctl run`` against it (a finished command task, and tasks
still running when the cluster goes down) → ``dev down``, after which no daemon, process task or
container of the cluster may be left.  Ports are any free ones (``0``), so a cluster on the default
ports or another test run is never disturbed.  Whatever happens, the fixture's teardown stops the
recorded processes and removes the agent's containers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paasctl.devcluster import PARTS, STATE_FILE, load, parts_of
from paasctl.devprocess import alive
from paasctl.devtasks import live_process_tasks, owned_containers, remove_tasks
from tests.support.docker import TASK_IMAGE, _probe
from tests.support.paasctl import fails, ok, ok_json, paasctl, start

UP = [
    "--zk-port",
    "0",
    "--master-port",
    "0",
    "--agent-port",
    "0",
    "--marathon-port",
    "0",
    "--lb-stats-port",
    "0",
    "--resources",
    "cpus:2;mem:1024;ports:[31000-31100]",
]


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """The cluster's directory; on the way out the cluster is brought down whatever the test did."""
    path = tmp_path / "dev"
    try:
        yield path
    finally:
        paasctl("dev", "down", "--workdir", path, timeout=120)
        state = load(path) if (path / STATE_FILE).exists() else None
        for part in PARTS:  # down failed: no process may outlive the test
            entry = (state or {}).get(part)
            if alive(entry):
                assert entry is not None
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(int(entry["pid"]), signal.SIGKILL)
        if (path / "agent").exists():
            remove_tasks(path / "agent")


def _start_run(*args: str) -> subprocess.Popen[str]:
    return start("--timeout", "30", "run", *args)


def _until_running(master: str, names: list[str], timeout: float = 90) -> None:
    """Until the master reports a TASK_RUNNING task for each of ``names``."""
    deadline = time.monotonic() + timeout
    while True:
        tasks = ok_json("--timeout", "30", "master", "tasks", "--master", master)["tasks"]
        running = {t["name"] for t in tasks if t["state"] == "TASK_RUNNING"}
        if set(names) <= running:
            return
        assert time.monotonic() < deadline, tasks
        time.sleep(0.3)


def _marathon(url: str, method: str, path: str, doc: Any) -> Any:
    req = urllib.request.Request(url + path, json.dumps(doc).encode(), method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def test_dev_cluster_up_status_run_down(workdir: Path) -> None:
    docker_ok = _probe() is None
    up: dict[str, Any] = ok_json("dev", "up", "--workdir", workdir, *UP)
    assert up["ok"] is True and up["already_running"] is False
    host, port = up["zookeeper"].split(":")
    assert host == "127.0.0.1" and int(port) > 0
    assert up["master"].startswith("http://127.0.0.1:") and up["agent"].startswith("127.0.0.1:")
    assert up["zk"] == f"zk://{up['zookeeper']}/mesos"
    assert up["containerizers"] == (["docker", "mesos"] if docker_ok else ["mesos"])
    assert up["marathon"].startswith("http://127.0.0.1:")
    assert shutil.which("haproxy"), "scripts/setup.sh installs haproxy"
    assert up["lb"].startswith("http://127.0.0.1:")
    logs = {"zookeeper.log", "master.log", "agent.log", "marathon.log", "lb.log"}
    assert {p.name for p in (workdir / "logs").iterdir()} == logs

    again = ok_json("dev", "up", "--workdir", workdir, *UP)
    assert again["already_running"] is True and again["pids"] == up["pids"]
    assert "already up" in ok("dev", "up", "--workdir", workdir)

    status = ok_json("dev", "status", "--workdir", workdir)
    assert status["ok"] is True and all(p["running"] and p["healthy"] for p in status["parts"].values())
    rows = [line.split()[:5] for line in ok("dev", "status", "--workdir", workdir).splitlines()]
    assert rows[1] == ["zookeeper", up["zookeeper"], str(up["pids"]["zookeeper"]), "yes", "yes"]
    assert [r[0] for r in rows[1:]] == ["zookeeper", "master", "agent", "marathon", "lb"]

    # The cluster works: a task through ZooKeeper, the master's view of it.
    assert ok("--timeout", "30", "run", "--master", up["zk"], "--cpus", "0.1", "--mem", "32", "--", "true")
    state = ok_json("--timeout", "30", "master", "state", "--master", up["zk"])
    assert state["leader"] == state["pid"] and state["activated_slaves"] == 1
    # ... and an app through its marathon-py (a Mesos framework of the same cluster)
    app = {"id": "/dev/sleeper", "cmd": "sleep 300", "cpus": 0.1, "mem": 32}
    _marathon(up["marathon"], "POST", "/v2/apps", app)
    _until_running(up["zk"], ["sleeper.dev"])

    recorded = load(workdir)
    assert recorded is not None and {p: recorded[p]["pid"] for p in parts_of(recorded)} == up["pids"]

    # Tasks still running when the cluster goes down are removed with it.
    runs = [
        _start_run("--master", up["zk"], "--cpus", "0.1", "--mem", "32", "--name", "proc", "--", "sleep 300")
    ]
    names = ["proc"]
    if docker_ok:
        image = ["--image", TASK_IMAGE, "--name", "ctr"]
        runs.append(
            _start_run("--master", up["zk"], *image, "--cpus", "0.1", "--mem", "32", "--", "sleep 300")
        )
        names.append("ctr")
    try:
        _until_running(up["zk"], names)
        agent_dir = workdir / "agent"
        assert live_process_tasks(agent_dir)
        served = paasctl("--json", "agent", "resources", "--agent", up["agent"])
        if served.returncode == 0:  # agents with their HTTP endpoints
            resources = json.loads(served.stdout)
            assert resources["total"]["cpus"] == 2 and resources["used"]["cpus"] == pytest.approx(
                0.1 * (len(names) + 1)  # and marathon-py's /dev/sleeper
            )
            containers = ok_json("agent", "containers", "--agent", up["agent"])
            assert sorted(c["executor_id"].split(".")[0] for c in containers) == sorted(
                [*names, "dev_sleeper"]
            )
        else:  # agent-py before its HTTP server: nothing listens there
            assert served.returncode == 3, served.stderr
        if docker_ok:
            assert owned_containers(agent_dir)

        down = ok_json("dev", "down", "--workdir", workdir)
        assert set(down["stopped"].values()) <= {"stopped", "killed"}
        assert down["process_tasks_killed"] >= 1
        assert len(down["containers_removed"]) == (1 if docker_ok else 0)
        for run in runs:  # their stream ends with the master (3), or the master said TASK_LOST first (1)
            assert run.wait(timeout=60) in (1, 3)
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
            run.communicate(timeout=10)

    for part in PARTS:
        assert not alive(recorded[part]), part
    assert live_process_tasks(workdir / "agent") == []
    if docker_ok:
        assert owned_containers(workdir / "agent") == []
    r = paasctl("dev", "status", "--workdir", workdir)
    assert r.returncode == 4 and "no dev cluster" in r.stdout
    assert "no dev cluster" in ok("dev", "down", "--workdir", workdir)  # idempotent


def test_dev_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    foreign = tmp_path / "not-ours"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    r = fails(2, "dev", "up", "--workdir", foreign)
    assert "not a paasctl dev directory" in r.stderr and (foreign / "precious.txt").exists()

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = fails(1, "dev", "up", "--workdir", tmp_path / "dev", "--zk-port", str(port))
        assert f"port {port} on 127.0.0.1 is in use" in r.stderr
    assert not (tmp_path / "dev" / STATE_FILE).exists()
    r = paasctl("--json", "dev", "status", "--workdir", tmp_path / "dev")
    assert r.returncode == 4 and json.loads(r.stdout)["running"] is False
