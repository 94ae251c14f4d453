"""``paasctl run``: a one-shot framework, like ``mesos-execute``, on the v1 scheduler HTTP API.

It subscribes, waits for an offer that fits (declining the others with a short filter), launches one
task (a Docker container with ``--image``, else a command task), prints each status update as it
arrives, acknowledges it, and tears the framework down once the task is terminal.  The protocol is the
pure :class:`OneShot` machine (events in, calls and progress lines out); :class:`SchedulerClient` only
moves RecordIO records and calls over HTTP, and :func:`execute` drives the two within one deadline.
Ctrl-C, SIGTERM or ``--timeout`` kill the task (bounded wait for its terminal update) before TEARDOWN.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import getpass
import http.client
import json
import math
import queue
import re
import shlex
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from paas_common.recordio import Decoder, RecordIOError
from paas_common.resources import ResourceError, Resources, coalesce
from paasctl.common import EXIT_CONNECTION, EXIT_FAILED, EXIT_INTERRUPTED, CliError, Outcome, UsageError
from paasctl.mesos import TERMINAL, describe_error, find_leader, leaf_options, open_url, request

EXIT_TIMEOUT = 5
DEFAULT_RUN_TIMEOUT = 600.0
MAX_RUN_TIMEOUT = 7 * 86400.0
DECLINE_SECONDS = 2.0  # offers that do not fit come back soon: the cluster may free resources
DONE_DECLINE_SECONDS = 3600.0  # once launched this framework needs nothing more
KILL_WAIT = 15.0  # after KILL, how long to wait for the terminal update before tearing down anyway
STREAM_IDLE = 90.0  # > 5 heartbeats (every 15 s): a silent stream is a dead one
SCHEDULER_PATH = "/api/v1/scheduler"
FRAMEWORK_NAME = "paasctl-run"

RUN_EXIT_CODES = f"""\
exit status:
  0    the task reached TASK_FINISHED
  {EXIT_FAILED}    the task ended otherwise (TASK_FAILED, TASK_KILLED, TASK_ERROR, TASK_LOST, ...) or the
       master sent an ERROR event
  2    usage error (bad --cpus, --mem, --env, --port-mapping, no command, ...)
  {EXIT_CONNECTION}    no master reachable, no leader, or the event stream was lost
  {EXIT_TIMEOUT}    --timeout expired (no offer fitted, or the task was still running: it is killed)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C or SIGTERM): the task is killed and the framework torn down

Given after 'run', --timeout bounds the whole run (default {DEFAULT_RUN_TIMEOUT:g}s); given before it, the
global connect timeout.  Progress lines go to stdout (not with --json, which prints one object at the end).
"""


# ---------------------------------------------------------------------------------------------- pure protocol


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    host_port: int = 0  # 0: any port of the offer's "ports"
    protocol: str = "tcp"


@dataclass(frozen=True)
class RunSpec:
    task_id: str
    name: str
    cpus: float
    mem: float
    command: tuple[str, ...] = ()
    image: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    ports: tuple[PortMapping, ...] = ()
    role: str = "*"

    @property
    def wanted(self) -> Resources:
        return Resources.scalars({"cpus": self.cpus, "mem": self.mem}, self.role)


def call(kind: str, framework_id: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """A scheduler Call: ``{"type", "framework_id", "<kind>": payload}``."""
    doc: dict[str, Any] = {"type": kind, "framework_id": {"value": framework_id}}
    if payload is not None:
        doc[kind.lower()] = payload
    return doc


def subscribe_call(user: str, hostname: str, role: str = "*") -> dict[str, Any]:
    info = {"user": user, "name": FRAMEWORK_NAME, "hostname": hostname, "role": role, "failover_timeout": 0.0}
    return {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}


def command_info(spec: RunSpec) -> dict[str, Any]:
    """One argument is a shell command line (``-- 'echo hi && exit 3'``); several are quoted into one, so
    the command means the same to both containerizers; none keeps the image's default command."""
    info: dict[str, Any] = {"shell": bool(spec.command)}
    if spec.command:
        info["value"] = spec.command[0] if len(spec.command) == 1 else shlex.join(spec.command)
    if spec.env:
        info["environment"] = {"variables": [{"name": k, "value": v} for k, v in spec.env]}
    return info


