"""HTTP basic authentication and TLS for the REST API (reference §1.3 ``secured``).

Marathon's ``--http_credentials user:password`` puts Jetty's basic authenticator in front of every path
(``/*``, so ``/ping`` and ``/v2/events`` too) with the realm of ``--http_realm`` (default ``Mesosphere``);
a standby checks the credentials before it proxies, and forwards the ``Authorization`` header to the leader.
A missing or wrong credential gets 401 ``{"message":"Invalid username or password."}`` with
``WWW-Authenticate: Basic realm="…"``, and the handler never runs.

Marathon serves HTTPS from a Java keystore; we take PEM certificate and key files instead.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ssl
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from marathon_py.http.errors import HttpError

REALM = "Mesosphere"
INVALID = "Invalid username or password."
FORBIDDEN = "Not Authorized to perform this action!"


def _decode(header: str) -> tuple[bytes, bytes] | None:
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).partition(b":")
    except (binascii.Error, ValueError):
        return None
    return (user, password) if sep else None


class BasicAuth:
    """One user, as ``--http_credentials``: the user name ends at the first ``:``."""

    def __init__(self, credentials: str, realm: str = REALM) -> None:
        user, sep, password = credentials.partition(":")
        if not (sep and user and password):
            raise ValueError("The HTTP credentials must be specified in the form of 'user:password'.")
        self._user = user.encode()
        self._password = password.encode()
        self.realm = realm

    def accepts(self, authorization: str | None) -> bool:
        given = _decode(authorization) if authorization else None
        if given is None:
            return False
        user_ok = hmac.compare_digest(given[0], self._user)
        password_ok = hmac.compare_digest(given[1], self._password)
        return user_ok and password_ok

    def refusal(self) -> HttpError:
        return HttpError(401, INVALID, headers={"WWW-Authenticate": f'Basic realm="{self.realm}"'})

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.accepts(request.headers.get("Authorization")):
            raise self.refusal()
        return await handler(request)


def server_ssl_context(
    cert_file: str | Path, key_file: str | Path, password: str | None = None
) -> ssl.SSLContext:
    """The context ``web.TCPSite(ssl_context=…)`` serves HTTPS with (TLS 1.2 or later)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_file), str(key_file), password)
    return context


def leader_ssl_context(ca_file: str | Path | None = None, *, check_hostname: bool = True) -> ssl.SSLContext:
    """What a standby proxies to an HTTPS leader with; ``check_hostname=False`` is Marathon's
    ``--leader_proxy_ssl_ignore_hostname`` (the certificate chain is still verified)."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.check_hostname = check_hostname
    return context
