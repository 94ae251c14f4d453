"""marathon_py.http without an orchestrator: Marathon's error bodies (reference §1.5), basic auth (§1.3), the
leader stamp and unsettled leadership (§1.2), /ping, /v2/info, /v2/leader and /metrics (§2.6), the event bus
and /v2/events (§3), and the OpenAPI description, each through aiohttp's test client on loopback."""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from marathon_py.http import create_app
from marathon_py.http.auth import BasicAuth
from marathon_py.http.errors import AppLocked, NotFound, TooManyDeployments, dumps, error_middleware
from marathon_py.http.events import EventBus, light_form
from marathon_py.http.leader import LeaderProxy, Leadership
from marathon_py.http.openapi import document
from marathon_py.http.system import (
    MARATHON_CONFIG,
    InfoConfig,
    Metrics,
    SystemRoutes,
    info_json,
    ping_variant,
)
from marathon_py.validation import ValidationError, parse_json
from tests.support.prometheus import parse

T = TypeVar("T")
ME = "127.0.0.1:8080"
WAIT = 5.0  # every wait on the server is bounded by this


class Stub:
    """The daemon as the HTTP layer sees it (``system.Status``)."""

    def __init__(self, *states: Leadership) -> None:
        self.states = list(states) or [Leadership(True, ME)]
        self.calls = 0
        self.abdicated = 0

    def leadership(self) -> Leadership:
        self.calls += 1
        return self.states[0] if len(self.states) == 1 else self.states.pop(0)

    def framework_id(self) -> str | None:
        return "fw-1"

    def mesos_leader_ui_url(self) -> str | None:
        return "http://127.0.0.1:5050/"

    def metrics(self) -> Metrics:
        return Metrics({"marathon.apps.active.gauge": 3}, {"marathon.deployments.counter": 7})

    def abdicate(self) -> None:
        self.abdicated += 1


Route = tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]


def make_app(
    stub: Stub,
    routes: list[Route] | None = None,
    *,
    bus: EventBus | None = None,
    auth: BasicAuth | None = None,
    info: InfoConfig | None = None,
) -> web.Application:
    proxy = LeaderProxy(ME, stub.leadership, retries=3, retry_interval=0.001)
    bus = EventBus() if bus is None else bus
    system = SystemRoutes(stub, info, bus=bus, abdication_delay=0)
    app = create_app(proxy, system, bus, auth=auth, heartbeat_interval=0.05)
    for method, path, handler in routes or []:
        app.router.add_route(method, path, handler)
    return app


def serve(app: web.Application, body: Callable[[TestClient[Any, Any]], Awaitable[T]]) -> T:
    async def go() -> T:
        async with TestClient(TestServer(app)) as client:
            return await asyncio.wait_for(body(client), 30)

    return asyncio.run(go())


async def answer(resp: ClientResponse) -> tuple[int, Any]:
    return resp.status, await resp.json(content_type=None)


# ---------------------------------------------------------------- errors (§1.5)


def raising(exc: BaseException) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        raise exc

    return handler


async def parse_body(request: web.Request) -> web.Response:
    parse_json(await request.read())
    return web.Response()


async def aiohttp_json(request: web.Request) -> web.Response:
    await request.json()
    return web.Response()


