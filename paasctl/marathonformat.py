"""Marathon's REST JSON as paasctl's tables, summaries and error lines: pure functions, no I/O.

Kept apart from the commands so they are tested against the reference's documented shapes without a
cluster (tests/unit/test_paasctl_marathon_format.py).  As in paasctl.mesosformat every field may be
missing and then shows as ``-``.  Shapes: AppInfo (reference §2.1, §4.1), Task (§2.4), deployments
(§2.3), error bodies (§1.5).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from paasctl.common import EXIT_CONNECTION, EXIT_FAILED
from paasctl.mesosformat import list_of, num, table
from paasctl.progress import action_text

# What an AppInfo adds to the definition; the rest is what `app deploy` would take back.
INFO_KEYS = frozenset(
    {"tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy", "deployments", "tasks",
     "lastTaskFailure", "readinessCheckResults", "tasksStats"}
)  # fmt: skip
SERVER_KEYS = frozenset({"version", "versionInfo"})  # owned by Marathon: a PUT must not carry them
LOCK_HINT = " Override with the option"  # where Marathon's 409 text turns to API advice (§1.5)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def app_status(app: Mapping[str, Any]) -> str:
    """The Marathon UI's words: Deploying while a deployment touches it, Suspended at 0 instances."""
    if list_of(app, "deployments"):
        return "Deploying"
    if _count(app.get("instances")) == 0:
        return "Suspended"
    return "Running"


def _healthy(app: Mapping[str, Any]) -> str:
    return str(_count(app.get("tasksHealthy"))) if app.get("healthChecks") else "-"


def apps_table(apps: Iterable[Mapping[str, Any]]) -> str:
    rows = [
        (
            str(a.get("id", "-")),
            f"{_count(a.get('tasksRunning'))}/{_count(a.get('instances'))}",
            _healthy(a),
            num(a.get("cpus")),
            num(a.get("mem")),
            app_status(a),
        )
        for a in apps
    ]
    return table(("ID", "RUNNING", "HEALTHY", "CPUS", "MEM(MB)", "STATUS"), rows)


def task_health(task: Mapping[str, Any]) -> str:
    """``healthy`` when every check says alive, ``unhealthy`` otherwise, ``-`` without checks."""
    results = list_of(task, "healthCheckResults")
    if not results:
        return "-"
    return "healthy" if all(r.get("alive") for r in results) else "unhealthy"


def _ports(task: Mapping[str, Any]) -> str:
    ports = task.get("ports")
    return ",".join(str(p) for p in ports) if isinstance(ports, list) and ports else "-"


def tasks_table(tasks: Iterable[Mapping[str, Any]]) -> str:
    rows = [
        (
            str(t.get("id", "-")),
            str(t.get("host", "-")),
            _ports(t),
            str(t.get("state", "-")),
            task_health(t),
            str(t.get("startedAt") or t.get("stagedAt") or "-"),
            str(t.get("version", "-")),
        )
        for t in tasks
    ]
    return table(("ID", "HOST", "PORTS", "STATE", "HEALTH", "STARTED", "VERSION"), rows)


def _step(d: Mapping[str, Any]) -> str:
    return f"{_count(d.get('currentStep'))}/{_count(d.get('totalSteps'))}"


def deployments_table(deployments: Iterable[Mapping[str, Any]]) -> str:
    rows = [
        (
            str(d.get("id", "-")),
            ",".join(str(a) for a in d.get("affectedApps") or ()) or "-",
            _step(d),
            ", ".join(action_text(a) for a in list_of(d, "currentActions")) or "-",
            str(d.get("version", "-")),
        )
        for d in deployments
    ]
    return table(("ID", "APPS", "STEP", "CURRENT ACTIONS", "VERSION"), rows)


def affected_apps(listing: Any, deployment_id: str) -> list[str]:
    """The apps a listed deployment touches (what its rollback will touch too)."""
    docs = [d for d in listing if isinstance(d, Mapping)] if isinstance(listing, list) else []
    return [str(a) for d in docs if d.get("id") == deployment_id for a in d.get("affectedApps") or ()]


def definition(app: Mapping[str, Any]) -> dict[str, Any]:
    """The app definition inside an AppInfo (the counts, tasks and deployments left out)."""
    return {k: v for k, v in app.items() if k not in INFO_KEYS}


def redeployable(app: Mapping[str, Any]) -> dict[str, Any]:
    """A stored definition as a PUT body: Marathon refuses ``version`` next to other fields (§2.1)."""
    return {k: v for k, v in definition(app).items() if k not in SERVER_KEYS}


def _obj(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, Mapping) else {}


def _what_runs(app: Mapping[str, Any]) -> str:
    docker = _obj(_obj(app, "container"), "docker")
    parts = [f"image {docker['image']}"] if docker.get("image") else []
    if app.get("cmd"):
        parts.append(f"cmd {app['cmd']}")
    elif isinstance(app.get("args"), list):
        parts.append("args " + json.dumps(app["args"]))
    return "; ".join(parts) or "-"


