"""Waiting for a Marathon deployment: the edge around paasctl.progress (events, polls, clock, terminal).

The event stream is opened *before* the write, so even a deployment that ends at once leaves its events
in the queue.  Events move the state and say when the snapshots are worth reading again; ``GET
/v2/deployments`` and ``GET /v2/apps/ID`` are read on such events and every few seconds anyway, so a
missing or broken stream only makes the display slower.  The wait ends when the deployment is no longer
listed (reference §2.3); its final event gives the verdict, and when the stream missed it
:func:`paasctl.progress.settle` infers one.  Marathon out of reach for a while (a leader change) is
survived.  ``--timeout`` ends the wait with a CliError that says the deployment keeps running; Ctrl-C
(KeyboardInterrupt) passes to the caller, paasctl.marathon, which says the same.
"""

from __future__ import annotations

import math
import queue
import shutil
import sys
import time
from typing import Literal, TextIO
from urllib.parse import quote

from paasctl import progress
from paasctl.common import EXIT_CONNECTION, EXIT_TIMEOUT, CliError
from paasctl.marathonhttp import EventStream, Marathon, StreamEnded
from paasctl.progress import Progress

EVENT_TYPES = progress.DEPLOYMENT_EVENTS + progress.INSTANCE_EVENTS
POLL_WITH_EVENTS = 2.0  # seconds between snapshots while the stream is there to wake us earlier
POLL_WITHOUT_EVENTS = 0.5
MIN_REFRESH = 0.2  # at most this often, however many events arrive
FRAME_INTERVAL = 0.25  # TTY redraws (the elapsed time moves)
FINAL_EVENT_GRACE = 1.5  # deployment gone but no final event yet: how long the stream may still bring it
LOST_GRACE = 30.0  # Marathon unreachable this long in a row (longer than a leader change): give up
Mode = Literal["tty", "lines", "quiet"]


def app_path(app_id: str) -> str:
    return "/v2/apps/" + quote(app_id.strip("/"), safe="/")


class Display:
    """How progress reaches the operator: one line redrawn in place on a TTY, a line per change
    otherwise, nothing with ``--json``."""

    def __init__(self, mode: Mode, out: TextIO = sys.stdout) -> None:
        self.mode = mode
        self.out = out
        self._last = ""
        self._drawn = False

    @classmethod
    def for_stdout(cls, as_json: bool) -> Display:
        return cls("quiet" if as_json else ("tty" if sys.stdout.isatty() else "lines"))

    def note(self, line: str) -> None:
        """A line that stays (above the bar)."""
        if self.mode != "quiet":
            self.clear()
            self.out.write(line + "\n")
            self.out.flush()

    def show(self, p: Progress, elapsed: float) -> None:
        if self.mode == "tty":
            columns = shutil.get_terminal_size().columns
            self.out.write("\r" + progress.frame(p, elapsed, columns) + "\x1b[K")
            self.out.flush()
            self._drawn = True
        elif self.mode == "lines" and progress.status_line(p) != self._last:
            self._last = progress.status_line(p)
            self.out.write(progress.change_line(p, elapsed) + "\n")
            self.out.flush()

    def clear(self) -> None:
        if self._drawn:
            self.out.write("\r\x1b[K")
            self.out.flush()
            self._drawn = False


class Waiter:
    """One wait: the stream (or None), the state, and when the snapshots were read."""

    def __init__(self, marathon: Marathon, stream: EventStream | None, display: Display) -> None:
        self.marathon = marathon
        self.stream = stream
        self.display = display
        self._polled = -math.inf
        self._unreachable_since: float | None = None

    def poll(self, p: Progress, now: float) -> Progress:
        """Read ``/v2/deployments`` and the affected apps; a Marathon out of reach is waited out."""
        self._polled = now
        try:
            p = progress.fold_deployments(p, self.marathon.get("/v2/deployments"))
            for app in p.apps:
                doc = self.marathon.get_or_none(app_path(app.id))
                info = doc.get("app") if isinstance(doc, dict) else None
                p = progress.fold_app(p, app.id, info if isinstance(info, dict) else None)
        except CliError as e:
            if e.code != EXIT_CONNECTION:
                raise
            self._unreachable_since = self._unreachable_since or now
            if now - self._unreachable_since >= LOST_GRACE:
                raise CliError(
                    f"lost Marathon while waiting for deployment {p.deployment_id} "
                    f"(it may still be running): {e.message}",
                    EXIT_CONNECTION,
                    "connection",
                ) from None
            self.marathon.note(f"{e.message}; still waiting")
            return p
        self._unreachable_since = None
        return p

    def _interval(self, p: Progress) -> float:
        if p.outcome is not None:
            return MIN_REFRESH
        return POLL_WITH_EVENTS if self.stream is not None else POLL_WITHOUT_EVENTS

    def _events(self, p: Progress, timeout: float) -> tuple[Progress, bool]:
        """Fold what the stream brings within ``timeout``; True if the snapshots should be read again."""
        if self.stream is None:
            time.sleep(max(timeout, 0.0))
            return p, False
        refresh = False
        block = True
        while True:
            try:
                item = (
                    self.stream.events.get(timeout=max(timeout, 0.001))
                    if block
                    else self.stream.events.get_nowait()
                )
            except queue.Empty:
                return p, refresh
            block = False
            if isinstance(item, StreamEnded):
                self.marathon.note(f"{item.why}: polling instead")
                self.stream.close()
                self.stream = None
                return p, True
            refresh = refresh or progress.touches(p, item)
            p = progress.fold_event(p, item)

    def run(self, p: Progress, started: float, timeout: float) -> Progress:
        """Wait until the deployment is no longer listed, or raise at the deadline."""
        deadline = started + timeout
        ended_at: float | None = None
        refresh = True
        while True:
            now = time.monotonic()
            if (refresh and now - self._polled >= MIN_REFRESH) or now - self._polled >= self._interval(p):
                p = self.poll(p, now)
                refresh = False
            if p.ended:
                ended_at = now if ended_at is None else ended_at
                if p.outcome is not None or self.stream is None or now - ended_at >= FINAL_EVENT_GRACE:
                    return progress.settle(p)
            else:
                ended_at = None
            if p.outcome is None:  # else the verdict follows at once
                self.display.show(p, now - started)
            if now >= deadline:
                raise CliError(
                    progress.timeout_message(p, timeout),
                    EXIT_TIMEOUT,
                    "timeout",
                    deploymentId=p.deployment_id,
                )
            next_poll = self._polled + (MIN_REFRESH if refresh else self._interval(p))
            wake = min(next_poll, now + FRAME_INTERVAL, deadline) - now
            p, more = self._events(p, wake)
            refresh = refresh or more


def wait(
    marathon: Marathon,
    stream: EventStream | None,
    p: Progress,
    *,
    started: float,
    timeout: float,
    display: Display,
) -> Progress:
    """Wait for ``p``'s deployment (see the module docstring); the stream is closed afterwards.
    KeyboardInterrupt passes through (the caller knows what to say)."""
    waiter = Waiter(marathon, stream, display)
    try:
        return waiter.run(p, started, timeout)
    finally:
        display.clear()
        if waiter.stream is not None:
            waiter.stream.close()
