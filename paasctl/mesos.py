"""``paasctl master …`` and ``paasctl agent …``: read the operator endpoints of Mesos' v0 JSON model.

The leading master is found the way frameworks find it: through ZooKeeper's ``json.info_`` group
(``--master zk://…``), or by asking any master for ``/master/redirect`` (a standby answers 307 to the
leader).  Every request also follows 307s, so a leader change in between costs one more hop, not an
error.  Endpoints that an older master lacks (404) fall back to ``/master/state``; fields it lacks show
as empty tables, never as errors.  The formatting functions are pure (tests/unit/test_paasctl_format.py).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from paas_common.zkleader import ZkUrlError, leader_info, leader_url, parse_zk_url
from paasctl.common import EXIT_CONNECTION, EXIT_FAILED, CliError, Outcome, UsageError
from paasctl.zk import open_session

DEFAULT_MASTER = "127.0.0.1:5050"
DEFAULT_AGENT = "127.0.0.1:5051"
MAX_HOPS = 3  # redirects followed per request: standby → leader, plus a leader change or two
TERMINAL = frozenset(
    {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED", "TASK_GONE"}
)
JsonDoc = Any


# ---------------------------------------------------------------------------------------------- HTTP


def base_url(value: str, default_port: int, what: str) -> str:
    """``host:port``, ``host`` or ``http://host:port[/]`` → ``http://host:port``; UsageError otherwise."""
    text = value.strip()
    parts = urlsplit(text if "//" in text else f"//{text}", scheme="http")
    try:
        port = parts.port or default_port
    except ValueError:
        raise UsageError(f"{what} {value!r}: invalid port") from None
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise UsageError(f"{what} {value!r}: expected host:port or http://host:port")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"http://{host}:{port}"


def describe_error(err: BaseException) -> str:
    """One short phrase for a socket or HTTP failure."""
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, http.client.RemoteDisconnected):
        return "connection closed without a reply"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


def open_url(
    method: str,
    url: str,
    *,
    timeout: float,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    follow: bool = True,
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, str]:
    """Send one request (following up to MAX_HOPS 307/308 redirects, Mesos' ``//host:port/path`` form
    included) and return the open connection, its response (body unread) and the URL that answered.

    Raises OSError or http.client.HTTPException; callers turn them into a CliError naming the service.
    """
    for _ in range(MAX_HOPS + 1):
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)
        try:
            path = parts.path or "/"
            conn.request(method, f"{path}?{parts.query}" if parts.query else path, body, dict(headers or {}))
            resp = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        location = resp.getheader("Location")
        if not (follow and resp.status in (307, 308) and location):
            return conn, resp, url
        resp.read()
        conn.close()
        url = urljoin(url, location)
    raise http.client.HTTPException(f"more than {MAX_HOPS} redirects (last to {url})")


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    url: str
    location: str | None = None


def request(
    method: str,
    url: str,
    *,
    timeout: float,
    what: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    follow: bool = True,
) -> Reply:
    """A whole request; a failure to talk to ``what`` becomes CliError (exit 3)."""
    try:
        conn, resp, final = open_url(method, url, timeout=timeout, body=body, headers=headers, follow=follow)
        try:
            return Reply(resp.status, resp.read(), final, resp.getheader("Location"))
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as e:
        base = "{0.scheme}://{0.netloc}".format(urlsplit(url))
        raise CliError(
            f"cannot reach {what} at {base}: {describe_error(e)}", EXIT_CONNECTION, "connection", url=base
        ) from None


class NotFound(CliError):
    """A 404: the endpoint does not exist on this server (older master or agent); callers fall back."""


def get_json(base: str, path: str, timeout: float, what: str) -> JsonDoc:
    reply = request("GET", base + path, timeout=timeout, what=what)
    text = reply.body.decode("utf-8", "replace").strip()
    if reply.status == 503:  # a master without a leader, or one still recovering; an agent recovering
        why = f"{reply.url}: {text or 'Service Unavailable'}"
        if what == "master":
            raise CliError(f"no leading master ({why})", EXIT_CONNECTION, "no_leader", url=reply.url)
        raise CliError(f"{what} not ready ({why})", EXIT_CONNECTION, "unavailable", url=reply.url)
    if reply.status == 404:
        raise NotFound(f"{reply.url}: not found", EXIT_FAILED, "not_found", url=reply.url)
    if reply.status != 200:
        raise CliError(
            f"{reply.url}: HTTP {reply.status} {text[:200]}".rstrip(), kind="http", status=reply.status
        )
    try:
        return json.loads(reply.body)
    except ValueError:
        raise CliError(f"{reply.url}: reply is not JSON", kind="bad_reply", url=reply.url) from None


