"""``/v2/apps`` (reference §2.1, §7.4; ``api/v2/AppsResource.scala``, ``AppHelpers.scala``,
``AppVersionsResource.scala``).

Every change is one root-group update decided by the core (``MarathonCore.update_root``): the new app is
normalized against the root it will join (roles, ``appdef.normalize``), placed with ``groups.put_app`` /
removed with ``groups.remove``, and deployed; the answer leaves once the store holds it. Lists embed
counts and deployments always, one app also its tasks and last failure (``InfoEmbedResolver``).

Where we leave Marathon's letter: ``POST`` answers the app as deployed (service ports assigned, with its
``versionInfo``) rather than as posted, which is what a following ``GET`` shows; ``Location`` is the
app's path (Jersey makes it absolute). ``api_post_event`` (§3) goes out with the decision's outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from marathon_py import appdef, groups
from marathon_py import deployment as dp
from marathon_py.appvalidation import Settings
from marathon_py.core import MarathonCore
from marathon_py.eventjson import event
from marathon_py.groupupdate import settings_for_app
from marathon_py.http import labels
from marathon_py.http.errors import json_response, unknown_route
from marathon_py.http.orchestrator import Orchestrator
from marathon_py.http.rest import (
    DEPLOYMENT_HEADER,
    GROUP_WILDCARD,
    REST,
    add_collection,
    body,
    choose,
    deployed,
    flag,
    parent,
    path_id,
    suffix,
    values,
)
from marathon_py.http.tasks import TasksApi
from marathon_py.outputs import Event, Output
from marathon_py.validation import IllegalArgument, InvalidJson, NotFound

JsonObj = dict[str, Any]
LIST_EMBED = ("counts", "deployments")  # always embedded in lists …
SHOW_EMBED = ("counts", "tasks", "lastTaskFailure", "deployments")  # … and for one app
NEW_APP_COUNTS = {"tasksStaged": 0, "tasksRunning": 0, "tasksHealthy": 0, "tasksUnhealthy": 0}
NO_ID = "App Update must have app id set"


def _contains(needle: str | None, haystack: str | None) -> bool:
    return needle is None or (haystack is not None and needle.lower() in haystack.lower())


class AppsApi:
    def __init__(self, orchestrator: Orchestrator, tasks: TasksApi) -> None:
        self.orchestrator = orchestrator
        self.tasks = tasks

    def add_routes(self, app: web.Application) -> None:
        add_collection(app, "GET", "/v2/apps", self.index)
        add_collection(app, "POST", "/v2/apps", self.create)
        add_collection(app, "PUT", "/v2/apps", self.put_many)
        add_collection(app, "PATCH", "/v2/apps", self.patch_many)
        app.router.add_route("*", f"/v2/apps/{REST}", self.dispatch)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Marathon's templates by literal length: ``…/versions``, ``…/restart``, ``…/tasks``, ``{id}``."""
        rest = request.match_info["rest"]
        if (found := suffix(rest, "versions")) is not None:
            app_id, version = found
            return await choose(request, {"GET": lambda: self.version(app_id, version)})
        if (found := suffix(rest, "restart")) is not None:
            app_id, extra = found
            if extra is not None:
                raise unknown_route()
            actions = {
                "POST": lambda: self.restart(request, app_id),
                "DELETE": lambda: self.delete(request, f"{app_id}/restart"),  # AppsResource.deleteRestart
            }
            return await choose(request, actions)
        if (found := suffix(rest, "tasks")) is not None:
            app_id, task_id = found
            if task_id is not None:
                return await choose(
                    request, {"DELETE": lambda: self.tasks.kill_one(request, app_id, task_id)}
                )
            actions = {
                "GET": lambda: self.tasks.of_app(request, app_id),
                "DELETE": lambda: self.tasks.kill_of_app(request, app_id),
            }
            return await choose(request, actions)
        actions = {
            "GET": lambda: self.show(request, rest),
            "PUT": lambda: self.update(request, rest, partial=flag(request, "partialUpdate", True)),
            "PATCH": lambda: self.update(request, rest, partial=True, create=False),
            "DELETE": lambda: self.delete(request, rest),
        }
        return await choose(request, actions)

    # -- reads ----------------------------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.Response:
        """``GET /v2/apps[?cmd=&id=&label=&embed=…]``: ``cmd``/``id`` are case-insensitive substrings."""
        cmd, wanted_id, label = (request.query.get(name) for name in ("cmd", "id", "label"))
        selectors = labels.parse(label) if label is not None else []
        embed = [*values(request, "embed"), *LIST_EMBED]
        core, now = self.orchestrator.core, self.orchestrator.now()
        infos = [
            core.app_info(app["id"], now, embed)
            for app in groups.all_apps(core.root())
            if _contains(cmd, app.get("cmd"))
            and _contains(wanted_id, app["id"])
            and labels.matches(selectors, app.get("labels") or {})
        ]
        return json_response({"apps": infos})

    async def show(self, request: web.Request, raw_id: str) -> web.Response:
        """``GET /v2/apps/{id}`` → ``{"app": …}``; ``GET /v2/apps/{group}/*`` → ``{"*": [apps below]}``."""
        embed = [*values(request, "embed"), *SHOW_EMBED]
        core, now = self.orchestrator.core, self.orchestrator.now()
        below = GROUP_WILDCARD.fullmatch(raw_id)
        if below is None:
            return json_response({"app": core.app_info(path_id(raw_id), now, embed)})
        gid = path_id(below.group(1))
        group = groups.find_group(core.root(), gid)
        if group is None:
            raise NotFound.group(gid)
        return json_response({"*": [core.app_info(a["id"], now, embed) for a in groups.all_apps(group)]})

    async def version(self, raw_id: str, version: str | None) -> web.Response:
        """``GET …/versions`` (of an app that exists) and ``GET …/versions/{v}`` (the app, bare; also of an
        app deleted since, as long as the store keeps the version)."""
        app_id = path_id(raw_id)
        stored = self.orchestrator.versions
        if version is None:
            if self.orchestrator.core.app(app_id) is None:
                raise NotFound.app(app_id)
            return json_response({"versions": stored.app_versions(app_id)})
        app = stored.app(app_id, version)
        if app is None:
            raise NotFound.app(app_id, version)
        return json_response(appdef.to_json(app))

    # -- changes --------------------------------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.Response:
        """``POST /v2/apps``: 201, the app with zero counts and its deployment; 409 if the id is taken."""
        force = flag(request, "force")
        doc = await body(request)

        def decide(core: MarathonCore, now: float) -> tuple[tuple[dp.DeploymentPlan, JsonObj], list[Output]]:
            root = core.root()
            posted = doc.get("id") if isinstance(doc, dict) else None
            settings = settings_for_app(root, posted) if isinstance(posted, str) else appdef.DEFAULT_SETTINGS
            app = appdef.normalize(doc, settings=settings)
            groups.check_absent(root, app["id"], kind="app")
            plan, outs = core.update_root(
                groups.put_app(root, app), now, force=force, group_id=parent(app["id"])
            )
            deployed_app = _deployed_app(plan, app["id"])
            info = appdef.to_json(deployed_app, {**NEW_APP_COUNTS, "deployments": [{"id": plan.id}]})
            return (plan, info), [*outs, _api_post_event(request, deployed_app, now)]

        plan, info = await self.orchestrator.decide(decide)
        headers = {DEPLOYMENT_HEADER: plan.id, "Location": info["id"]}
        return json_response(info, 201, headers)

    async def update(
        self, request: web.Request, raw_id: str, *, partial: bool, create: bool = True
    ) -> web.Response:
        """``PUT`` (create or update; ``partialUpdate`` default true) and ``PATCH`` (update only) of one app:
        200 DeploymentResult, 201 with ``Location`` when PUT created it; ``{"version": v}`` rolls back."""
        force, app_id = flag(request, "force"), path_id(raw_id)
        doc = await body(request)

        def decide(core: MarathonCore, now: float) -> tuple[tuple[dp.DeploymentPlan, bool], list[Output]]:
            root = core.root()
            existing = groups.find_app(root, app_id)
            app = self._updated(root, app_id, existing, doc, partial=partial, create=create)
            plan, outs = core.update_root(
                groups.put_app(root, app), now, force=force, group_id=parent(app_id)
            )
            event = _api_post_event(request, _deployed_app(plan, app_id), now)
            return (plan, existing is None), [*outs, event]

        plan, created = await self.orchestrator.decide(decide)
        return deployed(plan, 201, location=app_id) if created else deployed(plan)

    async def put_many(self, request: web.Request) -> web.Response:
        """``PUT /v2/apps``: create or update every app of the array in one deployment."""
        return await self._update_many(request, partial=flag(request, "partialUpdate", True), create=True)

    async def patch_many(self, request: web.Request) -> web.Response:
        """``PATCH /v2/apps``: update every app of the array (all must exist) in one deployment."""
        return await self._update_many(request, partial=True, create=False)

    async def _update_many(self, request: web.Request, *, partial: bool, create: bool) -> web.Response:
        force = flag(request, "force")
        doc = await body(request)
        if not isinstance(doc, list):
            raise InvalidJson([("", "error.expected.jsarray")])

        def decide(core: MarathonCore, now: float) -> tuple[dp.DeploymentPlan, list[Output]]:
            target = core.root()
            for item in doc:
                posted = item.get("id") if isinstance(item, dict) else None
                if not isinstance(posted, str):
                    raise IllegalArgument(NO_ID)
                app_id = path_id(posted)
                existing = groups.find_app(target, app_id)
                app = self._updated(target, app_id, existing, item, partial=partial, create=create)
                target = groups.put_app(target, app)
            return core.update_root(target, now, force=force)

        return deployed(await self.orchestrator.decide(decide))

    def _updated(
        self,
        root: groups.Group,
        app_id: str,
        existing: Mapping[str, Any] | None,
        doc: Any,
        *,
        partial: bool,
        create: bool,
    ) -> dict[str, Any]:
        """``AppHelpers.updateOrCreate``: the app ``doc`` makes of ``existing`` (or creates), or the stored
        version a ``{"version": v}`` body names (404 if the store lacks it)."""
        settings: Settings = settings_for_app(root, app_id)
        if existing is None:
            if not create:
                raise NotFound.app(app_id)
            return appdef.normalize(
                {**doc, "id": app_id} if isinstance(doc, dict) else doc, settings=settings
            )
        version = appdef.rollback_version(doc)
        if version is None:
            return appdef.partial_update(existing, doc, partial=partial, settings=settings)
        stored = self.orchestrator.versions.app(app_id, version)
        if stored is None:
            raise NotFound.app(app_id)
        return dict(stored)

    async def delete(self, request: web.Request, raw_id: str) -> web.Response:
        """``DELETE /v2/apps/{id}`` (``force`` default **true**: a running deployment of it is cancelled)."""
        force, app_id = flag(request, "force", True), path_id(raw_id)

        def decide(core: MarathonCore, now: float) -> tuple[dp.DeploymentPlan, list[Output]]:
            root = core.root()
            if groups.find_app(root, app_id) is None:
                raise NotFound.app(app_id)
            return core.update_root(groups.remove(root, app_id), now, force=force, group_id=parent(app_id))

        return deployed(await self.orchestrator.decide(decide))

    async def restart(self, request: web.Request, raw_id: str) -> web.Response:
        """``POST /v2/apps/{id}/restart``: a rolling restart by the app's upgrade strategy."""
        force, app_id = flag(request, "force"), path_id(raw_id)

        def decide(core: MarathonCore, now: float) -> tuple[dp.DeploymentPlan, list[Output]]:
            return core.restart_app(app_id, now, force=force)

        return deployed(await self.orchestrator.decide(decide))


def _deployed_app(plan: dp.DeploymentPlan, app_id: str) -> Mapping[str, Any]:
    app = groups.apps_by_id(plan.target).get(app_id)
    assert app is not None, f"{app_id} is not in the root it was deployed to"
    return app


def _api_post_event(request: web.Request, app: Mapping[str, Any], now: float) -> Event:
    """``api_post_event`` (§3): who changed which app, as marathon-lb listens for it."""
    doc = event(
        "api_post_event", now, clientIp=request.remote, uri=request.path, appDefinition=appdef.to_json(app)
    )
    return Event(doc)
