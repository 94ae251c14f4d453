"""HTTP to Marathon for ``paasctl app`` and ``paasctl deployments``: requests with failover and basic
auth, Marathon's error bodies as one CliError, and the ``/v2/events`` server-sent-event stream.

Any Marathon will do: a standby proxies every request to the leader (reference §1.2), so ``--marathon``
(repeatable) lists servers to try in order, and the next one is tried only when a server cannot be
reached — a write that reached one is never sent twice.  ``/v2/events`` is the exception to proxying: a
standby answers 302 to the leader, which the stream follows.  Refusals keep Marathon's message and
details (paasctl.marathonformat words them); a server that cannot be reached is exit 3.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import queue
import socket
import ssl
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from paas_common.mesosmaster import InvalidPort, address
from paasctl.common import EXIT_CONNECTION, CliError, UsageError
from paasctl.marathonformat import error_kind, error_message
from paasctl.mesoshttp import describe_error

MARATHON_PORT = 8080
DEFAULT_MARATHON = f"http://127.0.0.1:{MARATHON_PORT}"
REPLY_TIMEOUT = 30.0  # once connected: Marathon answers a write after its ZooKeeper writes (itself ≤ 10 s)
STREAM_IDLE = 35.0  # > 3 heartbeats (every 10 s, §3): a silent stream is a dead one
MAX_HOPS = 3  # /v2/events redirects followed: standby → leader, plus a leader change
IDEMPOTENT = frozenset({"GET", "HEAD"})  # safe to send again to the next server after a failure mid-way
Query = Mapping[str, str] | Sequence[tuple[str, str]]
JSON_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}


def marathon_url(value: str) -> str:
    """``host[:port]`` or ``http(s)://host[:port]`` → ``scheme://host:port``; UsageError otherwise."""
    try:
        return address(value, default_port=MARATHON_PORT)
    except InvalidPort:
        raise UsageError(f"--marathon {value!r}: invalid port") from None
    except ValueError:
        raise UsageError(f"--marathon {value!r}: expected host:port or http(s)://host:port") from None


def basic_auth(value: str) -> str:
    """An argparse ``type`` for ``--user user:password``: the ``Authorization`` header's value."""
    user, sep, _password = value.partition(":")
    if not sep or not user:
        raise argparse.ArgumentTypeError("invalid --user (expected user:password)")
    return "Basic " + base64.b64encode(value.encode()).decode()


@dataclass(frozen=True)
class Answer:
    """A whole response: status, headers (lower-case names), the body parsed as JSON when it is JSON."""

    status: int
    headers: Mapping[str, str]
    body: Any
    url: str


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


class Marathon:
    """The servers of ``--marathon`` and how to talk to them; remembers the one that answered last."""

    def __init__(
        self, urls: Sequence[str], *, auth: str | None, timeout: float, verbose: bool = False
    ) -> None:
        self.urls = list(dict.fromkeys(marathon_url(u) for u in urls))
        self.auth = auth
        self.timeout = timeout
        self.verbose = verbose
        self._first = 0

    def note(self, message: str) -> None:
        if self.verbose:
            sys.stderr.write(f"paasctl: {message}\n")

    def headers(self, extra: Mapping[str, str]) -> dict[str, str]:
        return {**extra, **({"Authorization": self.auth} if self.auth else {})}

    def connect(self, url: str) -> http.client.HTTPConnection:
        """A connection to ``url``'s server, connected within the connect timeout (OSError otherwise)."""
        parts = urlsplit(url)
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            ctx = ssl.create_default_context()
            conn = http.client.HTTPSConnection(
                parts.hostname or "", parts.port, timeout=self.timeout, context=ctx
            )
        else:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=self.timeout)
        try:
            conn.connect()
        except BaseException:
            conn.close()
            raise
        return conn

    def call(
        self,
        method: str,
        path: str,
        doc: Any = None,
        *,
        query: Query | None = None,
        expect: Sequence[int] = (200, 201, 202, 204),
    ) -> Answer:
        """One request; an answer outside ``expect`` becomes Marathon's message as a CliError."""
        target = f"{path}?{urlencode(query)}" if query else path
        body = None if doc is None else json.dumps(doc).encode()
        answer = self._send(method, target, body)
        if answer.status not in expect:
            kind, code = error_kind(answer.status, answer.body)
            raise CliError(
                error_message(
                    method, path, answer.status, answer.body, http.client.responses.get(answer.status, "")
                ),
                code,
                kind,
                status=answer.status,
                marathon=answer.body,
            )
        return answer

    def get(self, path: str, query: Query | None = None) -> Any:
        return self.call("GET", path, query=query, expect=(200,)).body

    def get_or_none(self, path: str) -> Any:
        """The document, or None when Marathon answers 404."""
        answer = self.call("GET", path, expect=(200, 404))
        return None if answer.status == 404 else answer.body

    def _order(self) -> list[int]:
        return [(self._first + i) % len(self.urls) for i in range(len(self.urls))]

    def _send(self, method: str, target: str, body: bytes | None) -> Answer:
        failures: list[str] = []
        for i in self._order():
            base = self.urls[i]
            try:
                conn = self.connect(base)
            except OSError as e:
                failures.append(f"{base}: {describe_error(e)}")
                self.note(f"cannot reach {base}: {describe_error(e)}")
                continue
            try:
                if conn.sock is not None:
                    conn.sock.settimeout(max(self.timeout, REPLY_TIMEOUT))
                conn.request(method, target, body, self.headers(JSON_HEADERS))
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException) as e:
                failures.append(f"{base}: {describe_error(e)}")
                if method in IDEMPOTENT:
                    continue
                raise CliError(
                    f"{method} {target}: lost {base} before its answer ({describe_error(e)}); "
                    "the change may or may not have been made",
                    EXIT_CONNECTION,
                    "connection",
                    url=base,
                ) from None
            finally:
                conn.close()
            self._first = i
            headers = {k.lower(): v for k, v in resp.getheaders()}
            return Answer(resp.status, headers, _parse(raw), base + target)
        raise CliError(
            f"cannot reach Marathon ({'; '.join(failures)})", EXIT_CONNECTION, "connection", urls=self.urls
        )

    def events(self, event_types: Sequence[str]) -> EventStream | None:
        """The ``/v2/events`` stream of these types (light plans), or None when it cannot be had: waiting
        then polls instead."""
        query = urlencode([("plan-format", "light"), *(("event_type", t) for t in event_types)])
        for i in self._order():
            stream = EventStream(self)
            try:
                stream.open(f"{self.urls[i]}/v2/events?{query}")
            except (OSError, http.client.HTTPException, StreamRefused) as e:
                self.note(f"no event stream from {self.urls[i]} ({describe_error(e)})")
                continue
            return stream
        self.note("waiting by polling only")
        return None


