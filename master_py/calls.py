"""Parsing and validating v1 scheduler API requests, with Mesos' status codes and messages.

Pure: headers and body in, a :class:`Call` or an :class:`ApiError` out.  Which framework is
subscribed, and with which stream id, is the master's state: :func:`check_stream` takes it as
arguments.  Messages follow ``src/master/http.cpp`` and ``src/master/validation.cpp`` so that
framework authors see the errors they would see from Mesos.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

JSON = "application/json"
PROTOBUF = "application/x-protobuf"

CALL_TYPES = (
    "SUBSCRIBE",
    "TEARDOWN",
    "ACCEPT",
    "DECLINE",
    "REVIVE",
    "KILL",
    "SHUTDOWN",
    "ACKNOWLEDGE",
    "RECONCILE",
    "MESSAGE",
    "REQUEST",
    "SUPPRESS",
    "ACCEPT_INVERSE_OFFERS",
    "DECLINE_INVERSE_OFFERS",
    "ACKNOWLEDGE_OPERATION_STATUS",
    "RECONCILE_OPERATIONS",
    "UPDATE_FRAMEWORK",
)
# Calls whose payload field must be present (the field is the lowercase type name).
_NEEDS_PAYLOAD = frozenset(
    {
        "SUBSCRIBE",
        "ACCEPT",
        "DECLINE",
        "KILL",
        "SHUTDOWN",
        "ACKNOWLEDGE",
        "RECONCILE",
        "MESSAGE",
        "REQUEST",
        "UPDATE_FRAMEWORK",
        "ACKNOWLEDGE_OPERATION_STATUS",
        "ACCEPT_INVERSE_OFFERS",
        "DECLINE_INVERSE_OFFERS",
    }
)
_STREAMING = frozenset({"SUBSCRIBE", "RECONCILE_OPERATIONS"})


class ApiError(Exception):
    """An HTTP error reply: status and Mesos' plain-text message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Call:
    type: str
    framework_id: str | None
    payload: dict[str, Any]  # the call's own field (``call["accept"]`` …), {} when absent
    raw: dict[str, Any]


def _media_type(value: str | None) -> str | None:
    return value.split(";", 1)[0].strip().lower() if value else None


def parse_call(content_type: str | None, accept: str | None, stream_id: str | None, body: bytes) -> Call:
    """Validate one request to ``/api/v1/scheduler``; raises :class:`ApiError` as Mesos would answer."""
    ctype = _media_type(content_type)
    if ctype is None:
        raise ApiError(400, "Expecting 'Content-Type' to be present")
    if ctype == PROTOBUF:
        raise ApiError(415, f"Content-Type {PROTOBUF} is not supported by this master; use {JSON}")
    if ctype != JSON:
        raise ApiError(415, f"Expecting 'Content-Type' of {JSON} or {PROTOBUF}")
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ApiError(400, f"Failed to parse body into JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "Failed to convert JSON into Call protobuf: Expecting a JSON object")
    call = _validate(doc)
    if call.type in _STREAMING and not _accepts_json(accept):
        raise ApiError(406, f"Expecting 'Accept' to allow {JSON} or {PROTOBUF}")
    if call.type == "SUBSCRIBE" and stream_id is not None:
        raise ApiError(400, "Subscribe calls should not include the 'Mesos-Stream-Id' header")
    return call


def _accepts_json(accept: str | None) -> bool:
    if not accept:
        return True
    kinds = {_media_type(part) for part in accept.split(",")}
    return bool(kinds & {JSON, "application/*", "*/*"})


def _field(doc: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ApiError(
            400,
            f"Failed to convert JSON into Call protobuf: Not expecting a JSON "
            f"{_json_kind(value)} for field '{name}'",
        )
    return value


def _json_kind(value: object) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    return "null"


def _id_value(obj: dict[str, Any] | None, name: str) -> str | None:
    if obj is None:
        return None
    value = obj.get("value")
    if not isinstance(value, str) or not value:
        raise ApiError(
            400, f"Failed to validate scheduler::Call: Expecting '{name}.value' to be a non-empty string"
        )
    return value


def _validate(doc: dict[str, Any]) -> Call:
    ctype = doc.get("type")
    if ctype is None:
        raise ApiError(400, "Failed to validate scheduler::Call: Expecting 'type' to be present")
    if ctype not in CALL_TYPES:
        raise ApiError(
            400, f"Failed to convert JSON into Call protobuf: Invalid value {ctype!r} for enum 'type'"
        )
    framework_id = _id_value(_field(doc, "framework_id"), "framework_id")
    key = ctype.lower()
    payload = _field(doc, key)
    if ctype in _NEEDS_PAYLOAD and payload is None:
        raise ApiError(400, f"Failed to validate scheduler::Call: Expecting '{key}' to be present")
    if ctype == "SUBSCRIBE":
        assert payload is not None
        info = _field(payload, "framework_info")
        if info is None:
            raise ApiError(
                400, "Failed to validate scheduler::Call: Expecting 'framework_info' to be present"
            )
        if not isinstance(info.get("user"), str) or not isinstance(info.get("name"), str):
            raise ApiError(
                400,
                "Failed to validate scheduler::Call: Expecting 'framework_info.user' and "
                "'framework_info.name' to be present",
            )
        info_id = _id_value(_field(info, "id"), "framework_info.id")
        if framework_id is not None and info_id != framework_id:
            raise ApiError(
                400,
                "Failed to validate scheduler::Call: 'framework_id' differs from "
                "'subscribe.framework_info.id'",
            )
    elif framework_id is None:
        raise ApiError(400, "Failed to validate scheduler::Call: Expecting 'framework_id' to be present")
    return Call(ctype, framework_id, payload or {}, doc)


def check_stream(call: Call, known: bool, subscribed_stream: str | None, stream_id: str | None) -> None:
    """Non-SUBSCRIBE calls: the framework must exist, be subscribed, and the stream id must match."""
    if call.type == "SUBSCRIBE":
        return
    if not known:
        raise ApiError(400, "Framework cannot be found")
    if subscribed_stream is None:
        raise ApiError(403, "Framework is not subscribed")
    if stream_id is None:
        raise ApiError(400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header")
    if stream_id != subscribed_stream:
        raise ApiError(
            400,
            f"The stream ID '{stream_id}' included in this request didn't match the stream ID currently "
            f"associated with framework ID {call.framework_id}",
        )


def new_stream_id() -> str:
    return str(uuid.uuid4())
