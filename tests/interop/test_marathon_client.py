"""The unmodified PyPI ``marathon`` client (0.13.0, thefactory/marathon-python) drives marathon-py on the
whole stack (zk_py, master-py, agent-py, plain command tasks): apps, groups, tasks, deployments, queue,
info and the event stream, and every object it builds from our answers parses (issue 5, acceptance 2;
reference §9.1, §3).

marathon-python 0.13 predates Python 3.10: its JSON encoders test ``collections.Iterable``, which 3.10
removed, so serialising any nested model (an app's health checks, a group's apps) fails before a request is
sent.  The module fixture puts the old alias back in ``collections`` for these tests; the client itself is
untouched.
"""

from __future__ import annotations

import collections
import collections.abc
import json
import threading
import time
from collections.abc import Callable, Collection, Iterator
from datetime import datetime
from typing import Any

import pytest
import requests
from marathon import MarathonApp, MarathonClient
from marathon.exceptions import ConflictError, MarathonHttpError, NotFoundError
from marathon.models import MarathonDeployment, MarathonGroup, MarathonInfo, MarathonQueueItem, MarathonTask
from marathon.models.app import MarathonHealthCheck, PortDefinition
from marathon.models.deployment import MarathonDeploymentPlan, MarathonDeploymentStep
from marathon.models.events import (
    MarathonDeploymentInfo,
    MarathonDeploymentSuccess,
    MarathonEvent,
    MarathonHealthStatusChangedEvent,
    MarathonStatusUpdateEvent,
)

from tests.support.marathons import MarathonProc, Stack, marathon_stack

WEB = "exec python3 -m http.server $PORT0 --bind $HOST"
SLEEP = "sleep 600"
HOST = "127.0.0.1"  # the only agent's hostname (marathon_stack)
PORTS = range(31000, 31201)  # the agent's port range
STREAM_READ_TIMEOUT = 30.0  # > the 10 s heartbeat, so a quiet stream never times out, a dead one does


