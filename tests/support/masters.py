"""master-py processes for tests: started on loopback, ready when /health answers, always killed."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

from tests.support.servers import REPO_ROOT, free_port

_LIVE: set[MasterProc] = set()


class MasterProc:
    def __init__(
        self, workdir: Path, *, zk: str | None = None, ip: str = "127.0.0.1", flags: tuple[str, ...] = ()
    ) -> None:
        self.workdir = Path(workdir)
        self.ip = ip
        self.flags = flags  # extra master-py flags, e.g. ("--zk_session_timeout", "1secs")
        self.port = free_port()
        self.zk = zk
        self.log_path = self.workdir / f"master-{self.port}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    name = "master-py"

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "master_py", "--ip", self.ip, "--port", str(self.port)]
        if self.zk:
            argv += ["--zk", self.zk]
        return argv + list(self.flags)

    def ready(self) -> bool:
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
            return r.status == 200
        return False

    def start(self, timeout: float = 20.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        argv = self.argv()
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        _LIVE.add(self)
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self._proc.returncode}\n{self.log_tail()}")
            if self.ready():
                return
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.name} not ready after {timeout}s\n{self.log_tail()}")
            time.sleep(0.05)

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=10)
        self._done()

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._done()

    def _done(self) -> None:
        _LIVE.discard(self)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@atexit.register
def _kill_leftovers() -> None:
    for m in list(_LIVE):
        m.kill()
