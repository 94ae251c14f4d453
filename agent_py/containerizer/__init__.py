"""Containerizers: how the agent runs a task, watches it, measures it, kills it and finds it again.

Two implementations share the async API below: ``docker`` (Docker Engine through the Docker SDK) and
``process`` (a plain process in its own session).  Both are driven from the agent's single event loop;
their blocking work happens in threads.  ``launch`` returns a ``ContainerRecord`` for the agent to
checkpoint; after a restart ``recover`` is told which container ids the checkpoint knows and reports
their state, the ones that vanished, and the orphans it found (and killed).
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol, TypeVar

SANDBOX_MOUNT = "/mnt/mesos/sandbox"  # Mesos' --sandbox_directory default
NAME_PREFIX = "mesos-"  # Mesos' DOCKER_NAME_PREFIX
REASON_MEMORY = "REASON_CONTAINER_LIMITATION_MEMORY"
CPU_SHARES_PER_CPU = 1024
MIN_CPU_SHARES = 2
MIN_MEMORY_MB = 32.0  # Mesos' MIN_MEMORY for a container's limit
STDOUT, STDERR = "stdout", "stderr"  # sandbox file names, as Mesos writes them

Kind = Literal["docker", "process"]


class ContainerizerError(RuntimeError):
    """A launch, kill or query failed; the message is fit for a TASK_FAILED status."""


class ImageNotFoundError(ContainerizerError):
    """The task's image is not present locally (no pull is ever attempted)."""


_T = TypeVar("_T")


class UnknownContainerError(ContainerizerError):
    """No container with this id was launched or recovered by this containerizer."""


def lookup_container(table: Mapping[str, _T], container_id: str) -> _T:
    """``table[container_id]``, or UnknownContainerError (each containerizer's own table of containers)."""
    try:
        return table[container_id]
    except KeyError:
        raise UnknownContainerError(f"Unknown container {container_id}") from None


class PortMapping(NamedTuple):
    host_port: int
    container_port: int
    protocol: str = "tcp"


@dataclass(frozen=True)
class TaskSpec:
    """One task to run.  Command semantics follow Mesos' CommandInfo: ``shell=True`` runs
    ``/bin/sh -c command``; ``shell=False`` execs ``command`` with ``arguments`` as argv (process) or
    appends ``[command, *arguments]`` to the image's entrypoint (docker); no command (docker only)
    keeps the image's default."""

    task_id: str
    container_id: str
    sandbox: Path
    command: str | None = None
    shell: bool = True
    arguments: tuple[str, ...] = ()
    image: str | None = None
    framework_id: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    cpus: float = 0.1
    mem_mb: float = 32.0
    ports: tuple[PortMapping, ...] = ()
    network: str | None = None  # docker: None → "bridge" with ports, else the containerizer default
    user: str | None = None

    def task_env(self, sandbox_path: str) -> dict[str, str]:
        """The task's environment: its own variables, then the MESOS_* ones (which win, as in Mesos)."""
        return {**self.env, "MESOS_SANDBOX": sandbox_path, "MESOS_TASK_ID": self.task_id}


@dataclass(frozen=True)
class ContainerRecord:
    """What the agent checkpoints about a launched container (JSON round-trip via to_json/from_json)."""

    container_id: str
    kind: Kind
    task_id: str
    framework_id: str
    sandbox: str
    cpus: float
    mem_mb: float
    pid: int | None = None  # process: the supervisor's pid (the session and process group leader)
    start_time: float | None = None  # process: its start in seconds since boot, to detect a reused pid
    boot_id: str | None = None  # process: the kernel's boot id at launch
    launched_at: float | None = None  # wall clock

    @classmethod
    def launched(cls, spec: TaskSpec, kind: Kind, **extra: Any) -> ContainerRecord:
        """The record of ``spec`` just launched by a ``kind`` containerizer; ``extra``: its own fields."""
        base: dict[str, Any] = {
            "container_id": spec.container_id,
            "kind": kind,
            "task_id": spec.task_id,
            "framework_id": spec.framework_id,
            "sandbox": str(spec.sandbox),
            "cpus": spec.cpus,
            "mem_mb": spec.mem_mb,
            "launched_at": time.time(),
        }
        return cls(**(base | extra))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ContainerRecord:
        data = json.loads(text)
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class ContainerStatus:
    container_id: str
    running: bool
    exit_code: int | None = None  # shell convention: 128 + n when killed by signal n
    signal: int | None = None  # the signal that ended it, when known
    oom_killed: bool = False
    reason: str | None = None  # a Mesos TaskStatus.Reason name, e.g. REASON_CONTAINER_LIMITATION_MEMORY
    message: str = ""
    started_at: float | None = None  # epoch seconds
    finished_at: float | None = None

    @property
    def succeeded(self) -> bool:
        return not self.running and self.exit_code == 0


def describe_exit(exit_code: int | None, sig: int | None) -> str:
    """Human text for a status message, in the spirit of Mesos' 'Command exited with status 1'."""
    if sig:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"Command terminated by {name}"
    if exit_code is None:
        return "Command exited with an unknown status"
    return f"Command exited with status {exit_code}"


@dataclass(frozen=True)
class Usage:
    """A sample in the shape of Mesos' ResourceStatistics (field names match its JSON)."""

    timestamp: float
    cpus_user_time_secs: float
    cpus_system_time_secs: float
    cpus_limit: float
    mem_rss_bytes: int
    mem_limit_bytes: int
    processes: int | None = None
    threads: int | None = None
    cpus_nr_periods: int | None = None
    cpus_nr_throttled: int | None = None
    cpus_throttled_time_secs: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Recovery:
    containers: dict[str, ContainerStatus]  # known ids found again (running ones are reattached)
    missing: list[str]  # known ids with no trace left
    orphans: list[str]  # found but not known; killed and removed when kill_orphans


class Containerizer(Protocol):
    kind: Kind

    async def launch(self, spec: TaskSpec) -> ContainerRecord:
        """Start the task; raises ContainerizerError (ImageNotFoundError) at once if it cannot."""
        ...

    async def status(self, container_id: str) -> ContainerStatus: ...

    async def wait(self, container_id: str) -> ContainerStatus:
        """Until the container has exited (and its output is in the sandbox files)."""
        ...

    async def kill(self, container_id: str, grace_seconds: float) -> ContainerStatus:
        """SIGTERM, then SIGKILL once the grace period is over; returns the final status."""
        ...

    async def usage(self, container_id: str) -> Usage: ...

    async def destroy(self, container_id: str) -> None:
        """Kill if needed and free what the container holds (docker rm, runtime files)."""
        ...

    async def recover(self, known: Collection[str], kill_orphans: bool = True) -> Recovery: ...

    async def close(self) -> None:
        """Stop watching; the containers keep running, as they do when the agent dies."""
        ...


def memory_limit_bytes(mem_mb: float) -> int:
    return int(max(mem_mb, MIN_MEMORY_MB) * 1024 * 1024)
