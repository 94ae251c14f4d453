"""``/ping``, ``/v2/info``, ``/v2/leader`` and ``/metrics`` (reference §2.6; ``api/SystemResource.scala``,
``api/v2/InfoResource.scala``, ``api/v2/LeaderResource.scala``, ``raml/MetricsConversion.scala``).

``/v2/info`` carries exactly the keys Marathon 1.10 emits: marathon-python builds ``MarathonInfo`` and its
config objects with ``cls(**json)`` and fails on any other key (§9.1), and reads ``version`` as a Marathon
version. Values the daemon does not set keep Marathon's defaults (``null`` where Marathon has no default).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from aiohttp import web

from marathon_py.http.errors import HttpError, json_response
from marathon_py.http.events import EventBus
from marathon_py.http.leader import Leadership
from paas_common import prometheus

NAME = "marathon"
VERSION = "1.10.26"  # the Marathon release whose API we serve; version-gated clients compare it
BUILDREF = "baremetal-paas"
ABDICATION_DELAY = 0.5  # LeaderResource.abdicationDelay: the answer leaves before leadership does
NO_LEADER = "There is no leader"

MARATHON_CONFIG: Mapping[str, Any] = MappingProxyType({
    "access_control_allow_origin": None, "checkpoint": True, "decline_offer_duration": 120000,
    "default_network_name": None, "env_vars_prefix": None, "executor": "//cmd", "failover_timeout": 604800,
    "features": [], "framework_name": "marathon", "ha": True, "hostname": None, "launch_token": 100,
    "launch_token_refresh_interval": 30000, "leader_proxy_connection_timeout_ms": 5000,
    "leader_proxy_read_timeout_ms": 10000, "local_port_max": 20000, "local_port_min": 10000, "master": None,
    "max_instances_per_offer": 5, "mesos_bridge_name": "mesos-bridge", "mesos_heartbeat_failure_threshold": 5,
    "mesos_heartbeat_interval": 15000, "mesos_leader_ui_url": None, "mesos_role": "*", "mesos_user": None,
    "new_group_enforce_role": "Off", "min_revive_offers_interval": 5000, "offer_matching_timeout": 3000,
    "on_elected_prepare_timeout": 180000, "reconciliation_initial_delay": 15000,
    "reconciliation_interval": 600000, "scale_apps_initial_delay": 15000, "scale_apps_interval": 300000,
    "store_cache": True, "task_launch_confirm_timeout": 300000, "task_launch_timeout": 300000,
    "task_lost_expunge_initial_delay": 300000, "task_lost_expunge_interval": 30000,
    "task_reservation_timeout": 20000, "webui_url": None, "maintenance_mode": True,
})  # fmt: skip
ZOOKEEPER_CONFIG: Mapping[str, Any] = MappingProxyType({
    "zk": None, "zk_compression": True, "zk_compression_threshold": 65536, "zk_connection_timeout": 10000,
    "zk_max_node_size": 1024000, "zk_max_versions": 50, "zk_session_timeout": 10000, "zk_timeout": 10000,
})  # fmt: skip
HTTP_CONFIG: Mapping[str, Any] = MappingProxyType({"http_port": 8080, "https_port": 8443})


def _merged(defaults: Mapping[str, Any], given: Mapping[str, Any], what: str) -> dict[str, Any]:
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValueError(f"unknown {what} keys (marathon-python would reject them): {sorted(unknown)}")
    return {**defaults, **given}


@dataclass(frozen=True)
class InfoConfig:
    """The configuration ``/v2/info`` shows; ``InfoConfig.of`` checks the keys against Marathon's."""

    marathon_config: Mapping[str, Any] = field(default_factory=lambda: MARATHON_CONFIG)
    zookeeper_config: Mapping[str, Any] = field(default_factory=lambda: ZOOKEEPER_CONFIG)
    http_config: Mapping[str, Any] = field(default_factory=lambda: HTTP_CONFIG)

    @classmethod
    def of(
        cls,
        marathon: Mapping[str, Any] | None = None,
        zookeeper: Mapping[str, Any] | None = None,
        http: Mapping[str, Any] | None = None,
    ) -> InfoConfig:
        return cls(
            _merged(MARATHON_CONFIG, marathon or {}, "marathon_config"),
            _merged(ZOOKEEPER_CONFIG, zookeeper or {}, "zookeeper_config"),
            _merged(HTTP_CONFIG, http or {}, "http_config"),
        )


@dataclass(frozen=True)
class Metrics:
    """Dropwizard-style figures keyed as Marathon names them (``marathon.apps.active.gauge``)."""

    gauges: Mapping[str, float] = field(default_factory=dict)
    counters: Mapping[str, int] = field(default_factory=dict)


class Status(Protocol):
    """What these endpoints need from the daemon."""

    def leadership(self) -> Leadership: ...

    def framework_id(self) -> str | None: ...

    def mesos_leader_ui_url(self) -> str | None: ...

    def metrics(self) -> Metrics: ...

    def abdicate(self) -> None:
        """Give up leadership (the daemon exits and its supervisor restarts it, §2.6)."""
        ...


