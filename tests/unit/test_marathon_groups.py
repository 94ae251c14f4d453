"""marathon_py group tree: placement and removal, versions, dependencies and cycles, scaleBy, group
updates (relative ids, nested groups, Marathon's messages) and cluster-unique service ports."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marathon_py import appdef, groups, groupupdate
from marathon_py.validation import Conflict, InvalidJson, ValidationError

V1 = "2024-05-01T10:00:00.000Z"
V2 = "2024-05-02T10:00:00.000Z"


def app(app_id: str, **fields: Any) -> dict[str, Any]:
    return appdef.normalize({"id": app_id, "cmd": "sleep 1000", **fields})


def tree(*apps: dict[str, Any], version: str | None = None) -> dict[str, Any]:
    root = groups.empty_root()
    for item in apps:
        root = groups.put_app(root, item, version)
    return root


def errors_of(exc: pytest.ExceptionInfo[Any]) -> dict[str, list[str]]:
    return {d["path"]: d["errors"] for d in exc.value.body()["details"]}


# --- the tree ---------------------------------------------------------------------------------------------


def test_put_app_creates_parents_and_stamps_versions() -> None:
    root = groups.put_app(groups.empty_root(V1), app("/prod/web/api"), V2)
    prod = groups.find_group(root, "/prod")
    web = groups.find_group(root, "/prod/web")
    assert prod is not None and web is not None
    assert prod["enforceRole"] is False and "enforceRole" not in web and "enforceRole" not in root
    assert {g["version"] for g in groups.iter_groups(root)} == {V2}
    assert groups.find_app(root, "/prod/web/api")["id"] == "/prod/web/api"  # type: ignore[index]
    assert groups.find_app(root, "/prod/web/none") is None and groups.find_group(root, "/nope/x") is None
    assert groups.to_json(root) == {
        "id": "/",
        "apps": [],
        "pods": [],
        "groups": [
            {
                "id": "/prod",
                "apps": [],
                "pods": [],
                "groups": [
                    {
                        "id": "/prod/web",
                        "apps": [appdef.to_json(app("/prod/web/api"))],
                        "pods": [],
                        "groups": [],
                        "dependencies": [],
                        "version": V2,
                    }
                ],
                "dependencies": [],
                "version": V2,
                "enforceRole": False,
            }
        ],
        "dependencies": [],
        "version": V2,
    }


def test_trees_are_values() -> None:
    before = tree(app("/a/one"))
    snapshot = groups.to_json(before)
    after = groups.put_app(before, app("/a/two"), V1)
    assert groups.to_json(before) == snapshot
    assert [a["id"] for a in groups.all_apps(after)] == ["/a/one", "/a/two"]
    replaced = groups.put_app(after, app("/a/one", instances=3))
    assert [(a["id"], a["instances"]) for a in groups.all_apps(replaced)] == [("/a/one", 3), ("/a/two", 1)]


def test_put_app_drops_an_empty_group_with_the_same_id() -> None:
    root = groups.put_group(groups.empty_root(), groups.new_group("/a/b"))
    root = groups.put_app(root, app("/a/b"))
    assert groups.find_group(root, "/a/b") is None and groups.find_app(root, "/a/b") is not None
    clash = groups.put_app(tree(app("/a/b/c")), app("/a/b"))
    with pytest.raises(ValidationError) as exc:
        groups.validate_root(clash)
    assert errors_of(exc) == {"/groups(0)": ["Groups and Applications may not have the same identifier."]}


def test_remove() -> None:
    root = tree(app("/a/x"), app("/a/b/y"), app("/z"))
    assert [a["id"] for a in groups.all_apps(groups.remove(root, "/a/x"))] == ["/z", "/a/b/y"]
    assert [a["id"] for a in groups.all_apps(groups.remove(root, "/a/b", V2))] == ["/z", "/a/x"]
    assert groups.remove(root, "/nothing") is root
    assert groups.remove(root, "/nothing", V2)["version"] == V2
    assert groups.remove(root, "/", V2) == groups.empty_root(V2)


def test_scale_by_rounds_up_every_app_below_the_group() -> None:
    root = tree(app("/a/x", instances=3), app("/a/b/y", instances=1), app("/c", instances=2))
    scaled = groups.scale_by(root, "/a", 1.5, V2)
    assert {a["id"]: a["instances"] for a in groups.all_apps(scaled)} == {"/c": 2, "/a/x": 5, "/a/b/y": 2}
    assert groups.find_group(scaled, "/a")["version"] == V2  # type: ignore[index]


def test_conflict_messages() -> None:
    root = tree(app("/g/x"))
    with pytest.raises(Conflict) as exc:
        groups.check_absent(root, "/g/x", kind="app")
    assert exc.value.status == 409 and exc.value.body() == {
        "message": "An app with id [/g/x] already exists."
    }
    with pytest.raises(Conflict, match=r"^Group /g is already created. Use PUT to change this group.$"):
        groups.check_absent(root, "/g", kind="group")
    with pytest.raises(Conflict, match=r"^An app with the path /g/x already exists.$"):
        groups.check_absent(root, "/g/x", kind="group")
    groups.check_absent(root, "/h", kind="group")


# --- dependencies ----------------------------------------------------------------------------------------


def test_dependency_graph_follows_apps_and_groups() -> None:
    root = tree(app("/db/mongo"), app("/db/redis"), app("/web/api", dependencies=["/db"]), app("/web/ui"))
    root = groups.put_group(root, {**groups.find_group(root, "/web"), "dependencies": ["/db"]})  # type: ignore[dict-item]
    root = groups.put_app(root, app("/tools", dependencies=["/web/ui", "/missing"]))
    graph = groups.app_dependencies(root)
    assert graph == {
        "/tools": {"/web/ui"},
        "/db/mongo": set(),
        "/db/redis": set(),
        "/web/api": {"/db/mongo", "/db/redis"},
        "/web/ui": {"/db/mongo", "/db/redis"},
    }
    assert not groups.has_cycle(graph)
    groups.validate_root(root)


def test_cycles_are_rejected_with_marathons_message() -> None:
    root = tree(
        app("/a", dependencies=["/b"]), app("/b", dependencies=["/c"]), app("/c", dependencies=["/a"])
    )
    with pytest.raises(ValidationError) as exc:
        groups.validate_root(root)
    assert exc.value.body() == {
        "message": "Object is not valid",
        "details": [{"path": "/", "errors": ["Dependency graph has cyclic dependencies."]}],
    }
    inner = tree(app("/g/sub/x"))
    inner = groups.put_group(inner, {**groups.find_group(inner, "/g/sub"), "dependencies": ["/g"]})  # type: ignore[dict-item]
    assert groups.has_cycle(groups.app_dependencies(inner))  # a group depending on its parent: self-loop


def test_dependency_layers_and_the_cycle_error_planner_and_api_share() -> None:
    assert groups.dependency_depths({"/a": {"/b"}, "/b": set(), "/c": {"/a", "/b"}}) == {
        "/b": 1,
        "/a": 2,
        "/c": 3,
    }
    root = tree(app("/a", dependencies=["/b"]), app("/b", dependencies=["/a"]))
    with pytest.raises(groups.CyclicDependencyError) as exc:
        groups.validate_dependencies(root)
    assert exc.value.status == 422 and errors_of(exc) == {"/": ["Dependency graph has cyclic dependencies."]}


def test_cycle_detection_has_no_recursion_limit() -> None:
    chain = {str(i): {str(i + 1)} for i in range(20000)}
    assert not groups.has_cycle(chain)
    chain["20000"] = {"0"}
    assert groups.has_cycle(chain)


# --- versions ----------------------------------------------------------------------------------------------


def test_set_versions_against_the_old_tree() -> None:
    old = groups.set_versions(groups.empty_root(), tree(app("/a"), app("/b"), app("/c")), V1)
    assert {a["version"] for a in groups.all_apps(old)} == {V1}
    target = tree(app("/a"), app("/b", instances=4), app("/c", cmd="other"), app("/d"))
    new = groups.set_versions(old, target, V2, restarted=("/a",))
    info = {a["id"]: (a["version"], a["versionInfo"]) for a in groups.all_apps(new)}
    assert info == {
        "/a": (V2, {"lastScalingAt": V2, "lastConfigChangeAt": V1}),  # a restart is no config change (1.10)
        "/b": (V2, {"lastScalingAt": V2, "lastConfigChangeAt": V1}),
        "/c": (V2, {"lastScalingAt": V2, "lastConfigChangeAt": V2}),
        "/d": (V2, {"lastScalingAt": V2, "lastConfigChangeAt": V2}),
    }
    untouched = groups.set_versions(old, tree(app("/a")), V2)
    assert groups.find_app(untouched, "/a")["version"] == V1 and untouched["version"] == V2  # type: ignore[index]


def test_restart_marker_in_the_target_restarts() -> None:
    """POST /v2/apps/{id}/restart puts the app marked (NoVersion) into the target; a version-less re-post
    is no restart."""
    old = groups.set_versions(groups.empty_root(), tree(app("/a")), V1)
    marked = appdef.mark_for_restart(groups.find_app(old, "/a") or {})
    assert marked["version"] == appdef.NO_VERSION and "versionInfo" not in marked
    restarted = groups.find_app(groups.set_versions(old, groups.put_app(old, marked), V2), "/a")
    assert restarted is not None and appdef.needs_restart(groups.find_app(old, "/a") or {}, restarted)
    assert (restarted["version"], restarted["versionInfo"]) == (
        V2,
        {"lastScalingAt": V2, "lastConfigChangeAt": V1},
    )


# --- service ports -----------------------------------------------------------------------------------------


def test_service_ports_are_cluster_unique_and_skip_used_ones() -> None:
    fixed = app("/fixed", portDefinitions=[{"port": 10001}])
    root = tree(fixed)
    first = groups.assign_service_ports(root, app("/one", portDefinitions=[{"port": 0}, {"port": 0}]))
    assert appdef.service_ports(first) == [10000, 10002]
    root = groups.put_app(root, first)
    bridge = {
        "type": "DOCKER",
        "docker": {"image": "i", "network": "BRIDGE"},
        "portMappings": [{"containerPort": 80}],
    }
    second = groups.assign_service_ports(root, app("/two", container=bridge))
    assert appdef.service_ports(second) == [10003]
    assert second["container"]["portMappings"][0]["servicePort"] == 10003


def test_service_ports_stick_when_reposted_with_zeros() -> None:
    root = groups.assign_dynamic_service_ports(groups.empty_root(), tree(app("/a"), app("/b")))
    assert [appdef.service_ports(a) for a in groups.all_apps(root)] == [[10000], [10001]]
    reposted = groups.assign_service_ports(root, app("/a"))
    assert appdef.service_ports(reposted) == [10000]
    assert not appdef.is_upgrade(groups.find_app(root, "/a"), reposted)  # type: ignore[arg-type]
    grown = groups.assign_service_ports(root, app("/b", portDefinitions=[{"port": 0}, {"port": 0}]))
    assert appdef.service_ports(grown) == [10001, 10002]
    fixed_now = groups.assign_service_ports(root, app("/b", portDefinitions=[{"port": 12345}]))
    assert appdef.service_ports(fixed_now) == [12345]


def test_unchanged_apps_keep_their_ports_and_exhaustion_is_reported() -> None:
    root = groups.assign_dynamic_service_ports(groups.empty_root(), tree(app("/a")), (20000, 20001))
    again = groups.assign_dynamic_service_ports(root, root, (20000, 20001))
    assert appdef.service_ports(groups.find_app(again, "/a")) == [20000]  # type: ignore[arg-type]
    two = app("/b", portDefinitions=[{"port": 0}, {"port": 0}])
    with pytest.raises(groups.PortRangeExhausted) as exc:
        groups.assign_service_ports(root, two, (20000, 20001))
    assert exc.value.status == 500
    assert exc.value.body() == {"message": "All ports in the range [20000-20001) are already in use"}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.lists(st.integers(10000, 10030), max_size=2, unique=True)),
        min_size=1,
        max_size=8,
    )
)
def test_assigned_service_ports_never_collide(specs: list[tuple[int, list[int]]]) -> None:
    used_fixed: set[int] = set()
    target = groups.empty_root()
    for i, (zeros, fixed) in enumerate(specs):
        fixed = [p for p in fixed if p not in used_fixed]
        used_fixed |= set(fixed)
        definitions = [{"port": p} for p in fixed] + [{"port": 0}] * zeros
        target = groups.put_app(target, app(f"/g{i % 3}/app{i}", portDefinitions=definitions))
    assigned = groups.assign_dynamic_service_ports(groups.empty_root(), target, (10000, 10100))
    ports = [p for a in groups.all_apps(assigned) for p in appdef.service_ports(a)]
    assert 0 not in ports and len(ports) == len(set(ports))
    assert all(10000 <= p <= 10100 for p in ports)
    again = groups.assign_dynamic_service_ports(assigned, target, (10000, 10100))  # re-posted with zeros
    assert [appdef.service_ports(a) for a in groups.all_apps(again)] == [
        appdef.service_ports(a) for a in groups.all_apps(assigned)
    ]


# --- group updates -----------------------------------------------------------------------------------------


def test_group_update_resolves_relative_ids() -> None:
    body = {
        "id": "prod",
        "dependencies": ["../shared"],
        "apps": [{"id": "web", "cmd": "run web", "dependencies": ["back/db"]}],
        "groups": [{"id": "back", "apps": [{"id": "db", "cmd": "run db"}], "dependencies": ["/shared"]}],
    }
    update = groupupdate.normalize_update(body)
    assert update["id"] == "/prod" and update["enforceRole"] is False
    assert update["dependencies"] == ["/shared"]
    assert [a["id"] for a in update["apps"]] == ["/prod/web"] and update["apps"][0]["dependencies"] == [
        "/prod/back/db"
    ]
    assert (
        update["groups"][0]["id"] == "/prod/back" and update["groups"][0]["apps"][0]["id"] == "/prod/back/db"
    )
    root = groupupdate.apply_update(groups.empty_root(), update, V1)
    assert [a["id"] for a in groups.all_apps(root)] == ["/prod/web", "/prod/back/db"]
    assert groups.find_group(root, "/prod")["dependencies"] == ["/shared"]  # type: ignore[index]
    assert groups.app_dependencies(root)["/prod/web"] == {"/prod/back/db"}
    nested = groupupdate.normalize_update({"apps": [{"id": "x", "cmd": "a b"}]}, "/prod/back")
    assert (
        nested["id"] == "/prod/back"
        and nested["apps"][0]["id"] == "/prod/back/x"
        and "enforceRole" not in nested
    )


def test_group_update_replaces_listed_apps_and_groups_wholesale() -> None:
    root = tree(app("/g/a"), app("/g/b"), app("/g/sub/c"), app("/g/other/d"))
    update = groupupdate.normalize_update(
        {"apps": [{"id": "b", "cmd": "new cmd"}], "groups": [{"id": "sub"}]}, "/g"
    )
    new = groupupdate.apply_update(root, update, V2)
    assert [a["id"] for a in groups.all_apps(new)] == ["/g/b", "/g/sub/c"]
    assert groups.find_app(new, "/g/b")["cmd"] == "new cmd"  # type: ignore[index]
    keep = groupupdate.apply_update(root, groupupdate.normalize_update({"dependencies": ["/x"]}, "/g"), V2)
    assert len(groups.all_apps(keep)) == 4 and groups.find_group(keep, "/g")["dependencies"] == ["/x"]  # type: ignore[index]


def test_group_update_rules() -> None:
    def rejected(body: dict[str, Any], gid: str = "/") -> dict[str, list[str]]:
        with pytest.raises(ValidationError) as exc:
            groupupdate.normalize_update(body, gid)
        return errors_of(exc)

    assert rejected({"id": "/prod", "apps": [{"id": "/other/web", "cmd": "a b"}]}) == {
        "/apps(0)/id": ["Identifier is not child of '/prod'"]
    }
    assert rejected({"id": "/prod", "groups": [{"id": "/elsewhere"}]}) == {
        "/groups(0)/id": ["Identifier is not child of '/prod'"]
    }
    assert rejected({"id": "/prod", "groups": [{"id": "second", "enforceRole": True}]}) == {
        "/groups(0)/enforceRole": [
            "enforceRole can only be set for top-level groups, and /prod/second is not top-level"
        ]
    }
    assert rejected({"id": "/prod", "scaleBy": 2}) == {
        "/scaleBy": ["not allowed in conjunction with other properties."]
    }
    assert rejected({"version": V1, "apps": []}) == {
        "/version": ["not allowed in conjunction with other properties."]
    }
    assert rejected({"groups": [{"apps": []}]}) == {"/groups(0)": ["No group id was given!"]}
    # a nested app's own errors keep its own paths, as in Marathon
    assert rejected({"id": "/g", "apps": [{"id": "x"}]}) == {
        "/": ["AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."]
    }
    with pytest.raises(InvalidJson) as exc:
        groupupdate.normalize_update({"id": "/g", "apps": [{"id": "x", "cpus": -1}], "scaleBy": "x"})
    assert errors_of(exc) == {"/apps(0)/cpus": ["error.min"], "/scaleBy": ["error.expected.jsnumber"]}


def test_scale_and_rollback_bodies() -> None:
    assert groupupdate.normalize_update({"scaleBy": 2}, "/g") == {"id": "/g", "scaleBy": 2.0}
    assert groupupdate.normalize_update({"version": V1}, "/g") == {"id": "/g", "version": V1}
    root = tree(app("/g/a", instances=2))
    scaled = groupupdate.apply_update(root, {"id": "/g", "scaleBy": 2.0}, V2)
    assert groups.find_app(scaled, "/g/a")["instances"] == 4  # type: ignore[index]
    with pytest.raises(ValueError):
        groupupdate.apply_update(root, {"id": "/g", "version": V1}, V2)


def test_enforced_role_of_a_top_level_group_applies_to_its_apps() -> None:
    update = groupupdate.normalize_update(
        {"id": "/dev", "enforceRole": True, "apps": [{"id": "a", "cmd": "x y"}]}
    )
    assert update["enforceRole"] is True and update["apps"][0]["role"] == "dev"
    root = groupupdate.apply_update(groups.empty_root(), update, V1)
    assert groups.find_group(root, "/dev")["enforceRole"] is True  # type: ignore[index]
    with pytest.raises(ValidationError) as exc:
        groupupdate.normalize_update(
            {"apps": [{"id": "b", "cmd": "x y", "role": "*"}]}, "/dev/sub", root=root
        )
    assert errors_of(exc) == {"/role": ["got *, expected one of: [dev]"]}


def test_role_settings_for_posted_apps() -> None:
    root = groupupdate.apply_update(groups.empty_root(), {"id": "/dev", "enforceRole": True}, V1)
    dev = groupupdate.settings_for_app(root, "/dev/api")
    assert dev.default_role == "dev" and dev.valid_roles == {"dev"}
    assert appdef.normalize({"id": "/dev/api", "cmd": "x y"}, settings=dev)["role"] == "dev"
    with pytest.raises(ValidationError):
        appdef.normalize({"id": "/dev/api", "cmd": "x y", "role": "*"}, settings=dev)
    free = groupupdate.settings_for_app(root, "/ops/api", new_group_enforce_role=False)
    assert free.default_role == "*" and free.valid_roles == {"*", "ops"}
    assert groupupdate.settings_for_app(root, "/top").valid_roles == {"*"}


def test_full_deployment_preparation_pipeline() -> None:
    root = groups.set_versions(
        groups.empty_root(), groups.assign_dynamic_service_ports(groups.empty_root(), tree(app("/g/a"))), V1
    )
    update = groupupdate.normalize_update(
        {"apps": [{"id": "a", "cmd": "sleep 1000"}, {"id": "b", "cmd": "x y"}]}, "/g"
    )
    target = groupupdate.apply_update(root, update, V2)
    target = groups.assign_dynamic_service_ports(root, target)
    target = groups.set_versions(root, target, V2)
    groups.validate_root(target)
    a, b = groups.find_app(target, "/g/a"), groups.find_app(target, "/g/b")
    assert a is not None and b is not None
    assert appdef.service_ports(a) == [10000] and a["version"] == V1  # unchanged: no new version, same port
    assert appdef.service_ports(b) == [10001] and b["version"] == V2
