"""``/v2/groups`` (reference §2.2, §7.3, §7.4; ``api/v2/GroupsResource.scala``, ``GroupApiService.scala``).

A change reads the posted GroupUpdate against the current root (``groupupdate.normalize_update``: ids
relative to the group in the path) and turns it into a new root: ``{"version": v}`` puts the group back as
the store holds it in root version ``v`` (422 if it is not there), ``{"scaleBy": f}`` scales every app
below, anything else replaces the group's apps and groups as listed (``groupupdate.apply_update``). The
core deploys it like any root update; ``dryRun=true`` answers the plan's steps instead.

``GET`` paths are matched as ``GroupsResource`` does: ``{id}/apps`` (a bare array of the group's apps),
``{id}/versions`` (root versions that hold the group), ``{id}/versions/{v}``, else the group. Without
``embed`` a group embeds its apps, pods and groups; ``group.apps.<x>`` embeds ``<x>`` into the apps.
Groups carry ``enforceRole`` only when it is true: the ``marathon`` client's ``MarathonGroup`` rejects the
key (§9.1), and false is the default.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from aiohttp import web

from marathon_py import appdef, groups
from marathon_py import deployment as dp
from marathon_py.core import MarathonCore
from marathon_py.eventjson import iso
from marathon_py.groupupdate import apply_update, normalize_update
from marathon_py.http.errors import json_response
from marathon_py.http.orchestrator import Orchestrator
from marathon_py.http.rest import (
    REST,
    add_collection,
    body,
    choose,
    deployed,
    flag,
    parent,
    path_id,
    valid_path_id,
    values,
)
from marathon_py.outputs import Output
from marathon_py.pathid import PathId
from marathon_py.validation import IllegalArgument, InvalidJson, NotFound, ValidationError

JsonObj = dict[str, Any]
DEFAULT_EMBED = ("group.apps", "group.pods", "group.groups")
APP_EMBED_PREFIX = "group.apps."
LIST_APPS = re.compile(r"((?:.+/)|)apps")
LIST_VERSIONS = re.compile(r"((?:.+/)|)versions")
GET_VERSION = re.compile(r"(?:(.+)/)?versions/(.+)")
TOP_LEVEL = "Path needs to be top-level"


def group_json(
    group: Mapping[str, Any], app_json: Callable[[Mapping[str, Any]], JsonObj], embed: Collection[str]
) -> JsonObj:
    """A GroupInfo: ``apps``/``pods``/``groups`` filled only when embedded (else empty), recursively."""
    out: JsonObj = {
        "id": group["id"],
        "apps": [app_json(a) for a in group.get("apps") or ()] if "group.apps" in embed else [],
        "pods": list(group.get("pods") or ()) if "group.pods" in embed else [],
        "groups": (
            [group_json(g, app_json, embed) for g in group.get("groups") or ()]
            if "group.groups" in embed
            else []
        ),
        "dependencies": list(group.get("dependencies") or ()),
    }
    if "version" in group:
        out["version"] = group["version"]
    if group.get("enforceRole"):
        out["enforceRole"] = True
    return out


class GroupsApi:
    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator

    def add_routes(self, app: web.Application) -> None:
        add_collection(app, "*", "/v2/groups", self.dispatch)
        app.router.add_route("*", f"/v2/groups/{REST}", self.dispatch)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        rest = request.match_info.get("rest", "")
        actions = {
            "GET": lambda: self.show(request, rest),
            "POST": lambda: self.create(request, rest),
            "PUT": lambda: self.update(request, rest),
            "DELETE": lambda: self.delete(request, rest),
        }
        if rest:
            actions["PATCH"] = lambda: self.patch(request, rest)
        return await choose(request, actions)

    # -- reads ----------------------------------------------------------------------------------------------

    async def show(self, request: web.Request, rest: str) -> web.Response:
        embed = values(request, "embed") or list(DEFAULT_EMBED)
        app_embed = [e for e in embed if e.startswith(APP_EMBED_PREFIX)]
        core, now = self.orchestrator.core, self.orchestrator.now()
        if (found := LIST_APPS.fullmatch(rest)) is not None:
            group = groups.find_group(core.root(), path_id(found.group(1)))
            apps = groups.all_apps(group) if group is not None else []
            return json_response([core.app_info(a["id"], now, app_embed) for a in apps])
        if (found := LIST_VERSIONS.fullmatch(rest)) is not None:
            return json_response(self._versions(path_id(found.group(1))))
        if (found := GET_VERSION.fullmatch(rest)) is not None:
            gid, version = path_id(found.group(1) or ""), found.group(2)
            stored = self.orchestrator.versions.root(version)
            group = groups.find_group(stored, gid) if stored is not None else None
            if group is None:
                raise NotFound.group(gid)
            return json_response(group_json(group, appdef.to_json, embed))
        gid = path_id(rest)
        group = groups.find_group(core.root(), gid)
        if group is None:
            raise NotFound.group(gid)
        return json_response(group_json(group, lambda a: core.app_info(a["id"], now, app_embed), embed))

    def _versions(self, gid: str) -> list[str]:
        """Stored root versions that hold the group (which must exist now), newest first."""
        if groups.find_group(self.orchestrator.core.root(), gid) is None:
            raise NotFound.group(gid)
        stored = self.orchestrator.versions
        if gid == "/":
            return stored.root_versions()
        return [
            v for v in stored.root_versions() if groups.find_group(stored.root(v) or groups.empty_root(), gid)
        ]

    # -- changes --------------------------------------------------------------------------------------------

    async def create(self, request: web.Request, rest: str) -> web.Response:
        """``POST /v2/groups[/{id}]``: 201 with ``Location``; 409 if the group, or an app, is at that path."""
        force, base = flag(request, "force"), valid_path_id(rest)
        doc = await body(request)

        def decide(core: MarathonCore, now: float) -> tuple[tuple[dp.DeploymentPlan, str], list[Output]]:
            root = core.root()
            update = normalize_update(doc, base, root=root)
            groups.check_absent(root, update["id"], kind="group")
            target = self._target(root, update, now)
            plan, outs = core.update_root(target, now, force=force, group_id=parent(base))
            return (plan, update["id"]), outs

        plan, gid = await self.orchestrator.decide(decide)
        return deployed(plan, 201, location=gid)

    async def update(self, request: web.Request, rest: str) -> web.Response:
        """``PUT /v2/groups[/{id}]``: create or update, scale, roll back; ``dryRun`` answers the steps."""
        force, dry_run, base = flag(request, "force"), flag(request, "dryRun"), valid_path_id(rest)
        doc = await body(request)

        def decide(core: MarathonCore, now: float) -> tuple[dp.DeploymentPlan, list[Output]]:
            root = core.root()
            target = self._target(root, normalize_update(doc, base, root=root), now)
            if dry_run:  # no lock, no limit: nothing is deployed
                plan, _ = core.update_root(target, now, force=True, dry_run=True)
                return plan, []
            return core.update_root(target, now, force=force, group_id=parent(base))

        plan = await self.orchestrator.decide(decide)
        return json_response(dp.dry_run_json(plan)) if dry_run else deployed(plan)

    def _target(self, root: groups.Group, update: Mapping[str, Any], now: float) -> groups.Group:
        """The root after a normalized update (``GroupApiService.updateGroup``; rollback before scaleBy)."""
        if "version" not in update:
            return apply_update(root, dict(update), iso(now))
        gid, version = update["id"], update["version"]
        stored = self.orchestrator.versions.root(version)
        old = groups.find_group(stored, gid) if stored is not None else None
        if old is None:
            raise IllegalArgument(f"Group {gid} not available in version {version}")
        return groups.put_group(root, dict(old))

    async def patch(self, request: web.Request, rest: str) -> web.Response:
        """``PATCH /v2/groups/{id}`` ``{"enforceRole": b}``: top-level groups only; nothing restarts."""
        gid = path_id(rest)
        doc = await body(request)
        if not isinstance(doc, dict):
            raise InvalidJson([("", "error.expected.jsobject")])
        enforce = doc.get("enforceRole", False)
        if not isinstance(enforce, bool):
            raise InvalidJson([("/enforceRole", "error.expected.jsboolean")])
        if not PathId.parse(gid).is_top_level:
            raise ValidationError.of("/", TOP_LEVEL)

        def decide(core: MarathonCore, now: float) -> tuple[None, list[Output]]:
            root = core.root()
            group = groups.find_group(root, gid)
            if group is None:
                raise NotFound.group(gid)
            _, outs = core.update_root(groups.put_group(root, {**group, "enforceRole": enforce}), now)
            return None, outs

        await self.orchestrator.decide(decide)
        return web.Response(status=200)

    async def delete(self, request: web.Request, rest: str) -> web.Response:
        """``DELETE /v2/groups`` (everything) and ``DELETE /v2/groups/{id}``; ``force`` default false."""
        force, gid = flag(request, "force"), path_id(rest)

        def decide(core: MarathonCore, now: float) -> tuple[dp.DeploymentPlan, list[Output]]:
            root = core.root()
            if groups.find_group(root, gid) is None:
                raise NotFound.group(gid)
            return core.update_root(groups.remove(root, gid), now, force=force, group_id=parent(gid))

        return deployed(await self.orchestrator.decide(decide))
