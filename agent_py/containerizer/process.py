"""The process containerizer: command tasks as plain processes, each in its own session.

Each task runs under a tiny supervisor (``python -I -S -c _SUPERVISOR``: no site, only ``os``-level code)
started with ``posix_spawn`` as the leader of a new session and process group.  It forks the command into
that group, waits for it and writes its exit status to the containerizer's state dir, then kills and
reaps whatever the command left behind (it is a child subreaper, so orphaned descendants come back to
it, even ones that left the session).  It plays the part of Mesos' command executor: it does not die with
the agent, and it records the exit status even when the task ends while no agent is watching, which a
restarted agent could not learn otherwise (it is no longer the parent).

``kill`` sends SIGTERM to the process group (the supervisor catches it, so the command gets the default
action), then after the grace period SIGKILLs every descendant of the supervisor, which therefore
still records the true status; only if it does not finish is the whole group SIGKILLed.

The agent identifies a task by the supervisor's pid, its start time (in clock ticks since boot, which
unlike an epoch create time does not move with NTP) and the kernel's boot id, so a pid reused after a
reboot or a long downtime is never taken for the task.  Exits are noticed through a pidfd in the event
loop (polling where pidfds are missing).  Resources are measured with psutil over the process tree, not
enforced, as with Mesos' posix isolators; enforcement takes cgroups, i.e. the Docker containerizer.

State dir layout: ``<state_dir>/<container id>/record.json`` (the ContainerRecord) and ``exit_status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from agent_py.containerizer import (
    STDERR,
    STDOUT,
    ContainerizerError,
    ContainerRecord,
    ContainerStatus,
    Kind,
    Recovery,
    TaskSpec,
    Usage,
    describe_exit,
    lookup_container,
    memory_limit_bytes,
)

log = logging.getLogger(__name__)

KILL_TIMEOUT = 10.0  # after SIGKILL: for the supervisor to be gone
POLL_INTERVAL = 0.2  # only where pidfd_open is unavailable
INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "TZ")  # the agent's own environment is not passed on
RECORD, EXIT_STATUS = "record.json", "exit_status"

_SUPERVISOR = r"""
import os, signal, sys, time
cwd, status_path, user, executable, *argv = sys.argv[1:]
os.chdir(cwd)
try:
    import ctypes
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphaned descendants come to us
except Exception:
    pass
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, lambda *_: None)
pid = os.fork()
if pid == 0:
    try:
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(s, signal.SIG_DFL)
        if user:
            import pwd
            pw = pwd.getpwnam(user)
            os.initgroups(user, pw.pw_gid)
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
        os.execvp(executable, argv)
    except BaseException as e:
        os.write(2, ("Failed to run %s: %s\n" % (executable, e)).encode())
    os._exit(127)
_, status = os.waitpid(pid, 0)
with open(status_path + ".tmp", "w") as f:
    f.write(str(os.waitstatus_to_exitcode(status)))
    f.flush()
    os.fsync(f.fileno())
os.replace(status_path + ".tmp", status_path)
me = os.getpid()
def leftovers():
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me:
            try:
                with open("/proc/%s/stat" % entry, "rb") as f:
                    state, ppid, _, session = f.read().rsplit(b")", 1)[1].split()[:4]
            except (OSError, ValueError):
                continue
            if state != b"Z" and me in (int(ppid), int(session)):
                yield int(entry)
for _ in range(50):
    victims = list(leftovers())
    for victim in victims:
        try:
            os.kill(victim, signal.SIGKILL)
        except OSError:
            pass
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
    if not victims:
        break
    time.sleep(0.01)
"""


def _read_boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


BOOT_ID = _read_boot_id()
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_start(pid: int) -> tuple[str, float] | None:
    """(state letter, start time in seconds since boot) from /proc/<pid>/stat, or None if no such pid.
    Unlike an epoch create_time this never moves with the wall clock (NTP), so it compares exactly."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0].decode(), int(fields[19]) / CLOCK_TICKS


def is_same_process(pid: int, start_time: float | None, boot_id: str | None = None) -> bool:
    """True when pid is alive (not a zombie) and is the process recorded at launch: same start time
    since boot, in the same boot."""
    if boot_id is not None and boot_id != BOOT_ID:
        return False
    stat = process_start(pid)
    if stat is None or stat[0] in ("Z", "X"):
        return False
    return start_time is None or abs(stat[1] - start_time) < 1e-6


def _alive(record: ContainerRecord) -> bool:
    return record.pid is not None and is_same_process(record.pid, record.start_time, record.boot_id)


def _reap(pid: int, block: bool) -> int | None:
    """Exit code (waitstatus_to_exitcode) of our child pid; None while it runs (block=False)."""
    try:
        done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status) if done else None


