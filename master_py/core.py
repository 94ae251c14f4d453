"""The master's pure core: frameworks and their calls, agents, offers, tasks and status updates.

Sans-I/O: the HTTP edge (``app.py``) validates a request (``calls.py``), hands the call and the
clock to :class:`MasterCore`, and delivers what comes back: events for a framework's stream,
or the order to close one.  Nothing here touches a socket, a clock or ZooKeeper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from paas_common.resources import ResourceError, Resources

from . import events
from .allocator import DEFAULT_REFUSE_SECONDS, Allocator
from .calls import ApiError, Call, new_stream_id

ONE_YEAR_S = 365 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class ToFramework:
    framework_id: str
    event: events.Event


@dataclass(frozen=True, slots=True)
class CloseStream:
    framework_id: str
    stream_id: str


@dataclass(frozen=True, slots=True)
class ToAgent:
    """A message for an agent (our agent protocol: RUN_TASK, KILL_TASK, ACKNOWLEDGE, SHUTDOWN_FRAMEWORK)."""

    agent_id: str
    message: dict[str, Any]


Output = ToFramework | CloseStream | ToAgent

TERMINAL = frozenset(
    {
        "TASK_FINISHED",
        "TASK_FAILED",
        "TASK_KILLED",
        "TASK_ERROR",
        "TASK_DROPPED",
        "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
        "TASK_LOST",
    }
)


@dataclass
class Agent:
    id: str
    hostname: str
    resources: Resources
    attributes: list[dict[str, Any]]
    registered_time: float


@dataclass
class OfferRecord:
    id: str
    framework_id: str
    agent_id: str
    role: str
    resources: Resources


@dataclass
class Task:
    id: str
    framework_id: str
    agent_id: str
    role: str
    info: dict[str, Any]
    resources: Resources
    state: str = "TASK_STAGING"
    statuses: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Framework:
    id: str
    info: dict[str, Any]
    registered_time: float
    stream_id: str | None = None
    connected: bool = False
    active: bool = True
    reregistered_time: float | None = None
    unregistered_time: float | None = None
    failover_deadline: float | None = None  # set while disconnected
    roles: list[str] = field(default_factory=list)
    suppressed_roles: set[str] = field(default_factory=set)

    @property
    def partition_aware(self) -> bool:
        return any(c.get("type") == "PARTITION_AWARE" for c in self.info.get("capabilities", []))

    @property
    def failover_timeout(self) -> float:
        value = self.info.get("failover_timeout", 0.0)
        try:
            return min(max(float(value), 0.0), ONE_YEAR_S)
        except (TypeError, ValueError):
            return 0.0


def framework_roles(info: dict[str, Any]) -> list[str]:
    """MULTI_ROLE frameworks list ``roles``; others have the deprecated ``role`` (default "*")."""
    roles = info.get("roles")
    if isinstance(roles, list) and roles:
        return [str(r) for r in roles]
    return [str(info.get("role") or "*")]


class MasterCore:
    """Framework bookkeeping of a leading master."""

    def __init__(
        self, master_id: str, master_info: dict[str, Any], allocator: Allocator | None = None
    ) -> None:
        self.master_id = master_id
        self.master_info = master_info
        self.allocator = allocator or Allocator()
        self.frameworks: dict[str, Framework] = {}
        self.completed_frameworks: list[Framework] = []
        self.agents: dict[str, Agent] = {}
        self.offers: dict[str, OfferRecord] = {}
        self.tasks: dict[tuple[str, str], Task] = {}  # (framework id, task id)
        self._next_framework = 0
        self._next_offer = 0
        self._next_agent = 0

    # ---- agents

    def add_agent(
        self,
        hostname: str,
        resources: Resources,
        attributes: list[dict[str, Any]],
        now: float,
        agent_id: str | None = None,
    ) -> Agent:
        """An agent registered (``agent_id`` set when it re-registers after a master failover)."""
        if agent_id is None:
            agent_id = f"{self.master_id}-S{self._next_agent}"
            self._next_agent += 1
        agent = Agent(agent_id, hostname, resources, attributes, now)
        self.agents[agent_id] = agent
        self.allocator.add_agent(agent_id, hostname, resources, attributes)
        return agent

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
        fw.failover_deadline = None
        out.append(ToFramework(fw.id, events.subscribed(fw.id, self.master_info)))
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
        """Remove frameworks whose failover timeout expired."""
        out: list[Output] = []
        for fw in list(self.frameworks.values()):
            if fw.failover_deadline is not None and now >= fw.failover_deadline:
                out += self._remove(fw, now)
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
        for key, task in list(self.tasks.items()):
            if task.framework_id == fw.id:  # TEARDOWN / failover timeout: the agents kill its tasks
                out.append(
                    ToAgent(
                        task.agent_id,
                        {
                            "type": "KILL_TASK",
                            "kill_task": {"framework_id": {"value": fw.id}, "task_id": {"value": task.id}},
                        },
                    )
                )
                del self.tasks[key]
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
        del self.completed_frameworks[:-50]  # --max_completed_frameworks
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
        launches = [
            op
            for op in payload.get("operations") or []
            if isinstance(op, dict) and op.get("type") == "LAUNCH"
        ]
        infos = [
            t
            for op in launches
            for t in (op.get("launch") or {}).get("task_infos") or []
            if isinstance(t, dict)
        ]
        if problem is not None:
            state = "TASK_DROPPED" if fw.partition_aware else "TASK_LOST"
            for o in offers:
                self.allocator.recover_resources(fw.id, o.agent_id, o.resources, role=o.role)
            for info in infos:
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
        for info in infos:
            tid = _value(info.get("task_id"))
            error = self._task_error(fw, info, tid, agent_id, available)
            if error is not None:
                status = events.task_status(
                    tid or "", "TASK_ERROR", now=now, reason="REASON_TASK_INVALID", message=error
                )
                out.append(ToFramework(fw.id, events.update(status)))
                continue
            assert tid is not None
            res = Resources.from_json(info["resources"])
            available = available - res
            task = Task(tid, fw.id, agent_id, role, info, res)
            task.statuses.append(
                events.task_status(tid, "TASK_STAGING", now=now, source="SOURCE_MASTER", agent_id=agent_id)
            )
            self.tasks[(fw.id, tid)] = task
            out.append(
                ToAgent(agent_id, {"type": "RUN_TASK", "run_task": {"framework": fw.info, "task": info}})
            )
        if not available.empty():  # what the operations did not use counts as declined
            self.allocator.decline(fw.id, agent_id, available, _refuse_seconds(payload), now, role=role)
        return out

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
        if task.state in TERMINAL:
            self.allocator.recover_resources(fid, agent_id, task.resources, role=task.role)
        forwarded = {k: v for k, v in status.items() if k != "framework_id"}
        return [ToFramework(fid, events.update(forwarded))]

    def _call_acknowledge(self, fw: Framework, payload: dict[str, Any], now: float) -> list[Output]:
        tid = _value(payload.get("task_id"))
        agent_id = _value(payload.get("agent_id"))
        task = self.tasks.get((fw.id, tid or ""))
        if task is not None and task.state in TERMINAL:
            del self.tasks[(fw.id, task.id)]  # acknowledged terminal state: the task is done
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
        state = "TASK_UNKNOWN" if fw.partition_aware else "TASK_LOST"
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
            state = "TASK_UNKNOWN" if fw.partition_aware else "TASK_LOST"
            agent_id = _value(item.get("agent_id"))
            status = events.task_status(
                task_id, state, now=now, reason="REASON_RECONCILIATION", agent_id=agent_id
            )
            out.append(ToFramework(fw.id, events.update(status)))
        return out


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
