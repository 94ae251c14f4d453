"""The event bus and ``GET /v2/events`` as server-sent events (reference §3, §9.1, §9.2).

Marathon's ``core/event/impl/stream/*`` and Jetty's ``EventSourceServlet``, which we follow:

* The stream needs ``Accept: text/event-stream`` (else 405, Jetty's ``HttpServlet.doGet``); the answer is
  200 ``text/event-stream`` with ``Connection: close``, frames ``event: <type>\\r\\ndata: <json>\\r\\n\\r\\n``
  (CRLF as Jetty writes them) and a heartbeat (every 10 s by default) that is an SSE comment, which every
  client skips.
* ``event_type=<t>`` (repeatable) keeps only those types; none means all. ``plan-format=light`` drops
  ``plan.original``/``plan.target`` from deployment events; without it a subscriber gets the full plan,
  which marathon-python's event parser needs (§9.1; marathon-lb asks for ``light``).
* A new stream publishes ``event_stream_attached`` to every stream (itself included), a closed one
  ``event_stream_detached``; both carry the subscriber's ``remoteAddress``.
* Each stream holds at most ``max_outstanding`` (``--event_stream_max_outstanding_messages``, 1024) events
  that arrived while it was still writing the previous ones; one more and the connection is dropped
  (aborted), so a slow consumer costs bounded memory and never slows the others or the publisher.
* ``close()`` (leadership lost) drops every stream and refuses new ones with 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from typing import Any

from aiohttp import web

from marathon_py.eventjson import iso
from marathon_py.http.errors import HttpError, dumps

log = logging.getLogger(__name__)

EVENTS_PATH = "/v2/events"
MAX_OUTSTANDING = 1024
HEARTBEAT_INTERVAL = 10.0
HEARTBEAT = b":\r\n"
EVENT_STREAM = "text/event-stream"


def light_form(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The event as ``plan-format=light`` shows it: the plan without ``original`` and ``target``."""
    plan = event.get("plan")
    if not isinstance(plan, Mapping) or not ("original" in plan or "target" in plan):
        return event
    light_plan = {k: v for k, v in plan.items() if k not in ("original", "target")}
    return {k: (light_plan if k == "plan" else v) for k, v in event.items()}


def frame(event_type: str, payload: Mapping[str, Any]) -> bytes:
    """One SSE frame; compact JSON never spans lines, so one ``data:`` line carries it."""
    return b"event: %s\r\ndata: %s\r\n\r\n" % (event_type.encode(), dumps(payload))


class Subscriber:
    """One stream's filter, format and bounded backlog."""

    def __init__(self, remote: str, event_types: Collection[str], light: bool, max_outstanding: int) -> None:
        self.remote = remote
        self.event_types = frozenset(event_types)
        self.light = light
        self.max_outstanding = max_outstanding
        self.dropped = False
        self.on_drop: Callable[[], None] | None = None
        self._backlog: deque[bytes] = deque()
        self._ready = asyncio.Event()

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    def offer(self, data: bytes) -> bool:
        """Queue a frame; False when the backlog is full (the caller drops us)."""
        if len(self._backlog) >= self.max_outstanding:
            return False
        self._backlog.append(data)
        self._ready.set()
        return True

    def drop(self) -> None:
        self.dropped = True
        self._backlog.clear()
        self._ready.set()
        if self.on_drop is not None:
            self.on_drop()

    async def next_batch(self, timeout: float) -> list[bytes] | None:
        """Everything queued (``[]`` after ``timeout`` without events: time for a heartbeat), or None once
        dropped."""
        if not self._backlog and not self.dropped:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout)
        self._ready.clear()
        if self.dropped:
            return None
        batch = list(self._backlog)
        self._backlog.clear()
        return batch


class EventBus:
    """Fans events out to the streams; ``publish`` never blocks."""

    def __init__(
        self, *, max_outstanding: int = MAX_OUTSTANDING, clock: Callable[[], float] = time.time
    ) -> None:
        self.max_outstanding = max_outstanding
        self.clock = clock
        self.closed = False
        self._subscribers: list[Subscriber] = []

    def __len__(self) -> int:
        return len(self._subscribers)

    def publish(self, event: Mapping[str, Any], full: Mapping[str, Any] | None = None) -> None:
        """Send ``event`` (Marathon's JSON, with ``eventType`` and ``timestamp``) to every stream that wants
        it; ``full`` is its full-plan form when it differs (``outputs.Event.full``)."""
        event_type = str(event["eventType"])
        frames: dict[bool, bytes] = {}
        overflowed: list[Subscriber] = []
        for sub in list(self._subscribers):
            if not sub.wants(event_type):
                continue
            if sub.light not in frames:
                doc = light_form(event) if sub.light else (full if full is not None else event)
                frames[sub.light] = frame(event_type, doc)
            if not sub.offer(frames[sub.light]):
                overflowed.append(sub)
        for sub in overflowed:
            log.warning("Closing connection for slow event consumer %s.", sub.remote)
            sub.drop()
            self._remove(sub)

    def _stream_event(self, event_type: str, remote: str) -> None:
        self.publish({"remoteAddress": remote, "eventType": event_type, "timestamp": iso(self.clock())})

    def subscribe(self, remote: str, event_types: Collection[str] = (), light: bool = False) -> Subscriber:
        if self.closed:
            raise HttpError(503, "Not the leader: no event stream")
        sub = Subscriber(remote, event_types, light, self.max_outstanding)
        self._subscribers.append(sub)
        self._stream_event("event_stream_attached", remote)
        return sub

    def _remove(self, sub: Subscriber) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)
            self._stream_event("event_stream_detached", sub.remote)

    def unsubscribe(self, sub: Subscriber) -> None:
        self._remove(sub)

    def close(self) -> None:
        """Leadership lost: end every stream, accept no new one."""
        self.closed = True
        subscribers, self._subscribers = self._subscribers, []
        for sub in subscribers:
            sub.drop()


def accepts_event_stream(request: web.Request) -> bool:
    """Whether any ``Accept`` media range is ``text/event-stream`` (Jetty wants exactly that value)."""
    for header in request.headers.getall("Accept", []):
        for media_range in header.split(","):
            if media_range.split(";", 1)[0].strip().lower() == EVENT_STREAM:
                return True
    return False


class EventStream:
    """``GET /v2/events`` over an ``EventBus``."""

    def __init__(self, bus: EventBus, heartbeat_interval: float = HEARTBEAT_INTERVAL) -> None:
        self.bus = bus
        self.heartbeat_interval = heartbeat_interval

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(EVENTS_PATH, self.stream, allow_head=False)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        if not accepts_event_stream(request):
            raise HttpError(405, "HTTP method GET is not supported by this URL")
        light = request.query.get("plan-format") == "light"
        sub = self.bus.subscribe(request.remote or "", request.query.getall("event_type", []), light)
        sub.on_drop = lambda: _abort(request)
        response = web.StreamResponse(headers={"Content-Type": f"{EVENT_STREAM};charset=utf-8"})
        response.force_close()
        try:
            await response.prepare(request)
            while (batch := await sub.next_batch(self.heartbeat_interval)) is not None:
                await response.write(b"".join(batch) if batch else HEARTBEAT)
        except ConnectionError:
            log.info("event stream to %s closed by the client", sub.remote)
        finally:
            self.bus.unsubscribe(sub)
        return response


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()
