"""Ports and networks: the 1.4 → 1.5 migration and the defaults of the canonical form (§4.1).

Follows ``api/v2/AppNormalization.scala``: legacy ``ports``, ``ipAddress``, ``container.docker.network``
and ``container.docker.portMappings`` become ``portDefinitions``, ``networks`` and
``container.portMappings``; host mode gets one default port definition ``{port: 0, name: "default"}``,
other modes a default port mapping; bridge mode defaults unset host ports to 0. The order of the rules
is Marathon's and matters ("think twice before rearranging").
"""

from __future__ import annotations

import copy
from typing import Any

from marathon_py.validation import NormalizationError, Violations

MESOS_BRIDGE_NAME = "mesos-bridge"
PORT_NAMES_UNIQUE = "Port names must be unique."
MULTI_NETWORK_HOST_PORT = (
    "networkNames must be a single item list when hostPort is specified and more than 1 container network "
    "is defined"
)


def default_port_definition() -> dict[str, Any]:
    return {"port": 0, "labels": {}, "name": "default", "protocol": "tcp"}


def default_port_mapping(name: str | None = "default") -> dict[str, Any]:
    mapping: dict[str, Any] = {
        "containerPort": 0,
        "labels": {},
        "protocol": "tcp",
        "servicePort": 0,
        "networkNames": [],
    }
    if name is not None:
        mapping["name"] = name
    return mapping


def is_host(networks: list[dict[str, Any]]) -> bool:
    """Empty networks default to host mode later, so count them as host here."""
    return not networks or any(n["mode"] == "host" for n in networks)


def has_non_host(networks: list[dict[str, Any]]) -> bool:
    return any(n["mode"] != "host" for n in networks)


def translate_networks(app: dict[str, Any], bridge_name: str = MESOS_BRIDGE_NAME) -> list[dict[str, Any]]:
    """``NetworkTranslation``: ``networks`` from ``ipAddress`` and/or ``container.docker.network``."""
    ip = app.get("ipAddress")
    docker_net = ((app.get("container") or {}).get("docker") or {}).get("network")
    networks = app.get("networks") or []
    if ip is None and docker_net is None:
        return networks
    if networks:
        raise NormalizationError("cannot mix deprecated and canonical network APIs")
    labels = (ip or {}).get("labels", {})
    if docker_net is not None:
        if docker_net == "HOST":
            return [{"mode": "host", "labels": {}}]
        if docker_net == "BRIDGE":
            return [{"mode": "container/bridge", "labels": labels}]
        if docker_net == "USER":
            named = {"name": ip["networkName"]} if ip and "networkName" in ip else {}
            return [{"mode": "container", **named, "labels": labels}]
        raise NormalizationError(f"unsupported docker network type {docker_net}")
    name = (ip or {}).get("networkName")
    if name == bridge_name:
        return [{"mode": "container/bridge", "labels": labels}]
    return [{"mode": "container", **({"name": name} if name is not None else {}), "labels": labels}]


def _migrate_container(app: dict[str, Any], networks: list[dict[str, Any]], legacy_defs: Any) -> Any:
    container = copy.deepcopy(app.get("container"))
    if container is None and app.get("ipAddress") is not None:
        container = {"type": "MESOS", "volumes": []}
    if container is None:
        return None
    docker = container.get("docker")
    if docker is not None and "portMappings" in docker:  # migrateDockerPortMappings
        legacy = docker.pop("portMappings")
        if container.get("portMappings") and legacy:
            raise NormalizationError("cannot specify both portMappings and docker.portMappings")
        if not container.get("portMappings"):
            container["portMappings"] = legacy
    discovery = ((app.get("ipAddress") or {}).get("discovery") or {}).get("ports") or []
    if discovery:  # migrateIpDiscovery
        if container["type"] != "MESOS":
            raise NormalizationError(
                f"ipAddress.discovery.ports do not apply for container type {container['type']}"
            )
        if container.get("portMappings"):
            raise NormalizationError(
                "container.portMappings and ipAddress.discovery.ports must not both be set"
            )
        container["portMappings"] = [
            {
                **default_port_mapping(p["name"]),
                "containerPort": p["number"],
                "protocol": p["protocol"],
                "labels": p["labels"],
            }
            for p in discovery
        ]
    if docker is not None:
        docker.pop("network", None)  # dropDockerNetworks
    if is_host(networks):  # maybeDropPortMappings
        container.pop("portMappings", None)
    elif container.get("portMappings") is None:  # applyDefaultPortMappings
        container["portMappings"] = [default_port_mapping()]
    missing = len(legacy_defs or []) - len(container.get("portMappings") or [])
    if has_non_host(networks) and missing > 0:  # maybeAddPortMappings
        container["portMappings"] = container.get("portMappings", []) + [
            default_port_mapping(None) for _ in range(missing)
        ]
    return container


