"""A Marathon deployment's progress as a pure fold: events and polled snapshots in, a :class:`Progress` out,
and that state as a progress-bar frame (TTY), a change line (non-TTY) and the final verdict.

No I/O and no clock (``elapsed`` is passed in), so a scripted event sequence yields exactly the frames an
operator sees (tests/unit/test_paasctl_marathon_format.py); paasctl.marathonwait is the edge that feeds it.
What the fold reads (reference §2.3, §3, §7.3):

* ``deployment_info`` (a step starts) and ``deployment_step_success`` carry ``plan{id, steps}`` and
  ``currentStep{actions}``, but no step number: the step is found by matching its actions in the plan.
* ``deployment_success`` / ``deployment_failed`` carry ``id`` (and ``reason``): the verdict.
* ``GET /v2/deployments`` gives ``currentStep`` (1-based; 0 with no actions = stored, not started),
  ``totalSteps``, ``currentActions`` and ``affectedApps``; a deployment no longer listed has ended.
* ``GET /v2/apps/ID`` gives ``instances`` (the target), ``tasksRunning``, ``tasksHealthy``, ``tasksStaged``;
  404 once a deleted app is gone.

Marathon keeps no record of ended deployments, so when the stream missed the final event the verdict is
inferred: the deployment is gone and every affected app has reached its target (or is gone).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Outcome = Literal["succeeded", "failed"]
BAR_WIDTH = 20
DEPLOYMENT_EVENTS = (
    "deployment_info",
    "deployment_step_success",
    "deployment_step_failure",
    "deployment_success",
    "deployment_failed",
)
# Events about instances: a reason to read the affected apps' counts again.
INSTANCE_EVENTS = (
    "status_update_event",
    "instance_changed_event",
    "instance_health_changed_event",
    "health_status_changed_event",
)
NOT_CONVERGED = "the deployment ended without reaching its target (canceled, or replaced by a forced one?)"


@dataclass(frozen=True)
class AppState:
    """One affected app as ``GET /v2/apps/ID`` last showed it (``exists`` False after a 404)."""

    id: str
    exists: bool = True
    known: bool = False  # counts read at least once
    target: int = 0
    running: int = 0
    healthy: int = 0
    staged: int = 0
    health_checked: bool = False

    @property
    def ready(self) -> int:
        """Instances that count towards the target: healthy ones when the app has health checks (§7.1)."""
        return self.healthy if self.health_checked else self.running

    @property
    def converged(self) -> bool:
        return not self.exists or (self.known and self.ready >= self.target)


@dataclass(frozen=True)
class Progress:
    """Where one deployment stands; ``listed`` is None until ``/v2/deployments`` was read once."""

    deployment_id: str
    apps: tuple[AppState, ...] = ()
    total_steps: int = 0
    steps_done: int = 0
    actions: tuple[str, ...] = ()
    listed: bool | None = None
    outcome: Outcome | None = None
    reason: str = ""

    @property
    def ended(self) -> bool:
        """Gone from ``/v2/deployments``: the wait is over (the outcome may still have to be inferred)."""
        return self.listed is False


def start(deployment_id: str, app_ids: Iterable[str] = ()) -> Progress:
    return _with_apps(Progress(deployment_id), app_ids)


def _with_apps(p: Progress, app_ids: Iterable[str]) -> Progress:
    known = {a.id for a in p.apps}
    new = tuple(AppState(i) for i in dict.fromkeys(app_ids) if i not in known)
    return dataclasses.replace(p, apps=p.apps + new) if new else p


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [x for x in value if isinstance(x, Mapping)] if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def action_text(action: Mapping[str, Any]) -> str:
    """``{"action": "ScaleApplication", "app": "/x"}`` → ``ScaleApplication /x`` (pods too)."""
    target = action.get("app", action.get("pod", ""))
    return f"{action.get('action', '?')} {target}".strip()


def _actions(step: Any) -> list[Mapping[str, Any]]:
    return _dicts(step.get("actions")) if isinstance(step, Mapping) else []


def _run_specs(actions: Iterable[Mapping[str, Any]]) -> list[str]:
    return [str(a["app"]) for a in actions if isinstance(a.get("app"), str)]


def _step_index(steps: Sequence[Any], current: Any, at_least: int) -> int | None:
    """0-based index of ``current`` in the plan's ``steps``: the first match not before ``at_least``
    (steps of one plan rarely repeat; if they do, progress only moves forward)."""
    matches = [i for i, s in enumerate(steps) if _actions(s) == _actions(current)]
    later = [i for i in matches if i >= at_least]
    return later[0] if later else (matches[-1] if matches else None)


# ---------------------------------------------------------------------------------------------- folding


def _plan(event: Mapping[str, Any]) -> Mapping[str, Any]:
    plan = event.get("plan")
    return plan if isinstance(plan, Mapping) else {}


def _ours(p: Progress, event: Mapping[str, Any]) -> bool:
    """A deployment event of this deployment (``deployment_success``/``_failed`` also carry ``id``)."""
    if event.get("eventType") not in DEPLOYMENT_EVENTS:
        return False
    return bool(event.get("id", _plan(event).get("id")) == p.deployment_id)


def fold_event(p: Progress, event: Mapping[str, Any]) -> Progress:
    """One ``/v2/events`` event; events of other deployments (and non-deployment events) change nothing."""
    if not _ours(p, event):
        return p
    kind = event.get("eventType")
    plan = _plan(event)
    steps = _dicts(plan.get("steps"))
    p = _with_apps(p, (app for s in steps for app in _run_specs(_actions(s))))
    total = len(steps) or p.total_steps
    if kind == "deployment_success":
        return dataclasses.replace(p, total_steps=total, steps_done=total, actions=(), outcome="succeeded")
    if kind == "deployment_failed":
        reason = str(event.get("reason") or p.reason or "no reason given")
        return dataclasses.replace(p, total_steps=total, outcome="failed", reason=reason)
    current = event.get("currentStep")
    index = _step_index(steps, current, p.steps_done)
    if kind == "deployment_info":
        done = p.steps_done if index is None else max(p.steps_done, index)
        actions = tuple(action_text(a) for a in _actions(current))
        return dataclasses.replace(p, total_steps=total, steps_done=done, actions=actions)
    if kind == "deployment_step_success":
        done = p.steps_done if index is None else max(p.steps_done, index + 1)
        return dataclasses.replace(p, total_steps=total, steps_done=min(done, total))
    failed = ", ".join(action_text(a) for a in _actions(current))
    return dataclasses.replace(p, total_steps=total, reason=f"step failed: {failed}" if failed else p.reason)


def touches(p: Progress, event: Mapping[str, Any]) -> bool:
    """Whether the event is worth re-reading the snapshots for: ours, or about one of our apps."""
    if _ours(p, event):
        return True
    if event.get("eventType") not in INSTANCE_EVENTS:
        return False
    app = event.get("appId", event.get("runSpecId"))
    return any(a.id == app for a in p.apps)


def fold_deployments(p: Progress, listing: Any) -> Progress:
    """A ``GET /v2/deployments`` answer: is ours still listed, and at which step."""
    ours = next((d for d in _dicts(listing) if d.get("id") == p.deployment_id), None)
    if ours is None:
        return dataclasses.replace(p, listed=False)
    p = _with_apps(p, (str(a) for a in ours.get("affectedApps") or () if isinstance(a, str)))
    current = _int(ours.get("currentStep"))
    total = _int(ours.get("totalSteps")) or p.total_steps
    actions = tuple(action_text(a) for a in _dicts(ours.get("currentActions")))
    return dataclasses.replace(
        p,
        listed=True,
        total_steps=total,
        steps_done=max(p.steps_done, current - 1),
        actions=actions or p.actions,
    )


def fold_app(p: Progress, app_id: str, app: Mapping[str, Any] | None) -> Progress:
    """``GET /v2/apps/ID``'s ``app`` (None after a 404)."""
    if app is None:
        state = AppState(app_id, exists=False, known=True)
    else:
        state = AppState(
            app_id,
            known=True,
            target=_int(app.get("instances")),
            running=_int(app.get("tasksRunning")),
            healthy=_int(app.get("tasksHealthy")),
            staged=_int(app.get("tasksStaged")),
            health_checked=bool(app.get("healthChecks")),
        )
    p = _with_apps(p, [app_id])
    return dataclasses.replace(p, apps=tuple(state if a.id == app_id else a for a in p.apps))