def get_first(base: str, paths: Sequence[str], timeout: float, what: str) -> tuple[str, JsonDoc]:
    """The first of ``paths`` that exists (Mesos' routes, then older aliases): (path, document)."""
    for path in paths[:-1]:
        try:
            return path, get_json(base, path, timeout, what)
        except NotFound:
            continue
    return paths[-1], get_json(base, paths[-1], timeout, what)


# ---------------------------------------------------------------------------------------------- leader


def find_leader(master: str, timeout: float, verbose: bool = False) -> str:
    """Base URL of the leading master, from ZooKeeper (``zk://``) or from any master's redirect."""
    if master.startswith("zk://"):
        return _leader_from_zk(master, timeout, verbose)
    base = base_url(master, 5050, "--master")
    reply = request("GET", f"{base}/master/redirect", timeout=timeout, what="master", follow=False)
    if reply.status in (307, 308) and reply.location:
        return base_url(urljoin(base + "/", reply.location), 5050, "leader")
    if reply.status == 503:
        raise CliError(f"no leading master (asked {base})", EXIT_CONNECTION, "no_leader", url=base)
    return base  # 404 (no /redirect) or 200: this master is as good a guess as any


def _leader_from_zk(master: str, timeout: float, verbose: bool) -> str:
    try:
        zk = parse_zk_url(master)
    except ZkUrlError as e:
        raise UsageError(f"--master: {e}") from None
    session = argparse.Namespace(zk=zk.hosts, auth=None, timeout=timeout, verbose=verbose)
    with open_session(session) as s:
        try:
            info = leader_info(s.client, zk.path)
        except Exception as e:
            raise s.error(e, zk.path) from None
    if info is None:
        raise CliError(
            f"no leading master in {master} (no json.info_ member under {zk.path})",
            EXIT_CONNECTION,
            "no_leader",
        )
    return leader_url(info)


# ---------------------------------------------------------------------------------------------- formatting


def num(value: Any) -> str:
    """A resource amount as Mesos shows it: at most 3 decimals, no trailing zeros; ``-`` if unknown."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


def used_of(used: Mapping[str, Any] | None, total: Mapping[str, Any] | None, name: str) -> str:
    """``used/total`` of one scalar of two v0 resource maps."""
    return f"{num((used or {}).get(name, 0.0))}/{num((total or {}).get(name, 0.0))}"


def yes_no(value: Any) -> str:
    return "-" if value is None else ("yes" if value else "no")


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart; an empty table is its header alone."""
    all_rows = [tuple(header), *(tuple(r) for r in rows)]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in all_rows)


def format_time(epoch: Any) -> str:
    if not isinstance(epoch, int | float) or isinstance(epoch, bool) or epoch <= 0:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))


def format_duration(seconds: float) -> str:
    s = max(int(seconds), 0)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    parts = [f"{d}d"] if d else []
    if d or h:
        parts.append(f"{h}h")
    if d or h or m:
        parts.append(f"{m}m")
    return "".join([*parts, f"{s}s"])


def _id(obj: Any) -> str:
    """IDs are plain strings in the v0 model and ``{"value": …}`` in protobuf JSON: accept both."""
    if isinstance(obj, dict):
        return str(obj.get("value", "-"))
    return "-" if obj in (None, "") else str(obj)


def _list(doc: Any, key: str) -> list[dict[str, Any]]:
    value = doc.get(key) if isinstance(doc, dict) else None
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def _dict(doc: Any, key: str) -> dict[str, Any]:
    value = doc.get(key) if isinstance(doc, dict) else None
    return value if isinstance(value, dict) else {}


