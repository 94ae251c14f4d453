"""The Mesos v1 ``TaskInfo`` for a matched app instance (Marathon 1.10.26 ``mesos/TaskBuilder.scala``), pure.

Field for field what Marathon's command-executor path builds: name (the app id as a hostname), resources
from the match, ``CommandInfo`` with the task environment (reference §4.1), a Docker or Mesos container
with the host ports bound, the first Mesos-side health check (HTTP/TCP checks of protocol ``HTTP``,
``HTTPS`` and ``TCP`` are run by Marathon itself and stay out), kill policy, labels and discovery info.
Custom executors, secrets, external/persistent volumes and ``check`` are not built here.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from marathon_py.matcher import Match

JsonObj = dict[str, Any]
MESOS_BRIDGE = "mesos-bridge"  # --mesos_bridge_name
_MAX_ENV = 512  # EnvironmentHelper.maxEnvironmentVarLength
_LABEL_PREFIX = "MARATHON_APP_LABEL_"
_ENV_UNSAFE = re.compile(r"[^a-zA-Z0-9_]+")
_DOCKER_NET = {"host": "HOST", "container/bridge": "BRIDGE", "container": "USER"}
_HC_DEFAULTS = {"gracePeriodSeconds": 300, "intervalSeconds": 60, "timeoutSeconds": 20, "delaySeconds": 15}


def _segments(app_id: str) -> list[str]:
    return [s for s in app_id.split("/") if s]


def instance_id(app_id: str, uuid: str) -> str:
    """``/my-group/my-app`` → ``my-group_my-app.instance-<uuid>`` (``Instance.Id``)."""
    return "_".join(_segments(app_id)) + ".instance-" + uuid


def task_id(app_id: str, uuid: str, incarnation: int = 1) -> str:
    """The task of an app instance: ``<instance id>._app.<incarnation>`` (reference §2.4)."""
    return f"{instance_id(app_id, uuid)}._app.{incarnation}"


def next_incarnation(previous: str) -> str:
    """The id of the task relaunched for the same instance (``Task.Id.nextIncarnationFor``)."""
    head, _, n = previous.rpartition(".")
    return f"{head}.{int(n) + 1}" if n.isdigit() and head.endswith("._app") else f"{previous}.1"


def hostname_of(app_id: str) -> str:
    """``PathId.toHostname``: ``/a/b`` → ``b.a``, the task and discovery name."""
    return ".".join(reversed(_segments(app_id)))


def java_double(value: float) -> str:
    """``Double.toString``: ``1.0``, ``0.5``, ``1.0E7``, ``1.0E-4`` (what Marathon puts in the env)."""
    value = float(value)
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return repr(value)
    shortest = Decimal(repr(value)).normalize()
    sign, digits, _ = shortest.as_tuple()
    text = "".join(map(str, digits))
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{shortest.adjusted()}"


def _declared_ports(app: Mapping[str, Any]) -> list[tuple[str | None, int]]:
    """(name, port) per host port: container ports of the mappings if there are any, else definitions."""
    mappings = (app.get("container") or {}).get("portMappings") or []
    if mappings:
        return [(m.get("name"), int(m.get("containerPort", 0))) for m in mappings]
    return [(d.get("name"), int(d.get("port", 0))) for d in app.get("portDefinitions") or []]


def ports_env(
    declared: Sequence[tuple[str | None, int]], host_ports: Sequence[int | None], rng: random.Random
) -> dict[str, str]:
    """``EnvironmentHelper.portsEnv``: PORT<i>, PORT_<requested>, PORT_<NAME>, PORT and PORTS.

    A container-mode mapping without host port reports its container port; container port 0 there gets a
    random free port above 1024 (from ``rng``)."""
    if not host_ports:
        return {}
    env: dict[str, str] = {}
    taken = {p for _, p in declared} | {p for p in host_ports if p is not None}
    generated: dict[int, int] = {}
    for i, host in enumerate(host_ports):
        if host is not None:
            env[f"PORT{i}"] = str(host)
        elif i < len(declared):
            port = declared[i][1]
            if port == 0:
                while port == 0 or port in taken:  # Random.nextInt(65535 - 1024) + 1025, not yet used
                    port = rng.randrange(1025, 65536)
                taken.add(port)
                generated[i] = port
            env[f"PORT{i}"] = str(port)
    effective = {i: host if host is not None else generated.get(i) for i, host in enumerate(host_ports)}
    used = [
        (name, requested, effective[i]) for i, (name, requested) in enumerate(declared[: len(host_ports)])
    ]
    for _, requested, eff in used:
        env[f"PORT_{requested or eff}"] = str(eff if eff is not None else requested)
    for name, requested, eff in used:
        if name:
            env[f"PORT_{name.upper()}"] = str(eff if eff is not None else requested)
    assigned = [p for p in host_ports if p is not None] + list(generated.values())
    if assigned:
        env["PORT"] = str(assigned[0])
    env["PORTS"] = ",".join(map(str, assigned))
    return env


def labels_env(labels: Mapping[str, str]) -> dict[str, str]:
    """``labelsToEnvVars``: names made ``[A-Z0-9_]``; keys ≥ 493 or values ≥ 512 characters are dropped."""
    kept = {
        _ENV_UNSAFE.sub("_", k).upper(): v
        for k, v in labels.items()
        if len(k) < _MAX_ENV - len(_LABEL_PREFIX) and len(v) < _MAX_ENV
    }
    return {"MARATHON_APP_LABELS": " ".join(kept)} | {_LABEL_PREFIX + k: v for k, v in kept.items()}


def task_env(
    app: Mapping[str, Any],
    match: Match,
    task: str,
    version: str,
    rng: random.Random,
    env_prefix: str = "",
    enforce_role: bool = False,
) -> dict[str, str]:
    """The task's environment, in Marathon's order: task context, ports and HOST (with
    ``--env_vars_prefix``), then the app's own string ``env`` (secrets are not resolved here)."""
    container = app.get("container") or {}
    env = {"MESOS_TASK_ID": task, "MARATHON_APP_ID": str(app["id"]), "MARATHON_APP_VERSION": version}
    if container.get("type") == "DOCKER" and (container.get("docker") or {}).get("image"):
        env["MARATHON_APP_DOCKER_IMAGE"] = container["docker"]["image"]
    for name in ("cpus", "mem", "disk"):
        env[f"MARATHON_APP_RESOURCE_{name.upper()}"] = java_double(app.get(name) or 0)
    env["MARATHON_APP_RESOURCE_GPUS"] = str(int(app.get("gpus") or 0))
    env["MARATHON_APP_ENFORCE_GROUP_ROLE"] = "TRUE" if enforce_role else "FALSE"
    env |= labels_env(app.get("labels") or {})
    local = ports_env(_declared_ports(app), match.host_ports, rng) | {"HOST": match.hostname}
    env |= {env_prefix + k: v for k, v in local.items()}
    env |= {k: v for k, v in (app.get("env") or {}).items() if isinstance(v, str)}
    return env