def settle(p: Progress) -> Progress:
    """The outcome of an ended deployment whose final event was not seen (see the module docstring)."""
    if p.outcome is not None or not p.ended:
        return p
    if all(a.converged for a in p.apps):
        return dataclasses.replace(p, outcome="succeeded", steps_done=p.total_steps, actions=())
    return dataclasses.replace(p, outcome="failed", reason=p.reason or NOT_CONVERGED)


# ---------------------------------------------------------------------------------------------- rendering


def fraction(p: Progress) -> float:
    """Share done: whole steps, plus the current step's share of ready instances over the target."""
    if p.outcome == "succeeded":
        return 1.0
    total = max(p.total_steps, 1)
    live = [a for a in p.apps if a.known and a.exists and a.target > 0]
    within = sum(min(a.ready, a.target) / a.target for a in live) / len(live) if live else 0.0
    return min((min(p.steps_done, total) + (within if p.steps_done < total else 0.0)) / total, 1.0)


def app_text(a: AppState) -> str:
    """``/x 1/3 running, 0/3 healthy (1 staging)``; ``/x removed`` once it is gone."""
    if not a.exists:
        return f"{a.id} removed"
    if not a.known:
        return a.id
    text = f"{a.id} {a.running}/{a.target} running"
    if a.health_checked:
        text += f", {a.healthy}/{a.target} healthy"
    return text + (f" ({a.staged} staging)" if a.staged else "")


