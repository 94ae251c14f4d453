"""The master's pure core: frameworks and their calls, agents, offers, tasks and status updates.

Sans-I/O: the HTTP edge (``app.py``) validates a request (``calls.py``), hands the call and the
clock to :class:`MasterCore`, and carries out what comes back (``model.Output``): events for a
framework's stream, messages for an agent, registry writes, streams to close.  Nothing here touches a
socket, a clock or ZooKeeper.
"""

from __future__ import annotations

from typing import Any

from paas_common.healthcheck import HealthCheckError, HealthCheckSpec
from paas_common.resources import ResourceError, Resources

from . import events
from .allocator import DEFAULT_REFUSE_SECONDS, Allocator
from .calls import ApiError, Call, new_stream_id
from .model import (
    MAX_COMPLETED_FRAMEWORKS,
    MAX_COMPLETED_TASKS,
    TERMINAL,
    Agent,
    AgentTimeouts,
    CloseAgent,
    CloseStream,
    Framework,
    OfferRecord,
    Output,
    Persist,
    Task,
    ToAgent,
    ToFramework,
    framework_roles,
)


class MasterCore:
    """Framework, agent and task bookkeeping of a leading master."""

    def __init__(
        self,
        master_id: str,
        master_info: dict[str, Any],
        allocator: Allocator | None = None,
        timeouts: AgentTimeouts | None = None,
        heartbeat_interval: float = events.HEARTBEAT_INTERVAL_S,
    ) -> None:
        self.master_id = master_id
        self.master_info = master_info
        self.allocator = allocator or Allocator()
        self.timeouts = timeouts or AgentTimeouts()
        self.heartbeat_interval = heartbeat_interval
        self.frameworks: dict[str, Framework] = {}
        self.completed_frameworks: list[Framework] = []
        self.agents: dict[str, Agent] = {}
        self.recovered_agents: dict[str, dict[str, Any]] = {}  # registry entries not re-registered yet
        self.unreachable_agents: dict[str, float] = {}  # id -> when it was marked unreachable
        self.reregister_deadline: float | None = None
        self.offers: dict[str, OfferRecord] = {}
        self.tasks: dict[tuple[str, str], Task] = {}  # (framework id, task id)
        self.counters: dict[str, int] = {}  # master/* event counters for /metrics/snapshot
        self._next_framework = 0
        self._next_offer = 0
        self._next_agent = 0

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    # ---- failover: what the registry says

    def recover(self, agents: list[dict[str, Any]], frameworks: list[dict[str, Any]], now: float) -> None:
        """A new leader starts from the registry: agents are expected back within the re-register timeout
        (until then reconciliation of their tasks gets no answer), frameworks may re-subscribe by id."""
        for entry in agents:
            if entry.get("unreachable_time") is not None:
                self.unreachable_agents[str(entry["id"])] = float(entry["unreachable_time"])
            else:
                self.recovered_agents[str(entry["id"])] = entry
        for entry in frameworks:
            self._recovered_framework(dict(entry["info"]), float(entry.get("registered_time", now)), now)
        self.reregister_deadline = now + self.timeouts.reregister_timeout

    def _recovered_framework(self, info: dict[str, Any], registered: float, now: float) -> Framework:
        fid = _value(info.get("id")) or ""
        fw = Framework(fid, info, registered_time=registered, connected=False, active=False, recovered=True)
        fw.roles = framework_roles(info)
        fw.failover_deadline = now + max(fw.failover_timeout, self.timeouts.reregister_timeout)
        self.frameworks[fid] = fw
        self.allocator.add_framework(fid, fw.roles, active=False)
        return fw

    # ---- agents

    def add_agent(
        self,
        hostname: str,
        resources: Resources,
        attributes: list[dict[str, Any]],
        now: float,
        agent_id: str | None = None,
        *,
        ip: str = "127.0.0.1",
        port: int = 5051,
        tasks: list[dict[str, Any]] | None = None,
        frameworks: list[dict[str, Any]] | None = None,
    ) -> tuple[Agent, list[Output]]:
        """An agent registers, or re-registers (``agent_id`` set) with the tasks it runs.

        Its tasks become the master's again: after a failover the master learns them here (frameworks it
        does not know yet are recovered from their FrameworkInfo); a known agent's tasks that it no
        longer reports are lost.  A returning unreachable agent's tasks of frameworks that are not
        partition-aware were already reported lost to them, so they are killed.  The registry entry is
        written before the agent is answered."""
        out: list[Output] = []
        reregistering = agent_id is not None
        old = self.agents.get(agent_id) if agent_id else None
        if old is not None:  # re-registration of an agent this master knows: its stream broke
            out += self._forget_agent(old, now, keep_tasks=True)
        if agent_id is None:
            agent_id = f"{self.master_id}-S{self._next_agent}"
            self._next_agent += 1
            self._count("master/slave_registrations")
        else:
            self._count("master/slave_reregistrations")
        was_unreachable = self.unreachable_agents.pop(agent_id, None) is not None
        self.recovered_agents.pop(agent_id, None)
        agent = Agent(agent_id, hostname, resources, attributes, now, ip=ip, port=port, last_seen=now)
        if reregistering:
            agent.registered_time = old.registered_time if old is not None else now
            agent.reregistered_time = now
        known = {t.id for t in self.tasks.values() if t.agent_id == agent_id and t.live}
        for info in frameworks or []:
            fid = _value(info.get("id"))
            if fid and fid not in self.frameworks and not self._completed(fid):
                self._recovered_framework(dict(info), now, now)
        reported: set[tuple[str, str]] = set()
        for item in tasks or []:
            out += self._adopt_task(agent_id, item, was_unreachable, now, reported)
        for key, task in list(self.tasks.items()):
            if task.agent_id == agent_id and task.live and key not in reported and task.id in known:
                out += self._lose_task(
                    task, now, "REASON_RECONCILIATION", "Task is not known to the re-registered agent"
                )
        used: dict[str, dict[str, Resources]] = {}
        for task in self.tasks.values():
            if task.agent_id == agent_id and task.holding:
                by_role = used.setdefault(task.framework_id, {})
                by_role[task.role] = by_role.get(task.role, Resources.from_json([])) + task.resources
        self.agents[agent_id] = agent
        self.allocator.add_agent(agent_id, hostname, resources, attributes, used=used, active=False)
        out.insert(0, Persist("agents", agent_id, agent.entry()))
        return agent, out

    def _completed(self, fid: str) -> bool:
        return any(f.id == fid for f in self.completed_frameworks)

    def _adopt_task(
        self,
        agent_id: str,
        item: dict[str, Any],
        was_unreachable: bool,
        now: float,
        reported: set[tuple[str, str]],
    ) -> list[Output]:
        info = item.get("task") if isinstance(item, dict) else None
        fid = _value(item.get("framework_id")) if isinstance(item, dict) else None
        tid = _value(info.get("task_id")) if isinstance(info, dict) else None
        if not isinstance(info, dict) or fid is None or tid is None:
            return []
        state = str(item.get("state") or "TASK_STAGING")
        fw = self.frameworks.get(fid)
        kill = ToAgent(
            agent_id,
            {"type": "KILL_TASK", "kill_task": {"framework_id": {"value": fid}, "task_id": {"value": tid}}},
        )
        if fw is None:  # a framework that was torn down or timed out: the agent must not run its tasks
            return [kill] if state not in TERMINAL else []
        if was_unreachable and not fw.partition_aware and state not in TERMINAL:
            return [kill]
        reported.add((fid, tid))
        task = self.tasks.get((fid, tid))
        if task is None:
            try:
                res = Resources.from_json(info.get("resources") or [])
            except ResourceError:
                return [kill]
            role = str((item.get("role") or fw.roles[0]) if fw.roles else "*")
            task = Task(tid, fid, agent_id, role, info, res, state=state, holding=state not in TERMINAL)
            self.tasks[(fid, tid)] = task
        task.agent_id = agent_id
        task.unreachable_time = None
        task.state = state
        if not task.statuses or task.statuses[-1].get("state") != state:
            task.statuses.append(events.task_status(tid, state, now=now, agent_id=agent_id))
        for unreachable in [t for t in fw.unreachable_tasks if t.id == tid]:
            fw.unreachable_tasks.remove(unreachable)
        return []

    def _lose_task(
        self, task: Task, now: float, reason: str, message: str, unreachable: bool = False
    ) -> list[Output]:
        """The master's verdict on a task whose agent cannot tell: LOST, or GONE/UNREACHABLE for
        partition-aware frameworks; the framework hears it, without a uuid (nothing to acknowledge)."""
        fw = self.frameworks.get(task.framework_id)
        if fw is not None and fw.partition_aware:
            state = "TASK_UNREACHABLE" if unreachable else "TASK_GONE"
        else:
            state = "TASK_LOST"
        status = events.task_status(
            task.id, state, now=now, reason=reason, message=message, agent_id=task.agent_id
        )
        if unreachable:
            status["unreachable_time"] = {"nanoseconds": int(now * 1e9)}
        task.state = state
        task.statuses.append(status)
        self._count(f"master/tasks_{state.removeprefix('TASK_').lower()}")
        self._free(task)
        self._complete(task, now)
        if fw is None:
            return []
        return [ToFramework(fw.id, events.update(status))]

    def _free(self, task: Task) -> None:
        """The task stopped holding resources on its agent (terminal, lost or unreachable)."""
        if task.holding and task.agent_id in self.agents:
            self.allocator.recover_resources(task.framework_id, task.agent_id, task.resources, role=task.role)
        task.holding = False

    def _complete(self, task: Task, now: float) -> None:
        """The task is history: out of the live set, into its framework's completed/unreachable list."""
        self.tasks.pop((task.framework_id, task.id), None)
        fw = self.frameworks.get(task.framework_id)
        if fw is None:
            return
        if task.state == "TASK_UNREACHABLE":
            task.unreachable_time = now
            fw.unreachable_tasks.append(task)
            del fw.unreachable_tasks[:-MAX_COMPLETED_TASKS]
        else:
            fw.completed_tasks.append(task)
            del fw.completed_tasks[:-MAX_COMPLETED_TASKS]

    def agent_connected(self, agent_id: str, now: float) -> None:
        """The agent's stream is open: its resources are offered."""
        agent = self.agents.get(agent_id)
        if agent is not None and not agent.connected:
            agent.connected = True
            agent.last_seen = now
            self.allocator.activate_agent(agent_id)

    def agent_seen(self, agent_id: str, now: float) -> None:
        agent = self.agents.get(agent_id)
        if agent is not None:
            agent.last_seen = now

    def agent_disconnected(self, agent_id: str, now: float) -> list[Output]:
        """Its stream broke: no more offers for it; it has the silence timeout to come back."""
        agent = self.agents.get(agent_id)
        if agent is None or not agent.connected:
            return []
        agent.connected = False
        self.allocator.deactivate_agent(agent_id)
        return self._rescind_agent(agent_id)

    def _rescind_agent(self, agent_id: str) -> list[Output]:
        out: list[Output] = []
        for offer in [o for o in self.offers.values() if o.agent_id == agent_id]:
            del self.offers[offer.id]
            self.allocator.recover_resources(offer.framework_id, agent_id, offer.resources, role=offer.role)
            out.append(ToFramework(offer.framework_id, events.rescind(offer.id)))
        return out

    def _forget_agent(
        self, agent: Agent, now: float, keep_tasks: bool, unreachable: bool = True
    ) -> list[Output]:
        """Take the agent out of the allocator (offers rescinded); its tasks are lost unless kept."""
        out = self._rescind_agent(agent.id)
        if not keep_tasks:
            why = "is unreachable" if unreachable else "was removed"
            for task in [t for t in self.tasks.values() if t.agent_id == agent.id and t.live]:
                out += self._lose_task(
                    task, now, "REASON_AGENT_REMOVED", f"Agent {agent.hostname} {why}", unreachable
                )
        self.allocator.remove_agent(agent.id)
        del self.agents[agent.id]
        return out

    def remove_agent(self, agent_id: str, now: float) -> list[Output]:
        """The agent drained and shut down (UNREGISTER): forgotten, not unreachable; a task it still ran
        is lost (TASK_GONE for partition-aware frameworks)."""
        agent = self.agents.get(agent_id)
        if agent is None:
            return []
        out: list[Output] = [Persist("agents", agent_id, None)]
        out += self._forget_agent(agent, now, keep_tasks=False, unreachable=False)
        self._count("master/slave_removals")
        return [*out, CloseAgent(agent_id)]

    def mark_unreachable(self, agent_id: str, now: float) -> list[Output]:
        """Silent too long (or never back after a failover): the agent is unreachable, its tasks too."""
        out: list[Output] = []
        agent = self.agents.get(agent_id)
        entry: dict[str, Any] | None
        if agent is not None:
            entry = agent.entry()
            out += self._forget_agent(agent, now, keep_tasks=False)
            if agent.connected:
                out.append(CloseAgent(agent_id))
        else:
            entry = self.recovered_agents.pop(agent_id, None)
            if entry is None:
                return []
        self.unreachable_agents[agent_id] = now
        self._count("master/slave_unreachable_completed")
        out.insert(0, Persist("agents", agent_id, {**entry, "unreachable_time": now}))
        return out

    def allocate(self, now: float) -> list[Output]:
        """One allocation run: offers to frameworks, one OFFERS event per framework."""
        batches: dict[str, list[dict[str, Any]]] = {}
        for o in self.allocator.allocate(now):
            offer_id = f"{self.master_id}-O{self._next_offer}"
            self._next_offer += 1
            self.offers[offer_id] = OfferRecord(offer_id, o.framework_id, o.agent_id, o.role, o.resources)
            agent = self.agents[o.agent_id]
            batches.setdefault(o.framework_id, []).append(
                {
                    "id": {"value": offer_id},
                    "framework_id": {"value": o.framework_id},
                    "agent_id": {"value": o.agent_id},
                    "hostname": agent.hostname,
                    "resources": o.resources.to_json(),
                    "attributes": agent.attributes,
                    "allocation_info": {"role": o.role},
                }
            )
        return [ToFramework(fid, events.offers(batch)) for fid, batch in batches.items()]

    # ---- subscription

    def subscribe(self, call: Call, now: float) -> tuple[Framework, list[Output]]:
        """SUBSCRIBE: a new framework, or a known one (re)connecting; the caller opens the new stream."""
        info = dict(call.payload["framework_info"])
        fid = call.framework_id
        out: list[Output] = []
        fw = self.frameworks.get(fid) if fid else None
        if fid and fw is None and any(f.id == fid for f in self.completed_frameworks):
            raise ApiError(403, "Framework has been removed")
        if fw is None:
            if fid is None:
                fid = f"{self.master_id}-{self._next_framework:04d}"
                self._next_framework += 1
            info["id"] = {"value": fid}
            fw = Framework(fid, info, registered_time=now)
            self.frameworks[fid] = fw
            self.allocator.add_framework(
                fid, framework_roles(info), suppressed_roles=call.payload.get("suppressed_roles") or ()
            )
        else:
            if fw.stream_id is not None:  # one stream per framework: the old one ends
                out.append(CloseStream(fw.id, fw.stream_id))
            info["id"] = {"value": fw.id}
            fw.info = info
            fw.reregistered_time = now
        fw.roles = framework_roles(info)
        fw.suppressed_roles = set(call.payload.get("suppressed_roles") or [])
        fw.stream_id = new_stream_id()
        if not fw.active:
            self.allocator.activate_framework(fw.id)
        out += self._rescind_all(fw)  # offers are regenerated on (re)subscription
        fw.connected = fw.active = True
        fw.recovered = False
        fw.failover_deadline = None
        out.insert(0, Persist("frameworks", fw.id, fw.entry()))
        out.append(ToFramework(fw.id, events.subscribed(fw.id, self.master_info, self.heartbeat_interval)))
        return fw, out

    def disconnected(self, framework_id: str, stream_id: str, now: float) -> None:
        """The framework's stream broke: calls get 403 until it re-subscribes; failover_timeout starts."""
        fw = self.frameworks.get(framework_id)
        if fw is None or fw.stream_id != stream_id:
            return  # an older stream, already replaced
        fw.stream_id = None
        fw.connected = fw.active = False
        fw.unregistered_time = now
        fw.failover_deadline = now + fw.failover_timeout
        self.allocator.deactivate_framework(fw.id)
        self._rescind_all(fw)

    def tick(self, now: float) -> list[Output]:
        """Timeouts: frameworks past their failover timeout are removed; agents silent for the ping
        timeouts, and recovered agents that did not re-register in time, become unreachable."""
        out: list[Output] = []
        for fw in list(self.frameworks.values()):
            if fw.failover_deadline is not None and now >= fw.failover_deadline:
                out += self._remove(fw, now)
        for agent in list(self.agents.values()):
            if now - agent.last_seen > self.timeouts.silence:
                out += self.mark_unreachable(agent.id, now)
        if self.reregister_deadline is not None and now >= self.reregister_deadline:
            for agent_id in list(self.recovered_agents):
                out += self.mark_unreachable(agent_id, now)
            self.reregister_deadline = None
        return out

    def _rescind_all(self, fw: Framework) -> list[Output]:
        out: list[Output] = []
        for offer in [o for o in self.offers.values() if o.framework_id == fw.id]:
            del self.offers[offer.id]
            self.allocator.recover_resources(fw.id, offer.agent_id, offer.resources, role=offer.role)
            out.append(ToFramework(fw.id, events.rescind(offer.id)))
        return out

    def _remove(self, fw: Framework, now: float) -> list[Output]:
        out: list[Output] = []
        self._rescind_all(fw)
        for task in [t for t in self.tasks.values() if t.framework_id == fw.id]:
            # TEARDOWN / failover timeout: the agents kill its tasks
            out.append(
                ToAgent(
                    task.agent_id,
                    {
                        "type": "KILL_TASK",
                        "kill_task": {"framework_id": {"value": fw.id}, "task_id": {"value": task.id}},
                    },
                )
            )
            self._free(task)
            self._complete(task, now)
        for agent_id in {t.agent_id for t in out if isinstance(t, ToAgent)}:
            out.append(
                ToAgent(
                    agent_id,
                    {"type": "SHUTDOWN_FRAMEWORK", "shutdown_framework": {"framework_id": {"value": fw.id}}},
                )
            )
        self.allocator.remove_framework(fw.id)
        del self.frameworks[fw.id]
        fw.connected = fw.active = False
        fw.unregistered_time = now
        self.completed_frameworks.append(fw)
        del self.completed_frameworks[:-MAX_COMPLETED_FRAMEWORKS]
        out.insert(0, Persist("frameworks", fw.id, None))
        if fw.stream_id:
            out.append(CloseStream(fw.id, fw.stream_id))
        return out

    # ---- calls on an established stream

    def call(self, call: Call, now: float) -> list[Output]:
        """Every call but SUBSCRIBE, after ``check_stream``; effects come back as outputs."""
        fw = self.frameworks[call.framework_id or ""]
        handler = getattr(self, f"_call_{call.type.lower()}", None)
        if handler is None:
            return []  # accepted and ignored (REQUEST, inverse offers, operations: nothing to do yet)
        result: list[Output] = handler(fw, call.payload, now)
        return result

    def _call_teardown(self, fw: Framework, payload: dict[str, Any], now: float) -> list[Output]:
        return self._remove(fw, now)

    def _call_suppress(self, fw: Framework, payload: dict[str, Any], now: float) -> list[Output]:
        roles = set(payload.get("roles") or fw.roles)
        fw.suppressed_roles |= roles
        self.allocator.suppress(fw.id, roles)
        return []

    def _call_revive(self, fw: Framework, payload: dict[str, Any], now: float) -> list[Output]:
        roles = set(payload.get("roles") or fw.roles)
        fw.suppressed_roles -= roles
        self.allocator.revive(fw.id, roles)
        return []

    def _take_offers(self, fw: Framework, payload: dict[str, Any]) -> tuple[list[OfferRecord], str | None]:
        """The call's offers, removed from the outstanding set; or why they are not usable together."""
        ids = [_value(o) for o in payload.get("offer_ids") or []]
        recs = [self.offers.get(i) if i else None for i in ids]
        problem = None
        if not ids:
            problem = "No offers specified"
        elif any(r is None or r.framework_id != fw.id for r in recs):
            problem = "Offer is no longer valid"
        elif len({r.agent_id for r in recs if r}) > 1:
            problem = "Aggregated offers must belong to one single agent"
        for r in recs:
            if r is not None and r.framework_id == fw.id:
                del self.offers[r.id]
        return [r for r in recs if r is not None and r.framework_id == fw.id], problem

    def _call_decline(self, fw: Framework, payload: dict[str, Any], now: float) -> list[Output]:
        offers, _ = self._take_offers(fw, payload)
        refuse = _refuse_seconds(payload)
        for o in offers:
            self.allocator.decline(fw.id, o.agent_id, o.resources, refuse, now, role=o.role)
        return []

    def _call_accept(self, fw: Framework, payload: dict[str, Any], now: float) -> list[Output]:
        offers, problem = self._take_offers(fw, payload)
        out: list[Output] = []
        groups = _launch_groups(payload.get("operations"))
        if problem is not None:
            state = "TASK_DROPPED" if fw.partition_aware else "TASK_LOST"
            for o in offers:
                self.allocator.recover_resources(fw.id, o.agent_id, o.resources, role=o.role)
            for info in (info for group in groups for info in group):
                dropped = _value(info.get("task_id")) or ""
                status = events.task_status(
                    dropped, state, now=now, reason="REASON_INVALID_OFFERS", message=problem
                )
                out.append(ToFramework(fw.id, events.update(status)))
            return out
        agent_id, role = offers[0].agent_id, offers[0].role
        available = Resources.from_json([]) if not offers else offers[0].resources
        for o in offers[1:]:
            available = available + o.resources
        for group in groups:
            launched, available = self._launch(fw, group, agent_id, role, available, now)
            out += launched
        if not available.empty():  # what the operations did not use counts as declined
            self.allocator.decline(fw.id, agent_id, available, _refuse_seconds(payload), now, role=role)
        return out

    def _launch(
        self,
        fw: Framework,
        group: list[dict[str, Any]],
        agent_id: str,
        role: str,
        available: Resources,
        now: float,
    ) -> tuple[list[Output], Resources]:
        """Launch a group of tasks all or none (a LAUNCH is groups of one); what is left of the offer."""
        left, seen, error = available, set(), None
        for info in group:
            tid = _value(info.get("task_id"))
            error = "Duplicate task id in the task group" if tid in seen else None
            error = error or self._task_error(fw, info, tid, agent_id, left)
            if error is not None:
                break
            seen.add(tid)
            left = left - Resources.from_json(info["resources"])
        if error is not None:
            if len(group) > 1:
                error = f"Task group is invalid: {error}"
            return [
                ToFramework(
                    fw.id,
                    events.update(
                        events.task_status(
                            _value(info.get("task_id")) or "",
                            "TASK_ERROR",
                            now=now,
                            reason="REASON_TASK_INVALID" if len(group) == 1 else "REASON_TASK_GROUP_INVALID",
                            message=error,
                        )
                    ),
                )
                for info in group
            ], available
        out: list[Output] = []
        for info in group:
            tid = _value(info.get("task_id")) or ""
            task = Task(tid, fw.id, agent_id, role, info, Resources.from_json(info["resources"]))
            task.statuses.append(
                events.task_status(tid, "TASK_STAGING", now=now, source="SOURCE_MASTER", agent_id=agent_id)
            )
            self.tasks[(fw.id, tid)] = task
            out.append(
                ToAgent(agent_id, {"type": "RUN_TASK", "run_task": {"framework": fw.info, "task": info}})
            )
        return out, left

    def _task_error(
        self, fw: Framework, info: dict[str, Any], tid: str | None, agent_id: str, available: Resources
    ) -> str | None:
        if tid is None:
            return "Task has no 'task_id'"
        if (fw.id, tid) in self.tasks:
            return f"Task '{tid}' already exists"
        if not isinstance(info.get("name"), str):
            return "Task has no 'name'"
        if _value(info.get("agent_id")) != agent_id:
            return f"Task uses agent {_value(info.get('agent_id'))!r} but the offers are from {agent_id!r}"
        try:
            res = Resources.from_json(info.get("resources") or [])
        except ResourceError as e:
            return f"Task uses invalid resources: {e}"
        if res.empty():
            return "Task uses no resources"
        if not available.contains(res):
            return f"Task uses more resources {res.model()} than available {available.model()}"
        if "command" not in info and "executor" not in info:
            return "Task has neither 'command' nor 'executor'"
        if "health_check" in info:
            try:
                HealthCheckSpec.from_json(info["health_check"])
            except HealthCheckError as e:
                return f"Task's health check is invalid: {e}"
        return None

    # ---- status updates from agents; acknowledgements from frameworks

    def agent_update(self, agent_id: str, status: dict[str, Any], now: float) -> list[Output]:
        """A TaskStatus an agent reports (with its uuid): record it and pass it to the framework."""
        fid = _value(status.get("framework_id")) or ""
        tid = _value(status.get("task_id")) or ""
        task = self.tasks.get((fid, tid))
        if task is None or task.agent_id != agent_id or fid not in self.frameworks:
            # Nobody will acknowledge it (task or framework gone, e.g. after a master failover): the master
            # does, so the agent stops resending it.
            ack = {"framework_id": {"value": fid}, "task_id": {"value": tid}, "uuid": status.get("uuid")}
            return [ToAgent(agent_id, {"type": "ACKNOWLEDGE", "acknowledge": ack})]
        task.state = str(status.get("state"))
        task.statuses.append(status)
        self.agent_seen(agent_id, now)
        self._count("master/valid_status_updates")
        if task.state in TERMINAL:
            self._free(task)
        forwarded = {k: v for k, v in status.items() if k != "framework_id"}
        return [ToFramework(fid, events.update(forwarded))]

    def _call_acknowledge(self, fw: Framework, payload: dict[str, Any], now: float) -> list[Output]:
        tid = _value(payload.get("task_id"))
        agent_id = _value(payload.get("agent_id"))
        task = self.tasks.get((fw.id, tid or ""))
        done = task is not None and task.state in TERMINAL
        if task is not None and done and task.statuses[-1].get("uuid") == payload.get("uuid"):
            self._complete(task, now)  # its terminal update is acknowledged: the task is done
        if agent_id is None or agent_id not in self.agents:
            return []  # benign: answered 202 (pymesos aborts on anything else)
        ack = {
            "framework_id": {"value": fw.id},
            "task_id": payload.get("task_id"),
            "uuid": payload.get("uuid"),
        }
        return [ToAgent(agent_id, {"type": "ACKNOWLEDGE", "acknowledge": ack})]

    def _call_kill(self, fw: Framework, payload: dict[str, Any], now: float) -> list[Output]:
        task_id = _value(payload.get("task_id"))
        if task_id is None:
            raise ApiError(400, "Failed to validate scheduler::Call: Expecting 'kill.task_id' to be present")
        task = self.tasks.get((fw.id, task_id))
        if task is not None:
            kill = {"framework_id": {"value": fw.id}, "task_id": {"value": task_id}}
            if "kill_policy" in payload:
                kill["kill_policy"] = payload["kill_policy"]
            return [ToAgent(task.agent_id, {"type": "KILL_TASK", "kill_task": kill})]
        # Unknown task (MESOS-2127): reconcile it as lost, from the master.
        state = self._unknown_task_state(fw, _value(payload.get("agent_id")))
        if state is None:
            return []
        status = events.task_status(
            task_id,
            state,
            now=now,
            reason="REASON_RECONCILIATION",
            message="Attempted to kill an unknown task",
        )
        return [ToFramework(fw.id, events.update(status))]

    def _call_reconcile(self, fw: Framework, payload: dict[str, Any], now: float) -> list[Output]:
        out: list[Output] = []
        items = payload.get("tasks") or [
            {"task_id": {"value": t.id}} for t in self.tasks.values() if t.framework_id == fw.id
        ]
        for item in items:
            task_id = _value(item.get("task_id")) if isinstance(item, dict) else None
            if task_id is None:
                continue
            task = self.tasks.get((fw.id, task_id))
            if task is not None:
                latest = events.task_status(
                    task_id, task.state, now=now, reason="REASON_RECONCILIATION", agent_id=task.agent_id
                )
                out.append(ToFramework(fw.id, events.update(latest)))
                continue
            agent_id = _value(item.get("agent_id"))
            gone = next((t for t in fw.unreachable_tasks if t.id == task_id), None)
            if gone is not None:  # known as unreachable: its agent is, its task's fate is open
                agent_id = gone.agent_id
            state = self._unknown_task_state(fw, agent_id)
            if state is None:
                continue  # its agent may still re-register with it: no answer yet (as Mesos)
            status = events.task_status(
                task_id, state, now=now, reason="REASON_RECONCILIATION", agent_id=agent_id
            )
            out.append(ToFramework(fw.id, events.update(status)))
        return out

    def _unknown_task_state(self, fw: Framework, agent_id: str | None) -> str | None:
        """What the master says of a task it does not know (``Master::reconcile``), None for no answer."""
        if agent_id is None and self.recovered_agents:
            return None
        if agent_id is not None and agent_id in self.recovered_agents:
            return None
        if agent_id is not None and agent_id in self.agents:
            state = "TASK_GONE"
        elif agent_id is not None and agent_id in self.unreachable_agents:
            state = "TASK_UNREACHABLE"
        else:
            state = "TASK_UNKNOWN"
        return state if fw.partition_aware else "TASK_LOST"