def state_tasks(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every task of a ``/master/state`` (live, unreachable, completed), as ``/master/tasks`` lists them."""
    return [
        t
        for fw in _list(state, "frameworks") + _list(state, "completed_frameworks")
        for key in ("tasks", "unreachable_tasks", "completed_tasks")
        for t in _list(fw, key)
    ]


def format_summary(state: Mapping[str, Any], url: str, now: float) -> str:
    """``master state``: who leads, since when, and how much runs."""
    frameworks = _list(state, "frameworks")
    active_fw = sum(1 for f in frameworks if f.get("active"))
    live = [t for f in frameworks for t in _list(f, "tasks")]
    by_state: dict[str, int] = {}
    for t in live:
        by_state[str(t.get("state", "?"))] = by_state.get(str(t.get("state", "?")), 0) + 1
    slaves = _list(state, "slaves")
    active = state.get("activated_slaves", sum(1 for s in slaves if s.get("active")))
    elected = state.get("elected_time")
    leader = state.get("leader") or "-"
    is_self = leader == state.get("pid")
    rows = [
        ("leader", f"{leader} ({url})" if is_self else f"{leader} (asked {url})"),
        ("master id", str(state.get("id", "-"))),
        ("version", str(state.get("version", "-"))),
        ("started", format_time(state.get("start_time"))),
        (
            "elected",
            f"{format_time(elected)} (leading for {format_duration(now - elected)})"
            if isinstance(elected, int | float) and not isinstance(elected, bool)
            else "-",
        ),
        (
            "agents",
            f"{num(active)} active, {num(state.get('deactivated_slaves', 0))} deactivated, "
            f"{num(state.get('unreachable_slaves', 0))} unreachable",
        ),
        (
            "frameworks",
            f"{active_fw} active, {len(frameworks) - active_fw} inactive, "
            f"{len(_list(state, 'completed_frameworks'))} completed",
        ),
        ("tasks", ", ".join(f"{n} {s}" for s, n in sorted(by_state.items())) or "none running"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def agents_table(slaves: Iterable[Mapping[str, Any]]) -> str:
    rows = [
        (
            _id(s.get("id")),
            str(s.get("hostname", "-")),
            used_of(s.get("used_resources"), s.get("resources"), "cpus"),
            used_of(s.get("used_resources"), s.get("resources"), "mem"),
            used_of(s.get("used_resources"), s.get("resources"), "disk"),
            yes_no(s.get("active")),
        )
        for s in slaves
    ]
    return table(("ID", "HOSTNAME", "CPUS", "MEM(MB)", "DISK(MB)", "ACTIVE"), rows)


def frameworks_table(frameworks: Iterable[Mapping[str, Any]]) -> str:
    rows = [
        (
            _id(f.get("id")),
            str(f.get("name", "-")),
            yes_no(f.get("active")),
            str(len(_list(f, "tasks"))),
            num(_dict(f, "used_resources").get("cpus", 0.0)),
            num(_dict(f, "used_resources").get("mem", 0.0)),
        )
        for f in frameworks
    ]
    return table(("ID", "NAME", "ACTIVE", "TASKS", "CPUS", "MEM(MB)"), rows)


def task_healthy(task: Mapping[str, Any]) -> str:
    """The latest ``healthy`` any status reported (Mesos sets it on RUNNING updates with a health check)."""
    for status in reversed(_list(task, "statuses")):
        if "healthy" in status:
            return yes_no(status["healthy"])
    return yes_no(task.get("healthy"))


def tasks_table(tasks: Iterable[Mapping[str, Any]]) -> str:
    rows = [
        (
            _id(t.get("id", t.get("task_id"))),
            str(t.get("name", "-")),
            _id(t.get("framework_id")),
            _id(t.get("slave_id", t.get("agent_id"))),
            str(t.get("state", "-")),
            task_healthy(t),
        )
        for t in tasks
    ]
    return table(("ID", "NAME", "FRAMEWORK", "AGENT", "STATE", "HEALTHY"), rows)


def _add_maps(maps: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in maps:
        for k, v in m.items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                out[k] = out.get(k, 0.0) + float(v)
    return out


def agent_used(state: Mapping[str, Any]) -> dict[str, float]:
    """Scalars in use on an agent: its executors' resources (in Mesos they include their tasks'); an
    executor without a resources map counts its tasks'."""
    maps: list[Mapping[str, Any]] = []
    for fw in _list(state, "frameworks"):
        for ex in _list(fw, "executors"):
            res = ex.get("resources")
            if isinstance(res, dict):
                maps.append(res)
            else:
                maps.extend(
                    t["resources"] for t in _list(ex, "tasks") if isinstance(t.get("resources"), dict)
                )
    return _add_maps(maps)


