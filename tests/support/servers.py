"""Start and stop real ZooKeeper servers (zk_py or Apache 3.8.0) for tests and benchmarks.

Both kinds run as separate processes in their own process group, configured by a zoo.cfg written into a
private work directory, listening on loopback only.  Every started server is tracked so that an
interpreter exit (atexit) kills whatever a crashed test left running, and on Linux the child also gets
SIGKILL if the process that started it dies without running atexit (``setpriv --pdeathsig``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Literal, Self

from paasctl.fourlw import send_command

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
KINDS = ("zk_py", "apache")

# Debian's zookeeper 3.8.0 package: the jar's manifest Class-Path pulls in its dependencies; an SLF4J
# binding is not among them, so the server side adds log4j 1.2 and the client side the no-op binding.
APACHE_JAR = Path("/usr/share/java/zookeeper.jar")
APACHE_SERVER_LOGGING_JARS = (
    Path("/usr/share/java/slf4j-log4j12.jar"),
    Path("/usr/share/java/log4j-1.2.jar"),
)
APACHE_SERVER_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
SERVER_JVM_FLAGS = ("-Xshare:auto", "-XX:+UseSerialGC", "-Djava.net.preferIPv4Stack=true")

_LOG4J_PROPERTIES = """\
# Written by tests/support/servers.py: everything to the console, which is redirected to the log file.
log4j.rootLogger=${zookeeper.root.logger}
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.Threshold=INFO
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n
"""

_NOT_SERVING = "not currently serving requests"
StartWait = Literal["serving", "ruok", "none"]
_LIVE: set[ZkServer] = set()
_LIVE_LOCK = threading.Lock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it, so parallel runs rarely clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def java_executable() -> str | None:
    """The java binary to use: $JAVA_HOME/bin/java if set, else java on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def apache_available() -> bool:
    """True when Apache ZooKeeper can be run here (java plus Debian's zookeeper jar)."""
    return java_executable() is not None and APACHE_JAR.is_file()


def require_apache() -> None:
    """Skip the calling test when Apache ZooKeeper is absent (CI fails the whole run instead: conftest)."""
    if not apache_available():
        import pytest

        pytest.skip("Apache ZooKeeper not installed (apt-get install zookeeper)")


def _pdeathsig_prefix() -> list[str]:
    """Wrap the child so it is SIGKILLed if its parent dies before atexit could run.

    The kernel ties the death signal to the *thread* that forked, so only use it from the main thread
    (a worker thread that exits would otherwise take the server down with it).
    """
    setpriv = shutil.which("setpriv")
    if setpriv and sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
        return [setpriv, "--pdeathsig", "KILL", "--"]
    return []


class ZkServerError(RuntimeError):
    """The server did not start (or died); the message carries the tail of its log."""