def _labels(labels: Mapping[str, str]) -> JsonObj:
    return {"labels": [{"key": k, "value": v} for k, v in labels.items()]}


def _modes(app: Mapping[str, Any]) -> list[str]:
    return [str(n.get("mode", "host")) for n in app.get("networks") or [{"mode": "host"}]]


def command_info(app: Mapping[str, Any], env: Mapping[str, str]) -> JsonObj:
    """cmd → shell ``value``; args → ``shell: false`` + arguments (``value`` = args[0] without a
    container, for the command executor); neither (image entrypoint) → ``shell: false``."""
    cmd: JsonObj = {}
    fetch = app.get("fetch") or []
    if fetch:
        cmd["uris"] = [_uri(f) for f in fetch]
    cmd["environment"] = {"variables": [{"name": k, "value": v} for k, v in env.items()]}
    args = app.get("args") or []
    if app.get("cmd"):
        cmd["value"] = app["cmd"]
    else:
        cmd["shell"] = False
    if args:
        cmd["shell"] = False
        if not app.get("container"):
            cmd["value"] = args[0]
        cmd["arguments"] = list(args)
    if app.get("user"):
        cmd["user"] = app["user"]
    return cmd


def _uri(f: Mapping[str, Any]) -> JsonObj:
    out: JsonObj = {
        "value": f["uri"],
        "executable": bool(f.get("executable", False)),
        "extract": bool(f.get("extract", True)),
        "cache": bool(f.get("cache", False)),
    }
    if f.get("destPath"):
        out["output_file"] = f["destPath"]
    return out


def _bound_mappings(app: Mapping[str, Any], host_ports: Sequence[int | None]) -> list[JsonObj]:
    """Mappings that got a host port, container port 0 meaning "the same as the host port"."""
    mappings = (app.get("container") or {}).get("portMappings") or []
    return [
        {**m, "hostPort": hp, "containerPort": int(m.get("containerPort", 0)) or hp}
        for m, hp in zip(mappings, host_ports, strict=False)
        if hp is not None
    ]


