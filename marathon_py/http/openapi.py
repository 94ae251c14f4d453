"""An OpenAPI 3.0 description of the REST API v2 we serve, at ``/openapi.json`` (reference §1, §2, §3).

Marathon describes its API in RAML; this is the same surface for OpenAPI tooling. Request bodies are
described by the readers that check them (``appschema``: ``AppDefinition``, ``AppUpdate``, ``GroupUpdate``,
with the RAML facets and defaults), so a schema-driven fuzz posts meaningful apps and groups. Response
schemas are coarse (objects keep ``additionalProperties``) and name the fields clients read (§4.1, §9). Run
spec and group ids contain slashes: a ``{appId}``/``{groupId}`` parameter stands for the whole id, e.g.
``prod/web``. The routes ``http.api.add_routes`` serves are listed here; ``test_marathon_api_misc`` keeps
the two in step.
"""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from marathon_py.appschema import APP, APP_UPDATE, GROUP_UPDATE
from marathon_py.http.errors import json_response
from marathon_py.http.system import VERSION

Doc = dict[str, Any]
Responses = dict[str, tuple[str, Doc | None]]  # status → (description, content)
OPENAPI_PATH = "/openapi.json"
_ERRORS = {"400": "Invalid request", "401": "Invalid username or password", "404": "Unknown id"}
_DEPLOYABLE_ERRORS = {
    **_ERRORS,
    "403": "Too many running deployments",
    "409": "Locked by a deployment",
    "422": "Object is not valid",
}
_TASK_LIST_ERRORS = {**_ERRORS, "406": "text/plain only (deprecated in 1.10)"}


def _ref(name: str) -> Doc:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(*required: str, **props: Doc) -> Doc:
    out: Doc = {"type": "object", "properties": props, "additionalProperties": True}
    return {**out, "required": list(required)} if required else out


def _array(items: Doc) -> Doc:
    return {"type": "array", "items": items}


def _t(kind: str, **extra: Any) -> Doc:
    return {"type": kind, **extra}


def _each(schema: Doc, names: str) -> dict[str, Doc]:
    return dict.fromkeys(names.split(), schema)


STR, INT, NUM, BOOL, MAP = _t("string"), _t("integer"), _t("number"), _t("boolean"), _obj()
EXAMPLE_APP: Doc = {
    "id": "/prod/web",
    "cmd": "exec python3 -m http.server $PORT0",
    "cpus": 0.1,
    "mem": 64,
    "instances": 1,
    "portDefinitions": [{"port": 0, "name": "http"}],
}
NULLABLE_STR = _t("string", nullable=True)
SCHEMAS: Doc = {
    "Error": _obj("message", message=STR, details=_array(_obj(path=STR, errors=_array(STR)))),
    "Message": _obj("message", message=STR),
    "DeploymentResult": _obj("deploymentId", "version", deploymentId=STR, version=STR),
    "DeploymentSteps": _obj("steps", steps=_array(_obj(actions=_array(MAP)))),
    "App": _obj(
        args=_array(STR),
        labels=_t("object", additionalProperties=STR),
        constraints=_array(_array(STR)),
        tasks=_array(_ref("Task")),
        **_each(STR, "id cmd version"),
        **_each(NUM, "cpus mem disk"),
        **_each(INT, "instances gpus tasksRunning tasksStaged tasksHealthy tasksUnhealthy"),
        **_each(MAP, "env container upgradeStrategy versionInfo"),
        **_each(_array(MAP), "networks portDefinitions healthChecks deployments"),
    ),
    "Group": _obj(
        apps=_array(_ref("App")),
        pods=_array(MAP),
        groups=_array(_ref("Group")),
        dependencies=_array(STR),
        enforceRole=BOOL,
        scaleBy=NUM,
        **_each(STR, "id version"),
    ),
    "Task": _obj(
        **_each(STR, "appId id host slaveId state stagedAt startedAt version"),
        **_each(_array(INT), "ports servicePorts"),
        **_each(_array(MAP), "ipAddresses healthCheckResults"),
    ),
    "Deployment": _obj(
        **_each(STR, "id version"),
        **_each(_array(STR), "affectedApps affectedPods"),
        **_each(_array(MAP), "steps currentActions"),
        **_each(INT, "currentStep totalSteps"),
    ),
    "QueueItem": _obj(app=_ref("App"), count=INT, delay=MAP, since=STR, processedOffersSummary=MAP),
    "Info": _obj(
        "name",
        "version",
        elected=BOOL,
        **_each(STR, "name version buildref"),
        **_each(NULLABLE_STR, "leader frameworkId"),
        **_each(MAP, "marathon_config zookeeper_config http_config"),
    ),
    "Leader": _obj("leader", leader=STR),
    "Metrics": _obj(version=STR, **_each(MAP, "counters gauges histograms meters timers")),
    # request bodies, from the readers (appschema), each with an example that deploys
    "AppDefinition": {**APP.json_schema(), "example": EXAMPLE_APP},
    "AppUpdate": {**APP_UPDATE.json_schema(), "example": {"instances": 2}},
    "GroupUpdate": {**GROUP_UPDATE.json_schema(), "example": {"id": "/prod", "apps": [EXAMPLE_APP]}},
}  # appschema.GROUP_UPDATE_REF names "GroupUpdate"


