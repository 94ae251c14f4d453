"""The deployment planner: current root group + target root group → ordered steps, as Marathon 1.10's
``DeploymentPlan.apply`` computes them (reference §7.3), plus locking conflicts (§7.4), the versioning every
root update applies first (``upgrade/GroupVersioningUtil.scala``) and the rollback target of
``DELETE /v2/deployments/{id}`` (``core/deployment/impl/DeploymentPlanReverter.scala``, §2.3).

Pure: root groups are plain ``/v2/groups`` dicts and are never changed in place.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from marathon_py.deployment import (
    App,
    DeploymentAction,
    DeploymentPlan,
    DeploymentStep,
    Group,
    JsonDict,
    apps_by_id,
    iter_apps,
    iter_groups,
)

CYCLE_MESSAGE = "Dependency graph has cyclic dependencies."
# VersionInfo.NoVersion (Timestamp(0)): an app carrying it is restarted by the next root update.
NO_VERSION = "1970-01-01T00:00:00.000Z"

# AppDefinition.isUpgrade (§4.2), as JSON keys; the Scala model holds the _SET_FIELDS as sets.
_UPGRADE_FIELDS = (
    "cmd", "args", "user", "env", "cpus", "mem", "disk", "gpus", "executor", "constraints", "fetch",
    "portDefinitions", "requirePorts", "backoffSeconds", "backoffFactor", "maxLaunchDelaySeconds",
    "container", "healthChecks", "check", "taskKillGracePeriodSeconds", "dependencies", "upgradeStrategy",
    "labels", "acceptedResourceRoles", "networks", "readinessChecks", "secrets", "unreachableStrategy",
    "killSelection", "tty", "role", "resourceLimits",
)  # fmt: skip
_SET_FIELDS = frozenset({"constraints", "healthChecks", "dependencies", "acceptedResourceRoles"})
# AppInfo extras that only embedding adds: not part of the definition.
_EMBED_KEYS = frozenset(
    {"tasks", "tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy", "tasksStats", "deployments",
     "readinessCheckResults", "lastTaskFailure"}
)  # fmt: skip


class CyclicDependencyError(ValueError):
    """The target's dependency graph has a cycle (422 in the API)."""

    def __init__(self) -> None:
        super().__init__(CYCLE_MESSAGE)


# --- restart vs scale (§4.2) ---


def _field(app: App, key: str) -> Any:
    value = app.get(key)
    if key in _SET_FIELDS and isinstance(value, list):
        return frozenset(json.dumps(v, sort_keys=True) for v in value)
    return value


def _is_upgrade(old: App, new: App) -> bool:
    return any(_field(old, k) != _field(new, k) for k in _UPGRADE_FIELDS)


def _version_info(app: App) -> tuple[Any, Any]:
    """Marathon's VersionInfo, which includes the version itself."""
    return app.get("version"), app.get("versionInfo")


def _needs_restart(old: App, new: App) -> bool:
    """``needsRestart``: a config change, or a new version info (``/restart``). Private stand-in until
    ``marathon_py.appdef`` provides the shared comparison."""
    return _version_info(old) != _version_info(new) or _is_upgrade(old, new)


def _is_only_scale_change(old: App, new: App) -> bool:
    return not _is_upgrade(old, new) and old.get("instances") != new.get("instances")


def _definition(app: App) -> dict[str, Any]:
    return {k: v for k, v in app.items() if k not in _EMBED_KEYS}


# --- dependency graph (RootGroup.applicationDependencies) ---


def _absolute(ref: str, base: str) -> str:
    """Resolve a possibly relative path id against a group id (PathId.canonicalPath)."""
    parts = [] if ref.startswith("/") else [p for p in base.split("/") if p]
    for seg in ref.split("/"):
        if seg == "..":
            if parts:
                parts.pop()
        elif seg not in ("", "."):
            parts.append(seg)
    return "/" + "/".join(parts)


def _parent(path_id: str) -> str:
    return _absolute("..", path_id)


def dependency_graph(root: Group) -> dict[str, set[str]]:
    """App id → ids of the apps it depends on. A group dependency on a group makes every app of the one
    depend on every app of the other; an app may depend on an app or on all apps of a group. Unknown ids,
    and groups depending on apps, add nothing (as in Marathon)."""
    groups = {g["id"]: g for g in iter_groups(root)}
    app_ids = {a["id"] for a in iter_apps(root)}
    graph: dict[str, set[str]] = {a: set() for a in app_ids}
    group_apps = {gid: [a["id"] for a in iter_apps(g)] for gid, g in groups.items()}
    for gid, group in groups.items():
        for dep in group.get("dependencies") or ():
            targets = group_apps.get(_absolute(dep, gid), [])
            for app_id in group_apps[gid]:
                graph[app_id].update(targets)
    for app in iter_apps(root):
        base = _parent(app["id"])
        for dep in app.get("dependencies") or ():
            dep_id = _absolute(dep, base)
            graph[app["id"]].update([dep_id] if dep_id in app_ids else group_apps.get(dep_id, []))
    return graph


