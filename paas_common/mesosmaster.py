"""Where a Mesos master is: ``--master`` values, a standby's 307, the leader in ZooKeeper.

Every client of the master — the agent, paasctl, marathon_py's scheduler client — takes the same
``--master`` forms (``host:port``, ``http(s)://host:port``, a comma list of those, or ``zk://hosts/path``
naming the ``json.info_`` group of paas_common.zkleader) and follows a standby's 307, whose ``Location``
Mesos writes protocol-relative (``//host:port/path``).  Those parts are pure and live here once, with
one blocking ZooKeeper lookup that asyncio callers run in ``asyncio.to_thread``.  Each caller keeps its
own wording of errors and its own retry policy.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from kazoo.client import KazooClient

from paas_common.zkleader import ZkUrl, leader_info, leader_url, parse_zk_url

MasterSpec = ZkUrl | tuple[str, ...]  # the group to ask, or base URLs to try in turn


class InvalidPort(ValueError):
    """An address whose port is unreadable, or missing where there is no default."""


def address(
    text: str, *, default_port: int | None = None, schemes: tuple[str, ...] = ("http", "https")
) -> str:
    """``host[:port]`` or ``scheme://host[:port][/]`` → ``scheme://host:port`` (IPv6 hosts bracketed).

    ValueError for another scheme, a path or a query (they would be dropped silently); :class:`InvalidPort`
    when the port is unreadable, or absent without ``default_port``.
    """
    text = text.strip()
    parts = urlsplit(text if "//" in text else f"//{text}", scheme=schemes[0])
    try:
        port = parts.port or default_port
    except ValueError:
        raise InvalidPort(f"invalid port in {text!r}") from None
    if parts.scheme not in schemes or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"expected host:port or {schemes[0]}://host:port, got {text!r}")
    if port is None:
        raise InvalidPort(f"no port in {text!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


def parse_master(spec: str) -> MasterSpec:
    """``zk://hosts/path`` or ``host:port[,host:port…]`` (``http(s)://`` URLs too); ValueError otherwise."""
    spec = spec.strip()
    if spec.startswith("zk://"):
        return parse_zk_url(spec)
    try:
        return tuple(address(part) for part in spec.split(","))
    except ValueError:
        raise ValueError(f"expected host:port[,host:port...] or zk://host:port/path, got {spec!r}") from None


def redirect_base(current: str, location: str) -> str:
    """The leader's ``scheme://host:port`` from a 307 ``Location``: Mesos sends ``//host:port/path``
    (protocol-relative, so ``current``'s scheme); the docs show a bare ``host:port`` (mesos.md §2.6)."""
    scheme = urlsplit(current).scheme or "http"
    if location.startswith("//"):
        location = f"{scheme}:{location}"
    elif "://" not in location:
        location = f"{scheme}://{location}"
    parts = urlsplit(location)
    if not parts.netloc:
        raise ValueError(f"redirect to {location!r} names no master")
    return f"{parts.scheme}://{parts.netloc}"


def zk_leader_url(client: KazooClient, path: str) -> str | None:
    """The leading master's base URL from a connected session, or None while no master leads."""
    info = leader_info(client, path)
    return None if info is None else leader_url(info)


def leader_url_from_zk(zk: ZkUrl, timeout: float) -> str | None:
    """Blocking: a session of its own (connected within ``timeout``) just for :func:`zk_leader_url`.

    Raises kazoo's errors (``KazooTimeoutError`` when no server answers in time); the session is
    always closed.
    """
    client = KazooClient(hosts=zk.hosts, timeout=timeout)
    try:
        client.start(timeout=timeout)
        return zk_leader_url(client, zk.path)
    finally:
        client.stop()
        client.close()