def test_errors_leave_in_marathons_forms() -> None:
    routes: list[Route] = [
        ("POST", "/parse", parse_body),
        ("POST", "/aiohttp-json", aiohttp_json),
        (
            "GET",
            "/invalid",
            raising(ValidationError([("/cpus", "bad"), ("/cpus", "worse"), ("/mem", "bad")])),
        ),
        ("GET", "/locked", raising(AppLocked(["d1", "d2"]))),
        ("GET", "/missing", raising(NotFound.app("/x"))),
        ("GET", "/plan", raising(NotFound.deployment("d9"))),
        ("GET", "/limit", raising(TooManyDeployments(100))),
        ("GET", "/boom", raising(RuntimeError("kaput"))),
        ("GET", "/timeout", raising(TimeoutError())),
        ("GET", "/moved", raising(web.HTTPFound("/elsewhere"))),
    ]

    async def body(client: TestClient[Any, Any]) -> None:
        status, doc = await answer(await client.post("/parse", data=b'{"id": '))
        assert status == 400 and doc["message"] == "Invalid JSON" and "line: 1" in doc["details"]
        assert await answer(await client.post("/parse", data=b"")) == (
            400,
            {
                "message": "Please specify data in JSON format",
                "details": "No content to map due to end-of-input",
            },
        )
        status, doc = await answer(await client.post("/aiohttp-json", data=b"[1,"))
        assert status == 400 and doc["message"] == "Invalid JSON"
        assert await answer(await client.get("/invalid")) == (
            422,
            {
                "message": "Object is not valid",
                "details": [
                    {"path": "/cpus", "errors": ["bad", "worse"]},
                    {"path": "/mem", "errors": ["bad"]},
                ],
            },
        )
        status, doc = await answer(await client.get("/locked"))
        assert status == 409 and doc["deployments"] == [{"id": "d1"}, {"id": "d2"}]
        assert doc["message"].startswith("App is locked by one or more deployments.")
        assert await answer(await client.get("/missing")) == (404, {"message": "App '/x' does not exist"})
        assert await answer(await client.get("/plan")) == (
            404,
            {"message": "DeploymentPlan d9 does not exist"},
        )
        status, doc = await answer(await client.get("/limit"))
        assert status == 403 and doc["message"].startswith("Max number (100) of running deployments")
        resp = await client.get("/boom")
        text = await resp.text()
        assert resp.status == 500 and json.loads(text) == {"message": "kaput"} and "Traceback" not in text
        assert resp.content_type == "application/json"
        assert (await answer(await client.get("/timeout")))[0] == 503
        resp = await client.get("/moved", allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == "/elsewhere"
        # Jersey's quirks: an unknown route is a 500, a known one with another method a 405
        assert await answer(await client.get("/v2/nothing")) == (500, {"message": "URI not found"})
        resp = await client.post("/v2/info")
        assert (
            await answer(resp) == (405, {"message": "Method Not Allowed"}) and "GET" in resp.headers["Allow"]
        )

    serve(make_app(Stub(), routes), body)


def test_answers_are_compact_utf8_json_whatever_the_values() -> None:
    doc = {"id": "/café", "cpus": 0.005, "labels": {"a": "b"}, "tasks": [], "ok": True, "none": None}
    assert dumps(doc) == json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    # what the fast encoder refuses, the standard one writes
    assert json.loads(dumps({"instances": 2**70, 7: "x"})) == {"instances": 2**70, "7": "x"}


# ---------------------------------------------------------------- auth (§1.3)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth_refuses_before_the_handler_runs() -> None:
    calls: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.json_response({"ok": True})

    auth = BasicAuth("admin:s3:cret", realm="Test")  # the user name ends at the first colon

    async def body(client: TestClient[Any, Any]) -> None:
        refused = (401, {"message": "Invalid username or password."})
        for headers in (
            {},
            basic("admin", "wrong"),
            basic("nobody", "s3:cret"),
            {"Authorization": "token=x"},
        ):
            resp = await client.get("/v2/thing", headers=headers)
            assert await answer(resp) == refused
            assert resp.headers["WWW-Authenticate"] == 'Basic realm="Test"'
        resp = await client.get("/v2/events", headers={"Accept": "text/event-stream"})
        assert resp.status == 401
        assert calls == []
        resp = await client.get("/v2/thing", headers=basic("admin", "s3:cret"))
        assert await answer(resp) == (200, {"ok": True}) and calls == ["/v2/thing"]

    serve(make_app(Stub(), [("GET", "/v2/thing", handler)], auth=auth), body)


@pytest.mark.parametrize("credentials", ["admin", "admin:", ":secret", ""])
def test_credentials_need_a_user_and_a_password(credentials: str) -> None:
    with pytest.raises(ValueError, match="user:password"):
        BasicAuth(credentials)


# ---------------------------------------------------------------- leadership (§1.2)


def test_the_leader_stamps_every_response() -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        for path in ("/ping", "/v2/nothing"):
            resp = await client.get(path)
            assert resp.headers["X-Marathon-Leader"] == f"http://{ME}"
            assert resp.headers["X-Frame-Options"] == "DENY"
            assert resp.headers["Cache-Control"] == "no-cache, no-store, must-revalidate"

    serve(make_app(Stub()), body)


def test_unsettled_leadership_waits_then_gives_502() -> None:
    unsettled = [Leadership(False, None), Leadership(False, ME)]
    stub = Stub(*unsettled * 10)

    async def body(client: TestClient[Any, Any]) -> None:
        assert await answer(await client.get("/ping")) == (
            502,
            {"message": "Could not determine the current leader"},
        )
        assert stub.calls >= 4  # the first look and three retries

    serve(make_app(stub), body)


def test_leadership_that_settles_within_the_retries_serves() -> None:
    stub = Stub(Leadership(False, None), Leadership(False, ME), Leadership(True, ME))

    async def body(client: TestClient[Any, Any]) -> None:
        resp = await client.get("/ping", headers={"Accept": "text/plain"})
        assert resp.status == 200 and await resp.text() == "pong"

    serve(make_app(stub), body)


# ---------------------------------------------------------------- system endpoints (§2.6)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, ("text/plain", "pong")),
        ("*/*", ("text/plain", "pong")),
        ("application/json", ("application/json", '"pong"')),
        ("application/json, */*;q=0.5", ("application/json", '"pong"')),
        ("text/html", ("text/html", "pong")),
        ("text/*", ("text/plain", "pong")),
        ("image/png", None),
        ("text/plain;q=0", None),
    ],
)
def test_ping_negotiates_like_system_resource(accept: str | None, expected: tuple[str, str] | None) -> None:
    assert ping_variant(accept) == expected