def migrate(app: dict[str, Any]) -> dict[str, Any]:
    """``forDeprecated``: the legacy networking fields of a read app in canonical form (a new dict)."""
    app = copy.deepcopy(app)
    networks = translate_networks(app)
    legacy_defs = app.get("portDefinitions")
    if legacy_defs is None and app.get("ports") is not None:
        legacy_defs = [{"port": p, "labels": {}, "protocol": "tcp"} for p in app["ports"]]
    app["container"] = _migrate_container(app, networks, legacy_defs)
    if app["container"] is None:
        del app["container"]
    if has_non_host(networks):  # applyDefaultPortDefinitions
        app.pop("portDefinitions", None)
    else:
        app["portDefinitions"] = legacy_defs if legacy_defs is not None else [default_port_definition()]
    app["networks"] = networks
    for key in ("ipAddress", "ports"):
        app.pop(key, None)
    return app


def finish(app: dict[str, Any], default_network_name: str | None) -> None:
    """``forPostValidation`` (in place): default networks and names, bridge host ports, requirePorts."""
    networks = app["networks"] or [{"mode": "host", "labels": {}}]
    for net in networks:
        if net["mode"] == "container" and "name" not in net:
            if default_network_name is None:
                raise NormalizationError("container network name is not defined")
            net["name"] = default_network_name
    app["networks"] = networks
    host = is_host(networks)
    if not host and "container" not in app:
        app["container"] = {"type": "MESOS", "volumes": [], "portMappings": [default_port_mapping()]}
    if not host:
        app["requirePorts"] = False
        if any(net["mode"] == "container/bridge" for net in networks):
            for mapping in app["container"].get("portMappings", []):
                mapping.setdefault("hostPort", 0)


def validate_legacy(app: dict[str, Any], v: Violations) -> None:
    """``validateOldAppAPI``: rules on the deprecated fields, before they are migrated."""
    container = app.get("container") or {}
    docker = container.get("docker")
    if docker is not None:
        v.check("credential" not in docker, "/container/docker/credential", "must be empty")
        if container["type"] == "MESOS":
            v.check("network" not in docker, "/container/docker/network", "must be empty")
            v.check(not docker["parameters"], "/container/docker/parameters", "must be empty")
            v.check(not docker.get("portMappings"), "/container/docker/portMappings", "must be empty")
        names = [m["name"] for m in docker.get("portMappings") or [] if "name" in m]
        v.check(len(names) == len(set(names)), "/container/docker/portMappings", PORT_NAMES_UNIQUE)
    ip = app.get("ipAddress")
    if ip is not None:
        v.check(
            not (container.get("type") == "DOCKER" and ip.get("discovery") is not None),
            "/ipAddress",
            "ipAddress/discovery is not allowed for Docker containers",
        )
    if app.get("uris") is not None:
        for i, uri in enumerate(app["uris"]):
            v.check(uri_is_valid(uri), f"/uris({i})", "URI has invalid syntax.")
        v.check(not (app["uris"] and app["fetch"]), "/uris", "may not be set in conjunction with fetch")
    v.check(
        not (docker is not None and "network" in docker and app["networks"]),
        "/",
        "must not specify both container.docker.network and networks",
    )
    v.check(not (ip is not None and app["networks"]), "/", "must not specify both networks and ipAddress")
    fixed = [p for p in app.get("ports") or [] if p != 0]
    v.check(len(fixed) == len(set(fixed)), "/", "ports must be unique")
    v.check(
        ip is None or not (app.get("ports") or app.get("portDefinitions")),
        "/",
        "cannot specify both an IP address and port",
    )
    defs = app.get("portDefinitions")
    v.check(
        app.get("ports") is None or defs is None or [d["port"] for d in defs] == app["ports"],
        "/",
        "cannot specify both ports and port definitions",
    )


