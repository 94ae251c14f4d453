"""paas_common.schedapi: v1 scheduler calls and events.

Shapes are compared with shared/reference/mesos.md §2.2/§2.3 and cross-checked against master_py: every call
built here, stamped with a framework id, passes master_py's request validation, and every event master_py
renders decodes into the expected record.
"""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from master_py import events
from master_py.calls import parse_call
from paas_common import schedapi as sc

FID = "5e7e0c51-0000-4000-8000-000000000001-0000"
UUID_B64 = base64.b64encode(bytes(range(16))).decode()


def validated(call: dict[str, Any]) -> dict[str, Any]:
    """The call as master_py parses it (raises ApiError if master_py would answer 4xx)."""
    stamped = sc.stamp(call, FID) if call["type"] != "SUBSCRIBE" else call
    parsed = parse_call("application/json", "application/json", None, json.dumps(stamped).encode())
    return parsed.raw


# ---------------------------------------------------------------------------------------------- calls


def test_subscribe_new_and_known_framework() -> None:
    info = {"user": "u", "name": "fw", "hostname": "h", "roles": ["web", "*"], "failover_timeout": 60.0}
    new = validated(sc.subscribe(info))
    assert new == {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
    again = validated(sc.subscribe({**info, "id": {"value": "stale"}}, FID, suppressed_roles=["web"]))
    assert again["framework_id"] == {"value": FID}
    assert again["subscribe"]["framework_info"]["id"] == {"value": FID}
    assert again["subscribe"]["suppressed_roles"] == ["web"]
    assert info.get("id") is None  # the template is not modified


def test_stamp_adds_the_framework_id_without_touching_the_call() -> None:
    call = sc.revive(["web"])
    assert sc.stamp(call, FID) == {**call, "framework_id": {"value": FID}}
    assert "framework_id" not in call


def test_accept_launch_with_filters() -> None:
    task = {"name": "t", "task_id": {"value": "t1"}, "agent_id": {"value": "a1"}, "resources": []}
    call = validated(sc.accept(["o1", "o2"], [sc.launch([task])], refuse_seconds=120))
    assert call == {
        "type": "ACCEPT",
        "framework_id": {"value": FID},
        "accept": {
            "offer_ids": [{"value": "o1"}, {"value": "o2"}],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}],
            "filters": {"refuse_seconds": 120.0},
        },
    }
    assert "filters" not in sc.accept(["o1"], [])["accept"]


def test_decline_revive_suppress() -> None:
    assert validated(sc.decline(["o1"], 120.0))["decline"] == {
        "offer_ids": [{"value": "o1"}],
        "filters": {"refuse_seconds": 120.0},
    }
    assert validated(sc.revive()) == {"type": "REVIVE", "framework_id": {"value": FID}}
    assert validated(sc.revive(["web"]))["revive"] == {"roles": ["web"]}
    assert validated(sc.suppress()) == {"type": "SUPPRESS", "framework_id": {"value": FID}}
    assert validated(sc.suppress(["*", "web"]))["suppress"] == {"roles": ["*", "web"]}


def test_kill_with_and_without_policy() -> None:
    assert validated(sc.kill("t1"))["kill"] == {"task_id": {"value": "t1"}}
    assert validated(sc.kill("t1", "a1", grace_period_seconds=2.5))["kill"] == {
        "task_id": {"value": "t1"},
        "agent_id": {"value": "a1"},
        "kill_policy": {"grace_period": {"nanoseconds": 2_500_000_000}},
    }


def test_acknowledge_reconcile_teardown() -> None:
    assert validated(sc.acknowledge("a1", "t1", UUID_B64))["acknowledge"] == {
        "agent_id": {"value": "a1"},
        "task_id": {"value": "t1"},
        "uuid": UUID_B64,
    }
    assert validated(sc.reconcile())["reconcile"] == {"tasks": []}  # implicit
    assert validated(sc.reconcile([("t1", "a1"), ("t2", None)]))["reconcile"] == {
        "tasks": [{"task_id": {"value": "t1"}, "agent_id": {"value": "a1"}}, {"task_id": {"value": "t2"}}]
    }
    assert validated(sc.teardown()) == {"type": "TEARDOWN", "framework_id": {"value": FID}}


def test_acknowledgement_only_for_updates_with_uuid() -> None:
    agent = events.task_status("t1", "TASK_RUNNING", now=1.0, source="SOURCE_EXECUTOR", agent_id="a1")
    agent["uuid"] = UUID_B64
    status = sc.task_status(agent)
    assert status.needs_ack
    assert sc.acknowledgement(status) == sc.acknowledge("a1", "t1", UUID_B64)
    reconciled = sc.task_status(events.task_status("t1", "TASK_RUNNING", now=1.0, agent_id="a1"))
    assert not reconciled.needs_ack and sc.acknowledgement(reconciled) is None


# ---------------------------------------------------------------------------------------------- events


