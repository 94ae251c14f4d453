"""Shared pieces of every paasctl command group: exit codes, errors and command results.

Command groups raise :class:`CliError` for expected failures and return an :class:`Outcome`;
``paasctl.cli`` is the only place that prints, so every group gets the same ``--json`` behaviour
and the same stderr format for free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1  # the service refused or could not do the operation (no node, bad version, ...)
EXIT_USAGE = 2  # bad command line; argparse uses 2 as well
EXIT_CONNECTION = 3  # could not reach the service, or lost it mid-operation
EXIT_UNHEALTHY = 4  # a status/health command found something down or not serving
EXIT_TIMEOUT = 5  # run: --timeout expired before the task ended (it is killed)
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT

EXIT_CODES_HELP = f"""\
exit status:
  {EXIT_OK}    success
  {EXIT_FAILED}    operation failed (no such node, bad version, node exists, not empty, not authorized, ...)
  {EXIT_USAGE}    usage error (bad arguments, invalid path)
  {EXIT_CONNECTION}    connection failure (cannot connect within --timeout, connection or session lost)
  {EXIT_UNHEALTHY}    status: at least one server is down or not serving (zk status), or a part of the
       cluster is not running or not healthy (dev status)
  {EXIT_TIMEOUT}    run: --timeout expired (the task is killed); app/deployments writes: --timeout expired
       (the deployment keeps running)
  {EXIT_INTERRUPTED}  interrupted

errors are one line on stderr ("paasctl: <what>: <why>"); with --json, stdout also gets
{{"ok": false, "error": <kind>, "message": <text>, ...}}.
"""


class CliError(Exception):
    """An expected failure: printed as one line, never as a traceback.

    ``kind`` is a stable machine-readable name (``no_node``, ``bad_version``, ...) for ``--json``.
    """

    def __init__(self, message: str, code: int = EXIT_FAILED, kind: str = "failed", **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.kind = kind
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"ok": False, "error": self.kind, "message": self.message, **self.extra}


class UsageError(CliError):
    """A command line that is well-formed for argparse but still wrong (invalid path, bad combination)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE, "usage")


@dataclass
class Outcome:
    """What a command produced; the CLI renders ``text`` or ``json`` depending on ``--json``.

    ``raw`` (bytes written verbatim, no newline) replaces ``text`` for byte-exact output.
    """

    json: Any = None
    text: str | None = None
    raw: bytes | None = None
    code: int = EXIT_OK