def test_ping_info_leader_and_metrics() -> None:
    stub = Stub()
    info = InfoConfig.of(marathon={"master": "zk://127.0.0.1:2181/mesos"}, http={"http_port": 18080})

    async def body(client: TestClient[Any, Any]) -> None:
        resp = await client.get("/ping", headers={"Accept": "application/json"})
        assert await resp.text() == '"pong"' and resp.content_type == "application/json"
        assert (await client.get("/ping", headers={"Accept": "image/png"})).status == 204

        status, doc = await answer(await client.get("/v2/info"))
        assert status == 200
        assert set(doc) == {
            "name", "version", "buildref", "elected", "leader", "frameworkId",
            "marathon_config", "zookeeper_config", "http_config",
        }  # fmt: skip
        assert (doc["name"], doc["version"], doc["elected"], doc["leader"]) == (
            "marathon",
            "1.10.26",
            True,
            ME,
        )
        assert doc["frameworkId"] == "fw-1"
        assert set(doc["marathon_config"]) == set(MARATHON_CONFIG)
        assert doc["marathon_config"]["master"] == "zk://127.0.0.1:2181/mesos"
        assert doc["marathon_config"]["mesos_leader_ui_url"] == "http://127.0.0.1:5050/"
        assert doc["http_config"] == {"http_port": 18080, "https_port": 8443}
        assert doc["zookeeper_config"]["zk_max_versions"] == 50

        assert await answer(await client.get("/v2/leader")) == (200, {"leader": ME})
        assert await answer(await client.delete("/v2/leader")) == (200, {"message": "Leadership abdicated"})
        for _ in range(1000):  # the abdication is scheduled after the answer
            if stub.abdicated:
                break
            await asyncio.sleep(0.005)
        assert stub.abdicated == 1

        status, doc = await answer(await client.get("/metrics"))
        assert status == 200 and doc["version"] == "4.0.0"
        assert doc["gauges"]["marathon.apps.active.gauge"] == {"value": 3.0}
        assert doc["gauges"]["marathon.http.event-streams.active.gauge"] == {"value": 0.0}
        assert doc["gauges"]["marathon.uptime.gauge.seconds"]["value"] >= 0
        assert doc["counters"] == {"marathon.deployments.counter": {"count": 7}}
        assert doc["histograms"] == doc["meters"] == doc["timers"] == {}

        resp = await client.get("/metrics/prometheus")
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        metrics = parse(await resp.text())
        assert metrics["marathon_apps_active_gauge"].type == "gauge"
        assert metrics["marathon_apps_active_gauge"].value == 3.0
        assert metrics["marathon_deployments_counter"].type == "counter"
        assert not any(name.startswith("mesos_") for name in metrics)

    serve(make_app(stub, info=info), body)


def test_no_leader_and_a_standby_cannot_abdicate() -> None:
    stub = Stub(Leadership(True, None))  # a state the election never reports, to reach the handler's 404
    system = SystemRoutes(stub)
    app = web.Application()
    system.add_routes(app)
    app.middlewares.append(error_middleware)

    async def body(client: TestClient[Any, Any]) -> None:
        assert await answer(await client.get("/v2/leader")) == (404, {"message": "There is no leader"})
        stub.states = [Leadership(False, "127.0.0.1:9")]
        assert await answer(await client.delete("/v2/leader")) == (404, {"message": "There is no leader"})
        assert stub.abdicated == 0

    serve(app, body)


