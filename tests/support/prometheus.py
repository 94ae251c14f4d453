"""A strict little reader of Prometheus' text exposition format 0.0.4, for tests of ``/metrics``
endpoints (prometheus_client is not a dependency)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)( -?\d+)?$")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


@dataclass
class Metric:
    name: str
    type: str = "untyped"
    help: str | None = None
    value: float | None = None  # of the sample without labels


def parse(text: str) -> dict[str, Metric]:
    """Every metric by name; ValueError on anything the format does not allow (a line that is not a
    comment or sample, a bad name or value, HELP or TYPE repeated, TYPE after the metric's samples)."""
    if text and not text.endswith("\n"):
        raise ValueError("the exposition must end with a newline")
    metrics: dict[str, Metric] = {}
    sampled: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        where = f"line {number}: {line!r}"
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.match(name):
                    raise ValueError(f"bad metric name, {where}")
                metric = metrics.setdefault(name, Metric(name))
                if parts[1] == "HELP":
                    if metric.help is not None:
                        raise ValueError(f"second HELP, {where}")
                    metric.help = parts[3] if len(parts) > 3 else ""
                else:
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise ValueError(f"bad TYPE, {where}")
                    if name in sampled or metric.type != "untyped":
                        raise ValueError(f"TYPE after samples or repeated, {where}")
                    metric.type = parts[3]
            continue
        match = SAMPLE.match(line)
        if match is None:
            raise ValueError(f"not a sample, {where}")
        name, labels, raw = match.group(1), match.group(2), match.group(3)
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"bad value, {where}") from None
        if (math.isinf(value) and raw not in ("+Inf", "-Inf")) or (math.isnan(value) and raw != "NaN"):
            raise ValueError(f"infinity and NaN are written +Inf, -Inf, NaN; {where}")
        sampled.add(name)
        metric = metrics.setdefault(name, Metric(name))
        if labels is None:
            if metric.value is not None:
                raise ValueError(f"second sample, {where}")
            metric.value = value
    return metrics
