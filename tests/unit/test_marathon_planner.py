"""marathon_py.planner and marathon_py.deployment: which steps a root-group change becomes (Marathon 1.10's
DeploymentPlan, reference §7.3), dependency layers, versioning, locking conflicts, rollback plans, and the
JSON of /v2/deployments, deployment events, dry runs and storage."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marathon_py.appdef import mark_for_restart
from marathon_py.deployment import (
    DeploymentAction,
    DeploymentPlan,
    DeploymentStep,
    StepInfo,
    deployment_info_json,
    deployment_result_json,
    dry_run_json,
    dump_plan,
    event_json,
    initial_step_info,
    load_plan,
    plan_json,
    step_info,
)
from marathon_py.groups import CYCLIC as CYCLE_MESSAGE
from marathon_py.groups import CyclicDependencyError, apps_by_id, validate_dependencies
from marathon_py.groups import app_dependencies as dependency_graph
from marathon_py.groups import set_versions as with_versions
from marathon_py.planner import conflicts, plan, revert, revert_root
from marathon_py.validation import AppLocked

V0, V1, V2 = "2020-01-01T00:00:00.000Z", "2020-01-02T00:00:00.000Z", "2020-01-03T00:00:00.000Z"
Json = dict[str, Any]


def app(app_id: str, **fields: Any) -> Json:
    """A normalized app (the defaults of §4.1 that matter here), versioned at V0."""
    out: Json = {
        "id": app_id,
        "cmd": "sleep 1000",
        "instances": 1,
        "cpus": 1.0,
        "mem": 128.0,
        "disk": 0.0,
        "gpus": 0,
        "env": {},
        "labels": {},
        "constraints": [],
        "healthChecks": [],
        "dependencies": [],
        "upgradeStrategy": {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0},
        "killSelection": "YOUNGEST_FIRST",
        "version": V0,
        "versionInfo": {"lastScalingAt": V0, "lastConfigChangeAt": V0},
    }
    out.update(fields)
    return out


def group(gid: str, apps: Sequence[Any] = (), groups: Sequence[Any] = (), deps: Sequence[str] = ()) -> Json:
    return {"id": gid, "apps": list(apps), "groups": list(groups), "dependencies": list(deps), "version": V0}


def root(*apps: Any, groups: Sequence[Any] = (), deps: Sequence[str] = ()) -> Json:
    return group("/", apps, groups, deps)


def steps(p: DeploymentPlan) -> list[list[tuple[str, str]]]:
    return [[(a.name, a.run_spec_id) for a in s.actions] for s in p.steps]


def deploy(current: Json, target: Json, version: str = V1, pid: str = "d1") -> DeploymentPlan:
    """A root update as the group manager runs it: version the target, then plan."""
    return plan(current, with_versions(current, target, version), id=pid, version=version)


# --- what becomes which step ---------------------------------------------------------------------------


def test_removed_new_scaled_and_restarted_apps() -> None:
    current = root(app("/a"), app("/b"), app("/c"))
    target = root(app("/a", cmd="sleep 2"), app("/b", instances=3), app("/d", instances=2))
    p = deploy(current, target)
    assert steps(p) == [
        [("StopApplication", "/c")],
        [("StartApplication", "/d")],
        [("RestartApplication", "/a"), ("ScaleApplication", "/b"), ("ScaleApplication", "/d")],
    ]
    start, scale = p.steps[1].actions[0], p.steps[2].actions
    assert start.scale_to == 0
    assert [(a.scale_to, a.sentenced) for a in scale] == [(None, ()), (3, ()), (2, ())]
    assert p.affected_apps == ["/a", "/b", "/c", "/d"]
    assert p.run_spec(p.steps[0].actions[0]) == app("/c")  # Stop works on the original definition
    assert (p.run_spec(scale[0]) or {}).get("cmd") == "sleep 2"


def test_nothing_changed_is_an_empty_plan() -> None:
    current = root(app("/a"), groups=[group("/g", [app("/g/b")])])
    assert deploy(current, copy.deepcopy(current)).is_empty
    embedded = copy.deepcopy(current)
    embedded["apps"][0].update(tasksRunning=1, deployments=[], tasks=[])  # AppInfo extras are not config
    assert plan(current, embedded, id="x", version=V1).is_empty


def test_reposting_an_unchanged_app_keeps_its_version_and_restarts_nothing() -> None:
    current = root(app("/a"))
    target = with_versions(current, root(app("/a", version=V2, versionInfo=None)), V1)
    assert target["apps"][0]["version"] == V0
    assert target["apps"][0]["versionInfo"] == {"lastScalingAt": V0, "lastConfigChangeAt": V0}
    assert target["version"] == V1
    assert plan(current, target, id="x", version=V1).is_empty


def test_label_change_restarts_and_is_a_config_change() -> None:
    current = root(app("/a"))
    p = deploy(current, root(app("/a", labels={"HAPROXY_GROUP": "external"})))
    assert steps(p) == [[("RestartApplication", "/a")]]
    assert p.target["apps"][0]["versionInfo"] == {"lastScalingAt": V1, "lastConfigChangeAt": V1}


def test_scale_only_change_is_a_scale_step() -> None:
    current = root(app("/a", instances=2))
    p = deploy(current, root(app("/a", instances=5)))
    assert steps(p) == [[("ScaleApplication", "/a")]]
    assert p.steps[0].actions[0].scale_to == 5
    assert p.target["apps"][0]["version"] == V1
    assert p.target["apps"][0]["versionInfo"] == {"lastScalingAt": V1, "lastConfigChangeAt": V0}


def test_set_valued_fields_compare_as_sets() -> None:
    """constraints, healthChecks, dependencies, acceptedResourceRoles are sets in AppDefinition."""
    current = root(app("/a", constraints=[["hostname", "UNIQUE"], ["rack", "GROUP_BY"]], instances=1))
    target = root(app("/a", constraints=[["rack", "GROUP_BY"], ["hostname", "UNIQUE"]], instances=2))
    assert steps(deploy(current, target)) == [[("ScaleApplication", "/a")]]


def test_config_change_to_zero_instances_is_a_scale_to_zero() -> None:
    p = deploy(root(app("/a", instances=3)), root(app("/a", instances=0, cmd="other")))
    assert steps(p) == [[("ScaleApplication", "/a")]]
    assert p.steps[0].actions[0].scale_to == 0


def test_restart_marker_restarts_without_config_change() -> None:
    """POST /v2/apps/{id}/restart: a new version with lastConfigChangeAt kept."""
    current = root(app("/a"))
    p = deploy(current, root(mark_for_restart(app("/a"))))
    assert steps(p) == [[("RestartApplication", "/a")]]
    assert p.target["apps"][0]["versionInfo"] == {"lastScalingAt": V1, "lastConfigChangeAt": V0}


def test_kill_and_scale_sentences_instances() -> None:
    current = root(app("/a", instances=3))
    target = with_versions(current, root(app("/a", instances=2)), V1)
    p = plan(current, target, id="x", version=V1, to_kill={"/a": ["a.instance-1"]})
    assert p.steps[0].actions == (DeploymentAction("Scale", "/a", scale_to=2, sentenced=("a.instance-1",)),)


# --- dependency order ----------------------------------------------------------------------------------


def test_app_dependencies_give_one_step_per_layer() -> None:
    web, api = app("/web", dependencies=["/api"]), app("/api", dependencies=["/db"])
    target = root(web, api, app("/db"), app("/x"))
    assert steps(deploy(root(), target)) == [
        [("StartApplication", "/web"), ("StartApplication", "/api"), ("StartApplication", "/db"),
         ("StartApplication", "/x")],
        [("ScaleApplication", "/db"), ("ScaleApplication", "/x")],
        [("ScaleApplication", "/api")],
        [("ScaleApplication", "/web")],
    ]  # fmt: skip


def test_layers_count_unaffected_apps_on_the_path() -> None:
    """Only /web and /db change, but /web sits three deep: it waits for /db's step."""
    current = root(app("/web", dependencies=["/api"]), app("/api", dependencies=["/db"]), app("/db"))
    target = root(
        app("/web", dependencies=["/api"], cmd="v2"), app("/api", dependencies=["/db"]), app("/db", cmd="v2")
    )
    p = deploy(current, target)
    assert steps(p) == [[("RestartApplication", "/db")], [("RestartApplication", "/web")]]


