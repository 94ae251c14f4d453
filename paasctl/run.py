"""``paasctl run``: a one-shot framework, like ``mesos-execute``, on the v1 scheduler HTTP API.

It subscribes, waits for an offer that fits (declining the others with a short filter), launches one
task (a Docker container with ``--image``, else a command task), prints each status update as it
arrives, acknowledges it, and tears the framework down once the task is terminal.  The protocol is the
pure :class:`~paasctl.scheduler.OneShot` machine; this module is its edge: :class:`SchedulerClient`
moves RecordIO records and calls over HTTP (a reader thread feeds a queue), :func:`execute` drives the
two within one deadline, and :func:`cmd_run` is the command line.  Ctrl-C, SIGTERM or ``--timeout`` kill
the task (bounded wait for its terminal update) before TEARDOWN.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import http.client
import json
import queue
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from paas_common.recordio import Decoder, RecordIOError
from paas_common.schedapi import Event, decode_event, stamp, teardown
from paasctl.common import (
    EXIT_CONNECTION,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TIMEOUT,
    CliError,
    Outcome,
    UsageError,
)
from paasctl.mesos import leaf_options
from paasctl.mesoshttp import describe_error, find_leader, open_url, request
from paasctl.options import amount, seconds, without_timeout
from paasctl.scheduler import FRAMEWORK_NAME, OneShot, PortMapping, RunSpec, subscribe_call

DEFAULT_RUN_TIMEOUT = 600.0
MAX_RUN_TIMEOUT = 7 * 86400.0
KILL_WAIT = 15.0  # after KILL, how long to wait for the terminal update before tearing down anyway
STREAM_IDLE = 90.0  # > 5 heartbeats (every 15 s): a silent stream is a dead one
SCHEDULER_PATH = "/api/v1/scheduler"

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


# ---------------------------------------------------------------------------------------------- HTTP driver


@dataclass(frozen=True)
class StreamEnded:
    """The event stream's end (the reader's last item), and why it ended."""

    why: str


class SchedulerClient:
    """One subscription: the event stream (read by a daemon thread into a queue) and calls on the side."""

    def __init__(self, master_url: str, timeout: float) -> None:
        self.url = master_url.rstrip("/") + SCHEDULER_PATH
        self.timeout = timeout
        self.stream_id = ""
        self.events: queue.Queue[Event | StreamEnded] = queue.Queue()
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
                client.send(stamp(teardown(), machine.framework_id))
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


_run_timeout = seconds("timeout", MAX_RUN_TIMEOUT)


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


def register(
    groups: Any, common: argparse.ArgumentParser, formatter: type[argparse.HelpFormatter], epilog: str
) -> None:
    p = groups.add_parser(
        "run",
        help="run one task to completion (like mesos-execute)",
        description="Subscribe as a one-shot framework, launch one task on the first offer that fits, print "
        "its status updates and tear down. Exit status 0 only if the task finished.",
        parents=[without_timeout(common), leaf_options("master")],
        formatter_class=formatter,
        epilog=RUN_EXIT_CODES,
        usage="%(prog)s --cpus N --mem MB [--image IMAGE] [options] -- CMD [ARG...]",
    )
    p.add_argument("--image", help="Docker image: run the task with the Docker containerizer")
    p.add_argument(
        "--cpus", type=amount("--cpus", "CPUs"), required=True, help="CPUs for the task (e.g. 0.5)"
    )
    p.add_argument("--mem", type=amount("--mem", "MB"), required=True, help="memory for the task in MB")
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