@pytest.fixture(scope="module", autouse=True)
def iterable_alias() -> Iterator[None]:
    """``collections.Iterable`` as Python < 3.10 had it, which marathon-python's encoders need."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(collections, "Iterable", collections.abc.Iterable, raising=False)
        yield


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with marathon_stack(tmp_path_factory.mktemp("client")) as s:
        yield s


@pytest.fixture
def m(stack: Stack) -> MarathonProc:
    return stack.marathon


@pytest.fixture
def client(m: MarathonProc) -> Iterator[MarathonClient]:
    """A client on marathon-py; whatever a test leaves behind is removed (through the client) afterwards."""
    c = MarathonClient(m.url, timeout=10)
    yield c
    for group in c.list_groups():
        c.delete_group(group.id, force=True)
    for app in c.list_apps():
        c.delete_app(app.id, force=True)
    m.wait_for("everything removed", lambda: not c.list_apps() and not c.list_deployments())


# -- helpers -------------------------------------------------------------------------------------------------


def sleeper(instances: int = 1, **extra: Any) -> MarathonApp:
    return MarathonApp(cmd=SLEEP, cpus=0.1, mem=32, instances=instances, **extra)


def health_check(path: str = "/", failures: int = 3) -> MarathonHealthCheck:
    return MarathonHealthCheck(
        protocol="HTTP", port_index=0, path=path, interval_seconds=1, timeout_seconds=2,
        grace_period_seconds=10, max_consecutive_failures=failures,
    )  # fmt: skip


def web(instances: int = 1, path: str = "/", failures: int = 3, **extra: Any) -> MarathonApp:
    """A process serving HTTP on its port with an HTTP health check on ``path``."""
    return MarathonApp(
        cmd=WEB, cpus=0.1, mem=32, instances=instances,
        port_definitions=[PortDefinition(port=0, name="http")],
        health_checks=[health_check(path, failures)], **extra,
    )  # fmt: skip


def settled(
    m: MarathonProc,
    c: MarathonClient,
    app_id: str,
    running: int,
    *,
    healthy: bool = False,
    without: Collection[str] = (),
) -> MarathonApp:
    """The app (tasks embedded) once exactly ``running`` tasks run (all healthy if asked), none of them in
    ``without`` (killed or replaced ones), and no deployment touches it."""

    def check() -> MarathonApp | None:
        app = c.get_app(app_id, embed_tasks=True, embed_counts=True)
        ok = app.tasks_running == running and len(app.tasks) == running and not app.deployments
        ok = ok and not task_ids(app) & set(without)
        return app if ok and (not healthy or app.tasks_healthy == running) else None

    found: MarathonApp = m.wait_for(f"{app_id}: {running} running", check)
    return found


def gone(c: MarathonClient, app_id: str) -> bool:
    try:
        c.get_app(app_id)
    except NotFoundError:
        return True
    return False


def task_ids(app: MarathonApp) -> set[str]:
    return {t.id for t in app.tasks}


def check_task(task: MarathonTask, app_id: str) -> None:
    assert isinstance(task, MarathonTask) and task.app_id == app_id and task.state == "TASK_RUNNING"
    assert task.host == HOST and task.slave_id and task.version
    assert task.ports and all(p in PORTS for p in task.ports)
    # agent-py reports the agent's IP for tasks without a network of their own, as Mesos does
    assert [(a.ip_address, a.protocol) for a in task.ip_addresses] == [(HOST, "IPv4")]
    assert isinstance(task.staged_at, datetime) and isinstance(task.started_at, datetime)


# -- apps ----------------------------------------------------------------------------------------------------


def test_create_list_get_app_with_health_check(m: MarathonProc, client: MarathonClient) -> None:
    created = client.create_app("/client/web", web(labels={"tier": "front"}))
    assert isinstance(created, MarathonApp) and created.id == "/client/web"
    assert created.tasks_running == 0 and len(created.deployments) == 1
    with pytest.raises(ConflictError) as conflict:
        client.create_app("/client/web", web())
    assert conflict.value.status_code == 409 and "already exists" in conflict.value.error_message

    app = settled(m, client, "/client/web", 1, healthy=True)
    assert (app.tasks_staged, app.tasks_healthy, app.tasks_unhealthy) == (0, 1, 0)
    assert app.labels == {"tier": "front"} and app.cmd == WEB and app.mem == 32
    assert app.health_checks[0].protocol == "HTTP" and app.health_checks[0].path == "/"
    assert app.port_definitions[0].name == "http" and app.version
    assert isinstance(app.version_info.last_config_change_at, datetime)
    [task] = app.tasks
    check_task(task, "/client/web")
    [result] = task.health_check_results
    assert result.alive is True and result.consecutive_failures == 0 and result.instance_id
    assert isinstance(result.first_success, datetime)

    listed = client.list_apps(
        embed_tasks=True, embed_counts=True, embed_deployments=True, embed_readiness=True,
        embed_last_task_failure=True, embed_failures=True,
    )  # fmt: skip
    [item] = [a for a in listed if a.id == "/client/web"]
    assert item.tasks_running == 1 and task_ids(item) == {task.id}
    with pytest.raises(
        TypeError, match="tasks_stats"
    ):  # Marathon's key is ``tasksStats``; 0.13 knows none (§9.1)
        client.list_apps(embed_task_stats=True)
    assert [a.id for a in client.list_apps(app_id="client/we")] == ["/client/web"]
    assert [a.id for a in client.list_apps(cmd="http.server")] == ["/client/web"]
    assert [a.id for a in client.list_apps(label="tier==front")] == ["/client/web"]
    assert client.list_apps(label="tier==back") == []
    assert [a.id for a in client.list_apps(instances=1)] == ["/client/web"]  # the client's own filter
    [endpoint] = [e for e in client.list_endpoints() if e.app_id == "/client/web"]
    assert (endpoint.host, endpoint.task_id, endpoint.task_port) == (HOST, task.id, task.ports[0])

    assert "deploymentId" in client.delete_app("/client/web")
    m.wait_for("/client/web deleted", lambda: gone(client, "/client/web"))
    with pytest.raises(NotFoundError):
        client.get_app("/client/web")


def test_scale_update_versions_restart_rollback(m: MarathonProc, client: MarathonClient) -> None:
    app_id = "/client/sleep"
    client.create_app(app_id, sleeper())
    first = settled(m, client, app_id, 1)

    result = client.scale_app(app_id, instances=3)
    assert set(result) >= {"deploymentId", "version"}
    settled(m, client, app_id, 3)
    client.scale_app(app_id, delta=-1)
    scaled = settled(m, client, app_id, 2)
    assert scaled.instances == 2

    client.update_app(app_id, MarathonApp(cmd="sleep 601"), force=True)
    updated = settled(m, client, app_id, 2)
    assert updated.cmd == "sleep 601" and not task_ids(updated) & task_ids(scaled)
    assert {t.version for t in updated.tasks} == {updated.version}

    versions = client.list_versions(app_id)
    assert updated.version in versions and first.version in versions
    old = client.get_version(app_id, first.version)
    assert isinstance(old, MarathonApp) and (old.cmd, old.instances) == (SLEEP, 1)

    restarted = client.restart_app(app_id)
    assert set(restarted) >= {"deploymentId", "version"}
    after_restart = settled(m, client, app_id, 2)
    assert not task_ids(after_restart) & task_ids(updated) and after_restart.cmd == "sleep 601"

    client.rollback_app(app_id, first.version)
    rolled = settled(m, client, app_id, 1)
    assert (rolled.cmd, rolled.instances) == (SLEEP, 1)


def test_kill_tasks(m: MarathonProc, client: MarathonClient) -> None:
    app_id = "/client/kill"
    client.create_app(app_id, sleeper(4))
    before = settled(m, client, app_id, 4)
    victim, *_ = sorted(task_ids(before))

    killed = client.kill_task(app_id, victim)  # scale=false: ``{"task": …}``, a replacement is launched
    assert isinstance(killed, MarathonTask) and killed.id == victim
    four = settled(m, client, app_id, 4, without={victim})

    one = sorted(task_ids(four))[0]
    result = client.kill_task(app_id, one, scale=True)  # scale=true: a DeploymentResult
    assert isinstance(result, dict) and "deploymentId" in result
    three = settled(m, client, app_id, 3, without={one})
    assert three.instances == 3

    listed = client.kill_tasks(app_id, host=HOST)  # scale=false: the killed tasks
    assert sorted(t.id for t in listed) == sorted(task_ids(three))
    assert all(isinstance(t, MarathonTask) for t in listed)
    settled(m, client, app_id, 3, without=task_ids(three))

    result = client.kill_tasks(app_id, scale=True)
    assert "deploymentId" in result
    assert settled(m, client, app_id, 0).instances == 0
    with pytest.raises(MarathonHttpError) as both:
        client.kill_tasks(app_id, scale=True, wipe=True)
    assert both.value.status_code == 400


# -- groups --------------------------------------------------------------------------------------------------


def test_groups_with_dependencies(m: MarathonProc, client: MarathonClient) -> None:
    shop = MarathonGroup(
        id="/shop",
        apps=[sleeper(id="/shop/db"), sleeper(id="/shop/api", dependencies=["/shop/db"])],
    )
    result = client.create_group(shop)
    assert set(result) >= {"deploymentId", "version"}
    db = settled(m, client, "/shop/db", 1)
    api = settled(m, client, "/shop/api", 1)
    assert api.dependencies == ["/shop/db"]
    assert api.tasks[0].staged_at >= db.tasks[0].started_at  # api started after db ran (§7.3)
    with pytest.raises(ConflictError):
        client.create_group(MarathonGroup(id="/shop"))

    group = client.get_group("/shop")
    assert isinstance(group, MarathonGroup) and group.id == "/shop" and group.version
    assert sorted(a.id for a in group.apps) == ["/shop/api", "/shop/db"]
    assert all(isinstance(a, MarathonApp) for a in group.apps)
    assert [g.id for g in client.list_groups()] == ["/shop"]
    assert client.list_groups(id="/nothing") == []

    assert "deploymentId" in client.scale_group("/shop", 2)
    assert settled(m, client, "/shop/db", 2).instances == 2
    assert settled(m, client, "/shop/api", 2).instances == 2

    update = MarathonGroup(
        apps=[sleeper(2, id="/shop/db"), sleeper(2, id="/shop/api", dependencies=["/shop/db"]),
              sleeper(id="/shop/cache")],
    )  # fmt: skip
    assert "deploymentId" in client.update_group("/shop", update, force=True)
    settled(m, client, "/shop/cache", 1)
    assert sorted(a.id for a in client.get_group("/shop").apps) == ["/shop/api", "/shop/cache", "/shop/db"]

    assert "deploymentId" in client.delete_group("/shop", force=True)
    m.wait_for("/shop deleted", lambda: gone(client, "/shop/db") and not client.list_deployments())
    with pytest.raises(NotFoundError):
        client.get_group("/shop")


# -- deployments ---------------------------------------------------------------------------------------------


def stuck_deployment(m: MarathonProc, c: MarathonClient, app_id: str) -> MarathonDeployment:
    """A deployment that never finishes: its task runs, but the health check path 404s (never killed)."""
    c.create_app(app_id, web(path="/missing", failures=0))

    def running() -> MarathonDeployment | None:
        mine = [d for d in c.list_deployments() if app_id in d.affected_apps]
        return mine[0] if mine and c.get_app(app_id).tasks_running == 1 else None

    found: MarathonDeployment = m.wait_for(f"{app_id} deploying", running)
    return found


def test_deployments_list_conflict_rollback_and_force(m: MarathonProc, client: MarathonClient) -> None:
    app_id = "/client/stuck"
    deployment = stuck_deployment(m, client, app_id)
    assert isinstance(deployment, MarathonDeployment) and deployment.version
    assert deployment.affected_apps == [app_id] and deployment.affected_pods == []
    assert deployment.total_steps == len(deployment.steps) and deployment.current_step >= 1
    assert all(isinstance(s, MarathonDeploymentStep) for s in deployment.steps)
    assert [(a.action, a.app) for a in deployment.current_actions] == [("ScaleApplication", app_id)]
    app = client.get_app(app_id)
    assert [d.id for d in app.deployments] == [deployment.id] and app.tasks_healthy == 0

    with pytest.raises(ConflictError) as locked:
        client.scale_app(app_id, instances=2)
    assert locked.value.status_code == 409 and "locked" in locked.value.error_message
    # The client keeps only message and details; the ids are in the body it received.
    status, _, body = m.request("PUT", f"/v2/apps{app_id}", {"instances": 2})
    assert status == 409 and body["deployments"] == [{"id": deployment.id}]

    rollback = client.delete_deployment(deployment.id)  # without force: a new deployment reverts the plan
    assert rollback["deploymentId"] != deployment.id
    m.wait_for(
        "rolled back (the app never existed)", lambda: gone(client, app_id) and not client.list_deployments()
    )

    deployment = stuck_deployment(m, client, app_id)
    assert client.delete_deployment(deployment.id, force=True) == {}  # 202, empty body, no rollback
    m.wait_for("deployment stopped", lambda: not client.list_deployments())
    assert client.get_app(app_id).tasks_running == 1
    with pytest.raises(NotFoundError):
        client.delete_deployment(deployment.id)


# -- tasks and queue -----------------------------------------------------------------------------------------


def test_list_and_kill_given_tasks(m: MarathonProc, client: MarathonClient) -> None:
    client.create_app("/client/a", sleeper(3))
    client.create_app("/client/b", sleeper(1))
    a = settled(m, client, "/client/a", 3)
    b = settled(m, client, "/client/b", 1)

    everything = client.list_tasks()
    assert sorted(t.id for t in everything) == sorted(task_ids(a) | task_ids(b))
    for task in everything:
        check_task(task, task.app_id)
        assert task.service_ports and all(p >= 10000 for p in task.service_ports)
    assert {t.id for t in client.list_tasks(app_id="/client/a")} == task_ids(a)
    assert len(client.list_tasks(state="TASK_RUNNING")) == 4
    assert client.list_tasks(app_id="/client/b", state="TASK_STAGING") == []

    first, second, _ = sorted(task_ids(a))
    assert client.kill_given_tasks([first], scale=True) is True
    assert settled(m, client, "/client/a", 2, without={first}).instances == 2
    assert client.kill_given_tasks([second], force=True) is True  # not scaled: replaced
    settled(m, client, "/client/a", 2, without={second})
    with pytest.raises(MarathonHttpError) as bad:
        client.kill_given_tasks(["not-a-task-id"])
    assert bad.value.status_code == 400


def test_queue_shows_an_app_that_cannot_be_placed(m: MarathonProc, client: MarathonClient) -> None:
    client.create_app("/client/huge", MarathonApp(cmd=SLEEP, cpus=64, mem=32, instances=2))

    def queued() -> MarathonQueueItem | None:
        mine = [q for q in client.list_queue(embed_last_unused_offers=True) if q.app.id == "/client/huge"]
        summary = mine[0].processed_offers_summary if mine else None
        return mine[0] if summary and summary["unusedOffersCount"] else None

    item: MarathonQueueItem = m.wait_for("/client/huge queued with declined offers", queued)
    assert item.count == 2 and item.app.cpus == 64 and item.since
    assert item.delay.overdue in (True, False) and item.delay.time_left_seconds >= 0
    reasons = {r["reason"] for r in item.processed_offers_summary["rejectSummaryLastOffers"] if r["declined"]}
    assert "InsufficientCpus" in reasons
    assert isinstance(item.last_unused_offers, list)
    assert [q.app.id for q in client.list_queue()] == ["/client/huge"]
    client.reset_delay("/client/huge")
    with pytest.raises(NotFoundError):
        client.reset_delay("/client/not-queued")
    client.delete_app("/client/huge", force=True)
    m.wait_for("queue empty", lambda: client.list_queue() == [])


# -- info, leader, ping, metrics -----------------------------------------------------------------------------


def test_info_leader_ping_metrics(m: MarathonProc, client: MarathonClient) -> None:
    info = client.get_info()
    assert isinstance(info, MarathonInfo) and info.name == "marathon" and info.elected is True
    assert info.version.startswith("1.10.") and info.leader == f"{m.ip}:{m.port}" and info.framework_id
    assert info.http_config.http_port == m.port
    assert info.zookeeper_config.zk and info.marathon_config.master
    assert client.get_leader() == {"leader": f"{m.ip}:{m.port}"}
    assert client.ping() == b'"pong"'  # the client accepts JSON only: Marathon answers a JSON string (§2.6)
    metrics = client.get_metrics()
    assert {"gauges", "counters", "histograms", "meters", "timers"} <= set(metrics)
    with pytest.raises(MarathonHttpError):  # legacy HTTP callbacks: gone from Marathon 1.x (§1.1)
        client.list_event_subscriptions()


# -- the event stream ----------------------------------------------------------------------------------------


class StreamSession(requests.Session):
    """An SSE session for the client's ``sse_session`` (a public parameter): reads time out (a dead stream
    fails instead of hanging), ``plan-format=light`` can be asked for (the client has no argument for it),
    ``connected`` says the server has the subscription, and ``close`` closes the streamed responses."""

    def __init__(self, *, light: bool = False) -> None:
        super().__init__()
        self.light = light
        self.connected = threading.Event()
        self.responses: list[requests.Response] = []

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:
        if self.light:
            kwargs["params"] = {**(kwargs.get("params") or {}), "plan-format": "light"}
        kwargs.setdefault("timeout", (5.0, STREAM_READ_TIMEOUT))
        response = super().get(url, **kwargs)
        self.responses.append(response)
        self.connected.set()
        return response

    def close(self) -> None:
        for response in self.responses:
            response.close()
        super().close()


class Reader(threading.Thread):
    """Reads one ``event_stream()`` until ``last`` matches an event (it parsed or, raw, the JSON), then
    closes the stream."""

    def __init__(
        self, url: str, last: Callable[[Any], bool], *, light: bool = False, raw: bool = False, **kw: Any
    ) -> None:
        super().__init__(daemon=True)
        self.session = StreamSession(light=light)
        self.client = MarathonClient(url, sse_session=self.session)
        self.last, self.raw, self.kw = last, raw, kw
        self.events: list[Any] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        stream = self.client.event_stream(raw=self.raw, **self.kw)
        try:
            for item in stream:
                event = json.loads(item) if self.raw else item
                self.events.append(event)
                if self.last(event):
                    break
        except BaseException as e:  # reported by the test thread
            self.error = e
        finally:
            stream.close()
            self.session.close()

    def of(self, event_type: str) -> list[Any]:
        kind = (lambda e: e["eventType"]) if self.raw else (lambda e: e.event_type)
        return [e for e in self.events if kind(e) == event_type]


def sentinel_running(event: Any) -> bool:
    """The status update that ends every reader: ``/client/sentinel`` running."""
    if isinstance(event, dict):
        return event.get("appId") == "/client/sentinel" and event.get("taskStatus") == "TASK_RUNNING"
    return isinstance(event, MarathonStatusUpdateEvent) and (event.app_id, event.task_status) == (
        "/client/sentinel",
        "TASK_RUNNING",
    )


def drive(m: MarathonProc, c: MarathonClient, deployments: list[str]) -> None:
    """Create a health-checked app, scale it, then start the sentinel (run in its own thread)."""
    created = c.create_app("/client/events", web())
    deployments.append(created.deployments[0].id)
    settled(m, c, "/client/events", 1, healthy=True)
    deployments.append(c.scale_app("/client/events", instances=2)["deploymentId"])
    settled(m, c, "/client/events", 2, healthy=True)
    c.create_app("/client/sentinel", sleeper())


def test_event_stream_full_filtered_and_light(m: MarathonProc, client: MarathonClient) -> None:
    filtered_types = [MarathonStatusUpdateEvent, "deployment_success", MarathonHealthStatusChangedEvent]
    readers = {
        "full": Reader(m.url, sentinel_running),
        "filtered": Reader(m.url, sentinel_running, event_types=filtered_types),
        "light": Reader(m.url, sentinel_running, light=True, raw=True),
        # the client cannot parse a light deployment_info (no plan.original): this reader ends in its error
        "light parsed": Reader(m.url, sentinel_running, light=True, event_types=["deployment_info"]),
    }
    for reader in readers.values():
        reader.start()
    for name, reader in readers.items():
        assert reader.session.connected.wait(10), f"{name}: no stream"
    deployments: list[str] = []
    errors: list[BaseException] = []
    driver = threading.Thread(target=lambda: _capture(errors, lambda: drive(m, client, deployments)))
    driver.start()
    deadline = time.monotonic() + 150
    for thread in (driver, *readers.values()):
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not errors, errors
    for name, reader in readers.items():
        assert not reader.is_alive(), f"{name}: no sentinel; got {[type(e).__name__ for e in reader.events]}"
        if name != "light parsed":
            assert reader.error is None, f"{name}: {reader.error!r}"
        assert reader.session.responses and all(r.raw.closed for r in reader.session.responses)

    full = readers["full"]
    assert all(isinstance(e, MarathonEvent) for e in full.events)
    assert full.events[0].event_type == "event_stream_attached"
    create, scale = [e for e in full.of("api_post_event") if e.app_definition["id"] == "/client/events"]
    # scale_app PUTs to f"/v2/apps/{app.id}", a double slash, and the event shows the URI as requested
    assert (create.uri, scale.uri) == ("/v2/apps", "/v2/apps//client/events") and create.client_ip
    assert create.app_definition["cmd"] == WEB and scale.app_definition["instances"] == 2
    infos = [e for e in full.events if isinstance(e, MarathonDeploymentInfo)]
    assert {e.plan.id for e in infos} >= set(deployments)
    for info in infos:
        assert isinstance(info.plan, MarathonDeploymentPlan) and info.plan.version and info.plan.steps
        assert info.plan.target.id == "/" and info.current_step["actions"]
    [create_info, *_] = [e for e in infos if e.plan.id == deployments[0]]
    assert any(a.get("id") == "/client/events" for a in _apps(create_info.plan.target.groups or []))
    assert {e.plan.id for e in full.of("deployment_step_success")} >= set(deployments)
    succeeded = [e.id for e in full.events if isinstance(e, MarathonDeploymentSuccess)]
    assert set(succeeded) >= set(deployments)
    running = [
        e for e in full.of("status_update_event")
        if e.app_id == "/client/events" and e.task_status == "TASK_RUNNING"
    ]  # fmt: skip
    assert len({e.task_id for e in running}) == 2
    assert all(e.host == HOST and e.ports and e.version and e.slave_id and e.task_id for e in running)
    assert all([a.ip_address for a in e.ip_addresses] == [HOST] for e in running)
    healthy = [e for e in full.of("health_status_changed_event") if e.app_id == "/client/events" and e.alive]
    assert len({e.instance_id for e in healthy}) == 2
    assert {e.run_spec_id for e in full.of("instance_changed_event")} >= {"/client/events"}

    filtered = readers["filtered"]
    assert {e.event_type for e in filtered.events} == {
        "status_update_event", "deployment_success", "health_status_changed_event",
    }  # fmt: skip
    assert {e.id for e in filtered.of("deployment_success")} >= set(deployments)

    light = readers["light"]
    light_infos = light.of("deployment_info")
    assert {e["plan"]["id"] for e in light_infos} >= set(deployments)
    assert all(set(e["plan"]) == {"id", "steps", "version"} for e in light_infos)  # no original/target (§3)
    assert isinstance(readers["light parsed"].error, AttributeError)  # the client's quirk (§9.1)
    assert readers["light parsed"].events == []


def _capture(errors: list[BaseException], fn: Callable[[], None]) -> None:
    try:
        fn()
    except BaseException as e:  # reported by the test thread
        errors.append(e)


def _apps(groups: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every app of a plan's group tree (the client keeps nested groups as plain dicts)."""
    for group in groups:
        yield from group.get("apps") or []
        yield from _apps(group.get("groups") or [])
