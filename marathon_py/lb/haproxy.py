"""HAProxy as marathon-lb drives it: check a new config, swap it in atomically, reload without dropping a
connection (reference §9.2). Edge: files, processes, signals, the master CLI.

How a reload keeps every connection (Debian bookworm's HAProxy 2.6, ``management.txt`` ``-W``/``-x``):
HAProxy runs in master-worker mode (``-W -db``, the master in the foreground as our child, its CLI on a
unix socket with ``-S``). ``SIGUSR2`` makes the master re-execute itself with ``-sf <old workers> -x
sockpair@<fd>``: the new worker takes the *same* listening sockets from the old one over the master's
socketpair instead of binding new ones, and the old worker finishes its connections and leaves. Connections
waiting in the accept queue therefore belong to a socket that never closes — with plain ``-sf`` the new
process binds fresh ``SO_REUSEPORT`` sockets and whatever sat in the old socket's queue is reset. This
needs no ``stats socket ... expose-fd listeners`` (the master passes the sockets itself since 2.x);
marathon-lb 1.15 runs the same ``-W -x`` arrangement under runit. Debian's own ``haproxy.service`` also runs
``-Ws`` and reloads with ``kill -USR2``, so with ``reload_command="systemctl reload haproxy"`` a systemd
HAProxy gets the same seamless reload.

The master CLI's ``show proc`` counts reloads and failed reloads: a reload is confirmed when the count
moves, and failed when the failure count moves too (the old workers then keep serving the old config).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import re
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from subprocess import DEVNULL, PIPE, STDOUT

log = logging.getLogger(__name__)

UNIX_PATH_MAX = 107
_MASTER = re.compile(r"^(\d+)\s+master\s+(\d+)(?:\s+\[failed:\s*(\d+)\])?", re.M)
_WORKER = re.compile(r"^(\d+)\s+worker\s+(\d+)", re.M)


class HAProxyError(RuntimeError):
    """HAProxy did not start, or its master stopped answering."""


class Outcome(enum.Enum):
    UNCHANGED = "unchanged"  # the running HAProxy already serves this text
    INVALID = "invalid"  # haproxy -c rejected it; nothing changed
    WRITTEN = "written"  # installed; nobody to reload (--once without --reload-command)
    STARTED = "started"  # installed and the HAProxy master started
    RELOADED = "reloaded"  # installed and the running HAProxy reloaded
    FAILED = "failed"  # installed but the reload failed; the old workers keep serving


@dataclass(frozen=True)
class Applied:
    outcome: Outcome
    detail: str = ""


@dataclass(frozen=True)
class ProcState:
    """The master CLI's ``show proc``: reloads so far, failed ones, and the current workers (pid, reloads)."""

    master: int
    reloads: int
    failed: int
    workers: tuple[tuple[int, int], ...]

    @property
    def newest_worker(self) -> int | None:
        """The worker started by the last successful (re)load: the one that has lived through no reload."""
        return next((pid for pid, reloads in self.workers if reloads == 0), None)


def parse_show_proc(text: str) -> ProcState:
    """``show proc`` of HAProxy 2.6's master CLI (the ``[failed: n]`` column exists since 2.5)."""
    m = _MASTER.search(text)
    if m is None:
        raise HAProxyError(f"unexpected 'show proc' answer: {text[:200]!r}")
    workers = tuple((int(w.group(1)), int(w.group(2))) for w in _WORKER.finditer(text))
    return ProcState(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0), workers)


async def check_config(binary: str, path: Path, timeout: float = 30.0) -> tuple[bool, str]:
    """``haproxy -c -f path``: (valid, HAProxy's own words)."""
    return await _run([binary, "-c", "-f", str(path)], timeout)


