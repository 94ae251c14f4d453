"""The v1 scheduler API as pure data: Call JSON builders, and Event decoding into small records.

Shared by every framework here (marathon_py's client, ``paasctl run``'s one-shot framework).  Shapes are
Mesos' JSON (shared/reference/mesos.md §2.2 calls, §2.3 events, §2.5 messages, §2.6 conventions): ids as
``{"value": …}``, enums by name, bytes as base64.  Builders leave out ``framework_id``: the id is known
only once SUBSCRIBED arrives, so whoever holds it stamps each call (:func:`stamp`) and the logic that
builds calls never needs it.  Offers stay Mesos JSON dicts (offer matchers read them as such); every
other event is decoded into a frozen record, and a record that breaks the protocol is an
:class:`EventError`.  A framework's own FrameworkInfo is its own business (marathon_py.schedcalls).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

JsonObj = dict[str, Any]

DEFAULT_HEARTBEAT_S = 15.0  # DEFAULT_HEARTBEAT_INTERVAL, when SUBSCRIBED does not say


class EventError(ValueError):
    """A record on the event stream that is not a v1 scheduler Event."""


# ---------------------------------------------------------------------------------------------- calls


def subscribe(
    info: Mapping[str, Any], framework_id: str | None = None, suppressed_roles: Iterable[str] = ()
) -> JsonObj:
    """SUBSCRIBE; a known framework id goes both top-level and in ``framework_info.id`` (they must agree)."""
    info = dict(info)
    info.pop("id", None)
    call: JsonObj = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
    if framework_id is not None:
        info["id"] = {"value": framework_id}
        call["framework_id"] = {"value": framework_id}
    suppressed = list(suppressed_roles)
    if suppressed:
        call["subscribe"]["suppressed_roles"] = suppressed
    return call


def stamp(call: Mapping[str, Any], framework_id: str) -> JsonObj:
    """The call as sent: with the subscribed framework's id."""
    return {**call, "framework_id": {"value": framework_id}}


def _ids(values: Iterable[str]) -> list[JsonObj]:
    return [{"value": v} for v in values]


def _with_filters(payload: JsonObj, refuse_seconds: float | None) -> JsonObj:
    if refuse_seconds is not None:
        payload["filters"] = {"refuse_seconds": float(refuse_seconds)}
    return payload


def launch(task_infos: Iterable[Mapping[str, Any]]) -> JsonObj:
    """Offer operation LAUNCH (TaskInfos carry their ``agent_id``: the offer's)."""
    return {"type": "LAUNCH", "launch": {"task_infos": [dict(t) for t in task_infos]}}


def accept(
    offer_ids: Iterable[str], operations: Iterable[Mapping[str, Any]], refuse_seconds: float | None = None
) -> JsonObj:
    """ACCEPT; what the operations leave of the offers counts as declined for ``refuse_seconds``."""
    payload = {"offer_ids": _ids(offer_ids), "operations": [dict(o) for o in operations]}
    return {"type": "ACCEPT", "accept": _with_filters(payload, refuse_seconds)}


def decline(offer_ids: Iterable[str], refuse_seconds: float | None = None) -> JsonObj:
    """DECLINE (Marathon: ``--decline_offer_duration`` 120 s; Mesos' default filter is 5 s)."""
    return {"type": "DECLINE", "decline": _with_filters({"offer_ids": _ids(offer_ids)}, refuse_seconds)}


def _roles_call(kind: str, roles: Iterable[str]) -> JsonObj:
    listed = list(roles)
    return {"type": kind, kind.lower(): {"roles": listed}} if listed else {"type": kind}


def revive(roles: Iterable[str] = ()) -> JsonObj:
    """REVIVE: un-suppress and clear filters (no roles: all subscribed roles)."""
    return _roles_call("REVIVE", roles)


def suppress(roles: Iterable[str] = ()) -> JsonObj:
    """SUPPRESS: no offers for these roles (no roles: all) until REVIVE."""
    return _roles_call("SUPPRESS", roles)


