"""The bridge: Marathon's apps and events in, HAProxy's config out, as marathon-lb's ``--sse`` mode (§9.2).

* Snapshot: ``GET /v2/apps?embed=apps.tasks`` (``Accept: application/json``, 3.05 s to connect, 46 s to
  read), trying each ``--marathon`` URL from the last one that answered.
* Events: ``GET /v2/events?plan-format=light&event_type=…`` (``Accept: text/event-stream``, one redirect
  followed with the credentials kept, as marathon-lb's pycurl ``UNRESTRICTED_AUTH``; 200 required). Any
  event of :data:`RELEVANT_EVENTS` marks the snapshot stale. Marathon calls its stream a cache-invalidation
  signal (§3), so events are never applied as deltas: the bridge re-reads the whole snapshot.
* Re-reads are coalesced: a burst of events within ``debounce`` seconds costs one; a (re)connected stream
  and SIGHUP cause one too (events may have been missed), and one happens every ``resync_interval``
  (marathon-lb: 300 s) regardless.
* A stream silent for ``stream_idle_timeout`` (marathon-lb: < 1 byte/s for 300 s) is dead: reconnect at
  once. Other failures reconnect after a jittered wait, times 1.5 each time up to ``max_backoff`` (300 s), the
  backoff reset once a stream lasted 10 minutes.
* A config ``haproxy -c`` rejects is not installed. Unless ``config_cleanup`` is off, the bridge then
  builds the largest valid config by adding apps one at a time and leaves out those that break it
  (marathon-lb's ``make_config_valid_and_regenerate``), so one bad label does not freeze routing for all.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import contextlib
import json
import logging
import random
import socket
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

from marathon_py.lb.config import App, LbOptions, Rendered, render_config, task_hosts
from marathon_py.lb.haproxy import Applied, HAProxy, HAProxyError, Outcome

log = logging.getLogger(__name__)

RELEVANT_EVENTS = frozenset(
    {
        "api_post_event",
        "status_update_event",
        "health_status_changed_event",
        "instance_health_changed_event",
        "unknown_instance_terminated_event",
        "app_terminated_event",
        "deployment_success",
        "deployment_failed",
        "deployment_step_success",
        "deployment_step_failure",
        "group_change_success",
    }
)
BACKOFF_RESET_AFTER = 600.0
MAX_EVENT_BYTES = 16 * 1024 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)


class MarathonError(RuntimeError):
    """No Marathon answered as expected."""


@dataclass(frozen=True)
class BridgeConfig:
    marathons: tuple[str, ...]
    options: LbOptions = field(default_factory=LbOptions)
    auth: tuple[str, str] | None = None
    resync_interval: float = 300.0
    retry_interval: float = 5.0
    debounce: float = 0.5
    backoff_initial: float = 3.0
    max_backoff: float = 300.0
    connect_timeout: float = 3.05
    read_timeout: float = 46.0
    stream_idle_timeout: float = 300.0
    config_cleanup: bool = True


class SseParser:
    """Server-sent events from byte chunks: (event name, data) per frame; comments and heartbeats skipped."""

    def __init__(self, limit: int = MAX_EVENT_BYTES) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._event = ""
        self._data: list[str] = []
        self._limit = limit

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        self._buffer += self._decoder.decode(chunk)
        frames = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                break
            line, self._buffer = self._buffer[: cut[0]], self._buffer[cut[1] :]
            frame = self._line(line)
            if frame is not None:
                frames.append(frame)
        if len(self._buffer) > self._limit:
            raise ValueError(f"an event line longer than {self._limit} bytes")
        return frames

    def _line(self, line: str) -> tuple[str, str] | None:
        if not line:
            frame = (self._event, "\n".join(self._data)) if self._data or self._event else None
            self._event, self._data = "", []
            return frame
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None


def _line_end(text: str) -> tuple[int, int] | None:
    """(end of the first line, start of the next) for CRLF, LF or CR endings; ``None`` if incomplete."""
    for i, ch in enumerate(text):
        if ch == "\n":
            return i, i + 1
        if ch == "\r":
            if i + 1 == len(text):
                return None  # a CR may be the first half of a CRLF
            return i, i + 2 if text[i + 1] == "\n" else i + 1
    return None


def event_type(name: str, data: str) -> str:
    """The frame's type: its ``event:`` name, else the JSON payload's ``eventType``."""
    if name:
        return name
    try:
        doc = json.loads(data.split("\r\n")[0])
    except ValueError:
        return ""
    return str(doc.get("eventType", "")) if isinstance(doc, dict) else ""


@dataclass
class Backoff:
    """marathon-lb's reconnect wait: uniform in [0, current); current grows by ``factor`` to ``maximum``."""

    initial: float = 3.0
    maximum: float = 300.0
    factor: float = 1.5
    current: float = field(init=False)

    def __post_init__(self) -> None:
        self.current = self.initial

    def next_wait(self, rng: random.Random) -> float:
        wait = rng.random() * self.current
        self.current = min(self.current * self.factor, self.maximum)
        return wait

    def reset(self) -> None:
        self.current = self.initial


