"""Scheduler API events as Mesos renders them in JSON (reference §2.3; note the nested OFFERS)."""

from __future__ import annotations

import base64
from typing import Any

HEARTBEAT_INTERVAL_S = 15.0  # DEFAULT_HEARTBEAT_INTERVAL

Event = dict[str, Any]


def subscribed(
    framework_id: str, master_info: dict[str, Any], heartbeat_interval: float = HEARTBEAT_INTERVAL_S
) -> Event:
    """SUBSCRIBED announces the interval the master sends HEARTBEATs at: schedulers that see nothing for
    a few intervals take the stream for dead, so it must be the one the master really uses."""
    return {
        "type": "SUBSCRIBED",
        "subscribed": {
            "framework_id": {"value": framework_id},
            "heartbeat_interval_seconds": heartbeat_interval,
            "master_info": master_info,
        },
    }


def heartbeat() -> Event:
    return {"type": "HEARTBEAT"}


def error(message: str) -> Event:
    return {"type": "ERROR", "error": {"message": message}}


def offers(offer_list: list[dict[str, Any]]) -> Event:
    return {"type": "OFFERS", "offers": {"offers": offer_list}}


def rescind(offer_id: str) -> Event:
    return {"type": "RESCIND", "rescind": {"offer_id": {"value": offer_id}}}


def update(status: dict[str, Any]) -> Event:
    return {"type": "UPDATE", "update": {"status": status}}


def failure(agent_id: str, executor_id: str | None = None, status: int | None = None) -> Event:
    body: dict[str, Any] = {"agent_id": {"value": agent_id}}
    if executor_id is not None:
        body["executor_id"] = {"value": executor_id}
    if status is not None:
        body["status"] = status
    return {"type": "FAILURE", "failure": body}


def task_status(
    task_id: str,
    state: str,
    *,
    now: float,
    source: str = "SOURCE_MASTER",
    reason: str | None = None,
    message: str | None = None,
    agent_id: str | None = None,
    uuid: bytes | None = None,
    healthy: bool | None = None,
) -> dict[str, Any]:
    """A TaskStatus; master-generated ones carry no uuid (so frameworks do not acknowledge them)."""
    status: dict[str, Any] = {
        "task_id": {"value": task_id},
        "state": state,
        "source": source,
        "timestamp": now,
    }
    if reason is not None:
        status["reason"] = reason
    if message is not None:
        status["message"] = message
    if agent_id is not None:
        status["agent_id"] = {"value": agent_id}
    if uuid is not None:
        status["uuid"] = base64.b64encode(uuid).decode()
    if healthy is not None:
        status["healthy"] = healthy
    return status
