"""The deployment planner: current root group + target root group → ordered steps, as Marathon 1.10's
``DeploymentPlan.apply`` computes them (reference §7.3), plus locking conflicts (§7.4) and the rollback
target of ``DELETE /v2/deployments/{id}`` (``core/deployment/impl/DeploymentPlanReverter.scala``, §2.3).

Restart vs scale, versions, dependencies and group mutation are the model's (``appdef``, ``groups``); this
module only orders and reverts. Pure: root groups are plain ``/v2/groups`` dicts, never changed in place.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from marathon_py import appdef, groups
from marathon_py.deployment import App, DeploymentAction, DeploymentPlan, DeploymentStep, Group
from marathon_py.pathid import PathId


def _definition(app: App) -> dict[str, Any]:
    """The app without the AppInfo extras that only embedding adds: what "changed" compares."""
    return {k: v for k, v in app.items() if k not in appdef.APP_INFO_EXTRAS}


# --- the plan ---


def _layer_action(old: App | None, new: App, to_kill: Sequence[str]) -> DeploymentAction | None:
    app_id, instances = new["id"], new.get("instances", 1)
    if old is None:
        return DeploymentAction("Scale", app_id, scale_to=instances)
    if appdef.is_only_scale_change(old, new) or instances == 0:
        return DeploymentAction("Scale", app_id, scale_to=instances, sentenced=tuple(to_kill))
    if appdef.needs_restart(old, new):
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
    """Steps from ``current_root`` to ``target_root`` (apps already versioned: ``groups.set_versions``):
    stop removed apps; start new ones at 0 instances; then one step per dependency layer (longest path in
    the target's graph, ascending) scaling new and scale-only apps and restarting changed ones. Empty steps
    are dropped. ``to_kill`` names instances a kill-and-scale sentenced (app id → instance ids)."""
    old_apps, new_apps = groups.apps_by_id(current_root), groups.apps_by_id(target_root)
    has_edges = groups.has_dependencies(target_root)
    layers = groups.dependency_depths(groups.app_dependencies(target_root)) if has_edges else {}
    stop = [DeploymentAction("Stop", i) for i in old_apps if i not in new_apps]
    start = [DeploymentAction("Start", i, scale_to=0) for i in new_apps if i not in old_apps]
    by_layer: dict[int, list[DeploymentAction]] = {}
    for app_id, app in new_apps.items():
        old = old_apps.get(app_id)
        if old is app or (old is not None and _definition(old) == _definition(app)):
            continue  # unchanged (most apps of a big root are shared with the current one)
        action = _layer_action(old, app, (to_kill or {}).get(app_id, ()))
        if action is not None:
            by_layer.setdefault(layers.get(app_id, 1), []).append(action)
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
    mine, plans = new_plan.affected_ids, list(running)
    if len(_LOCKS) > 2 * len(plans) + 64:  # forget the plans that ended
        kept = {p.id for p in plans}
        for plan_id in [i for i in _LOCKS if i not in kept]:
            del _LOCKS[plan_id]
    return [p for p in plans if p.id != new_plan.id and not mine.isdisjoint(_locks(p))]


_LOCKS: dict[str, tuple[weakref.ref[DeploymentPlan], frozenset[str]]] = {}  # plan id → (plan, affected_ids)


def _locks(plan: DeploymentPlan) -> frozenset[str]:
    """``plan.affected_ids``, remembered: every new plan is checked against every running one (thousands
    while 10,000 apps are posted); plans are values, so an entry holds while its plan is the same object."""
    hit = _LOCKS.get(plan.id)
    if hit is not None and hit[0]() is plan:
        return hit[1]
    ids = plan.affected_ids
    _LOCKS[plan.id] = (weakref.ref(plan), ids)  # not keeping the plan (and its root groups) alive
    return ids


# --- rollback (DeploymentPlanReverter) ---


def _update_dependencies(
    root: groups.Group, group_id: str, change: Callable[[set[str]], set[str]]
) -> groups.Group:
    """``RootGroup.updateDependencies``: the group (missing parents created) with changed dependencies."""
    group = groups.find_group(root, group_id) or groups.new_group(group_id)
    current = set(group.get("dependencies") or ())
    deps = change(current)
    return groups.put_group(root, group if deps == current else {**group, "dependencies": sorted(deps)})


def _revert_group(root: groups.Group, old: Group | None, new: Group | None) -> groups.Group:
    old_deps = set((old or {}).get("dependencies") or ())
    new_deps = set((new or {}).get("dependencies") or ())
    if old is not None:  # changed: undo the dependency changes; removed: it comes back with its dependencies
        removed, added = (old_deps, set()) if new is None else (old_deps - new_deps, new_deps - old_deps)
        return _update_dependencies(root, old["id"], lambda deps: (deps | removed) - added)
    assert new is not None
    group = groups.find_group(root, new["id"])
    if (  # added, and nothing put into it nor its dependencies changed since: it goes
        group is not None
        and not any(group.get(key) for key in ("apps", "pods", "groups"))
        and set(group.get("dependencies") or ()) == new_deps
    ):
        return groups.remove(root, new["id"])
    if new_deps:
        return _update_dependencies(root, new["id"], lambda deps: deps - new_deps)
    return root


def revert_root(deployment: DeploymentPlan, current_root: Group) -> groups.Group:
    """Undo the plan's changes on ``current_root``: apps it changed or removed get their original
    definition back, apps it added go; then groups, innermost first: dependency changes are undone,
    removed groups come back, added groups go if nothing else was put into them meanwhile."""
    root: groups.Group = dict(current_root)  # groups' functions return new trees and share the rest
    old_apps, new_apps = groups.apps_by_id(deployment.original), groups.apps_by_id(deployment.target)
    for app_id in [*old_apps, *(i for i in new_apps if i not in old_apps)]:
        old, new = old_apps.get(app_id), new_apps.get(app_id)
        if old is not None and old != new:
            root = groups.put_app(root, old)
        elif old is None and groups.find_app(root, app_id) is not None:
            root = groups.remove(root, app_id)
    old_groups = {g["id"]: g for g in groups.iter_groups(deployment.original)}
    new_groups = {g["id"]: g for g in groups.iter_groups(deployment.target)}
    for group_id in sorted(old_groups.keys() | new_groups.keys(), key=PathId.parse, reverse=True):
        root = _revert_group(root, old_groups.get(group_id), new_groups.get(group_id))
    return root


def revert(deployment: DeploymentPlan, current_root: Group, *, id: str, version: str) -> DeploymentPlan:
    """The rollback deployment of ``DELETE /v2/deployments/{id}`` (without force): the reverted root,
    versioned as a root update, planned from ``current_root`` (the caller starts it forced)."""
    target = groups.set_versions(current_root, revert_root(deployment, current_root), version)
    return plan(current_root, target, id=id, version=version)
