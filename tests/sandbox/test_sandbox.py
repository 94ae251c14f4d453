"""The sandbox (`make demo`): five Debian hosts in Docker converged by site.yml over SSH, then a rolling
upgrade and a rollback with the sample app serving throughout.

One module-scoped sandbox, brought up from empty hosts by ``scripts/sandbox.sh up`` (what ``make demo``
runs) and always removed by ``scripts/sandbox.sh down``, also when a test fails (a sandbox left running by
``make demo`` is replaced). The wall-clock of the first ``up``, the idempotent re-run, the upgrade and the
rollback are printed at the end; nothing asserts on them.

"Zero failed requests" is a client's view of the load balancers: requests go round-robin to HAProxy on the
lb hosts and a connection that no HAProxy accepts (the one restarting) is retried on the next, as a client
behind DNS round robin or a VIP would; any HTTP error, wrong page or a request no HAProxy could answer is a
failure. Needs Docker and root (or sudo) like scripts/docker-setup.sh; ~10 min on 2 cores.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import re
import shutil
import subprocess
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.support.docker import require_engine

pytestmark = [pytest.mark.docker, pytest.mark.timeout(2400)]

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = ["bash", str(ROOT / "scripts" / "sandbox.sh")]
PLAYBOOK = [str(ROOT / ".venv" / "bin" / "ansible-playbook")]
APP = json.loads((ROOT / "examples" / "sandbox-web.json").read_text())
SERVICE_PORT = APP["container"]["portMappings"][0]["servicePort"]
PAGE = b"hello from the baremetal-paas sandbox"
INVENTORY = yaml.safe_load((ROOT / "inventories" / "sandbox" / "hosts.yml").read_text())["all"]["children"]
# The control hosts run ZooKeeper, a master, Marathon and HAProxy (group lb); the agents run the tasks.
CONTROL = {name: host["ansible_host"] for name, host in INVENTORY["control"]["hosts"].items()}
AGENTS = list(INVENTORY["agents"]["hosts"])
HOSTS = [*CONTROL, *AGENTS]
CONTROL_UNITS = ("zookeeper", "mesos-master", "marathon", "marathon-lb")
UNITS = {**dict.fromkeys(CONTROL, CONTROL_UNITS), **dict.fromkeys(AGENTS, ("mesos-agent",))}
REPORT: dict[str, str] = {}
TIMINGS: dict[str, float] = {}


def run(cmd: list[str], what: str, timeout: float = 1500) -> str:
    """Run a step of the sandbox from the repository root; its output (the failure shows its end)."""
    started = time.monotonic()
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}  # also in a world-writable checkout
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    TIMINGS[what] = time.monotonic() - started
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{what} failed ({proc.returncode}):\n{out[-6000:]}"
    return out


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters per host."""
    rows = re.findall(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", output, re.MULTILINE)
    return {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)} for host, counts in rows}


def on_host(host: str, script: str) -> str:
    """A shell snippet run as root inside the host's container (what an operator would do over ssh)."""
    cmd = ["docker", "exec", f"sandbox-{host}", "sh", "-c", script]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    return proc.stdout.strip()


def current_release(host: str) -> str:
    return on_host(host, "readlink /opt/baremetal-paas/current").removeprefix("releases/")


def running_releases(host: str) -> dict[str, str]:
    """The release each of the host's units runs: argv[0] of its main process is the release's python."""
    out = {}
    for unit in UNITS[host]:
        pid = on_host(host, f"systemctl show -p MainPID --value {unit}")
        argv0 = on_host(host, f"tr '\\0' '\\n' < /proc/{pid}/cmdline | head -n1")
        out[unit] = argv0.split("/releases/", 1)[-1].split("/", 1)[0]
    return out


def marathon_tasks() -> dict[str, bool]:
    """The sample app's task ids and whether Marathon has them healthy (any instance answers)."""
    url = f"http://{next(iter(CONTROL.values()))}:8080/v2/apps{APP['id']}/tasks"
    with urllib.request.urlopen(url, timeout=10) as r:
        tasks = json.load(r)["tasks"]
    return {
        t["id"]: bool(t.get("healthCheckResults")) and all(h["alive"] for h in t["healthCheckResults"])
        for t in tasks
    }


def wait_for_tasks(expected: dict[str, bool], timeout: float = 120) -> dict[str, bool]:
    """Marathon's view once it is ``expected`` (a new leader probes the tasks first), else the last one."""
    deadline = time.monotonic() + timeout
    seen: dict[str, bool] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, KeyError):
            seen = marathon_tasks()
            if seen == expected:
                break
        time.sleep(1)
    return seen


def get_page(address: str) -> bytes:
    with urllib.request.urlopen(f"http://{address}:{SERVICE_PORT}/", timeout=5) as r:
        return r.read() if r.status == 200 else b""


