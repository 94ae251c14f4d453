"""marathon-py processes for tests (loopback, ready when /ping answers, always killed) and a small JSON client
with bounded waits."""

from __future__ import annotations

import base64
import contextlib
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.agents import AgentProc
from tests.support.masters import MasterProc
from tests.support.servers import ZkServer

# Timers shortened so tests converge in seconds (Marathon's defaults are minutes).
FAST = (
    "--reconciliation_initial_delay", "1000",
    "--reconciliation_interval", "30000",
    "--min_revive_offers_interval", "200",
    "--decline_offer_duration", "1000",
    "--zk_session_timeout", "3000",
    "--scale_apps_interval", "5000",
)  # fmt: skip


class MarathonProc(MasterProc):
    """One ``marathon-py`` on 127.0.0.1, state under ``zk`` (a zk:// URL), Mesos at ``master``."""

    name = "marathon-py"

    def __init__(
        self, workdir: Path, *, zk: str, master: str, flags: tuple[str, ...] = (), fast: bool = True
    ) -> None:
        super().__init__(workdir, zk=zk, flags=(*(FAST if fast else ()), *flags))
        self.master = master
        self.log_path = self.workdir / f"marathon-{self.port}.log"
        self.credentials: tuple[str, str] | None = None

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "marathon_py", "--master", self.master, "--zk", str(self.zk),
            "--hostname", self.ip, "--http_address", self.ip, "--http_port", str(self.port),
            *self.flags,
        ]  # fmt: skip

    def ready(self) -> bool:
        """Serving: /ping answers (401 counts: with --http_credentials it asks for them)."""
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as r:
                return r.status in (200, 204)
        except urllib.error.HTTPError as e:
            return e.code == 401
        except OSError:
            return False

    # -- a JSON client ------------------------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: Any = None, *, timeout: float = 10.0
    ) -> tuple[int, dict[str, str], Any]:
        """(status, headers, parsed JSON or text or None); HTTP errors are answers, not exceptions."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        req.add_header("Accept", "application/json")
        if self.credentials is not None:
            token = base64.b64encode(":".join(self.credentials).encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, headers, raw = resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            status, headers, raw = e.code, dict(e.headers), e.read()
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return status, headers, parsed

    def get(self, path: str) -> Any:
        status, _, body = self.request("GET", path)
        if status != 200:
            raise AssertionError(f"GET {path}: {status} {body}")
        return body

    def leading(self) -> bool:
        with contextlib.suppress(OSError, AssertionError):
            return bool(self.get("/v2/info").get("elected"))
        return False

    def wait_for(self, what: str, predicate: Callable[[], Any], timeout: float = 60.0) -> Any:
        """Poll ``predicate`` until truthy (its value is returned) or fail with the log's tail."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
            except (OSError, AssertionError, KeyError, ValueError) as e:
                last = e
            else:
                if last:
                    return last
            time.sleep(0.1)
        raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})\n{self.log_tail()}")

    def wait_leading(self, timeout: float = 30.0) -> None:
        self.wait_for("marathon-py elected", self.leading, timeout)

    def deployments_done(self) -> bool:
        return self.get("/v2/deployments") == []

    def wait_deployed(self, timeout: float = 90.0) -> None:
        self.wait_for("no deployment running", self.deployments_done, timeout)


@dataclass
class Stack:
    """zk_py, one master-py, agents and marathon-py instances, as a test's whole cluster."""

    zk: ZkServer
    master: MasterProc
    agents: list[AgentProc] = field(default_factory=list)
    marathons: list[MarathonProc] = field(default_factory=list)

    @property
    def marathon(self) -> MarathonProc:
        return self.marathons[0]

    def leader(self, timeout: float = 30.0) -> MarathonProc:
        """The marathon-py that says it leads (polled, bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.marathons:
                if m.running() and m.leading():
                    return m
            time.sleep(0.1)
        raise AssertionError("no marathon-py leads\n" + "\n".join(m.log_tail() for m in self.marathons))

    def add_marathon(self, flags: tuple[str, ...] = ()) -> MarathonProc:
        m = MarathonProc(
            self.master.workdir.parent / f"marathon{len(self.marathons)}",
            zk=f"zk://{self.zk.hosts}/marathon",
            master=f"zk://{self.zk.hosts}/mesos",
            flags=flags,
        )
        self.marathons.append(m)
        m.start()
        return m


@contextlib.contextmanager
def marathon_stack(
    workdir: Path,
    *,
    agents: int = 1,
    marathons: int = 1,
    resources: str = "cpus:2;mem:1024;disk:4096;ports:[31000-31200]",
    attributes: Sequence[str] = (),  # per agent, e.g. "rack:r1;zone:a"
    marathon_flags: tuple[str, ...] = (),
) -> Iterator[Stack]:
    """The whole stack on loopback: zk_py, master-py (elected through it), ``agents`` agent-py (the i-th
    with ``attributes[i]`` if given, and hostname/address ``127.0.0.<i+1>``) and ``marathons`` marathon-py;
    the first one leads when this yields.  Everything is killed afterwards, containers included."""
    zk = ZkServer("zk_py", workdir / "zk", extra_cfg={"tickTime": "500"})
    master = MasterProc(workdir / "master")
    stack = Stack(zk, master)
    try:
        zk.start()
        master.zk = f"zk://{zk.hosts}/mesos"
        master.start()
        for i in range(agents):
            agent = AgentProc(
                workdir / f"agent{i}",
                master,
                master_url=master.zk,
                resources=resources,
                ip=f"127.0.0.{i + 1}",
                attributes=attributes[i] if i < len(attributes) else "",
            )
            stack.agents.append(agent)
            agent.start()
        for _ in range(marathons):
            stack.add_marathon(marathon_flags)
        stack.marathon.wait_leading()
        yield stack
    finally:
        for m in stack.marathons:
            m.kill()
        for a in stack.agents:
            a.cleanup()
        master.kill()
        zk.kill()
