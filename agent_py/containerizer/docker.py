"""The Docker containerizer: tasks as containers on the local Docker Engine, through the Docker SDK.

Mesos' conventions are kept where tools may rely on them: containers are named ``mesos-<container id>``,
the sandbox is bind-mounted at ``/mnt/mesos/sandbox`` (also the working dir) with ``MESOS_SANDBOX``
pointing there, ``cpu_shares = max(1024 * cpus, 2)`` plus a CFS quota over a 100 ms period, and a memory
limit of at least 32 MB with swap equal to it (no swap).  Images are never pulled: a missing one fails
the launch at once (``create`` raises; ``run`` would try the registry).

Logs: containers use the ``json-file`` driver, which the engine can replay, and for each container two
threads follow ``docker logs`` (one per stream) and append to the sandbox's ``stdout``/``stderr`` files,
as Mesos' docker executor does.  Those streams end when the container stops, which is also how ``wait``
learns of the exit without holding a thread of its own.  Each file's mtime is set to the engine's
timestamp of the last entry copied, so after an agent restart the followers resume exactly after it:
output written while the agent was down is copied, nothing is repeated.

Every container carries the label ``org.baremetal-paas.owner=<owner>``: ``recover`` only considers (and
kills as orphans) containers of its own owner, so several agents or test runs can share one engine.
The Docker SDK blocks; every call runs in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import CancellableStream, LogConfig

from agent_py.containerizer import (
    CPU_SHARES_PER_CPU,
    MIN_CPU_SHARES,
    NAME_PREFIX,
    REASON_MEMORY,
    SANDBOX_MOUNT,
    STDERR,
    STDOUT,
    ContainerizerError,
    ContainerRecord,
    ContainerStatus,
    ImageNotFoundError,
    Kind,
    Recovery,
    TaskSpec,
    UnknownContainerError,
    Usage,
    describe_exit,
    lookup_container,
    memory_limit_bytes,
)

log = logging.getLogger(__name__)

LABEL_PREFIX = "org.baremetal-paas."
LABEL_OWNER = LABEL_PREFIX + "owner"
CFS_PERIOD_US = 100_000
MIN_CFS_QUOTA_US = 1_000
API_TIMEOUT = 30.0  # seconds per Engine API call (stop adds its grace period)
STOPPED_TIMEOUT = 15.0  # after `stop` returned: for the log streams to close
EXEC_POLL_MIN, EXEC_POLL_MAX = 0.02, 0.2  # seconds between `exec_inspect` calls
LOG_CONFIG = LogConfig(type=LogConfig.types.JSON, config={"max-size": "20m", "max-file": "2"})
_RUNNING_STATES = {"running", "paused", "restarting"}


def container_name(container_id: str) -> str:
    return NAME_PREFIX + container_id


def _epoch(stamp: str | None) -> float | None:
    """Docker's RFC 3339 times; '0001-01-01T00:00:00Z' means never."""
    if not stamp or stamp.startswith("0001-"):
        return None
    return datetime.fromisoformat(stamp).timestamp()


def _status(container_id: str, state: dict[str, Any]) -> ContainerStatus:
    running = state.get("Status") in _RUNNING_STATES
    oom = bool(state.get("OOMKilled"))
    exit_code = None if running else int(state.get("ExitCode", 0))
    message = state.get("Error") or ("" if running else describe_exit(exit_code, None))
    if oom:
        message = f"Memory limit exceeded: {message}"
    return ContainerStatus(
        container_id=container_id,
        running=running,
        exit_code=exit_code,
        oom_killed=oom,
        reason=REASON_MEMORY if oom else None,
        message=message,
        started_at=_epoch(state.get("StartedAt")),
        finished_at=None if running else _epoch(state.get("FinishedAt")),
    )


def _stamp_ns(stamp: str) -> int:
    """Nanoseconds since the epoch of a log timestamp ('2024-11-24T21:17:38.313401757Z'), exactly."""
    head, _, frac = stamp.partition(".")
    if frac.endswith("Z") and frac[:-1].isdigit():
        seconds = int(datetime.fromisoformat(head + "+00:00").timestamp())
        return seconds * 1_000_000_000 + int(frac[:-1].ljust(9, "0")[:9])
    return int(datetime.fromisoformat(stamp).timestamp() * 1e9)


