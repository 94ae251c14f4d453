"""marathon_py.core: MarathonCore, one behaviour per test (reference §7 deployments, §8 offers,
reconciliation and scale checks, §3 events, §2.3 rollback vs force), driven call by call with ``now``."""

from __future__ import annotations

import random
from typing import Any

import pytest

from marathon_py import appdef, groups
from marathon_py.core import AppLocked, CoreConfig, MarathonCore, NotFound, TooManyDeployments
from marathon_py.health import Result
from marathon_py.launcher import LaunchConfig
from marathon_py.outputs import (
    PERSISTS,
    Ack,
    Decline,
    DeleteDeployment,
    DeleteInstance,
    Event,
    Kill,
    Launch,
    Output,
    Probe,
    ReadinessProbe,
    Reconcile,
    Revive,
    SaveDeployment,
    SaveInstance,
    SaveRoot,
    SaveTaskFailure,
    Suppress,
    instance_doc,
    instance_of_doc,
)
from marathon_py.validation import BadRequest
from paas_common.resources import Resources, parse_attributes
from tests.support.marathon_sim import Sim

T0 = 1_600_000_000.0
HTTP_CHECK = {"protocol": "HTTP", "portIndex": 0, "intervalSeconds": 10, "timeoutSeconds": 2}


def app(app_id: str = "/web", **over: Any) -> dict[str, Any]:
    return appdef.normalize({"id": app_id, "cmd": "serve", "cpus": 0.5, "mem": 64, "instances": 1, **over})


def web(core: MarathonCore, app_id: str = "/web") -> dict[str, Any]:
    found = core.app(app_id)
    assert found is not None
    return dict(found)


def failure(core: MarathonCore) -> dict[str, Any]:
    found = core.last_task_failure("/web")
    assert found is not None
    return found


def offer(oid: str = "O1", agent: str = "S1", host: str = "h1", **over: Any) -> dict[str, Any]:
    resources = over.pop("resources", "cpus:8;mem:4096;disk:100;ports:[31000-31099]")
    return {
        "id": {"value": oid},
        "framework_id": {"value": "F"},
        "agent_id": {"value": agent},
        "hostname": host,
        "resources": Resources.parse(resources).to_json(),
        "attributes": parse_attributes(over.pop("attributes", "")),
        **over,
    }


def status(task_id: str, state: str = "TASK_RUNNING", **fields: Any) -> dict[str, Any]:
    return {
        "task_id": {"value": task_id},
        "state": state,
        "agent_id": {"value": "S1"},
        "uuid": "dXU=",
        **fields,
    }


def of(outs: list[Output], kind: type) -> list[Any]:
    return [o for o in outs if isinstance(o, kind)]


def events(outs: list[Output]) -> list[str]:
    return [o.event_type for o in outs if isinstance(o, Event)]


def started(config: CoreConfig | None = None) -> MarathonCore:
    core = MarathonCore(config=config, rng=random.Random(3))
    core.start(T0)
    core.subscribed("F", T0)
    return core


def deploy(core: MarathonCore, *apps: dict[str, Any], now: float = T0, **kw: Any) -> tuple[Any, list[Output]]:
    root = core.root()
    for a in apps:
        root = groups.put_app(root, a)
    return core.update_root(root, now, **kw)


def launch(core: MarathonCore, now: float, *offers: dict[str, Any]) -> list[str]:
    """Offer, and report every launched task running; the task ids."""
    outs = core.offers(list(offers) or [offer()], now)
    tasks = [t["task_id"]["value"] for lo in of(outs, Launch) for t in lo.task_infos]
    for task in tasks:
        core.status_update(status(task), now)
    return tasks


def running_app(instances: int = 2, **over: Any) -> tuple[MarathonCore, list[str]]:
    core = started()
    deploy(core, app(instances=instances, **over))
    return core, launch(core, T0 + 1)


# -- deployments -----------------------------------------------------------------------------------------