def match_offer(spec: RunSpec, offer: dict[str, Any]) -> tuple[Resources, list[int]] | str:
    """The task's resources (with the host ports picked) if the offer fits, else why not."""
    try:
        offered = Resources.from_json(offer.get("resources") or [])
    except ResourceError as e:
        return f"unreadable resources ({e})"
    usable = offered.allocatable_to(spec.role)
    wanted = spec.wanted
    if not usable.contains(wanted):
        return f"offers {usable.filter_names(['cpus', 'mem'])}, needs {wanted}"
    free = [p for b, e in usable.ranges("ports") for p in range(b, min(e, b + 65536) + 1)]
    fixed = {m.host_port for m in spec.ports if m.host_port}
    if not fixed <= set(free):
        return f"lacks host ports {sorted(fixed - set(free))}"
    spare = iter(p for p in free if p not in fixed)
    host_ports = [m.host_port or next(spare, 0) for m in spec.ports]
    if 0 in host_ports:
        return f"has too few ports for {len(spec.ports)} mapping(s)"
    if host_ports:
        wanted = wanted + Resources({("ports", spec.role): coalesce((p, p) for p in host_ports)})
    return wanted, host_ports


def task_info(
    spec: RunSpec, offer: dict[str, Any], resources: Resources, host_ports: list[int]
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": spec.name,
        "task_id": {"value": spec.task_id},
        "agent_id": offer["agent_id"],
        "resources": resources.to_json(),
        "command": command_info(spec),
    }
    if spec.image:
        docker: dict[str, Any] = {"image": spec.image}
        if spec.ports:
            docker["network"] = "BRIDGE"
            docker["port_mappings"] = [
                {"host_port": h, "container_port": m.container_port, "protocol": m.protocol}
                for m, h in zip(spec.ports, host_ports, strict=True)
            ]
        info["container"] = {"type": "DOCKER", "docker": docker}
    return info


def format_status(status: dict[str, Any]) -> str:
    """``TASK_FAILED: Command exited with status 3 (REASON_COMMAND_EXECUTOR_FAILED)``."""
    line = str(status.get("state", "?"))
    if status.get("message"):
        line += f": {status['message']}"
    if status.get("reason"):
        line += f" ({status['reason']})"
    if "healthy" in status:
        line += " [healthy]" if status["healthy"] else " [unhealthy]"
    return line


def decode_event(record: bytes) -> dict[str, Any]:
    """One RecordIO record → an Event object; ValueError when it is not one."""
    event = json.loads(record)
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise ValueError(f"not a scheduler event: {record[:80]!r}")
    return event


def _value(obj: Any) -> str:
    return str(obj.get("value", "")) if isinstance(obj, dict) else ""


