"""agent-py end to end: real master-py, real agent-py, an unmodified pymesos scheduler.

Command and Docker tasks run to their terminal states through the agent protocol (updates resent until
acknowledged), a SIGKILLed agent recovers its running tasks without duplicating them, and kills keep
their grace period (the KILL's kill policy, else the task's).  A stand-in master (``ScriptedMaster``)
covers what a framework cannot make master-py send: a KILL_TASK for a task the agent does not have, and
a framework with TASK_KILLING_STATE.  Every process and container is removed at teardown, also when a
test fails half-way.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.agents import (
    AgentProc,
    ScriptedMaster,
    agent_of,
    agent_updates,
    kill_with_policy,
    launcher,
)
from tests.support.docker import require_engine
from tests.support.pymesos_fw import command_task, docker_task, running_master

Launch = Callable[[list[dict[str, Any]]], tuple[Any, Any]]
RESOURCES = "cpus:0.2;mem:64"


def states(sched: Any, task_id: str) -> list[str]:
    """The states the agent reported for the task, each update once."""
    return [u["state"] for u in agent_updates(sched, task_id)]


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProc]:
    with running_master(tmp_path / "master") as master, agent_of(tmp_path / "agent", master) as a:
        yield a


@pytest.fixture
def launch(agent: AgentProc) -> Iterator[Launch]:
    with launcher(agent.master) as start:
        yield start


def test_command_task_finishes_with_output_in_sandbox(launch: Launch, agent: AgentProc) -> None:
    sched, _ = launch([command_task("echo-1", "echo hi", RESOURCES)])
    sched.wait_for("echo-1", "TASK_FINISHED")
    assert states(sched, "echo-1") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    assert (agent.sandbox("echo-1") / "stdout").read_text() == "hi\n"
    # The last update was acknowledged: the agent forgets the task.
    agent.wait_until("checkpoint not removed", lambda: not list(agent.workdir.glob("meta/tasks/*/*.json")))


def test_failing_command_reports_its_exit_status(launch: Launch) -> None:
    sched, _ = launch([command_task("fail-1", "exit 3", RESOURCES)])
    failed = sched.wait_for("fail-1", "TASK_FAILED")
    assert failed["message"] == "Command exited with status 3"


def test_docker_task_is_killed_and_its_container_removed(launch: Launch, agent: AgentProc) -> None:
    require_engine()
    sched, driver = launch([docker_task("sleepy-1", "sleep 30", RESOURCES)])
    sched.wait_for("sleepy-1", "TASK_RUNNING")
    assert len(agent.containers()) == 1
    driver.killTask({"value": "sleepy-1"})
    sched.wait_for("sleepy-1", "TASK_KILLED")
    agent.wait_until("container not removed", lambda: agent.containers() == [])


def test_docker_task_with_missing_image_fails_to_launch(launch: Launch) -> None:
    require_engine()
    ghost = docker_task("ghost-1", "true", RESOURCES)
    ghost["container"]["docker"]["image"] = "baremetal-paas/no-such-image:latest"
    sched, _ = launch([ghost])
    failed = sched.wait_for("ghost-1", "TASK_FAILED")
    assert failed["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert "no-such-image" in failed["message"]


def test_killed_agent_recovers_running_tasks(launch: Launch, agent: AgentProc) -> None:
    require_engine()
    tasks = [command_task("proc-1", "sleep 60", RESOURCES), docker_task("dock-1", "sleep 60", RESOURCES)]
    sched, driver = launch(tasks)
    for task_id in ("proc-1", "dock-1"):
        sched.wait_for(task_id, "TASK_RUNNING")
    # Both RUNNING updates acknowledged (nothing pending), then the agent dies hard and comes back.
    agent.wait_until(
        "updates not acknowledged",
        lambda: all('"pending": []' in p.read_text() for p in agent.workdir.glob("meta/tasks/*/*.json")),
    )
    before = agent.containers()
    agent.kill()
    agent.start()
    seen = {t: len(sched.states(t)) for t in ("proc-1", "dock-1")}
    driver.reconcileTasks([])
    for task_id in ("proc-1", "dock-1"):
        assert (
            sched.wait_for(task_id, "TASK_RUNNING", since=seen[task_id])["reason"] == "REASON_RECONCILIATION"
        )
    # Still the same process and the same single container, and no update was repeated.
    assert agent.containers() == before and len(before) == 2
    for task_id in ("proc-1", "dock-1"):
        assert states(sched, task_id) == ["TASK_STARTING", "TASK_RUNNING"]
    # The recovered agent still controls them.
    driver.killTask({"value": "proc-1"})
    driver.killTask({"value": "dock-1"})
    for task_id in ("proc-1", "dock-1"):
        sched.wait_for(task_id, "TASK_KILLED")


# ---------------------------------------------------------------- kill grace

# On SIGTERM (the shell runs the trap once the interrupted `sleep` returns) take 4 s, longer than Mesos'
# default 3 s grace, then say so and exit 0.  Both write `ready` once their trap is set: a kill that came
# earlier would find the shell's default action.
TRAPPER = "trap 'sleep 4; echo graceful > trapped; exit 0' TERM; touch ready; while :; do sleep 0.1; done"
IGNORER = "trap '' TERM; touch ready; while :; do sleep 0.1; done"  # `sleep` inherits the ignored SIGTERM


def wait_ready(agent: AgentProc, task_id: str) -> None:
    agent.wait_until(
        f"{task_id} not ready", lambda: any((s / "ready").exists() for s in agent.sandboxes(task_id))
    )


def with_kill_policy(task: dict[str, Any], grace_seconds: float) -> dict[str, Any]:
    return {**task, "kill_policy": {"grace_period": {"nanoseconds": int(grace_seconds * 1e9)}}}


def test_task_kill_policy_gives_a_trapping_task_its_grace(launch: Launch, agent: AgentProc) -> None:
    sched, driver = launch([with_kill_policy(command_task("trap-1", TRAPPER, RESOURCES), 15)])
    sched.wait_for("trap-1", "TASK_RUNNING")
    wait_ready(agent, "trap-1")
    driver.killTask({"value": "trap-1"})  # no kill policy in the call: the task's applies
    killed = sched.wait_for("trap-1", "TASK_KILLED")
    assert killed["message"] == "Command exited with status 0"
    assert (agent.sandbox("trap-1") / "trapped").read_text() == "graceful\n"


def test_kill_policy_of_the_call_wins_and_ends_in_sigkill(launch: Launch, agent: AgentProc) -> None:
    # The task would allow an hour; the KILL allows one second, which the task ignores.
    sched, driver = launch([with_kill_policy(command_task("stubborn-1", IGNORER, RESOURCES), 3600)])
    sched.wait_for("stubborn-1", "TASK_RUNNING")
    wait_ready(agent, "stubborn-1")
    kill_with_policy(driver, "stubborn-1", 1.0)
    killed = sched.wait_for("stubborn-1", "TASK_KILLED")
    assert killed["message"] == "Command terminated by SIGKILL"
    assert states(sched, "stubborn-1") == ["TASK_STARTING", "TASK_RUNNING", "TASK_KILLED"]


# ---------------------------------------------------------------- through a scripted master


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[tuple[ScriptedMaster, AgentProc]]:
    with ScriptedMaster() as master, agent_of(tmp_path / "agent", master) as a:
        yield master, a


def test_kill_of_a_task_the_agent_does_not_have_reports_it_lost(
    scripted: tuple[ScriptedMaster, AgentProc],
) -> None:
    master, agent = scripted
    master.kill_task("fw-1", "ghost-1")
    lost = master.wait_update("no update for ghost-1", lambda u: u["task_id"]["value"] == "ghost-1")
    assert lost["state"] == "TASK_LOST" and lost["source"] == "SOURCE_AGENT"
    assert lost["reason"] == "REASON_EXECUTOR_TERMINATED" and lost["message"] == "Cannot find executor"
    assert lost["framework_id"] == {"value": "fw-1"} and lost["uuid"]
    # Acknowledged (by the scripted master at once): the agent forgets it, and it never showed as a task.
    agent.wait_until("stand-in not forgotten", lambda: not list(agent.workdir.glob("meta/tasks/*/*.json")))
    assert agent.get_json("/state")["frameworks"] == []


def test_partition_aware_framework_with_killing_state(scripted: tuple[ScriptedMaster, AgentProc]) -> None:
    master, agent = scripted
    capabilities = [{"type": "TASK_KILLING_STATE"}, {"type": "PARTITION_AWARE"}]
    framework = {"id": {"value": "fw-2"}, "name": "aware", "user": "root", "capabilities": capabilities}
    master.run_task(framework, with_kill_policy(command_task("aware-1", IGNORER, RESOURCES), 3600))
    master.wait_update("not running", lambda u: u["state"] == "TASK_RUNNING")
    wait_ready(agent, "aware-1")
    master.kill_task("fw-2", "aware-1", grace_seconds=0.5)
    killed = master.wait_update("not killed", lambda u: u["state"] == "TASK_KILLED")
    assert killed["message"] == "Command terminated by SIGKILL"
    assert master.states("aware-1") == ["TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_KILLED"]
    # A task of this framework the agent never had: TASK_DROPPED for a partition-aware framework... once
    # the agent knows the framework (from one of its tasks, still here until its last update is acked).
    master.run_task(framework, command_task("aware-2", "sleep 60", RESOURCES))
    master.wait_update(
        "aware-2 not running", lambda u: u["task_id"]["value"] == "aware-2" and u["state"] == "TASK_RUNNING"
    )
    master.kill_task("fw-2", "ghost-2")
    dropped = master.wait_update("no update for ghost-2", lambda u: u["task_id"]["value"] == "ghost-2")
    assert dropped["state"] == "TASK_DROPPED"
    master.kill_task("fw-2", "aware-2", grace_seconds=0)
    master.wait_update(
        "aware-2 not killed", lambda u: u["task_id"]["value"] == "aware-2" and u["state"] == "TASK_KILLED"
    )


def test_sigusr1_drains_the_agent_and_the_master_forgets_it(tmp_path: Path) -> None:
    """As Mesos' agent on SIGUSR1: every task is killed (the framework hears TASK_KILLED), the agent
    unregisters and exits 0, and the master no longer lists it; a restart registers a new agent."""
    with running_master(tmp_path / "m") as master, agent_of(tmp_path / "a", master) as agent:
        first_id = agent.get_json("/state")["id"]
        with launcher(master) as launch:
            sched, _driver = launch([command_task("long", "sleep 300")])
            sched.wait_for("long", "TASK_RUNNING")
            assert agent.drain() == 0
            sched.wait_for("long", "TASK_KILLED")
            with urllib.request.urlopen(f"{master.url}/master/slaves", timeout=5) as r:
                assert json.loads(r.read())["slaves"] == []
        assert not (agent.workdir / "meta" / "agent_id").exists()
        agent.start()
        assert agent.get_json("/state")["id"] not in ("", first_id)
