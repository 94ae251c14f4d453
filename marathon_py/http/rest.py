"""What every ``/v2`` handler shares (reference §1.3, §1.4, §2): query flags, the JSON body, ids from the
path, the answer of a ``deployable`` call, and the suffix routing of ids that contain slashes.

Routing: Jersey cannot bind a path parameter with slashes, so Marathon's resources match
``{id:.+}/restart``, ``{appId:.+}/tasks`` … as regular expressions, the template with the most literal
characters first, the ``.+`` greedy. ``suffix`` does the same, and, like Jersey once a template matched,
answers a rest it cannot place with the unknown-route 500 and a method the template lacks with 405.

Query flags: Jersey reads a ``Boolean`` parameter with ``Boolean.valueOf``, so Marathon takes anything but
``true`` (any case) as false; we answer a value that is neither ``true`` nor ``false`` (any case — the
``marathon`` client sends Python's ``True``/``False``) with 400 instead of silently ignoring, say,
``force=yes``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from marathon_py import deployment as dp
from marathon_py.http.errors import HttpError, json_response, unknown_route
from marathon_py.pathid import PathId
from marathon_py.validation import BadRequest, ValidationError, parse_json

DEPLOYMENT_HEADER = "Marathon-Deployment-Id"  # RestResource.DeploymentHeader (§1.3)
TEXT_PLAIN_GONE = "The text/plain output is deprecated. It can be enabled via text_plain_tasks."
Action = Callable[[], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# AppsResource.ListApps / AppTasksResource.GroupTasks: "prod/*" stands for every app below /prod
GROUP_WILDCARD = re.compile(r"((?:.+/)|)\*", re.DOTALL)
# The rest of a path below a prefix, as a route pattern: any character, a decoded %0A too (Java's ``.+`` stops
# at a line break, so Jersey answers such an id 500 "URI not found"; our ids are validated, not routed).
REST = "{rest:(?s:.+)}"


# -- the request ------------------------------------------------------------------------------------------


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter (the first if repeated, as Jersey takes it); 400 unless true/false."""
    value = request.query.get(name)
    if value is None:
        return default
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise BadRequest(f"Query parameter '{name}' must be true or false, not '{value}'.")


def values(request: web.Request, name: str) -> list[str]:
    """A repeatable query parameter (``embed``, ``status``), in the order given."""
    return request.query.getall(name, [])


async def body(request: web.Request) -> Any:
    """The JSON body, or Marathon's 400 (``validation.parse_json``)."""
    return parse_json(await request.read())


def path_id(text: str) -> str:
    """An id from the path as Marathon's ``toAbsolutePath`` reads it: ``prod//web/`` → ``/prod/web``."""
    return str(PathId.parse(text).canonical())


def parent(run_spec_id: str) -> str:
    """The enclosing group: what ``group_change_success`` names for a change at ``run_spec_id``."""
    return str(PathId.parse(run_spec_id).parent)


def valid_path_id(text: str) -> str:
    """``path_id`` for an id about to be created: Marathon validates it first (422 at ``/``)."""
    pid = PathId.parse(text).canonical()
    errors = pid.errors()
    if errors:
        raise ValidationError([("/", message) for message in errors])
    return str(pid)


def require_json(request: web.Request) -> None:
    """The task lists' content negotiation: JSON, or (1.10 soft-removed the text form) 406.

    Jersey weighs the client's q by the server's qs, text/plain being ``qs=0.1`` (``TEXT_PLAIN_LOW``).
    """
    accept = request.headers.get("Accept")
    if not accept:
        return
    json_q = text_q = 0.0
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = next((_quality(p[2:]) for p in params if p.startswith("q=")), 1.0)
        media = media.lower()
        if media in ("*/*", "application/*", "application/json"):
            json_q = max(json_q, q)
        if media in ("*/*", "text/*", "text/plain"):
            text_q = max(text_q, q * 0.1)
    if json_q > 0 and json_q >= text_q:
        return
    raise HttpError(406, TEXT_PLAIN_GONE if text_q > 0 else "Not Acceptable")


def _quality(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


# -- the answer -------------------------------------------------------------------------------------------


def deployed(plan: dp.DeploymentPlan, status: int = 200, *, location: str | None = None) -> web.Response:
    """The DeploymentResult of a ``deployable`` call, with ``Marathon-Deployment-Id`` (§1.3, §1.4)."""
    headers = {DEPLOYMENT_HEADER: plan.id} | ({"Location": location} if location is not None else {})
    return json_response(dp.deployment_result_json(plan), status, headers)


# -- routing of ids with slashes --------------------------------------------------------------------------


def add_collection(app: web.Application, method: str, path: str, handler: Handler) -> None:
    """A route on a collection, with and without a trailing slash (Jersey matches ``/v2/apps/`` too)."""
    for variant in (path, f"{path}/"):
        if method == "GET":
            app.router.add_get(variant, handler)  # HEAD as well, as Jersey answers it
        else:
            app.router.add_route(method, variant, handler)


def choose(request: web.Request, actions: Mapping[str, Action]) -> Awaitable[web.StreamResponse]:
    """The action for the request's method (HEAD as GET, as Jersey does), else 405 with ``Allow``."""
    action = actions.get("GET" if request.method == "HEAD" else request.method)
    if action is None:
        raise web.HTTPMethodNotAllowed(request.method, sorted(actions))
    return action()


def suffix(rest: str, name: str) -> tuple[str, str | None] | None:
    """``rest`` matched against Jersey's ``{id:.+}/<name>`` template: (id, None) for the name itself,
    (id, item) for one more segment; None when the template does not match. A longer rest matched the
    template but names nothing: the unknown-route 500."""
    found = re.fullmatch(rf"(.+)/{re.escape(name)}(/.*)?", rest, re.DOTALL)
    if found is None:
        return None
    tail = (found.group(2) or "").removeprefix("/").removesuffix("/")
    if "/" in tail:
        raise unknown_route()
    return found.group(1), tail or None
