"""Prometheus text exposition (format 0.0.4) of a Mesos-style metrics snapshot.

Mesos' ``/metrics/snapshot`` keys (``master/tasks_running``) become ``mesos_master_tasks_running``: every
character Prometheus does not allow in a name turns into ``_``.  Counters are named ``*_total``-less as
in Mesos, so every sample is exposed as a gauge; the snapshot key goes in the HELP line so that an
operator can find the Mesos documentation of it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_INVALID = re.compile(r"[^a-zA-Z0-9_:]")


def metric_name(key: str, prefix: str = "mesos") -> str:
    name = _INVALID.sub("_", f"{prefix}_{key}" if prefix else key)
    return f"_{name}" if name[0].isdigit() else name


def _value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


def render(snapshot: Mapping[str, float], prefix: str = "mesos") -> str:
    """One HELP/TYPE/sample triple per numeric key, sorted by name; non-numbers are skipped."""
    lines: list[str] = []
    seen: set[str] = set()
    for key in sorted(snapshot):
        v = snapshot[key]
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        name = metric_name(key, prefix)
        if name in seen:
            continue
        seen.add(name)
        lines += [f"# HELP {name} Mesos metric {key}", f"# TYPE {name} gauge", f"{name} {_value(v)}"]
    return "\n".join(lines) + "\n"
