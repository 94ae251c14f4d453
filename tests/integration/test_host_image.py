"""The Debian host image (scripts/build-host-image.sh) boots like a bare-metal host in Docker.

Molecule and the sandbox run Ansible against containers of baremetal-paas/debian-host:bookworm; these
tests prove the image is usable for that without --privileged: systemd reaches running/degraded, sshd
listens (and answers from outside the container), python3 with venv works.  Needs the local Docker
Engine (marker ``docker``); builds the image when missing or built from another recipe (~1-2 min), else
takes seconds.  The container and its --internal network are removed whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.errors import DockerException, NotFound
from docker.models.containers import Container

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

IMAGE = "baremetal-paas/debian-host:bookworm"
BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build-host-image.sh"
BOOT_TIMEOUT = 90.0


def _client() -> docker.DockerClient:
    """A client, or skip (fail on CI, where the Docker tests are part of the bar)."""
    try:
        client = docker.from_env(version="auto", timeout=60)
        client.ping()
    except DockerException as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI run without a usable Docker Engine: {e}", pytrace=False)
        pytest.skip(f"Docker Engine not reachable ({e}): run scripts/docker-setup.sh")
    return client


def _build() -> subprocess.CompletedProcess[str]:
    """Run the build script: a no-op when the image carries its recipe hash."""
    cmd = ["bash", str(BUILD_SCRIPT)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1500, check=False)


def _exec(container: Container, *cmd: str) -> tuple[int, str]:
    code, out = container.exec_run(list(cmd), demux=False)
    return code, out.decode(errors="replace")


def _wait_booted(container: Container) -> str:
    """Poll `systemctl is-system-running` until systemd has finished booting (bounded); its last answer."""
    state = ""
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        _, out = _exec(container, "systemctl", "is-system-running")
        state = out.strip()
        if state in ("running", "degraded"):
            break
        container.reload()
        if container.status != "running":
            break
        time.sleep(0.5)
    return state


@pytest.fixture(scope="module")
def host() -> Iterator[Container]:
    """One booted host-image container on its own --internal network; both removed afterwards."""
    client = _client()
    build = _build()
    assert build.returncode == 0, f"build-host-image.sh failed:\n{build.stdout}\n{build.stderr}"
    name = f"bp-host-test-{uuid.uuid4().hex[:8]}"
    network = client.networks.create(name, driver="bridge", internal=True)
    container = None
    try:
        container = client.containers.run(
            IMAGE,
            name=name,
            detach=True,
            network=name,
            hostname="host1",
            cap_add=["SYS_ADMIN"],
            tmpfs={"/run": "", "/run/lock": ""},
            volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "ro"}},
        )
        state = _wait_booted(container)
        if state not in ("running", "degraded"):
            _, failed = _exec(container, "systemctl", "--failed", "--no-pager")
            logs = container.logs()[-3000:].decode(errors="replace")
            pytest.fail(f"systemd did not finish booting ({state!r}):\n{failed}\n{logs}")
        yield container
    finally:
        if container is not None:
            with contextlib.suppress(NotFound):
                container.remove(force=True)
        with contextlib.suppress(NotFound):
            network.remove()
        client.close()


def test_rebuild_is_a_no_op_for_the_same_recipe() -> None:
    client = _client()
    try:
        assert _build().returncode == 0
        before = client.images.get(IMAGE).id
        again = _build()
        assert again.returncode == 0, again.stderr
        assert again.stdout == ""  # nothing rebuilt, nothing said
        assert client.images.get(IMAGE).id == before
    finally:
        client.close()


def test_image_is_configured_for_systemd_in_docker(host: Container) -> None:
    config = host.image.attrs["Config"]
    assert config["Cmd"] == ["/sbin/init"]
    assert config["StopSignal"] == "SIGRTMIN+3"
    assert config["Labels"]["org.baremetal-paas.recipe"]


def test_systemd_boots_without_failed_units(host: Container) -> None:
    _, failed = _exec(host, "systemctl", "list-units", "--failed", "--plain", "--no-legend")
    assert failed.strip() == ""
    code, out = _exec(host, "systemctl", "is-active", "ssh.service", "dbus.service")
    assert code == 0, out


def test_sshd_listens_and_answers_on_the_internal_network(host: Container) -> None:
    _, listening = _exec(host, "ss", "-Hltn", "sport = :22")
    assert "LISTEN" in listening
    host.reload()
    address = next(iter(host.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    with socket.create_connection((address, 22), timeout=10) as conn:
        conn.settimeout(10)
        assert conn.recv(64).startswith(b"SSH-2.0-OpenSSH")


def test_root_login_is_by_key_only_with_an_empty_key_slot(host: Container) -> None:
    code, out = _exec(host, "sshd", "-T")
    assert code == 0, out
    settings = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    assert settings["permitrootlogin"] == "without-password"
    assert settings["passwordauthentication"] == "no"
    code, out = _exec(host, "stat", "-c", "%a %s", "/root/.ssh", "/root/.ssh/authorized_keys")
    assert out.split() == ["700", "4096", "600", "0"]


def test_python3_makes_a_virtualenv_with_pip(host: Container) -> None:
    code, out = _exec(host, "python3", "-m", "venv", "/tmp/venv")
    assert code == 0, out
    code, out = _exec(host, "/tmp/venv/bin/python", "-m", "pip", "--version")
    assert code == 0, out
    code, out = _exec(host, "python3", "-c", "import apt, sys; print(sys.version_info[:2])")
    assert (code, out.strip()) == (0, "(3, 11)")


def test_machine_id_and_ssh_host_keys_are_made_at_boot(host: Container) -> None:
    """The image ships neither, so every container from it gets its own."""
    _, machine_id = _exec(host, "cat", "/etc/machine-id")
    assert len(machine_id.strip()) == 32
    code, out = _exec(host, "test", "-s", "/etc/ssh/ssh_host_ed25519_key")
    assert code == 0, out