def _longest_paths(graph: Mapping[str, set[str]]) -> dict[str, int]:
    """Vertices on the longest dependency path from each app (1 = depends on nothing); a cycle raises."""
    length: dict[str, int] = {}
    for start in graph:
        if start in length:
            continue
        on_path: set[str] = {start}
        stack = [(start, iter(sorted(graph[start])))]
        while stack:
            node, deps = stack[-1]
            nxt = next(deps, None)
            if nxt is None:
                stack.pop()
                on_path.discard(node)
                length[node] = 1 + max((length[d] for d in graph[node]), default=0)
            elif nxt in on_path:
                raise CyclicDependencyError()
            elif nxt not in length:
                on_path.add(nxt)
                stack.append((nxt, iter(sorted(graph[nxt]))))
    return length


def validate_dependencies(root: Group) -> None:
    """Raise CyclicDependencyError when the root's dependency graph has a cycle."""
    _longest_paths(dependency_graph(root))


# --- the plan ---


def _layer_action(old: App | None, new: App, to_kill: Sequence[str]) -> DeploymentAction | None:
    app_id, instances = new["id"], new.get("instances", 1)
    if old is None:
        return DeploymentAction("Scale", app_id, scale_to=instances)
    if _is_only_scale_change(old, new) or instances == 0:
        return DeploymentAction("Scale", app_id, scale_to=instances, sentenced=tuple(to_kill))
    if _needs_restart(old, new):
        return DeploymentAction("Restart", app_id)
    return None


def plan(
    current_root: Group,
    target_root: Group,
    *,
    id: str,
    version: str,
    to_kill: Mapping[str, Sequence[str]] | None = None,
) -> DeploymentPlan:
    """Steps from ``current_root`` to ``target_root`` (apps already versioned, see ``with_versions``):
    stop removed apps; start new ones at 0 instances; then one step per dependency layer (longest path in
    the target's graph, ascending) scaling new and scale-only apps and restarting changed ones. Empty steps
    are dropped. ``to_kill`` names instances a kill-and-scale sentenced (app id → instance ids)."""
    old_apps, new_apps = apps_by_id(current_root), apps_by_id(target_root)
    layers = _longest_paths(dependency_graph(target_root))
    stop = [DeploymentAction("Stop", i) for i in old_apps if i not in new_apps]
    start = [DeploymentAction("Start", i, scale_to=0) for i in new_apps if i not in old_apps]
    by_layer: dict[int, list[DeploymentAction]] = {}
    for app_id, app in new_apps.items():
        old = old_apps.get(app_id)
        if old is not None and _definition(old) == _definition(app):
            continue
        action = _layer_action(old, app, (to_kill or {}).get(app_id, ()))
        if action is not None:
            by_layer.setdefault(layers[app_id], []).append(action)
    steps = [stop, start] + [by_layer[k] for k in sorted(by_layer)]
    return DeploymentPlan(
        id=id,
        version=version,
        original=current_root,
        target=target_root,
        steps=tuple(DeploymentStep(tuple(s)) for s in steps if s),
    )


def conflicts(new_plan: DeploymentPlan, running: Iterable[DeploymentPlan]) -> list[DeploymentPlan]:
    """Running plans that lock a run spec the new plan touches: 409 unless forced, cancelled if forced."""
    mine = new_plan.affected_ids
    return [p for p in running if p.id != new_plan.id and mine & p.affected_ids]


# --- versioning (GroupVersioningUtil.updateVersionInfoForChangedApps) ---


def mark_for_restart(app: App) -> JsonDict:
    """What ``POST /v2/apps/{id}/restart`` puts into the target root (``markedForRestarting``)."""
    out = {k: v for k, v in app.items() if k != "versionInfo"}
    out["version"] = NO_VERSION
    return out


def _new_version_info(old: App | None, new: App, version: str) -> tuple[Any, Any]:
    fresh = {"lastScalingAt": version, "lastConfigChangeAt": version}
    if old is None or _is_upgrade(old, new):
        return version, fresh
    restarted = new.get("version") == NO_VERSION and _version_info(old) != _version_info(new)
    if _is_only_scale_change(old, new) or restarted:
        last_config = (old.get("versionInfo") or {}).get("lastConfigChangeAt", old.get("version"))
        return version, {"lastScalingAt": version, "lastConfigChangeAt": last_config}
    return _version_info(old)


def with_versions(current_root: Group, target_root: Group, version: str) -> JsonDict:
    """The target as a root update stores it: every group gets ``version``; new and changed apps get a new
    version (config change: both timestamps; scale or restart: ``lastScalingAt`` only); others keep theirs."""
    root: JsonDict = copy.deepcopy(dict(target_root))
    old_apps = apps_by_id(current_root)
    for group in iter_groups(root):
        group["version"] = version
    for app in iter_apps(root):
        v, info = _new_version_info(old_apps.get(app["id"]), app, version)
        app["version"] = v
        if info is None:
            app.pop("versionInfo", None)
        else:
            app["versionInfo"] = info
    return root


