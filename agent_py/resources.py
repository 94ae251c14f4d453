"""What this agent offers: resources measured with psutil by Mesos' rules, overridden by ``--resources``.

Mesos (``Containerizer::resources``) detects only the names ``--resources`` leaves out:

* ``cpus``: online logical CPUs (fallback 1);
* ``mem``: total RAM, minus 1 GB if it is at least 2 GB, else half of it, in whole MB (fallback 1 GB);
* ``disk``: the size (not the free space) of the work dir's filesystem, minus 5 GB if it is at least
  10 GB, else half of it, in whole MB (fallback 10 GB);
* ``ports``: ``[31000-32000]``.

Unlike Mesos we refuse an override the machine cannot hold (``cpus:512`` on two cores), because such an
agent would accept tasks it can never run.  Resources are plain dicts here (scalars in MB/CPUs, ports as
``(begin, end)`` ranges, sets as frozensets); the fixed-point form lives in ``paas_common``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

MB = 1024 * 1024
GB = 1024 * MB
DEFAULT_PORTS: list[tuple[int, int]] = [(31000, 32000)]
FALLBACK_MEM_MB = 1024.0
FALLBACK_DISK_MB = 10 * 1024.0

Ranges = list[tuple[int, int]]
Value = float | Ranges | frozenset[str]
Resources = dict[str, Value]


class ResourceDetectionError(ValueError):
    """The ``--resources`` text is malformed, or asks for more than this machine has."""


@dataclass(frozen=True)
class Machine:
    """What psutil measured; None where the probe failed (Mesos then uses its fallback)."""

    cpus: int | None
    mem_total_bytes: int | None
    disk_total_bytes: int | None


def probe_machine(work_dir: str | os.PathLike[str]) -> Machine:
    """Measure this host.  The disk is that of work_dir, or of its nearest existing parent."""
    path = Path(work_dir).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        disk: int | None = psutil.disk_usage(str(path)).total
    except OSError:
        disk = None
    try:
        mem: int | None = psutil.virtual_memory().total
    except OSError:
        mem = None
    return Machine(cpus=psutil.cpu_count(logical=True), mem_total_bytes=mem, disk_total_bytes=disk)


def _reserve(total_bytes: int, threshold: int, reserve: int) -> float:
    """Mesos' rule: keep `reserve` for the host when total >= threshold, else keep half; whole MB."""
    offered = total_bytes - reserve if total_bytes >= threshold else total_bytes // 2
    return float(offered // MB)


def detect(machine: Machine) -> Resources:
    """The resources Mesos would offer for this machine with no ``--resources`` at all."""
    return {
        "cpus": float(machine.cpus or 1),
        "mem": _reserve(machine.mem_total_bytes, 2 * GB, GB) if machine.mem_total_bytes else FALLBACK_MEM_MB,
        "disk": (
            _reserve(machine.disk_total_bytes, 10 * GB, 5 * GB)
            if machine.disk_total_bytes
            else FALLBACK_DISK_MB
        ),
        "ports": list(DEFAULT_PORTS),
    }


def _parse_ranges(name: str, text: str) -> Ranges:
    body = text.strip()[1:-1].strip()
    ranges: Ranges = []
    for part in filter(None, (p.strip() for p in body.split(","))):
        lo, sep, hi = part.partition("-")
        try:
            begin, end = int(lo), int(hi if sep else lo)
        except ValueError:
            raise ResourceDetectionError(f"bad range {part!r} in resource {name!r}") from None
        if begin > end:
            raise ResourceDetectionError(f"bad range {part!r} in resource {name!r}: begin > end")
        ranges.append((begin, end))
    return _normalize_ranges(name, ranges)


def _normalize_ranges(name: str, ranges: Ranges) -> Ranges:
    """Sorted, overlapping or adjacent ranges merged; ports must be 1-65535."""
    merged: Ranges = []
    for begin, end in sorted(ranges):
        if name == "ports" and (begin < 1 or end > 65535):
            raise ResourceDetectionError(f"ports [{begin}-{end}] outside 1-65535")
        if merged and begin <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((begin, end))
    return merged


def _parse_value(name: str, text: str) -> Value:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        return _parse_ranges(name, text)
    if text.startswith("{") and text.endswith("}"):
        return frozenset(filter(None, (item.strip() for item in text[1:-1].split(","))))
    try:
        value = float(text)
    except ValueError:
        raise ResourceDetectionError(f"bad value {text!r} for resource {name!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ResourceDetectionError(f"resource {name!r} must be a non-negative number, not {text!r}")
    return value


def _add(out: Resources, name: str, value: Value) -> None:
    if not name or any(c in name for c in "():;[]{}"):
        raise ResourceDetectionError(f"bad resource name {name!r}")
    if name in out:
        raise ResourceDetectionError(f"resource {name!r} given twice")
    out[name] = value


def _parse_text(text: str) -> Resources:
    out: Resources = {}
    for item in filter(None, (i.strip() for i in text.split(";"))):
        name, sep, value = item.partition(":")
        if not sep:
            raise ResourceDetectionError(f"bad resource {item!r}: expected name:value")
        name = name.strip()
        if "(" in name:
            # Reservations (name(role):value) need the fixed-point resources of paas_common.
            raise ResourceDetectionError(f"role reservations are not supported yet: {item!r}")
        _add(out, name, _parse_value(name, value))
    return out


def _parse_json(items: object) -> Resources:
    """Mesos' alternative form: a JSON array of Resource messages (unreserved only, for now)."""
    if not isinstance(items, list):
        raise ResourceDetectionError("JSON --resources must be an array of Resource objects")
    out: Resources = {}
    for r in items:
        if not isinstance(r, dict) or not isinstance(r.get("name"), str):
            raise ResourceDetectionError(f"bad Resource {r!r}: needs a name")
        name, kind = r["name"], r.get("type", "SCALAR")
        if r.get("role", "*") != "*" or r.get("reservations"):
            raise ResourceDetectionError(f"role reservations are not supported yet: {name!r}")
        try:
            if kind == "SCALAR":
                value: Value = _parse_value(name, str(r["scalar"]["value"]))
            elif kind == "RANGES":
                spans = [(int(x["begin"]), int(x["end"])) for x in r["ranges"]["range"]]
                value = _normalize_ranges(name, spans)
            elif kind == "SET":
                value = frozenset(str(i) for i in r["set"]["item"])
            else:
                raise ResourceDetectionError(f"unknown type {kind!r} for resource {name!r}")
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, ResourceDetectionError):
                raise
            raise ResourceDetectionError(f"bad {kind} Resource {name!r}: {e}") from None
        _add(out, name, value)
    return out


def parse_resources(text: str) -> Resources:
    """Parse Mesos' ``--resources``: ``cpus:2;mem:1024;ports:[31000-32000];zones:{a,b}``, a JSON array
    of Resource objects, or ``file:///path`` holding either."""
    text = text.strip()
    if text.startswith("file://"):
        try:
            text = Path(text[len("file://") :]).read_text().strip()
        except OSError as e:
            raise ResourceDetectionError(f"cannot read --resources file: {e}") from None
    if text.startswith("["):
        try:
            return _parse_json(json.loads(text))
        except json.JSONDecodeError as e:
            raise ResourceDetectionError(f"bad JSON in --resources: {e}") from None
    return _parse_text(text)


def check_fits(resources: Mapping[str, Value], machine: Machine) -> None:
    """Refuse cpus, mem or disk beyond what the machine physically has (the host's reserve may be
    given away deliberately, so the limit is the raw total, not the detected amount)."""
    limits = {
        "cpus": (float(machine.cpus) if machine.cpus else None, "CPUs"),
        "mem": (machine.mem_total_bytes / MB if machine.mem_total_bytes else None, "MB of memory"),
        "disk": (machine.disk_total_bytes / MB if machine.disk_total_bytes else None, "MB of disk"),
    }
    for name, (limit, unit) in limits.items():
        value = resources.get(name)
        if isinstance(value, float) and limit is not None and value > limit:
            raise ResourceDetectionError(
                f"--resources asks for {name}:{format_value(value)} but this machine has only "
                f"{format_value(math.floor(limit * 1000) / 1000)} {unit}"
            )


def agent_resources(flag: str | None, machine: Machine) -> Resources:
    """The agent's total resources: ``--resources`` as given, detection for the names it omits."""
    given = parse_resources(flag) if flag else {}
    check_fits(given, machine)
    return {**detect(machine), **given}


def format_value(value: Value) -> str:
    if isinstance(value, float | int):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    if isinstance(value, frozenset):
        return "{" + ",".join(sorted(value)) + "}"
    return "[" + ",".join(f"{b}-{e}" for b, e in value) + "]"


def format_resources(resources: Mapping[str, Value]) -> str:
    """Render as Mesos' ``--resources`` text (parse_resources reads it back to the same dict)."""
    return ";".join(f"{name}:{format_value(value)}" for name, value in resources.items())
