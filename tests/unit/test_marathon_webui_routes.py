"""marathon_py.http.webui through aiohttp's test client, inside the production middleware stack: ``/`` and
``/ui`` redirect to ``/ui/`` (reference §1.1), the UI's files leave with explicit content types and
revalidating cache headers, and nothing but the whitelisted files can be reached (no listing, no
traversal, no hidden or unknown-type files)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from marathon_py.http import create_app, webui
from marathon_py.http.events import EventBus
from marathon_py.http.leader import LeaderProxy, Leadership
from marathon_py.http.system import Metrics, SystemRoutes

T = TypeVar("T")
ME = "127.0.0.1:8080"


class Leading:
    """A daemon that leads (``system.Status``): every request is served here, none proxied."""

    def leadership(self) -> Leadership:
        return Leadership(True, ME)

    def framework_id(self) -> str | None:
        return None

    def mesos_leader_ui_url(self) -> str | None:
        return None

    def metrics(self) -> Metrics:
        return Metrics()

    def abdicate(self) -> None:
        pass


def make_app(root: Path | None = None) -> web.Application:
    bus = EventBus()
    app = create_app(LeaderProxy(ME, Leading().leadership), SystemRoutes(Leading(), bus=bus), bus)
    if root is None:
        webui.add_routes(app)
    else:
        webui.add_routes(app, root)
    return app


def serve(app: web.Application, body: Callable[[TestClient[Any, Any]], Awaitable[T]]) -> T:
    async def go() -> T:
        async with TestClient(TestServer(app)) as client:
            return await asyncio.wait_for(body(client), 30)

    return asyncio.run(go())


def test_root_and_bare_ui_redirect_to_the_ui() -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        for path in ("/", "/ui"):
            resp = await client.get(path, allow_redirects=False)
            assert (resp.status, resp.headers["Location"]) == (302, "/ui/")
        resp = await client.get("/")
        assert resp.status == 200 and str(resp.url).endswith("/ui/")
        assert "<title>Marathon</title>" in await resp.text()

    serve(make_app(), body)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/ui/", "text/html"),
        ("/ui/index.html", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
    ],
)
def test_files_have_their_type_and_revalidating_cache_headers(path: str, content_type: str) -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        resp = await client.get(path)
        assert resp.status == 200
        assert resp.content_type == content_type
        assert resp.charset == "utf-8"
        assert resp.headers["Cache-Control"] == "no-cache"  # not the API's no-store
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        etag = resp.headers["ETag"]
        again = await client.get(path, headers={"If-None-Match": etag})
        assert again.status == 304
        head = await client.head(path)
        assert head.status == 200 and head.content_type == content_type

    serve(make_app(), body)


def test_the_shipped_ui_references_only_its_own_files() -> None:
    """Every file index.html and the modules load is served, and no file names another origin (the UI
    works offline)."""
    files = webui.static_files(webui.STATIC_DIR)
    loaded = {"index.html"}
    for path in files.values():
        text = path.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path.name
        loaded |= set(re.findall(r'(?:src|href)="([\w.-]+\.(?:js|css))"', text))
        loaded |= set(re.findall(r'from "\./([\w.-]+\.js)"', text))
    assert {"app.js", "style.css", "views.js"} <= loaded
    assert loaded <= set(files)


@pytest.mark.parametrize(
    "path",
    [
        "/ui/missing.js",
        "/ui/INDEX.HTML",
        "/ui/..%2Fhttp%2Fwebui.py",
        "/ui/%2e%2e%2fhttp%2fwebui.py",
        "/ui/%2e%2e/http/webui.py",
        "/ui/..%5c..%5c__init__.py",
        "/ui/%2Fetc%2Fpasswd",
        "/ui/.hidden",
        "/ui/notes.txt",
        "/ui/sub",
        "/ui/sub/",
        "/ui/sub/inner.js",
        "/ui/index.html%00.js",
        "/ui//etc/passwd",
    ],
)
def test_nothing_outside_the_whitelist_is_served(tmp_path: Path, path: str) -> None:
    (tmp_path / "index.html").write_text("<title>Marathon</title>")
    (tmp_path / ".hidden").write_text("secret")
    (tmp_path / "notes.txt").write_text("secret")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inner.js").write_text("secret")

    async def body(client: TestClient[Any, Any]) -> None:
        resp = await client.get(URL(path, encoded=True))  # as sent: the client must not normalize it
        text = await resp.text()
        assert resp.status in (404, 500), (resp.status, text)  # 500: no route at all (Marathon's quirk)
        assert "secret" not in text and "import" not in text
        assert resp.content_type == "application/json"

    serve(make_app(tmp_path), body)


def test_dot_segments_are_resolved_before_routing() -> None:
    """``/ui/../v2/info`` is ``/v2/info`` once normalized: it cannot escape into the filesystem."""

    async def body(client: TestClient[Any, Any]) -> None:
        resp = await client.get("/ui/../ui/app.js")
        assert resp.status == 200 and resp.content_type == "text/javascript"
        resp = await client.get("/ui/../marathon_py/http/webui.py")
        assert resp.status == 500 and (await resp.json())["message"] == "URI not found"

    serve(make_app(), body)


def test_unknown_file_is_a_json_404() -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        resp = await client.get("/ui/nope.js")
        assert resp.status == 404
        assert await resp.json() == {"message": "/ui/nope.js not found"}
        assert resp.headers["Cache-Control"].startswith("no-cache, no-store")

    serve(make_app(), body)


def test_a_missing_directory_serves_nothing(tmp_path: Path) -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        assert (await client.get("/ui/")).status == 404
        assert (await client.get("/", allow_redirects=False)).status == 302

    serve(make_app(tmp_path / "absent"), body)