def kill(task_id: str, agent_id: str | None = None, grace_period_seconds: float | None = None) -> JsonObj:
    """KILL; a grace period overrides the task's kill policy (SIGTERM → SIGKILL)."""
    payload: JsonObj = {"task_id": {"value": task_id}}
    if agent_id is not None:
        payload["agent_id"] = {"value": agent_id}
    if grace_period_seconds is not None:
        payload["kill_policy"] = {"grace_period": {"nanoseconds": round(grace_period_seconds * 1e9)}}
    return {"type": "KILL", "kill": payload}


def acknowledge(agent_id: str, task_id: str, uuid: str) -> JsonObj:
    """ACKNOWLEDGE one status update (``uuid`` as received: base64)."""
    payload = {"agent_id": {"value": agent_id}, "task_id": {"value": task_id}, "uuid": uuid}
    return {"type": "ACKNOWLEDGE", "acknowledge": payload}


def reconcile(tasks: Iterable[tuple[str, str | None]] = ()) -> JsonObj:
    """RECONCILE: explicit for ``(task_id, agent_id)`` pairs, implicit (every task) when there are none."""
    listed = []
    for task_id, agent_id in tasks:
        entry: JsonObj = {"task_id": {"value": task_id}}
        if agent_id is not None:
            entry["agent_id"] = {"value": agent_id}
        listed.append(entry)
    return {"type": "RECONCILE", "reconcile": {"tasks": listed}}


def teardown() -> JsonObj:
    """TEARDOWN: the master kills every task of the framework and forgets it."""
    return {"type": "TEARDOWN"}


# ---------------------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """The fields a scheduler decides on; ``raw`` keeps the rest (labels, container_status, data…)."""

    task_id: str
    state: str
    agent_id: str | None = None
    executor_id: str | None = None
    uuid: str | None = None  # base64; None on master-generated updates (reconciliation, invalid offers)
    source: str | None = None
    reason: str | None = None
    message: str | None = None
    healthy: bool | None = None
    timestamp: float | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def needs_ack(self) -> bool:
        """Only updates with a uuid are acknowledged (and they always name their agent)."""
        return bool(self.uuid) and self.agent_id is not None


def acknowledgement(status: TaskStatus) -> JsonObj | None:
    """The ACKNOWLEDGE a status asks for, or None when it asks for none."""
    if not status.needs_ack:
        return None
    assert status.agent_id is not None and status.uuid is not None
    return acknowledge(status.agent_id, status.task_id, status.uuid)


@dataclass(frozen=True, slots=True)
class Subscribed:
    framework_id: str
    heartbeat_interval: float = DEFAULT_HEARTBEAT_S
    master_info: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class Offers:
    offers: tuple[Mapping[str, Any], ...]  # Mesos Offer JSON


@dataclass(frozen=True, slots=True)
class Rescind:
    offer_id: str


@dataclass(frozen=True, slots=True)
class Update:
    status: TaskStatus


@dataclass(frozen=True, slots=True)
class Message:
    agent_id: str
    executor_id: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Failure:
    """No executor id: the agent is lost; else the executor ended (with ``status`` when known)."""

    agent_id: str | None
    executor_id: str | None = None
    status: int | None = None


@dataclass(frozen=True, slots=True)
class Error:
    """Unrecoverable for this subscription: a scheduler aborts (Marathon crashes) on it."""

    message: str


@dataclass(frozen=True, slots=True)
class Heartbeat:
    pass


@dataclass(frozen=True, slots=True)
class Other:
    """An event with no record of its own here (inverse offers, operation status updates): kept raw."""

    type: str
    raw: Mapping[str, Any] = field(compare=False)


Event = Subscribed | Offers | Rescind | Update | Message | Failure | Error | Heartbeat | Other


def _id(obj: Any, what: str) -> str:
    if isinstance(obj, dict) and isinstance(obj.get("value"), str) and obj["value"]:
        return str(obj["value"])
    raise EventError(f"expected '{what}' as {{\"value\": <non-empty string>}}, got {obj!r:.80}")


