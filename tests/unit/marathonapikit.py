"""The REST API v2 handlers served on loopback over a real ``MarathonCore`` inside the simulated Mesos
(``tests.support.marathon_sim.Sim``): ``decide`` runs the core call and carries its outputs out through the
simulation (which checks that store writes come first), and the stored versions are what the simulated
store holds. Tests drive time with ``sim.step()`` between requests; nothing here waits on a clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from marathon_py import appdef, groups
from marathon_py.core import MarathonCore
from marathon_py.http import create_app
from marathon_py.http.api import add_routes
from marathon_py.http.events import EventBus
from marathon_py.http.leader import LeaderProxy, Leadership
from marathon_py.http.orchestrator import Decision
from marathon_py.http.system import Metrics, SystemRoutes
from marathon_py.outputs import Event, Output, SaveRoot
from marathon_py.store import newest_first
from tests.support.marathon_sim import Sim

T = TypeVar("T")
ME = "127.0.0.1:8080"
WAIT = 30.0  # the whole conversation of one test is bounded by this
Client = TestClient[Any, Any]


class StoredVersions:
    """``orchestrator.Versions`` over the simulated store: every root version it holds, apps inline."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim

    def root_versions(self) -> list[str]:
        return newest_first(self.sim.store.roots)

    def root(self, version: str | None = None) -> dict[str, Any] | None:
        found = self.sim.store.root if version is None else self.sim.store.roots.get(version)
        return None if found is None else dict(found)

    def _app_versions(self, app_id: str) -> dict[str, Mapping[str, Any]]:
        apps = (groups.apps_by_id(root).get(app_id) for root in self.sim.store.roots.values())
        return {str(app["version"]): app for app in apps if app is not None}

    def app_versions(self, app_id: str) -> list[str]:
        return newest_first(self._app_versions(app_id))

    def app(self, app_id: str, version: str | None = None) -> dict[str, Any] | None:
        if version is None:
            current = self.sim.core.app(app_id)
            return None if current is None else dict(current)
        found = self._app_versions(app_id).get(version)
        return None if found is None else dict(found)


class SimOrchestrator:
    """``orchestrator.Orchestrator`` for tests; ``decisions`` keeps the outputs of every ``decide``."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.versions = StoredVersions(sim)
        self.decisions: list[list[Output]] = []

    @property
    def core(self) -> MarathonCore:
        return self.sim.core

    def now(self) -> float:
        return self.sim.now

    async def decide(self, fn: Decision[T]) -> T:
        result, outs = fn(self.sim.core, self.sim.now)
        self.decisions.append(list(outs))
        self.sim.run(outs)
        return result

    def last(self, kind: type) -> list[Any]:
        """Outputs of ``kind`` of the last decision."""
        return [o for o in self.decisions[-1] if isinstance(o, kind)]

    def events(self, event_type: str) -> list[dict[str, Any]]:
        return [
            o.event
            for outs in self.decisions
            for o in outs
            if isinstance(o, Event) and o.event_type == event_type
        ]


class Leader:
    """``system.Status``: we lead."""

    def leadership(self) -> Leadership:
        return Leadership(True, ME)

    def framework_id(self) -> str | None:
        return "sim-framework"

    def mesos_leader_ui_url(self) -> str | None:
        return None

    def metrics(self) -> Metrics:
        return Metrics()

    def abdicate(self) -> None:
        raise AssertionError("not under test")


def make_app(orchestrator: SimOrchestrator) -> web.Application:
    status, bus = Leader(), EventBus()
    app = create_app(LeaderProxy(ME, status.leadership), SystemRoutes(status, bus=bus), bus)
    add_routes(app, orchestrator)
    return app


def serve(sim: Sim, body: Callable[[Client, SimOrchestrator], Awaitable[T]]) -> T:
    """Run ``body`` against the API over ``sim``, on an ephemeral loopback port, bounded in time."""
    orchestrator = SimOrchestrator(sim)

    async def go() -> T:
        async with TestClient(TestServer(make_app(orchestrator), host="127.0.0.1")) as client:
            return await asyncio.wait_for(body(client, orchestrator), WAIT)

    return asyncio.run(go())


async def answer(resp: ClientResponse) -> tuple[int, Any]:
    text = await resp.text()
    return resp.status, (await resp.json(content_type=None)) if text else None


def app_doc(app_id: str = "/web", **over: Any) -> dict[str, Any]:
    return {"id": app_id, "cmd": "serve", "cpus": 0.1, "mem": 32, "instances": 1, **over}


def normalized(app_id: str = "/web", **over: Any) -> dict[str, Any]:
    return appdef.normalize(app_doc(app_id, **over))


def settle(sim: Sim, seconds: int = 8) -> None:
    """Let the simulated cluster launch what was deployed (tasks start 1 to 3 s after their launch)."""
    sim.run_for(seconds)


__all__ = ["ME", "SaveRoot", "Sim", "SimOrchestrator", "answer", "app_doc", "normalized", "serve", "settle"]
