"""marathon-py on the whole stack (zk_py, master-py, two agent-py, Docker): deploy, scale, rolling restart
keeping capacity (from the event stream), 409 on a locked app and force, rollback, constraints across agents
(issue 5, acceptance 3)."""

from __future__ import annotations

import json
import math
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from marathon_py.instances import instance_id_of
from tests.support.docker import TASK_IMAGE, require_engine
from tests.support.marathons import MarathonProc, Stack, marathon_stack

PYTHON_WEB = "exec python3 -m http.server $PORT0 --bind $HOST"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_engine()
    with marathon_stack(tmp_path_factory.mktemp("e2e"), agents=2, attributes=("rack:r1", "rack:r2")) as s:
        yield s


@pytest.fixture
def marathon(stack: Stack) -> Iterator[MarathonProc]:
    m = stack.marathon
    yield m
    for app in m.get("/v2/apps")["apps"]:  # each test leaves nothing behind
        m.request("DELETE", f"/v2/apps{app['id']}?force=true")
    m.wait_for("apps gone", lambda: m.get("/v2/apps")["apps"] == [] and m.deployments_done())


def web_app(app_id: str, instances: int, **extra: Any) -> dict[str, Any]:
    """A process task serving HTTP on its port, with a Marathon HTTP health check."""
    return {
        "id": app_id,
        "cmd": PYTHON_WEB,
        "cpus": 0.1,
        "mem": 32,
        "instances": instances,
        "portDefinitions": [{"port": 0, "name": "http"}],
        "healthChecks": [
            {"protocol": "HTTP", "portIndex": 0, "path": "/", "intervalSeconds": 1, "timeoutSeconds": 2,
             "gracePeriodSeconds": 10, "maxConsecutiveFailures": 3}
        ],
        **extra,
    }  # fmt: skip


def deploy(m: MarathonProc, app: dict[str, Any]) -> str:
    status, headers, body = m.request("POST", "/v2/apps", app)
    assert status == 201, body
    assert headers["Location"] == app["id"]  # Marathon: ``Location: /<id>`` (reference §2.1)
    return headers["Marathon-Deployment-Id"]


def counts(m: MarathonProc, app_id: str) -> dict[str, Any]:
    app: dict[str, Any] = m.get(f"/v2/apps{app_id}?embed=app.counts&embed=app.tasks")["app"]
    return app


def wait_healthy(m: MarathonProc, app_id: str, n: int, timeout: float = 90.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        app = counts(m, app_id)
        ok = app["tasksRunning"] == n and app["tasksHealthy"] == n and len(app["tasks"]) == n
        return app if ok and m.deployments_done() else None

    found: dict[str, Any] = m.wait_for(f"{app_id}: {n} healthy", done, timeout)
    return found


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=3) as r:
        return r.status == 200


