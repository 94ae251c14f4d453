"""Simulated Mesos agents for the scale benchmarks: N agents in one asyncio process, registered with a real
master_py through the protocol agent_py speaks (docs/protocols.md, "Agent ↔ master").

Marathon's own scale tests run against simulated agents too: what is measured is the master and the
framework, not containers.  A task here is only a record: RUN_TASK (a LAUNCH or a LAUNCH_GROUP task) →
TASK_STARTING, then TASK_RUNNING after ``running_delay`` (with ``healthy: true`` if the task has a health
check); KILL_TASK → TASK_KILLING (for frameworks with that capability), TASK_KILLED.  Everything else is
agent_py's behaviour, so the master sees ordinary agents: one REGISTER and one SUBSCRIBE stream per agent,
a PONG per PING, each task's updates in order, each resent until its ACKNOWLEDGE (with the backoff of Mesos'
status update manager, 10 s doubling to 10 min; agent_py starts at 1 s), a KILL_TASK for an unknown task
answered TASK_LOST (TASK_DROPPED), SHUTDOWN_FRAMEWORK killing the framework's tasks, and, when a stream
breaks (master restart or failover), re-registration with the agent id, live tasks and their frameworks.
The master is found as agent_py finds it (``host:port``, a list of them, or ``zk://``).

Cheap at scale: one aiohttp session; the agents' calls (UPDATE, PONG) go through one queue drained by a
fixed pool of senders on keep-alive connections (the protocol has no batch call, so bounded concurrency is
what there is to gain); update retries are loop timers, not coroutines.

Library (``agents`` are named ``sim-0001``…; ``resources`` and ``attributes`` take Mesos' flag syntax, where
``{i}`` is the agent's number, or a function of that number)::

    async with SimCluster("http://127.0.0.1:5050", agents=50, attributes="rack:r{i}") as c:
        ...  # a framework launches
        await c.wait_running(500, timeout=60)
        print(c.summary())

From synchronous code (pymesos tests, benches): ``with in_thread(SimCluster(...)) as t:
t.run(t.cluster.wait_running(100, 30))``.

CLI: ``python bench/simagents.py --master http://127.0.0.1:5050 --agents 50`` runs until SIGINT/SIGTERM,
printing a status line every few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import signal
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(REPO_ROOT))

from agent_py.views import TERMINAL  # noqa: E402
from paas_common.mesosmaster import leader_url_from_zk, parse_master  # noqa: E402
from paas_common.recordio import Decoder, RecordIOError  # noqa: E402
from paas_common.resources import Resources, parse_attributes  # noqa: E402
from paas_common.runtime import setup_logging  # noqa: E402

log = logging.getLogger("simagents")

T = TypeVar("T")
PerAgent = str | Callable[[int], str]  # Mesos flag text ("{i}": the agent's number), or made from it

DEFAULT_RESOURCES = "cpus:8;mem:16384;disk:100000;ports:[31000-32000]"
HTTP_TIMEOUT = 10.0
STREAM_IDLE = 50.0  # > 3 master PINGs (every 15 s) without a byte: the stream is dead (as agent_py)
SESSION_RETRY_MIN, SESSION_RETRY_MAX = 0.5, 10.0
LEADER_TTL = 1.0  # seconds a leader found in ZooKeeper is reused: 100 agents re-registering ask once
CLOSE_TIMEOUT = 10.0
# Mesos' status update manager (10 s doubling to 10 min), not agent_py's 1 s: under load a framework's
# acknowledgements take seconds, and 1 s resends multiply the master's work (5,000 tasks: 2.6 resends each).
UPDATE_RETRY = (10.0, 600.0)
EXECUTOR_TERMINATED = "REASON_EXECUTOR_TERMINATED"


class SessionError(RuntimeError):
    """The master refused or could not be reached; the agent backs off and registers again."""


def _per_agent(value: PerAgent, i: int) -> str:
    return value(i) if callable(value) else value.format(i=i)


def _id(obj: object) -> str:
    return str(obj["value"]) if isinstance(obj, dict) and isinstance(obj.get("value"), str) else ""


def _capabilities(framework: dict[str, Any]) -> set[str]:
    return {str(c.get("type")) for c in framework.get("capabilities") or [] if isinstance(c, dict)}


@dataclass(slots=True, eq=False)
class _Task:
    """A simulated task: what the master needs back on re-registration, plus its unacknowledged updates."""

    framework: dict[str, Any]
    info: dict[str, Any]
    framework_id: str
    task_id: str
    container_id: str
    delay: float  # the next resend's backoff
    state: str | None = None
    pending: deque[dict[str, Any]] = field(default_factory=deque)  # head: sent, awaiting ACKNOWLEDGE
    retry: asyncio.TimerHandle | None = None
    start: asyncio.TimerHandle | None = None  # TASK_RUNNING after running_delay

    def cancel_timers(self) -> None:
        for handle in (self.retry, self.start):
            if handle is not None:
                handle.cancel()
        self.retry = self.start = None


class SimAgent:
    """One simulated agent: its master session and the tasks it "runs"."""

    def __init__(self, cluster: SimCluster, index: int) -> None:
        self.cluster = cluster
        self.index = index
        self.hostname = cluster.hostname_format.format(index)
        self.resources = Resources.parse(_per_agent(cluster.resources, index)).to_json()
        attributes = _per_agent(cluster.attributes, index)
        self.attributes = parse_attributes(attributes) if attributes else []
        self.agent_id: str | None = None
        self.master_url: str | None = None
        self.subscribed = False
        self.tasks: dict[tuple[str, str], _Task] = {}
        self.session: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- master session

    async def run(self) -> None:
        """Register and follow the stream; on any loss, start over after a bounded backoff (as agent_py)."""
        delay = SESSION_RETRY_MIN
        while True:
            url = None
            try:
                url = await self.cluster.leader()
                await self._register(url)
                await self._subscribe()
                delay = SESSION_RETRY_MIN
                log.info("%s: stream from %s ended", self.hostname, self.master_url)
            except (aiohttp.ClientError, OSError, TimeoutError, SessionError, ValueError) as e:
                log.info("%s: master session failed: %s", self.hostname, e)
                if url is not None:
                    self.cluster.leader_failed(url)
            finally:
                if self.subscribed:
                    self.subscribed = False
                    self.cluster.notify()
            await asyncio.sleep(delay)
            delay = min(delay * 2, SESSION_RETRY_MAX)

    async def _register(self, url: str) -> None:
        body: dict[str, Any] = {
            "hostname": self.hostname,
            "port": self.cluster.port,
            "resources": self.resources,
            "attributes": self.attributes,
        }
        if self.agent_id:  # re-registration: the master adopts what it does not know
            live = [t for t in self.tasks.values() if t.state not in TERMINAL or t.pending]
            body["agent_id"] = {"value": self.agent_id}
            body["tasks"] = [
                {"framework_id": {"value": t.framework_id}, "task": t.info, "state": t.state} for t in live
            ]
            body["frameworks"] = list({t.framework_id: t.framework for t in live}.values())
        doc = {"type": "REGISTER", "register": body}
        async with self.cluster.http.post(f"{url}/agent/api/v1", json=doc) as resp:
            text = await resp.text()
            if resp.status != 200:
                raise SessionError(f"REGISTER refused by {url}: {resp.status} {text}")
            leader = str(resp.url.origin())  # after a standby's 307
        agent_id = _id(json.loads(text).get("agent_id"))
        if not agent_id:
            raise SessionError(f"REGISTER answer without an agent id: {text}")
        self.agent_id, self.master_url = agent_id, leader
        self.cluster.stats["registrations"] += 1
        log.debug("%s registered with %s as %s", self.hostname, leader, agent_id)

    async def _subscribe(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=HTTP_TIMEOUT, sock_read=STREAM_IDLE)
        doc = {"type": "SUBSCRIBE", "agent_id": {"value": self.agent_id}}
        async with self.cluster.http.post(
            f"{self.master_url}/agent/api/v1", json=doc, timeout=timeout
        ) as resp:
            if resp.status != 200:
                raise SessionError(f"SUBSCRIBE refused: {resp.status} {await resp.text()}")
            self.subscribed = True
            self.cluster.notify()
            for t in self.tasks.values():  # resend every unacknowledged update now
                if t.pending:
                    if t.retry is not None:
                        t.retry.cancel()
                        t.retry = None
                    t.delay = self.cluster.update_retry[0]
                    self._send_head(t)
            decoder = Decoder()
            try:
                async for chunk in resp.content.iter_any():
                    for record in decoder.feed(chunk):
                        msg = json.loads(record)
                        try:
                            self._handle(msg)
                        except (KeyError, TypeError, AttributeError) as e:  # one bad message, not the session
                            log.warning("%s: malformed message %.200r: %r", self.hostname, msg, e)
            except (RecordIOError, json.JSONDecodeError) as e:
                raise SessionError(f"bad stream: {e}") from None

    async def unregister(self) -> None:
        """Tell the master this agent is gone (as agent_py after a drain), so it does not wait for it."""
        if self.master_url is None or self.agent_id is None:
            return
        doc = {"type": "UNREGISTER", "agent_id": {"value": self.agent_id}}
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with self.cluster.http.post(f"{self.master_url}/agent/api/v1", json=doc) as resp:
                await resp.read()

    # ---------------------------------------------------------------- master → agent messages

    def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "RUN_TASK":
            self._run_task(msg["run_task"]["framework"], msg["run_task"]["task"])
        elif kind == "KILL_TASK":
            kill = msg["kill_task"]
            fid, tid = _id(kill.get("framework_id")), _id(kill.get("task_id"))
            t = self.tasks.get((fid, tid))
            self.cluster.stats["kill_task"] += 1
            if t is None:
                self._unknown_task(fid, tid)
            else:
                self._kill(t)
        elif kind == "ACKNOWLEDGE":
            ack = msg["acknowledge"]
            t = self.tasks.get((_id(ack.get("framework_id")), _id(ack.get("task_id"))))
            if t is not None and t.pending and t.pending[0]["uuid"] == ack.get("uuid"):
                self._acknowledged(t)
        elif kind == "SHUTDOWN_FRAMEWORK":
            fid = _id(msg["shutdown_framework"].get("framework_id"))
            for t in [t for t in self.tasks.values() if t.framework_id == fid]:
                self._kill(t)
        elif kind == "PING":
            self.cluster.stats["pings"] += 1
            self.cluster.enqueue(self, {"type": "PONG", "agent_id": {"value": self.agent_id}})
        else:
            log.warning("%s: ignoring unknown message %r", self.hostname, kind)

    def _new_task(self, framework: dict[str, Any], info: dict[str, Any], container_id: str) -> _Task:
        fid, tid = _id(framework.get("id")), _id(info.get("task_id"))
        t = _Task(framework, info, fid, tid, container_id, delay=self.cluster.update_retry[0])
        self.tasks[(fid, tid)] = t
        return t

    def _run_task(self, framework: dict[str, Any], info: dict[str, Any]) -> None:
        if (_id(framework.get("id")), _id(info.get("task_id"))) in self.tasks:
            log.warning(
                "%s: RUN_TASK for task %s which runs here already", self.hostname, info.get("task_id")
            )
            return
        t = self._new_task(framework, info, str(uuid.uuid4()))
        self.cluster.stats["run_task"] += 1
        self._report(t, "TASK_STARTING")
        if self.cluster.running_delay > 0:
            loop = asyncio.get_running_loop()
            t.start = loop.call_later(self.cluster.running_delay, self._started, t)
        else:
            self._started(t)

    def _started(self, t: _Task) -> None:
        t.start = None
        if t.state == "TASK_STARTING":  # not killed meanwhile
            self._report(t, "TASK_RUNNING", healthy=True if "health_check" in t.info else None)

    def _kill(self, t: _Task) -> None:
        if t.state in TERMINAL:
            return
        if t.start is not None:
            t.start.cancel()
            t.start = None
        if t.state != "TASK_KILLING" and "TASK_KILLING_STATE" in _capabilities(t.framework):
            self._report(t, "TASK_KILLING")
        self._report(t, "TASK_KILLED")

    def _unknown_task(self, fid: str, tid: str) -> None:
        """As agent_py (and Mesos): TASK_LOST, TASK_DROPPED for partition-aware frameworks, sent reliably
        through a stand-in record."""
        framework = next((t.framework for t in self.tasks.values() if t.framework_id == fid), None)
        t = self._new_task(framework or {"id": {"value": fid}}, {"task_id": {"value": tid}, "name": ""}, "")
        state = "TASK_DROPPED" if "PARTITION_AWARE" in _capabilities(t.framework) else "TASK_LOST"
        self._report(
            t, state, message="Cannot find executor", reason=EXECUTOR_TERMINATED, source="SOURCE_AGENT"
        )

    # ---------------------------------------------------------------- status updates

    def _report(
        self,
        t: _Task,
        state: str,
        *,
        message: str = "",
        reason: str | None = None,
        healthy: bool | None = None,
        source: str = "SOURCE_EXECUTOR",
    ) -> None:
        status: dict[str, Any] = {
            "task_id": {"value": t.task_id},
            "framework_id": {"value": t.framework_id},
            "state": state,
            "source": source,
            "timestamp": time.time(),
            "uuid": base64.b64encode(uuid.uuid4().bytes).decode(),
        }
        if t.container_id:
            status["container_status"] = {"container_id": {"value": t.container_id}}
        if message:
            status["message"] = message
        if reason:
            status["reason"] = reason
        if healthy is not None:
            status["healthy"] = healthy
        self.cluster.moved(t.state, state)
        t.state = state
        t.pending.append(status)
        if len(t.pending) == 1:  # else it follows the acknowledgement of the one before
            self._send_head(t)

    def _send_head(self, t: _Task) -> None:
        status = {**t.pending[0], "agent_id": {"value": self.agent_id}}
        doc = {"type": "UPDATE", "agent_id": {"value": self.agent_id}, "update": {"status": status}}
        self.cluster.enqueue(self, doc, t)

    def posted(self, t: _Task, sent_uuid: str) -> None:
        """The UPDATE was sent (or failed to be): resend it after the backoff unless acknowledged by then."""
        if t.retry is None and t.pending and t.pending[0]["uuid"] == sent_uuid and not self.cluster.closing:
            t.retry = asyncio.get_running_loop().call_later(t.delay, self._resend, t)

    def _resend(self, t: _Task) -> None:
        t.retry = None
        if t.pending and not self.cluster.closing:
            self.cluster.stats["update_retries"] += 1
            t.delay = min(t.delay * 2, self.cluster.update_retry[1])
            self._send_head(t)

    def _acknowledged(self, t: _Task) -> None:
        self.cluster.stats["acknowledged"] += 1
        t.pending.popleft()
        if t.retry is not None:
            t.retry.cancel()
            t.retry = None
        t.delay = self.cluster.update_retry[0]
        if t.pending:
            self._send_head(t)
        elif t.state in TERMINAL:  # all said and acknowledged: forgotten, as agent_py does
            del self.tasks[(t.framework_id, t.task_id)]


class SimCluster:
    """N simulated agents sharing one HTTP session; an async context manager that returns once every
    agent is subscribed (within ``ready_timeout``) and on exit stops them, by default with UNREGISTER so
    the master forgets them at once instead of waiting out the ping timeout.

    ``counts`` holds the tasks by their latest reported state (terminal states accumulate; a KILL_TASK for
    an unknown task counts as TASK_LOST/TASK_DROPPED); ``stats`` counts protocol events (run_task,
    kill_task, updates_sent, update_retries, acknowledged, pings, registrations, post_errors)."""

    def __init__(
        self,
        master: str,
        agents: int = 1,
        *,
        resources: PerAgent = DEFAULT_RESOURCES,
        attributes: PerAgent = "",
        hostname_format: str = "sim-{:04d}",
        port: int = 5051,
        running_delay: float = 0.0,
        senders: int = 32,
        update_retry: tuple[float, float] = UPDATE_RETRY,
        ready_timeout: float = 30.0,
        unregister: bool = True,
    ) -> None:
        if agents < 1 or senders < 1:
            raise ValueError("agents and senders must be at least 1")
        self.master = master
        self.spec = parse_master(master)  # ValueError now rather than in every agent's loop
        self.resources, self.attributes, self.hostname_format = resources, attributes, hostname_format
        self.port, self.running_delay, self.senders = port, running_delay, senders
        self.update_retry, self.ready_timeout, self.unregister = update_retry, ready_timeout, unregister
        self.agents = [SimAgent(self, i) for i in range(1, agents + 1)]  # ValueError for bad resources
        self.counts: Counter[str] = Counter()
        self.stats: Counter[str] = Counter()
        self.closing = False
        self._http: aiohttp.ClientSession | None = None
        self._outbox: asyncio.Queue[tuple[SimAgent, dict[str, Any], _Task | None]] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._waiters: set[asyncio.Event] = set()
        self._leader_lock: asyncio.Lock | None = None
        self._leader: tuple[str, float] | None = None  # url, when found
        self._next_master = 0  # which of a host:port list to try

    # ---------------------------------------------------------------- life cycle

    async def __aenter__(self) -> SimCluster:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT),
            connector=aiohttp.TCPConnector(limit=0),  # a stream per agent + the senders: bounded by design
        )
        self._outbox = asyncio.Queue()
        self._leader_lock = asyncio.Lock()
        self._workers = [asyncio.create_task(self._sender()) for _ in range(self.senders)]
        for a in self.agents:
            a.session = asyncio.create_task(a.run())
        try:
            await self.wait_until(
                lambda: self.subscribed == len(self.agents), self.ready_timeout, "agents up"
            )
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop the agents (streams first, so none re-registers), UNREGISTER them, stop the senders."""
        self.closing = True
        sessions = [a.session for a in self.agents if a.session is not None]
        for s in sessions:
            s.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)
        for a in self.agents:
            a.session, a.subscribed = None, False
            for t in a.tasks.values():
                t.cancel_timers()
        if self.unregister and self._http is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(a.unregister() for a in self.agents)), CLOSE_TIMEOUT)
        for w in self._workers:
            w.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def http(self) -> aiohttp.ClientSession:
        assert self._http is not None, "the cluster is not started"
        return self._http

    # ---------------------------------------------------------------- the leading master

    async def leader(self) -> str:
        """The master to register with: the next of a host:port list, or the leader named in ZooKeeper
        (one lookup serves every agent asking within LEADER_TTL)."""
        if isinstance(self.spec, tuple):
            return self.spec[self._next_master % len(self.spec)]
        assert self._leader_lock is not None
        async with self._leader_lock:
            if self._leader is not None and time.monotonic() - self._leader[1] < LEADER_TTL:
                return self._leader[0]
            try:
                url = await asyncio.to_thread(leader_url_from_zk, self.spec, HTTP_TIMEOUT)
            except Exception as e:
                raise SessionError(f"cannot read the leader from {self.master}: {e}") from None
            if url is None:
                raise SessionError(f"no leading master in {self.master}")
            self._leader = (url, time.monotonic())
            return url

    def leader_failed(self, url: str) -> None:
        if isinstance(self.spec, tuple):
            if self.spec[self._next_master % len(self.spec)] == url:
                self._next_master += 1
        elif self._leader is not None and self._leader[0] == url:
            self._leader = None

    # ---------------------------------------------------------------- agent → master calls

    def enqueue(self, agent: SimAgent, doc: dict[str, Any], task: _Task | None = None) -> None:
        if self._outbox is not None and not self.closing:
            self._outbox.put_nowait((agent, doc, task))

    async def _sender(self) -> None:
        assert self._outbox is not None
        while True:
            agent, doc, task = await self._outbox.get()
            if agent.master_url is not None:
                await self._post(agent.master_url, doc)
            if task is not None:
                self.stats["updates_sent"] += 1
                agent.posted(task, doc["update"]["status"]["uuid"])

    async def _post(self, url: str, doc: dict[str, Any]) -> None:
        try:
            async with self.http.post(f"{url}/agent/api/v1", json=doc) as resp:
                if resp.status != 202:
                    self.stats["post_errors"] += 1
                    log.warning("%s refused: %s %s", doc["type"], resp.status, await resp.text())
                else:
                    await resp.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            self.stats["post_errors"] += 1
            log.info("%s not sent: %s", doc["type"], e)

    # ---------------------------------------------------------------- counters and waiting

    def moved(self, old: str | None, new: str) -> None:
        if old is not None:
            self.counts[old] -= 1
        self.counts[new] += 1
        self.notify()

    def notify(self) -> None:
        for ev in self._waiters:
            ev.set()

    @property
    def running(self) -> int:
        return self.counts["TASK_RUNNING"]

    @property
    def subscribed(self) -> int:
        return sum(a.subscribed for a in self.agents)

    def running_by_agent(self) -> dict[str, int]:
        """Hostname → tasks in TASK_RUNNING (to see how a framework spread its tasks)."""
        return {
            a.hostname: sum(t.state == "TASK_RUNNING" for t in a.tasks.values())
            for a in self.agents
            if a.tasks
        }

    async def wait_until(
        self, predicate: Callable[[], bool], timeout: float, what: str = "condition"
    ) -> None:
        """Until ``predicate()`` holds (checked at every task state change and agent (un)subscription);
        TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{what}: not reached within {timeout:g}s ({self.summary()})")
            ev = asyncio.Event()
            self._waiters.add(ev)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ev.wait(), remaining)
            finally:
                self._waiters.discard(ev)

    async def wait_running(self, n: int, timeout: float) -> None:
        await self.wait_until(lambda: self.running >= n, timeout, f"{n} tasks running")

    def summary(self) -> str:
        states = " ".join(f"{s.removeprefix('TASK_')}={n}" for s, n in sorted(self.counts.items()) if n)
        return (
            f"agents {self.subscribed}/{len(self.agents)} subscribed; tasks {states or 'none'}; "
            f"updates {self.stats['updates_sent']} sent, {self.stats['update_retries']} resent, "
            f"{self.stats['post_errors']} failed"
        )


# -------------------------------------------------------------------- synchronous callers


class ClusterThread:
    """A started SimCluster on an event loop of its own thread."""

    def __init__(self, cluster: SimCluster, loop: asyncio.AbstractEventLoop) -> None:
        self.cluster = cluster
        self.loop = loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run ``coro`` on the cluster's loop and return its result (within ``timeout`` seconds)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """``fn()`` on the cluster's loop: a consistent read of its counters."""

        async def wrapped() -> T:
            return fn()

        return self.run(wrapped(), timeout)


