"""The web UI: ``GET /`` → ``302 Location: /ui/`` and the static files of ``marathon_py/webui`` under
``/ui/`` (reference §1.1, §9.3: Marathon serves its UI at ``/ui/`` and the UI calls the API at ``../``).

A request names an entry of a whitelist built once from the directory (regular files with a known type,
no hidden files), never a filesystem path, so no URL — ``..``, encoded slashes, absolute paths — can reach
another file, and there is no directory listing. The files carry their content type explicitly (no
sniffing), ``Cache-Control: no-cache`` (overriding the API's ``no-store``: the browser may keep a copy but
revalidates it through ``ETag``/``Last-Modified``, so an upgraded daemon's UI is seen at once) and a
Content-Security-Policy that allows nothing but this origin: the UI loads no external resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from aiohttp import web

from marathon_py.http.errors import HttpError

UI_PATH = "/ui/"
STATIC_DIR = Path(__file__).resolve().parent.parent / "webui"
INDEX = "index.html"
CONTENT_TYPES: Mapping[str, str] = MappingProxyType({
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
})  # fmt: skip
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)
HEADERS: Mapping[str, str] = MappingProxyType({
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "same-origin",
})  # fmt: skip


def static_files(root: Path) -> dict[str, Path]:
    """The servable files of ``root`` by name: regular, not hidden, of a type in ``CONTENT_TYPES``."""
    if not root.is_dir():
        return {}
    return {
        p.name: p
        for p in sorted(root.iterdir())
        if p.is_file() and not p.name.startswith(".") and p.suffix in CONTENT_TYPES
    }


class WebUI:
    def __init__(self, root: Path = STATIC_DIR) -> None:
        self.files = static_files(root)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.redirect)
        app.router.add_get(UI_PATH.rstrip("/"), self.redirect)
        app.router.add_get(UI_PATH, self.serve)
        app.router.add_get(UI_PATH + "{name}", self.serve)

    async def redirect(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(UI_PATH)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info.get("name", INDEX)
        path = self.files.get(name)
        if path is None:
            raise HttpError(404, f"{UI_PATH}{name} not found")
        headers = {**HEADERS, "Content-Type": CONTENT_TYPES[path.suffix]}
        return web.FileResponse(path, headers=headers)


def add_routes(app: web.Application, root: Path = STATIC_DIR) -> None:
    """Serve the UI from ``root`` (the package's ``webui`` directory unless a test gives another)."""
    WebUI(root).add_routes(app)