def container_info(app: Mapping[str, Any], host_ports: Sequence[int | None], task: str) -> JsonObj | None:
    """``computeContainerInfo``: DOCKER with network, bound port mappings (one per protocol) and the
    ``MESOS_TASK_ID`` label parameter; MESOS (UCR) with network infos for non-host networks."""
    container = app.get("container")
    networks = app.get("networks") or [{"mode": "host"}]
    non_host = [n for n in networks if n.get("mode", "host") != "host"]
    if not container and not non_host:
        return None
    container = container or {}
    bound = _bound_mappings(app, host_ports)
    info: JsonObj = {"type": "DOCKER" if container.get("type") == "DOCKER" else "MESOS"}
    volumes = [
        _volume(v) for v in container.get("volumes") or [] if v.get("hostPath") and v.get("containerPath")
    ]
    if volumes:
        info["volumes"] = volumes
    docker = container.get("docker") or {}
    if info["type"] == "DOCKER":
        params = [{"key": p["key"], "value": p["value"]} for p in docker.get("parameters") or []]
        info["docker"] = {
            "image": docker.get("image", ""),
            "network": _DOCKER_NET.get(_modes(app)[-1], "HOST"),
            "port_mappings": [
                {"host_port": m["hostPort"], "container_port": m["containerPort"], "protocol": proto}
                for m in bound
                for proto in str(m.get("protocol", "tcp")).split(",")
            ],
            "privileged": bool(docker.get("privileged", False)),
            "parameters": [*params, {"key": "label", "value": f"MESOS_TASK_ID={task}"}],
            "force_pull_image": bool(docker.get("forcePullImage", False)),
        }
        named = [n["name"] for n in networks if n.get("mode") == "container" and n.get("name")]
        if named:
            info["network_infos"] = [{"name": named[0]}]
    else:
        image = docker.get("image")
        info["mesos"] = {"image": {"type": "DOCKER", "docker": {"name": image}}} if image else {}
        if non_host:
            info["network_infos"] = [_ucr_network(n, bound) for n in non_host]
    if app.get("tty"):
        info["tty_info"] = {}
    return info


def _volume(v: Mapping[str, Any]) -> JsonObj:
    return {"container_path": v["containerPath"], "host_path": v["hostPath"], "mode": v.get("mode", "RW")}


def _ucr_network(network: Mapping[str, Any], bound: Iterable[Mapping[str, Any]]) -> JsonObj:
    name = MESOS_BRIDGE if network.get("mode") == "container/bridge" else str(network.get("name", ""))
    return {
        "ip_addresses": [{}],
        "labels": _labels(network.get("labels") or {}),
        "name": name,
        "port_mappings": [
            {
                "host_port": m["hostPort"],
                "container_port": m["containerPort"],
                "protocol": m.get("protocol", "tcp"),
            }
            for m in bound
            if all(n == name for n in m.get("networkNames") or [])
        ],
    }


def discovery_info(app: Mapping[str, Any], host_ports: Sequence[int | None]) -> JsonObj:
    """``computeDiscoveryInfo`` / ``PortDiscovery.generateForApp``: one Port per protocol; outside host
    networking a host-bound mapping is scoped ``host`` and the others ``container`` per network name."""
    ports: list[JsonObj] = []
    modes = _modes(app)
    if all(m == "host" for m in modes):
        defs = app.get("portDefinitions") or []
        for d, hp in zip(defs, host_ports, strict=False):
            if hp is not None:
                ports += _ports(d.get("name"), d.get("labels") or {}, d.get("protocol", "tcp"), hp)
    else:
        nets = [
            str(n["name"])
            for n in app.get("networks") or []
            if n.get("mode") == "container" and n.get("name")
        ]
        mappings = (app.get("container") or {}).get("portMappings") or []
        for m, hp in zip(mappings, host_ports, strict=False):
            labels, proto = m.get("labels") or {}, m.get("protocol", "tcp")
            if hp is not None:
                ports += _ports(m.get("name"), {**labels, "network-scope": "host"}, proto, hp)
                continue
            for net in m.get("networkNames") or nets:
                scope = {**labels, "network-scope": "container", "network-name": net}
                ports += _ports(m.get("name"), scope, proto, int(m.get("containerPort", 0)))
    return {"visibility": "FRAMEWORK", "name": hostname_of(str(app["id"])), "ports": {"ports": ports}}