def test_a_new_app_is_started_launched_and_its_deployment_finishes() -> None:
    core = started()
    plan, outs = deploy(core, app(instances=2))
    assert [[a.name for a in s.actions] for s in plan.steps] == [["StartApplication"], ["ScaleApplication"]]
    assert isinstance(outs[0], SaveDeployment) and outs[0].id == plan.id
    assert isinstance(outs[1], SaveRoot) and groups.find_app(dict(outs[1].root), "/web") is not None
    assert events(outs)[:4] == [
        "group_change_success",
        "deployment_info",
        "deployment_step_success",
        "deployment_info",
    ]
    assert of(outs, Revive) == [Revive(("*",))]
    assert core.deployments()[0]["currentStep"] == 2

    outs = core.offers([offer()], T0 + 1)
    (accept,) = of(outs, Launch)
    assert accept.offer_ids == ("O1",) and accept.refuse_seconds == 0
    assert [t["name"] for t in accept.task_infos] == ["web", "web"]
    assert outs.index(of(outs, SaveInstance)[-1]) < outs.index(accept)  # Provisioned is stored first
    assert of(outs, Suppress) == [Suppress(("*",))]  # nothing left to launch

    first, second = (t["task_id"]["value"] for t in accept.task_infos)
    assert "deployment_success" not in events(core.status_update(status(first), T0 + 2))
    outs = core.status_update(status(second), T0 + 2)
    assert "deployment_success" in events(outs) and of(outs, DeleteDeployment) == [DeleteDeployment(plan.id)]
    assert isinstance(outs[-1], Ack)
    assert core.deployments() == []
    assert [r.condition for r in core.instances("/web")] == ["Running", "Running"]


def test_a_change_without_effect_still_gets_an_id_and_a_version() -> None:
    core, _ = running_app(1)
    plan, outs = core.update_root(core.root(), T0 + 5)
    assert plan.steps == () and plan.id and plan.version == "2020-09-13T12:26:45.000Z"
    assert of(outs, DeleteDeployment) == [DeleteDeployment(plan.id)] and not of(outs, SaveDeployment)
    assert "deployment_success" in events(outs)


def test_versions_keep_increasing_within_one_millisecond() -> None:
    core = started()
    first, _ = deploy(core, app("/a"))
    second, _ = deploy(core, app("/b"))
    assert second.version > first.version


def test_dry_run_changes_nothing() -> None:
    core = started()
    plan, outs = deploy(core, app(), dry_run=True)
    assert plan.steps and outs == [] and core.app("/web") is None and core.deployments() == []


def test_deployment_events_also_come_in_the_full_plan_format() -> None:
    core = started()
    _, outs = deploy(core, app())
    info = next(o for o in outs if isinstance(o, Event) and o.event_type == "deployment_info")
    assert "original" not in info.event["plan"]
    assert info.full is not None and info.full["plan"]["target"]["apps"][0]["id"] == "/web"


@pytest.mark.parametrize(("selection", "survivor"), [("YOUNGEST_FIRST", 0), ("OLDEST_FIRST", 2)])
def test_scaling_down_kills_by_kill_selection(selection: str, survivor: int) -> None:
    core = started()
    deploy(core, app(instances=3, killSelection=selection))
    outs = core.offers([offer()], T0 + 1)
    tasks = [t["task_id"]["value"] for t in of(outs, Launch)[0].task_infos]
    for i, task in enumerate(tasks):  # started one second apart: the first is the oldest
        core.status_update(status(task), T0 + 2 + i)
    plan, outs = deploy(core, {**web(core), "instances": 1}, now=T0 + 10)
    assert [[a.name for a in s.actions] for s in plan.steps] == [["ScaleApplication"]]
    assert {k.task_id for k in of(outs, Kill)} == {t for i, t in enumerate(tasks) if i != survivor}
    for k in of(outs, Kill):
        outs = core.status_update(status(k.task_id, "TASK_KILLED"), T0 + 11)
    assert "deployment_success" in events(outs)
    assert [r.task_id for r in core.instances("/web")] == [tasks[survivor]]