def _param(name: str, where: str, schema: Doc, description: str = "") -> Doc:
    out: Doc = {"name": name, "in": where, "schema": schema, "required": where == "path"}
    return {**out, "description": description} if description else out


def _query(name: str, kind: str = "boolean", description: str = "", *, repeat: bool = False) -> Doc:
    schema = _array(_t(kind)) if repeat else _t(kind)
    out = _param(name, "query", schema, description)
    return {**out, "explode": True} if repeat else out


def _id(name: str, description: str, example: str | None = None) -> Doc:
    out = _param(name, "path", STR, description)
    return out if example is None else {**out, "example": example}


APP_ID = _id("appId", "run spec id without the leading slash; may contain slashes", "prod/web")
GROUP_ID = _id("groupId", "group id without the leading slash; may contain slashes", "prod")
TASK_ID = _id("taskId", "Mesos task id")
VERSION_ID = _id("version", "ISO-8601 version timestamp")
FORCE = _query("force", description="override deployment locks")
FORCE_TRUE = _query("force", description="override deployment locks (default true)")
EMBED = _query("embed", "string", "embedded fields (apps.tasks, apps.counts …)", repeat=True)
KILL = [_query("scale"), _query("wipe"), FORCE]


def _json(schema: Doc) -> Doc:
    return {"application/json": {"schema": schema}}


def _op(
    op_id: str,
    summary: str,
    ok: Responses,
    params: list[Doc] | None = None,
    body: Doc | None = None,
    errors: dict[str, str] = _ERRORS,
) -> Doc:
    responses: Doc = {}
    for status, (description, content) in ok.items():
        responses[status] = {"description": description, **({"content": content} if content else {})}
    for status, description in errors.items():
        responses.setdefault(status, {"description": description, "content": _json(_ref("Error"))})
    out: Doc = {
        "operationId": op_id,
        "summary": summary,
        "tags": [op_id.split("_")[0]],
        "responses": responses,
    }
    if params:
        out["parameters"] = params
    if body is not None:
        out["requestBody"] = {"required": True, "content": _json(body)}
    return out


def _deployable(
    op_id: str, summary: str, params: list[Doc], body: Doc | None = None, also: Responses | None = None
) -> Doc:
    responses = {"200": ("Deployment started", _json(_ref("DeploymentResult"))), **(also or {})}
    return _op(op_id, summary, responses, params, body, _DEPLOYABLE_ERRORS)


def _get(op_id: str, summary: str, schema: Doc, params: list[Doc] | None = None) -> Doc:
    return _op(op_id, summary, {"200": ("OK", _json(schema))}, params)


def _created(op_id: str, summary: str, params: list[Doc], body: Doc, content: Doc | None = None) -> Doc:
    """A ``deployable`` create: 201 with ``Location`` and ``Marathon-Deployment-Id``."""
    body_schema = _ref("DeploymentResult") if content is None else content
    return _op(op_id, summary, {"201": ("Created", _json(body_schema))}, params, body, _DEPLOYABLE_ERRORS)


