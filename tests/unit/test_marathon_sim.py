"""MarathonCore against the simulated Mesos of ``tests/support/marathon_sim.py``: random deploys, scales,
restarts, config changes, deletes, rollbacks, forced and cancelled deployments, task kills and leader
failovers (a new core built from the store alone), over many seeds, with and without faults (tasks that
fail to start or crash, partitions, flapping health).

Checked after every simulated second: no more instances with goal Running than a restart allows
(``floor(N * (1 + maximumOverCapacity))``, +1 when that equals ``ceil(N * minimumHealthCapacity)``; a
surplus left by a forced deployment is killed at the start); without faults, once a restart had
``ceil(N * minimumHealthCapacity)`` healthy instances it never drops below; the store the outputs wrote
mirrors the core; and (in the sim itself) no offer is used twice or left unanswered, store writes come
first and the ack last.  At the end, faults off: every stored deployment finished or was cancelled, and
the instances converge to the target root (after one restart of apps a forced cancel left with mixed
versions, as an operator would do).
"""

from __future__ import annotations

import contextlib
import math
import random
from dataclasses import dataclass
from typing import Any

import pytest

from marathon_py import appdef, groups
from marathon_py.core import AppLocked, MarathonCore
from marathon_py.outputs import instance_doc
from tests.support.marathon_sim import Sim, SimError

APP_IDS = ("/a", "/b", "/g/c")
CONSTRAINTS: tuple[list[list[str]], ...] = (
    [],
    [["hostname", "UNIQUE"]],
    [["rack", "GROUP_BY"]],
    [["hostname", "MAX_PER", "2"]],
)
HEALTH = {
    "protocol": "HTTP",
    "portIndex": 0,
    "intervalSeconds": 2,
    "timeoutSeconds": 1,
    "gracePeriodSeconds": 10,
    "maxConsecutiveFailures": 3,
}


def random_app(rng: random.Random, app_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": app_id,
        "cmd": f"serve {rng.randrange(1000)}",
        "instances": rng.randint(1, 3),
        "cpus": 0.25,
        "mem": 32,
        "backoffSeconds": 1,
        "maxLaunchDelaySeconds": 8,
        "upgradeStrategy": {
            "minimumHealthCapacity": rng.choice((0.0, 0.5, 1.0)),
            "maximumOverCapacity": rng.choice((0.0, 0.5, 1.0)),
        },
        "constraints": rng.choice(CONSTRAINTS),
        "killSelection": rng.choice(("YOUNGEST_FIRST", "OLDEST_FIRST")),
    }
    if rng.random() < 0.5:
        doc["healthChecks"] = [dict(HEALTH)]
    if app_id != "/a" and rng.random() < 0.3:
        doc["dependencies"] = ["/a"]  # plans of several steps, by dependency layer
    if rng.random() < 0.25:
        doc["portDefinitions"] = [{"port": 0, "name": "http-api"}]
        doc["readinessChecks"] = [{"portName": "http-api", "intervalSeconds": 2, "timeoutSeconds": 1}]
    return appdef.normalize(doc)


@dataclass
class Watch:
    """A restart step of one app, as the invariants follow it."""

    bound: int
    min_healthy: int
    reached: bool = False