def test_group_dependencies_order_all_their_apps() -> None:
    back = group("/back", [app("/back/db"), app("/back/cache")])
    front = group("/front", [app("/front/web")], groups=[group("/front/inner", [app("/front/inner/ui")])])
    front["dependencies"] = ["/back"]
    p = deploy(root(), root(groups=[front, back]))
    assert steps(p)[1:] == [
        [("ScaleApplication", "/back/db"), ("ScaleApplication", "/back/cache")],
        [("ScaleApplication", "/front/web"), ("ScaleApplication", "/front/inner/ui")],
    ]


def test_app_may_depend_on_a_group_and_on_relative_ids() -> None:
    target = root(groups=[group("/svc", [app("/svc/db"), app("/svc/api", dependencies=["../svc/db"])])])
    target["apps"].append(app("/web", dependencies=["/svc"]))
    graph = dependency_graph(target)
    assert graph == {"/web": {"/svc/db", "/svc/api"}, "/svc/db": set(), "/svc/api": {"/svc/db"}}
    assert [s[0][1] for s in steps(deploy(root(), target))[1:]] == ["/svc/db", "/svc/api", "/web"]


def test_group_dependency_on_an_app_adds_no_edge() -> None:
    """RootGroup.applicationDependencies only follows group → group dependencies."""
    target = root(app("/db"), groups=[group("/g", [app("/g/web")], deps=["/db"])])
    assert dependency_graph(target)["/g/web"] == set()


