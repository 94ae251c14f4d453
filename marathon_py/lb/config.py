"""marathon-lb's HAProxy configuration from ``GET /v2/apps?embed=apps.tasks`` (reference §9.2). Pure.

Apps JSON, options, the resolved addresses of task hosts and the last known health of tasks go in; config
text, the health to remember and warnings come out. The rules are marathon-lb 1.15's (``marathon_lb.py``
``get_apps``/``config``, ``utils.py``, ``config.py`` templates):

* An app is served when one of its ``HAPROXY_GROUP`` names (comma list; ``HAPROXY_{n}_GROUP`` overrides it
  for service port n) is one of ``--group``; ``*`` serves every app, those without the label included
  (``has_group``). Apps without the label are served only by ``*``.
* Service ports: ``container.portMappings[].servicePort`` in container or bridge networking, else
  ``portDefinitions[].port`` (``ServicePortAssigner.get_service_ports``). Service port n becomes a frontend
  bound on ``<bind address>:<port>`` (``HAPROXY_{n}_PORT`` and ``_BIND_ADDR`` override) and a backend, both
  named ``<app id without the leading /, / → _>_<port>``. A service with no routable task is left out.
* Routed tasks (``get_apps``): tasks with a host whose state is not in :data:`EXCLUDED_TASK_STATES`
  (so TASK_RUNNING, TASK_LOST and TASK_UNREACHABLE are routed). When health checking is on and the app has
  health checks, a task is routed only if *some* ``healthCheckResults[].alive`` is true — marathon-lb's
  loop sets ``alive = True`` on any alive result (``marathon_lb.py`` get_apps: ``for result in
  task['healthCheckResults']: if result['alive']: alive = True``). A task without the field keeps its last
  known value (``healthCheckResultCache``), none meaning not routed. **Deviation**: so does a task whose
  list is empty (marathon-lb: not alive). A new Marathon leader lists every task with no results until its
  first probe round, and marathon-lb then empties every checked backend at once, on each Marathon
  failover or rolling upgrade; a task never seen alive stays unrouted either way.
* Backend address: the task's host (resolved to an IPv4 address by the caller) in host and bridge
  networking, ``ipAddresses[0].ipAddress`` in container networking; backend ports: the task's ``ports``,
  else ``portDefinitions`` (host, bridge) or the mappings' ``containerPort`` (container), paired in order
  with the service ports (``get_task_ip_and_ports``).
* Mode: ``HAPROXY_{n}_MODE``, else ``http`` when the port's health check is ``HTTP`` or it has a vhost,
  else ``tcp``. ``HAPROXY_{n}_BALANCE`` (default ``roundrobin``) is written as given, so a wrong one is
  caught by ``haproxy -c`` as in marathon-lb. ``HAPROXY_{n}_ENABLED`` (default true, false with
  ``strict_mode``) switches a port off.
* ``HAPROXY_{n}_VHOST`` (comma list) routes those ``Host`` names on the shared ``marathon_http_in``
  frontend (``--http-port``, 80); every http service is also reachable on ``marathon_http_appid_in``
  (9091) by ``X-Marathon-App-Id``; ``listen stats`` (9090) has ``/haproxy?stats`` and
  ``/_haproxy_health_check``.
* HAProxy-side checks mirror the port's Marathon check as marathon-lb's templates do: ``option httpchk GET
  <path>`` for an HTTP check on an http service, a connect check otherwise, ``check inter <interval>s fall
  <maxConsecutiveFailures + 1>``; server names ``<host>_<ip>_<port>`` and ids from ``calculate_server_id``
  (stable across reloads).

Deviations: label values are checked before they reach the file (a newline would inject directives);
vhost ACLs ignore a ``:port`` in ``Host`` (marathon-lb matches the raw header, so only port 80 works);
``COMMAND`` checks add no HAProxy check; two services on one port keep the first (sorted) and warn
(marathon-lb writes both, and HAProxy's SO_REUSEPORT would split the traffic); not rendered: HTTPS/443,
SNI, ``PATH``, ``AUTH``, ``STICKY``, template overrides, ZDD (``HAPROXY_DEPLOYMENT_*``), haproxy maps and
service-port assignment for IP-per-task apps without service ports.

Output is deterministic (services sorted by app id and port, servers by host and port), so an unchanged
cluster renders byte-identical text and needs no reload.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

App = Mapping[str, Any]

DEFAULT_GROUP = "external"
EXCLUDED_TASK_STATES = frozenset(
    {
        "TASK_STAGING",
        "TASK_STARTING",
        "TASK_KILLING",
        "TASK_FINISHED",
        "TASK_FAILED",
        "TASK_KILLED",
        "TASK_ERROR",
        "TASK_DROPPED",
        "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
        "TASK_UNKNOWN",
    }
)
HTTP_FRONTEND = "marathon_http_in"
APPID_FRONTEND = "marathon_http_appid_in"
HEALTH_URI = "/_haproxy_health_check"
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9\-]")
_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9\-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9\-]*[a-z0-9])?)*$")
_GROUP = re.compile(r"^[\w.\-]+$|^\*$")
_BALANCE = re.compile(r"^[a-z][a-z_\-]*(\([\w.\-]*\))?( [\w.\-]+)*$")
_APP_ID = re.compile(r"^(/[a-z0-9.\-]+)+$")
_ADDRESS = re.compile(r"^[A-Za-z0-9.\-:_]+$")
_BIND_ADDR = re.compile(r"^(\*|[\w.\-]+|[0-9a-fA-F:]+)$")
_TRUE = ("true", "t", "yes", "y")


@dataclass(frozen=True)
class LbOptions:
    """What the operator chose (marathon-lb's flags); ``None`` ports leave that frontend out."""

    groups: frozenset[str] = frozenset({DEFAULT_GROUP})
    bind_address: str = "*"
    http_port: int | None = 80
    appid_port: int | None = 9091
    stats_port: int | None = 9090
    health_check: bool = True
    strict_mode: bool = False
    maxconn: int = 50000


@dataclass(frozen=True, order=True)
class Server:
    """One routed task port: ``host`` names the agent, ``ip`` is what HAProxy connects to."""

    host: str
    ip: str
    port: int

    @property
    def name(self) -> str:
        """marathon-lb's server name: host, IP and port, the IP once when it is the host."""
        parts = [self.ip, str(self.port)] if self.host == self.ip else [self.host, self.ip, str(self.port)]
        return _NAME_UNSAFE.sub("_", "_".join(parts))


@dataclass(frozen=True)
class Service:
    """One service port of one app: a frontend and its backend."""

    app_id: str
    port: int
    mode: str
    balance: str
    bind_addr: str
    groups: tuple[str, ...]
    vhosts: tuple[str, ...]
    health_check: Mapping[str, Any] | None
    servers: tuple[Server, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.app_id.lstrip('/').replace('/', '_')}_{self.port}"


@dataclass(frozen=True)
class Rendered:
    """The config text, the task health to pass to the next render, the services in it and what was odd."""

    text: str
    alive: dict[str, bool]
    services: tuple[Service, ...]
    warnings: tuple[str, ...] = ()


@dataclass
class _Run:
    """State of one render: warnings and the health of the tasks seen."""

    options: LbOptions
    addresses: Mapping[str, str] | None
    alive_before: Mapping[str, bool]
    alive: dict[str, bool] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def warn(self, text: str) -> None:
        self.warnings.append(text)


def networking_mode(app: App) -> str:
    """``host``, ``container/bridge`` or ``container``; legacy fields first, ``networks`` last (utils.py)."""
    mode = "container" if app.get("ipAddress") else "host"
    docker_net = _dig(app, "container", "docker").get("network", "")
    if docker_net == "USER":
        mode = "container"
    elif docker_net == "BRIDGE":
        mode = "container/bridge"
    for net in app.get("networks") or ():
        mode = str(net.get("mode", "container"))
    return mode


def service_ports(app: App) -> list[int]:
    """The app's service ports in index order (``get_service_ports`` without IP-per-task assignment)."""
    if networking_mode(app) != "host":
        mapped = _ports(p.get("servicePort") for p in _port_mappings(app))
        if mapped:
            return mapped
    if "portDefinitions" in app:
        return _definition_ports(app)
    return _ports(app.get("ports") or ())


def task_hosts(apps: Iterable[App]) -> set[str]:
    """Host names the caller has to resolve before rendering (IP literals need nothing)."""
    hosts = set()
    for app in apps:
        if networking_mode(app) == "container":
            continue
        for task in app.get("tasks") or ():
            host = task.get("host")
            if host and not _is_ip(str(host)):
                hosts.add(str(host))
    return hosts


def render_config(
    apps: Sequence[App],
    options: LbOptions,
    addresses: Mapping[str, str] | None = None,
    alive: Mapping[str, bool] | None = None,
) -> Rendered:
    """HAProxy config for these apps.

    ``addresses`` maps task host names to IPs (``None``: write host names and let HAProxy resolve them);
    ``alive`` is the previous render's :attr:`Rendered.alive`.
    """
    run = _Run(options, addresses, alive or {})
    services = _dedupe(sorted(_services(apps, run), key=lambda s: (s.app_id, s.port)), run)
    return Rendered(_render(services, options), run.alive, tuple(services), tuple(run.warnings))


def served(groups: Iterable[str], wanted: frozenset[str]) -> bool:
    """marathon-lb's ``has_group``: ``*`` serves everything, otherwise the sets must meet."""
    return "*" in wanted or not wanted.isdisjoint(groups)


def server_ids(servers: Sequence[Server]) -> list[int]:
    """Stable ids in 1..32767 from the servers' names, collisions rehashed (``calculate_server_id``)."""
    taken: set[int] = set()
    ids = []
    for server in servers:
        name = server.name
        while True:
            digest = hashlib.sha256(name.encode()).hexdigest()
            ident = int(digest, 16) % 32767
            if ident > 0 and ident not in taken:
                break
            name = f"{name} {digest}"
        taken.add(ident)
        ids.append(ident)
    return ids


# --- apps → services -------------------------------------------------------------------------------------


def _services(apps: Sequence[App], run: _Run) -> list[Service]:
    found = []
    for app in apps:
        try:
            found += _app_services(app, run)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as e:
            run.warn(f"app {_id_of(app)!r}: malformed ({e!r}), skipped")  # one odd app spoils no other
    return found


def _id_of(app: Any) -> str:
    return str(app.get("id", "")) if isinstance(app, Mapping) else repr(app)[:40]


def _app_services(app: App, run: _Run) -> list[Service]:
    app_id = str(app.get("id", ""))
    if not _APP_ID.match(app_id):
        run.warn(f"app id {app_id!r} is not a Marathon path, app skipped")
        return []
    labels = {k: v for k, v in (app.get("labels") or {}).items() if isinstance(v, str)}
    app_groups = _groups(labels.get("HAPROXY_GROUP"), f"{app_id}: HAPROXY_GROUP", run)
    ports = service_ports(app)
    specs = {}
    for n, port in enumerate(ports):
        spec = _service_spec(app, n, port, labels, app_groups, run) if port > 0 else None
        if spec is not None and served(spec.groups, run.options.groups):
            specs[n] = spec
    if not specs:
        return []
    servers: dict[int, list[Server]] = {n: [] for n in specs}
    for task in sorted(app.get("tasks") or (), key=lambda t: str(t.get("id", ""))):
        if not _routable(app, task, run):
            continue
        ip, task_ports = _task_address(app, task, run)
        if ip is None:
            continue
        for n, task_port in enumerate(task_ports[: len(ports)]):
            if n in servers:
                servers[n].append(Server(str(task["host"]), ip, task_port))
    return [
        replace(spec, servers=tuple(sorted(set(servers[n]), key=lambda s: (s.host, s.port))))
        for n, spec in specs.items()
        if servers[n]
    ]


def _service_spec(
    app: App, n: int, port: int, labels: Mapping[str, str], app_groups: tuple[str, ...], run: _Run
) -> Service | None:
    """Service port ``n`` with its ``HAPROXY_{n}_*`` labels applied, or ``None`` when it is disabled."""
    app_id = str(app.get("id", ""))

    def label(name: str, ok: Callable[[str], object] = bool) -> str | None:
        key = f"HAPROXY_{n}_{name}"
        value = labels.get(key)
        if value is None:
            return None
        if not re.search(r"[\x00-\x1f#]", value) and ok(value.strip()):
            return value.strip()
        run.warn(f"{app_id}: {key}={value!r} is not valid, ignored")
        return None

    enabled = label("ENABLED")
    if not (enabled.lower() in _TRUE if enabled is not None else not run.options.strict_mode):
        return None
    health_check = _health_check(app, n)
    vhosts = _vhosts(label("VHOST"), f"{app_id}: HAPROXY_{n}_VHOST", run)
    mode = label("MODE", lambda v: v.lower() in ("http", "tcp"))
    if mode is None:
        mode = "http" if vhosts or (health_check or {}).get("protocol") == "HTTP" else "tcp"
    group_label = label("GROUP")
    return Service(
        app_id,
        int(label("PORT", _valid_port) or port),
        mode.lower(),
        label("BALANCE", _BALANCE.match) or "roundrobin",
        label("BIND_ADDR", _BIND_ADDR.match) or run.options.bind_address,
        app_groups if group_label is None else _groups(group_label, f"{app_id}: HAPROXY_{n}_GROUP", run),
        vhosts,
        health_check,
    )


def _valid_port(text: str) -> bool:
    return text.isdigit() and 0 < int(text) < 65536


def _groups(value: str | None, what: str, run: _Run) -> tuple[str, ...]:
    if value is None:
        return ()
    groups = tuple(g.strip() for g in value.split(",") if g.strip())
    bad = [g for g in groups if not _GROUP.match(g)]
    if bad:
        run.warn(f"{what}: invalid group names {bad}, ignored")
    return tuple(g for g in groups if g not in bad)


def _vhosts(value: str | None, what: str, run: _Run) -> tuple[str, ...]:
    if value is None:
        return ()
    names = [v.strip().lower() for v in value.split(",") if v.strip()]
    bad = [v for v in names if not _HOSTNAME.match(v)]
    if bad:
        run.warn(f"{what}: invalid host names {bad}, ignored")
    return tuple(dict.fromkeys(v for v in names if v not in bad))


def _health_check(app: App, n: int) -> Mapping[str, Any] | None:
    """The check of service port ``n``: the first with an explicit ``port``, or ``portIndex`` n."""
    for check in app.get("healthChecks") or ():
        if check.get("port") or check.get("portIndex") == n:
            return dict(check)
    return None


def _routable(app: App, task: Mapping[str, Any], run: _Run) -> bool:
    """Has a host, is not in an excluded state and, with health checking, is alive (see module doc)."""
    if not task.get("host") or task.get("state") in EXCLUDED_TASK_STATES:
        return False
    if not (run.options.health_check and app.get("healthChecks")):
        return True
    task_id = str(task.get("id", ""))
    results = task.get("healthCheckResults")
    if not results:  # none yet (new task, or a new Marathon leader before its first probes): as before
        if task_id not in run.alive_before:
            return False
        alive = run.alive_before[task_id]
    else:
        alive = any(bool(r.get("alive")) for r in results)
    run.alive[task_id] = alive
    return alive


def _task_address(app: App, task: Mapping[str, Any], run: _Run) -> tuple[str | None, list[int]]:
    """(IP to connect to, backend ports) — ``get_task_ip_and_ports``; ``(None, [])`` when unusable."""
    mode = networking_mode(app)
    task_id = task.get("id")
    if mode == "container":
        addrs = task.get("ipAddresses") or [{}]
        ip = str(addrs[0].get("ipAddress") or "") or None
        discovery = _dig(app, "ipAddress", "discovery").get("ports") or ()
        ports = _ports(p.get("number") for p in discovery) or _container_ports(app)
    else:
        host = str(task["host"])
        ip = host if run.addresses is None or _is_ip(host) else run.addresses.get(host)
        ports = _ports(task.get("ports") or ()) or _definition_ports(app)
        if not ports and mode == "container/bridge":
            ports = _container_ports(app)
    if ip is None or not _ADDRESS.match(ip):
        run.warn(f"task {task_id}: no usable address for {task.get('host')!r}, skipped")
        return None, []
    if not ports:
        run.warn(f"task {task_id}: no ports, skipped")
        return None, []
    return ip, ports


def _dedupe(services: list[Service], run: _Run) -> list[Service]:
    """One frontend per port: the fixed frontends' ports and the first (sorted) service keep theirs."""
    opts = run.options
    fixed = ((opts.http_port, HTTP_FRONTEND), (opts.appid_port, APPID_FRONTEND), (opts.stats_port, "stats"))
    used = {port: name for port, name in fixed if port is not None}
    kept = []
    for svc in services:
        if svc.port in used:
            run.warn(f"{svc.app_id}: port {svc.port} is already taken by {used[svc.port]}, service skipped")
            continue
        used[svc.port] = svc.name
        kept.append(svc)
    return kept


def _port_mappings(app: App) -> list[Mapping[str, Any]]:
    return list(_dig(app, "container", "docker").get("portMappings") or ()) or list(
        _dig(app, "container").get("portMappings") or ()
    )


def _definition_ports(app: App) -> list[int]:
    return _ports(p.get("port") for p in app.get("portDefinitions") or ())


def _container_ports(app: App) -> list[int]:
    return _ports(p.get("containerPort") for p in _port_mappings(app))


def _ports(values: Iterable[Any]) -> list[int]:
    """The port numbers among ``values`` (absent or malformed entries are dropped, never written)."""
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 65536]


