"""Group updates, the bodies of ``POST``/``PUT /v2/groups[/{id}]`` (``GroupUpdate``, reference §2.2).

``normalize_update`` reads and checks a body as ``GroupsResource`` does: nested ids are relative to
their group, every nested app goes through ``appdef.normalize`` (its errors keep the app's own paths, as
in Marathon), then the group rules run (paths like ``/groups(0)/apps(1)/id``). ``apply_update`` turns the
result into a new root: listed apps and groups replace the group's ones wholesale, ``scaleBy`` scales.

Deploying a changed root is then, as ``GroupManagerImpl`` does it::

    target = apply_update(root, update, now)
    target = groups.assign_dynamic_service_ports(root, target)
    target = groups.set_versions(root, target, now)
    groups.validate_root(target)
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from marathon_py import appdef, groups, jsonread
from marathon_py.appschema import GROUP_UPDATE
from marathon_py.appvalidation import MAX_INSTANCES, Settings
from marathon_py.pathid import PathId
from marathon_py.validation import ValidationError, Violations, at_most

ONLY_OPTION = "not allowed in conjunction with other properties."
NO_GROUP_ID = "No group id was given!"


def normalize_update(
    doc: Any,
    group_id: str = "/",
    *,
    root: groups.Group | None = None,
    settings: Settings = appdef.DEFAULT_SETTINGS,
    new_group_enforce_role: bool = False,
) -> dict[str, Any]:
    """A posted GroupUpdate → ``{"id", "apps"?, "groups"?, "dependencies"?, "enforceRole"?}`` with
    absolute ids and normalized apps, or ``{"id", "scaleBy"}`` / ``{"id", "version"}``.

    ``root`` (the current root group) supplies the role rules of existing top-level groups and apps.
    """
    raw = jsonread.read(GROUP_UPDATE, doc)
    base = PathId.parse(group_id).canonical()
    gid = PathId.parse(raw["id"]).canonical(base) if "id" in raw else base
    if "version" in raw or "scaleBy" in raw:
        v = Violations()
        for key in ("version", "scaleBy"):
            v.check(key not in raw or len(raw) == 1, f"/{key}", ONLY_OPTION)
        v.raise_if_any()
        return {"id": str(gid), **{k: raw[k] for k in ("version", "scaleBy") if k in raw}}
    ctx = _Context(root or groups.empty_root(), settings, new_group_enforce_role)
    default_role, enforce = ctx.inherited(gid)
    result = ctx.visit(raw, gid, "", default_role, enforce)
    v = Violations()
    _validate(raw, result, gid, "", v)
    v.raise_if_any()
    return result


def settings_for_app(
    root: groups.Group,
    app_id: str,
    settings: Settings = appdef.DEFAULT_SETTINGS,
    *,
    new_group_enforce_role: bool = False,
) -> Settings:
    """The role rules for an app posted to ``/v2/apps`` (``RoleSettings.forService``).

    Apps in the root group use ``settings.default_role`` (``--mesos_role``); below a top-level group that
    enforces its role the group name is the default and only valid role; an existing app's role stays valid.
    """
    aid = PathId.parse(app_id).canonical()
    if aid.parent.is_root:
        return replace(settings, valid_roles=frozenset({settings.default_role}))
    top = groups.find_group(root, PathId(aid.segments[:1]))
    enforce = new_group_enforce_role if top is None else bool(top.get("enforceRole"))
    existing = groups.find_app(root, aid)
    kept = {existing["role"]} if existing is not None else set()
    group_role = aid.root_segment
    if enforce:
        return replace(settings, default_role=group_role, valid_roles=frozenset({group_role} | kept))
    return replace(settings, valid_roles=frozenset({settings.default_role, group_role} | kept))


class _Context:
    def __init__(self, root: groups.Group, settings: Settings, enforce_default: bool) -> None:
        self.root, self.settings, self.enforce_default = root, settings, enforce_default

    def inherited(self, gid: PathId) -> tuple[str, bool]:
        """(default role, enforced) for apps of a group below the top level (``inferDefaultRole``)."""
        if gid.is_root or gid.is_top_level:
            return self.settings.default_role, False
        top = groups.find_group(self.root, PathId(gid.segments[:1]))
        enforce = self.enforce_default if top is None else bool(top.get("enforceRole"))
        return (gid.root_segment if enforce else self.settings.default_role), enforce

    def visit(self, raw: dict[str, Any], gid: PathId, path: str, role: str, enforce: bool) -> dict[str, Any]:
        if gid.is_top_level:
            enforce = raw.get("enforceRole", self.enforce_default)
            role = gid.root_segment if enforce else self.settings.default_role
        result: dict[str, Any] = {"id": str(gid)}
        if gid.is_top_level:
            result["enforceRole"] = enforce
        if "apps" in raw:
            result["apps"] = [self._app(app, gid, role, enforce) for app in raw["apps"]]
        if "groups" in raw:
            children = []
            for i, child in enumerate(raw["groups"]):
                if "id" not in child:
                    raise ValidationError.of(f"{path}/groups({i})", NO_GROUP_ID)
                child_id = PathId.parse(child["id"]).canonical(gid)
                children.append(self.visit(child, child_id, f"{path}/groups({i})", role, enforce))
            result["groups"] = children
        if "dependencies" in raw:
            result["dependencies"] = [str(PathId.parse(d).canonical(gid)) for d in raw["dependencies"]]
        return result

    def _app(self, app: dict[str, Any], gid: PathId, role: str, enforce: bool) -> dict[str, Any]:
        app_id = PathId.parse(app["id"]).canonical(gid)
        existing = groups.find_app(self.root, app_id)
        valid = {role} if enforce else {role, self.settings.default_role}
        if existing is not None:
            valid.add(existing["role"])
        settings = replace(self.settings, default_role=role, valid_roles=frozenset(valid))
        return appdef.normalize({**app, "id": str(app_id)}, str(gid), settings=settings)


def _validate(raw: dict[str, Any], norm: dict[str, Any], gid: PathId, path: str, v: Violations) -> None:
    """``validNestedGroupUpdateWithBase``: apps are children of their group; enforceRole top-level only."""
    if raw.get("enforceRole") and not gid.is_top_level:
        v.add(
            f"{path}/enforceRole",
            f"enforceRole can only be set for top-level groups, and {gid} is not top-level",
        )
    for i, app in enumerate(norm.get("apps", [])):
        for message in PathId.parse(app["id"]).errors(base=gid):
            v.add(f"{path}/apps({i})/id", message)
    for i, (child_raw, child) in enumerate(zip(raw.get("groups", []), norm.get("groups", []), strict=True)):
        child_id = PathId.parse(child["id"])
        messages = PathId.parse(child_raw["id"]).errors()
        if child_id.parent != gid:  # Marathon only finds this later, in the root group's validation
            messages.append(f"Identifier is not child of '{gid}'")
        for message in messages:
            v.add(f"{path}/groups({i})/id", message)
        _validate(child_raw, child, child_id, f"{path}/groups({i})", v)


def apply_update(root: groups.Group, update: dict[str, Any], version: str) -> groups.Group:
    """The root after a normalized update (``UpdateGroupStructureOp`` / ``scaleBy``).

    A ``{"version": …}`` rollback needs the stored root of that version and is the caller's to do.
    """
    gid = PathId.parse(update["id"])
    if "scaleBy" in update:
        _check_scale(root, gid, update["scaleBy"])
        return groups.scale_by(root, gid, update["scaleBy"], version)
    if "version" in update:
        raise ValueError("a rollback replaces the group with its stored version")
    current = groups.find_group(root, gid) or groups.new_group(gid, version)
    return groups.put_group(root, _execute(update, current, version), version)


def _check_scale(root: groups.Group, gid: PathId, factor: float) -> None:
    """422 unless every scaled app stays within ``MAX_INSTANCES`` (Marathon saturates at Int32, §2.2)."""
    group = groups.find_group(root, gid)
    largest = max((app["instances"] for app in groups.all_apps(group)), default=0) if group else 0
    scaled = largest * factor
    if not (math.isfinite(scaled) and math.ceil(scaled) <= MAX_INSTANCES):
        raise ValidationError.of("/scaleBy", at_most(scaled, MAX_INSTANCES))


def _execute(update: dict[str, Any], current: groups.Group, version: str) -> groups.Group:
    result = dict(current)
    if "groups" in update:
        existing = {g["id"]: g for g in current["groups"]}
        result["groups"] = [
            _execute(child, existing.get(child["id"]) or groups.new_group(child["id"], version), version)
            for child in update["groups"]
        ]
    if "apps" in update:
        unversioned = (
            {k: val for k, val in app.items() if k not in ("version", "versionInfo")}
            for app in update["apps"]
        )
        result["apps"] = list(unversioned)  # groups.set_versions stamps them against the old tree
    if "dependencies" in update:
        result["dependencies"] = list(update["dependencies"])
    if PathId.parse(current["id"]).is_top_level:
        result["enforceRole"] = update.get("enforceRole", current.get("enforceRole", False))
    result["version"] = version
    return result
