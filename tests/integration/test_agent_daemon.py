"""agent-py end to end: real master-py, real agent-py, an unmodified pymesos scheduler.

Command and Docker tasks run to their terminal states through the agent protocol (updates resent until
acknowledged), and a SIGKILLed agent recovers its running tasks without duplicating them.  Every process
and container is removed at teardown, also when a test fails half-way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from pymesos import MesosSchedulerDriver, Scheduler

from agent_py.containerizer.docker import LABEL_OWNER
from paas_common.resources import Resources
from tests.support.agents import AgentProc
from tests.support.clients import WAIT
from tests.support.docker import TASK_IMAGE, require_engine
from tests.support.masters import MasterProc

RESOURCES = Resources.parse("cpus:0.2;mem:64").to_json()


def command_task(task_id: str, command: str) -> dict[str, Any]:
    return {
        "name": task_id,
        "task_id": {"value": task_id},
        "resources": RESOURCES,
        "command": {"value": command},
    }


def docker_task(task_id: str, image: str, command: str) -> dict[str, Any]:
    task = command_task(task_id, command)
    task["container"] = {"type": "DOCKER", "docker": {"image": image}}
    return task


class Launcher(Scheduler):  # type: ignore[misc]
    """Launches the given tasks on the first offer; records every status update per task."""

    def __init__(self, tasks: list[dict[str, Any]]) -> None:
        self.tasks = tasks
        self.launched = False
        self.updates: dict[str, list[dict[str, Any]]] = {}
        self.cond = threading.Condition()

    def resourceOffers(self, driver: Any, offers: Any) -> None:
        for offer in offers:
            if self.launched:
                driver.declineOffer(offer.id)
                continue
            driver.launchTasks(offer.id, [{**t, "agent_id": offer.agent_id} for t in self.tasks])
            self.launched = True

    def statusUpdate(self, driver: Any, update: Any) -> None:
        with self.cond:
            self.updates.setdefault(update.task_id.value, []).append(update.to_dict())
            self.cond.notify_all()

    def wait_for(self, task_id: str, state: str, *, since: int = 0) -> dict[str, Any]:
        """The first update of the task in that state (after the first `since` updates)."""

        def found() -> dict[str, Any] | None:
            return next((u for u in self.updates.get(task_id, [])[since:] if u["state"] == state), None)

        with self.cond:
            assert self.cond.wait_for(lambda: found() is not None, timeout=WAIT), (
                f"{task_id}: no {state}; got {[u['state'] for u in self.updates.get(task_id, [])]}"
            )
            result = found()
            assert result is not None
            return result

    def agent_states(self, task_id: str) -> list[str]:
        """The states the agent reported (reconciliation answers from the master left out)."""
        with self.cond:
            return [u["state"] for u in self.updates.get(task_id, []) if u.get("source") == "SOURCE_EXECUTOR"]


Run = Callable[[list[dict[str, Any]]], tuple[Launcher, MesosSchedulerDriver]]


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProc]:
    m = MasterProc(tmp_path / "master")
    m.start()
    try:
        yield m
    finally:
        m.kill()


@pytest.fixture
def agent(tmp_path: Path, master: MasterProc) -> Iterator[AgentProc]:
    a = AgentProc(tmp_path / "agent", master)
    try:
        a.start()
        yield a
    finally:
        a.cleanup()


@pytest.fixture
def run(master: MasterProc, agent: AgentProc) -> Iterator[Run]:
    drivers: list[MesosSchedulerDriver] = []

    def start(tasks: list[dict[str, Any]]) -> tuple[Launcher, MesosSchedulerDriver]:
        sched = Launcher(tasks)
        driver = MesosSchedulerDriver(
            sched, {"user": "root", "name": "agent-test"}, f"127.0.0.1:{master.port}", use_addict=True
        )
        drivers.append(driver)
        driver.start()
        return sched, driver

    try:
        yield start
    finally:
        for d in drivers:
            d.stop()
            d.join()


@dataclass(frozen=True)
class _Listed:
    id: str
    status: str


def containers(agent: AgentProc) -> list[_Listed]:
    """The agent's containers from one listing call (the SDK's list() inspects each one, which races with
    the agent removing them)."""
    client = docker.from_env(version="auto", timeout=30)
    try:
        rows = client.api.containers(all=True, filters={"label": f"{LABEL_OWNER}={agent.owner}"})
        return [_Listed(r["Id"], r["State"]) for r in rows]
    finally:
        client.close()


def wait_until(what: str, predicate: Callable[[], bool], agent: AgentProc) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"{what}\n{agent.log_tail()}"
        time.sleep(0.1)


def test_command_task_finishes_with_output_in_sandbox(run: Run, agent: AgentProc) -> None:
    sched, _ = run([command_task("echo-1", "echo hi")])
    sched.wait_for("echo-1", "TASK_FINISHED")
    assert sched.agent_states("echo-1") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    (stdout,) = agent.workdir.glob("slaves/*/frameworks/*/executors/echo-1/runs/*/stdout")
    assert stdout.read_text() == "hi\n"
    # The last update was acknowledged: the agent forgets the task.
    wait_until("checkpoint not removed", lambda: not list(agent.workdir.glob("meta/tasks/*/*.json")), agent)


def test_failing_command_reports_its_exit_status(run: Run) -> None:
    sched, _ = run([command_task("fail-1", "exit 3")])
    failed = sched.wait_for("fail-1", "TASK_FAILED")
    assert failed["message"] == "Command exited with status 3"


def test_docker_task_is_killed_and_its_container_removed(run: Run, agent: AgentProc) -> None:
    require_engine()
    sched, driver = run([docker_task("sleepy-1", TASK_IMAGE, "sleep 30")])
    sched.wait_for("sleepy-1", "TASK_RUNNING")
    assert [c.status for c in containers(agent)] == ["running"]
    driver.killTask({"value": "sleepy-1"})
    sched.wait_for("sleepy-1", "TASK_KILLED")
    wait_until("container not removed", lambda: containers(agent) == [], agent)


def test_docker_task_with_missing_image_fails_to_launch(run: Run) -> None:
    require_engine()
    sched, _ = run([docker_task("ghost-1", "baremetal-paas/no-such-image:latest", "true")])
    failed = sched.wait_for("ghost-1", "TASK_FAILED")
    assert failed["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert "no-such-image" in failed["message"]


def test_killed_agent_recovers_running_tasks(run: Run, agent: AgentProc) -> None:
    require_engine()
    sched, driver = run([command_task("proc-1", "sleep 60"), docker_task("dock-1", TASK_IMAGE, "sleep 60")])
    for task_id in ("proc-1", "dock-1"):
        sched.wait_for(task_id, "TASK_RUNNING")
    # Both RUNNING updates acknowledged (nothing pending), then the agent dies hard and comes back.
    wait_until(
        "updates not acknowledged",
        lambda: all('"pending": []' in p.read_text() for p in agent.workdir.glob("meta/tasks/*/*.json")),
        agent,
    )
    records = sorted(p.read_text() for p in agent.workdir.glob("meta/containers/*/record.json"))
    agent.kill()
    agent.start()
    seen = {t: len(sched.updates[t]) for t in ("proc-1", "dock-1")}
    driver.reconcileTasks([])
    for task_id in ("proc-1", "dock-1"):
        assert (
            sched.wait_for(task_id, "TASK_RUNNING", since=seen[task_id])["reason"] == "REASON_RECONCILIATION"
        )
    # Still the same process and the same single container, and no update was repeated.
    assert sorted(p.read_text() for p in agent.workdir.glob("meta/containers/*/record.json")) == records
    assert [c.status for c in containers(agent)] == ["running"]
    for task_id in ("proc-1", "dock-1"):
        assert sched.agent_states(task_id) == ["TASK_STARTING", "TASK_RUNNING"]
    # The recovered agent still controls them.
    driver.killTask({"value": "proc-1"})
    driver.killTask({"value": "dock-1"})
    for task_id in ("proc-1", "dock-1"):
        sched.wait_for(task_id, "TASK_KILLED")
