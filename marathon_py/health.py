"""Marathon-side health of instances, pure (reference §6 and §3; Marathon 1.10.26
``core/health/Health.scala``, ``impl/HealthCheckActor.scala``, ``impl/AppHealthCheckActor.scala``,
``impl/HealthCheckWorker.scala``, ``MarathonHealthCheckManager.update``).

``AppHealth`` holds, for one app version, a ``Health`` per check and instance.  Results come in from the
leader's own probes of ``HTTP``/``HTTPS``/``TCP`` checks (``probes.probe`` at ``probe_target``, every
``intervalSeconds``, the first after ``first_probe_delay``) or, for ``COMMAND``/``MESOS_*`` checks, from the
``healthy`` of Mesos status updates.  A ``Verdict`` answers each: Marathon's events, whether to kill the
instance, and the instance's health over all checks (feed it to ``Tracker.set_health``).

Rules: a result only counts for a Running instance of the app's version; failures are ignored while the
instance has never been healthy and is within ``gracePeriodSeconds`` of becoming Running; a failure counted
when ``maxConsecutiveFailures`` (> 0) failures were already counted kills the instance — Marathon compares the
count *before* adding the new failure, so with 3 the fourth failure kills; ``alive`` means the last success is
newer than the last failure.  HTTP 200-399 is healthy; with ``ignoreHttp1xx`` an HTTP (not HTTPS) 1xx result
is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from marathon_py.eventjson import event, iso_or_none
from marathon_py.healthchecks import MARATHON_PROTOCOLS
from marathon_py.instances import InstanceRecord
from marathon_py.upgrade import ACTIVE

JsonObj = dict[str, Any]
FIRST_CHECK_AFTER = 5.0  # HealthCheck.DefaultFirstHealthCheckAfter


@dataclass(frozen=True)
class Result:
    """One probe's outcome: healthy, unhealthy with a cause, or ``None`` — ignored (HTTP 1xx)."""

    healthy: bool | None
    cause: str = ""


def http_result(status: int, reason: str, ignore_1xx: bool = False) -> Result:
    """``HealthCheckWorker.http``: 200-399 healthy (as AWS Route 53 does), 1xx ignored on request, else
    unhealthy with akka's status text (``503 Service Unavailable``)."""
    if 200 <= status < 400:
        return Result(True)
    if ignore_1xx and 100 <= status < 200:
        return Result(None)
    return Result(False, f"{status} {reason}".strip())


@dataclass(frozen=True)
class Health:
    """``core.health.Health``: one check's record for one instance (its ``healthCheckResults`` entry)."""

    instance_id: str
    first_success: float | None = None
    last_success: float | None = None
    last_failure: float | None = None
    last_failure_cause: str | None = None
    consecutive_failures: int = 0

    @property
    def alive(self) -> bool:
        return self.last_success is not None and (
            self.last_failure is None or self.last_success > self.last_failure
        )

    def updated(self, result: Result, now: float) -> Health:
        if result.healthy is None:
            return self
        if result.healthy:
            first = self.first_success if self.first_success is not None else now
            return replace(self, first_success=first, last_success=now, consecutive_failures=0)
        return replace(
            self,
            last_failure=now,
            last_failure_cause=result.cause,
            consecutive_failures=self.consecutive_failures + 1,
        )

    def to_json(self) -> JsonObj:
        """The RAML ``Health``: unset times and cause are left out."""
        doc = {
            "alive": self.alive,
            "consecutiveFailures": self.consecutive_failures,
            "firstSuccess": iso_or_none(self.first_success),
            "instanceId": self.instance_id,
            "lastSuccess": iso_or_none(self.last_success),
            "lastFailure": iso_or_none(self.last_failure),
            "lastFailureCause": self.last_failure_cause,
        }
        return {k: v for k, v in doc.items() if v is not None}


def is_marathon_check(check: Mapping[str, Any]) -> bool:
    """Run by the leader (HTTP, HTTPS, TCP) rather than next to the task (COMMAND, MESOS_*)."""
    return check.get("protocol", "HTTP") in MARATHON_PROTOCOLS


def first_probe_delay(check: Mapping[str, Any]) -> float:
    return min(float(check.get("intervalSeconds", 60)), FIRST_CHECK_AFTER)


def probe_target(
    app: Mapping[str, Any], check: Mapping[str, Any], rec: InstanceRecord
) -> tuple[str, int] | None:
    """Where a Marathon check probes an instance (``effectivePort`` over ``NetworkInfo.portAssignments``):
    ``port`` if given, else the ``portIndex``-th port assignment — a host port on the agent's host, or in
    container networking a mapping without host port at the task's first IP and its container port.
    None when there is nothing to probe (the worker's "unable to get the task's effectivePort").

    Marathon itself probes the task's IP in container mode even for mappings that have a host port; this
    takes each assignment's own address (agent host with host port), which is what answers."""
    ip = rec.ip_addresses[0] if rec.ip_addresses else None
    networks = app.get("networks") or [{"mode": "host"}]
    container_net = any(n.get("mode") == "container" for n in networks)
    if check.get("port") is not None:
        host = ip if container_net else rec.host
        return (host, int(check["port"])) if host else None
    index = check.get("portIndex")
    if index is None:
        return None
    assignments: list[tuple[str | None, int]] = []
    mappings = (app.get("container") or {}).get("portMappings") or []
    if mappings and any(n.get("mode") != "host" for n in networks):
        ports = iter(rec.host_ports)
        for m in mappings:
            if m.get("hostPort") is not None:
                assignments.append((rec.host, next(ports, -1)))
            else:
                assignments.append((ip, int(m.get("containerPort", 0))))
    else:
        host = ip if container_net else rec.host
        assignments = [(host, p) for p in rec.host_ports[: len(app.get("portDefinitions") or [])]]
    if not 0 <= int(index) < len(assignments):
        return None
    host, port = assignments[int(index)]
    return (host, port) if host and port >= 0 else None


