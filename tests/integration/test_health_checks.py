"""Task health checks through real master-py, agent-py and Docker, as a pymesos framework sees them.

Each task serves (busybox httpd) until a file named ``stop`` appears in its sandbox, then stops serving
and stays alive.  Its check (short intervals, 2 consecutive failures) must flip it healthy, then
unhealthy twice, then get it killed: RUNNING, RUNNING healthy, RUNNING unhealthy twice, KILLED unhealthy,
each health update with REASON_TASK_HEALTH_CHECK_STATUS_UPDATED.  HTTP and TCP checks of Docker tasks
on a bridge network go to the mapped host port; COMMAND checks run in the container (docker exec) or in
the sandbox; a recovered agent resumes checking.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.agents import AgentProc, agent_of, agent_updates, bindable_port, launcher
from tests.support.docker import require_engine
from tests.support.pymesos_fw import command_task, docker_task, offered_ports, running_master
from tests.support.servers import free_port

REASON = "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"
TIMING = {
    "delay_seconds": 0,
    "interval_seconds": 0.3,
    "timeout_seconds": 3,
    "grace_period_seconds": 10,
    "consecutive_failures": 2,
}
KILL_AT_ONCE = {"grace_period": {"nanoseconds": 0}}
# Serve until `stop` exists in the sandbox (the working directory of both kinds of task), then stay up.
SERVE = "{httpd} & pid=$!; until [ -e stop ]; do sleep 0.1; done; kill $pid; exec sleep 600"
EXPECTED = [
    ("TASK_STARTING", None, None),
    ("TASK_RUNNING", None, None),
    ("TASK_RUNNING", True, REASON),
    ("TASK_RUNNING", False, REASON),
    ("TASK_RUNNING", False, REASON),
    ("TASK_KILLED", False, None),
]

TaskMaker = Callable[[Any], dict[str, Any]]


def checked(task: dict[str, Any], check: dict[str, Any]) -> dict[str, Any]:
    return {**task, "health_check": {**TIMING, **check}, "kill_policy": KILL_AT_ONCE}


def docker_server(task_id: str, check: dict[str, Any]) -> TaskMaker:
    """A Docker task serving HTTP on container port 8080, mapped to a host port from the offer."""

    def make(offer: Any) -> dict[str, Any]:
        port = bindable_port(offered_ports(offer))
        task = docker_task(
            task_id,
            SERVE.format(httpd="httpd -f -p 8080 -h /var/www"),
            f"cpus:0.1;mem:32;ports:[{port}-{port}]",
            network="BRIDGE",
            port_mappings=[{"host_port": port, "container_port": 8080, "protocol": "tcp"}],
        )
        return checked(task, check)

    return make


def process_server(task_id: str, check: Callable[[int], dict[str, Any]]) -> TaskMaker:
    """A process task serving HTTP on a free loopback port with the host's static busybox."""

    def make(offer: Any) -> dict[str, Any]:
        port = free_port()
        httpd = f"echo ok > index.html; /bin/busybox httpd -f -p 127.0.0.1:{port} -h ."
        return checked(command_task(task_id, SERVE.format(httpd=httpd)), check(port))

    return make


def health_sequence(sched: Any, task_id: str) -> list[tuple[str, bool | None, str | None]]:
    return [(u["state"], u.get("healthy"), u.get("reason")) for u in agent_updates(sched, task_id)]


def wait_healthy(sched: Any, task_id: str) -> None:
    sched.wait_until(
        f"{task_id} never healthy", lambda: ("TASK_RUNNING", True, REASON) in health_sequence(sched, task_id)
    )


CASES = {
    "docker-http": lambda tid: docker_server(
        tid, {"type": "HTTP", "http": {"port": 8080, "path": "/index.html"}}
    ),
    "docker-tcp": lambda tid: docker_server(tid, {"type": "TCP", "tcp": {"port": 8080}}),
    # Inside the container: its own loopback, where nothing is mapped.
    "docker-command": lambda tid: docker_server(
        tid,
        {"type": "COMMAND", "command": {"value": "wget -q -O /dev/null http://127.0.0.1:8080/index.html"}},
    ),
    "process-http": lambda tid: process_server(
        tid, lambda port: {"type": "HTTP", "http": {"port": port, "path": "/"}}
    ),
    # In the sandbox (relative path), with the task's environment.
    "process-command": lambda tid: process_server(
        tid,
        lambda port: {"type": "COMMAND", "command": {"value": 'test ! -e stop && test -n "$MESOS_TASK_ID"'}},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_failing_check_flips_health_and_kills_the_task(case: str, agent: AgentProc) -> None:
    if case.startswith("docker"):
        require_engine()
    task_id = f"{case}-1"
    with launcher(agent.master, name=f"health-{case}") as launch:
        sched, _ = launch([CASES[case](task_id)])
        wait_healthy(sched, task_id)
        (agent.sandbox(task_id) / "stop").touch()
        sched.wait_for(task_id, "TASK_KILLED")
        assert health_sequence(sched, task_id) == EXPECTED


def test_recovered_agent_resumes_health_checks(tmp_path: Path) -> None:
    # A long grace period: the restarted agent resumes the checkpointed health (healthy), so failures
    # count at once; a checker starting over would ignore them for the 10 minutes of grace.
    check = {"type": "COMMAND", "command": {"value": "test ! -e stop"}, "grace_period_seconds": 600}
    with (  # a master of its own: the module's agent must not get the task
        running_master(tmp_path / "master") as master,
        agent_of(tmp_path / "agent", master) as agent,
        launcher(master, name="health-recovery") as launch,
    ):
        sched, _ = launch([checked(command_task("watched-1", "exec sleep 600"), check)])
        wait_healthy(sched, "watched-1")
        agent.wait_until(
            "updates not acknowledged",
            lambda: all('"pending": []' in p.read_text() for p in agent.workdir.glob("meta/tasks/*/*.json")),
        )
        agent.kill()
        (agent.sandbox("watched-1") / "stop").touch()  # fails from the first check of the new agent on
        agent.start()
        sched.wait_for("watched-1", "TASK_KILLED")
        assert health_sequence(sched, "watched-1") == EXPECTED
