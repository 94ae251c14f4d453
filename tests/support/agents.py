"""agent-py processes for tests: started against a master, ready once subscribed, always cleaned up.

An agent leaves its tasks running when it dies (that is the point of recovery), so ``cleanup`` also kills
the process tasks recorded in its work dir and removes the Docker containers carrying its owner label.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from agent_py.containerizer import ContainerRecord
from agent_py.containerizer.process import is_same_process
from agent_py.daemon import docker_owner
from tests.support.masters import MasterProc
from tests.support.servers import REPO_ROOT

READY = "subscribed to master"
_LIVE: set[AgentProc] = set()


class AgentProc:
    def __init__(
        self, workdir: Path, master: MasterProc, *, resources: str = "cpus:2;mem:1024;ports:[31000-31100]"
    ) -> None:
        self.workdir = Path(workdir)
        self.master = master
        self.resources = resources
        self.log_path = self.workdir / "agent.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def owner(self) -> str:
        """The Docker owner label of this agent's containers."""
        return docker_owner(self.workdir)

    def start(self, timeout: float = 20.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        seen = self._log_text().count(READY)
        self._log = self.log_path.open("ab")
        argv = [
            sys.executable, "-m", "agent_py", "--master", f"{self.master.ip}:{self.master.port}",
            "--work_dir", str(self.workdir), "--resources", self.resources, "--hostname", "127.0.0.1",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        _LIVE.add(self)
        deadline = time.monotonic() + timeout
        while self._log_text().count(READY) <= seen:
            if self._proc.poll() is not None:
                raise RuntimeError(f"agent-py exited with {self._proc.returncode}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"agent-py not subscribed after {timeout}s\n{self.log_tail()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the agent alone (its tasks live in their own sessions and keep running)."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def cleanup(self) -> None:
        """Kill the agent, every process task it started and every container it owns."""
        self.kill()
        _LIVE.discard(self)
        for record_file in self.workdir.glob("meta/containers/*/record.json"):
            with contextlib.suppress(ValueError, OSError):
                record = ContainerRecord.from_json(record_file.read_text())
                if record.pid and is_same_process(record.pid, record.start_time, record.boot_id):
                    os.killpg(record.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            import docker

            from tests.support.docker import remove_owned

            client = docker.from_env(version="auto", timeout=30)
            try:
                remove_owned(client, self.owner)
            finally:
                client.close()

    def _log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self._log_text().splitlines()[-lines:])


@atexit.register
def _cleanup_leftovers() -> None:
    for a in list(_LIVE):
        a.cleanup()