def app_text(app: Mapping[str, Any]) -> str:
    """``app show``: a summary, the deployments and tasks, then the definition as JSON."""
    running, target = _count(app.get("tasksRunning")), _count(app.get("instances"))
    counts = f"{running}/{target} running, {_count(app.get('tasksStaged'))} staged"
    if app.get("healthChecks"):
        counts += (
            f", {_count(app.get('tasksHealthy'))} healthy, {_count(app.get('tasksUnhealthy'))} unhealthy"
        )
    failure = _obj(app, "lastTaskFailure")
    rows = [
        ("id", str(app.get("id", "-"))),
        ("status", f"{app_status(app)} ({counts})"),
        ("version", str(app.get("version", "-"))),
        ("runs", _what_runs(app)),
        (
            "resources",
            f"cpus {num(app.get('cpus'))}, mem {num(app.get('mem'))} MB, disk {num(app.get('disk'))} MB",
        ),
        ("health checks", str(len(list_of(app, "healthChecks")))),
        ("deployments", ", ".join(str(d.get("id", "-")) for d in list_of(app, "deployments")) or "none"),
    ]
    if failure:
        message = f": {failure['message']}" if failure.get("message") else ""
        rows.append(
            ("last failure", f"{failure.get('state', '-')} at {failure.get('timestamp', '-')}{message}")
        )
    width = max(len(k) for k, _ in rows)
    head = "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
    tasks = list_of(app, "tasks")
    body = tasks_table(tasks) if tasks else "(no tasks)"
    return f"{head}\n\ntasks:\n{body}\n\ndefinition:\n{json.dumps(definition(app), indent=2)}"


# ---------------------------------------------------------------------------------------------- errors


def _details(details: Any) -> str:
    """422/400 ``details``: ``[{path, errors}]`` as ``/path: e1, e2; …`` (or the parser's message)."""
    if isinstance(details, str):
        return details
    parts = []
    for d in details if isinstance(details, list) else []:
        if isinstance(d, Mapping):
            errors = d.get("errors")
            text = ", ".join(str(e) for e in errors) if isinstance(errors, list) else str(errors or "")
            parts.append(f"{d.get('path') or '/'}: {text}".rstrip(": "))
    return "; ".join(parts)


def locked_ids(body: Any) -> list[str]:
    """The deployment ids of a 409 AppLockedException body."""
    return [str(d.get("id")) for d in list_of(body, "deployments") if d.get("id")]


def error_message(method: str, path: str, status: int, body: Any, reason: str = "") -> str:
    """One line for a refused request, Marathon's message and details kept: ``PUT /v2/apps/x: 422 …``."""
    if isinstance(body, Mapping) and body.get("message"):
        text = str(body["message"])
    elif isinstance(body, str) and body.strip():
        text = body.strip().splitlines()[0][:200]
    else:
        text = reason or "no message"
    locked = locked_ids(body)
    if locked:
        cut = text.find(LOCK_HINT)
        text = (text[:cut] if cut >= 0 else text).rstrip()
        text += f" (deployments: {', '.join(locked)}); use --force to cancel them and go ahead"
    elif isinstance(body, Mapping) and body.get("details"):
        text += f": {_details(body['details'])}"
    return f"{method} {path}: {status} {text}"


_KINDS = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found", 422: "invalid"}


def error_kind(status: int, body: Any) -> tuple[str, int]:
    """(``--json`` error kind, exit status): Marathon without a leader or unreachable behind a standby is
    a connection problem (3); every other refusal is a failed operation (1)."""
    if status in (502, 503, 504):
        return "unavailable", EXIT_CONNECTION
    if status == 409:
        return ("locked" if locked_ids(body) else "conflict"), EXIT_FAILED
    return _KINDS.get(status, "http"), EXIT_FAILED


def deployment_id(headers: Mapping[str, str], body: Any) -> str | None:
    """The deployment a write started: ``Marathon-Deployment-Id``, else the DeploymentResult's
    ``deploymentId``, else (``POST /v2/apps`` answers an AppInfo) its ``deployments[0].id`` (§1.3, §2.1)."""
    if headers.get("marathon-deployment-id"):
        return headers["marathon-deployment-id"]
    if isinstance(body, Mapping) and isinstance(body.get("deploymentId"), str):
        return str(body["deploymentId"])
    ids = [str(d["id"]) for d in list_of(body, "deployments") if isinstance(d.get("id"), str)]
    return ids[0] if ids else None


def previous_version(versions: Iterable[Any], current: Any) -> str | None:
    """The newest stored version older than ``current`` (ISO timestamps of one format sort as text)."""
    older = [v for v in versions if isinstance(v, str) and isinstance(current, str) and v < current]
    return max(older) if older else None
