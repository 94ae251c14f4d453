"""Task health checks, as Mesos' built-in executors run them (``HealthCheck`` in mesos.proto, src/checks/).

``HealthState`` is the decision, a pure core fed with probe results and clock readings, exactly as
``HealthChecker::failure/success``: failures while the task is still "initializing" (no success yet) and
within ``grace_period_seconds`` of its start are ignored; every other failure is reported (unhealthy, with
the running count) and the one that reaches ``consecutive_failures`` asks for the kill; a success is
reported only when it is the first one or ends a run of failures.  ``run_health_checks`` drives it:
``delay_seconds`` after the start, then one probe every ``interval_seconds`` after the previous one ended,
each bounded by ``timeout_seconds`` (0 = Mesos' "no timeout", capped here at ``MAX_TIMEOUT``).

Where the probes go (Mesos runs them inside the task's network and mount namespaces, which needs root and
``nsenter``; we reach the task from the agent instead):

* HTTP/TCP for process tasks and Docker tasks on the host network: ``127.0.0.1:<port>``.
* HTTP/TCP for Docker tasks on a bridge (any non-host) network: the check's port is the *container*
  port, probed at the container's own address on its network (``docker inspect``), which is where Mesos'
  check lands.  Not through the mapped host port: Docker's userland proxy accepts connections there even
  when nothing listens in the container, so a TCP check through it could never fail.  Only when the
  container has no address of its own is the host port mapped to the check's port used, on
  ``--docker_bind_address`` (127.0.0.1 for 0.0.0.0); without such a mapping every probe fails, saying so.
* COMMAND for Docker tasks: ``docker exec`` in the container (the containerizer's ``exec``); for process
  tasks: the command in the sandbox, with the task's environment, in its own session (killed on timeout).

HTTP success is a status in ``http.statuses`` when given, else 200-399 as Mesos' default executors (curl
``-L -k``: redirects followed, certificates not verified).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import aiohttp

from agent_py.containerizer import PortMapping, TaskSpec
from agent_py.containerizer.process import INHERITED_ENV
from paas_common.healthcheck import HealthCheckError, HealthCheckSpec

log = logging.getLogger(__name__)

REASON_HEALTH = "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"


# ---------------------------------------------------------------- the decision


@dataclass(frozen=True)
class HealthChange:
    """What a probe result means for the task: a health status update to send, and maybe the kill."""

    healthy: bool
    consecutive_failures: int = 0
    kill: bool = False


@dataclass
class HealthState:
    """Mesos' HealthChecker bookkeeping; ``started_at`` is the task's start (the grace period's origin)."""

    spec: HealthCheckSpec
    started_at: float
    initializing: bool = True  # no success yet
    failures: int = 0  # consecutive

    def record(self, ok: bool, now: float) -> HealthChange | None:
        """One probe result at ``now``; the update it causes, if any."""
        if ok:
            change = HealthChange(True) if self.initializing or self.failures else None
            self.initializing = False
            self.failures = 0
            return change
        in_grace = self.spec.grace_period > 0 and now - self.started_at <= self.spec.grace_period
        if self.initializing and in_grace:
            return None
        self.failures += 1
        return HealthChange(False, self.failures, kill=self.failures >= self.spec.consecutive_failures)


# ---------------------------------------------------------------- probes


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str = ""


Probe = Callable[[], Awaitable[ProbeResult]]
# docker exec: (argv, extra environment, timeout) → exit code; TimeoutError when it did not end in time
ContainerExec = Callable[[Sequence[str], Mapping[str, str], float], Awaitable[int]]


@dataclass(frozen=True)
class Target:
    """Where a task's checks go; see the module docstring for the rules."""

    network: str  # "host" for process tasks and Docker tasks on the host network, else the Docker network
    container_ip: str | None = None  # a Docker task's address on its network
    ports: tuple[PortMapping, ...] = ()
    bind_address: str = "127.0.0.1"
    sandbox: Path = Path(".")
    env: Mapping[str, str] = field(default_factory=dict)  # the task's, for process COMMAND checks
    exec_in_container: ContainerExec | None = None  # Docker tasks


@runtime_checkable
class DockerAccess(Protocol):
    """What the checks need of the Docker containerizer."""

    default_network: str

    async def address(self, container_id: str) -> str | None: ...

    async def exec(
        self, container_id: str, argv: Sequence[str], env: Mapping[str, str], timeout: float
    ) -> int: ...


async def task_target(spec: TaskSpec, docker: DockerAccess | None, bind_address: str) -> Target:
    """Where the checks of the task ``spec`` go (the rules are in the module docstring)."""
    if spec.image is None:  # a process task: the host's network, a shell in the sandbox
        inherited = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
        env = {**inherited, **spec.task_env(str(spec.sandbox))}
        return Target("host", sandbox=spec.sandbox, env=env)
    default = docker.default_network if docker is not None else "bridge"
    network = spec.network or ("bridge" if spec.ports else default)
    address: str | None = None
    if docker is not None and network != "host":
        try:
            address = await docker.address(spec.container_id)
        except Exception as e:  # the mapped port remains
            log.warning("no address for container %s: %s", spec.container_id, e)
    run_in: ContainerExec | None = None
    if docker is not None:
        container_id, engine = spec.container_id, docker

        async def run_in_container(argv: Sequence[str], env: Mapping[str, str], timeout: float) -> int:
            return await engine.exec(container_id, argv, env, timeout)

        run_in = run_in_container
    return Target(
        network,
        container_ip=address,
        ports=spec.ports,
        bind_address=bind_address,
        sandbox=spec.sandbox,
        exec_in_container=run_in,
    )


def probe_address(port: int, target: Target) -> tuple[str, int]:
    """host:port to probe for a check on ``port``; HealthCheckError when the port cannot be reached."""
    if target.network == "host":
        return "127.0.0.1", port
    if target.container_ip:
        return target.container_ip, port
    for mapping in target.ports:
        if mapping.container_port == port and mapping.protocol == "tcp":
            host = "127.0.0.1" if target.bind_address in ("0.0.0.0", "") else target.bind_address
            return host, mapping.host_port
    raise HealthCheckError(f"Container port {port} has no host port mapping on network {target.network!r}")


def command_argv(command: Mapping[str, Any]) -> list[str]:
    """CommandInfo semantics: shell (default) → ``/bin/sh -c value``; else value with ``arguments``."""
    value = str(command["value"])
    if command.get("shell", True):
        return ["/bin/sh", "-c", value]
    arguments = [str(a) for a in command.get("arguments") or []]
    return [value, *arguments[1:]]


def command_env(command: Mapping[str, Any]) -> dict[str, str]:
    variables = (command.get("environment") or {}).get("variables") or []
    return {str(v["name"]): str(v.get("value", "")) for v in variables if isinstance(v, dict) and "name" in v}


async def tcp_probe(host: str, port: int) -> ProbeResult:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError as e:
        return ProbeResult(False, f"TCP connection to {host}:{port} failed: {e}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ProbeResult(True)


async def http_probe(
    session: aiohttp.ClientSession, url: str, statuses: frozenset[int], timeout: float
) -> ProbeResult:
    try:
        limit = aiohttp.ClientTimeout(total=timeout)
        async with session.get(url, ssl=False, allow_redirects=True, timeout=limit) as resp:
            status = resp.status
    except (aiohttp.ClientError, OSError) as e:
        return ProbeResult(False, f"GET {url} failed: {e}")
    ok = status in statuses if statuses else 200 <= status < 400
    return ProbeResult(ok, "" if ok else f"Unexpected HTTP response code: {status} from {url}")


async def process_command_probe(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float
) -> ProbeResult:
    """Run the check in its own session; the whole session is killed if it outlives ``timeout``."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as e:
        return ProbeResult(False, f"Failed to run the health check command: {e}")
    try:
        code = await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        return ProbeResult(False, f"Command timed out after {timeout:g}s")
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    return ProbeResult(code == 0, "" if code == 0 else f"Command exited with status {code}")


def make_probe(spec: HealthCheckSpec, target: Target, session: aiohttp.ClientSession) -> Probe:
    """The probe for this check and task; a probe that always fails when the task cannot be reached."""
    timeout = spec.probe_timeout
    if spec.kind == "COMMAND":
        argv, env = command_argv(spec.command), command_env(spec.command)
        run_in = target.exec_in_container
        if run_in is None:
            full_env = {**target.env, **env}
            return lambda: process_command_probe(argv, target.sandbox, full_env, timeout)

        async def docker_exec() -> ProbeResult:
            try:
                code = await run_in(argv, env, timeout)
            except TimeoutError:
                return ProbeResult(False, f"Command timed out after {timeout:g}s")
            except Exception as e:  # the container is gone, the engine does not answer
                return ProbeResult(False, f"docker exec failed: {e}")
            return ProbeResult(code == 0, "" if code == 0 else f"Command exited with status {code}")

        return docker_exec
    try:
        host, port = probe_address(spec.port, target)
    except HealthCheckError as e:
        unreachable = ProbeResult(False, str(e))

        async def fail() -> ProbeResult:
            return unreachable

        return fail
    if spec.kind == "TCP":
        return lambda: tcp_probe(host, port)
    url = f"{spec.scheme}://{host}:{port}{spec.path}"
    return lambda: http_probe(session, url, spec.statuses, timeout)


# ---------------------------------------------------------------- the runner


async def run_health_checks(
    spec: HealthCheckSpec,
    probe: Probe,
    on_change: Callable[[HealthChange, ProbeResult], None],
    *,
    started_at: float,
    name: str = "task",
    clock: Callable[[], float] = time.time,
    resumed: tuple[bool, int] | None = None,
) -> None:
    """Probe until cancelled, or until a change asks for the kill (after reporting it).

    ``resumed``: (healthy, consecutive failures) last reported before an agent restart, so the checker
    carries on from there instead of reporting the first success again or granting a new grace period."""
    state = HealthState(spec, started_at)
    if resumed is not None:
        state.initializing, state.failures = False, resumed[1]
    await asyncio.sleep(max(0.0, started_at + spec.delay - clock()))
    while True:
        try:
            result = await asyncio.wait_for(probe(), spec.probe_timeout)
        except TimeoutError:
            result = ProbeResult(False, f"timed out after {spec.probe_timeout:g}s")
        except Exception as e:  # a probe that broke is a failed check, not a dead checker
            result = ProbeResult(False, f"{type(e).__name__}: {e}")
        if not result.ok:
            log.info("%s health check for %s failed: %s", spec.kind, name, result.message)
        change = state.record(result.ok, clock())
        if change is not None:
            on_change(change, result)
            if change.kill:
                return
        await asyncio.sleep(spec.interval)