def _opt_id(obj: Any, what: str) -> str | None:
    return None if obj is None else _id(obj, what)


def _opt(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = obj.get(key)
    if value is not None and (not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)):
        raise EventError(f"'{key}' has the wrong type: {value!r:.80}")
    return value


def task_status(doc: Any) -> TaskStatus:
    """A TaskStatus JSON object → :class:`TaskStatus`."""
    if not isinstance(doc, dict) or not isinstance(doc.get("state"), str):
        raise EventError(f"expected a TaskStatus with a 'state', got {doc!r:.80}")
    timestamp = _opt(doc, "timestamp", (int, float))
    return TaskStatus(
        task_id=_id(doc.get("task_id"), "status.task_id"),
        state=doc["state"],
        agent_id=_opt_id(doc.get("agent_id"), "status.agent_id"),
        executor_id=_opt_id(doc.get("executor_id"), "status.executor_id"),
        uuid=_opt(doc, "uuid", str) or None,
        source=_opt(doc, "source", str),
        reason=_opt(doc, "reason", str),
        message=_opt(doc, "message", str),
        healthy=_opt(doc, "healthy", bool),
        timestamp=None if timestamp is None else float(timestamp),
        raw=doc,
    )


def _subscribed(body: JsonObj) -> Subscribed:
    interval = _opt(body, "heartbeat_interval_seconds", (int, float))
    info = _opt(body, "master_info", dict) or {}
    return Subscribed(
        _id(body.get("framework_id"), "framework_id"),
        DEFAULT_HEARTBEAT_S if interval is None else float(interval),
        info,
    )


def _offers(body: JsonObj) -> Offers:
    offers = body.get("offers")
    if not isinstance(offers, list) or not all(isinstance(o, dict) for o in offers):
        raise EventError("OFFERS without an 'offers.offers' list of objects")
    for o in offers:
        _id(o.get("id"), "offer.id")
    return Offers(tuple(offers))


def _message(body: JsonObj) -> Message:
    try:
        data = base64.b64decode(_opt(body, "data", str) or "", validate=True)
    except binascii.Error as e:
        raise EventError(f"MESSAGE data is not base64: {e}") from None
    return Message(_id(body.get("agent_id"), "agent_id"), _id(body.get("executor_id"), "executor_id"), data)


def _failure(body: JsonObj) -> Failure:
    return Failure(
        _opt_id(body.get("agent_id"), "agent_id"),
        _opt_id(body.get("executor_id"), "executor_id"),
        _opt(body, "status", int),
    )


_DECODERS: dict[str, Callable[[JsonObj], Event]] = {
    "SUBSCRIBED": _subscribed,
    "OFFERS": _offers,
    "RESCIND": lambda b: Rescind(_id(b.get("offer_id"), "offer_id")),
    "UPDATE": lambda b: Update(task_status(b.get("status"))),
    "MESSAGE": _message,
    "FAILURE": _failure,
    "ERROR": lambda b: Error(str(_opt(b, "message", str) or "")),
}


def event_from_json(doc: Any) -> Event:
    """An Event object → its record (every event but HEARTBEAT has its payload under its lowercase type)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise EventError(f"not a scheduler event: {doc!r:.80}")
    kind = doc["type"]
    if kind == "HEARTBEAT":
        return Heartbeat()
    decoder = _DECODERS.get(kind)
    if decoder is None:
        return Other(kind, doc)
    body = doc.get(kind.lower())
    if not isinstance(body, dict):
        raise EventError(f"{kind} event without its '{kind.lower()}' object")
    return decoder(body)


def decode_event(record: bytes) -> Event:
    """One RecordIO record → its event record."""
    try:
        doc = json.loads(record)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EventError(f"event is not JSON ({e}): {record[:80]!r}") from None
    return event_from_json(doc)


def offer_id(offer: Mapping[str, Any]) -> str:
    return _id(offer.get("id"), "offer.id")