def record(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def test_subscribed() -> None:
    info = {"id": "m", "address": {"ip": "127.0.0.1", "port": 5050}}
    event = sc.decode_event(record(events.subscribed(FID, info)))
    assert event == sc.Subscribed(FID, 15.0)
    assert isinstance(event, sc.Subscribed) and event.master_info == info
    announced = sc.decode_event(record(events.subscribed(FID, info, heartbeat_interval=2.5)))
    assert announced == sc.Subscribed(FID, 2.5)  # the master's --heartbeat interval, as it sends them
    bare = {"type": "SUBSCRIBED", "subscribed": {"framework_id": {"value": FID}}}
    assert sc.event_from_json(bare) == sc.Subscribed(FID, sc.DEFAULT_HEARTBEAT_S)


def test_offers_are_nested_and_kept_as_json() -> None:
    offer = {"id": {"value": "o1"}, "agent_id": {"value": "a1"}, "hostname": "h", "resources": []}
    event = sc.decode_event(record(events.offers([offer])))
    assert event == sc.Offers((offer,))
    assert sc.offer_id(offer) == "o1"
    with pytest.raises(sc.EventError):  # the docs' bare list (mesos.md §2.6) is not what Mesos sends
        sc.event_from_json({"type": "OFFERS", "offers": [offer]})


def test_update_rescind_failure_error_heartbeat_message() -> None:
    status = events.task_status(
        "t1", "TASK_FAILED", now=2.5, source="SOURCE_EXECUTOR", reason="REASON_COMMAND_EXECUTOR_FAILED",
        message="exit 3", agent_id="a1", uuid=bytes(range(16)),
    )  # fmt: skip
    status["executor_id"] = {"value": "t1"}
    update = sc.decode_event(record(events.update(status)))
    assert isinstance(update, sc.Update)
    assert update.status == sc.TaskStatus(
        "t1", "TASK_FAILED", "a1", "t1", UUID_B64, "SOURCE_EXECUTOR", "REASON_COMMAND_EXECUTOR_FAILED",
        "exit 3", None, 2.5,
    )  # fmt: skip
    assert update.status.raw == status
    assert sc.decode_event(record(events.rescind("o9"))) == sc.Rescind("o9")
    assert sc.decode_event(record(events.failure("a1"))) == sc.Failure("a1")
    assert sc.decode_event(record(events.failure("a1", "e1", 9))) == sc.Failure("a1", "e1", 9)
    assert sc.decode_event(record(events.error("Framework has been removed"))) == sc.Error(
        "Framework has been removed"
    )
    assert sc.decode_event(b'{"type":"HEARTBEAT"}') == sc.Heartbeat()
    msg = {
        "agent_id": {"value": "a1"},
        "executor_id": {"value": "e1"},
        "data": base64.b64encode(b"hi").decode(),
    }
    assert sc.event_from_json({"type": "MESSAGE", "message": msg}) == sc.Message("a1", "e1", b"hi")


def test_unused_events_pass_through() -> None:
    doc = {"type": "UPDATE_OPERATION_STATUS", "update_operation_status": {"status": {}}}
    assert sc.event_from_json(doc) == sc.Other("UPDATE_OPERATION_STATUS", doc)


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1]",
        b'{"kind": "HEARTBEAT"}',
        b'{"type": "UPDATE"}',  # payload missing
        b'{"type": "UPDATE", "update": {"status": {"state": "TASK_RUNNING"}}}',  # no task_id
        b'{"type": "UPDATE", "update": {"status": {"task_id": {"value": "t"}, "state": "TASK_RUNNING",'
        b' "healthy": "yes"}}}',
        b'{"type": "SUBSCRIBED", "subscribed": {"framework_id": "x"}}',
        b'{"type": "FAILURE", "failure": {"agent_id": {"value": "a"}, "status": true}}',
        b'{"type": "MESSAGE", "message": {"agent_id": {"value": "a"}, "executor_id": {"value": "e"},'
        b' "data": "***"}}',
        b'{"type": "RESCIND", "rescind": {"offer_id": {"value": ""}}}',
    ],
)
def test_malformed_events_are_rejected(raw: bytes) -> None:
    with pytest.raises(sc.EventError):
        sc.decode_event(raw)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["value", "state", "task_id", "offers", "id", "status", "data"]), inner
        )
    ),
    max_leaves=12,
)
TYPES = ["SUBSCRIBED", "OFFERS", "RESCIND", "UPDATE", "MESSAGE", "FAILURE", "ERROR", "HEARTBEAT", "X"]


@given(st.sampled_from(TYPES), JSONISH)
def test_decoding_never_fails_otherwise(kind: str, payload: Any) -> None:
    """Whatever arrives, the decoder answers with a record or EventError, never another exception."""
    with contextlib.suppress(sc.EventError):
        sc.event_from_json({"type": kind, kind.lower(): payload})
