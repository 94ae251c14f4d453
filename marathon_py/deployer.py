"""The bookkeeping of running deployments (Marathon 1.10's ``DeploymentManagerActor`` / ``DeploymentActor``,
reference §7.3, §7.4, §3), pure: which step each plan is at, one state machine per action of that step
(``upgrade.ReplaceMachine`` for RestartApplication, ``upgrade.ScaleMachine`` for Start/ScaleApplication,
``StopMachine`` for StopApplication), and the deployment events as steps start and finish.

The caller feeds instance changes in (``feed``), carries out the ``Effect``s that come back (each an
``upgrade`` action on one app definition: queue launches, set goals, reset the launch delay) and asks
``advance`` after each batch, which finishes steps whose actions are all done and starts the next ones.
Steps run one after the other, the actions of a step in parallel; plans that touch disjoint apps run side
by side (conflicting ones are the caller's to refuse or cancel, ``planner.conflicts``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from marathon_py import deployment as dp
from marathon_py.eventjson import event, iso
from marathon_py.upgrade import (
    CONSIDER_TERMINAL,
    Action,
    Changed,
    Done,
    Event,
    Instance,
    Kill,
    ReplaceMachine,
    ScaleMachine,
)

JsonObj = dict[str, Any]
CANCELLED = "The upgrade has been cancelled"


class StopMachine:
    """A StopApplication action: every instance of the app is decommissioned; done once all are gone."""

    def __init__(self, app: Mapping[str, Any], instances: Iterable[Instance]) -> None:
        self.app_id: str = app["id"]
        self.waiting = {i.id for i in instances}
        self.finished = False

    def start(self) -> list[Action]:
        out: list[Action] = [Kill(tuple(sorted(self.waiting)))] if self.waiting else []
        return out + self._check()

    def handle(self, e: Event) -> list[Action]:
        if isinstance(e, Changed) and e.instance.condition in CONSIDER_TERMINAL:
            self.waiting.discard(e.instance.id)
            return self._check()
        return []

    def _check(self) -> list[Action]:
        if self.waiting or self.finished:
            return []
        self.finished = True
        return [Done()]


Machine = ReplaceMachine | ScaleMachine | StopMachine


@dataclass(frozen=True)
class Effect:
    """One machine action on the app definition it concerns (the target's; the original's for Stop)."""

    plan_id: str
    verb: str
    app: Mapping[str, Any]
    action: Action


@dataclass
class Running:
    """A started plan: its current step (1-based) and the machines of that step's actions."""

    plan: dp.DeploymentPlan
    index: int = 0
    machines: dict[str, Machine] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)

    @property
    def step(self) -> dp.DeploymentStep:
        return self.plan.steps[self.index - 1] if self.index else dp.DeploymentStep()

    def info(self, readiness: Mapping[str, Sequence[JsonObj]] | None = None) -> dp.StepInfo:
        return dp.StepInfo(self.plan, self.step, self.index, readiness or {})

    @property
    def step_done(self) -> bool:
        return self.index > 0 and self.done >= set(self.machines)

    def verb_of(self, app_id: str) -> str:
        return next(a.verb for a in self.step.actions if a.run_spec_id == app_id)


class Deployer:
    """Every running plan, by id, in start order."""

    def __init__(self) -> None:
        self.running: dict[str, Running] = {}

    def plans(self) -> list[dp.DeploymentPlan]:
        return [r.plan for r in self.running.values()]

    def locked(self, app_id: str) -> bool:
        return any(app_id in r.plan.affected_ids for r in self.running.values())

    def machines_of(self, app_id: str) -> list[tuple[Running, Machine]]:
        return [(r, r.machines[app_id]) for r in self.running.values() if app_id in r.machines]

    def start(self, plan: dp.DeploymentPlan) -> None:
        """Run ``plan``; its first step starts with the next ``advance``."""
        self.running[plan.id] = Running(plan)

    def cancel(self, plan_id: str, now: float) -> list[JsonObj]:
        """Stop a plan where it stands (no rollback): its machines are dropped, ``deployment_failed``."""
        r = self.running.pop(plan_id)
        return [dp.event_json("deployment_failed", r.plan, timestamp=iso(now), reason=CANCELLED)]

    def feed(self, app_id: str, e: Event) -> list[Effect]:
        """An instance change (or health/readiness result) of ``app_id`` for the machines working on it."""
        out: list[Effect] = []
        for r, machine in self.machines_of(app_id):
            out += self._effects(r, app_id, machine.handle(e))
        return out

    def progress(self, app_id: str) -> list[Effect]:
        """Something about ``app_id``'s instances changed: restarts launch or kill what that allows."""
        out: list[Effect] = []
        for r, machine in self.machines_of(app_id):
            if isinstance(machine, ReplaceMachine):
                out += self._effects(r, app_id, machine.progress())
        return out

    def _effects(self, r: Running, app_id: str, actions: list[Action]) -> list[Effect]:
        out = []
        for a in actions:
            if isinstance(a, Done):
                r.done.add(app_id)
            else:
                action = next(x for x in r.step.actions if x.run_spec_id == app_id)
                app = r.plan.run_spec(action)
                assert app is not None
                out.append(Effect(r.plan.id, action.verb, app, a))
        return out

    def advance(
        self, now: float, instances: Callable[[str], list[Instance]]
    ) -> tuple[list[Effect], list[JsonObj], list[dp.DeploymentPlan]]:
        """Finish the steps whose actions are all done and start the next: the effects of starting them,
        the deployment events (light plan format; see ``full_event``) and the plans that finished."""
        effects: list[Effect] = []
        events: list[JsonObj] = []
        finished: list[dp.DeploymentPlan] = []
        for r in list(self.running.values()):
            while r.index == 0 or r.step_done:
                if r.index:
                    events.append(_step_event("deployment_step_success", r, now))
                    events += [event("app_terminated_event", now, appId=a.run_spec_id) for a in r.step.actions
                               if a.verb == "Stop"]  # fmt: skip
                if r.index == len(r.plan.steps):
                    del self.running[r.plan.id]
                    finished.append(r.plan)
                    events.append(dp.event_json("deployment_success", r.plan, timestamp=iso(now)))
                    break
                r.index += 1
                r.machines, r.done = {}, set()
                events.append(_step_event("deployment_info", r, now))
                for action in r.step.actions:
                    machine = _machine(r.plan, action, instances(action.run_spec_id))
                    r.machines[action.run_spec_id] = machine
                    effects += self._effects(r, action.run_spec_id, machine.start())
        return effects, events, finished


def _step_event(kind: str, r: Running, now: float) -> JsonObj:
    return dp.event_json(kind, r.plan, timestamp=iso(now), step=r.step)


def full_event(e: JsonObj, plans: Mapping[str, dp.DeploymentPlan]) -> JsonObj | None:
    """The full-format twin of a deployment event (``plan.original``/``plan.target`` included)."""
    plan_doc = e.get("plan")
    if not isinstance(plan_doc, dict) or plan_doc.get("id") not in plans:
        return None
    plan = plans[plan_doc["id"]]
    return {**e, "plan": dp.plan_json(plan, full=True)}


def _machine(plan: dp.DeploymentPlan, action: dp.DeploymentAction, instances: list[Instance]) -> Machine:
    app = plan.run_spec(action)
    assert app is not None, f"{action.run_spec_id} is not in the plan's roots"
    if action.verb == "Stop":
        return StopMachine(app, instances)
    if action.verb == "Restart":
        return ReplaceMachine(app, instances)
    return ScaleMachine(app, instances, scale_to=action.scale_to, sentenced=action.sentenced)
