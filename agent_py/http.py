"""The agent's HTTP server (aiohttp): Mesos' agent endpoints, thin handlers over ``agent_py.views``.

Routes, each also under ``/slave(1)/`` where Mesos' agent process serves it (libprocess delegates the bare
path to ``slave(1)``); ``/metrics/snapshot``, ``/version`` and ``/metrics`` belong to other libprocess
processes and have no prefix:

* ``/state`` (``/state.json``): the v0 JSON model; 503 until recovery is done, as Mesos.
* ``/flags``, ``/health`` (200, empty body).
* ``/monitor/statistics`` (``.json``), ``/containers`` (query ``container_id`` | ``framework_id`` [+
  ``executor_id``]; anything else 400).
* ``/metrics/snapshot``, ``/version``; ``/metrics``: the same figures in Prometheus' text format.

JSON endpoints take Mesos' ``?jsonp=<callback>``.  Unknown paths are 404, other methods than GET/HEAD 405.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import psutil
from aiohttp import web

from agent_py import views
from agent_py.containerizer import Usage
from paas_common import prometheus
from paas_common.web import BUILD, MESOS_VERSION, json_view

log = logging.getLogger("agent_py")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AgentSource(Protocol):
    """What the server needs from the agent."""

    @property
    def recovered(self) -> bool: ...

    def view(self) -> views.AgentView: ...

    async def usage(self) -> dict[str, Usage]:
        """A ResourceStatistics sample per live container id (those that answered in time)."""
        ...


def system_sample() -> dict[str, float]:
    """libprocess' ``system/*`` metrics."""
    load = os.getloadavg()
    memory = psutil.virtual_memory()
    return {
        "system/cpus_total": float(psutil.cpu_count(logical=True) or 1),
        "system/load_1min": load[0],
        "system/load_5min": load[1],
        "system/load_15min": load[2],
        "system/mem_total_bytes": float(memory.total),
        "system/mem_free_bytes": float(memory.available),
    }


class AgentHttp:
    def __init__(self, agent: AgentSource) -> None:
        self.agent = agent

    def app(self) -> web.Application:
        app = web.Application()
        routes: dict[str, Handler] = {
            "/state": self.state,
            "/state.json": self.state,
            "/flags": self.flags,
            "/health": self.health,
            "/monitor/statistics": self.statistics,
            "/monitor/statistics.json": self.statistics,
            "/containers": self.containers,
        }
        for path, handler in routes.items():
            app.router.add_get(path, handler)
            app.router.add_get(f"/slave(1){path}", handler)
        app.router.add_get("/metrics/snapshot", self.snapshot)
        app.router.add_get("/metrics", self.prometheus)
        app.router.add_get("/version", self.version)
        return app

    async def state(self, request: web.Request) -> web.Response:
        if not self.agent.recovered:
            return web.Response(status=503, text="Agent has not finished recovery")
        return json_view(request, views.state(self.agent.view()))

    async def flags(self, request: web.Request) -> web.Response:
        return json_view(request, {"flags": dict(self.agent.view().flags)})

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def version(self, request: web.Request) -> web.Response:
        return json_view(request, {"version": MESOS_VERSION, **BUILD})

    async def statistics(self, request: web.Request) -> web.Response:
        usage = await self.agent.usage()
        return json_view(request, views.statistics(self.agent.view(), usage))

    async def containers(self, request: web.Request) -> web.Response:
        view = self.agent.view()
        try:
            views.containers(view, {}, request.query)  # validate the query before sampling
        except views.QueryError as e:
            return web.Response(status=400, text=str(e))
        usage = await self.agent.usage()
        return json_view(request, views.containers(view, usage, request.query))

    def _snapshot(self) -> dict[str, float]:
        return views.metrics(self.agent.view(), time.time(), system_sample())

    async def snapshot(self, request: web.Request) -> web.Response:
        return json_view(request, self._snapshot())

    async def prometheus(self, request: web.Request) -> web.Response:
        text = prometheus.render(self._snapshot(), views.COUNTERS, {**views.GAUGES, **views.COUNTERS})
        return web.Response(body=text.encode(), headers={"Content-Type": prometheus.CONTENT_TYPE})


async def start_server(agent: AgentSource, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Bind and serve; the runner (to clean up) and the port actually bound (``port`` 0 picks one)."""
    runner = web.AppRunner(
        AgentHttp(agent).app(), access_log=None, handle_signals=False, shutdown_timeout=2.0
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound = int(runner.addresses[0][1]) if runner.addresses else port
    log.info("serving HTTP on %s:%d", host, bound)
    return runner, bound