@contextlib.contextmanager
def in_thread(cluster: SimCluster) -> Iterator[ClusterThread]:
    """Start ``cluster`` on a fresh loop in a daemon thread; on the way out close it and stop the loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="simagents", daemon=True)
    thread.start()
    handle = ClusterThread(cluster, loop)
    try:
        handle.run(cluster.start(), cluster.ready_timeout + CLOSE_TIMEOUT)
        yield handle
    finally:
        with contextlib.suppress(Exception):
            handle.run(cluster.close(), 3 * CLOSE_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(CLOSE_TIMEOUT)
        if not thread.is_alive():
            loop.close()


# -------------------------------------------------------------------- CLI


def _flags(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="simagents",
        description="Simulated Mesos agents for master_py (tasks are records, no processes).",
    )
    p.add_argument(
        "--master", required=True, help="host:port, http://host:port, a comma list, or zk://…/path"
    )
    p.add_argument("--agents", type=int, default=10)
    p.add_argument(
        "--resources", default=DEFAULT_RESOURCES, help="per agent, Mesos syntax ({i}: agent number)"
    )
    p.add_argument("--attributes", default="", help="per agent, e.g. 'rack:r{i};zone:a'")
    p.add_argument("--hostname-format", default="sim-{:04d}", help="str.format of the agent number")
    p.add_argument("--port", type=int, default=5051, help="the agent port registered with the master")
    p.add_argument("--running-delay", type=float, default=0.0, help="seconds from TASK_STARTING to RUNNING")
    p.add_argument("--senders", type=int, default=32, help="concurrent agent → master calls")
    p.add_argument("--ready-timeout", type=float, default=60.0, help="for every agent to subscribe")
    p.add_argument("--report-every", type=float, default=5.0, help="seconds between status lines (0: none)")
    p.add_argument("--log-level", default="WARNING")
    return p.parse_args(argv)


async def _serve(cluster: SimCluster, report_every: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with cluster:
        print(f"simagents: {cluster.summary()}", flush=True)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), report_every if report_every > 0 else None)
            if report_every > 0:
                print(f"simagents: {cluster.summary()}", flush=True)
    print("simagents: stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _flags(sys.argv[1:] if argv is None else argv)
    setup_logging(args.log_level)
    try:
        cluster = SimCluster(
            args.master,
            args.agents,
            resources=args.resources,
            attributes=args.attributes,
            hostname_format=args.hostname_format,
            port=args.port,
            running_delay=args.running_delay,
            senders=args.senders,
            ready_timeout=args.ready_timeout,
        )
    except (ValueError, IndexError, KeyError) as e:  # format errors of --hostname-format/--attributes too
        print(f"simagents: {e}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(cluster, args.report_every))
    except TimeoutError as e:
        print(f"simagents: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