def _group_put(op_id: str, summary: str, params: list[Doc]) -> Doc:
    either = {"oneOf": [_ref("DeploymentResult"), _ref("DeploymentSteps")]}
    ok: Responses = {"200": ("Deployment started; with dryRun=true the plan's steps", _json(either))}
    return _op(op_id, summary, ok, [*params, FORCE, DRY_RUN], _ref("GroupUpdate"), _DEPLOYABLE_ERRORS)


PARTIAL = _query("partialUpdate", description="absent fields keep their values (default true)")
DRY_RUN = _query("dryRun", description="answer the plan's steps without deploying")
TASKS = _obj(tasks=_array(_ref("Task")))
CREATED: Responses = {"201": ("Created", _json(_ref("DeploymentResult")))}
KILLED: Responses = {"200": ("The killed tasks, or a deployment with scale=true", _json(MAP))}
TEXT = {"text/plain": {"schema": STR}}
PATHS: Doc = {
    "/v2/apps": {
        "get": _get("apps_list", "List apps", _obj(apps=_array(_ref("App"))),
                    [_query("cmd", "string"), _query("id", "string"), _query("label", "string"), EMBED]),
        "post": _created("apps_create", "Create an app", [FORCE], _ref("AppDefinition"), _ref("App")),
        "put": _deployable("apps_putMany", "Create or update apps", [FORCE, PARTIAL],
                           _array(_ref("AppDefinition"))),
        "patch": _deployable("apps_patchMany", "Update apps", [FORCE], _array(_ref("AppDefinition"))),
    },
    "/v2/apps/{appId}": {
        "get": _get("apps_get", "One app", _obj(app=_ref("App")), [APP_ID, EMBED]),
        "put": _deployable("apps_put", "Create or update an app", [APP_ID, FORCE, PARTIAL], _ref("AppUpdate"),
                           CREATED),
        "patch": _deployable("apps_patch", "Update an app", [APP_ID, FORCE], _ref("AppUpdate")),
        "delete": _deployable("apps_delete", "Destroy an app", [APP_ID, FORCE_TRUE]),
    },
    "/v2/apps/{groupId}/*": {
        "get": _get("apps_inGroup", "Every app below a group", _obj(**{"*": _array(_ref("App"))}),
                    [GROUP_ID, EMBED]),
    },
    "/v2/apps/{appId}/restart": {"post": _deployable("apps_restart", "Restart an app", [APP_ID, FORCE])},
    "/v2/apps/{appId}/tasks": {
        "get": _op("apps_tasks", "Tasks of an app (or of every app below a group: appId = groupId/*)",
                   {"200": ("OK", _json(TASKS))}, [APP_ID], errors=_TASK_LIST_ERRORS),
        "delete": _deployable("apps_killTasks", "Kill tasks of an app",
                              [APP_ID, _query("host", "string", "only tasks on this host; * = all"), *KILL],
                              also=KILLED),
    },
    "/v2/apps/{appId}/tasks/{taskId}": {
        "delete": _deployable("apps_killTask", "Kill one task", [APP_ID, TASK_ID, *KILL],
                              also={"200": ("The killed task, or a deployment with scale=true", _json(MAP))}),
    },
    "/v2/apps/{appId}/versions": {
        "get": _get("apps_versions", "Versions of an app", _obj(versions=_array(STR)), [APP_ID]),
    },
    "/v2/apps/{appId}/versions/{version}": {
        "get": _get("apps_version", "An app as of a version", _ref("App"), [APP_ID, VERSION_ID]),
    },
    "/v2/groups": {
        "get": _get("groups_root", "The root group", _ref("Group"), [EMBED]),
        "post": _created("groups_create", "Create a group", [FORCE], _ref("GroupUpdate")),
        "put": _group_put("groups_putRoot", "Update the root group", []),
        "delete": _deployable("groups_deleteRoot", "Remove everything", [FORCE]),
    },
    "/v2/groups/apps": {"get": _get("groups_rootApps", "Every app", _array(_ref("App")), [EMBED])},
    "/v2/groups/versions": {"get": _get("groups_rootVersions", "Versions of the root group", _array(STR))},
    "/v2/groups/versions/{version}": {
        "get": _get("groups_rootVersion", "The root as of a version", _ref("Group"), [VERSION_ID, EMBED]),
    },
    "/v2/groups/{groupId}": {
        "get": _get("groups_get", "One group", _ref("Group"), [GROUP_ID, EMBED]),
        "post": _created("groups_createIn", "Create inside", [GROUP_ID, FORCE], _ref("GroupUpdate")),
        "put": _group_put("groups_put", "Create or update, scale, roll back", [GROUP_ID]),
        "patch": _op("groups_patch", "Change enforceRole (top-level groups)", {"200": ("Changed", None)},
                     [GROUP_ID], _obj(enforceRole=BOOL), {**_ERRORS, "422": "Not a top-level group"}),
        "delete": _deployable("groups_delete", "Remove a group", [GROUP_ID, FORCE]),
    },
    "/v2/groups/{groupId}/apps": {
        "get": _get("groups_apps", "Every app below a group", _array(_ref("App")), [GROUP_ID, EMBED]),
    },
    "/v2/groups/{groupId}/versions": {
        "get": _get("groups_versions", "Versions of a group", _array(STR), [GROUP_ID]),
    },
    "/v2/groups/{groupId}/versions/{version}": {
        "get": _get("groups_version", "A group as of a version", _ref("Group"),
                    [GROUP_ID, VERSION_ID, EMBED]),
    },
    "/v2/deployments": {"get": _get("deployments_list", "Running deployments", _array(_ref("Deployment")))},
    "/v2/deployments/{deploymentId}": {
        "delete": _deployable("deployments_cancel", "Roll back (with force: stop) a deployment",
                              [_id("deploymentId", "deployment id"), FORCE], also={"202": ("Stopped", None)}),
    },
    "/v2/tasks": {
        "get": _op("tasks_list", "All tasks", {"200": ("OK", _json(TASKS))},
                   [_query("status", "string", "running or staging", repeat=True),
                    _query("status[]", "string", "running or staging", repeat=True)],
                   errors=_TASK_LIST_ERRORS),
    },
    "/v2/tasks/delete": {
        "post": _deployable("tasks_kill", "Kill tasks by id", KILL, _obj("ids", ids=_array(STR)), KILLED),
    },
    "/v2/queue": {
        "get": _get("queue_list", "Launch queue", _obj(queue=_array(_ref("QueueItem"))),
                    [_query("embed", "string", "lastUnusedOffers")]),
    },
    "/v2/queue/{appId}/delay": {
        "delete": _op("queue_resetDelay", "Reset the launch delay", {"204": ("Reset", None)}, [APP_ID]),
    },
    "/v2/info": {"get": _get("info_get", "Server information", _ref("Info"))},
    "/v2/leader": {
        "get": _get("leader_get", "The current leader", _ref("Leader")),
        "delete": _op("leader_abdicate", "Abdicate", {"200": ("Abdicated", _json(_ref("Message")))}),
    },
    "/v2/events": {
        "get": _op("events_stream", "Server-sent events",
                   {"200": ("The stream", {"text/event-stream": {"schema": STR}}),
                    "302": ("Redirect to the leader (from a standby)", None)},
                   [_query("event_type", "string", "event types to receive", repeat=True),
                    _query("plan-format", "string", "light: deployment plans without original/target")],
                   errors={"405": "Accept: text/event-stream required"}),
    },
    "/ping": {"get": _op("system_ping", "Liveness", {"200": ("pong", TEXT)})},
    "/metrics": {"get": _get("system_metrics", "Metrics", _ref("Metrics"))},
    "/metrics/prometheus": {"get": _op("system_prometheus", "Prometheus text", {"200": ("", TEXT)})},
}  # fmt: skip


@functools.cache
def document() -> Doc:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Marathon REST API v2 (marathon_py)",
            "version": VERSION,
            "description": "The Marathon 1.10 API served by baremetal-paas' marathon_py.",
        },
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
    }


def add_routes(app: web.Application) -> None:
    async def serve(request: web.Request) -> web.Response:
        return json_response(document())

    app.router.add_get(OPENAPI_PATH, serve)
