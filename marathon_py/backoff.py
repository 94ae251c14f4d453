"""Launch backoff per app and config version (reference §7.2; Marathon 1.10.26 ``RateLimiter.scala`` and
``NotifyRateLimiterStepImpl.scala``), pure: every call gets ``now`` (seconds since the epoch).

The first failure sets ``delay = min(backoffSeconds, maxLaunchDelaySeconds)``; each further one
``delay = min(delay * backoffFactor, maxLaunchDelaySeconds)``.  The next launch may happen at
``reference + delay``, where ``reference`` is the time of the last failure — or of the last launch
progress: an instance reaching Provisioned/Staging/Starting/Running *advances* the reference, so a
crash-looping app launches at most once per ``delay``.  The delay is forgotten on a new config version
(not on a scale), on ``DELETE /v2/queue/{id}/delay``, on agent drain, and once ``now > reference +
maxLaunchDelaySeconds`` passed without a new failure (the app ran long enough).
Durations are kept in nanoseconds and scaled with truncation, as Scala's ``FiniteDuration`` does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Instance conditions that grow the delay (``limitWorthy``) and those that advance it (``advanceWorthy``).
FAILURE_CONDITIONS = frozenset({"Dropped", "Error", "Failed", "Gone", "Finished"})
PROGRESS_CONDITIONS = frozenset({"Provisioned", "Staging", "Starting", "Running"})
_NS = 1_000_000_000


@dataclass(frozen=True)
class BackoffStrategy:
    backoff_seconds: float = 1.0
    factor: float = 1.15
    max_launch_delay_seconds: float = 300.0

    @classmethod
    def of_app(cls, app: Mapping[str, Any]) -> BackoffStrategy:
        return cls(
            float(app.get("backoffSeconds", 1)),
            float(app.get("backoffFactor", 1.15)),
            float(app.get("maxLaunchDelaySeconds", 300)),
        )


def config_version(app: Mapping[str, Any]) -> str | None:
    """The key a delay belongs to: the app's last config change (scaling keeps it)."""
    info = app.get("versionInfo") or {}
    value = info.get("lastConfigChangeAt") or app.get("version")
    return str(value) if value is not None else None


class LaunchDelay:
    """The backoff state of one app."""

    def __init__(self, strategy: BackoffStrategy | None = None, config: str | None = None) -> None:
        self.strategy = strategy or BackoffStrategy()
        self.config = config
        self._reference: float | None = None  # seconds
        self._delay_ns = 0

    @classmethod
    def of_app(cls, app: Mapping[str, Any]) -> LaunchDelay:
        return cls(BackoffStrategy.of_app(app), config_version(app))

    # -- inputs ------------------------------------------------------------------------------------------

    def record_failure(self, now: float) -> float:
        """A task failed (FAILED, FINISHED — exit 0 too —, ERROR, DROPPED, GONE; not KILLED); returns
        the time the next launch may happen."""
        cap = _ns(self.strategy.max_launch_delay_seconds)
        if self._reference is None:
            self._delay_ns = min(_ns(self.strategy.backoff_seconds), cap)
        else:
            self._delay_ns = min(int(self._delay_ns * self.strategy.factor), cap)
        self._reference = now
        return self.ready_at_or(now)

    def record_progress(self, now: float) -> None:
        """An instance was provisioned or became staging/starting/running: spacing starts anew from now."""
        if self._reference is not None:
            self._reference = now

    def on_condition(self, condition: str, now: float, agent_draining: bool = False) -> None:
        """Feed an instance's *changed* condition (Marathon's names, §3) as NotifyRateLimiterStep does."""
        if agent_draining:
            self.reset()
        elif condition in FAILURE_CONDITIONS:
            self.record_failure(now)
        elif condition in PROGRESS_CONDITIONS:
            self.record_progress(now)

    def on_app(self, app: Mapping[str, Any]) -> bool:
        """Take an updated app definition; a new config version resets the delay (True when it did)."""
        version = config_version(app)
        self.strategy = BackoffStrategy.of_app(app)
        if version == self.config:
            return False
        self.config = version
        self.reset()
        return True

    def reset(self) -> None:
        self._reference = None
        self._delay_ns = 0

    def expire(self, now: float) -> bool:
        """``cleanUpOverdueDelays``: forget a delay once ``now > reference + maxLaunchDelay``."""
        if self._reference is None:
            return False
        if now * _NS > self._reference * _NS + _ns(self.strategy.max_launch_delay_seconds):
            self.reset()
            return True
        return False

    # -- queries ----------------------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self._reference is not None

    @property
    def delay_seconds(self) -> float:
        return self._delay_ns / _NS

    def ready_at(self) -> float | None:
        """When the next launch may happen; None when there is no delay."""
        return None if self._reference is None else self._reference + self._delay_ns / _NS

    def ready_at_or(self, now: float) -> float:
        at = self.ready_at()
        return now if at is None else at

    def is_ready(self, now: float) -> bool:
        at = self.ready_at()
        return at is None or now >= at

    def queue_delay(self, now: float) -> dict[str, Any]:
        """``/v2/queue``'s ``delay`` (``LaunchStats.queueDelay``): seconds truncated toward zero, so a
        deadline less than a second ago still reads ``timeLeftSeconds: 0, overdue: false``."""
        at = self.ready_at()
        if at is None:
            return {"timeLeftSeconds": 0, "overdue": True}
        left = math.trunc(at - now)
        return {"timeLeftSeconds": max(0, left), "overdue": left < 0}


def _ns(seconds: float) -> int:
    return round(seconds * _NS)
