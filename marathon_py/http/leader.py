"""Leader handling of the REST API (reference §1.2; ``api/LeaderProxyFilter.scala``, ``api/forwarder/*``).

Every request passes here after authentication:

* the leader serves it, and stamps ``X-Marathon-Leader: <scheme>://<me>`` (plus Marathon's
  ``X-Frame-Options``/``X-XSS-Protection``) on the response;
* a standby proxies it to the leader: method, path and query, headers (less hop-by-hop ones and ``Host``)
  and body go out with ``X-Marathon-Via: 1.1 <me>`` and ``X-Forwarded-For``; the leader's status, headers
  (``Location``, ``Marathon-Deployment-Id``, ``X-Marathon-Leader`` …) and body come back unchanged (a
  compressed body stays compressed). A request that already came through us is a loop: 502
  ``Detected proxying loop.``; a refused connection 502, a timeout 504, any other failure 500;
* ``/v2/events*`` on a standby is redirected (302) to the leader instead: a stream must not hang on a proxy;
* while leadership is unsettled (nobody leads, or the elected leader is said to be us but we do not lead
  yet) the request waits ``retries`` times ``retry_interval`` (Marathon: 10 times 250 ms) for it to settle,
  then gets 502 ``Could not determine the current leader``.

Leadership comes from a callable (the election edge), read afresh for every request.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict
from yarl import URL

from marathon_py.http.errors import HttpError
from marathon_py.http.events import EVENTS_PATH

log = logging.getLogger(__name__)

HEADER_LEADER = "X-Marathon-Leader"
HEADER_VIA = "X-Marathon-Via"
NO_LEADER = "Could not determine the current leader"
LOOP = "Detected proxying loop."
REFUSED = "Connection to leader refused."
TIMED_OUT = "Connection to leader timed out."
BAD_CONNECTION = "Failed to successfully establish a connection to the leader."
# hop-by-hop headers (RFC 9110 §7.6.1) and the ones the client library sets itself
_NOT_FORWARDED = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade", "host", "content-length"}
)  # fmt: skip


@dataclass(frozen=True)
class Leadership:
    """Whether we lead, and the leader's ``host:port`` as the election names it (None: unknown)."""

    leading: bool
    leader: str | None


class LeaderProxy:
    """The §1.2 middleware. ``me`` is our own ``host:port`` (Marathon's participant id)."""

    def __init__(
        self,
        me: str,
        leadership: Callable[[], Leadership],
        *,
        scheme: str = "http",
        retries: int = 10,
        retry_interval: float = 0.25,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        client_ssl: ssl.SSLContext | None = None,
    ) -> None:
        self.me = me
        self.leadership = leadership
        self.scheme = scheme
        self.retries = retries
        self.retry_interval = retry_interval
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._client_ssl = client_ssl
        self._session: aiohttp.ClientSession | None = None
        self.via = f"1.1 {me}"

    def url(self, host_port: str) -> str:
        return f"{self.scheme}://{host_port}"

    def install(self, app: web.Application) -> None:
        """Stamp every response with the leader's URL; close the proxy's connections with the app."""
        app.on_response_prepare.append(self._stamp)
        app.on_cleanup.append(self._close)

    async def _stamp(self, request: web.Request, response: web.StreamResponse) -> None:
        state = self.leadership()
        leader = self.me if state.leading else state.leader
        if leader is not None and HEADER_LEADER not in response.headers:
            response.headers[HEADER_LEADER] = self.url(leader)
        if state.leading:
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("X-XSS-Protection", "1; mode=block")

    async def _close(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def settled(self) -> Leadership:
        """Leadership once it is consistent, or 502 after the bounded retries."""
        for attempt in range(self.retries + 1):
            state = self.leadership()
            if state.leading or (state.leader is not None and state.leader != self.me):
                return state
            if attempt < self.retries:
                await asyncio.sleep(self.retry_interval)
        log.error("inconsistent leadership state, refusing request for ourselves at %s", self.me)
        raise HttpError(502, NO_LEADER)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        state = await self.settled()
        if state.leading:
            return await handler(request)
        assert state.leader is not None
        target = self.url(state.leader) + request.raw_path
        if request.path.startswith(EVENTS_PATH):
            raise web.HTTPFound(target)
        return await self.forward(request, target)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                auto_decompress=False,  # pass the leader's Content-Encoding through
                cookie_jar=aiohttp.DummyCookieJar(),  # never carry one client's cookies to another
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            )
        return self._session

    def _request_headers(self, request: web.Request) -> CIMultiDict[str]:
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED)
        headers.add(HEADER_VIA, self.via)
        forwarded = [v for v in (request.headers.get("X-Forwarded-For"), request.remote) if v]
        headers["X-Forwarded-For"] = ",".join(forwarded)
        return headers

    async def forward(self, request: web.Request, target: str) -> web.Response:
        """Send the request to ``target`` and answer with the leader's response."""
        if self.via in request.headers.getall(HEADER_VIA, []):
            log.error("Prevent proxy cycle, rejecting request %s %s", request.method, request.path)
            raise HttpError(502, LOOP)
        body = await request.read()
        log.info("Proxying request to %s %s from %s", request.method, target, self.me)
        try:
            async with self._client().request(
                request.method,
                URL(target, encoded=True),
                headers=self._request_headers(request),
                data=body or None,
                allow_redirects=False,
                ssl=self._client_ssl if self._client_ssl is not None else True,
            ) as upstream:
                payload = await upstream.read()
                headers = CIMultiDict(
                    (k, v) for k, v in upstream.headers.items() if k.lower() not in _NOT_FORWARDED
                )
                status, reason = upstream.status, upstream.reason
        except aiohttp.ClientConnectorError as exc:
            log.error("%s: %s", REFUSED, exc)
            raise HttpError(502, REFUSED) from None
        except TimeoutError:
            log.error("%s %s %s", TIMED_OUT, request.method, target)
            raise HttpError(504, TIMED_OUT) from None
        except aiohttp.ClientError as exc:
            log.error("%s: %s", BAD_CONNECTION, exc)
            raise HttpError(500, BAD_CONNECTION) from None
        headers.add(HEADER_VIA, self.via)
        return web.Response(status=status, reason=reason, headers=headers, body=payload)