def _explain(e: DockerException) -> str:
    return str(getattr(e, "explanation", None) or e)


class _LogFollower:
    """Two threads copying a container's stdout/stderr into the sandbox; ``done`` once both streams end."""

    def __init__(self, api: docker.APIClient, name: str, sandbox: Path) -> None:
        self.done = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._left = 2
        self._lock = threading.Lock()
        self._streams: list[CancellableStream] = []
        self._stopped = False
        for stream in (STDOUT, STDERR):
            path = sandbox / stream
            # The file's mtime is the log timestamp of the last entry copied: resume after it.
            after_ns = path.stat().st_mtime_ns if path.exists() else 0
            args = (api, name, stream, path, after_ns)
            threading.Thread(target=self._copy, args=args, name=f"logs-{name}-{stream}", daemon=True).start()

    def _copy(self, api: docker.APIClient, name: str, stream: str, path: Path, after_ns: int) -> None:
        try:
            chunks = api.logs(
                name,
                stdout=stream == STDOUT,
                stderr=stream == STDERR,
                stream=True,
                follow=True,
                timestamps=True,
                since=after_ns // 1000 / 1e6 if after_ns else None,  # µs at best: filtered exactly below
            )
            with self._lock:
                self._streams.append(chunks)
                if self._stopped:
                    chunks.close()
            with path.open("ab", buffering=0) as out:
                for chunk in chunks:  # one log entry each: "<RFC 3339 nano time> <data>"
                    stamp, _, data = chunk.partition(b" ")
                    stamp_ns = _stamp_ns(stamp.decode())
                    if stamp_ns > after_ns:
                        out.write(data)
                        os.utime(out.fileno(), ns=(stamp_ns, stamp_ns))
        except Exception as e:  # the engine went away, the container was removed, the disk is full
            log.warning("log stream %s of %s ended: %s", stream, name, e)
        finally:
            with contextlib.suppress(RuntimeError):  # the event loop is already closed
                self._loop.call_soon_threadsafe(self._stream_ended)

    def _stream_ended(self) -> None:
        self._left -= 1
        if self._left == 0:
            self.done.set()

    def stop(self) -> None:
        """Stop copying (the container keeps running); a later follower resumes from the files."""
        with self._lock:
            self._stopped = True
            for chunks in self._streams:
                with contextlib.suppress(Exception):
                    chunks.close()


@dataclass
class _Known:
    record: ContainerRecord
    logs: _LogFollower


