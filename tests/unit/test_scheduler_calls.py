"""The v1 scheduler API's request validation: Mesos' status codes and messages for bad input."""

from __future__ import annotations

import json

import pytest

from master_py.calls import ApiError, check_stream, parse_call

FID = {"value": "m-0001"}
SUB = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "root", "name": "f"}}}


def call(
    doc: object, ctype: str | None = "application/json", accept: str | None = None, stream: str | None = None
):
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return parse_call(ctype, accept, stream, body)


def err(doc: object, **kw: object) -> ApiError:
    with pytest.raises(ApiError) as e:
        call(doc, **kw)  # type: ignore[arg-type]
    return e.value


def test_subscribe_and_other_calls_parse() -> None:
    c = call(SUB)
    assert (c.type, c.framework_id) == ("SUBSCRIBE", None)
    c = call({"type": "DECLINE", "framework_id": FID, "decline": {"offer_ids": []}})
    assert (c.type, c.framework_id, c.payload) == ("DECLINE", "m-0001", {"offer_ids": []})
    assert call({"type": "REVIVE", "framework_id": FID}).payload == {}
    assert call(SUB, ctype="application/json; charset=utf-8").type == "SUBSCRIBE"


@pytest.mark.parametrize(
    "doc,kw,status,message",
    [
        (SUB, {"ctype": None}, 400, "Expecting 'Content-Type' to be present"),
        (SUB, {"ctype": "text/plain"}, 415, "Expecting 'Content-Type' of application/json"),
        (b"{not json", {}, 400, "Failed to parse body into JSON"),
        (b"\xff\xfe", {}, 400, "Failed to parse body into JSON"),
        ([1, 2], {}, 400, "Expecting a JSON object"),
        ({"framework_id": FID}, {}, 400, "Expecting 'type' to be present"),
        ({"type": "LAUNCH_ROCKETS", "framework_id": FID}, {}, 400, "Invalid value"),
        ({"type": "TEARDOWN"}, {}, 400, "Expecting 'framework_id' to be present"),
        (
            {"type": "TEARDOWN", "framework_id": "m-0001"},
            {},
            400,
            "Not expecting a JSON string for field 'framework_id'",
        ),
        ({"type": "TEARDOWN", "framework_id": {"value": ""}}, {}, 400, "non-empty string"),
        ({"type": "ACCEPT", "framework_id": FID}, {}, 400, "Expecting 'accept' to be present"),
        ({"type": "ACCEPT", "framework_id": FID, "accept": []}, {}, 400, "JSON array for field 'accept'"),
        ({"type": "SUBSCRIBE", "subscribe": {}}, {}, 400, "Expecting 'framework_info' to be present"),
        (
            {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"name": "x"}}},
            {},
            400,
            "'framework_info.user'",
        ),
        (
            {**SUB, "framework_id": {"value": "other"}},
            {},
            400,
            "'framework_id' differs from 'subscribe.framework_info.id'",
        ),
        (SUB, {"accept": "text/html"}, 406, "Expecting 'Accept'"),
        (
            SUB,
            {"stream": "5b3f0b56-7b47-4bbd-9f0f-0d3d76e2c7a1"},
            400,
            "should not include the 'Mesos-Stream-Id'",
        ),
    ],
)
def test_bad_requests_get_mesos_errors(doc: object, kw: dict[str, object], status: int, message: str) -> None:
    e = err(doc, **kw)
    assert e.status == status and message in e.message


def test_stream_rules_for_non_subscribe_calls() -> None:
    c = call({"type": "REVIVE", "framework_id": FID})
    with pytest.raises(ApiError, match="Framework cannot be found") as e:
        check_stream(c, known=False, subscribed_stream=None, stream_id="s")
    assert e.value.status == 400
    with pytest.raises(ApiError, match="not subscribed") as e:
        check_stream(c, known=True, subscribed_stream=None, stream_id="s")
    assert e.value.status == 403
    with pytest.raises(ApiError, match="should include the 'Mesos-Stream-Id'"):
        check_stream(c, known=True, subscribed_stream="s", stream_id=None)
    with pytest.raises(ApiError, match="didn't match the stream ID"):
        check_stream(c, known=True, subscribed_stream="s", stream_id="t")
    check_stream(c, known=True, subscribed_stream="s", stream_id="s")
    check_stream(call(SUB), known=False, subscribed_stream=None, stream_id=None)
