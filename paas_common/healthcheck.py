"""Mesos' ``HealthCheck`` (mesos.proto) validated, with its defaults filled in.

Shared by the master, which refuses a task with an invalid check (TASK_ERROR, as Mesos'
``validateHealthCheck`` at launch), and the agent, which runs the checks (``agent_py.health``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("COMMAND", "HTTP", "TCP")
MAX_TIMEOUT = 3600.0  # timeout_seconds 0 means "no timeout" in Mesos; every wait here stays bounded


class HealthCheckError(ValueError):
    """The HealthCheck is invalid; the message is Mesos' (``validateHealthCheck``)."""


@dataclass(frozen=True)
class HealthCheckSpec:
    """A validated HealthCheck with Mesos' defaults filled in."""

    kind: str  # COMMAND, HTTP or TCP
    delay: float = 15.0
    interval: float = 10.0
    timeout: float = 20.0
    consecutive_failures: int = 3
    grace_period: float = 10.0
    port: int = 0  # HTTP/TCP
    path: str = "/"
    scheme: str = "http"
    statuses: frozenset[int] = frozenset()
    command: Mapping[str, Any] = field(default_factory=dict)  # CommandInfo of a COMMAND check

    @property
    def probe_timeout(self) -> float:
        return self.timeout if self.timeout > 0 else MAX_TIMEOUT

    @classmethod
    def from_json(cls, doc: object) -> HealthCheckSpec:
        """A HealthCheck from its v1 JSON; HealthCheckError with Mesos' message when it is invalid."""
        if not isinstance(doc, dict):
            raise HealthCheckError("Expecting 'health_check' to be an object")
        kind = doc.get("type")
        if kind is None:
            raise HealthCheckError("HealthCheck must specify 'type'")
        if kind not in KINDS:
            raise HealthCheckError(f"'{kind}' is not a valid health check type")
        times = {
            key: _number(doc, key, default)
            for key, default in (
                ("delay_seconds", 15.0),
                ("interval_seconds", 10.0),
                ("timeout_seconds", 20.0),
                ("grace_period_seconds", 10.0),
            )
        }
        for key in ("delay_seconds", "grace_period_seconds", "interval_seconds", "timeout_seconds"):
            if times[key] < 0:
                raise HealthCheckError(f"Expecting '{key}' to be non-negative")
        failures = _number(doc, "consecutive_failures", 3)
        if failures < 0 or failures != int(failures):
            raise HealthCheckError("Expecting 'consecutive_failures' to be a non-negative integer")
        extra: dict[str, Any] = {}
        if kind == "COMMAND":
            extra["command"] = _command(doc.get("command"))
        elif kind == "HTTP":
            extra.update(_http(doc.get("http")))
        else:
            tcp = doc.get("tcp")
            if not isinstance(tcp, dict):
                raise HealthCheckError("Expecting 'tcp' to be set for TCP health check")
            extra["port"] = _port(tcp, "tcp")
        return cls(
            kind=kind,
            delay=times["delay_seconds"],
            interval=times["interval_seconds"],
            timeout=times["timeout_seconds"],
            grace_period=times["grace_period_seconds"],
            consecutive_failures=int(failures),
            **extra,
        )


def _number(doc: Mapping[str, Any], key: str, default: float) -> float:
    value = doc.get(key, default)
    try:
        number = float(value)  # the JSON conventions accept numbers given as strings
    except (TypeError, ValueError):
        raise HealthCheckError(f"Expecting '{key}' to be a number") from None
    if not math.isfinite(number):
        raise HealthCheckError(f"Expecting '{key}' to be a finite number")
    return number


def _port(doc: Mapping[str, Any], what: str) -> int:
    port = doc.get("port")
    try:
        value = int(port)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise HealthCheckError(f"Expecting '{what}.port' to be set to a port number") from None
    if not 0 < value < 65536:
        raise HealthCheckError(f"Expecting '{what}.port' to be a port number, got {value}")
    return value


def _command(command: object) -> dict[str, Any]:
    if not isinstance(command, dict):
        raise HealthCheckError("Expecting 'command' to be set for COMMAND health check")
    if not isinstance(command.get("value"), str):
        kind = "'shell command'" if command.get("shell", True) else "'executable path'"
        raise HealthCheckError(f"Command health check must contain {kind}")
    return command


def _http(http: object) -> dict[str, Any]:
    if not isinstance(http, dict):
        raise HealthCheckError("Expecting 'http' to be set for HTTP health check")
    scheme = http.get("scheme", "http")
    if scheme not in ("http", "https"):
        raise HealthCheckError(f"Unsupported HTTP health check scheme: '{scheme}'")
    path = http.get("path", "/")
    if not isinstance(path, str) or not path.startswith("/"):
        raise HealthCheckError(f"The path '{path}' of HTTP health check must start with '/'")
    try:
        statuses = frozenset(int(s) for s in http.get("statuses") or [])
    except (TypeError, ValueError):
        raise HealthCheckError("Expecting 'http.statuses' to be HTTP status codes") from None
    return {"port": _port(http, "http"), "scheme": scheme, "path": path, "statuses": statuses}