class DockerContainerizer:
    """Runs TaskSpecs as Docker containers; see the module docstring for the conventions."""

    kind: Kind = "docker"

    def __init__(
        self,
        client: docker.DockerClient,
        *,
        owner: str = "agent_py",
        bind_address: str = "0.0.0.0",
        default_network: str = "bridge",
    ) -> None:
        self.client = client
        self.owner = owner
        self.bind_address = bind_address  # host address of port mappings (tests: 127.0.0.1)
        self.default_network = default_network  # for tasks without port mappings
        self._known: dict[str, _Known] = {}
        self._closed = False
        self._owns_client = False

    @classmethod
    async def connect(cls, base_url: str | None = None, **kwargs: Any) -> DockerContainerizer:
        """Connect to the engine (DOCKER_HOST or the local socket); fails fast if it does not answer."""

        def make() -> docker.DockerClient:
            # Two log streams per container hold connections: a pool above the SDK's default of 10.
            options: dict[str, Any] = {"version": "auto", "timeout": API_TIMEOUT, "max_pool_size": 64}
            return (
                docker.DockerClient(base_url=base_url, **options) if base_url else docker.from_env(**options)
            )

        try:
            client = await asyncio.to_thread(make)
        except DockerException as e:
            raise ContainerizerError(f"Docker Engine not reachable: {e}") from None
        containerizer = cls(client, **kwargs)
        containerizer._owns_client = True
        return containerizer

    async def close(self) -> None:
        """Stop following logs and forget the containers; they keep running, as when the agent dies."""
        self._closed = True
        for known in self._known.values():
            known.logs.stop()
        self._known.clear()
        if self._owns_client:
            await asyncio.to_thread(self.client.close)

    # -- launch -------------------------------------------------------------------------------------

    def _labels(self, spec: TaskSpec) -> dict[str, str]:
        ours = {
            "owner": self.owner,
            "container_id": spec.container_id,
            "task_id": spec.task_id,
            "framework_id": spec.framework_id,
            "sandbox": str(spec.sandbox),
            "cpus": repr(spec.cpus),
            "mem_mb": repr(spec.mem_mb),
        }
        return {**spec.labels, **{LABEL_PREFIX + k: v for k, v in ours.items()}}

    def _create_args(self, spec: TaskSpec) -> dict[str, Any]:
        name = container_name(spec.container_id)
        entrypoint: list[str] | None = None
        command: list[str] | None = [*([spec.command] if spec.command else []), *spec.arguments] or None
        if spec.shell and spec.command is not None:
            entrypoint, command = ["/bin/sh"], ["-c", spec.command]
        mem = memory_limit_bytes(spec.mem_mb)
        ports = {f"{p.container_port}/{p.protocol}": (self.bind_address, p.host_port) for p in spec.ports}
        return {
            "image": spec.image,
            "name": name,
            "entrypoint": entrypoint,
            "command": command,
            "environment": {**spec.task_env(SANDBOX_MOUNT), "MESOS_CONTAINER_NAME": name},
            "labels": self._labels(spec),
            "working_dir": SANDBOX_MOUNT,
            "volumes": {str(spec.sandbox): {"bind": SANDBOX_MOUNT, "mode": "rw"}},
            "network_mode": spec.network or ("bridge" if spec.ports else self.default_network),
            "ports": ports,
            "cpu_shares": max(int(spec.cpus * CPU_SHARES_PER_CPU), MIN_CPU_SHARES),
            "cpu_period": CFS_PERIOD_US,
            "cpu_quota": max(int(spec.cpus * CFS_PERIOD_US), MIN_CFS_QUOTA_US),
            "mem_limit": mem,
            "memswap_limit": mem,
            "user": spec.user or "",
            "log_config": LOG_CONFIG,
        }

    def _create_and_start(self, spec: TaskSpec) -> None:
        spec.sandbox.mkdir(parents=True, exist_ok=True)
        name = container_name(spec.container_id)
        try:
            container = self.client.containers.create(**self._create_args(spec))
        except ImageNotFound:
            raise ImageNotFoundError(
                f"Docker image {spec.image!r} is not present on this agent (images are never pulled)"
            ) from None
        except APIError as e:
            raise ContainerizerError(f"Failed to create container {name}: {_explain(e)}") from None
        try:
            container.start()
        except APIError as e:
            with contextlib.suppress(DockerException):
                container.remove(force=True)
            raise ContainerizerError(f"Failed to start container {name}: {_explain(e)}") from None

    async def launch(self, spec: TaskSpec) -> ContainerRecord:
        if not spec.image:
            raise ContainerizerError("A Docker task needs an image")
        if spec.container_id in self._known:
            raise ContainerizerError(f"Container {spec.container_id} already exists")
        await asyncio.to_thread(self._create_and_start, spec)
        record = ContainerRecord.launched(spec, "docker")
        self._attach(record)
        return record

    def _attach(self, record: ContainerRecord) -> None:
        follower = _LogFollower(self.client.api, container_name(record.container_id), Path(record.sandbox))
        self._known[record.container_id] = _Known(record, follower)

    def _get(self, container_id: str) -> _Known:
        return lookup_container(self._known, container_id)

    # -- observe ------------------------------------------------------------------------------------

    def _inspect(self, container_id: str) -> ContainerStatus:
        name = container_name(container_id)
        try:
            attrs = self.client.api.inspect_container(name)
        except NotFound:
            raise UnknownContainerError(f"No container {name}") from None
        except DockerException as e:
            raise ContainerizerError(f"Failed to inspect {name}: {_explain(e)}") from None
        return _status(container_id, attrs["State"])

    async def status(self, container_id: str) -> ContainerStatus:
        return await asyncio.to_thread(self._inspect, container_id)

    async def wait(self, container_id: str) -> ContainerStatus:
        known = self._get(container_id)
        while True:
            await known.logs.done.wait()
            status = await self.status(container_id)
            if not status.running:
                return status
            if self._closed:
                raise ContainerizerError("The containerizer was closed")
            # The log streams broke while the container runs (engine restart?): follow again.
            await asyncio.sleep(1.0)
            self._attach(known.record)
            known = self._get(container_id)

    async def usage(self, container_id: str) -> Usage:
        record = self._get(container_id).record
        try:
            stats = await asyncio.to_thread(
                self.client.api.stats, container_name(container_id), stream=False, one_shot=True
            )
        except DockerException as e:
            raise ContainerizerError(f"Failed to read stats of {container_id}: {_explain(e)}") from None
        return _usage(stats, record)

    async def address(self, container_id: str) -> str | None:
        """The container's IP address on its (first) network, which the host can reach; None when it has
        none (host network, ``none``)."""
        self._get(container_id)
        name = container_name(container_id)
        try:
            attrs = await asyncio.to_thread(self.client.api.inspect_container, name)
        except NotFound:
            raise UnknownContainerError(f"No container {name}") from None
        except DockerException as e:
            raise ContainerizerError(f"Failed to inspect {name}: {_explain(e)}") from None
        settings = attrs.get("NetworkSettings") or {}
        for network in (settings.get("Networks") or {}).values():
            if (network or {}).get("IPAddress"):
                return str(network["IPAddress"])
        return str(settings.get("IPAddress") or "") or None

    async def exec(
        self, container_id: str, argv: Sequence[str], env: Mapping[str, str], timeout: float
    ) -> int:
        """``docker exec`` (a COMMAND health check): argv's exit code.  The exec runs detached and is
        polled, so no worker thread blocks on it; past ``timeout`` it is SIGKILLed (by its host pid,
        best effort) and TimeoutError raised."""
        self._get(container_id)
        name = container_name(container_id)

        def start() -> str:
            exec_id = str(self.client.api.exec_create(name, list(argv), environment=dict(env))["Id"])
            self.client.api.exec_start(exec_id, detach=True)
            return exec_id

        try:
            exec_id = await asyncio.to_thread(start)
            deadline = time.monotonic() + timeout
            pause = EXEC_POLL_MIN
            while True:
                info = await asyncio.to_thread(self.client.api.exec_inspect, exec_id)
                if not info.get("Running") and info.get("ExitCode") is not None:
                    return int(info["ExitCode"])
                if time.monotonic() >= deadline:
                    pid = int(info.get("Pid") or 0)
                    if pid > 0:
                        with contextlib.suppress(OSError):
                            os.kill(pid, signal.SIGKILL)
                    raise TimeoutError(f"docker exec in {name} still running after {timeout:g}s")
                await asyncio.sleep(pause)
                pause = min(pause * 2, EXEC_POLL_MAX)
        except NotFound:
            raise UnknownContainerError(f"No container {name}") from None
        except DockerException as e:
            raise ContainerizerError(f"docker exec in {name} failed: {_explain(e)}") from None

    # -- stop ---------------------------------------------------------------------------------------

    async def kill(self, container_id: str, grace_seconds: float) -> ContainerStatus:
        """``docker stop``: the image's stop signal (SIGTERM), SIGKILL after the grace period (whole
        seconds, rounded up: the Engine API counts in seconds)."""
        self._get(container_id)
        timeout = math.ceil(max(grace_seconds, 0.0))
        try:
            await asyncio.to_thread(self.client.api.stop, container_name(container_id), timeout=timeout)
        except NotFound:
            raise UnknownContainerError(f"No container {container_name(container_id)}") from None
        except DockerException as e:
            raise ContainerizerError(f"Failed to stop {container_id}: {_explain(e)}") from None
        try:
            return await asyncio.wait_for(self.wait(container_id), STOPPED_TIMEOUT)
        except TimeoutError:
            return await self.status(container_id)

    async def destroy(self, container_id: str) -> None:
        self._known.pop(container_id, None)

        def remove() -> None:
            with contextlib.suppress(NotFound):
                self.client.api.remove_container(container_name(container_id), force=True)

        try:
            await asyncio.to_thread(remove)
        except DockerException as e:
            raise ContainerizerError(f"Failed to remove {container_id}: {_explain(e)}") from None

    # -- recover ------------------------------------------------------------------------------------

    def _scan(self, known: Collection[str], kill_orphans: bool) -> tuple[dict[str, Any], list[str]]:
        """Our containers by container id (with their inspect data); orphans removed on the way."""
        found: dict[str, Any] = {}
        orphans: list[str] = []
        for summary in self.client.api.containers(all=True, filters={"label": f"{LABEL_OWNER}={self.owner}"}):
            name = summary["Names"][0].lstrip("/")
            if not name.startswith(NAME_PREFIX):
                continue
            container_id = name[len(NAME_PREFIX) :]
            if container_id in known:
                with contextlib.suppress(NotFound):
                    found[container_id] = self.client.api.inspect_container(name)
                continue
            orphans.append(container_id)
            if kill_orphans:
                log.info("removing orphan container %s", name)
                with contextlib.suppress(NotFound):
                    self.client.api.remove_container(name, force=True)
        return found, orphans

    async def recover(self, known: Collection[str], kill_orphans: bool = True) -> Recovery:
        """Reattach to the known containers (resuming their log copies), report the rest."""
        try:
            found, orphans = await asyncio.to_thread(self._scan, set(known), kill_orphans)
        except DockerException as e:
            raise ContainerizerError(f"Failed to list containers: {_explain(e)}") from None
        statuses: dict[str, ContainerStatus] = {}
        for container_id, attrs in found.items():
            self._attach(_record_from_labels(container_id, attrs["Config"]["Labels"] or {}))
            statuses[container_id] = _status(container_id, attrs["State"])
        missing = sorted(set(known) - set(found))
        return Recovery(containers=statuses, missing=missing, orphans=orphans)