# marathon-python 0.13.0 (marathon/models/info.py) builds MarathonInfo and its parts with cls(**json): a key
# outside these parameter lists is a TypeError in get_info().
CLIENT_ACCEPTS = {
    "info": "event_subscriber framework_id http_config leader marathon_config name version elected "
    "zookeeper_config buildref",
    "marathon_config": "checkpoint executor failover_timeout framework_name ha hostname "
    "leader_proxy_connection_timeout_ms leader_proxy_read_timeout_ms local_port_min local_port_max "
    "maintenance_mode master mesos_leader_ui_url mesos_role mesos_user new_group_enforce_role "
    "webui_url reconciliation_initial_delay reconciliation_interval task_launch_timeout "
    "marathon_store_timeout task_reservation_timeout features access_control_allow_origin "
    "decline_offer_duration default_network_name env_vars_prefix launch_token "
    "launch_token_refresh_interval max_instances_per_offer mesos_bridge_name "
    "mesos_heartbeat_failure_threshold mesos_heartbeat_interval min_revive_offers_interval "
    "offer_matching_timeout on_elected_prepare_timeout revive_offers_for_new_apps "
    "revive_offers_repetitions scale_apps_initial_delay scale_apps_interval store_cache "
    "task_launch_confirm_timeout task_lost_expunge_initial_delay task_lost_expunge_interval",
    "zookeeper_config": "zk zk_future_timeout zk_hosts zk_max_versions zk_path zk_session_timeout zk_state "
    "zk_timeout zk_connection_timeout zk_compression zk_compression_threshold zk_max_node_size",
    "http_config": "assets_path http_port https_port",
}


def test_info_has_only_keys_marathon_python_accepts() -> None:
    doc = info_json(InfoConfig(), Leadership(True, ME), None, None)
    snake = {re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower() for key in doc}
    assert snake <= set(CLIENT_ACCEPTS["info"].split())
    for part in ("marathon_config", "zookeeper_config", "http_config"):
        assert set(doc[part]) <= set(CLIENT_ACCEPTS[part].split()), part


def test_info_refuses_keys_marathon_python_would_reject() -> None:
    with pytest.raises(ValueError, match="event_subscriber"):
        InfoConfig.of(marathon={"event_subscriber": "http_callback"})
    with pytest.raises(ValueError, match="zk_hosts_x"):
        InfoConfig.of(zookeeper={"zk_hosts_x": "a"})


# ---------------------------------------------------------------- the event bus (§3)


def deployment_info(plan_id: str) -> dict[str, Any]:
    plan = {"id": plan_id, "original": {"id": "/"}, "target": {"id": "/"}, "steps": [], "version": "v"}
    return {"plan": plan, "currentStep": {"actions": []}, "eventType": "deployment_info", "timestamp": "t"}


def drain(sub: Any) -> list[dict[str, Any]]:
    """The events queued for a subscriber, without waiting."""
    frames = b"".join(sub._backlog).decode()
    sub._backlog.clear()
    return [json.loads(m) for m in re.findall(r"^data: (.*)\r$", frames, re.M)]


def test_the_bus_filters_and_picks_the_plan_format() -> None:
    bus = EventBus(clock=lambda: 1700000000.5)
    everything = bus.subscribe("10.0.0.1")
    only_deployments = bus.subscribe("10.0.0.2", ["deployment_info"], light=True)
    attached = drain(everything)
    assert attached == [
        {
            "remoteAddress": "10.0.0.1",
            "eventType": "event_stream_attached",
            "timestamp": "2023-11-14T22:13:20.500Z",
        },
        {
            "remoteAddress": "10.0.0.2",
            "eventType": "event_stream_attached",
            "timestamp": "2023-11-14T22:13:20.500Z",
        },
    ]
    assert drain(only_deployments) == []

    bus.publish({"eventType": "api_post_event", "timestamp": "t"})
    full = deployment_info("p1")
    bus.publish(light_form(full), full)  # as outputs.Event carries it: light event, full form beside
    bus.publish(full)  # a producer that hands the full form only
    got = drain(everything)
    assert [e["eventType"] for e in got] == ["api_post_event", "deployment_info", "deployment_info"]
    assert "original" in got[1]["plan"] and "original" in got[2]["plan"]
    light = drain(only_deployments)
    assert [set(e["plan"]) for e in light] == [{"id", "steps", "version"}] * 2

    bus.unsubscribe(only_deployments)
    assert len(bus) == 1
    assert [e["eventType"] for e in drain(everything)] == ["event_stream_detached"]


def test_a_full_backlog_drops_that_subscriber_only() -> None:
    bus = EventBus(max_outstanding=3)
    slow, fast = bus.subscribe("10.0.0.1"), bus.subscribe("10.0.0.2")
    dropped: list[str] = []
    slow.on_drop = lambda: dropped.append(slow.remote)
    drain(fast), drain(slow)
    for i in range(5):
        bus.publish({"eventType": "api_post_event", "timestamp": str(i)})
        assert len(drain(fast)) == 1 + (i == 3)  # the fourth overflows the slow one, which detaches
    assert dropped == ["10.0.0.1"] and slow.dropped and len(bus) == 1
    assert asyncio.run(slow.next_batch(0.01)) is None


