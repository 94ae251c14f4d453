"""``paasctl dev up|down|status``: a single-host development cluster as local background processes.

One zk_py (standalone), one master-py electing itself through it, one agent-py finding the master
through ZooKeeper and running tasks on the local Docker Engine (plus the process containerizer), and one
marathon-py (state and election in the same ZooKeeper, Mesos found through it), all on 127.0.0.1 and
started with this interpreter (``sys.executable -m …``), so the installed code runs.
This module is the commands and their options; the cluster's layout and cluster.json are
paasctl.devcluster, its processes paasctl.devprocess, the tasks it leaves behind paasctl.devtasks.
Logs go to ``WORKDIR/logs``.  A fresh ``up`` starts from empty ZooKeeper data and agent work dir
(masters keep no state of their own), after removing whatever tasks a previous agent left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from paasctl.common import EXIT_FAILED, EXIT_UNHEALTHY, CliError, Outcome, UsageError
from paasctl.devcluster import (
    DEFAULT_PORTS,
    MARKER,
    PARTS,
    STATE_FILE,
    commands,
    down_text,
    endpoints,
    load,
    parts_of,
    save,
    status_text,
    up_text,
    zk_url,
    zoo_cfg,
)
from paasctl.devprocess import agent_has_ip_flag, alive, check, last_line, pick_port, spawn, stop
from paasctl.devtasks import docker_problem, remove_tasks
from paasctl.options import number, seconds

DEFAULT_WAIT = 60.0


def default_workdir() -> Path:
    return Path(os.environ.get("PAASCTL_DEV_DIR") or Path.home() / ".paasctl" / "dev")


def _workdir(args: argparse.Namespace) -> Path:
    return Path(args.workdir or default_workdir()).expanduser().absolute()


def _status_rows(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    eps = endpoints(state)
    rows = {}
    for name in parts_of(state):
        running, healthy, detail = check(state, name)
        entry = state.get(name) or {}
        rows[name] = {
            "endpoint": eps.get(name),
            "pid": entry.get("pid"),
            "running": running,
            "healthy": healthy,
            "detail": detail,
            "log": entry.get("log"),
        }
    return rows


def _prepare_workdir(workdir: Path) -> None:
    if workdir.exists() and any(workdir.iterdir()) and not (workdir / MARKER).exists():
        raise UsageError(
            f"{workdir} is not empty and not a paasctl dev directory (no {MARKER}); choose --workdir"
        )
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text("paasctl dev cluster directory: 'paasctl dev down --purge' removes it\n")


def _write_zk_config(workdir: Path, port: int) -> None:
    zk_dir = workdir / "zookeeper"
    (zk_dir / "data").mkdir(parents=True, exist_ok=True)
    (zk_dir / "zoo.cfg").write_text(zoo_cfg(zk_dir / "data", port))


def _wait_ready(state: dict[str, Any], name: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Until ``name`` is healthy; CliError if it exits or the deadline passes first."""
    log = state[name]["log"]
    while True:
        if proc.poll() is not None:
            raise CliError(
                f"{name} exited with status {proc.returncode} ({log}: {last_line(log)})",
                EXIT_FAILED,
                "start_failed",
            )
        _running, ok, detail = check(state, name)
        if ok:
            return
        if time.monotonic() > deadline:
            raise CliError(f"{name} not ready in time: {detail} (see {log})", EXIT_FAILED, "start_failed")
        time.sleep(0.2)


def _containerizers(no_docker: bool) -> tuple[list[str], list[str]]:
    """The agent's containerizers, and a warning when Docker was wanted but does not answer."""
    if no_docker:
        return ["mesos"], []
    problem = docker_problem()
    if problem is not None:
        return ["mesos"], [f"{problem}: the agent runs with the mesos containerizer only"]
    return ["docker", "mesos"], []


def cmd_up(args: argparse.Namespace) -> Outcome:
    workdir = _workdir(args)
    state = load(workdir)
    if state is not None:
        running = [p for p in parts_of(state) if alive(state.get(p))]
        if len(running) == len(parts_of(state)):
            eps = endpoints(state)
            return Outcome(
                json={"ok": True, "already_running": True, **eps},
                text=up_text(eps, f"dev cluster already up in {workdir}", []),
            )
        if running:
            raise CliError(
                f"dev cluster in {workdir} is partly running ({', '.join(running)}); "
                "run 'paasctl dev down' first",
                kind="partly_running",
            )
    _prepare_workdir(workdir)
    if (workdir / "agent").exists():
        remove_tasks(workdir / "agent")  # whatever a crashed cluster left behind
    for stale in (workdir / "zookeeper" / "data", workdir / "agent"):
        shutil.rmtree(stale, ignore_errors=True)
    kinds, warnings = _containerizers(args.no_docker)
    haproxy = None if args.no_lb else shutil.which("haproxy")
    if haproxy is None and not args.no_lb:
        warnings.append("haproxy is not installed: no service discovery (marathon-py lb) in this cluster")
    taken: set[int] = set()
    ports = {}
    for part in PARTS:
        ports[part] = pick_port(getattr(args, f"{part}_port"), DEFAULT_PORTS[part], taken)
        taken.add(ports[part])
    state = {
        "version": 2,  # 2: entries record start_time and boot_id (1: psutil create_time)
        "workdir": str(workdir),
        "zk_url": zk_url(ports),
        "containerizers": kinds,
        "parts": [p for p in PARTS if p != "lb" or haproxy is not None],
        "started_at": time.time(),
    }
    deadline = time.monotonic() + args.wait
    started: list[str] = []
    try:
        _write_zk_config(workdir, ports["zookeeper"])
        steps = commands(workdir, ports, kinds, args.resources, agent_has_ip_flag(), haproxy)
        for part, argv, extra in steps:
            proc, entry = spawn([sys.executable, "-m", *argv], workdir / "logs" / f"{part}.log", workdir)
            state[part] = {**entry, "port": ports[part], **extra}
            started.append(part)
            save(workdir, state)
            _wait_ready(state, part, proc, deadline)
    except BaseException:  # also Ctrl-C: nothing half-started stays behind
        for part in reversed(started):
            stop(state.get(part))
        if "agent" in started:
            remove_tasks(workdir / "agent")
        with contextlib.suppress(OSError):
            (workdir / STATE_FILE).unlink()
        raise
    eps = endpoints(state)
    return Outcome(
        json={"ok": True, "already_running": False, "warnings": warnings, **eps},
        text=up_text(eps, f"dev cluster up in {workdir}", warnings),
    )


