"""Failover of marathon-py mid-deployment (issue 5, acceptance 4): kill -9 the leader while a rolling restart
runs; the standby takes over from ZooKeeper, re-subscribes with the same framework id, resumes the stored
deployment and completes it; no instance is lost or duplicated."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_marathon_e2e import deploy, wait_healthy, web_app
from tests.support.marathons import MarathonProc, Stack, marathon_stack

APP = "/failover/web"
INSTANCES = 4


@pytest.fixture
def stack(tmp_path: Any) -> Iterator[Stack]:
    with marathon_stack(tmp_path, agents=2, marathons=2) as s:
        yield s


def mesos_tasks(stack: Stack) -> list[dict[str, Any]]:
    """The master's view of every task of every framework (what really runs)."""
    with urllib.request.urlopen(f"{stack.master.url}/master/tasks?limit=1000", timeout=5) as r:
        tasks: list[dict[str, Any]] = json.load(r)["tasks"]
    return tasks


def running_ids(stack: Stack) -> set[str]:
    return {t["id"] for t in mesos_tasks(stack) if t["state"] == "TASK_RUNNING"}


def test_standby_completes_a_deployment_after_the_leader_is_killed(stack: Stack) -> None:
    leader = stack.leader()
    standby = next(m for m in stack.marathons if m is not leader)
    framework_id = leader.get("/v2/info")["frameworkId"]
    strategy = {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 0.25}  # one at a time
    deploy(leader, web_app(APP, INSTANCES, upgradeStrategy=strategy))
    before = {t["id"] for t in wait_healthy(leader, APP, INSTANCES)["tasks"]}
    assert running_ids(stack) == before

    status, _, body = leader.request("POST", f"/v2/apps{APP}/restart")
    assert status == 200
    deployment = body["deploymentId"]

    def replaced_some() -> bool:
        now = {t["id"] for t in leader.get(f"/v2/apps{APP}/tasks")["tasks"] if t["state"] == "TASK_RUNNING"}
        return 1 <= len(now - before) < INSTANCES

    leader.wait_for("the restart under way", replaced_some)
    leader.kill()  # SIGKILL: no abdication, its ZooKeeper session just expires

    new_leader = stack.leader(timeout=60)
    assert new_leader is standby
    assert new_leader.get("/v2/info")["frameworkId"] == framework_id  # re-subscribed, not a new framework
    stored = [d["id"] for d in new_leader.get("/v2/deployments")]
    assert stored in ([deployment], [])  # resumed (or already done by the time we looked)

    after = wait_healthy(new_leader, APP, INSTANCES, timeout=120)
    after_ids = {t["id"] for t in after["tasks"]}
    assert not before & after_ids, "every old instance was replaced"
    # Mesos runs exactly the instances Marathon knows: none lost, none duplicated or orphaned
    new_leader.wait_for("Mesos runs exactly the app's tasks", lambda: running_ids(stack) == after_ids)
    assert len(after_ids) == INSTANCES
    frameworks = {t["framework_id"] for t in mesos_tasks(stack) if t["state"] == "TASK_RUNNING"}
    assert frameworks == {framework_id}


def test_standby_proxies_the_api_to_the_leader(stack: Stack) -> None:
    leader = stack.leader()
    standby: MarathonProc = next(m for m in stack.marathons if m is not leader)
    status, headers, body = standby.request("POST", "/v2/apps", web_app("/failover/proxied", 1))
    assert status == 201, body
    assert headers["X-Marathon-Leader"] == leader.url
    assert leader.get("/v2/apps/failover/proxied")["app"]["id"] == "/failover/proxied"
    status, headers, _ = standby.request("GET", "/v2/info")  # proxied like everything else (§1.2)
    assert status == 200 and headers["X-Marathon-Via"].endswith(f"{standby.ip}:{standby.port}")