def agent_resources(state: Mapping[str, Any]) -> dict[str, Any]:
    total = _dict(state, "resources")
    used = agent_used(state)
    return {
        "id": state.get("id"),
        "hostname": state.get("hostname"),
        "total": total,
        "used": {k: used.get(k, 0.0) for k, v in total.items() if isinstance(v, int | float)} | used,
    }


def resources_table(summary: Mapping[str, Any]) -> str:
    total, used = summary["total"], summary["used"]
    rows = []
    for name in dict.fromkeys([*total, *used]):
        t, u = total.get(name), used.get(name)
        scalar = isinstance(t, int | float) and not isinstance(t, bool)
        free = num(t - (u or 0.0)) if scalar else "-"
        rows.append((name, num(t) if t is not None else "-", num(u) if scalar or u else "-", free))
    head = f"agent {summary.get('id') or '-'} ({summary.get('hostname') or '-'})"
    return head + "\n" + table(("RESOURCE", "TOTAL", "USED", "FREE"), rows)


def _mb(value: Any) -> str:
    return num(value / 1048576) if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def containers_table(entries: Iterable[Mapping[str, Any]]) -> str:
    """``/containers`` (or ``/monitor/statistics``, which has no container id) as a table."""
    rows = []
    for e in entries:
        st = _dict(e, "statistics")
        cpu_time = [st.get(k) for k in ("cpus_user_time_secs", "cpus_system_time_secs")]
        known = [x for x in cpu_time if isinstance(x, int | float)]
        rows.append(
            (
                _id(e.get("container_id")),
                _id(e.get("framework_id")),
                _id(e.get("executor_id")),
                num(st.get("cpus_limit")),
                f"{_mb(st.get('mem_rss_bytes', st.get('mem_total_bytes')))}/{_mb(st.get('mem_limit_bytes'))}",
                num(sum(known)) if known else "-",
            )
        )
    return table(("CONTAINER", "FRAMEWORK", "EXECUTOR", "CPUS", "MEM(MB)", "CPU-SECS"), rows)


# ---------------------------------------------------------------------------------------------- commands


def _leader(args: argparse.Namespace) -> str:
    return find_leader(args.master, args.timeout, args.verbose)


def cmd_state(args: argparse.Namespace) -> Outcome:
    url = _leader(args)
    state = get_json(url, "/master/state", args.timeout, "master")
    return Outcome(json=state, text=format_summary(state, url, time.time()))


def cmd_agents(args: argparse.Namespace) -> Outcome:
    url = _leader(args)
    path, doc = get_first(url, ("/master/slaves", "/master/state"), args.timeout, "master")
    if path == "/master/state":
        doc = {"slaves": _list(doc, "slaves"), "recovered_slaves": _list(doc, "recovered_slaves")}
    return Outcome(json=doc, text=agents_table(_list(doc, "slaves")))


def cmd_frameworks(args: argparse.Namespace) -> Outcome:
    url = _leader(args)
    path, doc = get_first(url, ("/master/frameworks", "/master/state"), args.timeout, "master")
    if path == "/master/state":
        keys = ("frameworks", "completed_frameworks", "unregistered_frameworks")
        doc = {k: _list(doc, k) for k in keys}
    shown = _list(doc, "frameworks") + (_list(doc, "completed_frameworks") if args.all else [])
    return Outcome(json=doc, text=frameworks_table(shown))


def cmd_tasks(args: argparse.Namespace) -> Outcome:
    url = _leader(args)
    query = "?" + urlencode({"limit": args.limit})
    path, doc = get_first(url, (f"/master/tasks{query}", "/master/state"), args.timeout, "master")
    if path == "/master/state":
        doc = {"tasks": state_tasks(doc)[: args.limit]}
    return Outcome(json=doc, text=tasks_table(_list(doc, "tasks")))


def _agent(args: argparse.Namespace) -> str:
    return base_url(args.agent, 5051, "--agent")