@pytest.mark.parametrize(
    "target",
    [
        root(app("/a", dependencies=["/b"]), app("/b", dependencies=["/a"])),
        root(app("/a", dependencies=["/a"])),
        root(groups=[group("/g", [app("/g/a")], deps=["/g"])]),  # a group on itself: every app on itself
        root(
            groups=[group("/x", [app("/x/a")], deps=["/y"]), group("/y", [app("/y/b", dependencies=["/x"])])]
        ),
    ],
)
def test_cycles_are_rejected(target: Json) -> None:
    with pytest.raises(CyclicDependencyError, match=CYCLE_MESSAGE):
        plan(root(), target, id="x", version=V1)
    with pytest.raises(CyclicDependencyError):
        validate_dependencies(target)


@st.composite
def root_changes(draw: st.DrawFn) -> tuple[Json, Json]:
    """Two acyclic roots over up to 8 apps (each may depend only on lower-numbered apps)."""

    def one_root() -> Json:
        apps = []
        for i in draw(st.sets(st.integers(0, 7))):
            deps = [f"/a{j}" for j in draw(st.sets(st.integers(0, 7))) if j < i]
            apps.append(app(f"/a{i}", dependencies=deps, instances=draw(st.integers(0, 3)),
                            cmd=draw(st.sampled_from(["x", "y"]))))  # fmt: skip
        return root(*sorted(apps, key=lambda a: a["id"]))

    return one_root(), one_root()


@settings(max_examples=200, deadline=None)
@given(root_changes())
def test_plan_invariants(pair: tuple[Json, Json]) -> None:
    current, target = pair
    target = with_versions(current, target, V1)
    p = plan(current, target, id="x", version=V1)
    old, new = apps_by_id(current), apps_by_id(target)
    assert plan(target, target, id="y", version=V1).is_empty
    step_of: dict[str, int] = {}
    for n, step in enumerate(p.steps):
        assert step.actions
        for a in step.actions:
            if a.verb in ("Scale", "Restart"):
                assert a.run_spec_id not in step_of, "at most one layer action per app"
                step_of[a.run_spec_id] = n
    stopped = {a.run_spec_id for s in p.steps for a in s.actions if a.verb == "Stop"}
    assert stopped == old.keys() - new.keys()
    for app_id, n in step_of.items():  # whatever it depends on and is deployed too comes earlier
        for dep in dependency_graph(target)[app_id]:
            assert step_of.get(dep, -1) < n
    for app_id in new.keys() - old.keys():
        assert app_id in step_of


