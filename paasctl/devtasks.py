"""What a dev cluster's agent leaves behind: its process tasks and its Docker containers.

An agent that stops leaves its tasks running (a restarted agent recovers them), so ``dev down`` and a
fresh ``dev up`` remove them here: the process tasks recorded in the agent's work dir that still run,
and the containers carrying the agent's owner label.  agent_py's own pieces (its record format, its
process identity check, its label and owner) say what is the agent's, so the two never disagree.
agent_py and the Docker SDK load only when used: every paasctl command imports this module.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent_py.containerizer import ContainerRecord

DOCKER_TIMEOUT = 30  # seconds per Engine API call


def live_process_tasks(agent_dir: Path) -> list[ContainerRecord]:
    """The process tasks the agent recorded that still run (same pid, start time and boot)."""
    from agent_py.containerizer import ContainerRecord
    from agent_py.containerizer.process import is_same_process

    found = []
    for record_file in agent_dir.glob("meta/containers/*/record.json"):
        with contextlib.suppress(ValueError, OSError, TypeError):
            record = ContainerRecord.from_json(record_file.read_text())
            if record.pid and is_same_process(record.pid, record.start_time, record.boot_id):
                found.append(record)
    return found


@contextlib.contextmanager
def docker_client(timeout: float = DOCKER_TIMEOUT) -> Iterator[Any]:
    """A client of the local Docker Engine, closed on the way out."""
    import docker

    client = docker.from_env(version="auto", timeout=timeout)
    try:
        yield client
    finally:
        client.close()


def _owned(client: Any, agent_dir: Path) -> list[Any]:
    from agent_py.containerizer.docker import LABEL_OWNER
    from agent_py.daemon import docker_owner

    label = f"{LABEL_OWNER}={docker_owner(agent_dir)}"
    return list(client.containers.list(all=True, filters={"label": label}))


def owned_containers(agent_dir: Path) -> list[str]:
    """Names of the containers (running or not) that belong to the agent with this work dir."""
    with docker_client() as client:
        return [c.name for c in _owned(client, agent_dir)]


def remove_tasks(agent_dir: Path) -> dict[str, Any]:
    """Kill the process tasks an agent recorded and remove its Docker containers (by owner label)."""
    killed = 0
    for record in live_process_tasks(agent_dir):
        assert record.pid is not None
        with contextlib.suppress(OSError):
            os.killpg(record.pid, signal.SIGKILL)
            killed += 1
    report: dict[str, Any] = {"process_tasks_killed": killed, "containers_removed": []}
    try:
        from docker.errors import NotFound

        with docker_client() as client:
            for container in _owned(client, agent_dir):
                with contextlib.suppress(NotFound):
                    container.remove(force=True)
                report["containers_removed"].append(container.name)
    except Exception as e:  # no engine: it cannot hold containers of ours either
        report["docker"] = f"not checked ({type(e).__name__})"
    return report


def docker_problem() -> str | None:
    """None when the local Docker Engine answers, else why not."""
    try:
        with docker_client(timeout=5) as client:
            client.ping()
    except Exception as e:
        return f"Docker Engine not reachable ({str(e).splitlines()[0][:160] if str(e) else type(e).__name__})"
    return None
