"""``paasctl app …`` and ``paasctl deployments …``: Marathon apps and deployments from the command line.

Reads print tables (paasctl.marathonformat) or, with ``--json``, Marathon's own JSON.  Every write that
starts a deployment waits for it (paasctl.marathonwait: a live progress bar on a TTY, a line per change
otherwise) and ends with a verdict line: exit 0 when it succeeded, 1 when it failed, 5 when ``--timeout``
expired, 130 on Ctrl-C — the deployment keeps running in the last two cases.  ``--no-wait`` returns as soon
as Marathon accepted the change.  HTTP, failover and Marathon's error bodies are paasctl.marathonhttp's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from paasctl import progress
from paasctl.common import (
    EXIT_CONNECTION,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    CliError,
    Outcome,
    UsageError,
)
from paasctl.marathonformat import (
    affected_apps,
    app_text,
    apps_table,
    deployment_id,
    deployments_table,
    previous_version,
    redeployable,
    tasks_table,
)
from paasctl.marathonhttp import DEFAULT_MARATHON, Marathon, basic_auth
from paasctl.marathonwait import EVENT_TYPES, Display, app_path, wait
from paasctl.options import default, leaf_parent, number, seconds, without_timeout

DEFAULT_WAIT = 600.0
MAX_WAIT = 7 * 86400.0
SHOW_EMBEDS = [("embed", e) for e in ("app.tasks", "app.counts", "app.deployments", "app.lastTaskFailure")]
LIST_EMBEDS = [("embed", e) for e in ("apps.counts", "apps.deployments")]

EXIT_HELP = f"""\
exit status:
  0    success (a write: its deployment succeeded)
  {EXIT_FAILED}    Marathon refused (no such app, locked by a deployment, invalid definition, ...) or the
       deployment failed
  {EXIT_USAGE}    usage error (bad arguments; FILE unreadable, not JSON or without an "id")
  {EXIT_CONNECTION}    no Marathon reachable, or none with a leader
  {EXIT_TIMEOUT}    --timeout expired while waiting (the deployment keeps running)
  {EXIT_INTERRUPTED}  interrupted (a deployment being waited for keeps running)

Given after a write command, --timeout bounds the wait for its deployment (default {DEFAULT_WAIT:g}s); given
before the command group, it is the global connect timeout.  Errors are one line on stderr, Marathon's
message and details included.
"""

# ---------------------------------------------------------------------------------------------- helpers


def _marathon(args: argparse.Namespace) -> Marathon:
    urls = args.marathon or [u for u in os.environ.get("PAASCTL_MARATHON", "").split(",") if u.strip()]
    auth = args.user
    if auth is None and os.environ.get("PAASCTL_MARATHON_USER"):
        try:
            auth = basic_auth(os.environ["PAASCTL_MARATHON_USER"])
        except argparse.ArgumentTypeError as e:
            raise UsageError(f"$PAASCTL_MARATHON_USER: {e}") from None
    return Marathon(urls or [DEFAULT_MARATHON], auth=auth, timeout=args.timeout, verbose=args.verbose)


def _app_id(value: str) -> str:
    """App ids are absolute; ``web`` means ``/web`` (Marathon resolves relative ids against ``/``)."""
    return "/" + value.strip().strip("/")


def _app(m: Marathon, app_id: str) -> dict[str, Any]:
    """``GET /v2/apps/ID``'s app (a missing app is Marathon's 404 message)."""
    doc = m.get(app_path(app_id))
    return doc.get("app", {}) if isinstance(doc, dict) else {}


def _force(args: argparse.Namespace, **extra: str) -> dict[str, str]:
    return ({"force": "true"} if args.force else {}) | extra


def _write(
    args: argparse.Namespace,
    m: Marathon,
    what: str,
    request: Callable[[], tuple[dict[str, str], Any]],
    apps: Sequence[str] = (),
) -> Outcome:
    """Make the change (``request`` → headers, body), then wait for its deployment unless ``--no-wait``.

    The event stream opens before the change, so none of its deployment's events can be missed."""
    started = time.monotonic()
    stream = None if args.no_wait else m.events(EVENT_TYPES)
    try:
        headers, body = request()
        dep = deployment_id(headers, body)
        if args.no_wait or dep is None:
            tail = f": deployment {dep} started (--no-wait: 'paasctl deployments' shows it)" if dep else ""
            return Outcome(json=body, text=what + tail)
        display = Display.for_stdout(args.json)
        p = progress.start(dep, apps)
        try:
            display.note(f"{what}: deployment {dep}")
            budget = getattr(args, "wait_timeout", DEFAULT_WAIT)
            p = wait(m, stream, p, started=started, timeout=budget, display=display)
        except KeyboardInterrupt:
            raise CliError(progress.interrupted_message(p), EXIT_INTERRUPTED, "interrupted") from None
    finally:
        if stream is not None:
            stream.close()
    elapsed = time.monotonic() - started
    result = {
        "deploymentId": dep,
        "version": body.get("version") if isinstance(body, dict) else None,
        "outcome": p.outcome,
        "seconds": round(elapsed, 3),
        "apps": [dataclasses.asdict(a) for a in p.apps],
    }
    line = progress.verdict(p, elapsed)
    if p.outcome != "succeeded":
        raise CliError(line, EXIT_FAILED, "deployment_failed", **result)
    return Outcome(json={"ok": True, **result}, text=line)


