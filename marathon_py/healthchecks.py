"""App health checks: defaults, the per-protocol shape Marathon stores and renders, and their rules (§6).

Normalized checks carry every default (marathon-lb reads ``protocol``, ``path``, ``portIndex``/``port``,
``timeoutSeconds``, ``intervalSeconds``, ``gracePeriodSeconds``, ``maxConsecutiveFailures``, §9.2):

* all: ``gracePeriodSeconds`` 300, ``intervalSeconds`` 60, ``timeoutSeconds`` 20,
  ``maxConsecutiveFailures`` 3, ``delaySeconds`` 15, ``ipProtocol`` ``IPv4``;
* ``HTTP``/``HTTPS``: ``ignoreHttp1xx`` false, ``path`` "/"; ``MESOS_HTTP(S)``: ``path`` "/";
* port-based checks: ``portIndex`` 0 unless ``port`` is given (the value Marathon reads back from its
  store, ``PortReference.fromProto``); ``COMMAND``: ``command`` only, ports ignored as Marathon does.

Marathon (Marathon-run) checks always render ``delaySeconds`` 15 and ``ipProtocol`` IPv4 whatever was posted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from marathon_py.validation import Violations

MARATHON_PROTOCOLS = ("HTTP", "HTTPS", "TCP")
MESOS_PROTOCOLS = ("COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP")
HTTP_PROTOCOLS = ("HTTP", "HTTPS", "MESOS_HTTP", "MESOS_HTTPS")
DEFAULT_DELAY = 15

PORT_INDEX_INVALID = (
    "Health check port indices must address an element of the ports array or container port mappings."
)
IP_PROTOCOL_LIMITATION = (
    "IPv6 can only be used for container type DOCKER and Mesos http/https/tcp health checks"
)
AT_MOST_ONE_MESOS = "AppDefinition can contain at most one Mesos health check"


def fill_port_index(checks: Sequence[dict[str, Any]]) -> None:
    """``normalizeHealthChecks`` (in place): ``portIndex`` 0 on port checks with neither port nor index.

    Marathon applies it before validation only when the app posted port definitions or has port
    mappings; ``to_model`` applies it to every check afterwards (its store reads checks back that way).
    """
    for check in checks:
        if check["protocol"] != "COMMAND" and "port" not in check and "portIndex" not in check:
            check["portIndex"] = 0


def to_model(check: dict[str, Any]) -> dict[str, Any]:
    """A read (RAML-defaulted) check in the shape Marathon keeps and renders for its protocol."""
    protocol = check["protocol"]
    shaped: dict[str, Any] = {
        "gracePeriodSeconds": check["gracePeriodSeconds"],
        "intervalSeconds": check["intervalSeconds"],
        "maxConsecutiveFailures": check["maxConsecutiveFailures"],
        "protocol": protocol,
        "ipProtocol": check["ipProtocol"] if protocol in MESOS_PROTOCOLS else "IPv4",
        "timeoutSeconds": check["timeoutSeconds"],
        "delaySeconds": check["delaySeconds"] if protocol in MESOS_PROTOCOLS else DEFAULT_DELAY,
    }
    if protocol == "COMMAND":
        shaped["command"] = {"value": check["command"]["value"]}
        return shaped
    if protocol in ("HTTP", "HTTPS"):
        shaped["ignoreHttp1xx"] = check.get("ignoreHttp1xx", False)
    if protocol in HTTP_PROTOCOLS:
        shaped["path"] = check.get("path", "/")
    if "port" in check:
        shaped["port"] = check["port"]
    if "portIndex" in check or "port" not in check:
        shaped["portIndex"] = check.get("portIndex", 0)
    return shaped


def shape_errors(check: dict[str, Any]) -> list[str]:
    """Combinations Marathon cannot convert (it fails them with a 500; we answer 422 with its text)."""
    protocol = check["protocol"]
    if "command" in check:
        if protocol != "COMMAND":
            return [f"illegal protocol {protocol} specified with command"]
        if "path" in check or "port" in check:
            return ["Invalid combination of HealthCheck parameters"]
    elif protocol == "COMMAND":
        return [f"illegal protocol {protocol} for non-command health check"]
    return []


def validate(
    checks: Sequence[dict[str, Any]], port_count: int, container_type: str | None, v: Violations
) -> None:
    """``validBasicAppDefinition``'s health-check rules on read checks (paths ``/healthChecks(i)``)."""
    for i, check in enumerate(checks):
        path = f"/healthChecks({i})"
        for message in shape_errors(check):
            v.add(path, message)
        if "command" not in check and check["protocol"] in MARATHON_PROTOCOLS:
            index = check.get("portIndex")
            ok = 0 <= index < port_count if index is not None else "port" in check or port_count == 1
            v.check(ok, path, PORT_INDEX_INVALID)
        mesos_http = check["protocol"] in ("MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP")
        v.check(
            check["ipProtocol"] == "IPv4" or (mesos_http and container_type == "DOCKER"),
            path,
            IP_PROTOCOL_LIMITATION,
        )
    commands = sum(1 for check in checks if "command" in check)
    mesos = sum(1 for check in checks if "command" in check or check["protocol"] in MESOS_PROTOCOLS)
    v.check(mesos - commands <= 1, "/", AT_MOST_ONE_MESOS)