def wait_for_page(address: str, timeout: float = 60) -> bytes:
    """The app's page through this HAProxy once it serves it (its bridge may follow Marathon a moment
    later than the one ``up`` waited for), else b""."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):
            page = get_page(address)
            if PAGE in page:
                return page
        time.sleep(1)
    return b""


@dataclass
class Client:
    """Requests the app through the load balancers until stopped (bounded by ``limit`` seconds)."""

    limit: float = 900.0
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Client:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        deadline = time.monotonic() + self.limit
        lbs = list(CONTROL.values())
        for i in itertools.count():
            if self._stop.is_set() or time.monotonic() > deadline:
                break
            self.request(lbs[i % len(lbs) :] + lbs[: i % len(lbs)])
            time.sleep(0.05)

    def request(self, order: list[str]) -> None:
        refused = []
        for address in order:
            try:
                page = get_page(address)
            except urllib.error.HTTPError as e:
                self.fail(f"{address}: HTTP {e.code}")
                return
            except (OSError, http.client.HTTPException) as e:  # refused or cut off here: the next HAProxy
                refused.append(f"{address}: {e!r}")
                continue
            except Exception as e:
                self.fail(f"{address}: {e!r}")
                return
            if PAGE not in page:
                self.fail(f"{address}: unexpected page {page[:80]!r}")
                return
            self.counts["served after a retry" if refused else "served"] += 1
            self.counts["retried"] += len(refused)
            return
        self.fail("no HAProxy answered: " + "; ".join(refused))

    def fail(self, what: str) -> None:
        self.counts["failed"] += 1
        self.failures.append(f"{time.strftime('%H:%M:%S')} {what}")


def next_release(tmp: Path) -> tuple[Path, str]:
    """A copy of the project's sources with the patch version bumped: the release the upgrade installs."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    version = meta["project"]["version"]
    major_minor, patch = version.rsplit(".", 1)
    bumped = f"{major_minor}.{int(patch) + 1}"
    tree = tmp / "next"
    tree.mkdir()
    text = (ROOT / "pyproject.toml").read_text().replace(f'version = "{version}"', f'version = "{bumped}"', 1)
    (tree / "pyproject.toml").write_text(text)
    for pattern in meta["tool"]["setuptools"]["packages"]["find"]["include"]:
        top = pattern.split(".")[0].rstrip("*")
        if not (tree / top).exists():
            shutil.copytree(ROOT / top, tree / top, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return tree, bumped


def _report(config: pytest.Config) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"  {what:<28} {seconds:7.1f} s" for what, seconds in TIMINGS.items()]
    lines += [f"  {what:<28} {text}" for what, text in REPORT.items()]
    text = "\nsandbox wall-clock:\n" + "\n".join(lines)
    if reporter is not None:
        reporter.write_line(text)
    else:
        print(text)


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest) -> Iterator[str]:
    """The sandbox up from empty hosts with the app serving; the output of that first ``up``."""
    require_engine()  # fails on CI, skips elsewhere
    try:
        run([*SANDBOX, "down"], "down before", timeout=300)
        yield run([*SANDBOX, "up"], "first up (empty hosts)")
    finally:
        with contextlib.suppress(Exception):
            run([*SANDBOX, "down"], "down", timeout=300)
        TIMINGS.pop("down before", None)
        _report(request.config)


def test_app_answers_through_haproxy_on_every_lb_host(sandbox: str) -> None:
    assert "The sandbox is up" in sandbox
    for address in CONTROL.values():
        assert PAGE in wait_for_page(address)
    assert set(wait_for_tasks(dict.fromkeys(marathon_tasks(), True)).values()) == {True}


def test_second_up_changes_nothing(sandbox: str) -> None:
    counters = recap(run([*SANDBOX, "up"], "idempotent re-run"))
    assert sorted(counters) == sorted(HOSTS)
    assert {host: c["changed"] for host, c in counters.items()} == dict.fromkeys(HOSTS, 0)
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in counters.values())


def test_upgrade_then_rollback_keep_the_app_serving(sandbox: str, tmp_path: Path) -> None:
    first = current_release(HOSTS[0])
    assert {h: current_release(h) for h in HOSTS} == dict.fromkeys(HOSTS, first)
    tasks = marathon_tasks()
    assert len(tasks) == APP["instances"] and all(tasks.values()), tasks
    tree, bumped = next_release(tmp_path)

    with Client() as client:
        run([*PLAYBOOK, "playbooks/upgrade.yml", "-e", f"paas_release_project_dir={tree}"], "upgrade")
    assert client.counts["failed"] == 0, client.failures[:20]
    assert client.counts["served"] > 0, client.counts
    new = current_release(HOSTS[0])
    assert new != first and new.startswith(bumped + "-")
    for host in HOSTS:
        assert current_release(host) == new
        assert running_releases(host) == dict.fromkeys(UNITS[host], new)
        fact = json.loads(on_host(host, "cat /etc/ansible/facts.d/baremetal_paas.fact"))
        assert fact["previous"]["release"] == first
    # The agents recovered their tasks: the same tasks, healthy.
    assert wait_for_tasks(tasks) == tasks
    REPORT["upgrade requests"] = json.dumps(dict(client.counts))

    with Client() as client:
        run([*PLAYBOOK, "playbooks/rollback.yml"], "rollback")
    assert client.counts["failed"] == 0, client.failures[:20]
    assert client.counts["served"] > 0, client.counts
    for host in HOSTS:
        assert current_release(host) == first
        assert running_releases(host) == dict.fromkeys(UNITS[host], first)
    assert wait_for_tasks(tasks) == tasks
    REPORT["rollback requests"] = json.dumps(dict(client.counts))