def test_scaling_up_launches_the_difference_only() -> None:
    core, _ = running_app(2)
    deploy(core, {**web(core), "instances": 3}, now=T0 + 5)
    outs = core.offers([offer("O2")], T0 + 6)
    assert sum(len(lo.task_infos) for lo in of(outs, Launch)) == 1
    assert not of(outs, Kill)


def test_a_rolling_restart_keeps_minimum_health_capacity() -> None:
    """3 instances, minimumHealthCapacity 1, maximumOverCapacity 0: one extra instance at a time, old ones
    go only as new ones turn healthy (§7.1)."""
    sim = Sim(5)
    strategy = {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 0.0}
    spec = app(instances=3, healthChecks=[{**HTTP_CHECK, "intervalSeconds": 2, "gracePeriodSeconds": 30}],
              upgradeStrategy=strategy)  # fmt: skip
    sim.run(deploy(sim.core, spec, now=sim.now)[1])
    sim.run_for(30)
    assert not sim.core.deployments()
    plan, outs = sim.core.update_root(groups.put_app(sim.core.root(), {**spec, "cmd": "serve v2"}), sim.now)
    sim.run(outs)
    assert [[a.name for a in s.actions] for s in plan.steps] == [["RestartApplication"]]
    for _ in range(60):
        sim.step()
        live = [r for r in sim.core.instances("/web") if r.goal == "Running"]
        assert len(live) <= 4  # maxCapacity 3 == minHealthy: one temporary extra
        assert sum(1 for r in live if r.healthy) >= 3
    assert not sim.core.deployments()
    assert {r.version for r in sim.core.instances("/web")} == {web(sim.core)["version"]}


def test_a_conflicting_change_is_locked_unless_forced() -> None:
    core = started()
    first, _ = deploy(core, app(instances=2))
    with pytest.raises(AppLocked) as locked:
        deploy(core, app(instances=3), now=T0 + 1)
    assert locked.value.status == 409 and locked.value.body() == AppLocked([first.id]).body()
    second, outs = deploy(core, app(instances=3), now=T0 + 1, force=True)
    assert DeleteDeployment(first.id) in outs
    failed = [o.event for o in outs if isinstance(o, Event) and o.event_type == "deployment_failed"]
    assert [e["id"] for e in failed] == [first.id]
    assert [p.id for p in core.deployment_plans()] == [second.id]


def test_too_many_running_deployments() -> None:
    core = started(CoreConfig(max_running_deployments=1))
    deploy(core, app("/a"))
    with pytest.raises(TooManyDeployments) as refused:
        deploy(core, app("/b"), now=T0 + 1)
    assert refused.value.status == 403 and "Max number (1) of running deployments" in refused.value.message


def test_deleting_a_deployment_rolls_it_back() -> None:
    core, _ = running_app(1)
    v1 = web(core)
    changed, _ = deploy(core, {**v1, "cmd": "serve v2"}, now=T0 + 5)
    rollback, outs = core.cancel_deployment(changed.id, T0 + 6)
    assert rollback is not None and rollback.id != changed.id
    assert DeleteDeployment(changed.id) in outs and [o.id for o in of(outs, SaveDeployment)] == [rollback.id]
    assert web(core)["cmd"] == "serve" and web(core)["version"] == rollback.version
    assert [p.id for p in core.deployment_plans()] == [rollback.id]
    with pytest.raises(NotFound, match=f"DeploymentPlan {changed.id} does not exist"):
        core.cancel_deployment(changed.id, T0 + 7)


def test_deleting_a_deployment_with_force_just_stops_it() -> None:
    core, _ = running_app(1)
    changed, _ = deploy(core, {**web(core), "cmd": "serve v2"}, now=T0 + 5)
    rollback, outs = core.cancel_deployment(changed.id, T0 + 6, force=True)
    assert rollback is None and outs[0] == DeleteDeployment(changed.id)
    assert core.deployments() == [] and web(core)["cmd"] == "serve v2"