class ZkServer:
    """One standalone ZooKeeper server process of ``kind`` ("zk_py" or "apache") under ``workdir``."""

    def __init__(
        self,
        kind: str,
        workdir: Path,
        *,
        port: int | None = None,
        extra_cfg: dict[str, str] | None = None,
        myid: int | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown server kind {kind!r}; expected one of {KINDS}")
        self.kind = kind
        self.workdir = Path(workdir).resolve()
        self.host = HOST
        self.port = port if port is not None else free_port()
        self.extra_cfg = dict(extra_cfg or {})
        self.myid = myid
        self.data_dir = self.workdir / "data"
        self.cfg_path = self.workdir / "zoo.cfg"
        self.log_path = self.workdir / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def hosts(self) -> str:
        """Connection string for clients (kazoo ``hosts=``, zkCli ``-server``)."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __repr__(self) -> str:
        return f"ZkServer({self.kind!r}, {self.hosts}, pid={self.pid})"

    # ------------------------------------------------------------------ configuration and launch

    def config(self) -> dict[str, str]:
        """The zoo.cfg contents as written on each start (extra_cfg overrides the defaults)."""
        cfg = {
            "tickTime": "2000",
            "dataDir": str(self.data_dir),
            "clientPort": str(self.port),
            "clientPortAddress": self.host,
            "4lw.commands.whitelist": "*",
            "admin.enableServer": "false",
        }
        cfg.update(self.extra_cfg)
        return cfg

    def _write_files(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.cfg_path.write_text("".join(f"{k}={v}\n" for k, v in self.config().items()))
        if self.myid is not None:
            (self.data_dir / "myid").write_text(f"{self.myid}\n")
        if self.kind == "apache":
            (self.workdir / "log4j.properties").write_text(_LOG4J_PROPERTIES)

    def command(self) -> list[str]:
        """The argv that runs this server (without the parent-death wrapper)."""
        if self.kind == "zk_py":
            return [sys.executable, "-m", "zk_py", str(self.cfg_path)]
        java = java_executable()
        if java is None or not APACHE_JAR.is_file():
            raise ZkServerError(
                "Apache ZooKeeper is not available (needs java and Debian's zookeeper package)"
            )
        classpath = ":".join(str(p) for p in (APACHE_JAR, *APACHE_SERVER_LOGGING_JARS) if p.is_file())
        return [
            java,
            *SERVER_JVM_FLAGS,
            "-cp",
            classpath,
            f"-Dlog4j.configuration={(self.workdir / 'log4j.properties').as_uri()}",
            f"-Dzookeeper.log.dir={self.workdir}",
            "-Dzookeeper.root.logger=INFO,CONSOLE",
            "-Dzookeeper.admin.enableServer=false",
            "-Dzookeeper.jmx.log4j.disable=true",
            APACHE_SERVER_MAIN,
            str(self.cfg_path),
        ]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.kind == "zk_py":
            # `python -m zk_py` must import this checkout even when the package is not installed.
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
            env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def start(self, timeout: float = 30.0, wait: StartWait = "serving") -> None:
        """Write zoo.cfg, launch the server and return once it is ready as far as ``wait`` asks.

        ``"serving"`` (the default) waits until ``ruok`` answers ``imok`` and ``srvr`` says requests are
        served; ``"ruok"`` only until the client port answers, and ``"none"`` returns right after the launch.
        An ensemble member needs the weaker ones: alone it answers ``ruok`` but never serves.
        """
        if self.running():
            raise ZkServerError(f"{self!r} is already running")
        self._close_log()
        self._write_files()
        self._log_file = self.log_path.open("ab")
        self._log_file.write(f"\n===== starting {self.kind} on {self.hosts} =====\n".encode())
        self._log_file.flush()
        self._proc = subprocess.Popen(
            [*_pdeathsig_prefix(), *self.command()],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=self._env(),
            start_new_session=True,
        )
        with _LIVE_LOCK:
            _LIVE.add(self)
        if wait == "none":
            return
        try:
            self._wait_ready(timeout, serving=wait == "serving")
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self, timeout: float, serving: bool) -> None:
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while True:
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None:
                raise ZkServerError(
                    f"{self.kind} server exited with code {code} during start\n{self.log_tail()}"
                )
            try:
                answer = self.four_letter("ruok", timeout=1.0)
                # Apache answers ruok before its request pipeline is up; srvr tells the difference.
                if answer == "imok" and (
                    not serving or _NOT_SERVING not in self.four_letter("srvr", timeout=1.0)
                ):
                    return
                last_error = f"ruok answered {answer!r}" if answer != "imok" else "not serving requests yet"
            except OSError as e:
                last_error = repr(e)
            if time.monotonic() >= deadline:
                raise ZkServerError(
                    f"{self.kind} server on {self.hosts} not ready after {timeout:.0f}s ({last_error})\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)

    # ------------------------------------------------------------------ stopping

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        try:
            os.killpg(self._proc.pid, sig)  # start_new_session: pgid == pid
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the server, wait up to ``timeout``, then SIGKILL. Safe to call any number of times."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                proc.wait(timeout=10.0)
        self._forget()

    def kill(self) -> None:
        """SIGKILL the server right now (a crash, no clean shutdown) and wait for it to be gone."""
        proc = self._proc
        if proc is not None and proc.poll() is None:  # never signal a reaped pid: it may be reused
            self._signal_group(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10.0)
        self._forget()

    def _forget(self) -> None:
        with _LIVE_LOCK:
            _LIVE.discard(self)
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def restart(self, timeout: float = 30.0, wait: StartWait = "serving") -> None:
        """Start again on the same port and dataDir (stopping first if it is still running)."""
        if self.running():
            self.stop()
        self.start(timeout=timeout, wait=wait)

    # ------------------------------------------------------------------ inspection

    def four_letter(self, cmd: str, timeout: float = 5.0) -> str:
        """Send a four-letter word and return everything the server writes back before closing."""
        if len(cmd) != 4:
            raise ValueError(f"four-letter words are 4 characters, got {cmd!r}")
        return send_command(self.host, self.port, cmd, timeout)

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines of the server's log, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        tail = text.splitlines()[-lines:]
        return f"--- last {len(tail)} lines of {self.log_path} ---\n" + "\n".join(tail)

    def __enter__(self) -> Self:
        if not self.running():
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            print(self.log_tail(), file=sys.stderr)
        self.stop()


@atexit.register
def _kill_leftovers() -> None:
    """Interpreter exit: no server started here may outlive it."""
    with _LIVE_LOCK:
        leftovers = list(_LIVE)
    for srv in leftovers:
        srv.kill()
