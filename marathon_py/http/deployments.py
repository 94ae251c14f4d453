"""``/v2/deployments`` (reference §2.3; ``api/v2/DeploymentsResource.scala``).

``DELETE`` without ``force`` rolls the deployment back: the core starts a new deployment reverting it
(forced over whatever it conflicts with) and the answer is that one's DeploymentResult; with
``force=true`` the deployment just stops where it is: 202 Accepted, no body (what the ``marathon`` client
expects).
"""

from __future__ import annotations

from aiohttp import web

from marathon_py import deployment as dp
from marathon_py.core import MarathonCore
from marathon_py.http.errors import json_response
from marathon_py.http.orchestrator import Orchestrator
from marathon_py.http.rest import add_collection, deployed, flag
from marathon_py.outputs import Output


class DeploymentsApi:
    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator

    def add_routes(self, app: web.Application) -> None:
        add_collection(app, "GET", "/v2/deployments", self.index)
        app.router.add_delete("/v2/deployments/{id}", self.cancel)

    async def index(self, request: web.Request) -> web.Response:
        return json_response(self.orchestrator.core.deployments())

    async def cancel(self, request: web.Request) -> web.Response:
        deployment_id, force = request.match_info["id"], flag(request, "force")

        def decide(core: MarathonCore, now: float) -> tuple[dp.DeploymentPlan | None, list[Output]]:
            return core.cancel_deployment(deployment_id, now, force=force)

        rollback = await self.orchestrator.decide(decide)
        return web.Response(status=202) if rollback is None else deployed(rollback)
