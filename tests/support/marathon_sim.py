"""A deterministic simulated Mesos (and store) around ``marathon_py.core.MarathonCore``.

Agents with resources and attributes get offered every simulated second unless Marathon suppressed its
role or declined them (filters as Mesos keeps them: ``refuse_seconds``, cleared by REVIVE).  Launched
tasks report TASK_RUNNING after a delay; kills end in TASK_KILLED; Marathon's probes are answered from
each task's health.  With ``faults`` tasks also fail to start, crash, flap their health and fall into
partitions (TASK_UNREACHABLE while the task keeps running: a ghost that only reconciliation finds).
Every random choice comes from one seeded ``random.Random``.

The ``Sim`` checks the core's outputs as it carries them out — no resource of an offer used twice, every
offer answered in the call it came with, store writes before anything else and the acknowledgement last —
and keeps the store the outputs describe, so a test can compare it with the core's state.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from marathon_py import groups
from marathon_py.core import CoreConfig, MarathonCore
from marathon_py.deployment import load_plan
from marathon_py.health import Result
from marathon_py.instances import TrackerConfig, instance_id_of
from marathon_py.outputs import (
    PERSISTS,
    Ack,
    Decline,
    DeleteDeployment,
    DeleteInstance,
    Event,
    Kill,
    Launch,
    Output,
    Probe,
    ReadinessProbe,
    Reconcile,
    Revive,
    SaveDeployment,
    SaveInstance,
    SaveRoot,
    SaveTaskFailure,
    Suppress,
    instance_of_doc,
)
from paas_common.resources import Resources, parse_attributes

T0 = 1_600_000_000.0
FRAMEWORK = "sim-framework"
TERMINAL_STATES = frozenset({"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_DROPPED"})
TERMINAL_STATES |= {"TASK_GONE", "TASK_UNKNOWN", "TASK_LOST", "TASK_GONE_BY_OPERATOR"}


class SimError(AssertionError):
    """The core broke a rule the simulation checks."""


@dataclass
class Agent:
    id: str
    hostname: str
    total: Resources
    attributes: list[dict[str, Any]]
    refused_until: float = 0.0


@dataclass
class Task:
    id: str
    agent_id: str
    resources: Resources
    state: str = "TASK_STAGING"
    healthy_from: float = 0.0  # probes succeed from then on (while Running and not flapping)
    sick_until: float = 0.0  # a flap: probes fail until then
    ghost: bool = False  # partitioned: Marathon was told UNREACHABLE, the task still runs
    last_at: float = 0.0  # when its last status goes out (Mesos keeps a task's updates in order)

    @property
    def live(self) -> bool:
        return self.state not in TERMINAL_STATES


@dataclass
class Store:
    """What the persist outputs wrote, as the ZooKeeper store would hold it."""

    root: Mapping[str, Any] | None = None
    roots: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # every stored root version
    deployments: dict[str, Any] = field(default_factory=dict)
    instances: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, Any] = field(default_factory=dict)
    saved_deployments: set[str] = field(default_factory=set)
    deleted_deployments: set[str] = field(default_factory=set)

    def apply(self, out: Output) -> None:
        if isinstance(out, SaveRoot):
            self.root = out.root
            self.roots[str(out.root["version"])] = out.root
        elif isinstance(out, SaveDeployment):
            self.deployments[out.id] = out.doc
            self.saved_deployments.add(out.id)
        elif isinstance(out, DeleteDeployment):
            self.deployments.pop(out.id, None)
            self.deleted_deployments.add(out.id)
        elif isinstance(out, SaveInstance):
            self.instances[out.id] = out.doc
        elif isinstance(out, DeleteInstance):
            self.instances.pop(out.id, None)
        elif isinstance(out, SaveTaskFailure):
            self.failures[out.app_id] = out.doc


def sim_config() -> CoreConfig:
    return CoreConfig(
        tracker=TrackerConfig(
            task_launch_timeout=60.0, task_launch_confirm_timeout=60.0, scale_apps_interval=30.0
        ),
        reconciliation_initial_delay=15.0,
        reconciliation_interval=60.0,
    )


class Sim:
    def __init__(
        self,
        seed: int,
        *,
        agents: int = 5,
        faults: bool = False,
        core: MarathonCore | None = None,
        config: CoreConfig | None = None,
        agent_resources: str = "cpus:4;mem:4096;disk:1000;ports:[31000-31099]",
    ) -> None:
        self.rng = random.Random(seed)
        self.faults = faults
        self.now = T0
        self.core = core or MarathonCore(config=config or sim_config(), rng=random.Random(seed))
        self.store = Store()
        self.agents = [
            Agent(f"S{i}", f"host{i}", Resources.parse(agent_resources), parse_attributes(f"rack:r{i % 2}"))
            for i in range(agents)
        ]
        self.tasks: dict[str, Task] = {}
        self.statuses: list[tuple[float, dict[str, Any]]] = []  # (deliver at, TaskStatus)
        self.health: list[tuple[str, int, Result]] = []  # probe results to hand in (-1: readiness)
        self.suppressed = False
        self.events: list[dict[str, Any]] = []
        self.outputs: list[Output] = []  # everything carried out, in order
        self._offers = 0
        self._uuid = 0
        self.run(self.core.start(self.now))
        self.run(self.core.subscribed(FRAMEWORK, self.now))

    # -- time --------------------------------------------------------------------------------------------

    def step(self, dt: float = 1.0) -> None:
        """One simulated second: timers, due status updates and probe results, faults, then offers."""
        self.now += dt
        self.run(self.core.tick(self.now))
        due = [s for at, s in self.statuses if at <= self.now]
        self.statuses = [(at, s) for at, s in self.statuses if at > self.now]
        for status in due:
            self.deliver(status)
        self._answer_probes()
        if self.faults:
            self._inject_faults()
        self.offer()

    def run_for(self, seconds: float) -> None:
        for _ in range(int(seconds)):
            self.step()

    def failover(self, seed: int) -> None:
        """A new leader: a core built from nothing but the store, subscribing again."""
        roots = self.store.roots

        def resolve(version: str | None) -> Mapping[str, Any]:
            return {"id": "/"} if version is None else roots[version]

        def app_version(app_id: str, version: str) -> Mapping[str, Any] | None:
            for root in roots.values():
                app = groups.apps_by_id(root).get(app_id)
                if app is not None and app["version"] == version:
                    return app
            return None

        plans = [load_plan(json.dumps(doc).encode(), resolve) for doc in self.store.deployments.values()]
        self.core = MarathonCore(
            dict(self.store.root) if self.store.root is not None else None,
            plans,
            [instance_of_doc(doc) for doc in self.store.instances.values()],
            dict(self.store.failures),
            config=self.core.config,
            rng=random.Random(seed),
            app_versions=app_version,
        )
        self.suppressed = False  # a new subscription
        self.run(self.core.start(self.now))
        self.run(self.core.subscribed(FRAMEWORK, self.now))

    def deliver(self, status: dict[str, Any]) -> None:
        outs = self.core.status_update(status, self.now)
        acks = [o for o in outs if isinstance(o, Ack)]
        if len(acks) != 1 or acks[0].status is not status or outs[-1] is not acks[0]:
            raise SimError(f"status {status['state']} of {status['task_id']} not acknowledged last: {outs}")
        self.run(outs)

    def offer(self) -> None:
        if self.suppressed:
            return
        offers = []
        for agent in self.agents:
            if agent.refused_until > self.now:
                continue
            free = agent.total
            for task in self.tasks.values():
                if task.agent_id == agent.id and task.live:
                    free = free - task.resources
            if free.milli("cpus") <= 0:
                continue
            self._offers += 1
            offers.append(
                {
                    "id": {"value": f"O{self._offers}"},
                    "framework_id": {"value": FRAMEWORK},
                    "agent_id": {"value": agent.id},
                    "hostname": agent.hostname,
                    "resources": free.to_json(),
                    "attributes": agent.attributes,
                }
            )
        if offers:
            self.run(self.core.offers(offers, self.now), offers=offers)

    # -- carrying out ------------------------------------------------------------------------------------

    def run(self, outs: Sequence[Output], offers: Sequence[Mapping[str, Any]] = ()) -> None:
        writes = [i for i, o in enumerate(outs) if isinstance(o, PERSISTS)]
        others = [i for i, o in enumerate(outs) if not isinstance(o, PERSISTS)]
        if writes and others and writes[-1] > others[0]:
            raise SimError(f"a store write after another output: {outs}")
        open_offers = {o["id"]["value"]: o for o in offers}
        for out in outs:
            self.outputs.append(out)
            self.store.apply(out)
            if isinstance(out, Launch):
                self._launch(out, open_offers)
            elif isinstance(out, Decline):
                for oid in out.offer_ids:
                    offer = open_offers.pop(oid, None)
                    if offer is None:
                        raise SimError(f"declined {oid}, which is not open")
                    self._agent(offer["agent_id"]["value"]).refused_until = self.now + out.refuse_seconds
            elif isinstance(out, Kill):
                self._kill(out)
            elif isinstance(out, Revive):
                self.suppressed = False
                for agent in self.agents:
                    agent.refused_until = 0.0
            elif isinstance(out, Suppress):
                self.suppressed = True
            elif isinstance(out, Reconcile):
                self._reconcile(out)
            elif isinstance(out, Event):
                self.events.append(out.event)
            elif isinstance(out, Probe):
                self.health.append((out.instance_id, out.check_index, self.probe(out.instance_id)))
            elif isinstance(out, ReadinessProbe):
                self.health.append((out.instance_id, -1, self.probe(out.instance_id)))
        if open_offers:
            raise SimError(f"offers neither accepted nor declined: {sorted(open_offers)}")

    def _agent(self, agent_id: str) -> Agent:
        return next(a for a in self.agents if a.id == agent_id)

    def _launch(self, out: Launch, open_offers: dict[str, Mapping[str, Any]]) -> None:
        (oid,) = out.offer_ids
        offer = open_offers.pop(oid, None)
        if offer is None:
            raise SimError(f"launch on {oid}, which is not open")
        left = Resources.from_json(offer["resources"])
        for info in out.task_infos:
            used = Resources.from_json(info["resources"])
            try:
                left = left - used
            except ValueError as e:
                raise SimError(f"offer {oid} over-used: {e}") from None
            if info["agent_id"]["value"] != offer["agent_id"]["value"]:
                raise SimError(f"task for another agent on {oid}")
            task_id = info["task_id"]["value"]
            if task_id in self.tasks:
                raise SimError(f"task id {task_id} launched twice")
            task = Task(task_id, offer["agent_id"]["value"], used)
            self.tasks[task_id] = task
            start = self.now + self.rng.choice((1.0, 2.0, 3.0))
            fails = self.faults and self.rng.random() < 0.08
            self._status(task, "TASK_FAILED" if fails else "TASK_RUNNING", start)
            task.healthy_from = start + self.rng.choice((1.0, 3.0))

    def _status(self, task: Task, state: str, at: float, **fields: Any) -> None:
        self._uuid += 1
        at = task.last_at = max(at, task.last_at)
        status = {
            "task_id": {"value": task.id},
            "state": state,
            "agent_id": {"value": task.agent_id},
            "source": "SOURCE_EXECUTOR",
            "uuid": f"u{self._uuid}",
            "timestamp": at,
            **fields,
        }
        if state in TERMINAL_STATES or state == "TASK_UNREACHABLE":
            task.state = state if state != "TASK_UNREACHABLE" else task.state
        else:
            task.state = state
        if state == "TASK_UNREACHABLE":
            task.ghost = True
        self.statuses.append((at, status))

    def _kill(self, out: Kill) -> None:
        task = self.tasks.get(out.task_id)
        if task is None or not task.live:
            return
        task.ghost = False
        self._status(task, "TASK_KILLED", self.now + self.rng.choice((0.0, 1.0, 2.0)))

    def _reconcile(self, out: Reconcile) -> None:
        if out.tasks:
            for entry in out.tasks:
                task = self.tasks.get(entry["task_id"]["value"])
                if task is not None:
                    self.statuses.append((self.now, self._answer(task)))
            return
        for task in self.tasks.values():
            if task.live:
                self.statuses.append((self.now, self._answer(task)))

    def _answer(self, task: Task) -> dict[str, Any]:
        """A master's reconciliation answer: the latest state, no uuid."""
        state = task.state if task.state != "TASK_STAGING" else "TASK_STAGING"
        return {
            "task_id": {"value": task.id},
            "state": state,
            "agent_id": {"value": task.agent_id},
            "source": "SOURCE_MASTER",
            "reason": "REASON_RECONCILIATION",
        }

    def probe(self, instance_id: str) -> Result:
        """What a health or readiness probe of the instance's task answers now."""
        task = next(
            (
                t
                for t in self.tasks.values()
                if t.live and instance_id_of(t.id) == instance_id and not t.ghost
            ),
            None,
        )
        ok = (
            task is not None
            and task.state == "TASK_RUNNING"
            and self.now >= task.healthy_from
            and self.now >= task.sick_until
        )
        return Result(True) if ok else Result(False, "503 Service Unavailable")

    def _answer_probes(self) -> None:
        while self.health:
            batch, self.health = self.health, []
            for iid, index, result in batch:
                if index < 0:
                    self.run(self.core.readiness_result(iid, bool(result.healthy), self.now))
                else:
                    self.run(self.core.health_result(iid, index, result, self.now))

    def _inject_faults(self) -> None:
        running = [t for t in self.tasks.values() if t.state == "TASK_RUNNING" and not t.ghost]
        for task in running:
            roll = self.rng.random()
            if roll < 0.004:
                self._status(task, "TASK_FAILED", self.now, message="crashed")
            elif roll < 0.006:
                self._status(task, "TASK_UNREACHABLE", self.now, reason="REASON_AGENT_DISCONNECTED")
            elif roll < 0.016:
                task.sick_until = self.now + self.rng.choice((2.0, 5.0, 12.0))

    def quiesce(self) -> None:
        """No more faults: ghosts keep running until reconciliation finds them, flaps end."""
        self.faults = False
        for task in self.tasks.values():
            task.sick_until = 0.0

    # -- views -------------------------------------------------------------------------------------------

    def live_tasks(self, app_id: str | None = None) -> list[Task]:
        return [
            t for t in self.tasks.values() if t.live and (app_id is None or groups_app_id(t.id) == app_id)
        ]

    def event_types(self) -> list[str]:
        return [e["eventType"] for e in self.events]

    def statuses_of(self, outs: Iterable[Output], kind: type) -> list[Any]:
        return [o for o in outs if isinstance(o, kind)]


def groups_app_id(task_id: str) -> str | None:
    iid = instance_id_of(task_id)
    return None if iid is None else "/" + iid.rpartition(".")[0].replace("_", "/")


__all__ = ["T0", "Sim", "SimError", "Store", "groups", "sim_config"]