def _send(
    m: Marathon, method: str, path: str, doc: Any = None, query: dict[str, str] | None = None
) -> Callable[[], tuple[dict[str, str], Any]]:
    def request() -> tuple[dict[str, str], Any]:
        answer = m.call(method, path, doc, query=query)
        return dict(answer.headers), answer.body

    return request


def read_definition(source: str) -> dict[str, Any]:
    """FILE (``-``: stdin) as one app definition; UsageError when it cannot be one."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {source}: {getattr(e, 'strerror', None) or e}") from None
    name = "stdin" if source == "-" else source
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise UsageError(f"{name} is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{name}: expected one app definition (a JSON object), got {type(doc).__name__}")
    if not isinstance(doc.get("id"), str) or not doc["id"].strip("/ "):
        raise UsageError(f'{name}: the app definition has no "id"')
    return doc


# ---------------------------------------------------------------------------------------------- reads


def cmd_list(args: argparse.Namespace) -> Outcome:
    doc = _marathon(args).get("/v2/apps", LIST_EMBEDS)
    apps = doc.get("apps", []) if isinstance(doc, dict) else []
    return Outcome(json=doc, text=apps_table(a for a in apps if isinstance(a, dict)))


def cmd_show(args: argparse.Namespace) -> Outcome:
    doc = _marathon(args).get(app_path(_app_id(args.app_id)), SHOW_EMBEDS)
    app = doc.get("app", {}) if isinstance(doc, dict) else {}
    return Outcome(json=doc, text=app_text(app))


def cmd_tasks(args: argparse.Namespace) -> Outcome:
    doc = _marathon(args).get(app_path(_app_id(args.app_id)) + "/tasks")
    tasks = doc.get("tasks", []) if isinstance(doc, dict) else []
    return Outcome(json=doc, text=tasks_table(t for t in tasks if isinstance(t, dict)))


def cmd_deployments(args: argparse.Namespace) -> Outcome:
    doc = _marathon(args).get("/v2/deployments")
    listing = doc if isinstance(doc, list) else []
    return Outcome(json=doc, text=deployments_table(d for d in listing if isinstance(d, dict)))


# ---------------------------------------------------------------------------------------------- writes


def cmd_deploy(args: argparse.Namespace) -> Outcome:
    """POST a new app, PUT (full replace: the file is the whole definition) an existing one."""
    doc = read_definition(args.file)
    app_id = _app_id(doc["id"])
    m = _marathon(args)
    path = app_path(app_id)
    if m.get_or_none(path) is None:
        request = _send(m, "POST", "/v2/apps", doc, _force(args))
        what = f"creating {app_id}"
    else:
        request = _send(m, "PUT", path, doc, _force(args, partialUpdate="false"))
        what = f"updating {app_id}"
    return _write(args, m, what, request, [app_id])


def cmd_scale(args: argparse.Namespace) -> Outcome:
    app_id = _app_id(args.app_id)
    m = _marathon(args)
    before = _app(m, app_id).get("instances", "?")
    request = _send(m, "PUT", app_path(app_id), {"instances": args.instances}, _force(args))
    return _write(args, m, f"scaling {app_id} from {before} to {args.instances} instances", request, [app_id])


def cmd_restart(args: argparse.Namespace) -> Outcome:
    app_id = _app_id(args.app_id)
    m = _marathon(args)
    request = _send(m, "POST", app_path(app_id) + "/restart", None, _force(args))
    return _write(args, m, f"restarting {app_id}", request, [app_id])


def cmd_rollback(args: argparse.Namespace) -> Outcome:
    """PUT the stored definition of ``--to VERSION`` (default: the version before the current one)."""
    app_id = _app_id(args.app_id)
    m = _marathon(args)
    path = app_path(app_id)
    version = args.to
    if version is None:
        current = _app(m, app_id).get("version")
        versions = m.get(path + "/versions")
        version = previous_version(
            versions.get("versions", []) if isinstance(versions, dict) else [], current
        )
        if version is None:
            raise CliError(f"{app_id} has no version older than {current} to roll back to", kind="no_version")
    stored = m.get(f"{path}/versions/{version}")
    if not isinstance(stored, dict):
        raise CliError(f"version {version} of {app_id} is not an app definition", kind="bad_reply")
    request = _send(m, "PUT", path, redeployable(stored), _force(args, partialUpdate="false"))
    return _write(args, m, f"rolling {app_id} back to version {version}", request, [app_id])


def cmd_delete(args: argparse.Namespace) -> Outcome:
    app_id = _app_id(args.app_id)
    m = _marathon(args)
    request = _send(m, "DELETE", app_path(app_id), None, _force(args))
    return _write(args, m, f"deleting {app_id}", request, [app_id])


def cmd_cancel(args: argparse.Namespace) -> Outcome:
    """Without --force Marathon rolls the deployment back (a new deployment, waited for); with it the
    deployment just stops where it is (202, nothing to wait for)."""
    m = _marathon(args)
    path = f"/v2/deployments/{args.deployment_id}"
    if args.force:
        answer = m.call("DELETE", path, query={"force": "true"})
        text = f"deployment {args.deployment_id} stopped (no rollback: what it changed so far stays)"
        return Outcome(json=answer.body if answer.body is not None else {"ok": True}, text=text)
    apps = affected_apps(m.get("/v2/deployments"), args.deployment_id)
    request = _send(m, "DELETE", path)
    return _write(args, m, f"rolling back deployment {args.deployment_id}", request, apps)


# ---------------------------------------------------------------------------------------------- argparse


def add_options(parser: argparse.ArgumentParser, with_defaults: bool) -> None:
    """``--marathon`` (repeatable) and ``--user``; their environment defaults are read when used."""
    parser.add_argument(
        "--marathon",
        action="append",
        metavar="URL",
        default=default(None, with_defaults),
        help=f"a Marathon to ask, host:port or http(s)://host:port; repeat to try several in order "
        f"(default: $PAASCTL_MARATHON, comma-separated, or {DEFAULT_MARATHON})",
    )
    parser.add_argument(
        "--user",
        metavar="USER:PASSWORD",
        type=basic_auth,
        default=default(None, with_defaults),
        help="HTTP basic auth for Marathon (default: $PAASCTL_MARATHON_USER)",
    )


def _write_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--force", action="store_true", help="override deployments that lock the app (they stop)")
    p.add_argument("--no-wait", action="store_true", help="return once Marathon accepted the change")
    p.add_argument(
        "--timeout",
        dest="wait_timeout",
        type=seconds("timeout", MAX_WAIT),
        default=argparse.SUPPRESS,
        metavar="SECONDS",
        help=f"how long to wait for the deployment (default {DEFAULT_WAIT:g}); it keeps running after",
    )
    return p


_instances = number(int, lambda n: n >= 0, "instance count", "an integer >= 0")


def register(
    groups: Any, common: argparse.ArgumentParser, formatter: type[argparse.HelpFormatter], epilog: str
) -> None:
    """Add ``app`` and ``deployments`` with their subcommands."""
    options = leaf_parent(add_options)
    read: dict[str, Any] = {"formatter_class": formatter, "epilog": EXIT_HELP, "parents": [common, options]}
    write = read | {"parents": [without_timeout(common), options, _write_options()]}
    app = groups.add_parser(
        "app",
        help="Marathon apps: list, show, deploy, scale, restart, rollback, delete, tasks",
        description="Read and change Marathon apps (any Marathon: a standby proxies to the leader). "
        "Writes wait for their deployment and end with a verdict line.",
        **read,
    )
    sub = app.add_subparsers(dest="app_command", metavar="COMMAND", required=True)
    p = sub.add_parser("list", help="apps and their instances", description="All apps, with counts.", **read)
    p.set_defaults(handler=cmd_list)
    for name, handler, text in (
        ("show", cmd_show, "definition, counts, tasks and deployments of one app"),
        ("tasks", cmd_tasks, "the tasks of one app"),
    ):
        p = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".", **read)
        p.add_argument("app_id", metavar="ID")
        p.set_defaults(handler=handler)
    p = sub.add_parser(
        "deploy",
        help="create or update an app from a JSON definition",
        description="POST the app if it is new, else PUT it (the file replaces the whole definition).",
        **write,
    )
    p.add_argument("file", metavar="FILE", help="app definition (JSON); - reads stdin")
    p.set_defaults(handler=cmd_deploy)
    p = sub.add_parser("scale", help="set the number of instances", description="Scale an app.", **write)
    p.add_argument("app_id", metavar="ID")
    p.add_argument("instances", metavar="N", type=_instances)
    p.set_defaults(handler=cmd_scale)
    for name, handler, text in (
        ("restart", cmd_restart, "replace every instance (rolling, per the app's upgradeStrategy)"),
        ("delete", cmd_delete, "stop and remove an app"),
    ):
        p = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".", **write)
        p.add_argument("app_id", metavar="ID")
        p.set_defaults(handler=handler)
    p = sub.add_parser(
        "rollback",
        help="go back to an earlier version",
        description="Deploy a stored version of the app again (default: the one before the current one).",
        **write,
    )
    p.add_argument("app_id", metavar="ID")
    p.add_argument("--to", metavar="VERSION", help="the version (see GET /v2/apps/ID/versions)")
    p.set_defaults(handler=cmd_rollback)

    deployments = groups.add_parser(
        "deployments",
        help="Marathon deployments: list, cancel",
        description="Running deployments (the default), or cancel one.",
        **read,
    )
    deployments.set_defaults(handler=cmd_deployments)
    sub = deployments.add_subparsers(dest="deployments_command", metavar="COMMAND")
    p = sub.add_parser("list", help="running deployments", description="Running deployments.", **read)
    p.set_defaults(handler=cmd_deployments)
    p = sub.add_parser(
        "cancel",
        help="roll a deployment back (--force: just stop it)",
        description="Cancel a deployment: Marathon reverts it with a new deployment (waited for), or with "
        "--force stops it where it is.",
        **write,
    )
    p.add_argument("deployment_id", metavar="ID")
    p.set_defaults(handler=cmd_cancel)