def test_stopping_an_app_waits_until_its_instances_are_gone() -> None:
    core, tasks = running_app(2)
    plan, outs = core.update_root(groups.remove(core.root(), "/web"), T0 + 5)
    assert [[a.name for a in s.actions] for s in plan.steps] == [["StopApplication"]]
    assert sorted(k.task_id for k in of(outs, Kill)) == sorted(tasks)
    core.status_update(status(tasks[0], "TASK_KILLED"), T0 + 6)
    assert core.deployments()
    outs = core.status_update(status(tasks[1], "TASK_KILLED"), T0 + 6)
    assert {"app_terminated_event", "deployment_success"} <= set(events(outs))
    assert len(of(outs, DeleteInstance)) == 1 and core.instances() == []


# -- offers -------------------------------------------------------------------------------------------------


def test_suppress_when_idle_revive_when_launches_are_pending_at_most_every_5_seconds() -> None:
    core = MarathonCore(rng=random.Random(1))
    core.start(T0)
    assert of(core.subscribed("F", T0), Suppress) == [Suppress(("*",))]
    assert of(deploy(core, app())[1], Revive) == [Revive(("*",))]
    (task,) = launch(core, T0 + 1)
    outs = core.kill_tasks([task], T0 + 2)[2]
    assert of(outs, Kill) and not of(outs, Revive)
    outs = core.status_update(status(task, "TASK_KILLED"), T0 + 3)  # relaunch pending, revived 3 s ago
    assert not of(outs, Revive)
    assert of(core.tick(T0 + 4), Revive) == []
    assert of(core.tick(T0 + 5), Revive) == [Revive(("*",))]


def test_offers_that_fit_nothing_are_declined_for_the_decline_duration() -> None:
    core = started(CoreConfig(launch=LaunchConfig(decline_offer_duration=33.0)))
    deploy(core, app(cpus=16.0))
    outs = core.offers([offer("O1"), offer("O2", agent="S2", host="h2")], T0 + 1)
    assert of(outs, Decline) == [Decline(("O1", "O2"), 33.0)] and not of(outs, Launch)
    (item,) = core.queue(T0 + 1)
    assert item["count"] == 1 and item["processedOffersSummary"]["unusedOffersCount"] == 2


def test_at_most_max_instances_per_offer() -> None:
    core = started()
    deploy(core, app(instances=7, cpus=0.1))
    outs = core.offers([offer()], T0 + 1)
    assert [len(lo.task_infos) for lo in of(outs, Launch)] == [5]


def test_constraints_hold_within_one_batch_of_offers() -> None:
    core = started()
    deploy(core, app(instances=3, constraints=[["hostname", "UNIQUE"]]))
    outs = core.offers([offer("O1"), offer("O2", agent="S2", host="h2")], T0 + 1)
    assert [lo.offer_ids for lo in of(outs, Launch)] == [("O1",), ("O2",)]
    assert sorted(r.host or "" for r in core.instances("/web") if r.host) == ["h1", "h2"]
    deploy(core, app("/spread", instances=4, constraints=[["rack", "GROUP_BY", "2"]]), now=T0 + 2)
    racks = [offer(f"R{i}", agent=f"A{i}", host=f"a{i}", attributes=f"rack:r{i % 2}") for i in range(4)]
    core.offers(racks, T0 + 3)
    placed = [r.placement.attributes["rack"] for r in core.instances("/spread") if r.placement]
    assert sorted(placed) == ["r0", "r0", "r1", "r1"]


def test_a_failed_task_is_relaunched_after_the_backoff() -> None:
    core, (task,) = running_app(1, backoffSeconds=10)
    outs = core.status_update(status(task, "TASK_FAILED", message="boom"), T0 + 5)
    assert of(outs, SaveTaskFailure)[0].doc["message"] == "boom"
    assert failure(core)["taskId"] == task
    (item,) = core.queue(T0 + 6)
    assert item["delay"] == {"timeLeftSeconds": 9, "overdue": False}
    assert of(core.offers([offer()], T0 + 6), Decline)
    assert of(core.tick(T0 + 15), Revive)
    (relaunched,) = [
        t["task_id"]["value"] for lo in of(core.offers([offer()], T0 + 15), Launch) for t in lo.task_infos
    ]
    assert relaunched == task.replace("._app.1", "._app.2")  # the same instance, next incarnation