def status_line(p: Progress) -> str:
    """The state without the time: ``step 1/2 ScaleApplication /x; /x 1/3 running``."""
    if p.listed is None and p.outcome is None and not p.total_steps:
        head = "starting"
    elif p.total_steps and p.steps_done < p.total_steps:
        head = f"step {p.steps_done + 1}/{p.total_steps}"
        if p.actions:
            head += " " + ", ".join(p.actions)
    else:
        head = f"{p.steps_done}/{p.total_steps} steps done" if p.total_steps else "no steps"
    apps = ", ".join(app_text(a) for a in p.apps)
    return f"{head}; {apps}" if apps else head


def bar(share: float, width: int = BAR_WIDTH) -> str:
    """``[=========>          ]`` for a share in [0, 1]."""
    filled = round(max(0.0, min(share, 1.0)) * width)
    inner = "=" * filled if filled >= width else "=" * filled + ">" + " " * (width - filled - 1)
    return f"[{inner}]"


def frame(p: Progress, elapsed: float, columns: int) -> str:
    """One TTY frame, cut to ``columns - 1`` characters (the cursor must not wrap the line)."""
    share = fraction(p)
    text = f"{bar(share)} {share * 100:3.0f}% {elapsed:5.1f}s  {status_line(p)}"
    limit = max(columns - 1, 10)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def change_line(p: Progress, elapsed: float) -> str:
    """What a non-TTY prints whenever :func:`status_line` changes."""
    return f"[{elapsed:6.1f}s] deployment {p.deployment_id}: {status_line(p)}"


def _verdict_app(a: AppState) -> str:
    if not a.exists:
        return f"{a.id} deleted"
    if not a.known:
        return a.id
    return f"{a.id} {a.ready}/{a.target} {'healthy' if a.health_checked else 'running'}"


def verdict(p: Progress, elapsed: float) -> str:
    """``deployment <id> succeeded in 12.3s: /app 3/3 healthy`` or ``deployment <id> failed after …``."""
    apps = ", ".join(_verdict_app(a) for a in p.apps)
    if p.outcome == "succeeded":
        return f"deployment {p.deployment_id} succeeded in {elapsed:.1f}s" + (f": {apps}" if apps else "")
    why = p.reason or "no reason given"
    return f"deployment {p.deployment_id} failed after {elapsed:.1f}s: {why}" + (f" ({apps})" if apps else "")


def timeout_message(p: Progress, timeout: float) -> str:
    return (
        f"deployment {p.deployment_id} still running after --timeout {timeout:g}s ({status_line(p)}); "
        f"it keeps running: 'paasctl deployments' shows it, "
        f"'paasctl deployments cancel {p.deployment_id}' rolls it back"
    )


def interrupted_message(p: Progress) -> str:
    return (
        f"interrupted: deployment {p.deployment_id} keeps running in Marathon "
        f"('paasctl deployments' shows it, 'paasctl deployments cancel {p.deployment_id}' rolls it back)"
    )
