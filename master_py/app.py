"""The master's HTTP edge (aiohttp): the v1 scheduler API, leader election, operator endpoints.

Decisions are the core's (``core.py``); this module validates requests (``calls.py``), keeps one
RecordIO stream per subscribed framework, answers from standbys with Mesos' redirects, and
contends for leadership through ZooKeeper with ``json.info_`` znodes (``paas_common.zkleader``).
A master that loses leadership or its ZooKeeper session exits, as Mesos does: its supervisor
restarts it as a standby, and nothing it held in memory outlives the leadership it was valid for.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from kazoo.client import KazooClient, KazooState

from paas_common import prometheus, recordio
from paas_common.resources import ResourceError, Resources
from paas_common.web import BUILD, MESOS_VERSION, json_view
from paas_common.zkleader import Contender, ZkUrl, leader_info, master_info, members

from . import events, state
from .calls import ApiError, check_stream, parse_call
from .core import MasterCore
from .model import AgentTimeouts, CloseAgent, CloseStream, Output, Persist, ToAgent, ToFramework
from .registry import ZkRegistry

log = logging.getLogger("master_py")

_CLOSE = object()


@dataclass
class MasterConfig:
    ip: str = "127.0.0.1"
    port: int = 5050
    hostname: str | None = None
    zk: ZkUrl | None = None
    zk_session_timeout: float = 10.0
    heartbeat_interval: float = events.HEARTBEAT_INTERVAL_S
    allocation_interval: float = 1.0
    agent_ping_timeout: float = 15.0
    max_agent_ping_timeouts: int = 5
    agent_reregister_timeout: float = 600.0


@dataclass
class _Stream:
    framework_id: str
    stream_id: str
    queue: asyncio.Queue[object] = field(default_factory=asyncio.Queue)


@dataclass
class _AgentStream:
    """Messages for an agent; created when it registers, so nothing is lost before it subscribes."""

    agent_id: str
    queue: asyncio.Queue[object] = field(default_factory=asyncio.Queue)
    attached: bool = False


class Master:
    def __init__(self, cfg: MasterConfig) -> None:
        self.cfg = cfg
        self.id = str(uuid.uuid4())
        hostname = cfg.hostname or cfg.ip
        self.info = master_info(self.id, cfg.ip, cfg.port, hostname, MESOS_VERSION)
        timeouts = AgentTimeouts(
            cfg.agent_ping_timeout, cfg.max_agent_ping_timeouts, cfg.agent_reregister_timeout
        )
        self.core = MasterCore(
            self.id, self.info, timeouts=timeouts, heartbeat_interval=cfg.heartbeat_interval
        )
        self.registry: ZkRegistry | None = None
        self._registry_lock = asyncio.Lock()
        self._election: asyncio.Task[None] | None = None
        self._allocation: asyncio.TimerHandle | None = None
        self.streams: dict[str, _Stream] = {}
        self.agent_streams: dict[str, _AgentStream] = {}
        self.leading = cfg.zk is None
        self.leader: dict[str, Any] | None = self.info if self.leading else None
        self.start_time = time.time()
        self.elected_time: float | None = self.start_time if self.leading else None
        self.stopped = asyncio.Event()
        self.exit_code = 0
        self.zk: KazooClient | None = None
        self._node: str | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---------------------------------------------------------------- lifecycle

    def app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        r = app.router
        views = {
            "state": self.state,
            "state-summary": self.state_summary,
            "slaves": self.slaves,
            "frameworks": self.frameworks,
            "tasks": self.tasks,
        }
        for prefix in ("", "/master"):
            r.add_post(f"{prefix}/api/v1/scheduler", self.scheduler)
            r.add_post(f"{prefix}/agent/api/v1", self.agent_api)
            r.add_get(f"{prefix}/health", self.health)
            r.add_get(f"{prefix}/redirect", self.redirect)
            for name, view in views.items():
                r.add_get(f"{prefix}/{name}", view)
                r.add_get(f"{prefix}/{name}.json", view)  # pre-1.8 aliases, still used by old tools
        r.add_get("/version", self.version)
        r.add_get("/metrics/snapshot", self.metrics)
        r.add_get("/metrics", self.prometheus)
        return app

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.cfg.zk is not None:  # join (and learn the leader) before answering anything
            names = await asyncio.to_thread(self._join_group, self.cfg.zk)
            self._group_changed(names, self._node)
            if self._election is not None:
                await self._election
            if not self.leading:
                await self._refresh_leader()
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.cfg.ip, self.cfg.port, reuse_address=True)
        await site.start()
        self._tasks.append(asyncio.create_task(self._ticks()))
        log.info(
            "master %s listening on %s:%d (%s)",
            self.id,
            self.cfg.ip,
            self.cfg.port,
            "leading" if self.leading else "contending through ZooKeeper",
        )

    def _join_group(self, zk: ZkUrl) -> list[str]:
        client = KazooClient(hosts=zk.hosts, timeout=self.cfg.zk_session_timeout)
        client.start(timeout=self.cfg.zk_session_timeout)
        client.add_listener(self._zk_state)
        self.zk = client
        self.registry = ZkRegistry(client, zk.path)
        contender = Contender(client, zk.path, self.info)
        contender.join()
        contender.watch(lambda names: self._threadsafe(self._group_changed, names, contender.node))
        self._node = contender.node
        return members(client.get_children(zk.path))

    def _threadsafe(self, fn: Any, *args: Any) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(fn, *args)

    def _zk_state(self, state: str) -> None:
        if state == KazooState.LOST:
            self._threadsafe(self._exit, "lost the ZooKeeper session")

    def _group_changed(self, names: list[str], mine: str | None) -> None:
        if not names:
            self.leader = None
            return
        if names[0] == mine:
            if not self.leading and self._election is None:
                self._election = asyncio.create_task(self._elected(mine))
            return
        if self.leading:
            self._exit("lost leadership")
            return
        self._tasks.append(asyncio.create_task(self._refresh_leader()))

    async def _elected(self, node: str | None) -> None:
        """Leadership won: recover the registry, then lead (calls get 503 until then)."""
        self.leader = self.info
        try:
            if self.registry is not None:
                found = await asyncio.to_thread(self.registry.load)
                self.core.recover(found["agents"], found["frameworks"], time.time())
        except Exception:
            log.exception("could not recover the registry")
            self._exit("registry recovery failed")
            return
        self.leading = True
        self.elected_time = time.time()
        log.info(
            "elected leader (%s); expecting %d agents and %d frameworks back",
            node,
            len(self.core.recovered_agents),
            len(self.core.frameworks),
        )

    async def _refresh_leader(self) -> None:
        if self.zk is None or self.cfg.zk is None:
            return
        try:
            self.leader = await asyncio.to_thread(leader_info, self.zk, self.cfg.zk.path)
        except Exception:
            log.exception("could not read the leader's MasterInfo")

    def _exit(self, why: str) -> None:
        log.error("%s: exiting so the supervisor restarts this master as a standby", why)
        self.exit_code = 1
        self.stopped.set()

    async def stop(self) -> None:
        for s in self.streams.values():
            s.queue.put_nowait(_CLOSE)
        for a in self.agent_streams.values():
            a.queue.put_nowait(_CLOSE)
        for t in self._tasks:
            t.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.zk is not None:
            zk = self.zk
            await asyncio.to_thread(lambda: (zk.stop(), zk.close()))

    async def _ticks(self) -> None:
        """Failover timeouts and the batched allocation run (``--allocation_interval``)."""
        while True:
            await asyncio.sleep(self.cfg.allocation_interval)
            if self.leading:
                now = time.time()
                await self._act(self.core.tick(now))
                await self._act(self.core.allocate(now))

    def _allocate_soon(self) -> None:
        """An allocation run right after a change that new offers may follow from (a framework subscribed
        or revived, an agent connected), as Mesos does besides its batch interval; changes within a few
        milliseconds share one run."""
        if self._allocation is None and self._loop is not None:
            self._allocation = self._loop.call_later(0.005, self._allocate_now)

    def _allocate_now(self) -> None:
        self._allocation = None
        if self.leading:
            self._deliver(self.core.allocate(time.time()))

    # ---------------------------------------------------------------- delivery

    async def _act(self, outputs: list[Output]) -> None:
        """Carry out the core's decisions: registry writes first (in decision order), then messages."""
        ops = [o for o in outputs if isinstance(o, Persist)]
        if ops and self.registry is not None:
            registry = self.registry
            async with self._registry_lock:
                try:
                    await asyncio.to_thread(registry.apply, ops)
                except Exception:
                    log.exception("registry write failed")
                    self._exit("cannot write the registry")
                    raise
        self._deliver([o for o in outputs if not isinstance(o, Persist)])

    def _deliver(self, outputs: list[Output]) -> None:
        for o in outputs:
            if isinstance(o, ToAgent):
                link = self.agent_streams.get(o.agent_id)
                if link is None:  # the agent re-registers with its tasks; reconciliation covers the gap
                    log.warning("agent %s has no stream: dropped %s", o.agent_id, o.message.get("type"))
                else:
                    link.queue.put_nowait(o.message)
                continue
            if isinstance(o, CloseAgent):
                gone = self.agent_streams.pop(o.agent_id, None)
                if gone is not None:
                    gone.queue.put_nowait(_CLOSE)
                continue
            if isinstance(o, Persist):
                continue
            stream = self.streams.get(o.framework_id)
            if stream is None:
                continue
            if isinstance(o, ToFramework):
                stream.queue.put_nowait(o.event)
            elif isinstance(o, CloseStream) and o.stream_id == stream.stream_id:
                stream.queue.put_nowait(_CLOSE)

    # ---------------------------------------------------------------- handlers

    def _not_leading(self, request: web.Request) -> web.Response:
        if self.leader is None:
            return web.Response(status=503, text="No leader elected")
        if self.leader is self.info:  # elected, still reading the registry
            return web.Response(status=503, text="Master is recovering")
        addr = self.leader.get("address", {})
        location = f"//{addr.get('hostname') or addr.get('ip')}:{addr.get('port')}{request.path_qs}"
        return web.Response(status=307, headers={"Location": location})

    async def scheduler(self, request: web.Request) -> web.StreamResponse:
        if not self.leading:
            return self._not_leading(request)
        body = await request.read()
        stream_id = request.headers.get("Mesos-Stream-Id")
        try:
            call = parse_call(
                request.headers.get("Content-Type"), request.headers.get("Accept"), stream_id, body
            )
            if call.type == "SUBSCRIBE":
                return await self._subscribe(request, call)
            fw = self.core.frameworks.get(call.framework_id or "")
            check_stream(call, fw is not None, fw.stream_id if fw else None, stream_id)
            await self._act(self.core.call(call, time.time()))
            if call.type == "REVIVE":
                self._allocate_soon()
        except ApiError as e:
            return web.Response(status=e.status, text=e.message)
        return web.Response(status=202)

    async def _subscribe(self, request: web.Request, call: Any) -> web.StreamResponse:
        fw, outputs = self.core.subscribe(call, time.time())
        assert fw.stream_id is not None
        # The stream is registered and SUBSCRIBED queued first, before the registry write: an allocation
        # run during that write queues its offers behind SUBSCRIBED instead of losing them.  Nothing is
        # written to the framework before the entry is stored (the queue drains after prepare).
        old = self.streams.get(fw.id)
        stream = _Stream(fw.id, fw.stream_id)
        self.streams[fw.id] = stream
        if old is not None:
            old.queue.put_nowait(_CLOSE)
        self._deliver([o for o in outputs if not isinstance(o, Persist)])
        resp = web.StreamResponse(
            status=200, headers={"Content-Type": "application/json", "Mesos-Stream-Id": fw.stream_id}
        )
        resp.enable_chunked_encoding()
        try:
            await self._act([o for o in outputs if isinstance(o, Persist)])
            await resp.prepare(request)
        except BaseException:  # the framework never got its stream: it is disconnected at once
            if self.streams.get(fw.id) is stream:
                del self.streams[fw.id]
            self.core.disconnected(fw.id, stream.stream_id, time.time())
            raise
        self._allocate_soon()
        log.info("framework %s (%s) subscribed", fw.id, fw.info.get("name"))
        try:
            while True:
                try:
                    item = await asyncio.wait_for(stream.queue.get(), self.cfg.heartbeat_interval)
                except TimeoutError:
                    item = events.heartbeat()
                if item is _CLOSE:
                    break
                await resp.write(recordio.encode(json.dumps(item).encode()))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            if self.streams.get(fw.id) is stream:
                del self.streams[fw.id]
            if self.leading:
                self.core.disconnected(fw.id, stream.stream_id, time.time())
            log.info("framework %s stream closed", fw.id)
        return resp

    # ---------------------------------------------------------------- agents (docs/protocols.md)

    async def agent_api(self, request: web.Request) -> web.StreamResponse:
        if not self.leading:
            return self._not_leading(request)
        if (request.content_type or "") != "application/json":
            return web.Response(status=415, text="Expecting 'Content-Type' of application/json")
        try:
            doc = json.loads(await request.read())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return web.Response(status=400, text=f"Failed to parse body into JSON: {e}")
        kind = doc.get("type") if isinstance(doc, dict) else None
        try:
            if kind == "REGISTER":
                return await self._agent_register(doc.get("register"), request.remote or "127.0.0.1")
            agent_id = _id(doc.get("agent_id"))
            if agent_id is None or agent_id not in self.core.agents:
                return web.Response(status=400, text="Agent cannot be found")
            if kind == "SUBSCRIBE":
                return await self._agent_subscribe(request, agent_id)
            if kind == "UNREGISTER":  # the agent drained (SIGUSR1) and is shutting down
                await self._act(self.core.remove_agent(agent_id, time.time()))
                log.info("agent %s unregistered", agent_id)
                return web.Response(status=202)
            if kind == "PONG":
                self.core.agent_seen(agent_id, time.time())
                return web.Response(status=202)
            if kind == "UPDATE":
                update = doc.get("update")
                status = update.get("status") if isinstance(update, dict) else None
                if (
                    not isinstance(status, dict)
                    or _id(status.get("task_id")) is None
                    or not status.get("uuid")
                ):
                    return web.Response(
                        status=400, text="Expecting 'update.status' with 'task_id' and 'uuid'"
                    )
                await self._act(self.core.agent_update(agent_id, status, time.time()))
                return web.Response(status=202)
        except (ResourceError, ValueError, TypeError, AttributeError, KeyError) as e:
            return web.Response(status=400, text=f"Invalid agent call: {e}")
        return web.Response(status=400, text=f"Unknown agent call type {kind!r}")

    async def _agent_register(self, body: object, remote: str) -> web.Response:
        if not isinstance(body, dict) or not isinstance(body.get("hostname"), str):
            return web.Response(status=400, text="Expecting 'register.hostname' to be present")
        resources = Resources.from_json(body.get("resources") or [])
        if resources.empty():
            return web.Response(status=400, text="An agent must offer some resources")
        tasks, frameworks = body.get("tasks") or [], body.get("frameworks") or []
        if not isinstance(tasks, list) or not isinstance(frameworks, list):
            return web.Response(status=400, text="Expecting 'register.tasks' and 'register.frameworks' lists")
        port = body.get("port", 5051)
        if not isinstance(port, int) or not 0 < port < 65536:
            return web.Response(status=400, text="Expecting 'register.port' to be a TCP port")
        agent, outputs = self.core.add_agent(
            body["hostname"],
            resources,
            body.get("attributes") or [],
            time.time(),
            agent_id=_id(body.get("agent_id")),
            ip=remote,
            port=port,
            tasks=[t for t in tasks if isinstance(t, dict)],
            frameworks=[f for f in frameworks if isinstance(f, dict)],
        )
        old = self.agent_streams.get(agent.id)
        if old is not None:  # a stream of its previous registration: the agent starts over
            old.queue.put_nowait(_CLOSE)
        self.agent_streams[agent.id] = _AgentStream(agent.id)  # holds messages until it subscribes
        await self._act(outputs)
        log.info(
            "agent %s (%s) %sregistered with %s, %d tasks",
            agent.id,
            agent.hostname,
            "re" if agent.reregistered_time else "",
            resources.model(),
            len(tasks),
        )
        return web.json_response({"agent_id": {"value": agent.id}, "master_id": self.id})

    async def _agent_subscribe(self, request: web.Request, agent_id: str) -> web.StreamResponse:
        link = self.agent_streams.get(agent_id)
        if link is None or link.attached:
            if link is not None:
                link.queue.put_nowait(_CLOSE)
            link = _AgentStream(agent_id)
            self.agent_streams[agent_id] = link
        link.attached = True
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        self.core.agent_connected(agent_id, time.time())
        self._allocate_soon()
        try:
            while True:
                try:
                    item = await asyncio.wait_for(link.queue.get(), self.cfg.agent_ping_timeout)
                except TimeoutError:
                    item = {"type": "PING"}
                if item is _CLOSE:
                    break
                await resp.write(recordio.encode(json.dumps(item).encode()))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            if self.agent_streams.get(agent_id) is link:
                del self.agent_streams[agent_id]
                if self.leading:
                    self._deliver(self.core.agent_disconnected(agent_id, time.time()))
        return resp

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def redirect(self, request: web.Request) -> web.Response:
        if self.leader is None:
            return web.Response(status=503, text="No leader elected")
        addr = self.leader.get("address", {})
        return web.Response(status=307, headers={"Location": f"//{addr.get('hostname')}:{addr.get('port')}"})

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": MESOS_VERSION, **BUILD})

    def meta(self) -> state.Meta:
        return state.Meta(
            version=MESOS_VERSION,
            id=self.id,
            pid=self.info["pid"],
            hostname=self.info["hostname"],
            start_time=self.start_time,
            elected_time=self.elected_time,
            leading=self.leading,
            leader=self.leader,
            flags=self.flags(),
        )

    def flags(self) -> dict[str, str]:
        """``/master/state`` ``flags``: as Mesos prints them, all strings."""
        cfg = self.cfg
        flags = {
            "ip": cfg.ip,
            "port": str(cfg.port),
            "hostname": cfg.hostname or cfg.ip,
            "allocation_interval": f"{cfg.allocation_interval:g}secs",
            "agent_ping_timeout": f"{cfg.agent_ping_timeout:g}secs",
            "max_agent_ping_timeouts": str(cfg.max_agent_ping_timeouts),
            "agent_reregister_timeout": f"{cfg.agent_reregister_timeout:g}secs",
            "zk_session_timeout": f"{cfg.zk_session_timeout:g}secs",
            "registry": "zookeeper" if cfg.zk else "in_memory",
        }
        if cfg.zk is not None:
            flags["zk"] = f"zk://{cfg.zk.hosts}{cfg.zk.path}"
        return flags

    async def state(self, request: web.Request) -> web.Response:
        return json_view(request, state.state(self.core, self.meta()))

    async def state_summary(self, request: web.Request) -> web.Response:
        return json_view(request, state.state_summary(self.core, self.meta()))

    async def slaves(self, request: web.Request) -> web.Response:
        return json_view(request, state.slaves(self.core, self.meta(), request.query.get("slave_id")))

    async def frameworks(self, request: web.Request) -> web.Response:
        return json_view(request, state.frameworks(self.core, self.meta(), request.query.get("framework_id")))

    async def tasks(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            limit = int(q.get("limit", state.TASKS_LIMIT))
            offset = int(q.get("offset", 0))
        except ValueError:
            return web.Response(status=400, text="'limit' and 'offset' must be integers")
        if limit < 0 or offset < 0:
            return web.Response(status=400, text="'limit' and 'offset' must not be negative")
        order = q.get("order", "des")
        if order not in ("asc", "des"):
            return web.Response(status=400, text="'order' must be 'asc' or 'des'")
        doc = state.tasks(
            self.core,
            self.meta(),
            limit=limit,
            offset=offset,
            order=order,
            framework_id=q.get("framework_id"),
            task_id=q.get("task_id"),
        )
        return json_view(request, doc)

    async def metrics(self, request: web.Request) -> web.Response:
        return json_view(request, state.metrics(self.core, self.meta(), time.time()))

    async def prometheus(self, request: web.Request) -> web.Response:
        text = prometheus.render(state.metrics(self.core, self.meta(), time.time()), state.COUNTERS)
        return web.Response(text=text, headers={"Content-Type": prometheus.CONTENT_TYPE})


def _id(obj: object) -> str | None:
    if isinstance(obj, dict) and isinstance(obj.get("value"), str) and obj["value"]:
        return str(obj["value"])
    return None
