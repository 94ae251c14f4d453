"""Mesos' duration flags (``15secs``, ``10mins``, ``500ms``; a bare number is seconds)."""

from __future__ import annotations

import re

UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "ms": 1e-3,
    "secs": 1.0,
    "mins": 60.0,
    "hrs": 3600.0,
    "days": 86400.0,
    "weeks": 604800.0,
}
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-z]*)\s*$")


def parse_duration(text: str) -> float:
    """Seconds, or ValueError naming the accepted units (argparse shows it as the flag's error)."""
    m = _DURATION.match(text)
    unit = m.group(2) if m else ""
    if m is None or (unit and unit not in UNITS):
        raise ValueError(f"invalid duration {text!r} (a number with one of {', '.join(UNITS)}; bare = secs)")
    return float(m.group(1)) * (UNITS[unit] if unit else 1.0)