def _ports(name: str | None, labels: Mapping[str, str], protocols: str, number: int) -> list[JsonObj]:
    out = []
    for proto in protocols.split(","):
        port: JsonObj = {"number": number, "protocol": proto}
        if name:
            port["name"] = name
        if labels:
            port["labels"] = _labels(labels)
        out.append(port)
    return out


def _hc_port(app: Mapping[str, Any], hc: Mapping[str, Any], host_ports: Sequence[int | None]) -> int | None:
    """``MesosHealthCheckWithPorts.effectivePort``: ``port``, else the indexed assignment's container port
    (Mesos probes inside the container's network), else its host port."""
    if hc.get("port") is not None:
        return int(hc["port"])
    i = int(hc.get("portIndex") or 0)
    if i >= len(host_ports):
        return None
    modes = _modes(app)
    mappings = (app.get("container") or {}).get("portMappings") or []
    if mappings and any(m != "host" for m in modes) and i < len(mappings):
        return int(mappings[i].get("containerPort", 0)) or host_ports[i]
    return host_ports[i]


def health_check(app: Mapping[str, Any], host_ports: Sequence[int | None]) -> JsonObj | None:
    """The first COMMAND / MESOS_HTTP(S) / MESOS_TCP check as a v1 ``HealthCheck`` (Mesos runs one)."""
    for hc in app.get("healthChecks") or []:
        proto = hc.get("protocol", "HTTP")
        if proto not in ("COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP"):
            continue
        t = {k: float(hc.get(k, d)) for k, d in _HC_DEFAULTS.items()}
        out: JsonObj = {
            "interval_seconds": float(int(t["intervalSeconds"])),
            "timeout_seconds": float(int(t["timeoutSeconds"])),
            "consecutive_failures": int(hc.get("maxConsecutiveFailures", 3)),
            "grace_period_seconds": t["gracePeriodSeconds"],
            "delay_seconds": t["delaySeconds"],
        }
        if proto == "COMMAND":
            return {
                "type": "COMMAND",
                **out,
                "command": {"shell": True, "value": (hc.get("command") or {}).get("value", "")},
            }
        port = _hc_port(app, hc, host_ports)
        if port is None:
            continue
        ip = hc.get("ipProtocol", "IPv4")
        if proto == "MESOS_TCP":
            return {"type": "TCP", **out, "tcp": {"port": port, "protocol": ip}}
        http: JsonObj = {"scheme": "http" if proto == "MESOS_HTTP" else "https", "port": port}
        if hc.get("path"):
            http["path"] = hc["path"]
        return {"type": "HTTP", **out, "http": {**http, "protocol": ip}}
    return None


def _limits(app: Mapping[str, Any]) -> JsonObj:
    limits = app.get("resourceLimits") or {}
    return {
        k: {"value": "Infinity" if v == "unlimited" else float(v)}
        for k, v in limits.items()
        if k in ("cpus", "mem") and v is not None
    }


def task_info(
    app: Mapping[str, Any],
    match: Match,
    task_id: str,
    agent_id: str,
    version: str | None = None,
    *,
    env_prefix: str = "",
    enforce_role: bool = False,
    rng: random.Random | None = None,
) -> JsonObj:
    """The v1 ``TaskInfo`` launching ``app`` with ``match`` (``version``: the app version, default
    ``app["version"]``).  ``rng`` only picks container ports for container-mode mappings with
    containerPort 0; by default it is seeded from the task id, so the result is reproducible."""
    rng = rng or random.Random(task_id)
    env = task_env(app, match, task_id, version or str(app.get("version", "")), rng, env_prefix, enforce_role)
    info: JsonObj = {
        "name": hostname_of(str(app["id"])),
        "task_id": {"value": task_id},
        "agent_id": {"value": agent_id},
        "resources": match.resources_json,
        "command": command_info(app, env),
    }
    container = container_info(app, match.host_ports, task_id)
    if container is not None:
        info["container"] = container
    check = health_check(app, match.host_ports)
    if check is not None:
        info["health_check"] = check
    grace = app.get("taskKillGracePeriodSeconds")
    if grace is not None:
        info["kill_policy"] = {"grace_period": {"nanoseconds": round(float(grace) * 1e9)}}
    if app.get("labels"):
        info["labels"] = _labels(app["labels"])
    info["discovery"] = discovery_info(app, match.host_ports)
    limits = _limits(app)
    if limits:
        info["limits"] = limits
    return info
