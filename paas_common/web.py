"""aiohttp helpers shared by the daemons' operator endpoints (master-py, agent-py)."""

from __future__ import annotations

import json
import re

from aiohttp import web

MESOS_VERSION = "1.11.0"  # the Mesos release whose APIs we serve (dotted integers: pymesos int()s each part)
BUILD = {"build_date": "2026-11-24", "build_time": 0, "build_user": "baremetal-paas"}
_CALLBACK = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$.]*$")


def json_view(request: web.Request, doc: object) -> web.Response:
    """JSON, or JSONP when ``?jsonp=`` names a callback (Mesos' web UI polls its endpoints that way)."""
    body = json.dumps(doc)
    callback = request.query.get("jsonp")
    if callback is None:
        return web.Response(text=body, content_type="application/json")
    if not _CALLBACK.match(callback):
        return web.Response(status=400, text=f"Invalid 'jsonp' callback: {callback!r}")
    return web.Response(text=f"{callback}({body});", content_type="text/javascript")
