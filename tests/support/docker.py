"""The local Docker Engine for tests: reachable or skipped (failed on CI), and left clean.

``scripts/docker-setup.sh`` installs and starts the engine and builds the task image.  A test that uses
``engine()`` is skipped with that hint when the engine or the image is missing, except on CI (``CI``
set), where the Docker tests are part of the bar and a missing engine fails them, as tests/conftest.py
does for Apache ZooKeeper.  ``owned_containers`` gives each test its own owner label and removes every
container carrying it afterwards, whatever happened in the test.
"""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from collections.abc import Iterator

import docker
import pytest
from docker.errors import DockerException, ImageNotFound, NotFound

from agent_py.containerizer.docker import LABEL_OWNER

TASK_IMAGE = "baremetal-paas/busybox:latest"
SETUP_HINT = "run scripts/docker-setup.sh (as root) to install and start Docker and build the task image"


@functools.cache
def _probe() -> str | None:
    """None when the engine answers and has the task image, else why not (probed once per session)."""
    try:
        client = docker.from_env(version="auto", timeout=10)
    except DockerException as e:
        return f"Docker Engine not reachable ({e})"
    try:
        client.images.get(TASK_IMAGE)
    except ImageNotFound:
        return f"the task image {TASK_IMAGE} is missing"
    except DockerException as e:
        return f"Docker Engine not usable ({e})"
    finally:
        client.close()
    return None


def require_engine() -> None:
    """Skip the calling test when Docker is unusable; on CI fail it instead."""
    problem = _probe()
    if problem is None:
        return
    message = f"{problem}: {SETUP_HINT}"
    if os.environ.get("CI"):
        pytest.fail(f"CI run without a usable Docker Engine: {message}", pytrace=False)
    pytest.skip(message)


def remove_owned(client: docker.DockerClient, owner: str) -> list[str]:
    """Force-remove every container (running or not) labelled with this owner; their names."""
    removed = []
    for container in client.containers.list(all=True, filters={"label": f"{LABEL_OWNER}={owner}"}):
        with contextlib.suppress(NotFound):
            container.remove(force=True)
        removed.append(container.name)
    return removed


@contextlib.contextmanager
def owned_containers() -> Iterator[tuple[docker.DockerClient, str]]:
    """A client and a fresh owner label; everything with that label is removed on the way out."""
    require_engine()
    client = docker.from_env(version="auto", timeout=30)
    owner = f"test-{uuid.uuid4().hex[:12]}"
    try:
        yield client, owner
    finally:
        try:
            remove_owned(client, owner)
        finally:
            client.close()