@dataclass
class Outage:
    """How loud a failed sync is: the first failure of an outage is an ERROR, repeats every ``remind``
    seconds a WARNING with its length, the rest DEBUG (a bridge started before Marathon, or cut off from it,
    retries every 5 s and would fill the journal with ERRORs); the first success after it says how long it
    lasted."""

    remind: float = 60.0
    since: float | None = None
    last_said: float = 0.0

    def failed(self, now: float) -> tuple[int, str]:
        if self.since is None:
            self.since = self.last_said = now
            return logging.ERROR, "sync failed"
        if now - self.last_said >= self.remind:
            self.last_said = now
            return logging.WARNING, f"sync still failing after {now - self.since:.0f}s"
        return logging.DEBUG, "sync failed again"

    def succeeded(self, now: float) -> str | None:
        """The recovery message when an outage ends, else None."""
        if self.since is None:
            return None
        lasted, self.since = now - self.since, None
        return f"sync works again after {lasted:.0f}s"


class MarathonClient:
    """The two calls marathon-lb makes, over several Marathon URLs, sticking to the last one that answered."""

    def __init__(self, session: aiohttp.ClientSession, cfg: BridgeConfig) -> None:
        self._session = session
        self._urls = [u.rstrip("/") for u in cfg.marathons]
        self._current = 0
        # A header, not aiohttp's ``auth=``: it stays on the redirect we follow (and BasicAuth is deprecated).
        self._auth = {"Authorization": _basic(*cfg.auth)} if cfg.auth else {}
        self._cfg = cfg

    @property
    def current(self) -> str:
        return self._urls[self._current]

    async def apps(self) -> list[App]:
        """``GET /v2/apps?embed=apps.tasks`` → the ``apps`` list."""
        timeout = aiohttp.ClientTimeout(connect=self._cfg.connect_timeout, sock_read=self._cfg.read_timeout)
        headers = {"Accept": "application/json", **self._auth}
        errors = []
        for i in self._order():
            url = f"{self._urls[i]}/v2/apps?embed=apps.tasks"
            try:
                async with self._session.get(url, headers=headers, timeout=timeout) as resp:
                    if resp.status != 200:
                        raise MarathonError(f"HTTP {resp.status}: {(await resp.text())[:200]}")
                    doc = await resp.json(content_type=None)
                apps = doc["apps"]
                if not isinstance(apps, list):
                    raise MarathonError("'apps' is not a list")
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError, MarathonError) as e:
                errors.append(f"{url}: {e!r}")
                continue
            self._current = i
            return apps
        raise MarathonError("; ".join(errors))

    async def events(self, on_open: Callable[[str], None]) -> AsyncGenerator[str, None]:
        """Event types from ``/v2/events`` until the stream ends; ``on_open(url)`` once it is attached."""
        query = [("plan-format", "light")] + [("event_type", t) for t in sorted(RELEVANT_EVENTS)]
        timeout = aiohttp.ClientTimeout(
            connect=self._cfg.connect_timeout, sock_read=self._cfg.stream_idle_timeout
        )
        errors = []
        for i in self._order():
            url = URL(f"{self._urls[i]}/v2/events").with_query(query)
            try:
                resp = await self._open_stream(url, timeout)
            except (aiohttp.ClientError, TimeoutError, MarathonError) as e:
                errors.append(f"{url}: {e!r}")
                continue
            self._current = i
            async with resp:
                on_open(str(resp.url))
                parser = SseParser()
                async for chunk in resp.content.iter_any():
                    for name, data in parser.feed(chunk):
                        yield event_type(name, data)
            return
        raise MarathonError("; ".join(errors))

    async def _open_stream(self, url: URL, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache", **self._auth}
        for _ in range(2):  # the URL and at most one redirect (a standby's 302 to the leader, §1.2)
            resp = await self._session.get(url, headers=headers, timeout=timeout, allow_redirects=False)
            if resp.status in _REDIRECTS and "Location" in resp.headers:
                resp.release()
                url = url.join(URL(resp.headers["Location"]))
                continue
            if resp.status != 200:
                resp.release()
                raise MarathonError(f"HTTP {resp.status}")
            return resp
        raise MarathonError("more than one redirect")

    def _order(self) -> list[int]:
        n = len(self._urls)
        return [(self._current + k) % n for k in range(n)]


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Resolver:
    """Task host names → IPv4 addresses (what marathon-lb writes), cached while the host stays in use."""

    def __init__(self, timeout: float = 2.0) -> None:
        self._cache: dict[str, str] = {}
        self._timeout = timeout

    async def resolve(self, hosts: set[str]) -> dict[str, str]:
        missing = sorted(hosts - self._cache.keys())
        found = await asyncio.gather(*(self._one(h) for h in missing))
        self._cache.update({h: ip for h, ip in zip(missing, found, strict=True) if ip is not None})
        self._cache = {h: ip for h, ip in self._cache.items() if h in hosts}
        return dict(self._cache)

    async def _one(self, host: str) -> str | None:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, None, family=socket.AF_INET, type=socket.SOCK_STREAM), self._timeout
            )
        except (OSError, TimeoutError) as e:
            log.warning("cannot resolve task host %s: %s", host, e)
            return None
        return str(infos[0][4][0]) if infos else None


