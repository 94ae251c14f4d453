"""The dev cluster's daemons as local processes: start them detached, know them again, probe, stop.

A daemon runs in its own session, with this interpreter and this checkout on its path (the installed
code runs), its output appended to its log.  cluster.json records its pid with its start time since boot
and the boot id, and a process counts as ours only while all three match (agent_py's
``is_same_process``, the check its containerizer uses for its tasks), so a pid reused by someone else is
never signalled.  Health comes from each daemon's own interface: ``ruok``, the master's state, the
agent's registration.  agent_py is imported where it is used: it loads asyncio, and every paasctl
command, ``zk ls`` included, imports this module.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from paasctl.common import CliError
from paasctl.devcluster import HOST
from paasctl.fourlw import send_command
from paasctl.mesoshttp import describe_error, get_json, request

STOP_WAIT = 10.0  # SIGTERM → SIGKILL
PROBE_TIMEOUT = 2.0
AGENT_READY_LINE = "subscribed to master"  # agent-py's log line once its master stream is open


# ---------------------------------------------------------------------------------------------- processes


def alive(entry: dict[str, Any] | None) -> bool:
    """The recorded process still runs (same pid, start time and boot; not a zombie)."""
    from agent_py.containerizer.process import is_same_process  # late: it loads asyncio (see the docstring)

    if not entry or not entry.get("pid"):
        return False
    start = entry.get("start_time")
    if isinstance(start, bool) or not isinstance(start, int | float):
        return False  # nothing to tell it from a reused pid: never ours
    try:
        return is_same_process(int(entry["pid"]), float(start), entry.get("boot_id"))
    except (TypeError, ValueError):
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


def spawn(argv: list[str], log: Path, cwd: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start a daemon in its own session, detached from our terminal, output appended to ``log``; the
    process and what cluster.json records about it."""
    from agent_py.containerizer.process import BOOT_ID, process_start

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
    started = process_start(proc.pid)  # None: already gone, and the readiness wait reports its exit
    return proc, {
        "pid": proc.pid,
        "start_time": started[1] if started else 0.0,
        "boot_id": BOOT_ID,
        "argv": argv,
        "log": str(log),
        "log_offset": offset,
    }


def last_line(log: str) -> str:
    """The end of a daemon's log, to say why it did not start."""
    try:
        lines = Path(log).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][-300:] if lines else ""


def agent_has_ip_flag() -> bool:
    """agent-py serves HTTP on --ip/--port once it has an HTTP server; older ones reject --ip."""
    try:
        out = subprocess.run(
            [sys.executable, "-m", "agent_py", "--help"], capture_output=True, timeout=60, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return b"--ip" in out


# ---------------------------------------------------------------------------------------------- health


def zk_healthy(entry: dict[str, Any]) -> tuple[bool, str]:
    try:
        reply = send_command(HOST, int(entry["port"]), "ruok", PROBE_TIMEOUT)
    except OSError as e:
        return False, f"ruok: {describe_error(e)}"
    return reply == "imok", f"ruok: {reply or 'no answer'}"


def master_healthy(entry: dict[str, Any]) -> tuple[bool, str]:
    try:
        state = get_json(entry["url"], "/master/state", PROBE_TIMEOUT, "master")
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
            state = get_json(master["url"], "/master/state", PROBE_TIMEOUT, "master")
            for s in state.get("slaves") or []:
                if str(s.get("pid", "")).endswith(f"@{HOST}:{port}") or s.get("port") == port:
                    return True, f"registered as {s.get('id')}"
    with contextlib.suppress(CliError):
        if request("GET", f"http://{HOST}:{port}/health", timeout=PROBE_TIMEOUT, what="agent").status == 200:
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


def marathon_healthy(entry: dict[str, Any]) -> tuple[bool, str]:
    """Elected and subscribed to Mesos (it has a framework id)."""
    try:
        info = get_json(entry["url"], "/v2/info", PROBE_TIMEOUT, "marathon")
    except CliError as e:
        return False, e.message
    if not info.get("elected"):
        return False, f"not leading (leader {info.get('leader') or 'unknown'})"
    if not info.get("frameworkId"):
        return False, "elected, not yet subscribed to Mesos"
    return True, f"elected, framework {info['frameworkId']}"


def lb_healthy(entry: dict[str, Any]) -> tuple[bool, str]:
    """Its HAProxy answers marathon-lb's health check on the stats port."""
    try:
        ok = request("GET", f"{entry['url']}/_haproxy_health_check", timeout=PROBE_TIMEOUT, what="lb").status
    except CliError as e:
        return False, e.message
    return ok == 200, f"/_haproxy_health_check {ok}"


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
    elif name == "marathon":
        ok, detail = marathon_healthy(entry)
    elif name == "lb":
        ok, detail = lb_healthy(entry)
    else:
        ok, detail = agent_healthy(entry, state.get("master"))
    return True, ok, detail