def cmd_agent_resources(args: argparse.Namespace) -> Outcome:
    url = _agent(args)
    _path, state = get_first(url, ("/state", "/slave(1)/state"), args.timeout, "agent")
    summary = agent_resources(state if isinstance(state, dict) else {})
    return Outcome(json={"agent": url, **summary}, text=resources_table(summary))


def cmd_agent_containers(args: argparse.Namespace) -> Outcome:
    url = _agent(args)
    _path, doc = get_first(url, ("/containers", "/monitor/statistics"), args.timeout, "agent")
    entries = [e for e in doc if isinstance(e, dict)] if isinstance(doc, list) else []
    return Outcome(json=doc, text=containers_table(entries))


# ---------------------------------------------------------------------------------------------- argparse


def add_options(
    parser: argparse.ArgumentParser, with_defaults: bool, names: Sequence[str] = ("master", "agent")
) -> None:
    """``--master`` and ``--agent`` (``paasctl run`` uses the first); see paasctl.cli for the defaults."""

    def default(value: Any) -> Any:
        return value if with_defaults else argparse.SUPPRESS

    if "master" in names:
        parser.add_argument(
            "--master",
            metavar="URL",
            default=default(os.environ.get("PAASCTL_MASTER") or DEFAULT_MASTER),
            help=f"any master (host:port, http://host:port) or zk://host:port[,...]/path "
            f"(default: $PAASCTL_MASTER or {DEFAULT_MASTER})",
        )
    if "agent" in names:
        parser.add_argument(
            "--agent",
            metavar="HOST:PORT",
            default=default(os.environ.get("PAASCTL_AGENT") or DEFAULT_AGENT),
            help=f"agent to ask (default: $PAASCTL_AGENT or {DEFAULT_AGENT})",
        )


def leaf_options(*names: str) -> argparse.ArgumentParser:
    """A parent parser with the named options for leaf parsers (no defaults: the top level owns them)."""
    leaf = argparse.ArgumentParser(add_help=False)
    add_options(leaf, with_defaults=False, names=names)
    return leaf


def _limit(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"invalid limit {value!r} (a positive integer)")
    return n


def register(
    groups: Any, common: argparse.ArgumentParser, formatter: type[argparse.HelpFormatter], epilog: str
) -> None:
    """Add ``master`` and ``agent`` with their subcommands."""
    kw: dict[str, Any] = {"formatter_class": formatter, "epilog": epilog}
    kw["parents"] = [common, leaf_options("master")]
    master = groups.add_parser(
        "master",
        help="Mesos master: state, agents, frameworks, tasks",
        description="Read the leading master's state (found through --master, following standbys' "
        "redirects). --json prints the master's own JSON.",
        **kw,
    )
    sub = master.add_subparsers(dest="master_command", metavar="COMMAND", required=True)
    p = sub.add_parser("state", help="leader, version, counts", description="Summary of /master/state.", **kw)
    p.set_defaults(handler=cmd_state)
    p = sub.add_parser("agents", help="registered agents", description="Agents and their resources.", **kw)
    p.set_defaults(handler=cmd_agents)
    p = sub.add_parser("frameworks", help="frameworks", description="Frameworks and what they use.", **kw)
    p.add_argument("-a", "--all", action="store_true", help="also list completed frameworks")
    p.set_defaults(handler=cmd_frameworks)
    p = sub.add_parser("tasks", help="tasks", description="Tasks (live, unreachable, completed).", **kw)
    p.add_argument("--limit", type=_limit, default=100, help="at most this many tasks (default 100)")
    p.set_defaults(handler=cmd_tasks)

    kw["parents"] = [common, leaf_options("agent")]
    agent = groups.add_parser(
        "agent",
        help="Mesos agent: resources, containers",
        description="Read one agent's endpoints (--agent host:port).",
        **kw,
    )
    sub = agent.add_subparsers(dest="agent_command", metavar="COMMAND", required=True)
    p = sub.add_parser(
        "resources", help="total and used resources", description="Resources from the agent's /state.", **kw
    )
    p.set_defaults(handler=cmd_agent_resources)
    p = sub.add_parser(
        "containers",
        help="running containers and their usage",
        description="Containers from /containers (or /monitor/statistics on agents without it).",
        **kw,
    )
    p.set_defaults(handler=cmd_agent_containers)
