"""The agent's checkpoint: one JSON file per task under ``<work_dir>/meta``, always written atomically.

A task's file holds what a restarted agent needs to carry on where the dead one stopped: the framework,
the TaskInfo, which container runs it (id, kind and the containerizer's record) and the status updates
the master has not acknowledged yet.  The file is removed once the task is terminal and its last update
was acknowledged, as Mesos garbage-collects a completed executor's meta directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)


def write_atomically(path: Path, text: str) -> None:
    """Write, fsync, rename: a reader (or a restarted agent) sees the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


@dataclass
class TaskCheckpoint:
    framework: dict[str, Any]  # FrameworkInfo (with its id)
    task: dict[str, Any]  # TaskInfo as RUN_TASK delivered it
    container_id: str
    kind: str  # "docker" or "process"
    state: str = "TASK_STAGING"  # the latest state reported (or about to be)
    killed: bool = False  # KILL_TASK arrived: the exit is TASK_KILLED whatever the code
    container: dict[str, Any] | None = None  # the containerizer's ContainerRecord, once launched
    pending: list[dict[str, Any]] = field(default_factory=list)  # unacknowledged TaskStatus, oldest first
    healthy: bool | None = None  # the last health reported (None: not checked yet), so a restart resumes it
    health_failures: int = 0  # consecutive failed checks behind that report

    @property
    def framework_id(self) -> str:
        return str(self.framework["id"]["value"])

    @property
    def task_id(self) -> str:
        return str(self.task["task_id"]["value"])


class CheckpointStore:
    """``<meta>/tasks/<framework id>/<task id>.json`` (ids percent-encoded into safe file names)."""

    def __init__(self, meta_dir: Path) -> None:
        self.meta_dir = meta_dir
        self.tasks_dir = meta_dir / "tasks"

    def _path(self, framework_id: str, task_id: str) -> Path:
        return self.tasks_dir / quote(framework_id, safe="") / (quote(task_id, safe="") + ".json")

    def save(self, cp: TaskCheckpoint) -> None:
        write_atomically(self._path(cp.framework_id, cp.task_id), json.dumps(asdict(cp), sort_keys=True))

    def remove(self, cp: TaskCheckpoint) -> None:
        path = self._path(cp.framework_id, cp.task_id)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # other tasks of the framework remain
            path.parent.rmdir()

    def load_all(self) -> list[TaskCheckpoint]:
        out: list[TaskCheckpoint] = []
        for path in sorted(self.tasks_dir.glob("*/*.json")):
            try:
                out.append(TaskCheckpoint(**json.loads(path.read_text())))
            except (OSError, ValueError, TypeError) as e:  # a torn file cannot exist; a foreign one can
                log.error("ignoring unreadable checkpoint %s: %s", path, e)
        return out

    def read_agent_id(self) -> str | None:
        try:
            return (self.meta_dir / "agent_id").read_text().strip() or None
        except OSError:
            return None

    def write_agent_id(self, agent_id: str) -> None:
        write_atomically(self.meta_dir / "agent_id", agent_id + "\n")

    def forget_agent_id(self) -> None:
        """After a drain the master forgot this agent: the next start registers as a new one."""
        (self.meta_dir / "agent_id").unlink(missing_ok=True)