class HAProxy:
    """The config file at ``config_path`` and the HAProxy serving it.

    ``manage=True``: we run the master ourselves (``-W -db -p pid_file -S master_socket``) and reload it with
    SIGUSR2. Otherwise ``reload_command`` (if any) is run after installing a new config.
    """

    def __init__(
        self,
        config_path: Path,
        *,
        binary: str = "haproxy",
        manage: bool = True,
        pid_file: Path | None = None,
        master_socket: Path | None = None,
        reload_command: Sequence[str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.config_path = config_path.absolute()  # HAProxy wants an absolute -S path; -f and -p alike
        self.binary = binary
        self.manage = manage
        self.pid_file = (pid_file or config_path.with_name(config_path.name + ".pid")).absolute()
        self.master_socket = (master_socket or config_path.with_name(config_path.name + ".sock")).absolute()
        self.reload_command = list(reload_command) if reload_command else None
        self.timeout = timeout
        self.loaded: str | None = None  # the text the running HAProxy serves, when we know it
        if not manage and self.config_path.is_file():
            self.loaded = self.config_path.read_text()  # an HAProxy run by others serves what is there
        self._proc: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.on_exit: Callable[[int], None] | None = None  # told when a master we did not stop exits
        if manage and len(str(self.master_socket)) > UNIX_PATH_MAX:
            raise ValueError(f"master socket path too long for a unix socket: {self.master_socket}")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def master_pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def rejected_path(self) -> Path:
        """Where the last config ``haproxy -c`` refused is kept for the operator (as marathon-lb does)."""
        return self.config_path.with_name(self.config_path.name + ".rejected")

    async def check(self, text: str) -> tuple[bool, str]:
        """Whether HAProxy accepts ``text`` (written next to the live config, so relative paths resolve)."""
        path = self._write_temp(text, "check")
        try:
            return await check_config(self.binary, path)
        finally:
            path.unlink(missing_ok=True)

    async def apply(self, text: str) -> Applied:
        """Check ``text``; if valid, atomically replace the live config and (re)load HAProxy with it."""
        if text == self.loaded and (self.running or not self.manage):
            return Applied(Outcome.UNCHANGED)
        path = self._write_temp(text, "new")
        try:
            ok, output = await check_config(self.binary, path)
            os.replace(path, self.config_path if ok else self.rejected_path)
        finally:
            path.unlink(missing_ok=True)  # only when interrupted: a replaced file is gone already
        if not ok:
            log.error("haproxy -c rejected the new config (kept as %s): %s", self.rejected_path, output)
            return Applied(Outcome.INVALID, output)
        _fsync_dir(self.config_path.parent)
        applied = await self._load()
        if applied.outcome is not Outcome.FAILED:
            self.loaded = text
        return applied

    async def start_from_disk(self) -> bool:
        """Serve the last run's config until Marathon answers, if HAProxy accepts it."""
        if not (self.manage and not self.running and self.config_path.is_file()):
            return False
        text = self.config_path.read_text()
        ok, output = await check_config(self.binary, self.config_path)
        if not ok:
            log.warning("not starting from %s: haproxy -c rejects it: %s", self.config_path, output)
            return False
        await self.start()
        self.loaded = text
        return True

    async def _load(self) -> Applied:
        if self.manage:
            if not self.running:
                await self.start()
                return Applied(Outcome.STARTED)
            ok, detail = await self.reload()
            return Applied(Outcome.RELOADED if ok else Outcome.FAILED, detail)
        if self.reload_command is None:
            return Applied(Outcome.WRITTEN)
        log.info("reloading with %s", " ".join(self.reload_command))
        ok, detail = await _run(self.reload_command, self.timeout)
        if not ok:
            log.error("reload command failed: %s", detail)
        return Applied(Outcome.RELOADED if ok else Outcome.FAILED, detail)

    async def start(self) -> None:
        """Start the master on the live config and wait (bounded) until it reports a worker."""
        if self.running:
            return
        self.master_socket.unlink(missing_ok=True)
        cmd = [self.binary, "-W", "-db", "-f", str(self.config_path), "-p", str(self.pid_file)]
        cmd += ["-S", str(self.master_socket)]
        log.info("starting %s", " ".join(cmd))
        # A session of its own: a terminal's Ctrl-C reaches us, and we stop HAProxy in order.
        self._proc = proc = await asyncio.create_subprocess_exec(*cmd, stdin=DEVNULL, start_new_session=True)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                self._proc = None
                raise HAProxyError(f"haproxy exited with {proc.returncode} while starting")
            state = await self._try_show_proc()
            if state is not None and state.newest_worker is not None:
                self._watcher = asyncio.create_task(self._watch(proc))  # from now on, an exit is news
                return
            await asyncio.sleep(0.05)
        await self.stop()
        raise HAProxyError(f"haproxy did not report a worker within {self.timeout:g}s")

    async def reload(self) -> tuple[bool, str]:
        """SIGUSR2 to the master; (loaded, detail) once ``show proc`` counts the reload (bounded wait)."""
        before = await self.show_proc()
        if self._proc is None:
            raise HAProxyError("haproxy is not running")
        self._proc.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            if not self.running:
                raise HAProxyError(f"haproxy master exited with {self._proc.returncode} during a reload")
            state = await self._try_show_proc()
            if state is None or state.reloads == before.reloads:
                continue  # the master is re-executing itself
            if state.failed > before.failed:
                log.error("haproxy could not load the new config; the old workers keep serving")
                return False, "the master reported a failed reload"
            log.info("haproxy reloaded: worker %s replaces %s", state.newest_worker, before.newest_worker)
            return True, f"worker {state.newest_worker}"
        return False, f"haproxy did not confirm the reload within {self.timeout:g}s"

    async def show_proc(self) -> ProcState:
        """The master CLI's ``show proc`` (half-closing the connection makes the master hang up)."""
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(self.master_socket)), 2.0)
        try:
            writer.write(b"show proc\n")
            writer.write_eof()
            data = await asyncio.wait_for(reader.read(), 2.0)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return parse_show_proc(data.decode(errors="replace"))

    async def _try_show_proc(self) -> ProcState | None:
        try:
            return await self.show_proc()
        except (OSError, TimeoutError, HAProxyError):
            return None

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if proc is self._proc:  # not stopped by us
            log.error("the haproxy master exited with %s", code)
            self.loaded = None
            if self.on_exit is not None:
                self.on_exit(code)

    async def stop(self) -> None:
        """SIGTERM the master (it takes its workers along); SIGKILL the group if that takes too long."""
        proc, self._proc = self._proc, None
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
        self.loaded = None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), self.timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()

    def _write_temp(self, text: str, suffix: str) -> Path:
        """``text`` durably in a hidden file beside the live config (same file system: rename is atomic)."""
        path = self.config_path.with_name(f".{self.config_path.name}.{os.getpid()}.{suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)  # a first start: /etc/haproxy may not exist yet
        mode = self.config_path.stat().st_mode & 0o777 if self.config_path.exists() else 0o644
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        return path


async def _run(cmd: Sequence[str], timeout: float) -> tuple[bool, str]:
    """(exit status 0, stdout and stderr) of a bounded command."""
    try:
        proc = await asyncio.create_subprocess_exec(*cmd, stdin=DEVNULL, stdout=PIPE, stderr=STDOUT)
    except OSError as e:
        return False, f"{cmd[0]}: {e}"
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return False, f"{cmd[0]} did not finish within {timeout:g}s"
    return proc.returncode == 0, out.decode(errors="replace").strip()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