# ---------------------------------------------------------------------------------------------- events


class SseDecoder:
    """Server-sent events (the WHATWG format Marathon's Jetty writes): bytes in, ``(event, data)`` out.

    Lines end in LF or CRLF; ``:`` lines are comments (the heartbeat); a blank line ends an event.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        self._buffer += chunk
        out: list[tuple[str, str]] = []
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            line = raw.removesuffix(b"\r").decode("utf-8", "replace")
            if not line:
                if self._data:
                    out.append((self._event or "message", "\n".join(self._data)))
                self._event, self._data = "", []
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                self._event = value
            elif name == "data":
                self._data.append(value)
        return out


def decode_event(event_type: str, data: str) -> dict[str, Any] | None:
    """An SSE event's JSON object with its ``eventType`` (None when the data is not a JSON object)."""
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    doc.setdefault("eventType", event_type)
    return doc


class StreamRefused(Exception):
    """The server answered the stream request with something other than 200 (or too many redirects)."""


@dataclass(frozen=True)
class StreamEnded:
    """The stream's end (the reader's last item) and why."""

    why: str


class EventStream:
    """One ``/v2/events`` subscription: a daemon thread reads it into :attr:`events`."""

    def __init__(self, marathon: Marathon) -> None:
        self.marathon = marathon
        self.events: queue.Queue[dict[str, Any] | StreamEnded] = queue.Queue()
        self._conn: http.client.HTTPConnection | None = None
        self._sock: socket.socket | None = None
        self._resp: http.client.HTTPResponse | None = None
        self._reader: threading.Thread | None = None

    def open(self, url: str) -> None:
        headers = self.marathon.headers({"Accept": "text/event-stream"})
        for _ in range(MAX_HOPS + 1):
            parts = urlsplit(url)
            conn = self.marathon.connect(url)
            sock = conn.sock  # kept: http.client lets go of it once a Connection: close answer arrives
            try:
                conn.request("GET", f"{parts.path}?{parts.query}", headers=headers)
                resp = conn.getresponse()
            except BaseException:
                conn.close()
                raise
            location = resp.getheader("Location")
            if resp.status == 200 and sock is not None:
                self._start(conn, sock, resp)
                return
            resp.read()
            resp.close()
            conn.close()
            if resp.status not in (301, 302, 303, 307, 308) or not location:
                raise StreamRefused(f"{url}: HTTP {resp.status}")
            url = urljoin(url, location)
        raise StreamRefused(f"more than {MAX_HOPS} redirects (last to {url})")

    def _start(
        self, conn: http.client.HTTPConnection, sock: socket.socket, resp: http.client.HTTPResponse
    ) -> None:
        self._conn, self._sock, self._resp = conn, sock, resp
        sock.settimeout(STREAM_IDLE)
        self._reader = threading.Thread(target=self._read, args=(resp,), name="paasctl-events", daemon=True)
        self._reader.start()

    def _read(self, resp: http.client.HTTPResponse) -> None:
        decoder = SseDecoder()
        try:
            while chunk := resp.read1(65536):
                for event_type, data in decoder.feed(chunk):
                    doc = decode_event(event_type, data)
                    if doc is not None:
                        self.events.put(doc)
            self.events.put(StreamEnded("Marathon closed the event stream"))
        except (OSError, http.client.HTTPException, ValueError) as e:
            self.events.put(StreamEnded(f"event stream broken: {describe_error(e)}"))

    def close(self) -> None:
        """Shut the socket so the reader sees its end, then close (bounded wait for the reader)."""
        if self._sock is None:
            return
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        if self._reader is not None:
            self._reader.join(timeout=2.0)
        if self._resp is not None:
            self._resp.close()
        if self._conn is not None:
            self._conn.close()
        self._sock.close()
        self._sock = None
