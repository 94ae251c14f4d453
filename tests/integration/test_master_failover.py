"""Master failover with work in flight: two master-py on ZooKeeper, an agent-py running a Docker task and
a command task for an unmodified pymesos framework; kill -9 the leader.  The standby takes over from the
registry, the agent re-registers with its tasks, the framework re-subscribes with its id, and no task is
lost, restarted or duplicated.  (The time it takes is a figure of bench/master_failover.py.)"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.agents import AgentProc
from tests.support.clients import WAIT
from tests.support.docker import require_engine
from tests.support.masters import MasterProc
from tests.support.pymesos_fw import Framework, command_task, docker_task, driving
from tests.support.servers import ZkServer

FLAGS = ("--zk_session_timeout", "2secs", "--allocation_interval", "0.2secs")


def get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as r:
        doc: dict[str, Any] = json.loads(r.read())
        return doc


def wait_for(what: str, probe: Any, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except OSError as e:
            last = e
        else:
            if last:
                return last
        time.sleep(0.1)
    raise AssertionError(f"{what}: last seen {last!r}")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[ZkServer, list[MasterProc], AgentProc]]:
    require_engine()
    zk = ZkServer("zk_py", tmp_path / "zk", extra_cfg={"tickTime": "500"})
    masters: list[MasterProc] = []
    agent: AgentProc | None = None
    try:
        zk.start()
        url = f"zk://{zk.hosts}/mesos"
        for name in ("m1", "m2"):
            m = MasterProc(tmp_path / name, zk=url, flags=FLAGS)
            m.start()
            masters.append(m)
        agent = AgentProc(tmp_path / "agent", masters[0], master_url=url)
        agent.start()
        yield zk, masters, agent
    finally:
        if agent is not None:
            agent.cleanup()
        for m in masters:
            m.kill()
        zk.kill()


def leader_of(masters: list[MasterProc]) -> MasterProc:
    def probe() -> MasterProc | None:
        for m in masters:
            if m.running() and get(f"{m.url}/metrics/snapshot").get("master/elected") == 1:
                return m
        return None

    found: MasterProc = wait_for("a leading master", probe)
    return found


def test_kill_leader_keeps_every_task(
    cluster: tuple[ZkServer, list[MasterProc], AgentProc], tmp_path: Path
) -> None:
    zk, masters, agent = cluster
    sched = Framework(
        [
            docker_task("web", "sleep 300", "cpus:0.2;mem:64"),
            command_task("batch", "sleep 300", "cpus:0.2;mem:32"),
        ]
    )
    info = {"failover_timeout": 300.0, "checkpoint": True}
    with driving(sched, f"zk://{zk.hosts}/mesos", framework_info=info):
        for tid in ("web", "batch"):
            sched.wait_for(tid, "TASK_RUNNING")
        old = leader_of(masters)
        before = get(f"{old.url}/master/state")
        (fw_before,) = before["frameworks"]
        agent_id = before["slaves"][0]["id"]
        containers = agent.containers()
        assert len(containers) == 2

        old.kill()
        new = leader_of([m for m in masters if m is not old])

        def recovered() -> dict[str, Any] | None:
            doc = get(f"{new.url}/master/state")
            slaves = [s for s in doc["slaves"] if s["active"]]
            fws = [f for f in doc["frameworks"] if f["connected"]]
            if len(slaves) == 1 and len(fws) == 1 and len(fws[0]["tasks"]) == 2:
                return doc
            return None

        after = wait_for("the agent and the framework back on the new leader", recovered)
        (fw,) = after["frameworks"]
        assert fw["id"] == fw_before["id"] and after["slaves"][0]["id"] == agent_id
        assert sorted((t["id"], t["state"]) for t in fw["tasks"]) == [
            ("batch", "TASK_RUNNING"),
            ("web", "TASK_RUNNING"),
        ]
        assert after["slaves"][0]["used_resources"]["cpus"] == pytest.approx(0.4)
        assert agent.containers() == containers  # the same container and process, nothing relaunched
        # The framework hears nothing bad, and reconciliation through the new leader says RUNNING.
        sched.reconcile()
        for tid in ("web", "batch"):
            sched.wait_for(tid, "TASK_RUNNING", since=len(sched.states(tid)) - 1)
            assert "TASK_LOST" not in sched.states(tid) and "TASK_FAILED" not in sched.states(tid)
        # A new task still launches through the new leader (offers account for the adopted tasks).
        sched.add(command_task("after", "true"))
        sched.wait_for("after", "TASK_FINISHED")
