"""Prometheus text exposition (format 0.0.4) of a Mesos-style metrics snapshot, for every daemon's /metrics.

Mesos' ``/metrics/snapshot`` keys (``master/tasks_running``) become ``mesos_master_tasks_running``: every
character Prometheus does not allow in a name turns into ``_``.  Keys listed as counters are typed
``counter`` (Mesos' ``process::metrics::Counter``), everything else ``gauge``; a key's help text, when
given, is Mesos' description, otherwise the key itself so an operator can find it in Mesos' docs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_INVALID = re.compile(r"[^a-zA-Z0-9_:]")


def metric_name(key: str, prefix: str = "mesos_") -> str:
    """``slave/tasks_running`` → ``mesos_slave_tasks_running`` (Marathon's names take no prefix)."""
    return prefix + _INVALID.sub("_", key)


def _sample(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def render(
    snapshot: Mapping[str, float],
    counters: Collection[str] = (),
    helps: Mapping[str, str] | None = None,
    prefix: str = "mesos_",
) -> str:
    """``# HELP``, ``# TYPE`` and one sample per numeric key, sorted by key."""
    lines: list[str] = []
    for key in sorted(snapshot):
        v = snapshot[key]
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        name = metric_name(key, prefix)
        text = (helps or {}).get(key) or key
        text = text.replace("\\", "\\\\").replace("\n", "\\n")
        kind = "counter" if key in counters else "gauge"
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {_sample(v)}"]
    return "\n".join(lines) + "\n"
