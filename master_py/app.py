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

from paas_common import recordio
from paas_common.resources import ResourceError, Resources
from paas_common.zkleader import Contender, ZkUrl, leader_info, master_info, members

from . import events
from .calls import ApiError, check_stream, parse_call
from .core import CloseStream, MasterCore, Output, ToAgent, ToFramework

log = logging.getLogger("master_py")

VERSION = "1.11.0"  # dotted integers only: pymesos parses every part with int()
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
    agent_ping_interval: float = 15.0


@dataclass
class _Stream:
    framework_id: str
    stream_id: str
    queue: asyncio.Queue[object] = field(default_factory=asyncio.Queue)


@dataclass
class _AgentStream:
    agent_id: str
    queue: asyncio.Queue[object] = field(default_factory=asyncio.Queue)


class Master:
    def __init__(self, cfg: MasterConfig) -> None:
        self.cfg = cfg
        self.id = str(uuid.uuid4())
        hostname = cfg.hostname or cfg.ip
        self.info = master_info(self.id, cfg.ip, cfg.port, hostname, VERSION)
        self.core = MasterCore(self.id, self.info)
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
        for prefix in ("", "/master"):
            r.add_post(f"{prefix}/api/v1/scheduler", self.scheduler)
            r.add_post(f"{prefix}/agent/api/v1", self.agent_api)
            r.add_get(f"{prefix}/health", self.health)
            r.add_get(f"{prefix}/redirect", self.redirect)
            r.add_get(f"{prefix}/state", self.state)
        r.add_get("/version", self.version)
        r.add_get("/metrics/snapshot", self.metrics)
        return app

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.cfg.zk is not None:  # join (and learn the leader) before answering anything
            names = await asyncio.to_thread(self._join_group, self.cfg.zk)
            self._group_changed(names, self._node)
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
            if not self.leading:
                self.leading = True
                self.elected_time = time.time()
                self.leader = self.info
                log.info("elected leader (%s)", mine)
            return
        if self.leading:
            self._exit("lost leadership")
            return
        self._tasks.append(asyncio.create_task(self._refresh_leader()))

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
                self._deliver(self.core.tick(now))
                self._deliver(self.core.allocate(now))

    # ---------------------------------------------------------------- delivery

    def _deliver(self, outputs: list[Output]) -> None:
        for o in outputs:
            if isinstance(o, ToAgent):
                link = self.agent_streams.get(o.agent_id)
                if link is None:  # the agent re-registers with its tasks; reconciliation covers the gap
                    log.warning("agent %s has no stream: dropped %s", o.agent_id, o.message.get("type"))
                else:
                    link.queue.put_nowait(o.message)
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
            self._deliver(self.core.call(call, time.time()))
        except ApiError as e:
            return web.Response(status=e.status, text=e.message)
        return web.Response(status=202)

    async def _subscribe(self, request: web.Request, call: Any) -> web.StreamResponse:
        fw, outputs = self.core.subscribe(call, time.time())
        assert fw.stream_id is not None
        old = self.streams.get(fw.id)
        stream = _Stream(fw.id, fw.stream_id)
        self.streams[fw.id] = stream
        if old is not None:
            old.queue.put_nowait(_CLOSE)
        resp = web.StreamResponse(
            status=200, headers={"Content-Type": "application/json", "Mesos-Stream-Id": fw.stream_id}
        )
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        self._deliver(outputs)
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
                return self._agent_register(doc.get("register"))
            agent_id = _id(doc.get("agent_id"))
            if agent_id is None or agent_id not in self.core.agents:
                return web.Response(status=400, text="Agent cannot be found")
            if kind == "SUBSCRIBE":
                return await self._agent_subscribe(request, agent_id)
            if kind == "UPDATE":
                status = (
                    (doc.get("update") or {}).get("status") if isinstance(doc.get("update"), dict) else None
                )
                if (
                    not isinstance(status, dict)
                    or _id(status.get("task_id")) is None
                    or not status.get("uuid")
                ):
                    return web.Response(
                        status=400, text="Expecting 'update.status' with 'task_id' and 'uuid'"
                    )
                self._deliver(self.core.agent_update(agent_id, status, time.time()))
                return web.Response(status=202)
        except (ResourceError, ValueError, TypeError, AttributeError) as e:
            return web.Response(status=400, text=f"Invalid agent call: {e}")
        return web.Response(status=400, text=f"Unknown agent call type {kind!r}")

    def _agent_register(self, body: object) -> web.Response:
        if not isinstance(body, dict) or not isinstance(body.get("hostname"), str):
            return web.Response(status=400, text="Expecting 'register.hostname' to be present")
        resources = Resources.from_json(body.get("resources") or [])
        if resources.empty():
            return web.Response(status=400, text="An agent must offer some resources")
        attributes = body.get("attributes") or []
        agent_id = _id(body.get("agent_id"))
        if agent_id is not None and agent_id in self.core.agents:
            agent = self.core.agents[agent_id]  # re-registration of a known agent
        else:
            agent = self.core.add_agent(
                body["hostname"], resources, attributes, time.time(), agent_id=agent_id
            )
        log.info("agent %s (%s) registered with %s", agent.id, agent.hostname, resources.model())
        return web.json_response({"agent_id": {"value": agent.id}, "master_id": self.id})

    async def _agent_subscribe(self, request: web.Request, agent_id: str) -> web.StreamResponse:
        old = self.agent_streams.get(agent_id)
        link = _AgentStream(agent_id)
        self.agent_streams[agent_id] = link
        if old is not None:
            old.queue.put_nowait(_CLOSE)
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            while True:
                try:
                    item = await asyncio.wait_for(link.queue.get(), self.cfg.agent_ping_interval)
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
        return resp

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def redirect(self, request: web.Request) -> web.Response:
        if self.leader is None:
            return web.Response(status=503, text="No leader elected")
        addr = self.leader.get("address", {})
        return web.Response(status=307, headers={"Location": f"//{addr.get('hostname')}:{addr.get('port')}"})

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"version": VERSION, "build_date": "2026-11-24", "build_time": 0, "build_user": "baremetal-paas"}
        )

    async def state(self, request: web.Request) -> web.Response:
        def fw_json(fw: Any) -> dict[str, Any]:
            return {
                "id": fw.id,
                "name": fw.info.get("name", ""),
                "user": fw.info.get("user", ""),
                "hostname": fw.info.get("hostname", ""),
                "webui_url": fw.info.get("webui_url", ""),
                "active": fw.active,
                "connected": fw.connected,
                "recovered": False,
                "failover_timeout": fw.failover_timeout,
                "checkpoint": bool(fw.info.get("checkpoint", False)),
                "registered_time": fw.registered_time,
                "unregistered_time": fw.unregistered_time or 0,
                "roles": fw.roles,
                "capabilities": [c.get("type") for c in fw.info.get("capabilities", [])],
                "resources": {"cpus": 0.0, "gpus": 0.0, "mem": 0.0, "disk": 0.0},
                "used_resources": {"cpus": 0.0, "gpus": 0.0, "mem": 0.0, "disk": 0.0},
                "offered_resources": {"cpus": 0.0, "gpus": 0.0, "mem": 0.0, "disk": 0.0},
                "tasks": [],
                "unreachable_tasks": [],
                "completed_tasks": [],
                "offers": [],
                "executors": [],
            }

        leader = self.leader or {}
        doc = {
            "version": VERSION,
            "build_date": "2026-11-24",
            "build_time": 0,
            "build_user": "baremetal-paas",
            "start_time": self.start_time,
            "id": self.id,
            "pid": self.info["pid"],
            "hostname": self.info["hostname"],
            "activated_slaves": 0,
            "deactivated_slaves": 0,
            "unreachable_slaves": 0,
            "leader": leader.get("pid", ""),
            "leader_info": {k: leader[k] for k in ("id", "pid", "port", "hostname") if k in leader},
            "flags": {"port": str(self.cfg.port)},
            "slaves": [],
            "recovered_slaves": [],
            "frameworks": [fw_json(f) for f in self.core.frameworks.values()] if self.leading else [],
            "completed_frameworks": [fw_json(f) for f in self.core.completed_frameworks]
            if self.leading
            else [],
            "orphan_tasks": [],
            "unregistered_frameworks": [],
        }
        if self.elected_time is not None and self.leading:
            doc["elected_time"] = self.elected_time
        return web.json_response(doc)

    async def metrics(self, request: web.Request) -> web.Response:
        fws = list(self.core.frameworks.values())
        return web.json_response(
            {
                "master/elected": 1 if self.leading else 0,
                "master/uptime_secs": time.time() - self.start_time,
                "master/frameworks_active": sum(f.active for f in fws),
                "master/frameworks_connected": sum(f.connected for f in fws),
                "master/frameworks_disconnected": sum(not f.connected for f in fws),
                "master/frameworks_inactive": sum(not f.active for f in fws),
                "master/slaves_active": 0,
                "master/outstanding_offers": 0,
            }
        )


def _id(obj: object) -> str | None:
    if isinstance(obj, dict) and isinstance(obj.get("value"), str) and obj["value"]:
        return str(obj["value"])
    return None