def test_an_unreachable_instance_is_replaced() -> None:
    core, (task,) = running_app(1)
    old = core.instances("/web")[0].instance_id
    outs = core.status_update(status(task, "TASK_UNREACHABLE", reason="REASON_AGENT_DISCONNECTED"), T0 + 5)
    assert DeleteInstance(old) in outs  # unreachableStrategy 0/0: inactive and expunged at once
    (new,) = core.instances("/web")
    assert new.instance_id != old and new.condition == "Scheduled"


def test_reconciliation_kills_tasks_marathon_does_not_know() -> None:
    core, tasks = running_app(1)
    assert not of(core.tick(T0 + 10), Reconcile)
    outs = core.tick(T0 + 15)  # --reconciliation_initial_delay
    assert of(outs, Reconcile) == [
        Reconcile(({"task_id": {"value": tasks[0]}, "agent_id": {"value": "S1"}},)),
        Reconcile(),
    ]
    ghost = "web.instance-00000000-0000-4000-8000-000000000000._app.1"
    outs = core.status_update(
        {"task_id": {"value": ghost}, "state": "TASK_RUNNING", "agent_id": {"value": "S9"}}, T0 + 16
    )
    assert of(outs, Kill) == [Kill(ghost, "S9")] and isinstance(outs[-1], Ack)
    assert not of(core.tick(T0 + 20), Reconcile)


def test_status_updates_are_acknowledged_after_everything_is_stored() -> None:
    core = started()
    deploy(core, app())
    (accept,) = of(core.offers([offer()], T0 + 1), Launch)
    outs = core.status_update(status(accept.task_infos[0]["task_id"]["value"]), T0 + 2)
    kinds = [isinstance(o, PERSISTS) for o in outs]
    assert kinds[0] and kinds.index(False) == sum(kinds)  # writes first
    assert of(outs, Ack) == [outs[-1]]


# -- tasks --------------------------------------------------------------------------------------------------


def test_killing_a_task_relaunches_its_instance() -> None:
    core, (task, _) = running_app(2)
    records, plan, outs = core.kill_tasks([task, "nonsense"], T0 + 5)
    assert [r.task_id for r in records] == [task] and plan is None and of(outs, Kill) == [Kill(task, "S1")]
    core.status_update(status(task, "TASK_KILLED"), T0 + 6)
    launched = [
        t["task_id"]["value"] for lo in of(core.offers([offer()], T0 + 7), Launch) for t in lo.task_infos
    ]
    assert launched == [task.replace("._app.1", "._app.2")]


def test_wiping_a_task_expunges_its_instance_and_starts_another() -> None:
    core, (task, _) = running_app(2)
    core.kill_tasks([task], T0 + 5, wipe=True)
    outs = core.status_update(status(task, "TASK_KILLED"), T0 + 6)
    assert of(outs, DeleteInstance) and len(core.instances("/web")) == 2
    assert {r.condition for r in core.instances("/web")} == {"Running", "Scheduled"}


def test_kill_and_scale_deploys_the_app_scaled_down() -> None:
    core, (task, other) = running_app(2)
    _, plan, outs = core.kill_tasks([task], T0 + 5, scale=True)
    assert plan is not None and web(core)["instances"] == 1
    (action,) = plan.steps[0].actions
    assert (action.name, action.scale_to, action.sentenced) == (
        "ScaleApplication",
        1,
        (task.split("._app")[0],),
    )
    assert of(outs, Kill) == [Kill(task, "S1")]
    with pytest.raises(BadRequest, match="scale and wipe"):
        core.kill_tasks([other], T0 + 6, scale=True, wipe=True)


# -- health -------------------------------------------------------------------------------------------------