def test_closing_the_bus_ends_every_stream_and_refuses_new_ones() -> None:
    bus = EventBus()
    subs = [bus.subscribe("a"), bus.subscribe("b")]
    bus.close()
    assert all(s.dropped for s in subs) and len(bus) == 0
    with pytest.raises(Exception, match="no event stream") as info:
        bus.subscribe("c")
    assert getattr(info.value, "status", None) == 503


# ---------------------------------------------------------------- /v2/events (§3)

SSE = {"Accept": "text/event-stream"}


async def next_frame(resp: ClientResponse) -> tuple[str, str]:
    """``("comment", text)`` for a heartbeat, else ``(eventType, data)``."""

    async def read() -> tuple[str, str]:
        event = data = None
        while True:
            raw = await resp.content.readline()
            if not raw:
                raise EOFError("stream ended")
            line = raw.decode().rstrip("\r\n")
            if line.startswith(":") and event is None:
                return "comment", line[1:]
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data = line[len("data: ") :]
            elif not line and event is not None and data is not None:
                return event, data

    return await asyncio.wait_for(read(), WAIT)


async def next_event(resp: ClientResponse) -> dict[str, Any]:
    while True:
        kind, data = await next_frame(resp)
        if kind != "comment":
            doc: dict[str, Any] = json.loads(data)
            assert doc["eventType"] == kind
            return doc


def test_event_streams_filter_format_heartbeat_and_detach() -> None:
    bus = EventBus()

    async def body(client: TestClient[Any, Any]) -> None:
        assert await answer(await client.get("/v2/events")) == (
            405,
            {"message": "HTTP method GET is not supported by this URL"},
        )
        everything = await client.get("/v2/events", headers=SSE)
        assert everything.status == 200 and everything.content_type == "text/event-stream"
        assert (await next_event(everything))["eventType"] == "event_stream_attached"

        query = "event_type=deployment_info&event_type=event_stream_detached&plan-format=light"
        light = await client.get(
            f"/v2/events?{query}", headers={"Accept": "application/json, text/event-stream"}
        )
        assert light.status == 200
        attached = await next_event(everything)  # the second stream is subscribed once the first hears of it
        assert attached["eventType"] == "event_stream_attached" and attached["remoteAddress"] == "127.0.0.1"

        full = deployment_info("p1")
        bus.publish({"eventType": "api_post_event", "timestamp": "t"})
        bus.publish(light_form(full), full)
        assert (await next_event(everything))["eventType"] == "api_post_event"
        assert (await next_event(everything))["plan"]["original"] == {"id": "/"}
        got = await next_event(light)
        assert got["eventType"] == "deployment_info" and "original" not in got["plan"]

        assert await next_frame(light) == ("comment", "")  # heartbeats when nothing happens

        everything.close()  # the server notices at its next write and publishes the detach
        assert (await next_event(light))["eventType"] == "event_stream_detached"
        assert len(bus) == 1
        light.close()

    serve(make_app(Stub(), bus=bus), body)


# ---------------------------------------------------------------- OpenAPI


def test_openapi_describes_the_v2_api() -> None:
    async def body(client: TestClient[Any, Any]) -> dict[str, Any]:
        status, doc = await answer(await client.get("/openapi.json"))
        assert status == 200
        return doc  # type: ignore[no-any-return]

    doc = serve(make_app(Stub()), body)
    assert doc == json.loads(json.dumps(document()))
    assert doc["openapi"].startswith("3.0")
    v2 = ("apps", "groups", "deployments", "tasks", "queue", "info", "leader", "events")
    assert {f"/v2/{name}" for name in v2} | {"/ping", "/metrics"} <= set(doc["paths"])
    operation_ids: list[str] = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert method in {"get", "put", "post", "delete", "patch"}
            operation_ids.append(op["operationId"])
            assert op["responses"] and all(re.fullmatch(r"[1-5]\d\d", s) for s in op["responses"])
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"\{(\w+)\}", path)), (path, method)
    assert len(operation_ids) == len(set(operation_ids))
    schemas = doc["components"]["schemas"]
    for ref in re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(doc)):
        assert ref in schemas
    try:
        validator = importlib.import_module("openapi_spec_validator")
    except ImportError:
        return  # not a dependency; the checks above are structural only
    validator.validate(doc)
