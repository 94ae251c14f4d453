"""``paasctl master …`` and ``paasctl agent …``: read the operator endpoints of Mesos' v0 JSON model.

The commands find the leading master (paasctl.mesoshttp), fetch one endpoint and render it
(paasctl.mesosformat).  Endpoints that an older master or agent lacks (404) fall back to the one every
version has (``/master/state``, ``/state``, ``/monitor/statistics``); fields it lacks show as empty
tables, never as errors.  This module also owns ``--master`` and ``--agent``, which ``paasctl run`` reuses.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from paasctl.common import Outcome
from paasctl.mesosformat import (
    agent_resources,
    agents_table,
    containers_table,
    format_summary,
    frameworks_table,
    list_of,
    resources_table,
    state_tasks,
    tasks_table,
)
from paasctl.mesoshttp import AGENT_PORT, MASTER_PORT, base_url, find_leader, get_first, get_json
from paasctl.options import default, leaf_parent, number

DEFAULT_MASTER = f"127.0.0.1:{MASTER_PORT}"
DEFAULT_AGENT = f"127.0.0.1:{AGENT_PORT}"

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
        doc = {"slaves": list_of(doc, "slaves"), "recovered_slaves": list_of(doc, "recovered_slaves")}
    return Outcome(json=doc, text=agents_table(list_of(doc, "slaves")))


def cmd_frameworks(args: argparse.Namespace) -> Outcome:
    url = _leader(args)
    path, doc = get_first(url, ("/master/frameworks", "/master/state"), args.timeout, "master")
    if path == "/master/state":
        keys = ("frameworks", "completed_frameworks", "unregistered_frameworks")
        doc = {k: list_of(doc, k) for k in keys}
    shown = list_of(doc, "frameworks") + (list_of(doc, "completed_frameworks") if args.all else [])
    return Outcome(json=doc, text=frameworks_table(shown))


def cmd_tasks(args: argparse.Namespace) -> Outcome:
    url = _leader(args)
    query = "?" + urlencode({"limit": args.limit})
    path, doc = get_first(url, (f"/master/tasks{query}", "/master/state"), args.timeout, "master")
    if path == "/master/state":
        doc = {"tasks": state_tasks(doc)[: args.limit]}
    return Outcome(json=doc, text=tasks_table(list_of(doc, "tasks")))


def _agent(args: argparse.Namespace) -> str:
    return base_url(args.agent, AGENT_PORT, "--agent")


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
    if "master" in names:
        parser.add_argument(
            "--master",
            metavar="URL",
            default=default(os.environ.get("PAASCTL_MASTER") or DEFAULT_MASTER, with_defaults),
            help=f"any master (host:port, http://host:port) or zk://host:port[,...]/path "
            f"(default: $PAASCTL_MASTER or {DEFAULT_MASTER})",
        )
    if "agent" in names:
        parser.add_argument(
            "--agent",
            metavar="HOST:PORT",
            default=default(os.environ.get("PAASCTL_AGENT") or DEFAULT_AGENT, with_defaults),
            help=f"agent to ask (default: $PAASCTL_AGENT or {DEFAULT_AGENT})",
        )


def leaf_options(*names: str) -> argparse.ArgumentParser:
    """A parent parser with the named options for leaf parsers (no defaults: the top level owns them)."""
    return leaf_parent(add_options, names=names)


_limit = number(int, lambda n: n >= 1, "limit", "a positive integer")


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