# --- rollback (DeploymentPlanReverter) ---


def _segments(path_id: str) -> list[str]:
    return [p for p in path_id.split("/") if p]


def _find_group(root: JsonDict, group_id: str) -> JsonDict | None:
    return next((g for g in iter_groups(root) if g["id"] == group_id), None)


def _ensure_group(root: JsonDict, group_id: str) -> JsonDict:
    """The group, created with any missing parents (``mkdir -p``, as RootGroup.putGroup)."""
    group, path = root, ""
    for seg in _segments(group_id):
        path += "/" + seg
        subs: list[JsonDict] = group.setdefault("groups", [])
        found = next((g for g in subs if g["id"] == path), None)
        if found is None:
            found = {"id": path, "apps": [], "pods": [], "groups": [], "dependencies": []}
            subs.append(found)
        group = found
    return group


def _has_run_specs(group: Group) -> bool:
    return any(g.get("apps") or g.get("pods") for g in iter_groups(group))


def _put_app(root: JsonDict, app: App) -> None:
    group = _ensure_group(root, _parent(app["id"]))
    apps = [a for a in group.get("apps", []) if a["id"] != app["id"]]
    group["apps"] = [*apps, copy.deepcopy(dict(app))]
    # an empty group in the app's place gives way (RootGroup.updateApp)
    group["groups"] = [g for g in group.get("groups", []) if g["id"] != app["id"] or _has_run_specs(g)]


def _remove_app(root: JsonDict, app_id: str) -> None:
    group = _find_group(root, _parent(app_id))
    if group is not None:
        group["apps"] = [a for a in group.get("apps", []) if a["id"] != app_id]


def _remove_group(root: JsonDict, group_id: str) -> None:
    parent = _find_group(root, _parent(group_id))
    if parent is not None:
        parent["groups"] = [g for g in parent.get("groups", []) if g["id"] != group_id]


def _set_dependencies(root: JsonDict, group_id: str, deps: set[str]) -> None:
    group = _ensure_group(root, group_id)
    if set(group.get("dependencies") or ()) != deps:
        group["dependencies"] = sorted(deps)


def _revert_group(root: JsonDict, old: Group | None, new: Group | None) -> None:
    if old is not None:
        current = set(_ensure_group(root, old["id"]).get("dependencies") or ())
        old_deps, new_deps = set(old.get("dependencies") or ()), set((new or {}).get("dependencies") or ())
        if new is None:  # the plan removed the group: re-add its dependencies
            _set_dependencies(root, old["id"], current | old_deps)
        else:
            _set_dependencies(root, old["id"], (current | (old_deps - new_deps)) - (new_deps - old_deps))
        return
    assert new is not None
    group = _find_group(root, new["id"])
    new_deps = set(new.get("dependencies") or ())
    emptied = group is not None and not (group.get("apps") or group.get("pods") or group.get("groups"))
    if emptied and set((group or {}).get("dependencies") or ()) == new_deps:
        _remove_group(root, new["id"])
        return
    if new_deps:
        current = set((group or {}).get("dependencies") or ())
        _set_dependencies(root, new["id"], current - new_deps)


def revert_root(deployment: DeploymentPlan, current_root: Group) -> JsonDict:
    """Undo the plan's changes on ``current_root``: apps it changed or removed get their original
    definition back, apps it added go; then groups, innermost first: dependency changes are undone,
    removed groups come back, added groups go if nothing else was put into them meanwhile."""
    root: JsonDict = copy.deepcopy(dict(current_root))
    old_apps, new_apps = apps_by_id(deployment.original), apps_by_id(deployment.target)
    for app_id in [*old_apps, *(i for i in new_apps if i not in old_apps)]:
        old, new = old_apps.get(app_id), new_apps.get(app_id)
        if old == new:
            continue
        if old is not None:
            _put_app(root, old)
        else:
            _remove_app(root, app_id)
    old_groups = {g["id"]: g for g in iter_groups(deployment.original)}
    new_groups = {g["id"]: g for g in iter_groups(deployment.target)}
    for group_id in sorted(old_groups.keys() | new_groups.keys(), key=_segments, reverse=True):
        _revert_group(root, old_groups.get(group_id), new_groups.get(group_id))
    return root


def revert(deployment: DeploymentPlan, current_root: Group, *, id: str, version: str) -> DeploymentPlan:
    """The rollback deployment of ``DELETE /v2/deployments/{id}`` (without force): the reverted root,
    versioned as a root update, planned from ``current_root`` (the caller starts it forced)."""
    target = with_versions(current_root, revert_root(deployment, current_root), version)
    return plan(current_root, target, id=id, version=version)