@dataclass
class Step:
    """What one event asks of the driver: calls to send (in order) and lines to print."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


@dataclass
class OneShot:
    """The framework's whole behaviour as a state machine; no I/O, no clock."""

    spec: RunSpec
    framework_id: str = ""
    agent_id: str = ""
    hostname: str = ""
    launched: bool = False
    error: str | None = None
    mismatch: str | None = None  # why the latest offer that did not fit did not
    updates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def state(self) -> str | None:
        return str(self.updates[-1].get("state")) if self.updates else None

    @property
    def done(self) -> bool:
        return self.error is not None or self.state in TERMINAL

    def on_event(self, event: dict[str, Any]) -> Step:
        kind = event.get("type")
        body = event.get(str(kind).lower())
        body = body if isinstance(body, dict) else {}
        if kind == "SUBSCRIBED":
            self.framework_id = _value(body.get("framework_id"))
            return Step(lines=[f"subscribed as framework {self.framework_id}"])
        if kind == "OFFERS":
            return self._offers([o for o in body.get("offers") or [] if isinstance(o, dict)])
        if kind == "UPDATE":
            status = body.get("status")
            return self._update(status) if isinstance(status, dict) else Step()
        if kind == "ERROR":
            self.error = str(body.get("message") or "unknown error")
            return Step(lines=[f"framework error: {self.error}"])
        if kind == "FAILURE" and self.launched and _value(body.get("agent_id")) == self.agent_id:
            return Step(lines=[f"agent {self.agent_id} failed"])
        return Step()  # HEARTBEAT, RESCIND, MESSAGE, ...

    def _offers(self, offers: list[dict[str, Any]]) -> Step:
        step = Step()
        declined: list[Any] = []
        for offer in offers:
            fit = None if self.launched else match_offer(self.spec, offer)
            if not isinstance(fit, tuple):
                declined.append(offer.get("id"))
                self.mismatch = fit if fit is not None else self.mismatch
                continue
            resources, host_ports = fit
            self.launched = True
            self.agent_id = _value(offer.get("agent_id"))
            self.hostname = str(offer.get("hostname", ""))
            launch = {
                "type": "LAUNCH",
                "launch": {"task_infos": [task_info(self.spec, offer, resources, host_ports)]},
            }
            accept = {"offer_ids": [offer.get("id")], "operations": [launch]}
            step.calls.append(call("ACCEPT", self.framework_id, accept | _filters(DONE_DECLINE_SECONDS)))
            step.calls.append(call("SUPPRESS", self.framework_id))
            ports = f" ports {host_ports}" if host_ports else ""
            step.lines.append(
                f"TASK_STAGING: task {self.spec.task_id} on agent {self.agent_id} ({self.hostname}) "
                f"with {resources.filter_names(['cpus', 'mem'])}{ports}"
            )
        if declined:
            refuse = DONE_DECLINE_SECONDS if self.launched else DECLINE_SECONDS
            step.calls.insert(
                0, call("DECLINE", self.framework_id, {"offer_ids": declined} | _filters(refuse))
            )
        return step

    def _update(self, status: dict[str, Any]) -> Step:
        step = Step()
        if status.get("uuid") and status.get("agent_id"):
            ack = {"agent_id": status["agent_id"], "task_id": status.get("task_id"), "uuid": status["uuid"]}
            step.calls.append(call("ACKNOWLEDGE", self.framework_id, ack))
        mine = _value(status.get("task_id")) == self.spec.task_id
        resent = status.get("uuid") and any(u.get("uuid") == status["uuid"] for u in self.updates)
        if mine and not resent and not self.done:  # updates come at least once: print each once
            self.updates.append(status)
            step.lines.append(format_status(status))
        return step

    def kill_calls(self) -> list[dict[str, Any]]:
        if not self.launched or self.done:
            return []
        kill = {"task_id": {"value": self.spec.task_id}, "agent_id": {"value": self.agent_id}}
        return [call("KILL", self.framework_id, kill)]

    def result(self) -> dict[str, Any]:
        last = self.updates[-1] if self.updates else {}
        return {
            "framework_id": self.framework_id or None,
            "task_id": self.spec.task_id,
            "agent_id": self.agent_id or None,
            "state": self.state,
            "status_message": last.get("message"),
            "reason": last.get("reason"),
            "updates": self.updates,
        }


def _filters(refuse_seconds: float) -> dict[str, Any]:
    return {"filters": {"refuse_seconds": refuse_seconds}}


# ---------------------------------------------------------------------------------------------- HTTP driver


@dataclass(frozen=True)
class StreamEnded:
    why: str


class SchedulerClient:
    """One subscription: the event stream (read by a daemon thread into a queue) and calls on the side."""

    def __init__(self, master_url: str, timeout: float) -> None:
        self.url = master_url.rstrip("/") + SCHEDULER_PATH
        self.timeout = timeout
        self.stream_id = ""
        self.events: queue.Queue[dict[str, Any] | StreamEnded] = queue.Queue()
        self._conn: http.client.HTTPConnection | None = None
        self._reader: threading.Thread | None = None

    def subscribe(self, subscribe: dict[str, Any]) -> None:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        try:
            conn, resp, self.url = open_url(
                "POST", self.url, timeout=self.timeout, body=json.dumps(subscribe).encode(), headers=headers
            )
        except (OSError, http.client.HTTPException) as e:
            raise CliError(
                f"cannot subscribe at {self.url}: {describe_error(e)}", EXIT_CONNECTION, "connection"
            ) from None
        if resp.status != 200:
            text = resp.read().decode("utf-8", "replace").strip()
            conn.close()
            code = EXIT_CONNECTION if resp.status == 503 else EXIT_FAILED
            raise CliError(f"SUBSCRIBE refused by {self.url}: {resp.status} {text}".rstrip(), code, "refused")
        self._conn = conn
        self.stream_id = resp.getheader("Mesos-Stream-Id") or ""
        if conn.sock is not None:
            conn.sock.settimeout(STREAM_IDLE)
        self._reader = threading.Thread(
            target=self._read, args=(resp,), name="paasctl-run-events", daemon=True
        )
        self._reader.start()

    def _read(self, resp: http.client.HTTPResponse) -> None:
        decoder = Decoder()
        try:
            while chunk := resp.read1(65536):
                for record in decoder.feed(chunk):
                    self.events.put(decode_event(record))
            self.events.put(StreamEnded("the master closed the event stream"))
        except (OSError, http.client.HTTPException, RecordIOError, ValueError) as e:
            self.events.put(StreamEnded(f"event stream broken: {describe_error(e)}"))

    def send(self, doc: dict[str, Any]) -> None:
        headers = {"Content-Type": "application/json", "Mesos-Stream-Id": self.stream_id}
        body = json.dumps(doc).encode()
        reply = request(
            "POST", self.url, timeout=self.timeout, what="master", body=body, headers=headers, follow=False
        )
        if reply.status not in (200, 202):
            text = reply.body.decode("utf-8", "replace").strip()
            raise CliError(
                f"{doc['type']} refused by {self.url}: {reply.status} {text}".rstrip(), kind="refused"
            )

    def close(self) -> None:
        """Shut the stream's socket so the reader sees its end, then close (bounded wait for it)."""
        if self._conn is None:
            return
        if self._conn.sock is not None:
            with contextlib.suppress(OSError):
                self._conn.sock.shutdown(socket.SHUT_RDWR)
        if self._reader is not None:
            self._reader.join(timeout=2.0)
        self._conn.close()


