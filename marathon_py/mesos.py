"""marathon_py's connection to the Mesos master: one v1 scheduler API subscription, kept alive (asyncio edge).

An ordinary framework on the HTTP API, the path pymesos takes (shared/reference/mesos.md §2, §5, §6):
find the leader (``host:port`` list or ``zk://…`` through the ``json.info_`` znodes, each time in a short
ZooKeeper session: paas_common.mesosmaster), POST SUBSCRIBE with the stored framework id, follow 307s to
the leader, read the RecordIO stream, send calls with its ``Mesos-Stream-Id``.  A stream that ends or
stays silent for 5 heartbeat intervals is dead (mesos.md §2.4): the client re-subscribes with the same
framework id, with bounded exponential backoff, whichever master leads by then; 503 (no leader yet,
recovering) is retried the same way.

Delivery is at least once and the consumer decides: each event is awaited by ``handler`` in stream order,
and an UPDATE carrying a uuid is acknowledged only after the handler returned (``auto_ack``), or when the
consumer calls :meth:`MesosClient.ack` (e.g. once the new state is persisted).  A handler that raises
leaves the update unacknowledged, so the agent sends it again.  A new framework id is handed to
``on_framework_id`` before any event, so the caller persists it first (marathon.md §8).  What cannot be
retried ends the client and is raised by :meth:`MesosClient.join`: a SUBSCRIBE refused with 4xx, an
ERROR event (schedulers abort on it), a framework the master has removed, a failing ``on_framework_id``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Self

import aiohttp
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

from paas_common import recordio
from paas_common import schedapi as sc
from paas_common.mesosmaster import leader_url_from_zk, parse_master, redirect_base
from paas_common.zkleader import ZkUrl

log = logging.getLogger("marathon_py.mesos")

SCHEDULER_PATH = "/api/v1/scheduler"
REMOVED = "Framework has been removed"


class MesosError(Exception):
    """Base of what the client raises."""


class NotSubscribed(MesosError):
    """A call while no subscription is up (between streams, before the first, after close)."""


class CallError(MesosError):
    """The master refused a call: its status and body (Mesos' plain-text reason)."""

    def __init__(self, call_type: str, status: int, body: str) -> None:
        super().__init__(f"{call_type} refused: {status} {body}".rstrip())
        self.call_type, self.status, self.body = call_type, status, body


class SubscribeError(MesosError):
    """Fatal for this framework: a SUBSCRIBE refused with 4xx, or an ERROR event."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class FrameworkRemoved(SubscribeError):
    """The framework id was torn down (or its failover timeout expired); it can never subscribe again.
    Marathon crashes on this (CrashStrategy.FrameworkHasBeenRemoved): an operator must clear the id."""


@dataclass(frozen=True, slots=True)
class Disconnected:
    """Not a Mesos event: the client's own notice that a stream ended (offers on it are void)."""

    reason: str


ClientEvent = sc.Event | Disconnected
Handler = Callable[[ClientEvent], Awaitable[None]]


@dataclass(frozen=True)
class ClientOptions:
    heartbeat_misses: float = 5.0  # silence of this many heartbeat intervals means a dead stream
    max_stream_idle: float = 120.0  # bound on that silence whatever interval the master announces
    min_stream_idle: float = 1.0
    request_timeout: float = 10.0  # connect + reply headers of SUBSCRIBE, whole calls
    backoff_min: float = 0.5
    backoff_max: float = 15.0  # re-subscribe backoff (mesos.md §2.4: ≤ ~15 s)
    max_redirects: int = 9  # as mesos-go's httpsched
    zk_timeout: float = 10.0


class _Retry(Exception):
    """This attempt failed for a reason that may pass: try again after the backoff."""


def backoff(attempt: int, options: ClientOptions, rng: random.Random) -> float:
    """Exponential, capped, jittered (several Marathons must not re-subscribe in lockstep)."""
    cap = min(options.backoff_max, options.backoff_min * 2.0 ** min(attempt, 30))
    return cap * rng.uniform(0.5, 1.0)


class MesosClient:
    """One framework's subscription; ``async with`` it, or ``start()`` and ``close()``."""

    def __init__(
        self,
        master: str,
        framework_info: Mapping[str, Any],
        handler: Handler,
        *,
        framework_id: str | None = None,
        on_framework_id: Callable[[str], Awaitable[None]] | None = None,
        suppressed_roles: Iterable[str] = (),
        auto_ack: bool = True,
        options: ClientOptions | None = None,
    ) -> None:
        self.master = parse_master(master)
        self.info = dict(framework_info)
        self.handler = handler
        self.on_framework_id = on_framework_id
        self.suppressed_roles = tuple(suppressed_roles)
        self.auto_ack = auto_ack
        self.options = options or ClientOptions()
        self.leader: str | None = None  # the master holding our stream
        self.connected = False  # SUBSCRIBED received on the current stream
        self._framework_id = framework_id
        self._stream_id: str | None = None
        self._idle = self._idle_limit(sc.DEFAULT_HEARTBEAT_S)
        self._next_master = 0
        self._closing = False
        self._up = asyncio.Event()
        self._rng = random.Random()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def framework_id(self) -> str | None:
        return self._framework_id

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start subscribing in the background (see :meth:`wait_connected`)."""
        assert self._task is None, "started twice"
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        self._task = asyncio.create_task(self._run(), name="mesos-subscription")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def wait_connected(self, timeout: float) -> None:
        """Until SUBSCRIBED arrived on the current stream; the fatal error if the client ended instead."""
        assert self._task is not None, "not started"
        up = asyncio.ensure_future(self._up.wait())
        try:
            await asyncio.wait([up, self._task], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            up.cancel()
        if self._task.done():
            self._raise_failure()
            raise NotSubscribed("the client was closed")
        if not self.connected:
            raise TimeoutError(f"not subscribed within {timeout:g}s")

    async def join(self) -> None:
        """Until the client ends: by :meth:`close` (returns) or a fatal error (raised)."""
        assert self._task is not None, "not started"
        await asyncio.wait([self._task])
        self._raise_failure()

    def _raise_failure(self) -> None:
        assert self._task is not None and self._task.done()
        failure = None if self._task.cancelled() else self._task.exception()
        if failure is not None:
            raise failure

    async def close(self, teardown: bool = False) -> None:
        """Stop; with ``teardown`` first TEARDOWN (the master kills every task and forgets the framework)."""
        self._closing = True
        if teardown and self.connected:
            try:
                await self.call(sc.teardown())
            except (MesosError, aiohttp.ClientError, OSError, TimeoutError) as e:
                log.warning("TEARDOWN failed: %s", e)
        task = self._task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=self.options.request_timeout)
        if self._session is not None:
            await self._session.close()

    # ------------------------------------------------------------------ calls

    async def call(self, call: Mapping[str, Any]) -> None:
        """Send a :mod:`paas_common.schedapi` call on the current subscription (stamped with the framework
        id): 2xx, else :class:`CallError`."""
        fid, sid, leader = self._framework_id, self._stream_id, self.leader
        if not self.connected or fid is None or sid is None or leader is None or self._session is None:
            raise NotSubscribed(f"{call.get('type')}: no subscription is up")
        headers = {"Content-Type": "application/json", "Accept": "application/json", "Mesos-Stream-Id": sid}
        body = json.dumps(sc.stamp(call, fid)).encode()
        timeout = aiohttp.ClientTimeout(total=self.options.request_timeout)
        async with self._session.post(
            leader + SCHEDULER_PATH, data=body, headers=headers, allow_redirects=False, timeout=timeout
        ) as resp:
            if not 200 <= resp.status < 300:
                text = (await resp.text(errors="replace")).strip()
                raise CallError(str(call.get("type")), resp.status, text)

    async def ack(self, status: sc.TaskStatus) -> None:
        """Acknowledge an update (no-op for one without uuid, e.g. a reconciliation answer)."""
        doc = sc.acknowledgement(status)
        if doc is not None:
            await self.call(doc)

    # ------------------------------------------------------------------ the subscription loop

    def _idle_limit(self, heartbeat_interval: float) -> float:
        o = self.options
        return max(o.min_stream_idle, min(o.max_stream_idle, o.heartbeat_misses * heartbeat_interval))

    async def _run(self) -> None:
        attempt = 0
        try:
            while not self._closing:
                why = "the master closed the event stream"
                try:
                    await self._subscription()
                except (_Retry, aiohttp.ClientError, OSError, TimeoutError, recordio.RecordIOError) as e:
                    why = str(e) or type(e).__name__
                was_up = self.connected
                self._down()
                if self._closing:
                    return
                if was_up:
                    attempt = 0
                    await self._handle(Disconnected(why))
                delay = backoff(attempt, self.options, self._rng)
                attempt += 1
                log.warning("Mesos subscription down (%s); re-subscribing in %.2fs", why, delay)
                await asyncio.sleep(delay)
        finally:
            self._down()

    def _down(self) -> None:
        self.connected = False
        self._stream_id = None
        self._up.clear()

    async def _discover(self) -> str:
        if isinstance(self.master, ZkUrl):
            try:
                leader = await asyncio.to_thread(leader_url_from_zk, self.master, self.options.zk_timeout)
            except (KazooException, KazooTimeoutError) as e:
                raise _Retry(f"ZooKeeper {self.master.hosts}: {type(e).__name__} {e}") from None
            if leader is None:
                raise _Retry(f"no master in ZooKeeper at {self.master.path}")
            return leader
        url = self.master[self._next_master % len(self.master)]
        self._next_master += 1  # the next attempt tries the next one (a standby redirects anyway)
        return url

    async def _open(self) -> aiohttp.ClientResponse:
        """POST SUBSCRIBE, following redirects to the leader; the 200 response (its stream not yet read)."""
        assert self._session is not None
        base = await self._discover()
        body = json.dumps(sc.subscribe(self.info, self._framework_id, self.suppressed_roles)).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        post = self._session.post
        for _ in range(self.options.max_redirects + 1):
            url = base + SCHEDULER_PATH
            resp = await asyncio.wait_for(
                post(url, data=body, headers=headers, allow_redirects=False), self.options.request_timeout
            )
            self._stream_id = resp.headers.get("Mesos-Stream-Id") if resp.status == 200 else None
            if self._stream_id:
                self.leader = base
                return resp
            try:
                text = (
                    await asyncio.wait_for(resp.text(errors="replace"), self.options.request_timeout)
                ).strip()
            finally:
                resp.release()
            if resp.status == 200:
                raise _Retry(f"{url}: SUBSCRIBE answered without a Mesos-Stream-Id")
            if resp.status == 307:
                try:
                    base = redirect_base(base, resp.headers.get("Location", ""))
                except ValueError as e:
                    raise _Retry(f"{url}: {e}") from None
                continue
            if resp.status >= 500 or resp.status in (408, 429):
                raise _Retry(f"{url}: {resp.status} {text}")
            message = f"SUBSCRIBE as {self._framework_id or 'a new framework'} refused: {resp.status} {text}"
            raise (FrameworkRemoved if REMOVED in text else SubscribeError)(message, resp.status)
        raise _Retry(f"more than {self.options.max_redirects} redirects")

    async def _subscription(self) -> None:
        """One stream, from SUBSCRIBE to its end (returns on EOF, raises on silence or a broken stream)."""
        self._idle = self._idle_limit(sc.DEFAULT_HEARTBEAT_S)
        resp = await self._open()
        try:
            decoder = recordio.Decoder()
            while True:
                try:
                    chunk = await asyncio.wait_for(resp.content.readany(), self._idle)
                except TimeoutError:
                    raise _Retry(f"no event or heartbeat from {self.leader} for {self._idle:g}s") from None
                if not chunk:
                    return
                for record in decoder.feed(chunk):
                    try:
                        event = sc.decode_event(record)
                    except sc.EventError as e:  # a master bug; the agent resends an update we miss
                        log.error("dropped a malformed event from %s: %s", self.leader, e)
                        continue
                    await self._dispatch(event)
        finally:
            resp.close()

    async def _dispatch(self, event: sc.Event) -> None:
        if isinstance(event, sc.Subscribed):
            if event.framework_id != self._framework_id:
                if self.on_framework_id is not None:
                    await self.on_framework_id(event.framework_id)  # a failure here is fatal: raised
                self._framework_id = event.framework_id
            self._idle = self._idle_limit(event.heartbeat_interval)
            self.connected = True
            self._up.set()
            log.info("subscribed to %s as framework %s", self.leader, event.framework_id)
        handled = await self._handle(event)
        if isinstance(event, sc.Error):  # "The scheduler should abort on receiving this event"
            raise (FrameworkRemoved if REMOVED in event.message else SubscribeError)(
                f"the master sent ERROR: {event.message}"
            )
        if handled and self.auto_ack and isinstance(event, sc.Update) and event.status.needs_ack:
            try:
                await self.ack(event.status)
            except (MesosError, aiohttp.ClientError, OSError, TimeoutError) as e:
                log.warning("could not acknowledge %s of %s: %s", event.status.state, event.status.task_id, e)

    async def _handle(self, event: ClientEvent) -> bool:
        """Hand one event to the consumer; False when its handler failed (then nothing is acknowledged)."""
        try:
            await self.handler(event)
        except Exception:
            log.exception("event handler failed on %s", type(event).__name__)
            return False
        return True
