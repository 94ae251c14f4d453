"""Marathon's pure core: root-group updates and deployments, offers and launches, status updates, health,
timers (reference §7, §8, §3, §2.3).  It ties the pure modules together — ``planner`` and ``deployer``
(plans and their state machines), ``instances.Tracker``, ``launcher`` (offers, backoff, revive/suppress),
``health.AppHealth`` — the way ``master_py.core`` is built: each call takes ``now`` and returns a list of
``outputs`` records (store writes first, then Mesos calls, events and probes, an acknowledgement last) that
the edge carries out in order.  No sockets, clocks or threads; randomness only from the injected ``rng``.
What follows from an instance change is ``reactor.Reactor``'s.

A new leader builds the core from what the store holds (root, deployments, instances, task failures) and
calls ``start``: every stored plan runs again from its first step, its machines counting what already
runs (Marathon's resumed deployments).  Reads (``root``, ``app_info``, ``deployments``, ``queue``, …) show
the core's state at once, which is the target state: the API answers before instances converge (§7.4).
"""

from __future__ import annotations

import functools
import itertools
import json
import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from marathon_py import appdef, groups, planner, taskjson, upgrade
from marathon_py import deployment as dp
from marathon_py.deployer import full_event
from marathon_py.eventjson import event
from marathon_py.health import Health, Result
from marathon_py.instances import InstanceRecord, instance_id_of
from marathon_py.outputs import (
    Ack,
    Decline,
    DeleteDeployment,
    Launch,
    Output,
    Reconcile,
    SaveDeployment,
    SaveRoot,
)
from marathon_py.reactor import App, AppLookup, CoreConfig, JsonObj, Reactor
from marathon_py.validation import AppLocked, BadRequest, NotFound, TooManyDeployments

__all__ = ["AppLocked", "CoreConfig", "MarathonCore", "NotFound", "TooManyDeployments"]
_EMBED_PREFIXES = ("group.apps.", "apps.", "app.")