def _pump(machine: OneShot, client: SchedulerClient, until: float, out: Callable[[str], None]) -> bool:
    """Handle events until the task is done (True) or ``until`` passes (False)."""
    while not machine.done:
        left = until - time.monotonic()
        if left <= 0:
            return False
        try:
            item = client.events.get(timeout=min(left, 0.5))
        except queue.Empty:
            continue
        if isinstance(item, StreamEnded):
            raise CliError(f"{item.why} ({client.url})", EXIT_CONNECTION, "connection", **machine.result())
        step = machine.on_event(item)
        for line in step.lines:
            out(line)
        for c in step.calls:
            client.send(c)
    return True


def _kill(machine: OneShot, client: SchedulerClient, out: Callable[[str], None]) -> None:
    """Best effort: KILL the task and wait (bounded) for its terminal update."""
    calls = machine.kill_calls()
    if not calls:
        return
    out(f"killing task {machine.spec.task_id}")
    with contextlib.suppress(CliError):
        for c in calls:
            client.send(c)
        _pump(machine, client, time.monotonic() + KILL_WAIT, out)


def execute(
    spec: RunSpec, master_url: str, timeout: float, deadline: float, out: Callable[[str], None]
) -> OneShot:
    """Run ``spec`` to a terminal state; CliError on timeout (EXIT_TIMEOUT) or a lost master (3)."""
    machine = OneShot(spec)
    client = SchedulerClient(master_url, timeout)
    client.subscribe(subscribe_call(_user(), socket.gethostname(), spec.role))
    try:
        try:
            finished = _pump(machine, client, deadline, out)
        except KeyboardInterrupt:
            _kill(machine, client, out)
            raise
        if not finished:
            last = machine.state or "TASK_STAGING"
            _kill(machine, client, out)
            if machine.launched:
                why = f"task {spec.task_id} was still {last}: killed"
            else:
                seen = f" (last offer: {machine.mismatch})" if machine.mismatch else " (no offers)"
                why = f"no offer fitting {spec.wanted} arrived{seen}"
            raise CliError(f"--timeout expired: {why}", EXIT_TIMEOUT, "timeout", **machine.result())
        return machine
    finally:
        if machine.framework_id:
            with contextlib.suppress(CliError):
                client.send(call("TEARDOWN", machine.framework_id))
        client.close()


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no USER/LOGNAME and no passwd entry (some containers)
        return "root"


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM cleans up like Ctrl-C (a supervisor stopping us must not leave the task behind)."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_run(args: argparse.Namespace) -> Outcome:
    command = tuple(args.command[1:] if args.command[:1] == ["--"] else args.command)
    if not command and not args.image:
        raise UsageError("a command is needed without --image (paasctl run [options] -- CMD...)")
    if args.port_mapping and not args.image:
        raise UsageError("--port-mapping needs --image (port mappings are a Docker feature)")
    started = time.monotonic()
    name = args.name or FRAMEWORK_NAME
    spec = RunSpec(
        task_id=f"{re.sub(r'[^A-Za-z0-9_.-]', '-', name)}.{uuid.uuid4().hex[:12]}",
        name=name,
        cpus=args.cpus,
        mem=args.mem,
        command=command,
        image=args.image,
        env=tuple(args.env),
        ports=tuple(args.port_mapping),
        role=args.role,
    )
    budget = getattr(args, "run_timeout", DEFAULT_RUN_TIMEOUT)

    def out(line: str) -> None:
        if not args.json:
            print(line, flush=True)

    with _sigterm_interrupts():
        leader = find_leader(args.master, args.timeout, args.verbose)
        machine = execute(spec, leader, args.timeout, started + budget, out)
    result = machine.result()
    if machine.error is not None:
        raise CliError(f"the master sent an error: {machine.error}", EXIT_FAILED, "framework_error", **result)
    if machine.state != "TASK_FINISHED":
        last = machine.updates[-1] if machine.updates else {}
        detail = f": {last['message']}" if last.get("message") else ""
        raise CliError(
            f"task {spec.task_id} ended {machine.state}{detail}", EXIT_FAILED, "task_failed", **result
        )
    return Outcome(json={"ok": True, **result}, text=None)


