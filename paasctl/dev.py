"""``paasctl dev up|down|status``: a single-host development cluster as local background processes.

One zk_py (standalone), one master-py electing itself through it, one agent-py finding the master
through ZooKeeper and running tasks on the local Docker Engine (plus the process containerizer), all on
127.0.0.1 and started with this interpreter (``sys.executable -m …``), so the installed code runs.
``WORKDIR/cluster.json`` records each process (pid *and* start time, so a reused pid is never signalled)
and port; it is written after every start, so even a half-started cluster can be brought down.  Logs go
to ``WORKDIR/logs``.  A fresh ``up`` starts from empty ZooKeeper data and agent work dir (masters keep
no state of their own), after removing whatever tasks a previous agent left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from paasctl import mesos
from paasctl.common import EXIT_FAILED, EXIT_UNHEALTHY, CliError, Outcome, UsageError
from paasctl.fourlw import send_command

HOST = "127.0.0.1"
PARTS = ("zookeeper", "master", "agent")  # start order; stopped in reverse
DEFAULT_PORTS = {"zookeeper": 2181, "master": 5050, "agent": 5051}
STATE_FILE = "cluster.json"
MARKER = ".paasctl-dev"  # a directory without it (and not empty) is not ours to wipe
DEFAULT_WAIT = 60.0
STOP_WAIT = 10.0  # SIGTERM → SIGKILL
PROBE_TIMEOUT = 2.0
AGENT_READY_LINE = "subscribed to master"  # agent-py's log line once its master stream is open
Step = tuple[str, list[str], dict[str, Any]]  # part, ``python -m`` arguments, extra cluster.json fields


def default_workdir() -> Path:
    return Path(os.environ.get("PAASCTL_DEV_DIR") or Path.home() / ".paasctl" / "dev")


def _workdir(args: argparse.Namespace) -> Path:
    return Path(args.workdir or default_workdir()).expanduser().absolute()


# ---------------------------------------------------------------------------------------------- processes


def alive(entry: dict[str, Any] | None) -> bool:
    """The recorded process still runs (same pid and start time, not a zombie)."""
    if not entry or not entry.get("pid"):
        return False
    try:
        proc = psutil.Process(int(entry["pid"]))
        same = abs(float(proc.create_time()) - float(entry["create_time"])) < 0.05
        return same and bool(proc.status() != psutil.STATUS_ZOMBIE)
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


def _signal(pid: int, sig: int) -> None:
    """Signal the process group the daemon leads (start_new_session), else the process alone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _until(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def stop(entry: dict[str, Any] | None, wait: float = STOP_WAIT) -> str:
    """SIGTERM, then SIGKILL after ``wait`` seconds; what happened, in a word."""
    if not alive(entry):
        return "not running"
    assert entry is not None
    pid = int(entry["pid"])
    _signal(pid, signal.SIGTERM)
    if _until(lambda: not alive(entry), wait):
        return "stopped"
    _signal(pid, signal.SIGKILL)
    return "killed" if _until(lambda: not alive(entry), 5.0) else "still running"


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(
            socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
        )  # as the daemons bind: TIME_WAIT is no obstacle
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def pick_port(requested: int | None, default: int, taken: set[int]) -> int:
    """``None``: the default port if free, else any; ``0``: any free port; else exactly that one."""
    if requested:
        if requested in taken or not port_free(requested):
            raise CliError(f"port {requested} on {HOST} is in use", kind="port_in_use", port=requested)
        return requested
    if requested is None and default not in taken and port_free(default):
        return default
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        if port not in taken:
            return port
    raise CliError(f"no free port on {HOST}", kind="port_in_use")


def _spawn(argv: list[str], log: Path, cwd: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start a daemon in its own session, detached from our terminal, output appended to ``log``."""
    package_root = str(Path(__file__).resolve().parents[1])  # the daemons run the code paasctl runs
    path = os.environ.get("PYTHONPATH")
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, path])),
    }
    with log.open("ab") as out:
        offset = out.tell()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    try:
        created = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        created = 0.0  # already gone: the readiness wait reports its exit
    return proc, {
        "pid": proc.pid,
        "create_time": created,
        "argv": argv,
        "log": str(log),
        "log_offset": offset,
    }


def _last_line(log: str) -> str:
    try:
        lines = Path(log).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][-300:] if lines else ""


# ---------------------------------------------------------------------------------------------- health


def zk_healthy(entry: dict[str, Any]) -> tuple[bool, str]:
    try:
        reply = send_command(HOST, int(entry["port"]), "ruok", PROBE_TIMEOUT)
    except OSError as e:
        return False, f"ruok: {mesos.describe_error(e)}"
    return reply == "imok", f"ruok: {reply or 'no answer'}"


def master_healthy(entry: dict[str, Any]) -> tuple[bool, str]:
    try:
        state = mesos.get_json(entry["url"], "/master/state", PROBE_TIMEOUT, "master")
    except CliError as e:
        return False, e.message
    if state.get("leader") and state.get("leader") == state.get("pid"):
        return True, "elected"
    return False, f"not leading (leader {state.get('leader') or 'unknown'})"


def agent_healthy(entry: dict[str, Any], master: dict[str, Any] | None) -> tuple[bool, str]:
    """Registered in the master's ``slaves``, or answering ``/health``, or (agents without HTTP) its log
    says its master stream is open."""
    port = int(entry["port"])
    if master is not None:
        with contextlib.suppress(CliError, AttributeError):
            state = mesos.get_json(master["url"], "/master/state", PROBE_TIMEOUT, "master")
            for s in state.get("slaves") or []:
                if str(s.get("pid", "")).endswith(f"@{HOST}:{port}") or s.get("port") == port:
                    return True, f"registered as {s.get('id')}"
    with contextlib.suppress(CliError):
        if (
            mesos.request("GET", f"http://{HOST}:{port}/health", timeout=PROBE_TIMEOUT, what="agent").status
            == 200
        ):
            return True, "/health ok"
    try:
        with open(entry["log"], "rb") as f:  # only this run's lines: logs are appended across runs
            f.seek(int(entry.get("log_offset", 0)))
            text = f.read().decode(errors="replace")
    except OSError:
        text = ""
    if AGENT_READY_LINE in text:
        return True, "subscribed to the master (log)"
    return False, "not registered"


def check(state: dict[str, Any], name: str) -> tuple[bool, bool, str]:
    """(running, healthy, detail) of one recorded part."""
    entry = state.get(name)
    if not alive(entry):
        return False, False, "not running"
    assert entry is not None
    if name == "zookeeper":
        ok, detail = zk_healthy(entry)
    elif name == "master":
        ok, detail = master_healthy(entry)
    else:
        ok, detail = agent_healthy(entry, state.get("master"))
    return True, ok, detail


# ---------------------------------------------------------------------------------------------- cluster.json


def load(workdir: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((workdir / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise CliError(f"{workdir / STATE_FILE}: unreadable ({e})", kind="bad_state") from None
    return doc if isinstance(doc, dict) else None


def save(workdir: Path, state: dict[str, Any]) -> None:
    tmp = workdir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(workdir / STATE_FILE)


def endpoints(state: dict[str, Any]) -> dict[str, Any]:
    """What a user or a test needs to reach the cluster."""
    return {
        "workdir": state.get("workdir"),
        "zookeeper": f"{HOST}:{state['zookeeper']['port']}" if state.get("zookeeper") else None,
        "zk": state.get("zk_url"),
        "master": (state.get("master") or {}).get("url"),
        "agent": f"{HOST}:{state['agent']['port']}" if state.get("agent") else None,
        "containerizers": state.get("containerizers"),
        "pids": {p: state[p]["pid"] for p in PARTS if state.get(p)},
        "logs": str(Path(str(state.get("workdir"))) / "logs"),
    }


# ---------------------------------------------------------------------------------------------- tasks


def remove_tasks(agent_dir: Path) -> dict[str, Any]:
    """Kill the process tasks an agent recorded and remove its Docker containers (by owner label)."""
    from agent_py.containerizer import ContainerRecord
    from agent_py.containerizer.process import is_same_process

    killed = 0
    for record_file in agent_dir.glob("meta/containers/*/record.json"):
        with contextlib.suppress(ValueError, OSError, TypeError):
            record = ContainerRecord.from_json(record_file.read_text())
            if record.pid and is_same_process(record.pid, record.start_time, record.boot_id):
                os.killpg(record.pid, signal.SIGKILL)
                killed += 1
    report: dict[str, Any] = {"process_tasks_killed": killed, "containers_removed": []}
    try:
        import docker
        from docker.errors import NotFound

        from agent_py.containerizer.docker import LABEL_OWNER
        from agent_py.daemon import docker_owner

        client = docker.from_env(version="auto", timeout=30)
        try:
            label = f"{LABEL_OWNER}={docker_owner(agent_dir)}"
            for container in client.containers.list(all=True, filters={"label": label}):
                with contextlib.suppress(NotFound):
                    container.remove(force=True)
                report["containers_removed"].append(container.name)
        finally:
            client.close()
    except Exception as e:  # no engine: it cannot hold containers of ours either
        report["docker"] = f"not checked ({type(e).__name__})"
    return report


def docker_problem() -> str | None:
    """None when the local Docker Engine answers, else why not."""
    try:
        import docker

        client = docker.from_env(version="auto", timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as e:
        return f"Docker Engine not reachable ({str(e).splitlines()[0][:160] if str(e) else type(e).__name__})"
    return None


def _agent_has_ip_flag() -> bool:
    """agent-py serves HTTP on --ip/--port once it has an HTTP server; older ones reject --ip."""
    try:
        out = subprocess.run(
            [sys.executable, "-m", "agent_py", "--help"], capture_output=True, timeout=60, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return b"--ip" in out


# ---------------------------------------------------------------------------------------------- commands


def _status_rows(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    eps = endpoints(state)
    rows = {}
    for name in PARTS:
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


def _status_text(rows: dict[str, dict[str, Any]]) -> str:
    return mesos.table(
        ("PART", "ENDPOINT", "PID", "RUNNING", "HEALTHY", "DETAIL"),
        [
            (
                n,
                str(r["endpoint"] or "-"),
                str(r["pid"] or "-"),
                mesos.yes_no(r["running"]),
                mesos.yes_no(r["healthy"]),
                r["detail"],
            )
            for n, r in rows.items()
        ],
    )


def _up_text(eps: dict[str, Any], heading: str, warnings: list[str]) -> str:
    lines = [
        heading,
        f"  zookeeper  {eps['zookeeper']}",
        f"  master     {eps['master']}  (--master {eps['zk']})",
        f"  agent      {eps['agent']}  (containerizers {','.join(eps['containerizers'] or [])})",
        f"  logs       {eps['logs']}",
        f"try: paasctl master state --master {eps['zk']}",
    ]
    return "\n".join([*lines, *(f"warning: {w}" for w in warnings)])


def _prepare_workdir(workdir: Path) -> None:
    if workdir.exists() and any(workdir.iterdir()) and not (workdir / MARKER).exists():
        raise UsageError(
            f"{workdir} is not empty and not a paasctl dev directory (no {MARKER}); choose --workdir"
        )
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text("paasctl dev cluster directory: 'paasctl dev down --purge' removes it\n")


def _wait_ready(state: dict[str, Any], name: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Until ``name`` is healthy; CliError if it exits or the deadline passes first."""
    log = state[name]["log"]
    while True:
        if proc.poll() is not None:
            raise CliError(
                f"{name} exited with status {proc.returncode} ({log}: {_last_line(log)})",
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


def _commands(workdir: Path, ports: dict[str, int], kinds: list[str], resources: str | None) -> list[Step]:
    """Each part's ``python -m`` arguments and the extra fields cluster.json keeps about it."""
    zk_url = f"zk://{HOST}:{ports['zookeeper']}/mesos"
    zk_dir = workdir / "zookeeper"
    (zk_dir / "data").mkdir(parents=True, exist_ok=True)
    cfg = {
        "tickTime": "2000",
        "dataDir": str(zk_dir / "data"),
        "clientPort": str(ports["zookeeper"]),
        "clientPortAddress": HOST,
        "4lw.commands.whitelist": "*",
        "admin.enableServer": "false",
    }
    (zk_dir / "zoo.cfg").write_text("".join(f"{k}={v}\n" for k, v in cfg.items()))
    master = ["master_py", "--ip", HOST, "--port", str(ports["master"]), "--zk", zk_url]
    agent = [
        "agent_py", "--master", zk_url, "--work_dir", str(workdir / "agent"), "--hostname", HOST,
        "--port", str(ports["agent"]), "--containerizers", ",".join(kinds),
    ]  # fmt: skip
    if _agent_has_ip_flag():
        agent += ["--ip", HOST]
    if resources:
        agent += ["--resources", resources]
    return [
        ("zookeeper", ["zk_py", str(zk_dir / "zoo.cfg")], {}),
        ("master", master, {"url": f"http://{HOST}:{ports['master']}"}),
        ("agent", agent, {"work_dir": str(workdir / "agent")}),
    ]


def cmd_up(args: argparse.Namespace) -> Outcome:
    workdir = _workdir(args)
    state = load(workdir)
    if state is not None:
        running = [p for p in PARTS if alive(state.get(p))]
        if len(running) == len(PARTS):
            eps = endpoints(state)
            return Outcome(
                json={"ok": True, "already_running": True, **eps},
                text=_up_text(eps, f"dev cluster already up in {workdir}", []),
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
    taken: set[int] = set()
    ports = {}
    for part in PARTS:
        ports[part] = pick_port(getattr(args, f"{part}_port"), DEFAULT_PORTS[part], taken)
        taken.add(ports[part])
    state = {
        "version": 1,
        "workdir": str(workdir),
        "zk_url": f"zk://{HOST}:{ports['zookeeper']}/mesos",
        "containerizers": kinds,
        "started_at": time.time(),
    }
    deadline = time.monotonic() + args.wait
    started: list[str] = []
    try:
        for part, argv, extra in _commands(workdir, ports, kinds, args.resources):
            proc, entry = _spawn([sys.executable, "-m", *argv], workdir / "logs" / f"{part}.log", workdir)
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
        text=_up_text(eps, f"dev cluster up in {workdir}", warnings),
    )


def cmd_down(args: argparse.Namespace) -> Outcome:
    workdir = _workdir(args)
    state = load(workdir)
    if state is None:
        report: dict[str, Any] = {"ok": True, "workdir": str(workdir), "stopped": {}}
        text = f"no dev cluster in {workdir}"
    else:
        stopped = {"agent": stop(state.get("agent"))}
        tasks = remove_tasks(workdir / "agent")
        for part in ("master", "zookeeper"):
            stopped[part] = stop(state.get(part))
        left = [p for p in PARTS if alive(state.get(p))]
        if left:
            raise CliError(
                f"could not stop {', '.join(left)} (see {STATE_FILE})", kind="stop_failed", stopped=stopped
            )
        (workdir / STATE_FILE).unlink(missing_ok=True)
        report = {"ok": True, "workdir": str(workdir), "stopped": stopped, **tasks}
        text = "\n".join(
            [
                *(f"{p:<10} {stopped[p]}" for p in PARTS),
                f"tasks      {tasks['process_tasks_killed']} process task(s) killed, "
                f"{len(tasks['containers_removed'])} container(s) removed",
            ]
        )
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
        text=_status_text(rows),
        code=0 if ok else EXIT_UNHEALTHY,
    )


# ---------------------------------------------------------------------------------------------- argparse


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {value!r} (0 for any free port)")
    return port


def _wait(value: str) -> float:
    try:
        t = float(value)
    except ValueError:
        t = -1.0
    if not 0 < t <= 600:
        raise argparse.ArgumentTypeError(f"invalid wait {value!r} (seconds, > 0 and <= 600)")
    return t


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
        help="single-host development cluster (ZooKeeper, master, agent)",
        description="Start, inspect and stop a development cluster of local processes on 127.0.0.1.",
        **kw,
    )
    sub = dev.add_subparsers(dest="dev_command", metavar="COMMAND", required=True)
    p = sub.add_parser(
        "up",
        help="start the cluster (no-op if it runs)",
        description="Start zk_py, master-py and agent-py in the background and wait until they are healthy. "
        "Default ports 2181, 5050, 5051 when free, else any free port.",
        **kw,
    )
    p.add_argument(
        "--wait", type=_wait, default=DEFAULT_WAIT, metavar="SECONDS", help="bound on the start (default 60)"
    )
    for part in PARTS:
        flag = "--zk-port" if part == "zookeeper" else f"--{part}-port"
        p.add_argument(
            flag, dest=f"{part}_port", type=_port, default=None, metavar="PORT", help=f"{part} port (0: any)"
        )
    p.add_argument("--resources", help="agent resources, e.g. 'cpus:2;mem:2048' (default: detected)")
    p.add_argument("--no-docker", action="store_true", help="run the agent without the Docker containerizer")
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