class MarathonCore(Reactor):
    def __init__(
        self,
        root: groups.Group | None = None,
        deployments: Iterable[dp.DeploymentPlan] = (),
        instances: Iterable[InstanceRecord] = (),
        task_failures: Mapping[str, JsonObj] | None = None,
        *,
        config: CoreConfig | None = None,
        rng: random.Random | None = None,
        app_versions: AppLookup | None = None,
    ) -> None:
        super().__init__(root, instances, task_failures, config, rng, app_versions)
        self._pending_plans = list(deployments)
        self.framework_id: str | None = None
        self._next_reconcile: float | None = None

    # -- the edge's calls ---------------------------------------------------------------------------------

    def start(self, now: float) -> list[Output]:
        """Resume the stored deployments and the health checks of running instances (once, right after
        construction; health results were the old leader's memory, §6)."""
        for rec in self.tracker.instances():
            if rec.condition == "Running":
                self._app_health(rec.app_id, rec.version)
        for plan in self._pending_plans:
            self._remember(plan)
            self.deployer.start(plan)
        self._pending_plans = []
        self._settle(now)
        return self._finish(now)

    def update_root(
        self,
        target: groups.Group,
        now: float,
        *,
        force: bool = False,
        dry_run: bool = False,
        restarted: Collection[str] = (),
        to_kill: Mapping[str, Sequence[str]] | None = None,
        group_id: str = "/",
    ) -> tuple[dp.DeploymentPlan, list[Output]]:
        """Deploy ``target`` (the changed root, apps unversioned or as they were): service ports assigned,
        versions bumped, validated, planned (§7.3, §7.4).  A conflict with running plans is ``AppLocked``
        unless ``force``, which cancels them without rollback; a plan without steps still gets an id and
        a version (and finishes at once).  ``restarted`` apps restart (``POST …/restart``); ``to_kill``
        sentences instances for kill-and-scale."""
        version = self._next_version(now)
        current = self._root
        target = groups.assign_dynamic_service_ports(
            current, target, self.config.port_range, in_use=self._service_ports
        )
        target = groups.set_versions(current, target, version, restarted)
        groups.validate_root(target)
        plan = planner.plan(current, target, id=self._new_id(), version=version, to_kill=to_kill)
        return plan, self._deploy(plan, now, force=force, dry_run=dry_run, group_id=group_id)

    def restart_app(
        self, app_id: str, now: float, *, force: bool = False
    ) -> tuple[dp.DeploymentPlan, list[Output]]:
        self._app_or_404(app_id)
        return self.update_root(self._root, now, force=force, restarted=(app_id,), group_id=_parent(app_id))

    def cancel_deployment(
        self, deployment_id: str, now: float, *, force: bool = False
    ) -> tuple[dp.DeploymentPlan | None, list[Output]]:
        """``DELETE /v2/deployments/{id}`` (§2.3): ``force`` just stops it; otherwise a new deployment
        reverting its changes starts, forced over whatever it conflicts with (the original included)."""
        running = self.deployer.running.get(deployment_id)
        if running is None:
            raise NotFound.deployment(deployment_id)
        if force:
            self._cancel(deployment_id, now)
            return None, self._finish(now)
        plan = planner.revert(running.plan, self._root, id=self._new_id(), version=self._next_version(now))
        self._cancel(deployment_id, now)  # even when reverting changes nothing any more
        return plan, self._deploy(plan, now, force=True)

    def kill_tasks(
        self,
        task_ids: Iterable[str],
        now: float,
        *,
        scale: bool = False,
        wipe: bool = False,
        force: bool = False,
    ) -> tuple[list[InstanceRecord], dp.DeploymentPlan | None, list[Output]]:
        """``POST /v2/tasks/delete`` and ``DELETE /v2/apps/{id}/tasks[/{task}]``: the instances of the tasks
        (unknown ids are skipped) are killed and relaunched; ``wipe`` decommissions them instead (expunged,
        replaced by new instances); ``scale`` deploys their apps scaled down by as many, sentencing them."""
        if scale and wipe:
            raise BadRequest("You cannot use scale and wipe at the same time.")
        found: dict[str, InstanceRecord] = {}
        for task_id in task_ids:
            rec = self.tracker.get(instance_id_of(task_id) or "")
            if rec is not None:
                found[rec.instance_id] = rec
        records = list(found.values())
        if scale:
            by_app: dict[str, list[str]] = {}
            for rec in records:
                by_app.setdefault(rec.app_id, []).append(rec.instance_id)
            target = self._root
            for app_id, ids in by_app.items():
                app = groups.find_app(target, app_id)
                if app is not None:
                    target = groups.put_app(target, {**app, "instances": max(0, app["instances"] - len(ids))})
            plan, outs = self.update_root(target, now, force=force, to_kill=by_app)
            return records, plan, outs
        for rec in records:
            if wipe:
                self._set_goal(rec.instance_id, "Decommissioned", "KillingTasksViaApi", now)
            else:
                self._work.append(self.tracker.kill(rec.instance_id, "KillingTasksViaApi", now))
        if wipe:
            self._scale_check({r.app_id for r in records}, now)
        self._settle(now)
        return records, None, self._finish(now)

    def reset_delay(self, app_id: str, now: float) -> list[Output]:
        """``DELETE /v2/queue/{id}/delay``."""
        if not any(r.launching for r in self.tracker.instances(app_id)) or app_id not in self.launcher.delays:
            raise NotFound.queued(app_id)
        self.launcher.delays[app_id].reset()
        self._demand_dirty = True
        return self._finish(now)

    def subscribed(self, framework_id: str, now: float, master: str = "") -> list[Output]:
        self.framework_id = framework_id
        self._next_reconcile = now + self.config.reconciliation_initial_delay
        self.launcher.on_subscribed(self._ready_ids(now))
        self._event(event("scheduler_registered_event", now, frameworkId=framework_id, master=master))
        return self._finish(now)

    def disconnected(self, now: float) -> list[Output]:
        self.launcher.subscribed = False
        self._event(event("scheduler_disconnected_event", now))
        return self._finish(now)

    def rescind(self, offer_id: str, now: float) -> list[Output]:
        """Offers are answered as they come, so a rescinded one is already gone."""
        return self._finish(now)

    def offers(self, offers: Sequence[Mapping[str, Any]], now: float) -> list[Output]:
        """Match waiting instances (delay passed) against the offers; accept with TaskInfos, decline the
        rest."""
        waiting: dict[tuple[str, str], list[InstanceRecord]] = {}
        for rec in self.tracker.scheduled():
            if self.launcher.ready(rec.app_id, now):
                waiting.setdefault((rec.app_id, rec.version), []).append(rec)
        wanting: list[tuple[App, list[InstanceRecord]]] = []
        for (app_id, version), recs in sorted(
            waiting.items(), key=lambda kv: (kv[1][0].queued_at or 0, kv[0])
        ):
            app = self._definition(app_id, version)
            if app is None:  # a version nobody knows any more: it cannot be launched
                for rec in recs:
                    self._set_goal(rec.instance_id, "Decommissioned", "NotInSync", now)
            else:
                wanting.append((app, sorted(recs, key=lambda r: (r.queued_at or 0, r.instance_id))))
        answer = self.launcher.match(offers, wanting, self._placements(), now)
        for p in answer.launches:
            self._work.append(self.tracker.launched(p.instance_id, p.match, p.task_id, now))
        self._settle(now)
        for offer_id, infos in answer.accepted.items():
            self._out.append(Launch((offer_id,), tuple(infos)))
        if answer.declined:
            self._out.append(Decline(tuple(answer.declined), self.config.launch.decline_offer_duration))
        return self._finish(now)

    def status_update(self, status: Mapping[str, Any], now: float) -> list[Output]:
        """A v1 TaskStatus: the tracker's verdict, Mesos-run health, deployment progress; acknowledged
        last."""
        self._work.append(self.tracker.apply(status, now))
        rec = self.tracker.get(instance_id_of(str(status["task_id"]["value"])) or "")
        if rec is not None and rec.task_id == status["task_id"]["value"] and "healthy" in status:
            checks = self._app_health(rec.app_id, rec.version)
            if checks is not None:
                self._verdict(checks, rec, checks.mesos_status(rec, status, now), now)
        self._settle(now)
        self._out.append(Ack(status))
        return self._finish(now)

    def health_result(self, instance_id: str, check_index: int, result: Result, now: float) -> list[Output]:
        """The outcome of a ``Probe``."""
        rec = self.tracker.get(instance_id)
        checks = self._app_health(rec.app_id, rec.version) if rec is not None else None
        if rec is not None and checks is not None and check_index < len(checks.checks):
            self._verdict(checks, rec, checks.result(check_index, rec, result, now), now)
            self._settle(now)
        return self._finish(now)

    def readiness_result(
        self, instance_id: str, ready: bool, now: float, response: JsonObj | None = None
    ) -> list[Output]:
        """The outcome of a ``ReadinessProbe``; ``response`` (``status``, ``contentType``, ``body``) is the
        answer the check got, kept as ``lastResponse`` when the check has ``preserveLastResponse``."""
        rec = self.tracker.get(instance_id)
        if rec is not None:
            self._remember_readiness(rec, ready, response)
            self.deployer_feed(rec.app_id, upgrade.ReadinessResult(instance_id, ready), now)
            self._settle(now)
        return self._finish(now)

    def _remember_readiness(self, rec: InstanceRecord, ready: bool, response: JsonObj | None) -> None:
        """The TaskReadinessCheckResult of the task, for every running plan working on its app (Marathon's
        ``DeploymentStepInfo.readinessChecks``); results of plans that ended are dropped."""
        for plan_id in [p for p in self._ready_results if p not in self.deployer.running]:
            del self._ready_results[plan_id]
        app = self._definition(rec.app_id, rec.version) or {}
        check = (app.get("readinessChecks") or [{}])[0]
        if rec.task_id is None:
            return
        doc: JsonObj = {"name": check.get("name", "readinessCheck"), "taskId": rec.task_id, "ready": ready}
        if response is not None and check.get("preserveLastResponse"):
            doc["lastResponse"] = response
        for r, _ in self.deployer.machines_of(rec.app_id):
            self._ready_results.setdefault(r.plan.id, {})[rec.task_id] = (rec.app_id, doc)

    def _readiness_of(self, plan_id: str, app_id: str | None = None) -> dict[str, list[JsonObj]]:
        """Readiness results of a running plan by app id (of ``app_id`` only, if given)."""
        out: dict[str, list[JsonObj]] = {}
        for aid, doc in self._ready_results.get(plan_id, {}).values():
            if app_id is None or aid == app_id:
                out.setdefault(aid, []).append(doc)
        return out

    def tick(self, now: float) -> list[Output]:
        """Timers: the tracker's, launch delays, scale checks, probes, reconciliation, owed revives."""
        self._work.append(self.tracker.tick(now))
        self.launcher.expire(now)
        self._demand_dirty = True
        if self.tracker.scale_due(now):
            self._scale_check(self._apps, now)
        self._probes(now)
        self._readiness_probes(now)
        if self.launcher.subscribed and self._next_reconcile is not None and now >= self._next_reconcile:
            self._next_reconcile = now + self.config.reconciliation_interval
            tasks, up = self.tracker.reconcile(self._apps.keys(), now)
            self._work.append(up)
            if tasks:
                self._out.append(Reconcile(tuple(tasks)))
            self._out.append(Reconcile())
        self._settle(now)
        self._forget_unused(now)
        return self._finish(now)

    # -- reads ----------------------------------------------------------------------------------------------

    def root(self) -> groups.Group:
        return self._root

    def deployment_plans(self) -> list[dp.DeploymentPlan]:
        return self.deployer.plans()

    def deployments(self) -> list[JsonObj]:
        """``GET /v2/deployments``."""
        running = self.deployer.running.values()
        return [dp.deployment_info_json(r.info(self._readiness_of(r.plan.id))) for r in running]

    def instances(self, app_id: str | None = None) -> list[InstanceRecord]:
        return self.tracker.instances(app_id)

    def health(self, rec: InstanceRecord) -> list[Health]:
        """``healthCheckResults`` of an instance: those of its own app version's checks, the only ones that
        probe it (an instance keeps its version for life), found by key, not by walking every app's."""
        checks = self._health.get((rec.app_id, rec.version))
        return checks.results(rec.instance_id) if checks is not None else []

    def last_task_failure(self, app_id: str) -> JsonObj | None:
        return self._failures.get(app_id)

    def app_info(self, app_id: str, now: float, embed: Collection[str] = ()) -> JsonObj:
        """The AppInfo of ``/v2/apps``: the app plus what ``embed`` names (``counts``, ``tasks``,
        ``deployments``, ``lastTaskFailure``, ``taskStats``, ``readiness``, ``failures``; prefixes such
        as ``apps.`` are accepted, unknown names ignored — §2.1)."""
        app = self._app_or_404(app_id)
        names = _embed_names(tuple(embed))
        records = self.tracker.instances(app_id)
        health = {r.instance_id: self.health(r) for r in records}
        extras: JsonObj = {}
        if "counts" in names:
            extras |= taskjson.app_counts(records, health)
        if names & {"deployments", "tasks"}:
            extras["deployments"] = [{"id": p.id} for p in self.deployer.plans() if app_id in p.affected_ids]
        if "readiness" in names:
            extras["readinessCheckResults"] = [
                doc
                for plan_id in self.deployer.running
                for doc in self._readiness_of(plan_id, app_id).get(app_id, ())
            ]
        if "tasks" in names:
            extras["tasks"] = taskjson.task_list(records, health)
        if "lastTaskFailure" in names:
            extras["lastTaskFailure"] = self._failures.get(app_id)
        if "taskStats" in names:
            extras["tasksStats"] = taskjson.tasks_stats(app, records, health, now)
        return appdef.to_json(app, extras, shared=True)  # for answers serialized at once

    def tasks(self, statuses: Iterable[str] = ()) -> list[JsonObj]:
        """``GET /v2/tasks[?status=…]``: tasks of every app, with their service ports."""
        wanted = list(statuses)
        out: list[JsonObj] = []
        for app_id, app in self._apps.items():
            records = self.tracker.instances(app_id)
            health = {r.instance_id: self.health(r) for r in records}
            out += taskjson.task_list(records, health, taskjson.app_service_ports(app), wanted)
        return out

    def queue(self, now: float, *, last_unused: bool = False, with_role: bool = False) -> list[JsonObj]:
        """``GET /v2/queue`` items: apps with instances waiting for (or in) a launch."""
        items: list[JsonObj] = []
        for app_id, app in self._apps.items():
            delay = self.launcher.delays.get(app_id)
            stats = self.launcher.stats.get(app_id) or taskjson.OfferStats()
            records = self.tracker.instances(app_id)
            when = delay.queue_delay(now) if delay else {"timeLeftSeconds": 0, "overdue": True}
            items += taskjson.queue_items(
                appdef.to_json(app),
                records,
                delay=when,
                stats=stats,
                last_unused=last_unused,
                with_role=with_role,
            )
        return items

    # -- internals ------------------------------------------------------------------------------------------

    def _deploy(
        self, plan: dp.DeploymentPlan, now: float, *, force: bool, dry_run: bool = False, group_id: str = "/"
    ) -> list[Output]:
        running = self.deployer.plans()
        conflicting = planner.conflicts(plan, running)
        if conflicting and not force:
            raise AppLocked(p.id for p in conflicting)
        if not force and len(running) >= self.config.max_running_deployments:
            raise TooManyDeployments(self.config.max_running_deployments)
        if dry_run:
            return []
        for p in conflicting:
            self._cancel(p.id, now)
        target = dict(plan.target)
        before = self._apps
        changed = tuple(
            i for i, a in groups.apps_by_id(plan.target).items()
            if i in before and before[i] is not a
            and before[i].get("version") == a.get("version") and before[i] != a
        )  # fmt: skip
        self._out.append(SaveDeployment(plan.id, json.loads(dp.dump_plan(plan))))
        self._out.append(SaveRoot(target, changed))
        self._set_root(target)
        self._remember(plan, current=True)
        self._event(event("group_change_success", now, groupId=group_id, version=plan.version))
        self.deployer.start(plan)
        self._settle(now)
        return self._finish(now)

    def _cancel(self, plan_id: str, now: float) -> None:
        plan = self.deployer.running[plan_id].plan
        for e in self.deployer.cancel(plan_id, now):
            self._event(e, full_event(e, {plan.id: plan}))
        self._out.append(DeleteDeployment(plan_id))
        self._demand_dirty = True

    def _remember(self, plan: dp.DeploymentPlan, *, current: bool = False) -> None:
        """The definitions of the plan's roots, the target's last; ``current``: its target was just set as
        the root, whose apps ``_set_root`` has remembered.  An original app is skipped where the target's
        app of that id and version is written over it anyway (most apps: the roots share them)."""
        target = groups.apps_by_id(plan.target)
        replaced_root, replaced = self._replaced
        if current and replaced_root is plan.original:
            unshared = replaced  # what ``_set_root`` found the target no longer holds
        else:
            shared = set(map(id, target.values()))
            unshared = [a for a in groups.all_apps(plan.original) if id(a) not in shared]
        originals = (a for a in unshared if not _same_key(target.get(a["id"]), a))
        targets = (a for a in target.values() if not current or self._apps.get(a["id"]) is not a)
        for app in itertools.chain(originals, targets):
            if "version" in app:
                self._defs[(app["id"], app["version"])] = app
        if not current:
            self._defs_checked = False  # an entry of the root's apps may now be another object

    def _app_or_404(self, app_id: str) -> App:
        app = self.app(app_id)
        if app is None:
            raise NotFound.app(app_id)
        return app


@functools.lru_cache(maxsize=64)
def _embed_names(embed: tuple[str, ...]) -> frozenset[str]:
    """The AppInfo parts ``embed`` names (a list answer asks this once per app, always the same)."""
    names = {next((e[len(p) :] for p in _EMBED_PREFIXES if e.startswith(p)), e) for e in embed}
    if "failures" in names:
        names |= {"tasks", "lastTaskFailure", "deployments"}
    return frozenset(names)


def _same_key(app: App | None, other: App) -> bool:
    """Do both apps have the definition key ``(id, version)`` of ``app``?"""
    return app is not None and "version" in app and app["version"] == other.get("version")


def _parent(app_id: str) -> str:
    parent = app_id.rsplit("/", 1)[0]
    return parent or "/"