@dataclass
class Verdict:
    """What one result means: events to publish, whether to kill the instance (``tracker.kill(id,
    "FailedHealthChecks", now)``; the backoff grows, §7.2), and the instance's health over all checks when
    it changed (``tracker.set_health``; ``instance_health_changed_event`` comes from there)."""

    events: list[JsonObj] = field(default_factory=list)
    kill: bool = False
    health_changed: bool = False
    healthy: bool | None = None


class AppHealth:
    """The checks of one app version (one ``HealthCheckActor`` per check, plus the instance aggregate of
    ``AppHealthCheckActor``)."""

    def __init__(self, app: Mapping[str, Any]) -> None:
        self.app_id: str = app["id"]
        self.version: str = app["version"]
        self.checks: list[Mapping[str, Any]] = list(app.get("healthChecks") or [])
        self._health: list[dict[str, Health]] = [{} for _ in self.checks]

    @property
    def marathon_checks(self) -> list[int]:
        """Indices of the checks the leader probes."""
        return [i for i, c in enumerate(self.checks) if is_marathon_check(c)]

    def to_probe(self, records: Iterable[InstanceRecord]) -> list[InstanceRecord]:
        """The instances a probe round covers: Running, of this version."""
        return [r for r in records if r.version == self.version and r.condition == "Running"]

    def results(self, instance_id: str) -> list[Health]:
        """``healthCheckResults`` of an instance: one entry per check that has produced a result."""
        return [h[instance_id] for h in self._health if instance_id in h]

    def healthy(self, instance_id: str) -> bool | None:
        """``computeGlobalHealth``: True when every check is alive, None while one has no result yet."""
        states = [h.get(instance_id) for h in self._health]
        if all(s is not None and s.alive for s in states):
            return True
        return None if any(s is None for s in states) else False

    def purge(self, records: Iterable[InstanceRecord]) -> None:
        """Forget instances that are no longer active (``purgeStatusOfDoneInstances``)."""
        done = {r.instance_id for r in records if r.condition not in ACTIVE}
        for by_instance in self._health:
            for iid in done & by_instance.keys():
                del by_instance[iid]

    def mesos_status(self, rec: InstanceRecord, status: Mapping[str, Any], now: float) -> Verdict:
        """A status update's ``healthy`` is the result of the app's Mesos-run checks (``update``)."""
        if "healthy" not in status:
            return Verdict()
        verdict = Verdict()
        result = Result(bool(status["healthy"]))
        for i, check in enumerate(self.checks):
            if not is_marathon_check(check):
                _merge(verdict, self.result(i, rec, result, now))
        return verdict

    def result(self, index: int, rec: InstanceRecord, result: Result, now: float) -> Verdict:
        """``HealthCheckActor.handleHealthResult`` + ``updateInstanceHealth`` for check ``index``."""
        verdict = Verdict()
        if rec.version != self.version:
            return verdict
        check, iid = self.checks[index], rec.instance_id
        before = self._health[index].get(iid, Health(iid))
        after = before
        if result.healthy is True:
            after = before.updated(result, now)
        elif result.healthy is False and not self._ignored(check, rec, before, now):
            verdict.events.append(
                event(
                    "failed_health_check_event", now, appId=self.app_id, healthCheck=dict(check), taskId=iid
                )
            )
            limit = int(check.get("maxConsecutiveFailures", 3))
            if 0 < limit <= before.consecutive_failures:
                verdict.kill = True
                verdict.events.append(self._kill_event(rec, before, now))
            after = before.updated(result, now)
        was = self.healthy(iid)
        self._health[index][iid] = after
        if before.alive != after.alive:
            fields = {"appId": self.app_id, "instanceId": iid, "version": self.version, "alive": after.alive}
            verdict.events.append(event("health_status_changed_event", now, **fields))
        verdict.healthy = self.healthy(iid)
        verdict.health_changed = verdict.healthy != was
        return verdict

    def _ignored(self, check: Mapping[str, Any], rec: InstanceRecord, health: Health, now: float) -> bool:
        """``ignoreFailures``: not Running, or never healthy and still within the grace period."""
        if rec.condition != "Running":
            return True
        grace = float(check.get("gracePeriodSeconds", 300))
        return health.first_success is None and rec.since + grace > now

    def _kill_event(self, rec: InstanceRecord, health: Health, now: float) -> JsonObj:
        """``unhealthy_instance_kill_event`` with the cause and time of the failure counted before."""
        fields: JsonObj = {"appId": self.app_id, "taskId": rec.task_id, "instanceId": rec.instance_id}
        fields |= {"version": self.version, "reason": health.last_failure_cause or "unknown"}
        fields["host"] = rec.host or "unknown"
        if rec.agent_id is not None:
            fields["slaveId"] = rec.agent_id
        stamp = health.last_failure if health.last_failure is not None else now
        return event("unhealthy_instance_kill_event", stamp, **fields)


def _merge(into: Verdict, other: Verdict) -> None:
    into.events += other.events
    into.kill = into.kill or other.kill
    if other.health_changed:
        into.health_changed, into.healthy = True, other.healthy


def results_by_instance(healths: Sequence[AppHealth], instance_ids: Iterable[str]) -> dict[str, list[Health]]:
    """``HealthCheckManager.statuses``: the results of every version's checks, per instance."""
    return {iid: [h for app in healths for h in app.results(iid)] for iid in instance_ids}
