"""Drive Apache's zkCli (org.apache.zookeeper.ZooKeeperMain 3.8.0) non-interactively.

How 3.8.0 zkCli reads commands: with a command on its own command line it runs that one command and
exits (exit code 0 on success, 1 on a failed command, 127 for an unknown one).  Without one it reads
commands from stdin; when JLine is not on the classpath (Debian ships none) it uses a plain line reader,
so piping a script into stdin runs the commands one after another in the *same* session (so ephemeral
nodes, ``addauth`` and watches carry over) and exits at EOF.  Each command is synchronous; errors go to
stderr, results to stdout.  Watch notifications are printed asynchronously by the event thread as
``\\nWATCHER::`` and ``\\nWatchedEvent state:S type:T path:P``.

To tell which output belongs to which command, a ``printwatches`` (purely client-side, it prints
``printwatches is on``) is sent after every command and used as a separator.  ``-waitforconnection``
makes the client connect before reading the script, and a final ``quit`` closes the session cleanly.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.servers import APACHE_JAR, java_executable

CLIENT_MAIN = "org.apache.zookeeper.ZooKeeperMain"
NOP_BINDING = Path("/usr/share/java/slf4j-nop.jar")  # silences the client's SLF4J logging entirely
CLIENT_JVM_FLAGS = (
    "-Xshare:auto",
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Djava.net.preferIPv4Stack=true",
    "-Dzookeeper.sasl.client=false",
)
SEPARATOR_CMD = "printwatches"
_SEPARATOR = re.compile(r"^printwatches is (?:on|off)$")
_EVENT = re.compile(r"^WatchedEvent state:(\S+) type:(\S+) path:(\S+)")
_PROMPT = re.compile(r"^\[zk: [^\]]*\] *\d* *")  # only printed if a JLine build echoes the prompt
_NOISE = (
    re.compile(r"^Connecting to \S+$"),
    re.compile(r"^Welcome to ZooKeeper!$"),
    re.compile(r"^JLine support is (?:disabled|enabled)$"),
    re.compile(r"^SLF4J: "),
    re.compile(r"^log4j:(?:WARN|ERROR) "),
    re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[,.]\d+ "),  # a log line, if a logging binding appears
)


class ZkCliError(AssertionError):
    """zkCli did not run the whole script (timed out or died); carries its raw output."""


@dataclass(frozen=True)
class WatchEvent:
    state: str
    type: str
    path: str


@dataclass
class CliResult:
    """What one zkCli process printed, split per command with client noise removed."""

    commands: list[str]
    returncode: int
    raw: str
    outputs: list[str] = field(default_factory=list)  # aligned with commands (scripts only)
    events: list[WatchEvent] = field(default_factory=list)  # watch notifications, connection ones included
    text: str = ""  # all command output, noise removed

    def __getitem__(self, i: int) -> str:
        return self.outputs[i]

    def output_of(self, command: str) -> str:
        """Output of the first command equal to ``command`` (handy for unique commands)."""
        return self.outputs[self.commands.index(command)]

    def outputs_of(self, command: str) -> list[str]:
        """Outputs of every run of ``command``, in order (for commands repeated in one script)."""
        return [o for c, o in zip(self.commands, self.outputs, strict=True) if c == command]

    def node_events(self) -> list[tuple[str, str]]:
        """(type, path) of every znode notification, in arrival order (connection events dropped)."""
        return [(e.type, e.path) for e in self.events if e.type != "None"]


def zkcli_available() -> bool:
    return java_executable() is not None and APACHE_JAR.is_file()


def _argv(hosts: str, session_timeout_ms: int) -> list[str]:
    java = java_executable()
    if java is None or not APACHE_JAR.is_file():
        raise ZkCliError("zkCli needs java and Debian's zookeeper package")
    classpath = ":".join(str(p) for p in (APACHE_JAR, NOP_BINDING) if p.is_file())
    return [
        java,
        *CLIENT_JVM_FLAGS,
        "-cp",
        classpath,
        CLIENT_MAIN,
        "-server",
        hosts,
        "-timeout",
        str(session_timeout_ms),
        "-waitforconnection",
    ]


def _run(argv: list[str], stdin: str | None, timeout: float) -> tuple[int, str]:
    """Run zkCli with stderr merged into stdout (keeps error lines in order); kill its group on timeout."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(input=stdin.encode() if stdin is not None else None, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
        raise ZkCliError(
            f"zkCli did not finish within {timeout}s; output so far:\n{out.decode(errors='replace')}"
        ) from None
    except BaseException:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        raise
    return proc.returncode, out.decode("utf-8", errors="replace")


def _clean(raw: str) -> tuple[list[str], list[list[str]], list[WatchEvent]]:
    """Split raw output into (preamble lines, per-separator blocks, watch events), dropping noise."""
    blocks: list[list[str]] = [[]]
    events: list[WatchEvent] = []
    for raw_line in raw.splitlines():
        line = _PROMPT.sub("", raw_line.rstrip("\r"))
        current = blocks[-1]
        if _SEPARATOR.match(line):
            blocks.append([])
            continue
        m = _EVENT.match(line)
        if m or line == "WATCHER::":
            if current and current[-1] == "":  # the event thread prints "\n" + message
                current.pop()
            if m:
                events.append(WatchEvent(*m.groups()))
            continue
        if any(p.match(line) for p in _NOISE):
            continue
        current.append(line)
    return blocks[0], blocks[1:], events


def run_script(
    hosts: str, commands: Sequence[str], *, timeout: float = 60.0, session_timeout_ms: int = 30000
) -> CliResult:
    """Run ``commands`` in one zkCli session against ``hosts`` and return each command's output.

    Raises ZkCliError if zkCli stops before every command has run (timeout, crash, lost connection).
    """
    commands = list(commands)
    for c in commands:
        if "\n" in c:
            raise ValueError(f"one command per entry, got {c!r}")
    # A separator before the first command too, so connection chatter never lands in its output.
    script = f"{SEPARATOR_CMD}\n" + "".join(f"{c}\n{SEPARATOR_CMD}\n" for c in commands) + "quit\n"
    code, raw = _run(_argv(hosts, session_timeout_ms), script, timeout)
    preamble, blocks, events = _clean(raw)
    ran = len(blocks) - 1  # a command has run once the separator after it was printed
    if ran < len(commands):
        raise ZkCliError(
            f"zkCli ran only {max(ran, 0)} of {len(commands)} commands (exit {code}); raw output:\n{raw}"
        )
    outputs = ["\n".join(b) for b in blocks[: len(commands)]]
    text = "\n".join(line for part in (preamble, *blocks) for line in part)
    return CliResult(commands=commands, returncode=code, raw=raw, outputs=outputs, events=events, text=text)


def run_command(
    hosts: str, command: str | Sequence[str], *, timeout: float = 30.0, session_timeout_ms: int = 30000
) -> CliResult:
    """Run one command given on zkCli's own command line (its own session); returncode is meaningful."""
    args = shlex.split(command) if isinstance(command, str) else list(command)
    code, raw = _run([*_argv(hosts, session_timeout_ms), *args], None, timeout)
    preamble, _, events = _clean(raw)
    text = "\n".join(preamble)
    return CliResult(
        commands=[shlex.join(args)], returncode=code, raw=raw, outputs=[text], events=events, text=text
    )