def _launch_groups(operations: object) -> list[list[dict[str, Any]]]:
    """The tasks of LAUNCH (each alone) and LAUNCH_GROUP (together) operations, in order.

    A task group's tasks run as separate containers on the agent (agent_py has no default executor to
    share): what holds is that they launch all or none, on one agent, as Mesos guarantees."""
    groups: list[list[dict[str, Any]]] = []
    for op in operations if isinstance(operations, list) else []:
        if not isinstance(op, dict):
            continue
        if op.get("type") == "LAUNCH":
            infos = _field(_field(op, "launch"), "task_infos")
            groups += [[t] for t in infos if isinstance(t, dict)] if isinstance(infos, list) else []
        elif op.get("type") == "LAUNCH_GROUP":
            group = _field(_field(_field(op, "launch_group"), "task_group"), "tasks")
            if isinstance(group, list) and group:
                groups.append([t if isinstance(t, dict) else {} for t in group])
    return groups


def _field(obj: object, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def _refuse_seconds(payload: dict[str, Any]) -> float:
    filters = payload.get("filters")
    value = filters.get("refuse_seconds") if isinstance(filters, dict) else None
    try:
        return float(value) if value is not None else DEFAULT_REFUSE_SECONDS
    except (TypeError, ValueError):
        return DEFAULT_REFUSE_SECONDS


def _value(obj: object) -> str | None:
    if isinstance(obj, dict) and isinstance(obj.get("value"), str):
        return str(obj["value"])
    return None