def _record_from_labels(container_id: str, labels: dict[str, str]) -> ContainerRecord:
    def label(key: str, default: str = "") -> str:
        return labels.get(LABEL_PREFIX + key, default)

    return ContainerRecord(
        container_id=container_id,
        kind="docker",
        task_id=label("task_id"),
        framework_id=label("framework_id"),
        sandbox=label("sandbox"),
        cpus=float(label("cpus", "0")),
        mem_mb=float(label("mem_mb", "0")),
    )


def _usage(stats: dict[str, Any], record: ContainerRecord) -> Usage:
    """Engine stats (cgroup v1 or v2 shapes) → ResourceStatistics fields; CPU times are in ns."""
    cpu = stats.get("cpu_stats") or {}
    cpu_usage = cpu.get("cpu_usage") or {}
    throttling = cpu.get("throttling_data") or {}
    mem = (stats.get("memory_stats") or {}).get("stats") or {}
    rss = mem.get("total_rss", mem.get("rss", mem.get("anon", 0)))
    throttled_ns = throttling.get("throttled_time")
    return Usage(
        timestamp=time.time(),
        cpus_user_time_secs=cpu_usage.get("usage_in_usermode", 0) / 1e9,
        cpus_system_time_secs=cpu_usage.get("usage_in_kernelmode", 0) / 1e9,
        cpus_limit=record.cpus,
        mem_rss_bytes=int(rss),
        mem_limit_bytes=memory_limit_bytes(record.mem_mb),
        processes=(stats.get("pids_stats") or {}).get("current"),
        cpus_nr_periods=throttling.get("periods"),
        cpus_nr_throttled=throttling.get("throttled_periods"),
        cpus_throttled_time_secs=None if throttled_ns is None else throttled_ns / 1e9,
    )
