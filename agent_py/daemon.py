"""The agent daemon: one asyncio loop speaking our agent ↔ master protocol (docs/protocols.md).

It registers with the leading master, keeps the SUBSCRIBE stream open (re-detecting, re-registering and
re-subscribing with a bounded backoff when it breaks), runs RUN_TASK through the Docker or the process
containerizer, and reports each task's states as status updates that are resent until the master passes
on the framework's acknowledgement, one at a time and in order per task (Mesos' status update manager).

Everything a restarted agent needs is checkpointed (``agent_py.checkpoint``) before it matters: the task
and its container id before the launch, the container record after it, each update before it is sent.
On start the checkpoint is loaded, the containerizers recover their containers (killing orphans) and the
agent resumes watching the live ones.  SIGTERM stops the agent and leaves its tasks running, as Mesos'
agent does on restart.

The agent also plays Mesos' command executor: it runs each task's health check (``agent_py.health``),
reporting every change as a TASK_RUNNING update with ``healthy`` and killing the task after
``consecutive_failures``, and kills with the grace period of the KILL's kill policy, else the task's own,
else 3 s.  Its HTTP endpoints (``agent_py.http``) serve ``/state``, ``/monitor/statistics``,
``/metrics/snapshot`` and the rest on ``--ip``/``--port``; the port registered with the master is the
bound one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from agent_py.checkpoint import CheckpointStore, TaskCheckpoint
from agent_py.containerizer import (
    Containerizer,
    ContainerizerError,
    ContainerStatus,
    PortMapping,
    TaskSpec,
    UnknownContainerError,
    Usage,
)
from agent_py.containerizer.process import ProcessContainerizer
from agent_py.health import (
    REASON_HEALTH,
    DockerAccess,
    HealthChange,
    ProbeResult,
    make_probe,
    run_health_checks,
    task_target,
)
from agent_py.http import start_server
from agent_py.views import TERMINAL, AgentView
from paas_common.healthcheck import HealthCheckError, HealthCheckSpec
from paas_common.mesosmaster import leader_url_from_zk, parse_master
from paas_common.recordio import Decoder
from paas_common.resources import Resources
from paas_common.zkleader import ZkUrl

log = logging.getLogger("agent_py")

LAUNCH_FAILED = "REASON_CONTAINER_LAUNCH_FAILED"
EXECUTOR_TERMINATED = "REASON_EXECUTOR_TERMINATED"
DEFAULT_KILL_GRACE = 3.0  # seconds, Mesos' default kill grace period for command tasks
STATUS_HISTORY = 100  # statuses kept per task for /state (a flapping health check must not grow it forever)
MAX_COMPLETED_TASKS = 1000  # finished tasks kept for /state
USAGE_TIMEOUT = 5.0  # per container, for /monitor/statistics and /containers
UPDATE_RETRY_MIN, UPDATE_RETRY_MAX = 1.0, 10.0
SESSION_RETRY_MIN, SESSION_RETRY_MAX = 0.5, 10.0
STREAM_IDLE = 50.0  # > 3 master PINGs (every 15 s) without a byte: the stream is dead
HTTP_TIMEOUT = 10.0
DRAIN_SLACK = 30.0  # beyond the longest kill grace, for the last updates to be acknowledged


class SessionError(RuntimeError):
    """The master refused or could not be reached; the session loop backs off and retries."""


@dataclass(frozen=True)
class AgentConfig:
    master: str  # host:port or zk://…/path
    work_dir: Path
    resources: list[dict[str, Any]]  # v1 Resource JSON
    attributes: list[dict[str, Any]] = field(default_factory=list)
    hostname: str = "localhost"
    ip: str = "127.0.0.1"  # the HTTP server's address
    port: int = 5051  # the HTTP server's port (0: any free one); the bound port is the one registered
    containerizers: tuple[str, ...] = ("docker", "mesos")
    docker_bind_address: str = "127.0.0.1"
    flags: Mapping[str, str] = field(default_factory=dict)  # as given, for /state and /flags


def docker_owner(work_dir: Path) -> str:
    """The owner label of this agent's containers: stable across restarts of the agent on the same work
    dir, distinct between agents sharing an engine (recovery kills only its own orphans)."""
    digest = hashlib.sha1(str(Path(work_dir).absolute()).encode()).hexdigest()[:12]
    return f"agent_py-{digest}"


def _id(obj: object) -> str:
    return str(obj["value"]) if isinstance(obj, dict) and isinstance(obj.get("value"), str) else ""


def task_spec(cp: TaskCheckpoint, sandbox: Path) -> TaskSpec:
    """TaskInfo → TaskSpec: cpus/mem from its resources, CommandInfo semantics, Docker image and ports."""
    info = cp.task
    resources = Resources.from_json(info.get("resources") or [])
    command = info.get("command") or {}
    docker = (info.get("container") or {}).get("docker") or {}
    env = {
        str(v["name"]): str(v.get("value", ""))
        for v in (command.get("environment") or {}).get("variables") or []
        if isinstance(v, dict) and "name" in v
    }
    ports = tuple(
        PortMapping(int(p["host_port"]), int(p["container_port"]), str(p.get("protocol") or "tcp"))
        for p in docker.get("port_mappings") or []
    )
    network = docker.get("network")
    return TaskSpec(
        task_id=cp.task_id,
        container_id=cp.container_id,
        sandbox=sandbox,
        command=command.get("value") or None,
        shell=bool(command.get("shell", True)),
        arguments=tuple(str(a) for a in command.get("arguments") or []),
        image=docker.get("image") if cp.kind == "docker" else None,
        framework_id=cp.framework_id,
        env=env,
        cpus=resources.cpus or 0.1,
        mem_mb=resources.mem or 32.0,
        ports=ports,
        network=network.lower() if isinstance(network, str) and network != "USER" else None,
    )


def kill_grace(task: Mapping[str, Any], kill_policy: object = None) -> float:
    """Seconds between SIGTERM and SIGKILL: the KILL's kill policy, else the TaskInfo's, else 3 s (Mesos'
    command executor)."""
    for policy in (kill_policy, task.get("kill_policy")):
        grace = policy.get("grace_period") if isinstance(policy, dict) else None
        nanoseconds = grace.get("nanoseconds") if isinstance(grace, dict) else None
        if nanoseconds is not None:
            try:
                return max(0.0, int(nanoseconds) / 1e9)
            except (TypeError, ValueError):
                continue
    return DEFAULT_KILL_GRACE


def _capabilities(framework: Mapping[str, Any]) -> set[str]:
    return {str(c.get("type")) for c in framework.get("capabilities") or [] if isinstance(c, dict)}


def container_kind(task: dict[str, Any]) -> str:
    container = task.get("container") or {}
    is_docker = container.get("type") == "DOCKER" and (container.get("docker") or {}).get("image")
    return "docker" if is_docker else "process"


@dataclass
class _Task:
    """A task this agent runs: its checkpoint plus the coroutines working on it."""

    cp: TaskCheckpoint
    ack: asyncio.Event = field(default_factory=asyncio.Event)  # the head of cp.pending was acknowledged
    sender: asyncio.Task[None] | None = None
    runner: asyncio.Task[None] | None = None
    checker: asyncio.Task[None] | None = None  # health checks
    killer: asyncio.Task[None] | None = None
    kill_grace: float | None = None  # of the kill asked for
    health_kill: bool = False  # killed for failing its health check: TASK_KILLED says healthy=false
    statuses: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=STATUS_HISTORY))


class Agent:
    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.store = CheckpointStore(cfg.work_dir / "meta")
        self.agent_id = self.store.read_agent_id()
        self.master_url: str | None = None
        self.tasks: dict[tuple[str, str], _Task] = {}
        self.containerizers: dict[str, Containerizer] = {}
        self.stopped = asyncio.Event()
        self.draining = asyncio.Event()  # SIGUSR1: kill every task, unregister, then stop
        self.nudge = asyncio.Event()  # set on (re)subscription: resend pending updates now
        self.port = cfg.port  # the bound one, once serving
        self.total = Resources.from_json(cfg.resources)
        self.start_time = time.time()
        self.registered = False  # subscribed to a master right now
        self.recovered = False
        self.counters: Counter[str] = Counter()  # Mesos' counter metrics, by name
        self.completed: deque[_Task] = deque(maxlen=MAX_COMPLETED_TASKS)
        self._http: aiohttp.ClientSession | None = None
        self._server: web.AppRunner | None = None
        self._background: set[asyncio.Task[Any]] = set()

    # ---------------------------------------------------------------- life cycle

    async def run(self) -> int:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT))
        try:
            await self._start_containerizers()
            self._server, self.port = await start_server(self, self.cfg.ip, self.cfg.port)
            await self._recover()
            self.recovered = True
            session = self._spawn(self._sessions())
            waits = [asyncio.ensure_future(e.wait()) for e in (self.stopped, self.draining)]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            if not self.stopped.is_set():
                await self._drain()
            session.cancel()
        finally:
            await self._shutdown()
        return 0

    async def _drain(self) -> None:
        """SIGUSR1, as Mesos' agent: kill every task (each with its grace), deliver their last updates
        (bounded), then UNREGISTER so the master forgets this agent; a later start registers anew."""
        live = [t for t in self.tasks.values() if t.cp.state not in TERMINAL]
        log.info("draining: killing %d tasks", len(live))
        for t in live:
            self._request_kill(t, kill_grace(t.cp.task))
        limit = max((kill_grace(t.cp.task) for t in live), default=0.0) + DRAIN_SLACK
        deadline = time.monotonic() + limit
        while self.tasks and time.monotonic() < deadline and not self.stopped.is_set():
            await asyncio.sleep(0.1)
        if self.tasks:
            log.warning("drain: %d tasks not settled after %.0fs", len(self.tasks), limit)
        if self.master_url is not None and self.agent_id is not None:
            doc = {"type": "UNREGISTER", "agent_id": {"value": self.agent_id}}
            try:
                async with await self._post(self.master_url, doc) as resp:
                    log.info("unregistered from %s: %s", self.master_url, resp.status)
            except (aiohttp.ClientError, OSError, TimeoutError) as e:
                log.warning("UNREGISTER not sent: %s", e)
        if not self.tasks:
            self.store.forget_agent_id()

    async def _start_containerizers(self) -> None:
        if "mesos" in self.cfg.containerizers:
            self.containerizers["process"] = ProcessContainerizer(self.cfg.work_dir / "meta" / "containers")
        if "docker" in self.cfg.containerizers:
            from agent_py.containerizer.docker import DockerContainerizer

            try:
                self.containerizers["docker"] = await DockerContainerizer.connect(
                    owner=docker_owner(self.cfg.work_dir), bind_address=self.cfg.docker_bind_address
                )
            except ContainerizerError as e:  # Docker tasks then fail to launch, with this message
                log.warning("docker containerizer unavailable: %s", e)

    async def _shutdown(self) -> None:
        """Stop everything of ours, not the tasks: they run on and a restarted agent recovers them."""
        if self._server is not None:
            await self._server.cleanup()
        for t in list(self._background):
            t.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        for cz in self.containerizers.values():
            with contextlib.suppress(Exception):
                await cz.close()
        if self._http is not None:
            await self._http.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("internal error", exc_info=task.exception())

    # ---------------------------------------------------------------- master session

    async def _detect(self) -> str:
        """The leader's base URL: from ZooKeeper, else the (first) configured master, which redirects
        to the leader if it is a standby.  ValueError for a malformed ``--master``."""
        spec = parse_master(self.cfg.master)
        if not isinstance(spec, ZkUrl):
            return spec[0]
        try:
            url = await asyncio.to_thread(leader_url_from_zk, spec, 10.0)
        except Exception as e:
            raise SessionError(f"cannot read the leader from {self.cfg.master}: {e}") from None
        if url is None:
            raise SessionError(f"no leading master in {self.cfg.master}")
        return url

    async def _sessions(self) -> None:
        """Register and follow the stream; on any loss, start over after a bounded backoff."""
        delay = SESSION_RETRY_MIN
        while True:
            try:
                url = await self._detect()
                await self._register(url)
                self.master_url = url
                await self._subscribe(url)
                delay = SESSION_RETRY_MIN
                log.warning("stream from master %s ended", url)
            except (aiohttp.ClientError, OSError, TimeoutError, SessionError, ValueError) as e:
                log.warning("master session failed: %s", e)
            finally:
                self.registered = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, SESSION_RETRY_MAX)

    async def _post(self, url: str, doc: dict[str, Any], **kw: Any) -> aiohttp.ClientResponse:
        assert self._http is not None
        return await self._http.post(f"{url}/agent/api/v1", json=doc, **kw)

    async def _register(self, url: str) -> None:
        # Tasks still running or with updates to deliver: the master (maybe a new leader) adopts them.
        live = [t.cp for t in self.tasks.values() if t.cp.state not in TERMINAL or t.cp.pending]
        body: dict[str, Any] = {
            "hostname": self.cfg.hostname,
            "port": self.port,
            "resources": self.cfg.resources,
            "attributes": self.cfg.attributes,
        }
        if self.agent_id:
            frameworks = {cp.framework_id: cp.framework for cp in live}
            body["agent_id"] = {"value": self.agent_id}
            body["tasks"] = [
                {"framework_id": {"value": cp.framework_id}, "task": cp.task, "state": cp.state}
                for cp in live
            ]
            body["frameworks"] = list(frameworks.values())
        async with await self._post(url, {"type": "REGISTER", "register": body}) as resp:
            text = await resp.text()
            if resp.status != 200:
                raise SessionError(f"REGISTER refused by {url}: {resp.status} {text}")
        agent_id = _id(json.loads(text).get("agent_id"))
        if not agent_id:
            raise SessionError(f"REGISTER answer without an agent id: {text}")
        if agent_id != self.agent_id:
            self.store.write_agent_id(agent_id)
            self.agent_id = agent_id
        log.info("registered with master %s as agent %s", url, agent_id)

    async def _subscribe(self, url: str) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=HTTP_TIMEOUT, sock_read=STREAM_IDLE)
        doc = {"type": "SUBSCRIBE", "agent_id": {"value": self.agent_id}}
        async with await self._post(url, doc, timeout=timeout) as resp:
            if resp.status != 200:
                raise SessionError(f"SUBSCRIBE refused by {url}: {resp.status} {await resp.text()}")
            log.info("subscribed to master %s", url)
            self.registered = True
            self.nudge.set()
            decoder = Decoder()
            async for chunk in resp.content.iter_any():
                for record in decoder.feed(chunk):
                    self._handle(json.loads(record))

    def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "RUN_TASK":
            self._run_task(msg["run_task"]["framework"], msg["run_task"]["task"])
        elif kind == "KILL_TASK":
            kill = msg["kill_task"]
            fid, tid = _id(kill.get("framework_id")), _id(kill.get("task_id"))
            t = self.tasks.get((fid, tid))
            if t is None:
                self._unknown_task(fid, tid)
            else:
                self._request_kill(t, kill_grace(t.cp.task, kill.get("kill_policy")))
        elif kind == "ACKNOWLEDGE":
            ack = msg["acknowledge"]
            t = self.tasks.get((_id(ack.get("framework_id")), _id(ack.get("task_id"))))
            if t is not None and t.cp.pending and t.cp.pending[0]["uuid"] == ack.get("uuid"):
                t.ack.set()
        elif kind == "SHUTDOWN_FRAMEWORK":
            fid = _id(msg["shutdown_framework"].get("framework_id"))
            for t in [t for (f, _), t in self.tasks.items() if f == fid]:
                self._request_kill(t, kill_grace(t.cp.task))
        elif kind == "PING":  # the master counts missed PONGs (--max_agent_ping_timeouts)
            self._spawn(self._pong())
        else:
            log.warning("ignoring unknown message %r", kind)

    # ---------------------------------------------------------------- tasks

    def _sandbox(self, cp: TaskCheckpoint) -> Path:
        return (
            self.cfg.work_dir / "slaves" / str(self.agent_id) / "frameworks" / cp.framework_id
            / "executors" / cp.task_id / "runs" / cp.container_id
        )  # fmt: skip

    def _run_task(self, framework: dict[str, Any], task: dict[str, Any]) -> None:
        cp = TaskCheckpoint(framework, task, container_id=str(uuid.uuid4()), kind=container_kind(task))
        key = (cp.framework_id, cp.task_id)
        if key in self.tasks:
            log.warning("RUN_TASK for task %s which already runs here: ignored", cp.task_id)
            return
        t = _Task(cp)
        self.tasks[key] = t
        self.store.save(cp)  # the container id, before any container can exist
        t.runner = self._spawn(self._launch(t))

    async def _launch(self, t: _Task) -> None:
        cz = self.containerizers.get(t.cp.kind)
        self._report(t, "TASK_STARTING")
        try:
            if cz is None:
                raise ContainerizerError(f"The {t.cp.kind} containerizer is not available on this agent")
            record = await cz.launch(task_spec(t.cp, self._sandbox(t.cp)))
        except (ContainerizerError, ValueError, KeyError, TypeError) as e:
            log.warning("task %s failed to launch: %s", t.cp.task_id, e)
            self.counters["slave/container_launch_errors"] += 1
            self._report(t, "TASK_FAILED", message=str(e), reason=LAUNCH_FAILED)
            return
        t.cp.container = dataclasses.asdict(record)
        log.info("task %s runs in %s container %s", t.cp.task_id, t.cp.kind, t.cp.container_id)
        if t.cp.killed:  # KILL_TASK arrived during the launch
            self.store.save(t.cp)
            self._request_kill(t, t.kill_grace if t.kill_grace is not None else kill_grace(t.cp.task))
        else:
            self._report(t, "TASK_RUNNING")
            self._start_health(t)
        await self._watch(t, cz)

    async def _watch(self, t: _Task, cz: Containerizer) -> None:
        try:
            status: ContainerStatus | None = await cz.wait(t.cp.container_id)
        except ContainerizerError as e:
            log.warning("lost container of task %s: %s", t.cp.task_id, e)
            status = None
        if t.checker is not None:
            t.checker.cancel()
        self.counters["slave/executors_terminated"] += 1
        self._report_exit(t, status)
        try:
            await cz.destroy(t.cp.container_id)
        except ContainerizerError as e:
            log.warning("failed to destroy container %s: %s", t.cp.container_id, e)
            self.counters["containerizer/mesos/container_destroy_errors"] += 1

    def _report_exit(self, t: _Task, status: ContainerStatus | None) -> None:
        if t.cp.killed:
            healthy = False if t.health_kill else None
            self._report(t, "TASK_KILLED", message=status.message if status else "", healthy=healthy)
        elif status is None:
            self._report(t, "TASK_FAILED", message="The container is gone", reason=EXECUTOR_TERMINATED)
        elif status.succeeded:
            self._report(t, "TASK_FINISHED", message=status.message)
        else:
            self._report(t, "TASK_FAILED", message=status.message, reason=status.reason)

    def _request_kill(self, t: _Task, grace: float) -> None:
        """Kill once: a KILL_TASK repeated while the kill is under way changes nothing."""
        if t.killer is not None and not t.killer.done():
            log.info("task %s is being killed already", t.cp.task_id)
            return
        t.kill_grace = grace
        t.killer = self._spawn(self._kill(t, grace))

    async def _kill(self, t: _Task, grace: float) -> None:
        if t.cp.state in TERMINAL:
            return
        if t.checker is not None:  # as Mesos' executors: no health checks (nor updates) once killing
            t.checker.cancel()
        t.cp.killed = True
        self.store.save(t.cp)
        cz = self.containerizers.get(t.cp.kind)
        if t.cp.container is None or cz is None:
            return  # still launching: _launch kills it once it exists
        if t.cp.state != "TASK_KILLING" and "TASK_KILLING_STATE" in _capabilities(t.cp.framework):
            self._report(t, "TASK_KILLING")
        log.info("killing task %s (grace %.1fs)", t.cp.task_id, grace)
        try:
            await cz.kill(t.cp.container_id, grace)
        except UnknownContainerError:
            pass  # it ended and _watch destroyed it meanwhile: the exit is reported there
        except ContainerizerError as e:
            log.warning("failed to kill task %s: %s", t.cp.task_id, e)

    # ---------------------------------------------------------------- status updates

    def _unknown_task(self, framework_id: str, task_id: str) -> None:
        """KILL_TASK for a task this agent does not have: as Mesos' agent, TASK_LOST (TASK_DROPPED for a
        partition-aware framework), "Cannot find executor", so the master and the framework learn that
        it is not running; sent reliably through a stand-in task without a container."""
        log.warning("KILL_TASK for unknown task %s of framework %s", task_id, framework_id)
        framework = next(
            (t.cp.framework for (f, _), t in self.tasks.items() if f == framework_id),
            {"id": {"value": framework_id}},
        )
        info = {"task_id": {"value": task_id}, "name": ""}
        t = _Task(TaskCheckpoint(framework, info, container_id="", kind="process"))
        self.tasks[(framework_id, task_id)] = t
        state = "TASK_DROPPED" if "PARTITION_AWARE" in _capabilities(framework) else "TASK_LOST"
        self._report(
            t, state, message="Cannot find executor", reason=EXECUTOR_TERMINATED, source="SOURCE_AGENT"
        )

    def _report(
        self,
        t: _Task,
        state: str,
        message: str = "",
        reason: str | None = None,
        *,
        healthy: bool | None = None,
        source: str = "SOURCE_EXECUTOR",
    ) -> None:
        """Checkpoint a new update and make sure the task's sender will deliver it."""
        status: dict[str, Any] = {
            "task_id": {"value": t.cp.task_id},
            "framework_id": {"value": t.cp.framework_id},
            "agent_id": {"value": self.agent_id},
            "state": state,
            "source": source,
            "timestamp": time.time(),
            "uuid": base64.b64encode(uuid.uuid4().bytes).decode(),
        }
        # Slave::_statusUpdate: the agent's IP when the containerizer reported no network of its own
        agent_ip = {"ip_addresses": [{"ip_address": self.cfg.ip}]}
        container_status: dict[str, Any] = {"network_infos": [agent_ip]}
        if t.cp.container_id:
            container_status["container_id"] = {"value": t.cp.container_id}
        status["container_status"] = container_status
        if message:
            status["message"] = message
        if reason:
            status["reason"] = reason
        if healthy is not None:
            status["healthy"] = healthy
        t.cp.state = state
        t.cp.pending.append(status)
        self.store.save(t.cp)
        t.statuses.append(status)
        self.counters["slave/valid_status_updates"] += 1
        if state in ("TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_GONE"):
            self.counters[f"slave/tasks_{state.removeprefix('TASK_').lower()}"] += 1
        log.info("task %s is %s%s", t.cp.task_id, state, f": {message}" if message else "")
        if t.sender is None or t.sender.done():
            t.sender = self._spawn(self._send_updates(t))

    async def _send_updates(self, t: _Task) -> None:
        """Deliver the pending updates one by one, each resent until acknowledged."""
        while t.cp.pending:
            status = t.cp.pending[0]
            t.ack.clear()
            delay = UPDATE_RETRY_MIN
            while not t.ack.is_set():
                self.nudge.clear()
                await self._post_update(status)
                if await self._until_ack_or_nudge(t, delay) == "nudge":
                    delay = UPDATE_RETRY_MIN
                else:
                    delay = min(delay * 2, UPDATE_RETRY_MAX)
            t.cp.pending.pop(0)
            self.store.save(t.cp)
        if t.cp.state in TERMINAL:  # all said and acknowledged: the task is done here
            self.store.remove(t.cp)
            self.tasks.pop((t.cp.framework_id, t.cp.task_id), None)
            if t.cp.container_id:
                self.completed.append(t)

    async def _until_ack_or_nudge(self, t: _Task, timeout: float) -> str:
        waits = {asyncio.ensure_future(t.ack.wait()), asyncio.ensure_future(self.nudge.wait())}
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        return "ack" if t.ack.is_set() else "nudge" if self.nudge.is_set() else "timeout"

    async def _pong(self) -> None:
        if self.master_url is None or self.agent_id is None:
            return
        doc = {"type": "PONG", "agent_id": {"value": self.agent_id}}
        try:
            async with await self._post(self.master_url, doc) as resp:
                if resp.status != 202:
                    log.warning("PONG refused: %s %s", resp.status, await resp.text())
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            log.warning("PONG not sent: %s", e)

    async def _post_update(self, status: dict[str, Any]) -> None:
        if self.master_url is None or self.agent_id is None:
            return
        status = {**status, "agent_id": {"value": self.agent_id}}
        doc = {"type": "UPDATE", "agent_id": {"value": self.agent_id}, "update": {"status": status}}
        try:
            async with await self._post(self.master_url, doc) as resp:
                if resp.status != 202:
                    log.warning("UPDATE refused: %s %s", resp.status, await resp.text())
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            log.warning("UPDATE for task %s not sent: %s", _id(status.get("task_id")), e)

    # ---------------------------------------------------------------- recovery

    async def _recover(self) -> None:
        """Load the checkpoint, let the containerizers find their containers (orphans are killed), and
        carry on: watch the live ones, report the ones that ended or vanished while we were away."""
        for cp in self.store.load_all():
            t = _Task(cp)
            t.statuses.extend(cp.pending)  # the earlier ones are not checkpointed
            self.tasks[(cp.framework_id, cp.task_id)] = t
        live = [t for t in self.tasks.values() if t.cp.state not in TERMINAL]
        found: dict[str, ContainerStatus] = {}
        for kind, cz in self.containerizers.items():
            known = [t.cp.container_id for t in live if t.cp.kind == kind]
            try:
                recovery = await cz.recover(known)
            except ContainerizerError as e:
                log.error("%s containerizer failed to recover: %s", kind, e)
                self.counters["slave/recovery_errors"] += 1
                continue
            found.update(recovery.containers)
            if recovery.orphans:
                log.info("killed orphan %s containers %s", kind, recovery.orphans)
        for t in self.tasks.values():
            if t.cp.pending:
                t.sender = self._spawn(self._send_updates(t))
        for t in live:
            self._resume(t, found.get(t.cp.container_id))
        log.info("recovered %d tasks (%d live)", len(self.tasks), len(live))

    def _resume(self, t: _Task, status: ContainerStatus | None) -> None:
        cz = self.containerizers.get(t.cp.kind)
        if status is None or cz is None:
            never = t.cp.container is None
            message = "The agent restarted during the launch" if never else "The container is gone"
            self._report(
                t, "TASK_FAILED", message=message, reason=LAUNCH_FAILED if never else EXECUTOR_TERMINATED
            )
            return
        if t.cp.container is None:  # launched, but the agent died before checkpointing the record
            t.cp.container = {"container_id": t.cp.container_id, "kind": t.cp.kind}
        if t.cp.state in ("TASK_STAGING", "TASK_STARTING") and status.running and not t.cp.killed:
            self._report(t, "TASK_RUNNING")
        t.runner = self._spawn(self._watch(t, cz))
        if t.cp.killed and status.running:
            self._request_kill(t, kill_grace(t.cp.task))
        elif status.running and t.cp.state == "TASK_RUNNING":
            self._start_health(t)

    # ---------------------------------------------------------------- health checks

    def _start_health(self, t: _Task) -> None:
        """Check the task as its HealthCheck says, counting delay and grace from its launch."""
        doc = t.cp.task.get("health_check")
        if doc is None:
            return
        try:
            spec = HealthCheckSpec.from_json(doc)
        except HealthCheckError as e:  # Mesos' executors run such a task unchecked (the master rejects it)
            log.warning("task %s runs without its invalid health check: %s", t.cp.task_id, e)
            return
        t.checker = self._spawn(self._check_health(t, spec))

    async def _check_health(self, t: _Task, spec: HealthCheckSpec) -> None:
        assert self._http is not None
        launched_at = (t.cp.container or {}).get("launched_at")
        started_at = float(launched_at) if launched_at else time.time()
        sandbox = Path((t.cp.container or {}).get("sandbox") or self._sandbox(t.cp))
        docker = self.containerizers.get("docker")
        docker_access = docker if isinstance(docker, DockerAccess) else None
        target = await task_target(task_spec(t.cp, sandbox), docker_access, self.cfg.docker_bind_address)

        def changed(change: HealthChange, result: ProbeResult) -> None:
            self._health_changed(t, change, result)

        probe = make_probe(spec, target, self._http)
        resumed = None if t.cp.healthy is None else (t.cp.healthy, t.cp.health_failures)
        await run_health_checks(
            spec, probe, changed, started_at=started_at, name=f"task {t.cp.task_id}", resumed=resumed
        )

    def _health_changed(self, t: _Task, change: HealthChange, result: ProbeResult) -> None:
        if t.cp.killed or t.cp.state != "TASK_RUNNING":
            return
        message = "" if change.healthy else result.message
        t.cp.healthy, t.cp.health_failures = change.healthy, change.consecutive_failures
        self._report(t, "TASK_RUNNING", message=message, reason=REASON_HEALTH, healthy=change.healthy)
        if change.kill:
            log.warning(
                "task %s failed its health check %d times in a row: killing it",
                t.cp.task_id,
                change.consecutive_failures,
            )
            t.health_kill = True
            self._request_kill(t, kill_grace(t.cp.task))

    # ---------------------------------------------------------------- HTTP views

    def view(self) -> AgentView:
        return AgentView(
            agent_id=self.agent_id,
            hostname=self.cfg.hostname,
            ip=self.cfg.ip,
            port=self.port,
            start_time=self.start_time,
            resources=self.total,
            attributes=self.cfg.attributes,
            flags=self.cfg.flags,
            master=self.master_url if self.registered else None,
            registered=self.registered,
            tasks=list(self.tasks.values()),
            completed=list(self.completed),
            counters=dict(self.counters),
        )

    async def usage(self) -> dict[str, Usage]:
        live = [t for t in self.tasks.values() if t.cp.container is not None and t.cp.state not in TERMINAL]

        async def sample(t: _Task) -> tuple[str, Usage] | None:
            cz = self.containerizers.get(t.cp.kind)
            if cz is None:
                return None
            try:
                return t.cp.container_id, await asyncio.wait_for(cz.usage(t.cp.container_id), USAGE_TIMEOUT)
            except (ContainerizerError, TimeoutError) as e:
                log.info("no statistics for container %s: %s", t.cp.container_id, e)
                return None

        return dict(r for r in await asyncio.gather(*(sample(t) for t in live)) if r is not None)