def cmd_down(args: argparse.Namespace) -> Outcome:
    workdir = _workdir(args)
    state = load(workdir)
    if state is None:
        report: dict[str, Any] = {"ok": True, "workdir": str(workdir), "stopped": {}}
        text = f"no dev cluster in {workdir}"
    else:
        stopped: dict[str, str] = {
            p: stop(state.get(p)) for p in ("lb", "marathon", "agent") if p in parts_of(state)
        }
        tasks = remove_tasks(workdir / "agent")
        for part in ("master", "zookeeper"):
            stopped[part] = stop(state.get(part))
        left = [p for p in parts_of(state) if alive(state.get(p))]
        if left:
            raise CliError(
                f"could not stop {', '.join(left)} (see {STATE_FILE})", kind="stop_failed", stopped=stopped
            )
        (workdir / STATE_FILE).unlink(missing_ok=True)
        report = {"ok": True, "workdir": str(workdir), "stopped": stopped, **tasks}
        text = down_text(stopped, tasks)
    if args.purge and (workdir / MARKER).exists():
        shutil.rmtree(workdir, ignore_errors=True)
        report["purged"] = True
        text += f"\nremoved {workdir}"
    return Outcome(json=report, text=text)


def cmd_status(args: argparse.Namespace) -> Outcome:
    workdir = _workdir(args)
    state = load(workdir)
    if state is None:
        return Outcome(
            json={"ok": False, "running": False, "workdir": str(workdir)},
            text=f"no dev cluster in {workdir} (start one with 'paasctl dev up')",
            code=EXIT_UNHEALTHY,
        )
    rows = _status_rows(state)
    ok = all(r["healthy"] for r in rows.values())
    return Outcome(
        json={
            "ok": ok,
            "running": all(r["running"] for r in rows.values()),
            **endpoints(state),
            "parts": rows,
        },
        text=status_text(rows),
        code=0 if ok else EXIT_UNHEALTHY,
    )


# ---------------------------------------------------------------------------------------------- argparse


_port = number(int, lambda p: 0 <= p <= 65535, "port", "0 for any free port")
_wait = seconds("wait", 600)


def add_options(parser: argparse.ArgumentParser, with_defaults: bool) -> None:
    """No top-level options: ``--workdir`` belongs to the dev commands alone."""


def register(
    groups: Any, common: argparse.ArgumentParser, formatter: type[argparse.HelpFormatter], epilog: str
) -> None:
    workdir = argparse.ArgumentParser(add_help=False)
    workdir.add_argument(
        "--workdir",
        metavar="DIR",
        help=f"cluster directory (default: $PAASCTL_DEV_DIR or {Path('~/.paasctl/dev')})",
    )
    kw: dict[str, Any] = {"parents": [common, workdir], "formatter_class": formatter, "epilog": epilog}
    dev = groups.add_parser(
        "dev",
        help="single-host development cluster (ZooKeeper, master, agent, Marathon)",
        description="Start, inspect and stop a development cluster of local processes on 127.0.0.1.",
        **kw,
    )
    sub = dev.add_subparsers(dest="dev_command", metavar="COMMAND", required=True)
    p = sub.add_parser(
        "up",
        help="start the cluster (no-op if it runs)",
        description="Start zk_py, master-py, agent-py and marathon-py in the background and wait until they "
        "are healthy. Default ports 2181, 5050, 5051, 8080 when free, else any free port.",
        **kw,
    )
    p.add_argument(
        "--wait", type=_wait, default=DEFAULT_WAIT, metavar="SECONDS", help="bound on the start (default 60)"
    )
    for part in PARTS:
        flag = {"zookeeper": "--zk-port", "lb": "--lb-stats-port"}.get(part, f"--{part}-port")
        p.add_argument(
            flag, dest=f"{part}_port", type=_port, default=None, metavar="PORT", help=f"{part} port (0: any)"
        )
    p.add_argument("--resources", help="agent resources, e.g. 'cpus:2;mem:2048' (default: detected)")
    p.add_argument("--no-docker", action="store_true", help="run the agent without the Docker containerizer")
    p.add_argument("--no-lb", action="store_true", help="no HAProxy bridge even when haproxy is installed")
    p.set_defaults(handler=cmd_up)
    p = sub.add_parser(
        "down",
        help="stop the cluster and remove its tasks",
        description="Stop the processes (SIGTERM, then SIGKILL), kill the agent's process tasks and remove "
        "its containers. Logs stay in WORKDIR/logs.",
        **kw,
    )
    p.add_argument("--purge", action="store_true", help="also remove the cluster directory")
    p.set_defaults(handler=cmd_down)
    p = sub.add_parser(
        "status",
        help="which parts run and are healthy",
        description="Exit status 4 unless every part is healthy.",
        **kw,
    )
    p.set_defaults(handler=cmd_status)
