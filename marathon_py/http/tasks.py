"""``/v2/tasks`` and the tasks of one app, ``/v2/apps/{id}/tasks[/{taskId}]`` (reference §2.1, §2.4;
``api/v2/TasksResource.scala``, ``api/v2/AppTasksResource.scala``).

Kills go through the core (``MarathonCore.kill_tasks``): without ``scale`` the answer lists the killed
tasks as they were (they are relaunched, or replaced with ``wipe``), with ``scale`` it is the
DeploymentResult of the scaled-down apps; ``scale`` and ``wipe`` together are a 400. The JSON task lists
refuse a client that only takes ``text/plain`` with 406, as 1.10 does without ``--deprecated_features
text_plain_tasks``. Task ids that are not Marathon's are a 400 in ``POST /v2/tasks/delete`` and unknown
(404) in ``DELETE …/tasks/{taskId}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from marathon_py import deployment as dp
from marathon_py import groups, taskjson
from marathon_py.core import MarathonCore
from marathon_py.http.errors import json_response
from marathon_py.http.orchestrator import Orchestrator
from marathon_py.http.rest import (
    GROUP_WILDCARD,
    add_collection,
    body,
    deployed,
    flag,
    path_id,
    require_json,
    values,
)
from marathon_py.instances import InstanceRecord, instance_id_of
from marathon_py.outputs import Output
from marathon_py.validation import BadRequest, InvalidJson, NotFound

JsonObj = dict[str, Any]
Killed = tuple[list[JsonObj], dp.DeploymentPlan | None]


@dataclass(frozen=True)
class _Kill:
    """The query of a kill (``scale``, ``wipe``, ``force``), read before anything is decided."""

    scale: bool
    wipe: bool
    force: bool

    @classmethod
    def of(cls, request: web.Request) -> _Kill:
        return cls(flag(request, "scale"), flag(request, "wipe"), flag(request, "force"))

    def run(
        self, core: MarathonCore, records: Sequence[InstanceRecord], now: float, *, health: bool = True
    ) -> tuple[Killed, list[Output]]:
        """Kill (or kill and scale) ``records``; their task JSON is taken before the kill changes them."""
        docs = (taskjson.task_json(r, core.health(r) if health else ()) for r in records)
        tasks = [d for d in docs if d is not None]
        ids = [r.task_id for r in records if r.task_id is not None]
        _, plan, outs = core.kill_tasks(ids, now, scale=self.scale, wipe=self.wipe, force=self.force)
        return (tasks, plan), outs


def _answer(killed: Killed) -> web.Response:
    tasks, plan = killed
    return deployed(plan) if plan is not None else json_response({"tasks": tasks})


class TasksApi:
    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator

    def add_routes(self, app: web.Application) -> None:
        add_collection(app, "GET", "/v2/tasks", self.index)
        app.router.add_post("/v2/tasks/delete", self.delete_many)

    async def index(self, request: web.Request) -> web.Response:
        """``GET /v2/tasks[?status=running|staging][&status[]=…]``: every task, with service ports."""
        require_json(request)
        statuses = values(request, "status") + values(request, "status[]")
        return json_response({"tasks": self.orchestrator.core.tasks(statuses)})

    async def delete_many(self, request: web.Request) -> web.Response:
        """``POST /v2/tasks/delete`` ``{"ids": [...]}``: unknown (well-formed) ids are skipped."""
        kill = _Kill.of(request)
        ids = _task_ids(await body(request))

        def decide(core: MarathonCore, now: float) -> tuple[Killed, list[Output]]:
            wanted = {instance_id_of(i) for i in ids}
            records = [r for r in core.instances() if r.instance_id in wanted]
            return kill.run(core, records, now, health=False)

        return _answer(await self.orchestrator.decide(decide))

    # -- /v2/apps/{id}/tasks (routed by AppsApi) ----------------------------------------------------------

    async def of_app(self, request: web.Request, raw_id: str) -> web.Response:
        """``GET /v2/apps/{id}/tasks``; ``{group}/*`` lists the tasks of every app below the group."""
        require_json(request)
        core, now = self.orchestrator.core, self.orchestrator.now()
        below = GROUP_WILDCARD.fullmatch(raw_id)
        if below is not None:
            gid = path_id(below.group(1))
            group = groups.find_group(core.root(), gid)
            if group is None:
                raise NotFound.group(gid)
            app_ids = [a["id"] for a in groups.all_apps(group)]
        else:
            app_ids = [path_id(raw_id)]
        tasks = [t for app_id in app_ids for t in core.app_info(app_id, now, ("tasks",)).get("tasks", [])]
        return json_response({"tasks": tasks})

    async def kill_of_app(self, request: web.Request, raw_id: str) -> web.Response:
        """``DELETE /v2/apps/{id}/tasks[?host=…]``: every task of the app (on ``host``; ``*`` = all)."""
        app_id, host, kill = path_id(raw_id), request.query.get("host"), _Kill.of(request)

        def decide(core: MarathonCore, now: float) -> tuple[Killed, list[Output]]:
            if core.app(app_id) is None:
                raise NotFound.app(app_id)
            records = [r for r in core.instances(app_id) if host is None or host in ("*", r.host)]
            return kill.run(core, records, now)

        return _answer(await self.orchestrator.decide(decide))

    async def kill_one(self, request: web.Request, raw_id: str, task_id: str) -> web.Response:
        """``DELETE /v2/apps/{id}/tasks/{taskId}``: ``{"task": …}`` or, with ``scale``, a deployment."""
        app_id, instance_id, kill = path_id(raw_id), instance_id_of(task_id), _Kill.of(request)

        def decide(core: MarathonCore, now: float) -> tuple[Killed, list[Output]]:
            if core.app(app_id) is None:
                raise NotFound.app(app_id)
            records = [r for r in core.instances(app_id) if r.instance_id == instance_id]
            if not records and not kill.scale:
                raise NotFound.task(task_id)
            return kill.run(core, records, now)

        tasks, plan = await self.orchestrator.decide(decide)
        if plan is not None:
            return deployed(plan)
        if not tasks:  # an instance that never had a task: nothing was killed
            raise NotFound.task(task_id)
        return json_response({"task": tasks[0]})


def _task_ids(doc: Any) -> list[str]:
    """``(json \\ "ids").as[Set[String]]``, each a Marathon task id (else 400 ``Invalid task id``)."""
    ids = doc.get("ids") if isinstance(doc, dict) else None
    if not isinstance(ids, list):
        raise InvalidJson([("/ids", "error.path.missing" if ids is None else "error.expected.jsarray")])
    bad = [(f"/ids({i})", "error.expected.jsstring") for i, v in enumerate(ids) if not isinstance(v, str)]
    if bad:
        raise InvalidJson(bad)
    for task_id in ids:
        if instance_id_of(task_id) is None:
            raise BadRequest(f"Invalid task id '{task_id}'.")
    return list(dict.fromkeys(ids))
