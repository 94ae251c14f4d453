"""bench/simagents.py against a real master-py, driven by an unmodified pymesos framework: simulated agents
register and offer their resources, answer launches (LAUNCH and LAUNCH_GROUP) with STARTING then RUNNING,
kills with KILLED, re-register with their tasks after a master restart, and unregister on exit."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.simagents import ClusterThread, SimCluster, in_thread
from paas_common.resources import Resources
from tests.support.clients import WAIT
from tests.support.masters import MasterProc
from tests.support.pymesos_fw import Framework, command_task, driving, running_master
from tests.support.servers import REPO_ROOT

AGENT_RESOURCES = "cpus:1;mem:1024;disk:1000;ports:[31000-31009]"  # ten 0.1-cpu tasks each


class Packing(Framework):
    """Fills each offer with as many queued tasks as it holds (the base class puts every task on the first
    offer), so the tasks spread over the agents; ``group`` launches each offer's batch as one task group."""

    def __init__(self, tasks: list[dict[str, Any]], group: bool = False) -> None:
        super().__init__(tasks)
        self.group = group

    def resourceOffers(self, driver: Any, offers: Any) -> None:
        self._mark("offered")
        for offer in offers:
            left, batch = Resources.from_json(offer["resources"]), []
            with self.cond:
                while self.queue and left.contains(need := Resources.from_json(self.queue[0]["resources"])):
                    left = left - need
                    batch.append({**self.queue.pop(0), "agent_id": offer.agent_id})
                self.launched += batch
            if not batch:
                driver.declineOffer(offer.id)
                continue
            self._mark("accepted")
            if self.group:
                op = {"type": "LAUNCH_GROUP", "launch_group": {"task_group": {"tasks": batch}}}
                driver.acceptOffers([offer.id], [op])
            else:
                driver.launchTasks(offer.id, batch)

    def all_in(self, state: str, task_ids: list[str]) -> bool:
        return all(state in [u["state"] for u in self.updates.get(t, [])] for t in task_ids)

    def wait_all(self, state: str, task_ids: list[str], timeout: float = WAIT) -> None:
        self.wait_until(f"not all {state}", lambda: self.all_in(state, task_ids), timeout)


def master_state(master: MasterProc) -> dict[str, Any]:
    with urllib.request.urlopen(f"{master.url}/master/state", timeout=WAIT) as r:
        doc: dict[str, Any] = json.load(r)
    return doc


def wait_state(master: MasterProc, what: str, predicate: Any, timeout: float = WAIT) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        doc = master_state(master)
        if predicate(doc):
            return doc
        assert time.monotonic() < deadline, f"{what}: /master/state {doc}"
        time.sleep(0.1)


def running_tasks(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for fw in doc["frameworks"] for t in fw["tasks"] if t["state"] == "TASK_RUNNING"]


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProc]:
    with running_master(tmp_path / "master") as m:
        yield m


@pytest.fixture
def cluster(master: MasterProc) -> Iterator[ClusterThread]:
    with in_thread(SimCluster(master.url, agents=20, resources=AGENT_RESOURCES, attributes="rack:r{i}")) as t:
        yield t


