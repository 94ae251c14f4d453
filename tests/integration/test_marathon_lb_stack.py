"""Service discovery on the whole stack (issue 5, acceptance 2): marathon-py runs two Docker instances of an
app, ``marathon-py lb`` drives a real HAProxy from marathon-py's API and event stream; HTTP through the app's
service port reaches both instances, and stops reaching the one whose health check starts failing."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.integration.test_marathon_e2e import deploy, wait_healthy
from tests.support.docker import TASK_IMAGE, require_engine
from tests.support.marathons import MarathonProc, Stack, marathon_stack
from tests.support.servers import REPO_ROOT

APP = "/lb/web"
SERVE = "hostname > /var/www/id.txt && touch /var/www/ok.html && exec httpd -f -p 8080 -h /var/www"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    require_engine()
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is not installed (scripts/setup.sh installs Debian's)")
    with marathon_stack(tmp_path) as s:
        yield s


@contextlib.contextmanager
def lb_bridge(marathon: MarathonProc, workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``marathon-py lb`` with its own HAProxy on 127.0.0.1 (vhost/app-id/stats frontends off)."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / "lb.log").open("ab")
    argv = [
        sys.executable, "-m", "marathon_py", "lb", "--marathon", marathon.url,
        "--haproxy-config", str(workdir / "haproxy.cfg"), "--bind-address", "127.0.0.1",
        "--http-port", "0", "--appid-port", "0", "--stats-port", "0", "--debounce", "0.2",
        "--maxconn", "1000",  # HAProxy needs 2 fds per connection; a test shell may allow few
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the bridge stops its HAProxy with it
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()


def through_lb(port: int) -> str | None:
    """The container id that answered on the service port, None if HAProxy had nobody to send it to."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/id.txt", timeout=3) as r:
            return r.read().decode().strip()
    except OSError:
        return None


def test_haproxy_routes_to_healthy_docker_tasks_only(stack: Stack, tmp_path: Path) -> None:
    m = stack.marathon
    app = {
        "id": APP,
        "instances": 2,
        "cpus": 0.1,
        "mem": 32,
        "cmd": SERVE,
        "container": {
            "type": "DOCKER",
            "docker": {"image": TASK_IMAGE},
            "portMappings": [{"containerPort": 8080, "hostPort": 0, "name": "http"}],
        },
        "networks": [{"mode": "container/bridge"}],
        "labels": {"HAPROXY_GROUP": "external"},
        "healthChecks": [
            {"protocol": "HTTP", "portIndex": 0, "path": "/ok.html", "intervalSeconds": 1,
             "timeoutSeconds": 1, "gracePeriodSeconds": 5,
             "maxConsecutiveFailures": 0}  # 0: unhealthy tasks are never killed
        ],
    }  # fmt: skip
    deploy(m, app)
    wait_healthy(m, APP, 2)
    service_port = m.get(f"/v2/apps{APP}")["app"]["container"]["portMappings"][0]["servicePort"]
    assert 10000 <= service_port <= 20000
    engine = docker.from_env()
    containers = [c.removeprefix("docker:") for a in stack.agents for c in a.containers()]
    ids = {engine.containers.get(c).attrs["Config"]["Hostname"]: c for c in containers}
    assert len(ids) == 2

    with lb_bridge(m, tmp_path / "lb"):
        seen: set[str] = set()

        def both_reached() -> bool:
            seen.add(through_lb(service_port) or "")
            return set(ids) <= seen

        m.wait_for("HAProxy reaches both instances", both_reached)

        sick, well = sorted(ids)
        engine.containers.get(ids[sick]).exec_run(["rm", "/var/www/ok.html"])  # its health check now fails

        def marked_unhealthy() -> bool:
            tasks = m.get(f"/v2/apps{APP}/tasks")["tasks"]
            return any(not r["alive"] for t in tasks for r in t.get("healthCheckResults", []))

        m.wait_for("Marathon sees the instance unhealthy", marked_unhealthy)
        streak: list[str | None] = []

        def only_the_healthy_one() -> bool:
            streak.append(through_lb(service_port))
            return streak[-10:] == [well] * 10

        m.wait_for("HAProxy stops routing to the unhealthy instance", only_the_healthy_one)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            assert through_lb(service_port) == well
        assert (
            m.get(f"/v2/apps{APP}?embed=app.counts")["app"]["tasksRunning"] == 2
        )  # still running, not routed
