"""paasctl as a subprocess for tests: this checkout's code, a clean environment, bounded in time.

``paasctl(...)`` runs one command to its end; ``ok``/``ok_json`` expect success and a silent stderr;
``fails`` expects a given exit status and exactly one ``paasctl: …`` line on stderr (the CLI's error
contract); ``start`` leaves a long command (``paasctl run``) running for the test to watch and stop.
PAASCTL_* variables of the caller are dropped so they can never redirect a test to another cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.servers import REPO_ROOT

CLI_TIMEOUT = 180  # seconds one paasctl process may take before the test gives up on it


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAASCTL_")}
    return env | {"PYTHONPATH": str(REPO_ROOT)}


def _argv(args: tuple[str | Path, ...]) -> list[str]:
    return [sys.executable, "-m", "paasctl", *map(str, args)]


def paasctl(*args: str | Path, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """``python -m paasctl ARGS``: its exit status, stdout and stderr."""
    return subprocess.run(
        _argv(args),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=_env(),
        timeout=timeout,
        check=False,
    )


def start(*args: str | Path) -> subprocess.Popen[str]:
    """``python -m paasctl ARGS`` in the background, stdout and stderr piped; the caller ends it."""
    return subprocess.Popen(
        _argv(args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=_env(),
    )


def ok(*args: str | Path) -> str:
    """Stdout of a command that must succeed without a word on stderr."""
    r = paasctl(*args)
    assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    assert r.stderr == "", r.stderr
    return r.stdout


def ok_json(*args: str | Path) -> Any:
    """``--json`` output of a command that must succeed (``--json`` goes first: after ``run … --`` it
    would be part of the task's command)."""
    return json.loads(ok("--json", *args))


def fails(code: int, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Expect exit ``code`` and exactly one ``paasctl: ...`` line on stderr."""
    r = paasctl(*args)
    assert r.returncode == code, (args, r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("paasctl: ") and r.stderr.count("\n") == 1, r.stderr
    return r