def info_json(
    config: InfoConfig, leadership: Leadership, framework_id: str | None, mesos_ui: str | None
) -> dict[str, Any]:
    return {
        "name": NAME,
        "version": VERSION,
        "buildref": BUILDREF,
        "elected": leadership.leading,
        "leader": leadership.leader,
        "frameworkId": framework_id,
        "marathon_config": {**config.marathon_config, "mesos_leader_ui_url": mesos_ui},
        "zookeeper_config": dict(config.zookeeper_config),
        "http_config": dict(config.http_config),
    }


def metrics_json(metrics: Metrics) -> dict[str, Any]:
    """``NewMetrics`` of ``MetricsConversion``: version 4.0.0 and the five registries."""
    return {
        "version": "4.0.0",
        "counters": {k: {"count": v} for k, v in sorted(metrics.counters.items())},
        "gauges": {k: {"value": float(v)} for k, v in sorted(metrics.gauges.items())},
        "histograms": {},
        "meters": {},
        "timers": {},
    }


def metrics_prometheus(metrics: Metrics) -> str:
    """Prometheus text with Marathon's names (``marathon_apps_active_gauge``)."""
    snapshot = {**metrics.gauges, **metrics.counters}
    return prometheus.render(snapshot, counters=metrics.counters.keys(), prefix="")


_PING = [("text/plain", "pong"), ("text/html", "pong"), ("application/json", '"pong"')]


def _accepted(accept: str | None) -> list[tuple[float, str]]:
    ranges: list[tuple[float, str]] = []
    for part in (accept or "*/*").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media:
            ranges.append((q, media.lower()))
    return ranges


def ping_variant(accept: str | None) -> tuple[str, str] | None:
    """``(content type, body)`` as ``SystemResource.ping`` negotiates it (JSON gets ``"pong"``, any text
    type plain ``pong``); None → 204. Higher quality wins, then the more specific range, then our order."""
    best: tuple[tuple[float, int, int], str, str] | None = None
    for q, media in _accepted(accept):
        kind, _, sub = media.partition("/")
        specificity = 0 if media == "*/*" else 1 if sub == "*" else 2
        fitting = [
            (order, content_type, body)
            for order, (content_type, body) in enumerate(_PING)
            if media == "*/*" or content_type == media or (sub == "*" and content_type.startswith(f"{kind}/"))
        ]
        if not fitting and kind == "text":
            fitting = [(0, *_PING[0])]
        for order, content_type, body in fitting:
            key = (q, specificity, -order)
            if q > 0 and (best is None or key > best[0]):
                best = (key, content_type, body)
    return None if best is None else (best[1], best[2])


class SystemRoutes:
    def __init__(
        self,
        status: Status,
        info: InfoConfig | None = None,
        *,
        bus: EventBus | None = None,
        abdication_delay: float = ABDICATION_DELAY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.status = status
        self.info = info or InfoConfig()
        self.bus = bus
        self.abdication_delay = abdication_delay
        self.clock = clock
        self.started = clock()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/ping", self.ping)
        app.router.add_get("/v2/info", self.get_info)
        app.router.add_get("/v2/leader", self.get_leader)
        app.router.add_delete("/v2/leader", self.delete_leader)
        app.router.add_get("/metrics", self.get_metrics)
        app.router.add_get("/metrics/prometheus", self.get_prometheus)

    async def ping(self, request: web.Request) -> web.Response:
        variant = ping_variant(request.headers.get("Accept"))
        if variant is None:
            return web.Response(status=204)
        return web.Response(text=variant[1], content_type=variant[0])

    async def get_info(self, request: web.Request) -> web.Response:
        s = self.status
        return json_response(info_json(self.info, s.leadership(), s.framework_id(), s.mesos_leader_ui_url()))

    async def get_leader(self, request: web.Request) -> web.Response:
        leader = self.status.leadership().leader
        if leader is None:
            raise HttpError(404, NO_LEADER)
        return json_response({"leader": leader})

    async def delete_leader(self, request: web.Request) -> web.Response:
        if not self.status.leadership().leading:
            raise HttpError(404, NO_LEADER)
        if "backup" in request.query or "restore" in request.query:
            raise HttpError(400, "backup and restore on abdication are not supported")
        asyncio.get_running_loop().call_later(self.abdication_delay, self.status.abdicate)
        return json_response({"message": "Leadership abdicated"})

    def metrics(self) -> Metrics:
        """The daemon's figures plus the ones this layer knows (uptime, open event streams)."""
        given = self.status.metrics()
        gauges = {"marathon.uptime.gauge.seconds": self.clock() - self.started}
        if self.bus is not None:
            gauges["marathon.http.event-streams.active.gauge"] = float(len(self.bus))
        return Metrics({**gauges, **given.gauges}, given.counters)

    async def get_metrics(self, request: web.Request) -> web.Response:
        return json_response(metrics_json(self.metrics()))

    async def get_prometheus(self, request: web.Request) -> web.Response:
        text = metrics_prometheus(self.metrics())
        return web.Response(body=text.encode(), headers={"Content-Type": prometheus.CONTENT_TYPE})
