"""One ``marathon-py`` process: the API at once, the election, and — while elected — one leadership term.

As Marathon 1.10 (reference §8): every instance serves HTTP from the start and proxies to the leader; on
election it reads the whole state from ZooKeeper (bounded by ``--on_elected_prepare_timeout``), builds the
core from it, resumes the stored deployments and subscribes to Mesos with the stored framework id.  A term
never ends gracefully: losing the latch or the ZooKeeper session, a failed store write, the master
removing the framework, or ``DELETE /v2/leader`` stop the process, and its supervisor (systemd) starts it
again as a standby.  Exit codes: 0 after SIGTERM/SIGINT or abdication, 1 after a loss or a failure.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import signal
from typing import Any, TypeVar

from aiohttp import web
from kazoo.client import KazooClient

from marathon_py import groups, schedcalls, zkstore
from marathon_py.core import MarathonCore
from marathon_py.election import LeaderElection
from marathon_py.flags import Options
from marathon_py.http import create_app, webui
from marathon_py.http.api import add_routes
from marathon_py.http.auth import BasicAuth, leader_ssl_context, server_ssl_context
from marathon_py.http.errors import HttpError
from marathon_py.http.events import EventBus
from marathon_py.http.leader import LeaderProxy, Leadership
from marathon_py.http.orchestrator import Decision
from marathon_py.http.system import Metrics, SystemRoutes
from marathon_py.mesos import ClientOptions, MesosClient
from marathon_py.service import Service, core_from_store

log = logging.getLogger(__name__)
T = TypeVar("T")
NOT_READY = "Leader is preparing (loading state); try again"


class Daemon:
    """The process; also the ``Status`` of ``SystemRoutes`` and the ``Orchestrator`` of the API routes
    (delegating to the current term's ``Service``)."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.bus = EventBus(max_outstanding=options.args.event_stream_max_outstanding_messages)
        self.stopping = asyncio.Event()
        self.exit_code = 0
        self.client: KazooClient | None = None
        self.election: LeaderElection | None = None
        self.service: Service | None = None
        self._runner: web.AppRunner | None = None

    # -- Status (marathon_py.http.system) ---------------------------------------------------------------

    def leadership(self) -> Leadership:
        e = self.election
        if e is None:
            return Leadership(False, None)
        leading = e.is_leader and self.service is not None
        return Leadership(leading, self.options.participant_id if leading else e.leader())

    def framework_id(self) -> str | None:
        s = self.service
        if s is None:
            return None
        return s.mesos.framework_id if s.mesos is not None else s.store.framework_id()

    def mesos_leader_ui_url(self) -> str | None:
        s = self.service
        leader = s.mesos.leader if s is not None and s.mesos is not None else None
        return f"{leader}/" if leader else None

    def metrics(self) -> Metrics:
        s = self.service
        if s is None:
            return Metrics()
        core = s.core
        instances = core.instances()
        gauges = {
            "marathon.apps.active.gauge": float(len(groups.all_apps(core.root()))),
            "marathon.deployments.active.gauge": float(len(core.deployment_plans())),
            "marathon.instances.running.gauge": float(sum(r.condition == "Running" for r in instances)),
            "marathon.instances.staged.gauge": float(sum(r.condition == "Staging" for r in instances)),
            "marathon.instances.launch-overdue.gauge": float(sum(r.scheduled for r in instances)),
        }
        counters = {f"marathon.mesos.{k}.counter": v for k, v in s.counters.items()}
        return Metrics(gauges, counters)

    def abdicate(self) -> None:
        log.info("abdicating (DELETE /v2/leader): stopping")
        self.exit_code = 0
        self.stopping.set()

    # -- Orchestrator (marathon_py.http.orchestrator) ------------------------------------------------------

    def _term(self) -> Service:
        if self.service is None:
            raise HttpError(503, NOT_READY)
        return self.service

    @property
    def core(self) -> MarathonCore:
        return self._term().core

    @property
    def versions(self) -> zkstore.ZkStore:
        return self._term().store

    def now(self) -> float:
        return self._term().now()

    async def decide(self, fn: Decision[T]) -> T:
        return await self._term().decide(fn)

    # -- the process ------------------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        a = self.options.args
        try:
            self.client = await zkstore.connect(a.zk.hosts, a.zk_session_timeout)
            await self._serve()
            self.election = LeaderElection(
                self.client, a.zk.path, self.options.participant_id, on_lost=self._lost
            )
            await self.election.start(a.zk_timeout)
            log.info("joined the election at %s as %s", a.zk.path, self.options.participant_id)
            await self._first(self.election.elected.wait(), self.stopping.wait())
            if self.election.is_leader and not self.stopping.is_set():
                await self._lead()
            await self.stopping.wait()
        except Exception:
            log.exception("marathon-py failed")
            self.exit_code = 1
        finally:
            await self._shutdown()
        return self.exit_code

    def _lost(self, reason: str) -> None:
        if not self.stopping.is_set():
            log.error("leadership lost (%s): stopping", reason)
            self.exit_code = 1
            self.stopping.set()

    async def _lead(self) -> None:
        """Load the state, build the core, subscribe; then watch the term until it ends."""
        assert self.client is not None and self.election is not None
        a = self.options.args
        store = zkstore.ZkStore(self.client, a.zk.path, self.options.store_config(), a.zk_timeout)
        store.fence = self.election.node
        await asyncio.wait_for(store.load(), a.on_elected_prepare_timeout)
        core = core_from_store(store, self.options.core_config())
        service = Service(core, store, self.bus)
        mesos = MesosClient(
            a.master,
            schedcalls.framework_info(
                user=a.mesos_user or getpass.getuser(),
                hostname=self.options.hostname,
                name=a.framework_name,
                roles=(a.mesos_role,),
                failover_timeout=a.failover_timeout,
                webui_url=a.webui_url or f"{self.options.scheme}://{self.options.participant_id}",
                principal=a.mesos_authentication_principal,
                caps=schedcalls.capabilities(self.options.features),
            ),
            service.handle,
            framework_id=store.framework_id(),
            on_framework_id=store.save_framework_id,
            suppressed_roles=(),
            auto_ack=False,
            options=ClientOptions(zk_timeout=a.zk_timeout),
        )
        self.service = service
        await service.start(mesos)
        log.info("elected: serving as the leader (framework id %s)", store.framework_id())
        ended = await self._first(self.stopping.wait(), service.failed.wait(), mesos.join())
        if not self.stopping.is_set():
            log.error("leadership term ended: %s", ended or service.failure)
            self.exit_code = 1
            self.stopping.set()

    async def _serve(self) -> None:
        o, a = self.options, self.options.args
        proxy = LeaderProxy(
            o.participant_id,
            self.leadership,
            scheme=o.scheme,
            connect_timeout=a.leader_proxy_connection_timeout,
            read_timeout=a.leader_proxy_read_timeout,
            client_ssl=leader_ssl_context() if o.scheme == "https" else None,
        )
        auth = BasicAuth(a.http_credentials, realm=a.http_realm) if a.http_credentials else None
        app = create_app(proxy, SystemRoutes(self, o.info(), bus=self.bus), self.bus, auth=auth)
        add_routes(app, self)
        webui.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        if o.http_port is not None:
            await web.TCPSite(self._runner, a.http_address, o.http_port).start()
        if o.https_port is not None:
            ctx = server_ssl_context(a.ssl_cert, a.ssl_key)
            await web.TCPSite(
                self._runner, a.https_address or a.http_address, o.https_port, ssl_context=ctx
            ).start()
        log.info("serving the API on %s", o.participant_id)

    async def _shutdown(self) -> None:
        if self.service is not None:
            await self.service.stop()
        self.bus.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.election is not None:
            await self.election.close()
        if self.client is not None:
            await asyncio.to_thread(self.client.stop)
            await asyncio.to_thread(self.client.close)

    @staticmethod
    async def _first(*aws: Any) -> Any:
        """Wait for the first of ``aws``; cancel the rest; its result (or its exception, as a value)."""
        tasks = [asyncio.ensure_future(a) for a in aws]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
        first = next(iter(done))
        return first.exception() if not first.cancelled() and first.exception() else None
