"""What this agent offers: resources measured with psutil by Mesos' rules, overridden by ``--resources``.

Mesos (``Containerizer::resources``) detects only the names ``--resources`` leaves out:

* ``cpus``: online logical CPUs (fallback 1);
* ``mem``: total RAM, minus 1 GB if it is at least 2 GB, else half of it, in whole MB (fallback 1 GB);
* ``disk``: the size (not the free space) of the work dir's filesystem, minus 5 GB if it is at least
  10 GB, else half of it, in whole MB (fallback 10 GB);
* ``ports``: ``[31000-32000]``.

Unlike Mesos we refuse an override the machine cannot hold (``cpus:512`` on two cores), because such an
agent would accept tasks it can never run.  The ``--resources`` syntax and the arithmetic are
``paas_common.resources`` (the master's too); this module adds only the probe and the flag's forms.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import psutil

from paas_common.resources import ResourceError, Resources, format_milli

MB = 1024 * 1024
GB = 1024 * MB
DEFAULT_PORTS = "[31000-32000]"
FALLBACK_MEM_MB = 1024.0
FALLBACK_DISK_MB = 10 * 1024.0


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
    mem = _reserve(machine.mem_total_bytes, 2 * GB, GB) if machine.mem_total_bytes else FALLBACK_MEM_MB
    disk_total = machine.disk_total_bytes
    disk = _reserve(disk_total, 10 * GB, 5 * GB) if disk_total else FALLBACK_DISK_MB
    scalars = Resources.scalars({"cpus": float(machine.cpus or 1), "mem": mem, "disk": disk})
    return scalars + Resources.parse(f"ports:{DEFAULT_PORTS}")


def parse_flag(text: str) -> Resources:
    """Mesos' ``--resources``: ``cpus:2;mem:1024;ports:[31000-32000]``, a JSON array of Resource
    objects, or ``file:///path`` holding either."""
    text = text.strip()
    if text.startswith("file://"):
        try:
            text = Path(text[len("file://") :]).read_text().strip()
        except OSError as e:
            raise ResourceDetectionError(f"cannot read --resources file: {e}") from None
    try:
        if text.startswith("["):
            return Resources.from_json(json.loads(text))
        return Resources.parse(text)
    except json.JSONDecodeError as e:
        raise ResourceDetectionError(f"bad JSON in --resources: {e}") from None
    except ResourceError as e:
        raise ResourceDetectionError(f"--resources: {e}") from None


def check_fits(resources: Resources, machine: Machine) -> None:
    """Refuse cpus, mem or disk beyond what the machine physically has (the host's reserve may be
    given away deliberately, so the limit is the raw total, not the detected amount)."""
    limits = {
        "cpus": (float(machine.cpus) if machine.cpus else None, "CPUs"),
        "mem": (machine.mem_total_bytes / MB if machine.mem_total_bytes else None, "MB of memory"),
        "disk": (machine.disk_total_bytes / MB if machine.disk_total_bytes else None, "MB of disk"),
    }
    for name, (limit, unit) in limits.items():
        value = resources.milli(name)
        if value and limit is not None and value > limit * 1000:
            raise ResourceDetectionError(
                f"--resources asks for {name}:{format_milli(value)} but this machine has only "
                f"{format_milli(math.floor(limit * 1000))} {unit}"
            )


def agent_resources(flag: str | None, machine: Machine) -> Resources:
    """The agent's total resources: ``--resources`` as given, detection for the names it omits."""
    given = parse_flag(flag) if flag else Resources()
    check_fits(given, machine)
    detected = detect(machine)
    return given + detected.filter_names(set(detected.names()) - set(given.names()))