# ---------------------------------------------------------------------------------------------- argparse


def _positive(what: str, unit: str) -> Callable[[str], float]:
    def parse(value: str) -> float:
        try:
            v = float(value)
        except ValueError:
            v = math.nan
        if not (math.isfinite(v) and v >= 0.001):
            raise argparse.ArgumentTypeError(f"invalid {what} {value!r} ({unit}, at least 0.001)")
        return v

    return parse


def _run_timeout(value: str) -> float:
    try:
        t = float(value)
    except ValueError:
        t = -1.0
    if not 0 < t <= MAX_RUN_TIMEOUT:
        raise argparse.ArgumentTypeError(
            f"invalid timeout {value!r} (seconds, > 0 and <= {MAX_RUN_TIMEOUT:g})"
        )
    return t


def parse_env(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"invalid --env {value!r} (expected NAME=VALUE)")
    return key, val


def parse_port_mapping(value: str) -> PortMapping:
    """``[HOST:]CONTAINER[/tcp|udp]``; without HOST a port of the offer is used."""
    m = re.fullmatch(r"(?:(\d{1,5}):)?(\d{1,5})(?:/(tcp|udp))?", value.strip())
    host, container = (int(m.group(1) or 0), int(m.group(2))) if m else (-1, -1)
    if m is None or not (1 <= container <= 65535 and 0 <= host <= 65535):
        raise argparse.ArgumentTypeError(
            f"invalid --port-mapping {value!r} (expected [HOST:]CONTAINER[/tcp|udp])"
        )
    return PortMapping(container, host, m.group(3) or "tcp")


def add_options(parser: argparse.ArgumentParser, with_defaults: bool) -> None:
    """No top-level options of its own: ``--master`` comes from paasctl.mesos."""


def _without_timeout(common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The global options minus ``--timeout``, which after ``run`` bounds the whole run instead."""
    clone = argparse.ArgumentParser(add_help=False)
    for action in common._actions:  # argparse has no public way to leave out one inherited option
        if "--timeout" not in action.option_strings:
            clone._add_action(copy.copy(action))
    return clone


def register(
    groups: Any, common: argparse.ArgumentParser, formatter: type[argparse.HelpFormatter], epilog: str
) -> None:
    p = groups.add_parser(
        "run",
        help="run one task to completion (like mesos-execute)",
        description="Subscribe as a one-shot framework, launch one task on the first offer that fits, print "
        "its status updates and tear down. Exit status 0 only if the task finished.",
        parents=[_without_timeout(common), leaf_options("master")],
        formatter_class=formatter,
        epilog=RUN_EXIT_CODES,
        usage="%(prog)s --cpus N --mem MB [--image IMAGE] [options] -- CMD [ARG...]",
    )
    p.add_argument("--image", help="Docker image: run the task with the Docker containerizer")
    p.add_argument(
        "--cpus", type=_positive("--cpus", "CPUs"), required=True, help="CPUs for the task (e.g. 0.5)"
    )
    p.add_argument("--mem", type=_positive("--mem", "MB"), required=True, help="memory for the task in MB")
    p.add_argument("--name", help=f"task name (default {FRAMEWORK_NAME}); the task id adds a random suffix")
    p.add_argument("--role", default="*", help="role to subscribe with (default *)")
    p.add_argument(
        "--env",
        action="append",
        type=parse_env,
        default=[],
        metavar="NAME=VALUE",
        help="environment (repeatable)",
    )
    p.add_argument(
        "--port-mapping",
        action="append",
        type=parse_port_mapping,
        default=[],
        metavar="[HOST:]CONTAINER[/PROTO]",
        help="publish a container port (Docker bridge network; HOST from the offer when omitted; repeatable)",
    )
    p.add_argument(
        "--timeout",
        dest="run_timeout",
        type=_run_timeout,
        default=argparse.SUPPRESS,
        metavar="SECONDS",
        help=f"bound on the whole run, offer wait included (default {DEFAULT_RUN_TIMEOUT:g})",
    )
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD", help="command line of the task")
    p.set_defaults(handler=cmd_run)
