"""Deployment plans as data, and every JSON form they take: ``GET /v2/deployments``, the deployment events,
``dryRun`` steps, the DeploymentResult, the 409 lock body and the stored form in ZooKeeper.

Marathon 1.10: ``core/deployment/DeploymentPlan.scala`` (plan, steps, actions, DeploymentStepInfo),
``raml/DeploymentPlanConversion.scala`` (the JSON), ``core/event/Events.scala`` (events), reference §2.3, §3,
§7.3, §7.4. Root groups are plain dicts in ``/v2/groups`` form; this module never changes them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from marathon_py.groups import apps_by_id

JsonDict = dict[str, Any]
Group = Mapping[str, Any]
App = Mapping[str, Any]
Verb = Literal["Start", "Stop", "Scale", "Restart"]
Kind = Literal["app", "pod"]

_VERBS: tuple[Verb, ...] = ("Start", "Stop", "Scale", "Restart")
_STEP_EVENTS = frozenset({"deployment_info", "deployment_step_success", "deployment_step_failure"})
_PLAN_EVENTS = frozenset({"deployment_success", "deployment_failed"})
# marathon-python builds MarathonDeploymentOriginalState/TargetState with exactly these keyword arguments.
_GROUP_EVENT_KEYS = ("id", "apps", "pods", "groups", "dependencies", "version")


@dataclass(frozen=True)
class DeploymentAction:
    """One action on one run spec; ``scale_to`` is set for Start (always 0) and Scale, ``sentenced`` lists
    instance ids a kill-and-scale named explicitly (§7.3 step 4)."""

    verb: Verb
    run_spec_id: str
    kind: Kind = "app"
    scale_to: int | None = None
    sentenced: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.verb}{'Application' if self.kind == 'app' else 'Pod'}"


@dataclass(frozen=True)
class DeploymentStep:
    """Actions that run in parallel; steps run one after the other."""

    actions: tuple[DeploymentAction, ...] = ()


@dataclass(frozen=True)
class DeploymentPlan:
    id: str
    version: str
    original: Group
    target: Group
    steps: tuple[DeploymentStep, ...]

    @property
    def is_empty(self) -> bool:
        return not self.steps

    @property
    def affected_ids(self) -> frozenset[str]:
        """Every run spec any action references: what the plan locks (§7.4)."""
        return frozenset(a.run_spec_id for s in self.steps for a in s.actions)

    def _affected(self, kind: Kind) -> list[str]:
        return sorted({a.run_spec_id for s in self.steps for a in s.actions if a.kind == kind})

    @property
    def affected_apps(self) -> list[str]:
        return self._affected("app")

    @property
    def affected_pods(self) -> list[str]:
        return self._affected("pod")

    def run_spec(self, action: DeploymentAction) -> App | None:
        """The definition an action works on: the original one for Stop, the target one otherwise."""
        root = self.original if action.verb == "Stop" else self.target
        return apps_by_id(root).get(action.run_spec_id)


@dataclass(frozen=True)
class StepInfo:
    """Marathon's DeploymentStepInfo: where a running plan stands. ``index`` is 1-based; 0 with an empty
    step is the placeholder of a plan that is stored but not started yet (§2.3). ``readiness`` maps a run
    spec id to its TaskReadinessCheckResult dicts."""

    plan: DeploymentPlan
    step: DeploymentStep
    index: int
    readiness: Mapping[str, Sequence[JsonDict]] = field(default_factory=dict)


def initial_step_info(plan: DeploymentPlan) -> StepInfo:
    return StepInfo(plan, DeploymentStep(), 0)


def step_info(plan: DeploymentPlan, index: int) -> StepInfo:
    return StepInfo(plan, plan.steps[index - 1], index)


# --- JSON (raml/DeploymentPlanConversion.scala) ---


def _action_base(action: DeploymentAction) -> JsonDict:
    return {"action": action.name, action.kind: action.run_spec_id}


def step_json(step: DeploymentStep) -> JsonDict:
    return {"actions": [_action_base(a) for a in step.actions]}


def steps_json(plan: DeploymentPlan) -> list[JsonDict]:
    return [step_json(s) for s in plan.steps]


def dry_run_json(plan: DeploymentPlan) -> JsonDict:
    """``PUT /v2/groups?dryRun=true`` answers the steps only (§2.2)."""
    return {"steps": steps_json(plan)}


def group_event_json(root: Group) -> JsonDict:
    """A root group as the full ("heavy") plan format carried it: marathon-python rejects any other
    top-level key (e.g. ``enforceRole``, which postdates the heavy format)."""
    return {k: root[k] for k in _GROUP_EVENT_KEYS if k in root}


def plan_json(plan: DeploymentPlan, *, full: bool = False) -> JsonDict:
    """The plan inside deployment events. Light (Marathon ≥ 1.8's only form) is ``{id, steps, version}``;
    full adds ``original``/``target``, which marathon-python's event parser needs (§3, §9.1)."""
    out: JsonDict = {"id": plan.id}
    if full:
        out["original"] = group_event_json(plan.original)
        out["target"] = group_event_json(plan.target)
    out["steps"] = steps_json(plan)
    out["version"] = plan.version
    return out


def deployment_info_json(info: StepInfo) -> JsonDict:
    """One element of ``GET /v2/deployments``."""
    plan = info.plan
    return {
        "id": plan.id,
        "version": plan.version,
        "affectedApps": plan.affected_apps,
        "affectedPods": plan.affected_pods,
        "steps": steps_json(plan),
        "currentActions": [
            {**_action_base(a), "readinessCheckResults": list(info.readiness.get(a.run_spec_id, ()))}
            for a in info.step.actions
        ],
        "currentStep": info.index,
        "totalSteps": len(plan.steps),
    }


def deployment_result_json(plan: DeploymentPlan) -> JsonDict:
    """The body of every ``deployable`` call (§1.4); the id also goes into ``Marathon-Deployment-Id``."""
    return {"deploymentId": plan.id, "version": plan.version}


def event_json(
    event_type: str,
    plan: DeploymentPlan,
    *,
    timestamp: str,
    step: DeploymentStep | None = None,
    reason: str | None = None,
    full: bool = False,
) -> JsonDict:
    """A deployment event in Marathon's field order: ``deployment_info`` / ``deployment_step_success`` /
    ``deployment_step_failure`` carry ``plan`` and ``currentStep``; ``deployment_success`` /
    ``deployment_failed`` carry ``id`` and ``plan`` (and ``reason`` when failed)."""
    if event_type in _STEP_EVENTS:
        if step is None:
            raise ValueError(f"{event_type} needs the current step")
        out: JsonDict = {"plan": plan_json(plan, full=full), "currentStep": step_json(step)}
    elif event_type in _PLAN_EVENTS:
        out = {"id": plan.id, "plan": plan_json(plan, full=full)}
    else:
        raise ValueError(f"not a deployment event: {event_type}")
    out["eventType"] = event_type
    out["timestamp"] = timestamp
    if event_type == "deployment_failed" and reason is not None:
        out["reason"] = reason
    return out


# --- storage ---


def dump_plan(plan: DeploymentPlan) -> bytes:
    """The plan as stored under ``/state/deployment``. Like Marathon's StoredPlan it refers to the original
    and target root groups by version (they are stored as group versions anyway); unlike it, it keeps the
    steps, so explicitly sentenced instances survive a failover instead of being recomputed away."""
    doc = {
        "id": plan.id,
        "version": plan.version,
        "originalVersion": plan.original.get("version"),
        "targetVersion": plan.target.get("version"),
        "steps": [
            [
                {
                    "action": a.verb,
                    "kind": a.kind,
                    "id": a.run_spec_id,
                    **({"scaleTo": a.scale_to} if a.scale_to is not None else {}),
                    **({"sentencedToDeath": list(a.sentenced)} if a.sentenced else {}),
                }
                for a in step.actions
            ]
            for step in plan.steps
        ],
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def _load_action(doc: Mapping[str, Any]) -> DeploymentAction:
    verb, kind = doc["action"], doc.get("kind", "app")
    if verb not in _VERBS or kind not in ("app", "pod"):
        raise ValueError(f"bad stored action {doc!r}")
    return DeploymentAction(verb, doc["id"], kind, doc.get("scaleTo"), tuple(doc.get("sentencedToDeath", ())))


def load_plan(data: bytes, resolve_root: Callable[[str | None], Group]) -> DeploymentPlan:
    """Inverse of ``dump_plan``; ``resolve_root`` returns the root group stored under a version (None: the
    version-less empty root ``{"id": "/"}``) and raises if it is gone, as Marathon's resolve does."""
    doc = json.loads(data)
    return DeploymentPlan(
        id=doc["id"],
        version=doc["version"],
        original=resolve_root(doc.get("originalVersion")),
        target=resolve_root(doc.get("targetVersion")),
        steps=tuple(DeploymentStep(tuple(_load_action(a) for a in s)) for s in doc["steps"]),
    )