class Chaos:
    def __init__(self, seed: int, faults: bool) -> None:
        self.sim = Sim(seed, faults=faults)
        self.seed = seed
        self.rng = random.Random(seed * 7919 + 17)
        self.strict = not faults
        self.watches: dict[tuple[str, int, str], Watch] = {}
        self.ops: list[str] = []

    @property
    def core(self) -> MarathonCore:
        return self.sim.core

    # -- operations --------------------------------------------------------------------------------------

    def op(self) -> None:
        apps = groups.apps_by_id(self.core.root())
        kinds = ["create"] * (3 - len(apps)) + ["scale", "restart", "change", "delete", "cancel"] * bool(apps)
        kinds += ["change all"] * (len(apps) > 1)
        kinds.append("failover")
        if not self.strict and apps:
            kinds.append("kill")
        kind = self.rng.choice(kinds)
        self.ops.append(kind)
        now, root = self.sim.now, self.core.root()
        if kind == "create":
            app_id = self.rng.choice([i for i in APP_IDS if i not in apps])
            self.update(groups.put_app(root, random_app(self.rng, app_id)))
            return
        if kind == "failover":
            self.sim.failover(self.seed * 1_000_003 + len(self.ops))
            return
        if kind == "change all":  # one plan, a step per dependency layer
            for app_id, app in apps.items():
                root = groups.put_app(root, {**random_app(self.rng, app_id), "instances": app["instances"]})
            self.update(root)
            return
        if kind == "cancel":
            running = self.core.deployment_plans()
            if running:
                plan = self.rng.choice(running)
                self.sim.run(self.core.cancel_deployment(plan.id, now, force=self.rng.random() < 0.3)[1])
            return
        app_id = self.rng.choice(sorted(apps))
        app = apps[app_id]
        if kind == "scale":
            self.update(groups.put_app(root, {**app, "instances": self.rng.choice((0, 1, 2, 3, 4))}))
        elif kind == "change":
            changed = random_app(self.rng, app_id)
            self.update(groups.put_app(root, {**changed, "instances": app["instances"]}))
        elif kind == "delete":
            self.update(groups.remove(root, app_id))
        elif kind == "restart":
            with contextlib.suppress(AppLocked):
                self.sim.run(self.core.restart_app(app_id, now, force=self.rng.random() < 0.3)[1])
        elif kind == "kill":
            tasks = [r.task_id for r in self.core.instances(app_id) if r.task_id]
            if tasks:
                picked = self.rng.sample(tasks, self.rng.randint(1, len(tasks)))
                how = self.rng.choice(({}, {"wipe": True}, {"scale": True}))
                with contextlib.suppress(AppLocked):
                    self.sim.run(self.core.kill_tasks(picked, now, **how)[2])

    def update(self, target: dict[str, Any]) -> None:
        try:
            _, outs = self.core.update_root(target, self.sim.now, force=self.rng.random() < 0.2)
        except AppLocked:
            if self.rng.random() < 0.5:
                return
            _, outs = self.core.update_root(target, self.sim.now, force=True)
        self.sim.run(outs)

    # -- invariants --------------------------------------------------------------------------------------

    def check(self) -> None:
        self.check_store()
        live = set()
        for running in self.core.deployer.running.values():
            for action in running.step.actions:
                if action.verb == "Restart":
                    key = (running.plan.id, running.index, action.run_spec_id)
                    live.add(key)
                    app = running.plan.run_spec(action)
                    assert app is not None
                    self.check_restart(key, app)
        for key in [k for k in self.watches if k not in live]:
            del self.watches[key]

    def check_restart(self, key: tuple[str, int, str], app: dict[str, Any] | Any) -> None:
        n = app["instances"]
        if n == 0:
            return
        mine = [r for r in self.core.instances(app["id"]) if r.goal == "Running"]
        watch = self.watches.get(key)
        if watch is None:
            strategy = app["upgradeStrategy"]
            low = math.ceil(n * strategy["minimumHealthCapacity"])
            high = int(n * (1 + strategy["maximumOverCapacity"]))
            bound = high + 1 if low == high else high
            watch = self.watches[key] = Watch(bound, low)
        assert len(mine) <= watch.bound, (
            f"{app['id']}: {len(mine)} instances > {watch.bound} during a restart"
        )
        healthy = sum(  # Marathon's consideredHealthy (by the instance's own checks); new ones must be ready
            1
            for r in mine
            if r.condition == "Running"
            and (r.healthy is True or not r.marathon_checks)
            and (
                r.version != app["version"]
                or not app.get("readinessChecks")
                or self.sim.probe(r.instance_id).healthy
            )
        )
        if watch.reached and self.strict:
            assert healthy >= watch.min_healthy, (
                f"{app['id']}: {healthy} healthy < {watch.min_healthy} during a restart"
            )
        watch.reached = watch.reached or healthy >= watch.min_healthy

    def check_store(self) -> None:
        store = self.sim.store
        records = {r.instance_id: r for r in self.core.instances()}
        assert store.instances.keys() == records.keys()
        for iid, rec in records.items():  # kill retries (killed_at) are the leader's memory, as in Marathon
            assert store.instances[iid] == {
                **instance_doc(rec),
                "killed_at": store.instances[iid]["killed_at"],
            }
        assert set(store.deployments) == {p.id for p in self.core.deployment_plans()}
        assert store.root is None or store.root == self.core.root()

    # -- the end -----------------------------------------------------------------------------------------

    def converged(self) -> bool:
        if self.core.deployment_plans():
            return False
        apps = groups.apps_by_id(self.core.root())
        running_tasks = set()
        for rec in self.core.instances():
            app = apps.get(rec.app_id)
            ok = (
                app is not None
                and rec.goal == "Running"
                and rec.condition == "Running"
                and rec.version == app["version"]
            )
            if not ok:
                return False
            running_tasks.add(rec.task_id)
        if any(len(self.core.instances(i)) != a["instances"] for i, a in apps.items()):
            return False
        return {t.id for t in self.sim.live_tasks()} == running_tasks

    def settle(self, limit: int = 600) -> None:
        self.sim.quiesce()
        restarted = False
        for second in range(limit):
            self.sim.step()
            self.check()
            if self.converged():
                return
            if not restarted and second > 200 and not self.core.deployment_plans():
                restarted = True  # a forced cancel leaves mixed versions: restart those apps once
                for app_id, app in groups.apps_by_id(self.core.root()).items():
                    if any(r.version != app["version"] for r in self.core.instances(app_id)):
                        self.sim.run(self.core.restart_app(app_id, self.sim.now)[1])
        raise AssertionError(f"no convergence: {self.describe()}")

    def describe(self) -> str:
        apps = groups.apps_by_id(self.core.root())
        lines = [f"ops={self.ops}", f"deployments={self.core.deployments()}"]
        for app_id, app in apps.items():
            recs = self.core.instances(app_id)
            lines.append(
                f"{app_id} want {app['instances']} @{app['version']}: "
                + ", ".join(f"{r.condition}/{r.goal}/{r.version[-8:]}" for r in recs)
            )
        lines.append(f"orphans: {[r.instance_id for r in self.core.instances() if r.app_id not in apps]}")
        lines.append(f"sim live: {len(self.sim.live_tasks())}, suppressed={self.sim.suppressed}")
        return "\n".join(lines)


def run_seed(seed: int, *, faults: bool, seconds: int = 200, rate: float = 0.12) -> Chaos:
    chaos = Chaos(seed, faults)
    for _ in range(seconds):
        if chaos.rng.random() < rate:
            chaos.op()
        chaos.sim.step()
        chaos.check()
    chaos.settle()
    store = chaos.sim.store
    assert store.saved_deployments <= store.deleted_deployments
    assert not store.deployments
    ended = {
        e["id"] for e in chaos.sim.events if e["eventType"] in ("deployment_success", "deployment_failed")
    }
    assert store.deleted_deployments <= ended  # and each said how it ended
    return chaos


@pytest.mark.parametrize("faults", [False, True], ids=["clean", "faults"])
def test_random_operations_keep_the_invariants_and_converge(faults: bool) -> None:
    failures = []
    for seed in range(100):
        try:
            run_seed(seed, faults=faults)
        except (AssertionError, SimError) as e:
            failures.append(f"seed {seed}: {e}")
    assert not failures, "\n\n".join(failures[:3]) + f"\n({len(failures)} seeds failed)"