# --- locking and rollback ------------------------------------------------------------------------------


def test_conflicts_are_plans_sharing_a_run_spec() -> None:
    base = root(app("/a"), app("/b"), app("/c"))
    p_ab = deploy(base, root(app("/a", cmd="x"), app("/b", instances=2), app("/c")), pid="p1")
    p_b = deploy(base, root(app("/a"), app("/b", cmd="y"), app("/c")), pid="p2")
    p_c = deploy(base, root(app("/a"), app("/b")), pid="p3")
    assert conflicts(p_b, [p_ab, p_c]) == [p_ab]
    assert conflicts(p_c, [p_ab, p_b]) == []
    assert AppLocked(p.id for p in conflicts(p_b, [p_ab])).body() == {
        "message": "App is locked by one or more deployments. Override with the option '?force=true'. "
        "View details at '/v2/deployments/<DEPLOYMENT_ID>'.",
        "deployments": [{"id": "p1"}],
    }


def test_rollback_restores_changed_removed_and_added_apps() -> None:
    current = root(app("/a"), app("/b", instances=2), app("/c"))
    target = root(app("/a", cmd="new"), app("/b", instances=4), groups=[group("/n", [app("/n/d")])])
    p = deploy(current, target)
    after = p.target  # what GET shows once the deployment started
    back = revert(p, after, id="r1", version=V2)
    assert back.id == "r1"
    assert steps(back) == [
        [("StopApplication", "/n/d")],
        [("StartApplication", "/c")],
        [("RestartApplication", "/a"), ("ScaleApplication", "/b"), ("ScaleApplication", "/c")],
    ]
    reverted = back.target
    assert {a["id"]: a["instances"] for a in apps_by_id(reverted).values()} == {"/a": 1, "/b": 2, "/c": 1}
    assert [g["id"] for g in reverted["groups"]] == []  # the added group went with its app
    assert apps_by_id(reverted)["/a"]["cmd"] == "sleep 1000"
    assert apps_by_id(reverted)["/a"]["versionInfo"] == {"lastScalingAt": V2, "lastConfigChangeAt": V2}


def test_rollback_leaves_concurrent_changes_alone() -> None:
    current = root(app("/a"), app("/b"))
    p = deploy(current, root(app("/a", cmd="new"), app("/b")))
    meanwhile = copy.deepcopy(p.target)
    meanwhile["apps"][1] = app("/b", cmd="other deployment", version=V2)
    meanwhile["groups"].append(group("/late", [app("/late/x")]))
    reverted = revert_root(p, meanwhile)
    assert apps_by_id(reverted)["/b"]["cmd"] == "other deployment"
    assert "/late/x" in apps_by_id(reverted)


def test_rollback_of_a_restart_restarts_nothing() -> None:
    """The reverted app differs only in version info, which versioning keeps (GroupVersioningUtil)."""
    current = root(app("/a"))
    p = deploy(current, root(mark_for_restart(app("/a"))))
    assert revert(p, p.target, id="r", version=V2).is_empty


def test_rollback_of_group_dependencies() -> None:
    current = root(groups=[group("/x", [app("/x/a")], deps=["/y"]), group("/y", [app("/y/b")])])
    target = root(groups=[group("/x", [app("/x/a")], deps=["/z"]), group("/z", [app("/z/c")])])
    p = deploy(current, target)
    reverted = revert_root(p, p.target)
    by_id = {g["id"]: g for g in reverted["groups"]}
    assert set(by_id) == {"/x", "/y"}
    assert by_id["/x"]["dependencies"] == ["/y"]
    assert [a["id"] for a in by_id["/y"]["apps"]] == ["/y/b"]


# --- JSON ----------------------------------------------------------------------------------------------


def sample_plan() -> DeploymentPlan:
    current = root(app("/a"), app("/old"))
    target = root(app("/a", instances=3), app("/new"))
    target["enforceRole"] = False
    return plan(current, with_versions(current, target, V1), id="97c136bf", version=V1)


