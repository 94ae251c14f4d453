"""agent_py.health: HealthCheck validation and defaults, the decision core (Mesos' HealthChecker), where
probes go, and the probes and runner on loopback (no agent, no containers)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from agent_py.containerizer import PortMapping, TaskSpec
from agent_py.health import (
    HealthChange,
    HealthState,
    ProbeResult,
    Target,
    command_argv,
    make_probe,
    probe_address,
    process_command_probe,
    run_health_checks,
    task_target,
)
from paas_common.healthcheck import MAX_TIMEOUT, HealthCheckError, HealthCheckSpec

HTTP = {"type": "HTTP", "http": {"port": 8080}}


def spec(**kw: Any) -> HealthCheckSpec:
    return HealthCheckSpec.from_json({**HTTP, **kw})


# ---------------------------------------------------------------- validation


def test_defaults_are_mesos() -> None:
    s = spec()
    assert (s.delay, s.interval, s.timeout, s.consecutive_failures, s.grace_period) == (15, 10, 20, 3, 10)
    assert (s.kind, s.port, s.path, s.scheme, s.statuses) == ("HTTP", 8080, "/", "http", frozenset())


def test_numbers_given_as_strings_are_accepted() -> None:
    s = spec(interval_seconds="0.5", consecutive_failures="2")
    assert (s.interval, s.consecutive_failures) == (0.5, 2)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "HealthCheck must specify 'type'"),
        ({"type": "UNKNOWN"}, "'UNKNOWN' is not a valid health check type"),
        ({"type": "HTTP"}, "Expecting 'http' to be set for HTTP health check"),
        ({"type": "TCP"}, "Expecting 'tcp' to be set for TCP health check"),
        ({"type": "COMMAND"}, "Expecting 'command' to be set for COMMAND health check"),
        ({"type": "COMMAND", "command": {}}, "Command health check must contain 'shell command'"),
        (
            {"type": "COMMAND", "command": {"shell": False}},
            "Command health check must contain 'executable path'",
        ),
        ({**HTTP, "http": {"port": 1, "scheme": "ftp"}}, "Unsupported HTTP health check scheme: 'ftp'"),
        (
            {**HTTP, "http": {"port": 1, "path": "health"}},
            "The path 'health' of HTTP health check must start with '/'",
        ),
        ({**HTTP, "delay_seconds": -1}, "Expecting 'delay_seconds' to be non-negative"),
        ({**HTTP, "timeout_seconds": -0.5}, "Expecting 'timeout_seconds' to be non-negative"),
        ({"type": "TCP", "tcp": {}}, "Expecting 'tcp.port' to be set to a port number"),
        ({"type": "TCP", "tcp": {"port": 70000}}, "Expecting 'tcp.port' to be a port number, got 70000"),
    ],
)
def test_invalid_checks_get_mesos_messages(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(HealthCheckError) as e:
        HealthCheckSpec.from_json(doc)
    assert str(e.value) == message


def test_zero_timeout_means_no_timeout_but_stays_bounded() -> None:
    assert spec(timeout_seconds=0).probe_timeout == MAX_TIMEOUT


# ---------------------------------------------------------------- the decision


def run(state: HealthState, results: list[tuple[bool, float]]) -> list[HealthChange | None]:
    return [state.record(ok, now) for ok, now in results]


def test_failures_in_the_grace_period_are_ignored_until_the_first_success() -> None:
    state = HealthState(spec(grace_period_seconds=10, consecutive_failures=2), started_at=100.0)
    assert run(state, [(False, 101), (False, 110), (True, 111)]) == [None, None, HealthChange(True)]
    # The grace period no longer applies once the task was healthy.
    assert run(state, [(False, 112), (False, 113)]) == [
        HealthChange(False, 1, kill=False),
        HealthChange(False, 2, kill=True),
    ]


def test_failures_after_the_grace_period_count_even_without_a_success() -> None:
    state = HealthState(spec(grace_period_seconds=5, consecutive_failures=3), started_at=0.0)
    assert run(state, [(False, 5.0), (False, 5.1), (False, 6), (False, 7)]) == [
        None,
        HealthChange(False, 1),
        HealthChange(False, 2),
        HealthChange(False, 3, kill=True),
    ]


def test_only_the_first_success_and_recoveries_are_reported() -> None:
    state = HealthState(spec(grace_period_seconds=0, consecutive_failures=3), started_at=0.0)
    assert run(state, [(True, 1), (True, 2), (False, 3), (True, 4), (True, 5)]) == [
        HealthChange(True),
        None,
        HealthChange(False, 1),
        HealthChange(True),
        None,
    ]


@given(
    results=st.lists(st.tuples(st.booleans(), st.floats(0, 100)), max_size=40),
    failures=st.integers(1, 5),
    grace=st.floats(0, 50),
)
def test_a_kill_follows_exactly_n_reported_failures_in_a_row(
    results: list[tuple[bool, float]], failures: int, grace: float
) -> None:
    state = HealthState(spec(consecutive_failures=failures, grace_period_seconds=grace), started_at=0.0)
    ordered = sorted(results, key=lambda r: r[1])
    run_of_failures = 0
    for (ok, _), change in zip(ordered, run(state, ordered), strict=True):
        if change is None:
            continue
        assert change.healthy == ok
        run_of_failures = 0 if ok else run_of_failures + 1
        assert change.consecutive_failures == run_of_failures
        assert change.kill == (not ok and run_of_failures >= failures)


# ---------------------------------------------------------------- where probes go


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (Target("host"), ("127.0.0.1", 8080)),
        # The container's own address wins over a mapping (Docker's proxy would accept on the host port).
        (
            Target("bridge", container_ip="172.17.0.5", ports=(PortMapping(31005, 8080),)),
            ("172.17.0.5", 8080),
        ),
        (Target("bridge", ports=(PortMapping(31005, 8080),), bind_address="127.0.0.1"), ("127.0.0.1", 31005)),
        (Target("bridge", ports=(PortMapping(31005, 8080),), bind_address="0.0.0.0"), ("127.0.0.1", 31005)),
        (
            Target(
                "mynet", ports=(PortMapping(31001, 80), PortMapping(31002, 8080)), bind_address="10.0.0.5"
            ),
            ("10.0.0.5", 31002),
        ),
    ],
)
def test_probe_address(target: Target, expected: tuple[str, int]) -> None:
    assert probe_address(8080, target) == expected


def test_an_unmapped_container_port_cannot_be_probed() -> None:
    with pytest.raises(HealthCheckError, match="Container port 8080 has no host port mapping"):
        probe_address(8080, Target("bridge", ports=(PortMapping(31005, 80),)))
    with pytest.raises(HealthCheckError):  # a UDP mapping is not a TCP one
        probe_address(8080, Target("bridge", ports=(PortMapping(31005, 8080, "udp"),)))


class FakeDocker:
    default_network = "bridge"

    def __init__(self, address: str | Exception | None) -> None:
        self._address = address
        self.execs: list[tuple[str, list[str]]] = []

    async def address(self, container_id: str) -> str | None:
        if isinstance(self._address, Exception):
            raise self._address
        return self._address

    async def exec(self, container_id: str, argv: Any, env: Any, timeout: float) -> int:
        self.execs.append((container_id, list(argv)))
        return 0


def docker_spec(**kw: Any) -> TaskSpec:
    return TaskSpec("t", "cid", Path("/sb"), image="img", ports=(PortMapping(31005, 8080),), **kw)


def test_task_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    for name in ("LANG", "LC_ALL", "TZ"):
        monkeypatch.delenv(name, raising=False)
    process = asyncio.run(task_target(TaskSpec("t", "cid", Path("/sb"), env={"A": "1"}), None, "0.0.0.0"))
    assert process.network == "host" and process.sandbox == Path("/sb")
    assert process.env == {"PATH": "/usr/bin:/bin", "A": "1", "MESOS_SANDBOX": "/sb", "MESOS_TASK_ID": "t"}
    docker = FakeDocker("172.17.0.9")
    bridged = asyncio.run(task_target(docker_spec(), docker, "127.0.0.1"))
    assert (bridged.network, bridged.container_ip) == ("bridge", "172.17.0.9")
    assert bridged.exec_in_container is not None
    assert asyncio.run(bridged.exec_in_container(["true"], {}, 1.0)) == 0 and docker.execs == [
        ("cid", ["true"])
    ]
    # Without an address of its own (inspect failed): the mapped port.
    unknown = asyncio.run(task_target(docker_spec(), FakeDocker(RuntimeError("gone")), "127.0.0.1"))
    assert unknown.container_ip is None and probe_address(8080, unknown) == ("127.0.0.1", 31005)
    on_host = asyncio.run(task_target(docker_spec(network="host"), FakeDocker("x"), "127.0.0.1"))
    assert on_host.container_ip is None and probe_address(8080, on_host) == ("127.0.0.1", 8080)


def test_command_argv_follows_command_info() -> None:
    assert command_argv({"value": "test -e x"}) == ["/bin/sh", "-c", "test -e x"]
    assert command_argv({"value": "/bin/test", "shell": False, "arguments": ["test", "-e", "x"]}) == [
        "/bin/test",
        "-e",
        "x",
    ]


# ---------------------------------------------------------------- probes on loopback


@contextlib.asynccontextmanager
async def http_server(status: int) -> AsyncIterator[int]:
    async def handler(request: web.Request) -> web.Response:
        if request.path == "/moved":
            raise web.HTTPFound("/health")
        return web.Response(status=status)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def probe_once(check: dict[str, Any], target: Target) -> ProbeResult:
    async with aiohttp.ClientSession() as session:
        return await make_probe(HealthCheckSpec.from_json(check), target, session)()


@pytest.mark.parametrize(
    ("status", "path", "statuses", "ok"),
    [
        (200, "/health", [], True),
        (399, "/health", [], True),
        (404, "/health", [], False),
        (503, "/health", [], False),
        (200, "/moved", [], True),  # redirects are followed, as curl -L
        (204, "/health", [200], False),  # http.statuses, when given, are the only successes
        (503, "/health", [503], True),
    ],
)
def test_http_probe(status: int, path: str, statuses: list[int], ok: bool) -> None:
    async def go() -> ProbeResult:
        async with http_server(status) as port:
            check = {"type": "HTTP", "http": {"port": port, "path": path, "statuses": statuses}}
            return await probe_once(check, Target("host"))

    result = asyncio.run(go())
    assert result.ok is ok, result


def test_tcp_probe_succeeds_while_someone_listens() -> None:
    async def go() -> tuple[ProbeResult, ProbeResult]:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        check = {"type": "TCP", "tcp": {"port": port}}
        listening = await probe_once(check, Target("host"))
        server.close()
        await server.wait_closed()
        return listening, await probe_once(check, Target("host"))

    listening, closed = asyncio.run(go())
    assert listening.ok and not closed.ok
    assert "TCP connection to 127.0.0.1" in closed.message


def test_unreachable_container_port_fails_every_probe() -> None:
    result = asyncio.run(probe_once({"type": "TCP", "tcp": {"port": 8080}}, Target("bridge")))
    assert not result.ok and "no host port mapping" in result.message


def test_process_command_runs_in_the_sandbox_with_the_task_environment(tmp_path: Path) -> None:
    (tmp_path / "marker").write_text("")
    target = Target("host", sandbox=tmp_path, env={"PATH": "/usr/bin:/bin", "WANTED": "yes"})
    ok = {"type": "COMMAND", "command": {"value": 'test -e marker && test "$WANTED" = yes'}}
    failing = {"type": "COMMAND", "command": {"value": "exit 3"}}
    assert asyncio.run(probe_once(ok, target)).ok
    assert asyncio.run(probe_once(failing, target)) == ProbeResult(False, "Command exited with status 3")


def test_process_command_outliving_its_timeout_is_killed_with_its_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    argv = ["/bin/sh", "-c", f"sleep 30 & echo $! > {pidfile}; wait"]

    async def go() -> ProbeResult:
        return await process_command_probe(argv, tmp_path, {"PATH": "/usr/bin:/bin"}, timeout=0.5)

    result = asyncio.run(go())
    assert result == ProbeResult(False, "Command timed out after 0.5s")
    child = int(pidfile.read_text())

    def gone() -> bool:  # SIGKILL is delivered at once, but the kernel takes a moment to end the process
        try:
            return "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
        except OSError:
            return True

    deadline = time.monotonic() + 5
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gone()


def test_docker_command_goes_through_the_container_exec() -> None:
    calls: list[tuple[list[str], dict[str, str], float]] = []

    async def exec_in(argv: Any, env: Any, timeout: float) -> int:
        calls.append((list(argv), dict(env), timeout))
        return 1

    check = {
        "type": "COMMAND",
        "timeout_seconds": 7,
        "command": {
            "value": "wget -q http://127.0.0.1:8080/",
            "environment": {"variables": [{"name": "A", "value": "b"}]},
        },
    }
    result = asyncio.run(probe_once(check, Target("bridge", exec_in_container=exec_in)))
    assert result == ProbeResult(False, "Command exited with status 1")
    assert calls == [(["/bin/sh", "-c", "wget -q http://127.0.0.1:8080/"], {"A": "b"}, 7.0)]


# ---------------------------------------------------------------- the runner


def scripted(results: list[bool | None]) -> Callable[[], Any]:
    """A probe answering from ``results``; None hangs (until the runner's timeout)."""
    queue = list(results)

    async def probe() -> ProbeResult:
        ok = queue.pop(0) if queue else True
        if ok is None:
            await asyncio.sleep(60)
        return ProbeResult(bool(ok), "" if ok else "scripted failure")

    return probe


def test_runner_reports_changes_and_stops_after_asking_for_the_kill() -> None:
    check = spec(
        delay_seconds=0,
        interval_seconds=0,
        grace_period_seconds=0,
        consecutive_failures=2,
        timeout_seconds=0.2,
    )
    changes: list[HealthChange] = []

    async def go() -> None:
        await asyncio.wait_for(
            run_health_checks(
                check,
                scripted([True, True, False, True, None, False, True]),
                lambda change, result: changes.append(change),
                started_at=0.0,
            ),
            timeout=10,
        )

    asyncio.run(go())
    # The hanging probe times out: a failure like any other.
    assert changes == [
        HealthChange(True),
        HealthChange(False, 1),
        HealthChange(True),
        HealthChange(False, 1),
        HealthChange(False, 2, kill=True),
    ]


def test_runner_resumes_what_was_reported_before_an_agent_restart() -> None:
    """A task known healthy is not reported healthy again; one already failing keeps its count (and gets
    no new grace period), so the next failure can be the one that kills it."""
    check = spec(delay_seconds=0, interval_seconds=0, grace_period_seconds=600, consecutive_failures=3)

    def run(results: list[bool | None], resumed: tuple[bool, int]) -> list[HealthChange]:
        changes: list[HealthChange] = []

        async def go() -> None:
            task = asyncio.create_task(
                run_health_checks(
                    check,
                    scripted(results),
                    lambda change, result: changes.append(change),
                    started_at=0.0,
                    clock=lambda: 1.0,  # well inside the grace period
                    resumed=resumed,
                )
            )
            await asyncio.wait({task}, timeout=0.3)
            task.cancel()

        asyncio.run(go())
        return changes

    assert run([True, True, True], resumed=(True, 0)) == []
    assert run([False], resumed=(False, 2)) == [HealthChange(False, 3, kill=True)]
    assert run([True], resumed=(False, 2)) == [HealthChange(True)]


def test_runner_counts_the_delay_from_the_task_start() -> None:
    """A task started long ago (a recovered one) is probed at once; a fresh one only after the delay."""
    probed: list[float] = []

    async def probe() -> ProbeResult:
        probed.append(1.0)
        return ProbeResult(False, "down")

    async def go(started_at: float) -> bool:
        check = spec(delay_seconds=5, interval_seconds=0, grace_period_seconds=0, consecutive_failures=1)
        task = asyncio.create_task(
            run_health_checks(check, probe, lambda c, r: None, started_at=started_at, clock=lambda: 1000.0)
        )
        done, _ = await asyncio.wait({task}, timeout=0.5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return bool(done)

    assert asyncio.run(go(started_at=0.0)) and probed == [1.0]  # killed after its one failure
    assert not asyncio.run(go(started_at=999.0)) and probed == [1.0]  # still in its 5 s delay