async def _until_gone(pid: int, start_time: float | None, child: bool) -> int | None:
    """Returns once the process has exited, with its exit code when it is our child (reaped here)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        fd = -1
    except OSError:  # no pidfds (old kernel): poll
        while is_same_process(pid, start_time):
            await asyncio.sleep(POLL_INTERVAL)
        fd = -1
    if fd >= 0:
        try:
            # Checked after opening: if it is our process now, the pidfd refers to it.
            if is_same_process(pid, start_time):
                loop = asyncio.get_running_loop()
                exited: asyncio.Future[None] = loop.create_future()

                def readable() -> None:
                    if not exited.done():
                        exited.set_result(None)

                loop.add_reader(fd, readable)
                try:
                    await exited
                finally:
                    loop.remove_reader(fd)
        finally:
            os.close(fd)
    return _reap(pid, block=True) if child else None


@dataclass
class _Proc:
    record: ContainerRecord
    gone: asyncio.Future[int | None]  # done when the supervisor has exited (its exit code if our child)
    sigkilled: bool = field(default=False)


class ProcessContainerizer:
    """Runs command TaskSpecs (no image) as supervised process groups; see the module docstring."""

    kind: Kind = "process"

    def __init__(self, state_dir: Path, *, inherited_env: Iterable[str] = INHERITED_ENV) -> None:
        self.state_dir = state_dir
        self.inherited_env = tuple(inherited_env)
        self._known: dict[str, _Proc] = {}

    async def close(self) -> None:
        """Stop watching (the processes keep running, as they do when the agent dies)."""
        for proc in self._known.values():
            proc.gone.cancel()
        self._known.clear()

    # -- launch -------------------------------------------------------------------------------------

    def _argv(self, spec: TaskSpec) -> tuple[str, list[str]]:
        if not spec.command:
            raise ContainerizerError("A command task needs a command")
        if spec.shell:
            return "/bin/sh", ["/bin/sh", "-c", spec.command]
        return spec.command, list(spec.arguments) or [spec.command]

    def _spawn(self, spec: TaskSpec) -> ContainerRecord:
        executable, argv = self._argv(spec)
        run_dir = self.state_dir / spec.container_id
        try:
            run_dir.mkdir(parents=True)
        except FileExistsError:
            raise ContainerizerError(f"Container {spec.container_id} already exists") from None
        spec.sandbox.mkdir(parents=True, exist_ok=True)
        env = {k: os.environ[k] for k in self.inherited_env if k in os.environ}
        env.update(spec.task_env(str(spec.sandbox)))
        supervisor = [
            sys.executable,
            "-I",
            "-S",
            "-c",
            _SUPERVISOR,
            str(spec.sandbox),
            str(run_dir / EXIT_STATUS),
        ]
        launched_at = time.time()
        try:
            if spec.user:
                shutil.chown(spec.sandbox, spec.user)  # as Mesos does: the task owns its sandbox
            with (spec.sandbox / STDOUT).open("ab") as out, (spec.sandbox / STDERR).open("ab") as err:
                pid = os.posix_spawn(
                    sys.executable,
                    [*supervisor, spec.user or "", executable, *argv],
                    env,
                    file_actions=[
                        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                        (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                        (os.POSIX_SPAWN_DUP2, err.fileno(), 2),
                    ],
                    setsid=True,
                )
            stat = process_start(pid)
        except (OSError, LookupError) as e:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise ContainerizerError(f"Failed to launch {spec.container_id}: {e}") from None
        record = ContainerRecord.launched(
            spec,
            "process",
            pid=pid,
            start_time=stat[1] if stat else None,
            boot_id=BOOT_ID,
            launched_at=launched_at,
        )
        tmp = run_dir / (RECORD + ".tmp")
        tmp.write_text(record.to_json())
        tmp.replace(run_dir / RECORD)
        return record

    async def launch(self, spec: TaskSpec) -> ContainerRecord:
        if spec.image:
            raise ContainerizerError("The process containerizer does not run images")
        if spec.container_id in self._known:
            raise ContainerizerError(f"Container {spec.container_id} already exists")
        record = await asyncio.to_thread(self._spawn, spec)
        assert record.pid is not None
        gone = asyncio.ensure_future(_until_gone(record.pid, record.start_time, child=True))
        self._known[record.container_id] = _Proc(record, gone)
        return record

    def reattach(self, record: ContainerRecord) -> None:
        """Watch a process launched by an earlier agent, if it is still the same process."""
        if record.container_id in self._known:
            return
        assert record.pid is not None
        gone: asyncio.Future[int | None]
        if _alive(record):
            gone = asyncio.ensure_future(_until_gone(record.pid, record.start_time, child=False))
        else:
            gone = asyncio.get_running_loop().create_future()
            gone.set_result(None)
        self._known[record.container_id] = _Proc(record, gone)

    def _get(self, container_id: str) -> _Proc:
        return lookup_container(self._known, container_id)

    # -- observe ------------------------------------------------------------------------------------

    def _exit_status(self, proc: _Proc) -> ContainerStatus:
        path = self.state_dir / proc.record.container_id / EXIT_STATUS
        finished_at: float | None
        try:
            code: int | None = int(path.read_text())
            finished_at = path.stat().st_mtime
        except (OSError, ValueError):
            # No status written: the supervisor itself was killed (by our last resort, or before it ran).
            finished_at = time.time()
            code = proc.gone.result()
            if code is None or code >= 0:
                code = -signal.SIGKILL if proc.sigkilled else None
        sig = -code if code is not None and code < 0 else None
        exit_code = 128 + sig if sig else code
        return ContainerStatus(
            container_id=proc.record.container_id,
            running=False,
            exit_code=exit_code,
            signal=sig,
            message=describe_exit(exit_code, sig),
            started_at=proc.record.launched_at,
            finished_at=finished_at,
        )

    async def status(self, container_id: str) -> ContainerStatus:
        proc = self._get(container_id)
        if not proc.gone.done():
            return ContainerStatus(container_id, running=True, started_at=proc.record.launched_at)
        return await asyncio.to_thread(self._exit_status, proc)

    async def wait(self, container_id: str) -> ContainerStatus:
        await asyncio.shield(self._get(container_id).gone)
        return await self.status(container_id)

    async def usage(self, container_id: str) -> Usage:
        return await asyncio.to_thread(_usage, self._get(container_id))

    # -- stop ---------------------------------------------------------------------------------------

    def _signal_group(self, proc: _Proc, sig: int) -> None:
        assert proc.record.pid is not None
        if not proc.gone.done():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.record.pid, sig)

    async def kill(self, container_id: str, grace_seconds: float) -> ContainerStatus:
        """SIGTERM to the task's process group, SIGKILL to all its processes once the grace period is
        over (and, should the supervisor not finish, to the whole group as a last resort)."""
        proc = self._get(container_id)
        if not proc.gone.done():
            self._signal_group(proc, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(proc.gone), max(grace_seconds, 0.0))
            except TimeoutError:
                proc.sigkilled = True
                if not proc.gone.done():
                    await asyncio.to_thread(_kill_tree, proc.record, False)
                try:
                    await asyncio.wait_for(asyncio.shield(proc.gone), KILL_TIMEOUT)
                except TimeoutError:
                    self._signal_group(proc, signal.SIGKILL)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(proc.gone), KILL_TIMEOUT)
        return await self.status(container_id)

    async def destroy(self, container_id: str) -> None:
        proc = self._known.get(container_id)
        if proc is not None and not proc.gone.done():
            await self.kill(container_id, 0.0)
        self._known.pop(container_id, None)
        await asyncio.to_thread(shutil.rmtree, self.state_dir / container_id, True)

    # -- recover ------------------------------------------------------------------------------------

    def _records(self) -> dict[str, ContainerRecord | None]:
        """Every container in the state dir (None where its record is unreadable)."""
        found: dict[str, ContainerRecord | None] = {}
        if not self.state_dir.is_dir():
            return found
        for run_dir in self.state_dir.iterdir():
            try:
                found[run_dir.name] = ContainerRecord.from_json((run_dir / RECORD).read_text())
            except (OSError, ValueError, TypeError, KeyError):
                found[run_dir.name] = None
        return found

    def _remove_orphan(self, container_id: str, record: ContainerRecord | None) -> None:
        if record is not None:
            log.info("killing orphan container %s (supervisor pid %s)", container_id, record.pid)
            _kill_tree(record, True)
        shutil.rmtree(self.state_dir / container_id, ignore_errors=True)

    async def recover(self, known: Collection[str], kill_orphans: bool = True) -> Recovery:
        records = await asyncio.to_thread(self._records)
        statuses: dict[str, ContainerStatus] = {}
        orphans: list[str] = []
        for container_id, record in records.items():
            if container_id in known and record is not None:
                self.reattach(record)
                statuses[container_id] = await self.status(container_id)
                continue
            orphans.append(container_id)
            if kill_orphans:
                await asyncio.to_thread(self._remove_orphan, container_id, record)
        missing = sorted(set(known) - set(statuses))
        return Recovery(containers=statuses, missing=missing, orphans=sorted(orphans))


def _kill_tree(record: ContainerRecord, with_root: bool) -> None:
    """SIGKILL every descendant of the supervisor (and the supervisor itself if with_root).  Without it
    the supervisor survives to record the task's true exit status, and reaps the rest."""
    if not _alive(record):
        return
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(record.pid)
        for p in [*root.children(recursive=True), *([root] if with_root else [])]:
            with contextlib.suppress(psutil.Error):
                p.kill()


def _usage(proc: _Proc) -> Usage:
    """psutil over the supervisor and its descendants; children_* count the descendants already reaped."""
    user = system = 0.0
    rss = threads = processes = 0
    tree: list[psutil.Process] = []
    if not proc.gone.done() and _alive(proc.record):
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(proc.record.pid)
            tree = [root, *root.children(recursive=True)]
    for p in tree:
        try:
            with p.oneshot():
                times = p.cpu_times()
                user += times.user + times.children_user
                system += times.system + times.children_system
                rss += p.memory_info().rss
                threads += p.num_threads()
                processes += 1
        except psutil.Error:  # exited meanwhile
            continue
    return Usage(
        timestamp=time.time(),
        cpus_user_time_secs=user,
        cpus_system_time_secs=system,
        cpus_limit=proc.record.cpus,
        mem_rss_bytes=rss,
        mem_limit_bytes=memory_limit_bytes(proc.record.mem_mb),
        processes=processes,
        threads=threads,
    )