def _seconds(check: Mapping[str, Any], key: str, default: int) -> int:
    value = check.get(key)
    return (
        int(value)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
        else default
    )


def _dig(doc: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    for key in keys:
        doc = doc.get(key) or {}
    return doc


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# --- services → text -------------------------------------------------------------------------------------


def _render(services: Sequence[Service], opts: LbOptions) -> str:
    parts = [_head(opts)]
    if opts.http_port is not None:
        parts.append(_frontend_head(HTTP_FRONTEND, opts.bind_address, opts.http_port, "http"))
        for svc in services:
            if svc.vhosts:
                acl = "host_" + _NAME_UNSAFE.sub("_", svc.name)
                parts.append(f"  acl {acl} req.hdr(host),field(1,:),lower -m str {' '.join(svc.vhosts)}\n")
                parts.append(f"  use_backend {svc.name} if {acl}\n")
    if opts.appid_port is not None:
        parts.append(_frontend_head(APPID_FRONTEND, opts.bind_address, opts.appid_port, "http"))
        seen = set()
        for svc in services:
            if svc.mode == "http" and svc.app_id not in seen:
                seen.add(svc.app_id)
                acl = "app_" + _NAME_UNSAFE.sub("_", svc.app_id)
                parts.append(f"  acl {acl} hdr(x-marathon-app-id) -i {svc.app_id}\n")
                parts.append(f"  use_backend {svc.name} if {acl}\n")
    for svc in services:
        parts.append(_frontend_head(svc.name, svc.bind_addr, svc.port, svc.mode))
        parts.append(f"  use_backend {svc.name}\n")
    parts.extend(_backend(svc) for svc in services)
    return "".join(parts)


def _head(opts: LbOptions) -> str:
    head = (
        "# generated by marathon-py lb from Marathon's apps; edits are overwritten\n"
        "global\n"
        f"  maxconn {opts.maxconn}\n"
        "  spread-checks 5\n"
        "defaults\n"
        "  retries 3\n"
        "  backlog 10000\n"
        "  maxconn 10000\n"
        "  timeout connect 3s\n"
        "  timeout client 30s\n"
        "  timeout server 30s\n"
        "  timeout tunnel 3600s\n"
        "  timeout http-keep-alive 1s\n"
        "  timeout http-request 15s\n"
        "  timeout queue 30s\n"
        "  timeout tarpit 60s\n"
        "  option dontlognull\n"
        "  option http-server-close\n"
        "  option redispatch\n"
    )
    if opts.stats_port is not None:
        head += (
            "\nlisten stats\n"
            f"  bind {opts.bind_address}:{opts.stats_port}\n"
            "  mode http\n"
            "  stats enable\n"
            "  stats uri /haproxy?stats\n"
            f"  monitor-uri {HEALTH_URI}\n"
        )
    return head


def _frontend_head(name: str, bind: str, port: int, mode: str) -> str:
    return f"\nfrontend {name}\n  bind {bind}:{port}\n  mode {mode}\n"


def _backend(svc: Service) -> str:
    lines = [f"\nbackend {svc.name}\n", f"  balance {svc.balance}\n", f"  mode {svc.mode}\n"]
    if svc.mode == "http":
        lines += [
            "  option forwardfor\n",
            "  http-request set-header X-Forwarded-Port %[dst_port]\n",
            "  http-request add-header X-Forwarded-Proto https if { ssl_fc }\n",
        ]
    check = _check_kind(svc)
    hc = svc.health_check or {}
    if check == "http":
        lines.append(f"  option  httpchk GET {_safe_path(hc.get('path'))}\n")
        lines.append(f"  timeout check {_seconds(hc, 'timeoutSeconds', 20)}s\n")
    server_check = ""
    if check is not None:
        server_check = f" check inter {_seconds(hc, 'intervalSeconds', 60)}s"
        server_check += f" fall {_seconds(hc, 'maxConsecutiveFailures', 3) + 1}"
        if _ports([hc.get("port")]):
            server_check += f" port {hc['port']}"
    for server, ident in zip(svc.servers, server_ids(svc.servers), strict=True):
        lines.append(f"  server {server.name} {server.ip}:{server.port} id {ident}{server_check}\n")
    return "".join(lines)


def _check_kind(svc: Service) -> str | None:
    """``http`` (httpchk), ``tcp`` (connect) or ``None`` for the HAProxy check mirroring Marathon's."""
    protocol = (svc.health_check or {}).get("protocol")
    if protocol is None or protocol in ("COMMAND", "MESOS_COMMAND"):
        return None
    if svc.mode == "http" and protocol in ("HTTP", "MESOS_HTTP"):
        return "http"
    return "tcp"


def _safe_path(path: Any) -> str:
    text = str(path or "/")
    return text if re.match(r"^/[^\s\x00-\x1f#]*$", text) else "/"
