"""marathon_py's REST API plumbing that does not depend on the orchestrator (reference §1, §2.6, §3).

``create_app`` assembles it in Marathon's order: the error mapper outermost (every failure leaves as
Marathon's JSON error), then basic authentication (checked on a standby before it proxies), then the leader
filter (serve, proxy or redirect), then the routes: ``/ping``, ``/v2/info``, ``/v2/leader``, ``/metrics*``,
``/v2/events`` and ``/openapi.json``. The apps/groups/deployments/tasks/queue handlers are added to the
returned application before it starts. Every response carries Marathon's cache-disabling headers
(``api/CacheDisablingFilter.scala``).
"""

from __future__ import annotations

from aiohttp import web

from marathon_py.http import openapi
from marathon_py.http.auth import BasicAuth
from marathon_py.http.errors import error_middleware
from marathon_py.http.events import HEARTBEAT_INTERVAL, EventBus, EventStream
from marathon_py.http.leader import LeaderProxy
from marathon_py.http.system import SystemRoutes

CLIENT_MAX_SIZE = 8 * 1024 * 1024  # request bodies (a group of many apps is large); Jetty has no limit
_NO_CACHE = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache", "Expires": "0"}


async def _no_cache(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in _NO_CACHE.items():
        response.headers.setdefault(name, value)


def create_app(
    proxy: LeaderProxy,
    system: SystemRoutes,
    bus: EventBus,
    *,
    auth: BasicAuth | None = None,
    heartbeat_interval: float = HEARTBEAT_INTERVAL,
    client_max_size: int = CLIENT_MAX_SIZE,
) -> web.Application:
    middlewares = [error_middleware, *([auth.middleware] if auth else []), proxy.middleware]
    app = web.Application(middlewares=middlewares, client_max_size=client_max_size)
    app.on_response_prepare.append(_no_cache)
    proxy.install(app)
    system.add_routes(app)
    EventStream(bus, heartbeat_interval).add_routes(app)
    openapi.add_routes(app)
    return app