def test_deployments_json_shape() -> None:
    p = sample_plan()
    assert deployment_info_json(initial_step_info(p)) == {
        "id": "97c136bf",
        "version": V1,
        "affectedApps": ["/a", "/new", "/old"],
        "affectedPods": [],
        "steps": [
            {"actions": [{"action": "StopApplication", "app": "/old"}]},
            {"actions": [{"action": "StartApplication", "app": "/new"}]},
            {
                "actions": [
                    {"action": "ScaleApplication", "app": "/a"},
                    {"action": "ScaleApplication", "app": "/new"},
                ]
            },
        ],
        "currentActions": [],
        "currentStep": 0,
        "totalSteps": 3,
    }
    result = {"taskId": "a.instance-1._app.1", "name": "readinessCheck", "ready": False}
    info = StepInfo(p, p.steps[2], 3, {"/a": [result]})
    assert deployment_info_json(info)["currentActions"] == [
        {"action": "ScaleApplication", "app": "/a", "readinessCheckResults": [result]},
        {"action": "ScaleApplication", "app": "/new", "readinessCheckResults": []},
    ]
    assert step_info(p, 1).step == p.steps[0]
    assert dry_run_json(p)["steps"] == deployment_info_json(info)["steps"]
    assert deployment_result_json(p) == {"deploymentId": "97c136bf", "version": V1}
    pod = DeploymentStep((DeploymentAction("Scale", "/pod", kind="pod", scale_to=1),))
    assert dry_run_json(DeploymentPlan("p", V1, root(), root(), (pod,))) == {
        "steps": [{"actions": [{"action": "ScalePod", "pod": "/pod"}]}]
    }


def test_deployment_events_light_and_full() -> None:
    p = sample_plan()
    light = event_json("deployment_info", p, timestamp=V2, step=p.steps[0])
    assert light == {
        "plan": {"id": "97c136bf", "steps": plan_json(p)["steps"], "version": V1},
        "currentStep": {"actions": [{"action": "StopApplication", "app": "/old"}]},
        "eventType": "deployment_info",
        "timestamp": V2,
    }
    full = event_json("deployment_step_success", p, timestamp=V2, step=p.steps[0], full=True)["plan"]
    # marathon-python: MarathonDeploymentPlan(**plan), MarathonDeployment{Original,Target}State(**group)
    assert set(full) == {"id", "original", "target", "steps", "version"}
    assert set(full["target"]) <= {"id", "apps", "pods", "groups", "dependencies", "version"}
    assert [a["id"] for a in full["original"]["apps"]] == ["/a", "/old"]
    assert event_json("deployment_success", p, timestamp=V2) == {
        "id": "97c136bf", "plan": plan_json(p), "eventType": "deployment_success", "timestamp": V2
    }  # fmt: skip
    failed = event_json("deployment_failed", p, timestamp=V2, reason="The upgrade has been cancelled")
    assert failed["reason"] == "The upgrade has been cancelled"
    assert json.loads(json.dumps(failed)) == failed
    with pytest.raises(ValueError):
        event_json("deployment_step_failure", p, timestamp=V2)
    with pytest.raises(ValueError):
        event_json("group_change_success", p, timestamp=V2)


def test_storage_round_trip() -> None:
    p = sample_plan()
    kill_and_scale = DeploymentStep((DeploymentAction("Scale", "/a", scale_to=2, sentenced=("i1",)),))
    p = DeploymentPlan(p.id, p.version, p.original, p.target, (*p.steps, kill_and_scale))
    stored: dict[str | None, Any] = {V0: p.original, V1: p.target, None: {"id": "/"}}
    data = dump_plan(p)
    assert (json.loads(data)["originalVersion"], json.loads(data)["targetVersion"]) == (V0, V1)
    assert load_plan(data, stored.__getitem__) == p
    first = plan({"id": "/"}, p.target, id="first", version=V1)  # the very first deployment: no root version
    assert load_plan(dump_plan(first), stored.__getitem__) == first
    with pytest.raises(ValueError):
        load_plan(data.replace(b'"Scale"', b'"Explode"'), stored.__getitem__)