class EventRecorder:
    """Reads ``/v2/events`` on a thread: every event as parsed JSON, in order."""

    def __init__(self, m: MarathonProc) -> None:
        self.events: list[dict[str, Any]] = []
        self._resp = urllib.request.urlopen(
            urllib.request.Request(f"{m.url}/v2/events", headers={"Accept": "text/event-stream"}), timeout=120
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for raw in self._resp:
                line = raw.decode().strip()
                if line.startswith("data:"):
                    self.events.append(json.loads(line[5:]))
        except (OSError, ValueError, AttributeError):  # AttributeError: http.client after close()
            return

    def close(self) -> None:
        self._resp.close()


def capacity_over_time(events: list[dict[str, Any]], app_id: str, start: set[str]) -> list[tuple[int, int]]:
    """(healthy, running) instances of ``app_id`` after each event, from ``start`` (healthy running ids):
    an instance counts as running from TASK_RUNNING until a terminal update or a kill, and as healthy
    while running and its last health change said alive."""
    running, healthy = set(start), set(start)
    timeline = []
    for e in events:
        if (e.get("appId") or e.get("runSpecId")) != app_id:
            continue
        if e["eventType"] == "status_update_event":
            iid = instance_id_of(e["taskId"]) or e["taskId"]
            if e["taskStatus"] == "TASK_RUNNING":
                running.add(iid)
            else:
                running.discard(iid)
                healthy.discard(iid)
        elif e["eventType"] == "health_status_changed_event":
            (healthy.add if e["alive"] else healthy.discard)(e["instanceId"])
        elif e["eventType"] == "instance_changed_event" and e.get("condition") == "Killing":
            healthy.discard(e["instanceId"])  # a kill in flight no longer serves
        else:
            continue
        timeline.append((len(healthy & running), len(running)))
    return timeline


def test_docker_app_deploys_scales_and_serves(stack: Stack, marathon: MarathonProc) -> None:
    app = {
        "id": "/e2e/docker-web",
        "instances": 2,
        "cpus": 0.1,
        "mem": 32,
        "cmd": "exec httpd -f -p 8080 -h /var/www",
        "container": {
            "type": "DOCKER",
            "docker": {"image": TASK_IMAGE},
            "portMappings": [{"containerPort": 8080, "hostPort": 0, "name": "http"}],
        },
        "networks": [{"mode": "container/bridge"}],
        "healthChecks": [{"protocol": "HTTP", "portIndex": 0, "path": "/index.html", "intervalSeconds": 1}],
    }
    deploy(marathon, app)
    got = wait_healthy(marathon, "/e2e/docker-web", 2)
    for task in got["tasks"]:
        assert http_ok(f"http://{task['host']}:{task['ports'][0]}/index.html")
    owned = sum(len(a.containers()) for a in stack.agents)
    assert owned == 2

    status, _, body = marathon.request("PUT", "/v2/apps/e2e/docker-web", {"instances": 4})
    assert status == 200 and body["deploymentId"]
    wait_healthy(marathon, "/e2e/docker-web", 4)
    status, _, body = marathon.request("PUT", "/v2/apps/e2e/docker-web", {"instances": 1})
    assert status == 200
    wait_healthy(marathon, "/e2e/docker-web", 1)
    marathon.wait_for("3 containers gone", lambda: sum(len(a.containers()) for a in stack.agents) == 1)


def test_rolling_restart_never_goes_under_minimum_health_capacity(marathon: MarathonProc) -> None:
    strategy = {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.0}
    deploy(marathon, web_app("/e2e/rolling", 4, upgradeStrategy=strategy))
    before = wait_healthy(marathon, "/e2e/rolling", 4)
    old_ids = {t["id"] for t in before["tasks"]}
    recorder = EventRecorder(marathon)
    try:
        status, _, body = marathon.request("POST", "/v2/apps/e2e/rolling/restart")
        assert status == 200 and body["deploymentId"]
        after = wait_healthy(marathon, "/e2e/rolling", 4, timeout=120)
        # the API shows the target state at once; the events follow once the batch is in ZooKeeper
        marathon.wait_for(
            "deployment_success on the stream",
            lambda: any(e["eventType"] == "deployment_success" for e in recorder.events),
            timeout=10,
        )
    finally:
        recorder.close()
    assert not old_ids & {t["id"] for t in after["tasks"]}, "every task was replaced"
    start = {instance_id_of(t) or t for t in old_ids}
    timeline = capacity_over_time(recorder.events, "/e2e/rolling", start)
    assert timeline, "the restart produced events"
    floor = math.ceil(0.5 * 4)
    assert min(h for h, _ in timeline) >= floor, timeline
    assert max(r for _, r in timeline) <= 4, timeline  # maximumOverCapacity 0: never more than 4


def test_locked_app_is_409_until_forced(marathon: MarathonProc) -> None:
    deploy(marathon, web_app("/e2e/locked", 1))
    wait_healthy(marathon, "/e2e/locked", 1)
    never_healthy = web_app("/e2e/locked", 1)
    never_healthy["healthChecks"][0]["path"] = "/no-such-page"  # 404: the new version never turns healthy
    status, _, body = marathon.request("PUT", "/v2/apps/e2e/locked", never_healthy)
    assert status == 200
    stuck = body["deploymentId"]

    status, _, body = marathon.request("PUT", "/v2/apps/e2e/locked", {"instances": 2})
    assert status == 409
    assert body["message"].startswith("App is locked by one or more deployments.")
    assert body["deployments"] == [{"id": stuck}]
    assert [d["id"] for d in marathon.get("/v2/deployments")] == [stuck]

    status, _, body = marathon.request("PUT", "/v2/apps/e2e/locked?force=true", {"instances": 2})
    assert status == 200 and body["deploymentId"] != stuck
    assert stuck not in [d["id"] for d in marathon.get("/v2/deployments")]


def test_rollback_of_a_stuck_deployment_restores_the_previous_version(marathon: MarathonProc) -> None:
    deploy(marathon, web_app("/e2e/rollback", 2, env={"COLOUR": "blue"}))
    wait_healthy(marathon, "/e2e/rollback", 2)
    bad = web_app("/e2e/rollback", 2, env={"COLOUR": "green"})
    bad["healthChecks"][0]["path"] = "/no-such-page"
    status, _, body = marathon.request("PUT", "/v2/apps/e2e/rollback", bad)
    assert status == 200
    stuck = body["deploymentId"]
    status, _, body = marathon.request("DELETE", f"/v2/deployments/{stuck}")
    assert status == 200 and body["deploymentId"] != stuck
    got = wait_healthy(marathon, "/e2e/rollback", 2)
    assert got["env"] == {"COLOUR": "blue"}
    versions = marathon.get("/v2/apps/e2e/rollback/versions")["versions"]
    assert len(versions) >= 3  # blue, green, blue again


def test_constraints_are_honoured_across_agents(stack: Stack, marathon: MarathonProc) -> None:
    hosts = {a.ip for a in stack.agents}
    deploy(marathon, {**web_app("/e2e/unique", 2), "constraints": [["hostname", "UNIQUE"]]})
    got = wait_healthy(marathon, "/e2e/unique", 2)
    assert {t["host"] for t in got["tasks"]} == hosts

    deploy(marathon, {**web_app("/e2e/rack2", 3), "constraints": [["rack", "CLUSTER", "r2"]]})
    got = wait_healthy(marathon, "/e2e/rack2", 3)
    assert {t["host"] for t in got["tasks"]} == {stack.agents[1].ip}

    status, _, _ = marathon.request("PUT", "/v2/apps/e2e/unique", {"instances": 3})
    assert status == 200

    def waiting() -> bool:
        queue = marathon.get("/v2/queue")["queue"]
        return any(q["app"]["id"] == "/e2e/unique" and q["count"] == 1 for q in queue)

    marathon.wait_for("the third UNIQUE instance waits in the queue", waiting)
    assert counts(marathon, "/e2e/unique")["tasksRunning"] == 2
