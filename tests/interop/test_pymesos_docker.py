"""Docker tasks as an unmodified pymesos framework sees them, through real master-py and agent-py processes
and the local Docker Engine: resource limits land in the container's cgroup, a port mapping taken from the
offer serves HTTP on loopback, an out-of-memory task fails with the memory reason, and a killed task's
container is gone.  The agent (tests/support/agents.py) removes every container it owns at teardown."""

from __future__ import annotations

import contextlib
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import NotFound
from pymesos import MesosSchedulerDriver

from agent_py.containerizer.docker import container_name
from tests.support.agents import AgentProc, bindable_port
from tests.support.clients import WAIT
from tests.support.docker import require_engine
from tests.support.masters import MasterProc
from tests.support.pymesos_fw import (
    Framework,
    TaskInfo,
    TaskMaker,
    docker_task,
    driving,
    offered_ports,
    running_agent,
    running_master,
)

MiB = 1024 * 1024
Launch = Callable[[list[TaskInfo | TaskMaker]], tuple[Framework, MesosSchedulerDriver]]


@pytest.fixture
def client() -> Iterator[docker.DockerClient]:
    require_engine()
    c = docker.from_env(version="auto", timeout=30)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def agent(tmp_path: Path, client: docker.DockerClient) -> Iterator[AgentProc]:
    """Master and agent, started only once ``client`` found the engine usable (else the test is skipped)."""
    with running_master(tmp_path / "master") as master, running_agent(tmp_path / "agent", master) as a:
        yield a


@pytest.fixture
def launch(agent: AgentProc) -> Iterator[Launch]:
    """Start a pymesos framework that launches the given tasks on its first offer."""
    master: MasterProc = agent.master
    with contextlib.ExitStack() as stack:

        def start(tasks: list[TaskInfo | TaskMaker]) -> tuple[Framework, MesosSchedulerDriver]:
            sched = Framework(tasks)
            return sched, stack.enter_context(
                driving(sched, f"127.0.0.1:{master.port}", name="docker-interop")
            )

        yield start


def container_of(update: dict[str, Any]) -> str:
    """The Docker container name of a task, from the container id its status update carries."""
    return container_name(update["container_status"]["container_id"]["value"])


def read_cgroup(client: docker.DockerClient, name: str, *files: str) -> list[str]:
    """The values in the cgroup files (whitespace-separated), read inside the running container."""
    code, out = client.containers.get(name).exec_run(["cat", *(f"/sys/fs/cgroup/{f}" for f in files)])
    assert code == 0, out
    text: str = out.decode()
    return text.split()


def test_limits_are_in_the_containers_cgroup(launch: Launch, client: docker.DockerClient) -> None:
    sched, _ = launch([docker_task("limits-1", "sleep 600", "cpus:0.5;mem:64")])
    name = container_of(sched.wait_for("limits-1", "TASK_RUNNING"))
    code, _ = client.containers.get(name).exec_run(["test", "-f", "/sys/fs/cgroup/cpu.max"])
    if code == 0:  # cgroup v2; runc maps shares to weight as 1 + (shares - 2) * 9999 / 262142
        weight, quota, period, memory = read_cgroup(client, name, "cpu.weight", "cpu.max", "memory.max")
        assert int(weight) == 1 + (512 - 2) * 9999 // 262142
    else:  # cgroup v1 (this Debian host)
        files = (
            "cpu/cpu.shares",
            "cpu/cpu.cfs_quota_us",
            "cpu/cpu.cfs_period_us",
            "memory/memory.limit_in_bytes",
        )
        shares, quota, period, memory = read_cgroup(client, name, *files)
        assert int(shares) == 512
    assert (int(quota), int(period)) == (50_000, 100_000)  # half a CPU per 100 ms CFS period
    assert int(memory) == 64 * MiB


def http_get(url: str) -> bytes:
    """The body at ``url``, retried until httpd in the container listens (bounded)."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                body: bytes = reply.read()
                return body
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_port_mapping_from_the_offer_serves_http_on_loopback(launch: Launch) -> None:
    chosen: list[int] = []

    def web(offer: Any) -> TaskInfo:
        port = bindable_port(offered_ports(offer))
        chosen.append(port)
        mapping = {"host_port": port, "container_port": 8080, "protocol": "tcp"}
        return docker_task(
            "web-1",
            "exec httpd -f -p 8080 -h /var/www",
            f"cpus:0.1;mem:32;ports:[{port}-{port}]",
            network="BRIDGE",
            port_mappings=[mapping],
        )

    sched, _ = launch([web])
    sched.wait_for("web-1", "TASK_RUNNING")
    assert http_get(f"http://127.0.0.1:{chosen[0]}/index.html") == b"hello from baremetal-paas/busybox\n"


def test_task_over_its_memory_limit_fails_with_the_memory_reason(launch: Launch) -> None:
    # The shell grows past the 32 MB limit collecting 100 MB of output; whichever process the kernel kills,
    # the container was OOM-killed and the task fails.
    hog = "x=$(head -c 100m /dev/zero | tr '\\0' a) || exit 1; echo survived"
    sched, _ = launch([docker_task("hog-1", hog, "cpus:0.1;mem:32")])
    failed = sched.wait_for("hog-1", "TASK_FAILED")
    assert failed["reason"] == "REASON_CONTAINER_LIMITATION_MEMORY"
    assert "memory" in failed["message"].lower()
    assert sched.states("hog-1", source="SOURCE_EXECUTOR") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FAILED"]


def test_killed_task_ends_killed_and_its_container_is_removed(
    launch: Launch, client: docker.DockerClient
) -> None:
    sched, driver = launch([docker_task("victim-1", "sleep 600")])
    name = container_of(sched.wait_for("victim-1", "TASK_RUNNING"))
    assert client.containers.get(name).status == "running"
    driver.killTask({"value": "victim-1"})
    sched.wait_for("victim-1", "TASK_KILLED")
    deadline = time.monotonic() + WAIT
    while True:
        try:
            client.api.inspect_container(name)
        except NotFound:
            break
        assert time.monotonic() < deadline, f"container {name} still exists after TASK_KILLED"
        time.sleep(0.1)
    assert sched.states("victim-1", source="SOURCE_EXECUTOR") == [
        "TASK_STARTING",
        "TASK_RUNNING",
        "TASK_KILLED",
    ]
