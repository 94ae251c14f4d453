"""ProcessContainerizer on real processes: sessions, sandbox output, exit status, kill, usage, recovery.

Every process group a test launched is SIGKILLed at teardown (from the records in the state dir), also
when the test failed half-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psutil
import pytest

from agent_py.containerizer import ContainerizerError, ContainerRecord, TaskSpec, UnknownContainerError
from agent_py.containerizer.process import ProcessContainerizer, is_same_process

T = TypeVar("T")
SCENARIO_TIMEOUT = 30.0  # a bound on each test's event loop, not a performance assertion
BUSY_LOOP = "while true; do sleep 0.1; done"
SPIN = "i=0; while [ $i -lt 30000 ]; do i=$((i + 1)); done"  # some CPU time, surely measurable


def _kill_all(state_dir: Path) -> None:
    """SIGKILL what a test left running, and reap the supervisors this process spawned (a test that plays
    a restarted agent is not reaping them, and PID 1 may not either)."""
    for record_file in state_dir.glob("*/record.json"):
        with contextlib.suppress(ValueError, OSError):
            record = ContainerRecord.from_json(record_file.read_text())
            if not record.pid:
                continue
            running = is_same_process(record.pid, record.start_time, record.boot_id)
            if running:
                os.killpg(record.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(record.pid, 0 if running else os.WNOHANG)


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "state"
    try:
        yield path
    finally:
        _kill_all(path)


def run(state_dir: Path, scenario: Callable[[ProcessContainerizer], Awaitable[T]]) -> T:
    async def main() -> T:
        pc = ProcessContainerizer(state_dir)
        try:
            return await asyncio.wait_for(scenario(pc), SCENARIO_TIMEOUT)
        finally:
            await pc.close()

    return asyncio.run(main())


def spec(tmp_path: Path, command: str, **kw: object) -> TaskSpec:
    container_id = uuid.uuid4().hex
    return TaskSpec(
        task_id=f"task-{container_id[:8]}",
        container_id=container_id,
        sandbox=tmp_path / "sandboxes" / container_id,
        command=command,
        **kw,  # type: ignore[arg-type]
    )


def output(task: TaskSpec, stream: str = "stdout") -> str:
    path = task.sandbox / stream
    return path.read_text() if path.exists() else ""


async def until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_runs_in_own_session_with_sandbox_and_env(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_SECRET", "must-not-leak")
    task = spec(
        tmp_path,
        'echo hello; echo oops >&2; echo "$MESOS_SANDBOX" "$GREETING" "${AGENT_SECRET-unset}"; pwd; '
        "read line < go; echo $line",
        env={"GREETING": "hi"},
    )

    task.sandbox.mkdir(parents=True)
    os.mkfifo(task.sandbox / "go")  # the task blocks reading it until the test has looked at it

    async def scenario(pc: ProcessContainerizer) -> None:
        record = await pc.launch(task)
        assert record.pid is not None and record.kind == "process"
        assert (await pc.status(task.container_id)).running
        assert os.getsid(record.pid) == record.pid != os.getsid(0)  # its own session and group
        assert os.getpgid(record.pid) == record.pid
        (task.sandbox / "go").write_text("done\n")
        status = await pc.wait(task.container_id)
        assert status.succeeded and status.exit_code == 0 and status.signal is None
        assert status.finished_at is not None and status.started_at == record.launched_at

    run(state_dir, scenario)
    sandbox = str(task.sandbox)
    assert output(task) == f"hello\n{sandbox} hi unset\n{sandbox}\ndone\n"
    assert output(task, "stderr") == "oops\n"


def test_exit_codes_and_argv_form(state_dir: Path, tmp_path: Path) -> None:
    failing = spec(tmp_path, "exit 3")
    argv = spec(tmp_path, "echo", shell=False, arguments=("echo", "a b", "$HOME"))
    missing = spec(tmp_path, "/no/such/program", shell=False)

    async def scenario(pc: ProcessContainerizer) -> None:
        for task in (failing, argv, missing):
            await pc.launch(task)
        status = await pc.wait(failing.container_id)
        assert (status.exit_code, status.succeeded, status.message) == (
            3,
            False,
            "Command exited with status 3",
        )
        assert (await pc.wait(argv.container_id)).succeeded
        assert (await pc.wait(missing.container_id)).exit_code == 127
        with pytest.raises(ContainerizerError, match="already exists"):
            await pc.launch(failing)
        with pytest.raises(ContainerizerError, match="images"):
            await pc.launch(spec(tmp_path, "true", image="busybox"))
        with pytest.raises(UnknownContainerError):
            await pc.status("nope")

    run(state_dir, scenario)
    assert output(argv) == "a b $HOME\n"
    assert "Failed to run /no/such/program" in output(missing, "stderr")


def test_kill_lets_a_term_handler_finish(state_dir: Path, tmp_path: Path) -> None:
    task = spec(tmp_path, f"trap 'echo got TERM; exit 0' TERM; echo ready; {BUSY_LOOP}")

    async def scenario(pc: ProcessContainerizer) -> None:
        await pc.launch(task)
        await until(lambda: "ready" in output(task), "the trap to be set")
        status = await pc.kill(task.container_id, grace_seconds=30)
        assert (status.running, status.exit_code, status.signal) == (False, 0, None)

    run(state_dir, scenario)
    assert output(task) == "ready\ngot TERM\n"


def test_kill_sigkills_the_whole_group_after_the_grace(state_dir: Path, tmp_path: Path) -> None:
    task = spec(tmp_path, f"trap '' TERM; sleep 1000 & echo $! > bg; echo ready; {BUSY_LOOP}")

    async def scenario(pc: ProcessContainerizer) -> None:
        await pc.launch(task)
        await until(lambda: "ready" in output(task), "the trap to be set")
        status = await pc.kill(task.container_id, grace_seconds=0.3)
        assert (status.running, status.exit_code, status.signal) == (False, 137, signal.SIGKILL)
        assert status.message == "Command terminated by SIGKILL"

    run(state_dir, scenario)
    assert gone(int((task.sandbox / "bg").read_text()))


def test_leftover_processes_die_with_the_task(state_dir: Path, tmp_path: Path) -> None:
    task = spec(tmp_path, "sleep 1000 & echo $! > bg; exit 5")

    async def scenario(pc: ProcessContainerizer) -> None:
        await pc.launch(task)
        assert (await pc.wait(task.container_id)).exit_code == 5

    run(state_dir, scenario)
    assert gone(int((task.sandbox / "bg").read_text()))


def test_usage_covers_the_process_tree(state_dir: Path, tmp_path: Path) -> None:
    task = spec(
        tmp_path,
        f"x=$(head -c 4m /dev/zero | tr '\\0' a); {SPIN}; echo ready; {BUSY_LOOP}",
        cpus=0.5,
        mem_mb=64,
    )

    async def scenario(pc: ProcessContainerizer) -> None:
        await pc.launch(task)
        await until(lambda: "ready" in output(task), "the task to allocate")
        usage = await pc.usage(task.container_id)
        assert usage.cpus_limit == 0.5 and usage.mem_limit_bytes == 64 * 1024 * 1024
        assert usage.processes is not None and usage.processes >= 2  # supervisor, sh (and its sleep)
        assert usage.mem_rss_bytes > 4 * 1024 * 1024
        assert usage.cpus_user_time_secs + usage.cpus_system_time_secs > 0
        await pc.kill(task.container_id, grace_seconds=0)
        assert (await pc.usage(task.container_id)).processes == 0

    run(state_dir, scenario)


def test_recover_reattaches_and_kills_orphans(state_dir: Path, tmp_path: Path) -> None:
    kept = spec(tmp_path, "echo before; read line < go; echo after; exit 7")
    orphan = spec(tmp_path, BUSY_LOOP)
    records: dict[str, ContainerRecord] = {}
    kept.sandbox.mkdir(parents=True)
    os.mkfifo(kept.sandbox / "go")

    async def first_agent(pc: ProcessContainerizer) -> None:
        for task in (kept, orphan):
            records[task.container_id] = await pc.launch(task)
        await until(lambda: output(kept) == "before\n", "the first output")

    async def restarted_agent(pc: ProcessContainerizer) -> None:
        recovery = await pc.recover({kept.container_id, "gone-container"})
        assert recovery.containers[kept.container_id].running
        assert recovery.orphans == [orphan.container_id]
        assert recovery.missing == ["gone-container"]
        (kept.sandbox / "go").write_text("go\n")
        status = await pc.wait(kept.container_id)
        # The new agent is not the parent, yet it learns the true exit status from the supervisor.
        assert status.exit_code == 7

    run(state_dir, first_agent)  # closing stops watching; the processes keep running, as when the agent dies
    run(state_dir, restarted_agent)
    assert output(kept) == "before\nafter\n"
    # This process spawned the orphan's supervisor, so it can tell how it ended (and reap it).
    _, wait_status = os.waitpid(records[orphan.container_id].pid or 0, 0)
    assert os.WIFSIGNALED(wait_status) and os.WTERMSIG(wait_status) == signal.SIGKILL
    assert not (state_dir / orphan.container_id).exists()


def test_a_reused_pid_is_not_taken_for_the_task(state_dir: Path, tmp_path: Path) -> None:
    # A checkpoint naming a pid now used by another process (this test runner) with another start time.
    impostor = ContainerRecord("c1", "process", "t1", "fw", str(tmp_path), 1.0, 64.0, os.getpid(), 12345.0)
    orphan = ContainerRecord("c2", "process", "t2", "fw", str(tmp_path), 1.0, 64.0, os.getpid(), 12345.0)
    for record in (impostor, orphan):
        (state_dir / record.container_id).mkdir(parents=True)
        (state_dir / record.container_id / "record.json").write_text(record.to_json())

    async def scenario(pc: ProcessContainerizer) -> None:
        recovery = await pc.recover({"c1"})  # must not signal our own process (we would not survive)
        status = recovery.containers["c1"]
        assert not status.running and status.exit_code is None
        assert recovery.orphans == ["c2"]

    run(state_dir, scenario)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_runs_as_the_task_user(state_dir: Path, tmp_path: Path) -> None:
    task = spec(tmp_path, "id -u; touch mine", user="nobody")

    async def scenario(pc: ProcessContainerizer) -> None:
        await pc.launch(task)
        assert (await pc.wait(task.container_id)).succeeded

    run(state_dir, scenario)
    assert output(task) == "65534\n"
    assert (task.sandbox / "mine").stat().st_uid == 65534
