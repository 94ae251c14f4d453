"""An unmodified pymesos framework against real master-py (and agent-py) processes, for the interop tests
and bench/launch_bench.py.

pymesos calls the scheduler on its single IO thread and acknowledges each update there, synchronously,
right after ``statusUpdate`` returns; so the callbacks below only record under a lock and never wait.
Every wait is bounded, and the context managers stop what they started even when the body fails.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pymesos import MesosSchedulerDriver, Scheduler

from paas_common.resources import Resources
from tests.support.agents import AgentProc
from tests.support.clients import WAIT
from tests.support.docker import TASK_IMAGE
from tests.support.masters import MasterProc

TaskInfo = dict[str, Any]
# A task built from the offer it is launched on (e.g. to use a host port the offer carries).
TaskMaker = Callable[[Any], TaskInfo]

TERMINAL = frozenset(
    {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED", "TASK_GONE"}
)


def command_task(task_id: str, command: str, resources: str = "cpus:0.1;mem:32") -> TaskInfo:
    return {
        "name": task_id,
        "task_id": {"value": task_id},
        "resources": Resources.parse(resources).to_json(),
        "command": {"value": command},
    }


def docker_task(task_id: str, command: str, resources: str = "cpus:0.1;mem:32", **docker: Any) -> TaskInfo:
    """A Docker task of the task image; ``docker`` adds DockerInfo fields (network, port_mappings)."""
    task = command_task(task_id, command, resources)
    task["container"] = {"type": "DOCKER", "docker": {"image": TASK_IMAGE, **docker}}
    return task


def offered_ports(offer: Any) -> list[int]:
    """Every port in the offer's ``ports`` ranges, in order."""
    ranges = Resources.from_json(offer["resources"]).ranges("ports")
    return [p for lo, hi in ranges for p in range(lo, hi + 1)]


class Framework(Scheduler):  # type: ignore[misc]
    """Launches all its tasks on the first offer (as one batch, like a batch framework with room enough)
    and declines every other offer; records each status update per task, with the time it arrived."""

    def __init__(self, tasks: Iterable[TaskInfo | TaskMaker] = ()) -> None:
        self.cond = threading.Condition()
        self.queue = list(tasks)
        self.driver: MesosSchedulerDriver | None = None  # set by ``driving``
        self.framework_id = ""
        self.launched: list[TaskInfo] = []
        self.updates: dict[str, list[dict[str, Any]]] = {}
        self.marks: dict[str, float] = {}  # registered / offered / accepted → time.monotonic()
        self.arrivals: dict[tuple[str, str], float] = {}  # (task id, state) → first arrival

    def _mark(self, what: str) -> None:
        with self.cond:
            self.marks.setdefault(what, time.monotonic())
            self.cond.notify_all()

    def registered(self, driver: Any, framework_id: Any, master_info: Any) -> None:
        self.framework_id = framework_id["value"]
        self._mark("registered")

    def resourceOffers(self, driver: Any, offers: Any) -> None:
        self._mark("offered")
        for offer in offers:
            with self.cond:
                batch, self.queue = self.queue, []
            if not batch:
                driver.declineOffer(offer.id)
                continue
            tasks = [{**(t(offer) if callable(t) else t), "agent_id": offer.agent_id} for t in batch]
            with self.cond:
                self.launched += tasks
            self._mark("accepted")
            driver.launchTasks(offer.id, tasks)

    def add(self, *tasks: TaskInfo | TaskMaker) -> None:
        """Launch more tasks on the next offer; REVIVE clears the filters our declines installed."""
        assert self.driver is not None, "not driven"
        with self.cond:
            self.queue += tasks
        self.driver.reviveOffers()

    def reconcile(self) -> None:
        """Implicit reconciliation: the master answers with the latest state of every task it knows."""
        assert self.driver is not None, "not driven"
        self.driver.reconcileTasks([])

    def statusUpdate(self, driver: Any, update: Any) -> None:
        now = time.monotonic()
        with self.cond:
            self.updates.setdefault(update.task_id.value, []).append(update.to_dict())
            self.arrivals.setdefault((update.task_id.value, update.state), now)
            self.cond.notify_all()

    def wait_until(self, what: str, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        """Wait (bounded) until ``predicate`` holds; it runs under the lock, so it may read the records."""
        with self.cond:
            assert self.cond.wait_for(predicate, timeout=timeout), f"{what}; updates so far: {self.summary()}"

    def wait_launched(self, timeout: float = WAIT) -> None:
        self.wait_until("no offer was accepted", lambda: "accepted" in self.marks, timeout)

    def wait_for(self, task_id: str, state: str, *, since: int = 0, timeout: float = WAIT) -> dict[str, Any]:
        """The first update of the task in that state (after its first ``since`` updates)."""

        def found() -> dict[str, Any] | None:
            return next((u for u in self.updates.get(task_id, [])[since:] if u["state"] == state), None)

        self.wait_until(f"{task_id}: no {state}", lambda: found() is not None, timeout)
        with self.cond:
            result = found()
        assert result is not None
        return result

    def states(self, task_id: str, *, source: str | None = None) -> list[str]:
        """The task's states in arrival order (only those from ``source``, e.g. SOURCE_EXECUTOR, if given)."""
        with self.cond:
            updates = self.updates.get(task_id, [])
            return [u["state"] for u in updates if source is None or u.get("source") == source]

    def summary(self) -> dict[str, list[str]]:
        """Task id → states so far (for failure messages); callers may or may not hold the lock."""
        with self.cond:
            return {tid: [u["state"] for u in ups] for tid, ups in self.updates.items()}


@contextlib.contextmanager
def driving(
    sched: Framework, master: str, name: str = "pymesos-test", framework_info: dict[str, Any] | None = None
) -> Iterator[MesosSchedulerDriver]:
    """A started pymesos driver for ``sched`` on ``master`` (host:port or zk://…), with ``framework_info``
    fields added to the user and name; on the way out ``stop()`` sends TEARDOWN, so the master has the
    agents kill whatever the framework still runs."""
    info = {"user": "root", "name": name, **(framework_info or {})}
    driver = MesosSchedulerDriver(sched, info, master, use_addict=True)
    sched.driver = driver
    driver.start()
    try:
        yield driver
    finally:
        driver.stop()
        joiner = threading.Thread(target=driver.join, daemon=True)  # join() itself has no timeout
        joiner.start()
        joiner.join(WAIT)


@contextlib.contextmanager
def running_master(workdir: Path, flags: tuple[str, ...] = ()) -> Iterator[MasterProc]:
    master = MasterProc(workdir, flags=flags)
    master.start()
    try:
        yield master
    finally:
        master.kill()


@contextlib.contextmanager
def running_agent(workdir: Path, master: MasterProc, resources: str | None = None) -> Iterator[AgentProc]:
    """An agent-py subscribed to ``master``; afterwards its processes and containers are all gone."""
    agent = (
        AgentProc(workdir, master) if resources is None else AgentProc(workdir, master, resources=resources)
    )
    try:
        agent.start()
        yield agent
    finally:
        agent.cleanup()