def test_hundred_tasks_run_spread_over_twenty_agents_and_some_are_killed(
    master: MasterProc, cluster: ClusterThread
) -> None:
    state = master_state(master)
    assert sorted(s["hostname"] for s in state["slaves"]) == [f"sim-{i:04d}" for i in range(1, 21)]
    assert state["activated_slaves"] == 20
    assert {s["attributes"]["rack"] for s in state["slaves"]} == {f"r{i}" for i in range(1, 21)}

    ids = [f"t{i}" for i in range(100)]
    sched = Packing([command_task(t, "sleep 1000") for t in ids])
    with driving(sched, f"{master.ip}:{master.port}"):
        sched.wait_all("TASK_RUNNING", ids)
        assert all(sched.states(t) == ["TASK_STARTING", "TASK_RUNNING"] for t in ids), sched.summary()
        cluster.run(cluster.cluster.wait_running(100, WAIT))
        spread = cluster.call(cluster.cluster.running_by_agent)
        assert sum(spread.values()) == 100 and max(spread.values()) <= 10  # no agent holds more than it has
        on_master = running_tasks(master_state(master))
        assert len(on_master) == 100
        used = {s["id"] for s in state["slaves"] if s["hostname"] in spread}
        assert {t["slave_id"] for t in on_master} == used

        killed = ids[:10]
        for t in killed:
            sched.driver.killTask({"value": t})  # type: ignore[union-attr]
        sched.wait_all("TASK_KILLED", killed)
        assert all(sched.states(t)[-1] == "TASK_KILLED" for t in killed)
        assert not any("TASK_KILLED" in sched.states(t) for t in ids[10:])
        sim = cluster.cluster
        cluster.run(sim.wait_until(lambda: sim.counts["TASK_KILLED"] == 10, WAIT))
        assert sim.running == 90
        wait_state(master, "90 running tasks", lambda d: len(running_tasks(d)) == 90)
    # The framework's TEARDOWN: the master has the agents kill the rest.
    sim = cluster.cluster
    cluster.run(sim.wait_until(lambda: sim.running == 0 and sim.counts["TASK_KILLED"] == 100, WAIT))


def test_task_group_and_health_checked_tasks_report_healthy(
    master: MasterProc, cluster: ClusterThread
) -> None:
    health = {"type": "COMMAND", "command": {"value": "true"}}
    ids = ["g1", "g2", "g3"]
    sched = Packing([{**command_task(t, "sleep 1000"), "health_check": health} for t in ids], group=True)
    info = {"capabilities": [{"type": "TASK_KILLING_STATE"}]}
    with driving(sched, f"{master.ip}:{master.port}", framework_info=info):
        sched.wait_all("TASK_RUNNING", ids)
        running = [sched.wait_for(t, "TASK_RUNNING") for t in ids]
        assert all(u["healthy"] is True for u in running)
        assert len({u["agent_id"]["value"] for u in running}) == 1  # a task group lands on one agent
        sched.driver.killTask({"value": "g1"})  # type: ignore[union-attr]
        sched.wait_for("g1", "TASK_KILLED")
        assert sched.states("g1") == ["TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_KILLED"]


def test_agents_reregister_with_their_tasks_after_a_master_restart(tmp_path: Path) -> None:
    first = MasterProc(tmp_path / "m1")
    first.start()
    second = MasterProc(tmp_path / "m2")
    second.port = first.port  # the same address: the agents come back to it
    try:
        with in_thread(SimCluster(first.url, agents=5, resources=AGENT_RESOURCES)) as cluster:
            ids = [f"r{i}" for i in range(20)]
            sched = Packing([command_task(t, "sleep 1000") for t in ids])
            with driving(sched, f"{first.ip}:{first.port}", framework_info={"failover_timeout": 600}):
                sched.wait_all("TASK_RUNNING", ids)
                before = {s["hostname"]: s["id"] for s in master_state(first)["slaves"]}
                first.kill()
                second.start()
                doc = wait_state(second, "tasks back", lambda d: len(running_tasks(d)) == 20)
                assert {s["hostname"]: s["id"] for s in doc["slaves"]} == before
                assert sorted(t["id"] for t in running_tasks(doc)) == sorted(ids)
            assert cluster.call(lambda: cluster.cluster.stats["registrations"]) == 10
    finally:
        first.kill()
        second.kill()


def test_cli_registers_agents_and_unregisters_them_on_sigterm(master: MasterProc) -> None:
    argv = [sys.executable, str(REPO_ROOT / "bench" / "simagents.py"), "--master", master.url]
    argv += ["--agents", "3", "--hostname-format", "cli-{:02d}", "--report-every", "0.2"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        doc = wait_state(master, "3 agents", lambda d: d["activated_slaves"] == 3)
        assert sorted(s["hostname"] for s in doc["slaves"]) == ["cli-01", "cli-02", "cli-03"]
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=WAIT)
        assert proc.returncode == 0, out
        assert "agents 3/3 subscribed" in out and "stopped" in out
        wait_state(master, "agents unregistered", lambda d: not d["slaves"])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=WAIT)