def test_marathon_health_checks_are_probed_and_kill_after_consecutive_failures() -> None:
    check = {**HTTP_CHECK, "gracePeriodSeconds": 0, "maxConsecutiveFailures": 1}
    core, (task,) = running_app(1, healthChecks=[check])
    iid = core.instances("/web")[0].instance_id
    assert not of(core.tick(T0 + 5), Probe)
    (probe,) = of(core.tick(T0 + 6), Probe)  # the first after min(intervalSeconds, 5) s of running
    assert (probe.instance_id, probe.check_index, probe.host) == (
        iid,
        0,
        "h1",
    ) and 31000 <= probe.port <= 31099
    assert not of(core.tick(T0 + 7), Probe)
    outs = core.health_result(iid, 0, Result(True), T0 + 7)
    assert "health_status_changed_event" in events(outs) and core.instances("/web")[0].healthy is True
    assert core.health(core.instances("/web")[0])[0].alive
    assert not of(core.health_result(iid, 0, Result(False, "503 Service Unavailable"), T0 + 17), Kill)
    outs = core.health_result(iid, 0, Result(False, "503 Service Unavailable"), T0 + 27)
    assert of(outs, Kill) == [Kill(task, "S1")] and "unhealthy_instance_kill_event" in events(outs)
    assert failure(core)["message"].startswith("Task was killed since health check failed")


def test_mesos_health_checks_follow_the_status_updates() -> None:
    core = started()
    deploy(core, app(healthChecks=[{"protocol": "MESOS_HTTP", "portIndex": 0}]))
    (task,) = [
        t["task_id"]["value"] for lo in of(core.offers([offer()], T0 + 1), Launch) for t in lo.task_infos
    ]
    core.status_update(status(task), T0 + 2)
    assert core.deployments()  # running is not enough: it must be healthy
    outs = core.status_update(status(task, healthy=True), T0 + 3)
    assert "health_status_changed_event" in events(outs) and "deployment_success" in events(outs)
    assert core.instances("/web")[0].healthy is True


# -- reads and recovery -------------------------------------------------------------------------------------


def test_app_info_tasks_and_queue() -> None:
    core = started()
    plan, _ = deploy(core, app(instances=2))
    info = core.app_info("/web", T0, ["apps.counts", "deployments"])
    assert info["tasksStaged"] == 0 and info["deployments"] == [{"id": plan.id}]
    (item,) = core.queue(T0)
    assert item["count"] == 2 and item["app"]["id"] == "/web" and "role" not in item
    launch(core, T0 + 1)
    info = core.app_info("/web", T0 + 2, ["counts", "tasks", "lastTaskFailure", "taskStats"])
    assert info["tasksRunning"] == 2 and len(info["tasks"]) == 2 and info["deployments"] == []
    assert (
        "lastTaskFailure" not in info
        and info["tasksStats"]["totalSummary"]["stats"]["counts"]["running"] == 2
    )
    assert [t["servicePorts"] for t in core.tasks()] == [[web(core)["portDefinitions"][0]["port"]]] * 2
    assert core.queue(T0 + 2) == []
    with pytest.raises(NotFound, match="App '/nope' does not exist"):
        core.app_info("/nope", T0)


def test_reset_delay() -> None:
    core, (task,) = running_app(1, backoffSeconds=60)
    with pytest.raises(NotFound, match=r"Application /web not found in tasks queue\."):
        core.reset_delay("/web", T0 + 2)
    core.status_update(status(task, "TASK_FAILED"), T0 + 3)
    assert core.queue(T0 + 4)[0]["delay"]["overdue"] is False
    core.reset_delay("/web", T0 + 4)
    assert core.queue(T0 + 4)[0]["delay"] == {"timeLeftSeconds": 0, "overdue": True}


def test_instances_round_trip_through_their_stored_form() -> None:
    core, _ = running_app(2, constraints=[["hostname", "MAX_PER", "2"]])
    for rec in core.instances():
        assert instance_of_doc(instance_doc(rec)) == rec


