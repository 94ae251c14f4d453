"""HTTP to Mesos masters and agents, as the master and agent commands and ``paasctl run`` need it.

A request follows 307/308 redirects (Mesos' ``//host:port/path`` form included), so a standby or a
leader change in between costs one more hop, not an error; a failure to talk to the server becomes one
:class:`CliError` naming it (exit 3).  The leading master is found the way frameworks find it: through
ZooKeeper's ``json.info_`` group (``zk://…``, read with paas_common.zkleader), or by asking any master
for ``/master/redirect`` (a standby answers 307 to the leader).  Addresses, redirects and the ZooKeeper
read are paas_common.mesosmaster's, as for every client of the master; the messages are paasctl's.
"""

from __future__ import annotations

import argparse
import http.client
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from paas_common.mesosmaster import InvalidPort, address, redirect_base, zk_leader_url
from paas_common.zkleader import ZkUrlError, parse_zk_url
from paasctl.common import EXIT_CONNECTION, EXIT_FAILED, CliError, UsageError
from paasctl.zk import open_session

MASTER_PORT = 5050
AGENT_PORT = 5051
MAX_HOPS = 3  # redirects followed per request: standby → leader, plus a leader change or two
JsonDoc = Any


def base_url(value: str, default_port: int, what: str) -> str:
    """``host:port``, ``host`` or ``http://host:port[/]`` → ``http://host:port``; UsageError otherwise."""
    try:
        return address(value, default_port=default_port, schemes=("http",))
    except InvalidPort:
        raise UsageError(f"{what} {value!r}: invalid port") from None
    except ValueError:
        raise UsageError(f"{what} {value!r}: expected host:port or http://host:port") from None


def describe_error(err: BaseException) -> str:
    """One short phrase for a socket or HTTP failure."""
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, http.client.RemoteDisconnected):
        return "connection closed without a reply"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


def open_url(
    method: str,
    url: str,
    *,
    timeout: float,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    follow: bool = True,
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, str]:
    """Send one request (following up to MAX_HOPS 307/308 redirects, Mesos' ``//host:port/path`` form
    included) and return the open connection, its response (body unread) and the URL that answered.

    Raises OSError or http.client.HTTPException; callers turn them into a CliError naming the service.
    """
    for _ in range(MAX_HOPS + 1):
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)
        try:
            path = parts.path or "/"
            conn.request(method, f"{path}?{parts.query}" if parts.query else path, body, dict(headers or {}))
            resp = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        location = resp.getheader("Location")
        if not (follow and resp.status in (307, 308) and location):
            return conn, resp, url
        resp.read()
        conn.close()
        url = urljoin(url, location)
    raise http.client.HTTPException(f"more than {MAX_HOPS} redirects (last to {url})")


@dataclass(frozen=True)
class Reply:
    """A whole response: status, body, the URL that answered and its Location (redirects not followed)."""

    status: int
    body: bytes
    url: str
    location: str | None = None


def request(
    method: str,
    url: str,
    *,
    timeout: float,
    what: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    follow: bool = True,
) -> Reply:
    """A whole request; a failure to talk to ``what`` becomes CliError (exit 3)."""
    try:
        conn, resp, final = open_url(method, url, timeout=timeout, body=body, headers=headers, follow=follow)
        try:
            return Reply(resp.status, resp.read(), final, resp.getheader("Location"))
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as e:
        base = "{0.scheme}://{0.netloc}".format(urlsplit(url))
        raise CliError(
            f"cannot reach {what} at {base}: {describe_error(e)}", EXIT_CONNECTION, "connection", url=base
        ) from None


class NotFound(CliError):
    """A 404: the endpoint does not exist on this server (older master or agent); callers fall back."""


def get_json(base: str, path: str, timeout: float, what: str) -> JsonDoc:
    """A 200's JSON document; 503 (no leader, recovering), 404 (:class:`NotFound`), others: CliError."""
    reply = request("GET", base + path, timeout=timeout, what=what)
    text = reply.body.decode("utf-8", "replace").strip()
    if reply.status == 503:  # a master without a leader, or one still recovering; an agent recovering
        why = f"{reply.url}: {text or 'Service Unavailable'}"
        if what == "master":
            raise CliError(f"no leading master ({why})", EXIT_CONNECTION, "no_leader", url=reply.url)
        raise CliError(f"{what} not ready ({why})", EXIT_CONNECTION, "unavailable", url=reply.url)
    if reply.status == 404:
        raise NotFound(f"{reply.url}: not found", EXIT_FAILED, "not_found", url=reply.url)
    if reply.status != 200:
        raise CliError(
            f"{reply.url}: HTTP {reply.status} {text[:200]}".rstrip(), kind="http", status=reply.status
        )
    try:
        return json.loads(reply.body)
    except ValueError:
        raise CliError(f"{reply.url}: reply is not JSON", kind="bad_reply", url=reply.url) from None


def get_first(base: str, paths: Sequence[str], timeout: float, what: str) -> tuple[str, JsonDoc]:
    """The first of ``paths`` that exists (Mesos' routes, then older aliases): (path, document)."""
    for path in paths[:-1]:
        try:
            return path, get_json(base, path, timeout, what)
        except NotFound:
            continue
    return paths[-1], get_json(base, paths[-1], timeout, what)


# ---------------------------------------------------------------------------------------------- leader


def find_leader(master: str, timeout: float, verbose: bool = False) -> str:
    """Base URL of the leading master, from ZooKeeper (``zk://``) or from any master's redirect."""
    if master.startswith("zk://"):
        return _leader_from_zk(master, timeout, verbose)
    base = base_url(master, MASTER_PORT, "--master")
    reply = request("GET", f"{base}/master/redirect", timeout=timeout, what="master", follow=False)
    if reply.status in (307, 308) and reply.location:
        try:
            leader = redirect_base(base, reply.location)
        except ValueError as e:
            raise CliError(f"{base}: {e}", EXIT_CONNECTION, "no_leader", url=base) from None
        return base_url(leader, MASTER_PORT, "leader")
    if reply.status == 503:
        raise CliError(f"no leading master (asked {base})", EXIT_CONNECTION, "no_leader", url=base)
    return base  # 404 (no /redirect) or 200: this master is as good a guess as any


def _leader_from_zk(master: str, timeout: float, verbose: bool) -> str:
    try:
        zk = parse_zk_url(master)
    except ZkUrlError as e:
        raise UsageError(f"--master: {e}") from None
    session = argparse.Namespace(zk=zk.hosts, auth=None, timeout=timeout, verbose=verbose)
    with open_session(session) as s:
        try:
            leader = zk_leader_url(s.client, zk.path)
        except Exception as e:
            raise s.error(e, zk.path) from None
    if leader is None:
        raise CliError(
            f"no leading master in {master} (no json.info_ member under {zk.path})",
            EXIT_CONNECTION,
            "no_leader",
        )
    return leader
