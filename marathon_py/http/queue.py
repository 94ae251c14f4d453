"""``/v2/queue`` (reference §2.5; ``api/v2/QueueResource.scala``).

Items leave out ``role`` (Marathon ≥ 1.9 writes it; the ``marathon`` client's ``MarathonQueueItem`` rejects
it, §9.1). ``embed=lastUnusedOffers`` adds the last unused offer of each agent.
"""

from __future__ import annotations

from aiohttp import web

from marathon_py.core import MarathonCore
from marathon_py.http.errors import json_response, unknown_route
from marathon_py.http.orchestrator import Orchestrator
from marathon_py.http.rest import REST, add_collection, choose, path_id, suffix, values
from marathon_py.outputs import Output

LAST_UNUSED_OFFERS = "lastUnusedOffers"


class QueueApi:
    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator

    def add_routes(self, app: web.Application) -> None:
        add_collection(app, "GET", "/v2/queue", self.index)
        app.router.add_route("*", f"/v2/queue/{REST}", self.dispatch)

    async def index(self, request: web.Request) -> web.Response:
        last_unused = LAST_UNUSED_OFFERS in values(request, "embed")
        items = self.orchestrator.core.queue(self.orchestrator.now(), last_unused=last_unused)
        return json_response({"queue": items})

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        found = suffix(request.match_info["rest"], "delay")
        if found is None or found[1] is not None:
            raise unknown_route()
        app_id = path_id(found[0])
        return await choose(request, {"DELETE": lambda: self.reset_delay(app_id)})

    async def reset_delay(self, app_id: str) -> web.Response:
        """``DELETE /v2/queue/{id}/delay``: 204; 404 unless the app has instances waiting to launch."""

        def decide(core: MarathonCore, now: float) -> tuple[None, list[Output]]:
            return None, core.reset_delay(app_id, now)

        await self.orchestrator.decide(decide)
        return web.Response(status=204)
