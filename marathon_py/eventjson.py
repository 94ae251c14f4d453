"""Marathon's JSON building blocks shared by the instance tracker, health and the API views: timestamps as
``Timestamp.toString`` writes them, task states of conditions, IP address objects and the event envelope
(reference §1.4, §3).  No dependency on the rest of marathon_py, so every module can use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

JsonObj = dict[str, Any]
# Conditions that mirror a Mesos task state of the same name (Condition.conditionToMesosTaskState).
MESOS_CONDITIONS = frozenset(
    {"Error", "Failed", "Finished", "Killed", "Killing", "Running", "Staging", "Starting"}
    | {"Unreachable", "Gone", "Dropped", "Unknown"}
)


def iso(seconds: float) -> str:
    """Marathon's ``Timestamp.toString``: UTC, milliseconds (truncated), ``Z`` (§1.4)."""
    ms = millis(seconds)
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def millis(seconds: float) -> int:
    """Marathon's millisecond timestamps (truncated, with a guard against binary rounding)."""
    return math.floor(seconds * 1000 + 1e-6)


def iso_or_none(seconds: float | None) -> str | None:
    return None if seconds is None else iso(seconds)


def task_state(condition: str) -> str:
    """``Condition.toMesosTaskStateOrStaging``: Scheduled and Provisioned read TASK_STAGING."""
    if condition == "UnreachableInactive":
        return "TASK_UNREACHABLE"
    return f"TASK_{condition.upper()}" if condition in MESOS_CONDITIONS else "TASK_STAGING"


def ip_json(addresses: Iterable[str]) -> list[JsonObj]:
    return [{"ipAddress": a, "protocol": "IPv6" if ":" in a else "IPv4"} for a in addresses]


# -- events (§3; Formats.scala writes every field, ``None`` as null) -----------------------------------------


def event(kind: str, now: float, **fields: Any) -> JsonObj:
    return {**fields, "eventType": kind, "timestamp": iso(now)}