def test_a_new_leader_resumes_deployments_from_the_store() -> None:
    sim = Sim(11)
    spec = app(instances=3, upgradeStrategy={"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.0})
    sim.run(deploy(sim.core, spec, now=sim.now)[1])
    sim.run_for(10)
    sim.run(sim.core.update_root(groups.put_app(sim.core.root(), {**spec, "cmd": "v2"}), sim.now)[1])
    sim.step()
    assert sim.core.deployments()
    sim.failover(99)
    assert [d["affectedApps"] for d in sim.core.deployments()] == [["/web"]]
    sim.run_for(30)
    assert not sim.core.deployments()
    version = web(sim.core)["version"]
    assert [(r.version, r.condition) for r in sim.core.instances("/web")] == [(version, "Running")] * 3
    assert len(sim.live_tasks("/web")) == 3


def test_new_instances_count_once_their_readiness_check_passes() -> None:
    core = started()
    spec = app(
        instances=1,
        portDefinitions=[{"port": 0, "name": "http-api"}],
        readinessChecks=[{"portName": "http-api", "intervalSeconds": 3, "timeoutSeconds": 1}],
    )
    deploy(core, spec)
    assert len(launch(core, T0 + 1)) == 1
    iid = core.instances("/web")[0].instance_id
    (probe,) = of(core.tick(T0 + 2), ReadinessProbe)
    assert (probe.instance_id, probe.host, probe.check["path"]) == (iid, "h1", "/")
    assert not of(core.tick(T0 + 3), ReadinessProbe) and of(core.tick(T0 + 5), ReadinessProbe)
    answer = {"status": 503, "contentType": "text/plain", "body": "warming up"}
    assert "deployment_success" not in events(core.readiness_result(iid, False, T0 + 5, answer))
    # reported while the deployment runs: in the app (embed readiness) and in the deployment's action
    task_id = core.instances("/web")[0].task_id
    result = {"name": "readinessCheck", "taskId": task_id, "ready": False}  # no preserveLastResponse
    assert core.app_info("/web", T0 + 5, ["apps.readiness"])["readinessCheckResults"] == [result]
    (action,) = core.deployments()[0]["currentActions"]
    assert action["readinessCheckResults"] == [result]
    assert "deployment_success" in events(core.readiness_result(iid, True, T0 + 8))
    assert core.app_info("/web", T0 + 8, ["readiness"])["readinessCheckResults"] == []  # the deployment ended


def test_readiness_keeps_the_last_response_when_asked() -> None:
    core = started()
    check = {"portName": "http-api", "intervalSeconds": 3, "timeoutSeconds": 1, "preserveLastResponse": True}
    deploy(core, app(instances=1, portDefinitions=[{"port": 0, "name": "http-api"}], readinessChecks=[check]))
    launch(core, T0 + 1)
    rec = core.instances("/web")[0]
    answer = {"status": 503, "contentType": "text/plain", "body": "warming up"}
    core.readiness_result(rec.instance_id, False, T0 + 5, answer)
    (result,) = core.app_info("/web", T0 + 5, ["readiness"])["readinessCheckResults"]
    assert result == {"name": "readinessCheck", "taskId": rec.task_id, "ready": False, "lastResponse": answer}


def test_a_restart_started_while_old_instances_were_starting_is_not_stuck() -> None:
    """1 instance, minHealthy 1 == maxCapacity 1: the temporary extra instance is allowed only once the old
    instance is healthy, which it was not yet when the restart began (§7.1)."""
    core = started()
    strategy = {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.5}
    deploy(core, app(upgradeStrategy=strategy))
    (old,) = [
        t["task_id"]["value"] for lo in of(core.offers([offer()], T0 + 1), Launch) for t in lo.task_infos
    ]
    plan, outs = deploy(core, {**web(core), "cmd": "serve v2"}, now=T0 + 2, force=True)
    assert not of(outs, Kill) and [r.version for r in core.instances("/web")] != [plan.version]
    core.status_update(status(old), T0 + 3)  # now healthy: one extra instance may start
    (new,) = [
        t["task_id"]["value"] for lo in of(core.offers([offer("O2")], T0 + 4), Launch) for t in lo.task_infos
    ]
    assert of(core.status_update(status(new), T0 + 5), Kill) == [Kill(old, "S1")]
    assert "deployment_success" in events(core.status_update(status(old, "TASK_KILLED"), T0 + 6))
