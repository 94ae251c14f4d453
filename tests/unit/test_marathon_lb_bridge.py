"""The pure parts of marathon_py.lb's edges: SSE framing, event types, the reconnect backoff and HAProxy's
``show proc`` (reference §3, §9.2)."""

from __future__ import annotations

import itertools
import json
import logging
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marathon_py.lb.bridge import Backoff, Outage, SseParser, event_type
from marathon_py.lb.cli import CREDENTIALS_VARIABLE, parse
from marathon_py.lb.haproxy import HAProxyError, parse_show_proc

MARATHON_STREAM = (
    b":\r\n"  # Jetty's heartbeat
    b"event: event_stream_attached\r\n"
    b'data: {"remoteAddress":"127.0.0.1","eventType":"event_stream_attached"}\r\n\r\n'
    b"event: status_update_event\r\n"
    b'data: {"taskStatus":"TASK_RUNNING","eventType":"status_update_event"}\r\n\r\n'
    b"\r\n"  # a bare CRLF heartbeat is an empty frame: nothing
    b'data: {"eventType":"health_status_changed_event","alive":false}\n\n'
)


def test_sse_frames_from_marathon() -> None:
    frames = SseParser().feed(MARATHON_STREAM)
    assert [event_type(name, data) for name, data in frames] == [
        "event_stream_attached",
        "status_update_event",
        "health_status_changed_event",  # no ``event:`` line: the payload's eventType
    ]
    assert json.loads(frames[1][1])["taskStatus"] == "TASK_RUNNING"


@given(st.lists(st.integers(min_value=1, max_value=len(MARATHON_STREAM)), max_size=12))
def test_sse_frames_do_not_depend_on_chunking(cuts: list[int]) -> None:
    """TCP may split anywhere, also between the CR and LF of one line ending, or inside a UTF-8 character."""
    stream = MARATHON_STREAM + 'event: api_post_event\r\ndata: {"uri":"/v2/apps/ü"}\r\n\r\n'.encode()
    expected = SseParser().feed(stream)
    parser = SseParser()
    got = []
    edges = [0, *sorted(set(cuts)), len(stream)]
    for start, end in itertools.pairwise(edges):
        got += parser.feed(stream[start:end])
    assert got == expected and len(expected) == 4


def test_sse_line_limit_bounds_memory() -> None:
    parser = SseParser(limit=100)
    with pytest.raises(ValueError):
        parser.feed(b"data: " + b"x" * 200)


def test_event_type_of_unparsable_data_is_empty() -> None:
    assert event_type("", "not json") == "" and event_type("", "[1]") == ""


def test_backoff_grows_by_half_up_to_the_cap_and_resets() -> None:
    rng = random.Random(1)
    backoff = Backoff(initial=3.0, maximum=10.0)
    waits = [backoff.next_wait(rng) for _ in range(6)]
    caps = [3.0, 4.5, 6.75, 10.0, 10.0, 10.0]
    assert all(0 <= w < cap for w, cap in zip(waits, caps, strict=True))
    assert backoff.current == 10.0
    backoff.reset()
    assert backoff.current == 3.0


SHOW_PROC_AFTER_A_FAILED_RELOAD = """\
#<PID>          <type>          <reloads>       <uptime>        <version>
32109           master          2 [failed: 1]   0d00h10m19s     2.6.12-1+deb12u4
# workers
32318           worker          1               0d00h10m16s     2.6.12-1+deb12u4
# programs

"""


def test_show_proc_of_haproxy_2_6() -> None:
    state = parse_show_proc(SHOW_PROC_AFTER_A_FAILED_RELOAD)
    assert (state.master, state.reloads, state.failed) == (32109, 2, 1)
    assert state.workers == ((32318, 1),)
    assert state.newest_worker is None  # the surviving worker predates the last (failed) reload
    fresh = parse_show_proc(
        SHOW_PROC_AFTER_A_FAILED_RELOAD.replace("32318           worker          1", "40001  worker  0")
    )
    assert fresh.newest_worker == 40001
    with pytest.raises(HAProxyError):
        parse_show_proc("Unknown command\n")


def test_credentials_from_the_flag_or_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--marathon", "http://127.0.0.1:8080"]
    env = {CREDENTIALS_VARIABLE: "lb:from-env"}
    assert parse(base).auth_credentials is None
    assert parse(base, env).auth_credentials == ("lb", "from-env")
    assert parse([*base, "--auth-credentials", "lb:flag"], env).auth_credentials == ("lb", "flag")
    with pytest.raises(SystemExit) as exited:
        parse(base, {CREDENTIALS_VARIABLE: "no-colon"})
    assert exited.value.code == 2 and CREDENTIALS_VARIABLE in capsys.readouterr().err


def test_an_outage_is_one_error_then_reminders_then_one_recovery_line() -> None:
    outage = Outage(remind=60.0)
    assert outage.succeeded(0.0) is None  # no outage, nothing to say
    levels = [outage.failed(t)[0] for t in (100.0, 105.0, 110.0, 160.0, 165.0, 220.0)]
    error, warning, debug = logging.ERROR, logging.WARNING, logging.DEBUG
    assert levels == [error, debug, debug, warning, debug, warning]
    assert outage.failed(280.0)[1] == "sync still failing after 180s"
    assert outage.succeeded(290.0) == "sync works again after 190s"
    assert outage.failed(300.0)[0] == logging.ERROR  # a new outage is loud again