def validate_ports(app: dict[str, Any], v: Violations) -> None:
    """Canonical port rules: unique names and ports, mapping ↔ network consistency (``AppValidation``)."""
    networks = app["networks"]
    defs = app.get("portDefinitions")
    if defs is not None:
        names = [d["name"] for d in defs if "name" in d]
        v.check(len(names) == len(set(names)), "/portDefinitions", PORT_NAMES_UNIQUE)
        ports = [d["port"] for d in defs if d["port"] != 0]
        v.check(len(ports) == len(set(ports)), "/portDefinitions", "Ports must be unique.")
    mappings = (app.get("container") or {}).get("portMappings")
    if mappings is not None:
        names = [m["name"] for m in mappings if "name" in m]
        v.check(len(names) == len(set(names)), "/container/portMappings", PORT_NAMES_UNIQUE)
        container_nets = [n for n in networks if n["mode"] == "container"]
        known = [n["name"] for n in networks if "name" in n]
        for i, mapping in enumerate(mappings):
            v.check(
                len(container_nets) <= 1 or "hostPort" not in mapping or len(mapping["networkNames"]) == 1,
                f"/container/portMappings({i})",
                MULTI_NETWORK_HOST_PORT,
            )
            for j, name in enumerate(mapping["networkNames"]):
                where = f"/container/portMappings({i})/networkNames({j})"
                v.check(name in known, where, f"is not one of ({','.join(known)})")
    v.check(
        not (any(n["mode"] == "host" for n in networks) and mappings),
        "/",
        "portMappings are not allowed with host-networking",
    )
    v.check(
        not (any(n["mode"] != "host" for n in networks) and defs),
        "/",
        "portDefinitions are only allowed with host-networking",
    )


def validate_networks(
    networks: list[dict[str, Any]], default_network_name: str | None, v: Violations
) -> None:
    """``ramlNetworksValidator`` and the default-name rule (path ``/networks``)."""
    path = "/networks"
    host = [n for n in networks if n["mode"] == "host"]
    bridge = [n for n in networks if n["mode"] == "container/bridge"]
    container = [n for n in networks if n["mode"] == "container"]
    v.check(
        not any(n.get("name") or n["labels"] for n in host),
        path,
        "Host networks may not have names or labels",
    )
    v.check(not any(n.get("name") for n in bridge), path, "Bridge networks may not have names")
    names = [n["name"] for n in networks if "name" in n]
    unnamed = sum(1 for n in container if "name" not in n)
    v.check(unnamed < 2 and len(names) == len(set(names)), path, "Duplicate networks are not allowed")
    v.check(
        (len(host) <= 1 and not bridge and not container)
        or (not host and len(bridge) <= 1 and not container)
        or (not host and not bridge and bool(container)),
        path,
        "May specify a single host network, single bridge network, or else 1-to-n container networks",
    )
    v.check(
        default_network_name is not None or all("name" in n for n in container),
        path,
        "Network name must be specified when container network is selected.",
    )


def port_count(app: dict[str, Any]) -> int:
    """How many ports an instance gets: container port mappings when non-empty, else port definitions."""
    mappings = (app.get("container") or {}).get("portMappings")
    return len(mappings) if mappings else len(app.get("portDefinitions") or [])


_URI_BAD = set(' "<>\\^`{|}')


def uri_is_valid(uri: str) -> bool:
    """Roughly ``java.net.URI`` syntax: no spaces or unsafe characters, a well-formed scheme if any."""
    if any(ch in _URI_BAD or ord(ch) < 0x21 for ch in uri):
        return False
    scheme, sep, _ = uri.partition(":")
    return not sep or "/" in scheme or "?" in scheme or (bool(scheme) and scheme[0].isalpha())


def migrate_update(update: dict[str, Any]) -> dict[str, Any]:
    """``forDeprecatedUpdates``: legacy fields of a PUT/PATCH body in canonical form, no defaults added."""
    update = copy.deepcopy(update)
    container = update.get("container")
    docker = (container or {}).get("docker") or {}
    if update.get("ipAddress") is not None or "network" in docker:
        update["networks"] = translate_networks(update)
    if container is None and update.get("ipAddress") is not None:
        container = update["container"] = {"type": "MESOS", "volumes": []}
    if container is not None:
        if "portMappings" in docker:
            legacy = docker.pop("portMappings")
            if container.get("portMappings") and legacy:
                raise NormalizationError("cannot specify both portMappings and docker.portMappings")
            container["portMappings"] = container.get("portMappings") or legacy
        discovery = ((update.get("ipAddress") or {}).get("discovery") or {}).get("ports") or []
        if discovery:
            if container.get("portMappings"):
                raise NormalizationError(
                    "container.portMappings and ipAddress.discovery.ports must not both be set"
                )
            container["portMappings"] = [
                {**default_port_mapping(p["name"]), "containerPort": p["number"], "protocol": p["protocol"]}
                for p in discovery
            ]
        docker.pop("network", None)
    if update.get("portDefinitions") is None and update.get("ports") is not None:
        update["portDefinitions"] = [{"port": p, "labels": {}, "protocol": "tcp"} for p in update["ports"]]
    for key in ("ipAddress", "ports"):
        update.pop(key, None)
    return update