class Bridge:
    """Keeps ``haproxy`` serving what Marathon reports, until :meth:`stop`."""

    def __init__(
        self,
        cfg: BridgeConfig,
        client: MarathonClient,
        haproxy: HAProxy,
        *,
        resolver: Resolver | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.cfg = cfg
        self.client = client
        self.haproxy = haproxy
        self.resolver = resolver or Resolver()
        self.rng = rng or random.Random()
        self.last: Applied | None = None
        self.syncs = 0
        self._alive: dict[str, bool] = {}
        self._warnings: frozenset[str] = frozenset()
        self._dirty = asyncio.Event()
        self._stopping = asyncio.Event()
        haproxy.on_exit = lambda code: self.mark_dirty(f"haproxy exited with {code}")  # start it again

    def mark_dirty(self, why: str) -> None:
        """Re-read the snapshot soon (coalesced with whatever else asks within ``debounce``)."""
        log.debug("resync requested: %s", why)
        self._dirty.set()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Serve the last config at once if there is one, then follow Marathon until :meth:`stop`."""
        try:
            await self.haproxy.start_from_disk()
        except (HAProxyError, OSError) as e:
            log.error("cannot start haproxy from the last config: %s", e)
        self._dirty.set()
        loops = [asyncio.create_task(self._sync_loop()), asyncio.create_task(self._event_loop())]
        try:
            await self._stopping.wait()
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self.haproxy.stop()

    async def render(self) -> tuple[Sequence[App], Mapping[str, str], Rendered]:
        """The current snapshot, its resolved hosts and its config (remembering task health for next time)."""
        apps = await self.client.apps()
        addresses = await self.resolver.resolve(task_hosts(apps))
        rendered = render_config(apps, self.cfg.options, addresses, self._alive)
        self._alive = rendered.alive
        new_warnings = sorted(set(rendered.warnings) - self._warnings)
        self._warnings = frozenset(rendered.warnings)
        for warning in new_warnings:
            log.warning("%s", warning)
        return apps, addresses, rendered

    async def sync_once(self) -> Applied:
        """Read Marathon, render, check and install; on a rejected config, install the valid part."""
        apps, addresses, rendered = await self.render()
        applied = await self.haproxy.apply(rendered.text)
        if applied.outcome is Outcome.INVALID and self.cfg.config_cleanup:
            applied = await self.haproxy.apply(await self._valid_part(apps, addresses))
        self.last = applied
        self.syncs += 1
        level = logging.DEBUG if applied.outcome is Outcome.UNCHANGED else logging.INFO
        log.log(
            level, "config %s (%d services) %s", applied.outcome.value, len(rendered.services), applied.detail
        )
        return applied

    async def _valid_part(self, apps: Sequence[App], addresses: Mapping[str, str]) -> str:
        """The config of the apps that keep it valid, added one by one (apps adding nothing cost no check)."""
        kept: list[App] = []
        text = render_config(kept, self.cfg.options, addresses, self._alive).text
        for app in apps:
            candidate = render_config([*kept, app], self.cfg.options, addresses, self._alive).text
            if candidate == text:
                continue
            ok, output = await self.haproxy.check(candidate)
            if ok:
                kept.append(app)
                text = candidate
            else:
                log.error(
                    "app %s makes the HAProxy config invalid and is left out: %s", app.get("id"), output
                )
        return text

    async def _sync_loop(self) -> None:
        loop, outage = asyncio.get_running_loop(), Outage()
        wait = self.cfg.resync_interval
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), wait)
            await asyncio.sleep(self.cfg.debounce)
            self._dirty.clear()
            try:
                await self.sync_once()
                wait = self.cfg.resync_interval
                recovered = outage.succeeded(loop.time())
                if recovered:
                    log.info("%s", recovered)
            except (MarathonError, HAProxyError, OSError) as e:
                level, what = outage.failed(loop.time())
                log.log(level, "%s, retrying every %gs: %s", what, self.cfg.retry_interval, e)
                wait = min(self.cfg.retry_interval, self.cfg.resync_interval)
            except Exception:  # a bug or data we did not foresee must not end the bridge
                log.exception("sync failed, retrying in %gs", self.cfg.retry_interval)
                wait = min(self.cfg.retry_interval, self.cfg.resync_interval)

    async def _event_loop(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = Backoff(self.cfg.backoff_initial, self.cfg.max_backoff)
        while True:
            started = loop.time()
            wait: float | None = None
            try:
                async with contextlib.aclosing(self.client.events(self._attached)) as events:
                    async for kind in events:
                        if kind in RELEVANT_EVENTS:
                            self.mark_dirty(kind)
                log.warning("event stream from %s ended", self.client.current)
            except TimeoutError:
                log.info("event stream silent for %gs, reconnecting", self.cfg.stream_idle_timeout)
                wait = 0.0
            except (aiohttp.ClientError, MarathonError, ValueError) as e:
                log.warning("event stream: %s", e)
            except Exception:  # as in the sync loop: log, back off, reconnect
                log.exception("event stream failed")
            if loop.time() - started > BACKOFF_RESET_AFTER:
                backoff.reset()
            wait = backoff.next_wait(self.rng) if wait is None else wait
            log.info("reconnecting to the event stream in %.1fs", wait)
            await asyncio.sleep(wait)

    def _attached(self, url: str) -> None:
        log.info("following events at %s", url)
        self.mark_dirty("event stream attached")
