"""agent-py processes for tests: started against a master, ready once subscribed, always cleaned up.

An agent leaves its tasks running when it dies (that is the point of recovery), so ``cleanup`` also kills
the process tasks recorded in its work dir and removes the Docker containers carrying its owner label.
Its HTTP endpoints listen on 127.0.0.1 and a port of its own (``url``, ``get``, ``get_json``).

``ScriptedMaster`` stands in for master-py where a test needs to say exactly what the agent is told
(KILL_TASK with a kill policy, for a task it does not have, a FrameworkInfo with capabilities) and to see
every UPDATE it sends.  Framework-side helpers (a pymesos scheduler, task builders) are in
``tests.support.pymesos_fw``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from aiohttp import web

from agent_py.containerizer import ContainerRecord
from agent_py.containerizer.docker import LABEL_OWNER
from agent_py.containerizer.process import is_same_process
from agent_py.daemon import docker_owner
from paas_common import recordio
from tests.support.clients import WAIT
from tests.support.servers import REPO_ROOT, free_port

READY = "subscribed to master"
SERVING = re.compile(r"serving HTTP on [^ ]+:(\d+)")
_LIVE: set[AgentProc] = set()


class MasterAddress(Protocol):
    ip: str
    port: int


class AgentProc:
    def __init__(
        self,
        workdir: Path,
        master: MasterAddress,
        *,
        resources: str = "cpus:2;mem:1024;ports:[31000-31100]",
        master_url: str | None = None,
        port: int | None = None,
        ip: str = "127.0.0.1",
        attributes: str = "",
    ) -> None:
        self.workdir = Path(workdir)
        self.ip = ip  # its hostname, HTTP address and Docker bind address: agents differ by loopback address
        self.attributes = attributes
        self.master = master
        self.master_url = master_url or f"{master.ip}:{master.port}"  # what --master says (zk://… too)
        self.resources = resources
        self.port = free_port() if port is None else port  # 0: the agent picks one (read from its log)
        self._requested_port = self.port
        self.log_path = self.workdir / "agent.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def owner(self) -> str:
        """The Docker owner label of this agent's containers."""
        return docker_owner(self.workdir)

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        seen = self._log_text().count(READY)
        self._log = self.log_path.open("ab")
        argv = [
            sys.executable, "-m", "agent_py", "--master", self.master_url,
            "--work_dir", str(self.workdir), "--resources", self.resources, "--hostname", self.ip,
            "--ip", self.ip, "--docker_bind_address", self.ip, "--port", str(self._requested_port),
            *(["--attributes", self.attributes] if self.attributes else []),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        _LIVE.add(self)
        deadline = time.monotonic() + timeout
        while self._log_text().count(READY) <= seen:
            if self._proc.poll() is not None:
                raise RuntimeError(f"agent-py exited with {self._proc.returncode}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"agent-py not subscribed after {timeout}s\n{self.log_tail()}")
            time.sleep(0.05)
        if self._requested_port == 0:
            self.port = int(SERVING.findall(self._log_text())[-1])

    def kill(self) -> None:
        """SIGKILL the agent alone (its tasks live in their own sessions and keep running)."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def drain(self, timeout: float = 60.0) -> int:
        """SIGUSR1 (the agent kills its tasks, unregisters and exits); its exit status."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGUSR1)
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def cleanup(self) -> None:
        """Kill the agent, every process task it started and every container it owns."""
        self.kill()
        _LIVE.discard(self)
        for record in self._process_records():
            if record.pid and is_same_process(record.pid, record.start_time, record.boot_id):
                with contextlib.suppress(OSError):
                    os.killpg(record.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            import docker

            from tests.support.docker import remove_owned

            client = docker.from_env(version="auto", timeout=30)
            try:
                remove_owned(client, self.owner)
            finally:
                client.close()

    def _process_records(self) -> list[ContainerRecord]:
        records = []
        for record_file in self.workdir.glob("meta/containers/*/record.json"):
            with contextlib.suppress(ValueError, OSError, TypeError):
                records.append(ContainerRecord.from_json(record_file.read_text()))
        return records

    def containers(self) -> list[str]:
        """What runs this agent's tasks, from outside the agent: ``docker:<engine id>`` per container it
        owns and ``process:<container id>:<supervisor pid>`` per live process task; sorted."""
        import docker

        client = docker.from_env(version="auto", timeout=30)
        try:  # one listing call: the SDK's list() inspects each one, racing with the agent removing them
            rows = client.api.containers(all=True, filters={"label": f"{LABEL_OWNER}={self.owner}"})
        finally:
            client.close()
        found = [f"docker:{r['Id']}" for r in rows]
        for record in self._process_records():
            if record.pid and is_same_process(record.pid, record.start_time, record.boot_id):
                found.append(f"process:{record.container_id}:{record.pid}")
        return sorted(found)

    def sandboxes(self, task_id: str) -> list[Path]:
        """The sandboxes of the task's runs (none before its launch)."""
        return list(self.workdir.glob(f"slaves/*/frameworks/*/executors/{task_id}/runs/*"))

    def sandbox(self, task_id: str) -> Path:
        """The sandbox of the task's (only) run."""
        (path,) = self.sandboxes(task_id)
        return path

    def get(self, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body of a request to the agent's HTTP endpoints."""
        request = urllib.request.Request(self.url + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def get_json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def wait_until(self, what: str, predicate: Callable[[], bool]) -> None:
        """Wait (bounded) until ``predicate`` holds; the agent's log tail explains a timeout."""
        deadline = time.monotonic() + WAIT
        while not predicate():
            assert time.monotonic() < deadline, f"{what}\n{self.log_tail()}"
            time.sleep(0.1)

    def _log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self._log_text().splitlines()[-lines:])


@contextlib.contextmanager
def agent_of(workdir: Path, master: MasterAddress, **kw: Any) -> Iterator[AgentProc]:
    """A started agent, cleaned up afterwards (its processes and containers too)."""
    agent = AgentProc(workdir, master, **kw)
    try:
        agent.start()
        yield agent
    finally:
        agent.cleanup()


@contextlib.contextmanager
def launcher(master: MasterAddress, name: str = "agent-test") -> Iterator[Callable[..., tuple[Any, Any]]]:
    """``launch(tasks)`` starts a pymesos framework (``tests.support.pymesos_fw.Framework``) that launches
    ``tasks`` on its first offer, and returns it with its driver; every driver is stopped on the way out."""
    from tests.support.pymesos_fw import Framework, driving  # imported late: pymesos_fw imports this module

    with contextlib.ExitStack() as stack:

        def launch(tasks: list[Any]) -> tuple[Any, Any]:
            sched = Framework(tasks)
            return sched, stack.enter_context(driving(sched, f"{master.ip}:{master.port}", name=name))

        yield launch


def agent_updates(sched: Any, task_id: str) -> list[dict[str, Any]]:
    """The updates the agent sent for a task (not the master's), each once: delivery is at least once, so
    an update resent before its acknowledgement got through may arrive twice."""
    with sched.cond:
        updates = [u for u in sched.updates.get(task_id, []) if u.get("source") == "SOURCE_EXECUTOR"]
    unique: dict[str, dict[str, Any]] = {}
    for u in updates:
        unique.setdefault(u["uuid"], u)
    return list(unique.values())


def bindable_port(ports: Iterable[int]) -> int:
    """The first of ``ports`` that nothing on 127.0.0.1 listens on (other tests share the range)."""
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no bindable port")


def kill_with_policy(driver: Any, task_id: str, grace_seconds: float) -> None:
    """A scheduler KILL carrying a kill policy (pymesos' ``killTask`` has no such argument); sent through
    the driver's own connection, with its framework id and stream id."""
    driver._send(
        {
            "type": "KILL",
            "framework_id": {"value": driver.framework_id},
            "kill": {
                "task_id": {"value": task_id},
                "kill_policy": {"grace_period": {"nanoseconds": int(grace_seconds * 1e9)}},
            },
        }
    )


class ScriptedMaster:
    """A master that does what the test says: REGISTER gets agent id ``scripted-S1``, SUBSCRIBE a stream
    carrying whatever ``send`` queues, UPDATE is recorded, answered 202 and acknowledged on the stream at
    once (as if a framework had).  It runs an aiohttp server on its own thread and event loop."""

    AGENT_ID = "scripted-S1"

    def __init__(self) -> None:
        self.ip = "127.0.0.1"
        self.port = free_port()
        self.updates: list[dict[str, Any]] = []  # TaskStatus of every UPDATE, resends included
        self.cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._queue: asyncio.Queue[dict[str, Any] | None] | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="scripted-master", daemon=True)

    def __enter__(self) -> ScriptedMaster:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(WAIT)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(WAIT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(WAIT)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/agent/api/v1", self._api)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.ip, self.port).start()

    async def _stop(self) -> None:
        if self._queue is not None:
            self._queue.put_nowait(None)
        if self._runner is not None:
            await self._runner.cleanup()

    async def _api(self, request: web.Request) -> web.StreamResponse:
        doc = await request.json()
        if doc["type"] == "REGISTER":
            return web.json_response({"agent_id": {"value": self.AGENT_ID}, "master_id": "scripted"})
        if doc["type"] == "UPDATE":
            status = doc["update"]["status"]
            with self.cond:
                self.updates.append(status)
                self.cond.notify_all()
            if self._queue is not None:  # else the agent resends it once subscribed
                self.acknowledge(status)
            return web.Response(status=202)
        assert doc["type"] == "SUBSCRIBE", doc
        queue = self._queue = asyncio.Queue()
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        while (msg := await queue.get()) is not None:
            await resp.write(recordio.encode(json.dumps(msg).encode()))
        return resp

    def send(self, msg: dict[str, Any]) -> None:
        """Queue a message on the agent's stream (it must be subscribed)."""
        assert self._queue is not None, "the agent is not subscribed"
        self._loop.call_soon_threadsafe(self._queue.put_nowait, msg)

    def acknowledge(self, status: dict[str, Any]) -> None:
        ack = {key: status[key] for key in ("framework_id", "task_id", "uuid")}
        self.send({"type": "ACKNOWLEDGE", "acknowledge": ack})

    def wait_update(self, what: str, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first recorded update that satisfies ``predicate`` (bounded wait)."""
        with self.cond:
            found = self.cond.wait_for(lambda: next((u for u in self.updates if predicate(u)), None), WAIT)
            assert found, f"{what}; updates: {[(u['task_id']['value'], u['state']) for u in self.updates]}"
            return found

    def states(self, task_id: str) -> list[str]:
        """The task's states in arrival order, resends collapsed (one entry per uuid)."""
        with self.cond:
            seen: dict[str, str] = {}
            for u in self.updates:
                if u["task_id"]["value"] == task_id:
                    seen.setdefault(u["uuid"], u["state"])
            return list(seen.values())

    def run_task(self, framework: dict[str, Any], task: dict[str, Any]) -> None:
        task = {**task, "agent_id": {"value": self.AGENT_ID}}
        self.send({"type": "RUN_TASK", "run_task": {"framework": framework, "task": task}})

    def kill_task(self, framework_id: str, task_id: str, grace_seconds: float | None = None) -> None:
        kill: dict[str, Any] = {"framework_id": {"value": framework_id}, "task_id": {"value": task_id}}
        if grace_seconds is not None:
            kill["kill_policy"] = {"grace_period": {"nanoseconds": int(grace_seconds * 1e9)}}
        self.send({"type": "KILL_TASK", "kill_task": kill})


@atexit.register
def _cleanup_leftovers() -> None:
    for a in list(_LIVE):
        a.cleanup()
