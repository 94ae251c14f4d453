"""DockerContainerizer against the real local Docker Engine (skipped without one; failed on CI).

Each test gets its own owner label; every container with it is removed afterwards (tests/support/docker).
Containers run without a network unless the test maps a port, which is then bound on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import docker
import pytest

from agent_py.containerizer import (
    REASON_MEMORY,
    ContainerizerError,
    ImageNotFoundError,
    PortMapping,
    TaskSpec,
    UnknownContainerError,
)
from agent_py.containerizer.docker import LABEL_OWNER, LABEL_PREFIX, DockerContainerizer, container_name
from tests.support.docker import TASK_IMAGE, owned_containers
from tests.support.servers import free_port

pytestmark = pytest.mark.docker

T = TypeVar("T")
SCENARIO_TIMEOUT = 60.0  # a bound on each test's event loop, not a performance assertion
BUSY_LOOP = "while true; do sleep 0.1; done"
SPIN = "i=0; while [ $i -lt 30000 ]; do i=$((i + 1)); done"  # some CPU time, surely measurable


@pytest.fixture
def engine() -> Iterator[tuple[docker.DockerClient, str]]:
    with owned_containers() as env:
        yield env


def run(
    engine: tuple[docker.DockerClient, str], scenario: Callable[[DockerContainerizer], Awaitable[T]]
) -> T:
    """Run scenario(containerizer) in a fresh event loop, the containerizer closed afterwards."""
    client, owner = engine

    async def main() -> T:
        dz = DockerContainerizer(client, owner=owner, bind_address="127.0.0.1", default_network="none")
        try:
            return await asyncio.wait_for(scenario(dz), SCENARIO_TIMEOUT)
        finally:
            await dz.close()

    return asyncio.run(main())


def spec(sandbox: Path, command: str | None, **kw: object) -> TaskSpec:
    container_id = uuid.uuid4().hex
    return TaskSpec(
        task_id=f"task-{container_id[:8]}",
        container_id=container_id,
        sandbox=sandbox / container_id,
        command=command,
        image=TASK_IMAGE,
        framework_id="fw-1",
        **kw,  # type: ignore[arg-type]
    )


async def until(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll a condition with a bound; fails with `what` if it never holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def output(task: TaskSpec, stream: str = "stdout") -> str:
    path = task.sandbox / stream
    return path.read_text() if path.exists() else ""


def test_task_runs_with_sandbox_env_and_labels(
    engine: tuple[docker.DockerClient, str], tmp_path: Path
) -> None:
    client, owner = engine
    task = spec(
        tmp_path,
        'echo hello; echo oops >&2; echo "$MESOS_SANDBOX $GREETING"; pwd; touch made-here',
        env={"GREETING": "hi", "MESOS_SANDBOX": "overridden"},
        labels={"app": "web"},
    )

    async def scenario(dz: DockerContainerizer) -> None:
        record = await dz.launch(task)
        status = await dz.wait(task.container_id)
        assert status.succeeded and status.exit_code == 0 and not status.oom_killed
        assert status.started_at is not None and status.finished_at is not None
        assert record.kind == "docker" and record.task_id == task.task_id

    run(engine, scenario)
    assert output(task) == "hello\n/mnt/mesos/sandbox hi\n/mnt/mesos/sandbox\n"
    assert output(task, "stderr") == "oops\n"
    assert (task.sandbox / "made-here").exists()
    labels = client.containers.get(container_name(task.container_id)).labels
    assert labels["app"] == "web" and labels[LABEL_OWNER] == owner
    assert labels[LABEL_PREFIX + "task_id"] == task.task_id
    assert labels[LABEL_PREFIX + "framework_id"] == "fw-1"


def test_exit_code_and_argv_form(engine: tuple[docker.DockerClient, str], tmp_path: Path) -> None:
    failing = spec(tmp_path, "exit 3")
    argv = spec(tmp_path, "echo", shell=False, arguments=("a b", "$HOME"))

    async def scenario(dz: DockerContainerizer) -> None:
        await dz.launch(failing)
        await dz.launch(argv)
        status = await dz.wait(failing.container_id)
        assert not status.running and status.exit_code == 3 and not status.succeeded
        assert "status 3" in status.message
        assert (await dz.wait(argv.container_id)).succeeded

    run(engine, scenario)
    assert output(argv) == "a b $HOME\n"  # no shell: arguments reach the program verbatim


def test_limits_are_in_the_cgroup(engine: tuple[docker.DockerClient, str], tmp_path: Path) -> None:
    client, _ = engine
    # cgroup v1 (this Debian host) or v2: shares/weight, CFS quota and period, memory limit.
    probe = (
        "if [ -f /sys/fs/cgroup/cpu.max ]; then"
        " echo v2; cat /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.max;"
        " else echo v1; cat /sys/fs/cgroup/cpu/cpu.shares;"
        " echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us);"
        " cat /sys/fs/cgroup/memory/memory.limit_in_bytes; fi"
    )
    task = spec(tmp_path, probe, cpus=0.5, mem_mb=64)

    async def scenario(dz: DockerContainerizer) -> None:
        await dz.launch(task)
        assert (await dz.wait(task.container_id)).succeeded

    run(engine, scenario)
    version, shares_or_weight, cpu_max, memory = output(task).split("\n")[:4]
    assert cpu_max == "50000 100000"
    assert int(memory) == 64 * 1024 * 1024
    # runc maps shares to cgroup v2 weight as 1 + (shares - 2) * 9999 / 262142.
    assert int(shares_or_weight) == (512 if version == "v1" else 1 + (512 - 2) * 9999 // 262142)
    host = client.api.inspect_container(container_name(task.container_id))["HostConfig"]
    assert (host["CpuShares"], host["CpuQuota"], host["CpuPeriod"]) == (512, 50000, 100000)
    assert host["Memory"] == host["MemorySwap"] == 64 * 1024 * 1024
    assert host["NetworkMode"] == "none"


def test_memory_floor_is_32_mb(engine: tuple[docker.DockerClient, str], tmp_path: Path) -> None:
    client, _ = engine
    task = spec(tmp_path, "true", cpus=0.001, mem_mb=4)

    async def scenario(dz: DockerContainerizer) -> None:
        await dz.launch(task)
        await dz.wait(task.container_id)

    run(engine, scenario)
    host = client.api.inspect_container(container_name(task.container_id))["HostConfig"]
    assert (host["CpuShares"], host["CpuQuota"], host["Memory"]) == (2, 1000, 32 * 1024 * 1024)


def test_port_mapping_reachable_on_loopback(engine: tuple[docker.DockerClient, str], tmp_path: Path) -> None:
    client, _ = engine
    host_port = free_port()
    task = spec(tmp_path, "exec httpd -f -p 8080 -h /var/www", ports=(PortMapping(host_port, 8080),))

    def fetch() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{host_port}/index.html", timeout=2) as reply:
            return str(reply.read().decode())

    async def scenario(dz: DockerContainerizer) -> str:
        await dz.launch(task)

        async def served() -> str:
            for _ in range(100):
                try:
                    return await asyncio.to_thread(fetch)
                except OSError:
                    await asyncio.sleep(0.1)
            pytest.fail("httpd in the container never answered on the mapped port")

        body = await served()
        await dz.kill(task.container_id, grace_seconds=0)
        return body

    assert run(engine, scenario) == "hello from baremetal-paas/busybox\n"
    bindings = client.api.inspect_container(container_name(task.container_id))["HostConfig"]["PortBindings"]
    assert bindings == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(host_port)}]}


def test_memory_limit_exceeded_is_reported_as_oom(
    engine: tuple[docker.DockerClient, str], tmp_path: Path
) -> None:
    # The shell grows past the 32 MB limit collecting 100 MB of output; whichever process the kernel
    # kills, the task fails.
    task = spec(tmp_path, "x=$(head -c 100m /dev/zero | tr '\\0' a) || exit 1; echo survived", mem_mb=32)

    async def scenario(dz: DockerContainerizer) -> None:
        await dz.launch(task)
        status = await dz.wait(task.container_id)
        assert status.oom_killed and status.reason == REASON_MEMORY
        assert not status.succeeded and "Memory limit" in status.message

    run(engine, scenario)
    assert "survived" not in output(task)


def test_kill_lets_a_term_handler_finish(engine: tuple[docker.DockerClient, str], tmp_path: Path) -> None:
    task = spec(tmp_path, f"trap 'echo got TERM; exit 0' TERM; echo ready; {BUSY_LOOP}")

    async def scenario(dz: DockerContainerizer) -> None:
        await dz.launch(task)
        await until(lambda: "ready" in output(task), "the trap to be set")
        status = await dz.kill(task.container_id, grace_seconds=30)
        assert status.exit_code == 0 and not status.running

    run(engine, scenario)
    assert output(task) == "ready\ngot TERM\n"


def test_kill_sigkills_after_the_grace_period(
    engine: tuple[docker.DockerClient, str], tmp_path: Path
) -> None:
    task = spec(tmp_path, f"trap '' TERM; echo ready; {BUSY_LOOP}")

    async def scenario(dz: DockerContainerizer) -> None:
        await dz.launch(task)
        await until(lambda: "ready" in output(task), "the trap to be set")
        status = await dz.kill(task.container_id, grace_seconds=1)
        assert not status.running and status.exit_code == 137  # 128 + SIGKILL
        assert (await dz.status(task.container_id)).exit_code == 137

    run(engine, scenario)


def test_missing_image_fails_at_once(engine: tuple[docker.DockerClient, str], tmp_path: Path) -> None:
    client, owner = engine
    task = TaskSpec(
        task_id="t",
        container_id=uuid.uuid4().hex,
        sandbox=tmp_path / "sb",
        command="true",
        image="baremetal-paas/no-such-image:1",
    )

    async def scenario() -> None:
        dz = await DockerContainerizer.connect(owner=owner)  # its own client, closed with it
        try:
            with pytest.raises(ImageNotFoundError, match="no-such-image"):
                await asyncio.wait_for(dz.launch(task), 10)
            with pytest.raises(UnknownContainerError):
                await dz.status(task.container_id)
        finally:
            await dz.close()

    asyncio.run(scenario())
    assert client.containers.list(all=True, filters={"label": f"{LABEL_OWNER}={owner}"}) == []


def test_unreachable_engine_is_a_clear_error(tmp_path: Path) -> None:
    socket = tmp_path / "no-docker.sock"
    with pytest.raises(ContainerizerError, match="Docker Engine not reachable"):
        asyncio.run(DockerContainerizer.connect(f"unix://{socket}"))


def test_usage_reports_cpu_and_memory(engine: tuple[docker.DockerClient, str], tmp_path: Path) -> None:
    task = spec(
        tmp_path,
        f"x=$(head -c 2m /dev/zero | tr '\\0' a); {SPIN}; echo ready; {BUSY_LOOP}",
        cpus=0.25,
        mem_mb=48,
    )

    async def scenario(dz: DockerContainerizer) -> None:
        await dz.launch(task)
        await until(lambda: "ready" in output(task), "the task to allocate")
        usage = await dz.usage(task.container_id)
        assert usage.cpus_limit == 0.25 and usage.mem_limit_bytes == 48 * 1024 * 1024
        assert usage.mem_rss_bytes > 1024 * 1024
        assert usage.cpus_user_time_secs + usage.cpus_system_time_secs > 0
        assert usage.processes is not None and usage.processes >= 1
        assert {"timestamp", "cpus_limit", "mem_rss_bytes"} <= usage.to_json().keys()
        await dz.kill(task.container_id, grace_seconds=0)

    run(engine, scenario)


def test_recover_reattaches_and_removes_orphans(
    engine: tuple[docker.DockerClient, str], tmp_path: Path
) -> None:
    client, _ = engine
    go = "/mnt/mesos/sandbox/go"
    kept = spec(tmp_path, f"echo before; while [ ! -f {go} ]; do sleep 0.05; done; echo after")
    orphan = spec(tmp_path, BUSY_LOOP)

    async def first_agent(dz: DockerContainerizer) -> None:
        await dz.launch(kept)
        await dz.launch(orphan)
        await until(lambda: output(kept) == "before\n", "the first output")

    async def restarted_agent(dz: DockerContainerizer) -> None:
        recovery = await dz.recover({kept.container_id, "gone-container"})
        assert recovery.containers[kept.container_id].running
        assert recovery.orphans == [orphan.container_id]
        assert recovery.missing == ["gone-container"]
        (kept.sandbox / "go").touch()
        assert (await dz.wait(kept.container_id)).succeeded

    run(engine, first_agent)  # closing the containerizer leaves the containers running, like a dead agent
    run(engine, restarted_agent)
    assert output(kept) == "before\nafter\n"  # the log copy resumed without loss or repetition
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(container_name(orphan.container_id))
