"""paasctl's Marathon commands without a cluster: tables, error lines, the deployment progress fold and its
frames from scripted event sequences, verdicts, SSE decoding, argument parsing, and the wait loop driven
by a scripted Marathon (paasctl.marathonformat, paasctl.progress, paasctl.marathonhttp,
paasctl.marathonwait).

Samples follow the reference's documented shapes (shared/reference/marathon.md §1.5, §2.1, §2.3, §2.4, §3),
not only what marathon-py serves today.
"""

from __future__ import annotations

import io
import json
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paasctl import marathon, marathonformat, marathonwait, progress
from paasctl.cli import build_parser
from paasctl.common import EXIT_CONNECTION, EXIT_FAILED, EXIT_TIMEOUT, CliError, UsageError
from paasctl.marathonhttp import SseDecoder, StreamEnded, basic_auth, decode_event
from paasctl.progress import Progress

DEP = "97c136bf-5a14-4d13-8d9a-2a8d1f9b1c41"
OTHER = "5ed4c0c5-9ff8-4a6f-a0cd-f57f59a34b43"
V1, V2, V3 = "2015-09-29T15:59:51.164Z", "2015-09-30T09:09:17.614Z", "2015-10-01T10:00:00.000Z"

APP: dict[str, Any] = {
    "id": "/web",
    "cmd": "sleep 600",
    "cpus": 0.1,
    "mem": 32.0,
    "disk": 0.0,
    "instances": 3,
    "healthChecks": [],
    "version": V2,
    "versionInfo": {"lastScalingAt": V2, "lastConfigChangeAt": V1},
    "tasksStaged": 0,
    "tasksRunning": 3,
    "tasksHealthy": 0,
    "tasksUnhealthy": 0,
    "deployments": [],
}
TASK: dict[str, Any] = {
    "appId": "/web",
    "id": "web.instance-0b7c3a9e-0f1e-11ee-8e3a-0242ac110002._app.1",
    "host": "127.0.0.1",
    "ipAddresses": [{"ipAddress": "127.0.0.1", "protocol": "IPv4"}],
    "ports": [31001],
    "slaveId": "m1-S0",
    "state": "TASK_RUNNING",
    "stagedAt": "2015-09-30T09:09:18.000Z",
    "startedAt": "2015-09-30T09:09:19.000Z",
    "version": V2,
    "healthCheckResults": [{"alive": True, "consecutiveFailures": 0}],
}


def step(*actions: tuple[str, str]) -> dict[str, Any]:
    return {"actions": [{"action": a, "app": app} for a, app in actions]}


SCALE = step(("ScaleApplication", "/web"))
PLAN = {"id": DEP, "steps": [SCALE], "version": V2}


def listed(current: int, total: int = 1, actions: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    return [
        {
            "id": DEP,
            "version": V2,
            "affectedApps": ["/web"],
            "affectedPods": [],
            "steps": [SCALE] * total,
            "currentActions": [{**a, "readinessCheckResults": []} for a in (actions or [])],
            "currentStep": current,
            "totalSteps": total,
        }
    ]


def counts(
    running: int, target: int = 3, healthy: int = 0, staged: int = 0, checks: bool = False
) -> dict[str, Any]:
    return {
        "id": "/web",
        "instances": target,
        "tasksRunning": running,
        "tasksHealthy": healthy,
        "tasksStaged": staged,
        "healthChecks": [{"protocol": "COMMAND"}] if checks else [],
    }


# ---------------------------------------------------------------------------------------------- tables


def test_apps_table_shows_counts_resources_and_status() -> None:
    deploying = {**APP, "id": "/api", "deployments": [{"id": DEP}], "healthChecks": [{}], "tasksHealthy": 2}
    suspended = {**APP, "id": "/idle", "instances": 0, "tasksRunning": 0}
    lines = marathonformat.apps_table([APP, deploying, suspended]).splitlines()
    assert lines[0].split() == ["ID", "RUNNING", "HEALTHY", "CPUS", "MEM(MB)", "STATUS"]
    assert lines[1].split() == ["/web", "3/3", "-", "0.1", "32", "Running"]
    assert lines[2].split() == ["/api", "3/3", "2", "0.1", "32", "Deploying"]
    assert lines[3].split() == ["/idle", "0/0", "-", "0.1", "32", "Suspended"]


def test_tables_tolerate_missing_fields() -> None:
    assert marathonformat.apps_table([{}]).splitlines()[1].split() == ["-", "0/0", "-", "-", "-", "Suspended"]
    assert marathonformat.tasks_table([{}]).splitlines()[1].split() == ["-"] * 7
    assert marathonformat.deployments_table([]) == "ID  APPS  STEP  CURRENT ACTIONS  VERSION"


def test_tasks_table_health_from_check_results() -> None:
    failing = {**TASK, "id": "t2", "healthCheckResults": [{"alive": False}], "ports": []}
    lines = marathonformat.tasks_table(
        [TASK, failing, {**TASK, "id": "t3", "healthCheckResults": []}]
    ).splitlines()
    assert lines[1].split() == [
        TASK["id"],
        "127.0.0.1",
        "31001",
        "TASK_RUNNING",
        "healthy",
        TASK["startedAt"],
        V2,
    ]
    assert lines[2].split()[2:5] == ["-", "TASK_RUNNING", "unhealthy"]
    assert lines[3].split()[4] == "-"


def test_deployments_table() -> None:
    listing = listed(1, 2, [{"action": "RestartApplication", "app": "/web"}])
    lines = marathonformat.deployments_table(listing).splitlines()
    assert lines[1].split() == [DEP, "/web", "1/2", "RestartApplication", "/web", V2]


def test_affected_apps_of_one_listed_deployment() -> None:
    assert marathonformat.affected_apps(listed(1), DEP) == ["/web"]
    assert marathonformat.affected_apps(listed(1), OTHER) == []
    assert marathonformat.affected_apps({"message": "x"}, DEP) == []


def test_app_text_has_summary_tasks_and_the_definition_only() -> None:
    app = {
        **APP,
        "tasks": [TASK],
        "deployments": [{"id": DEP}],
        "lastTaskFailure": {"state": "TASK_FAILED", "timestamp": V1, "message": "exit 1"},
    }
    text = marathonformat.app_text(app)
    assert "status         Deploying (3/3 running, 0 staged)" in text
    assert "runs           cmd sleep 600" in text
    assert f"deployments    {DEP}" in text
    assert f"last failure   TASK_FAILED at {V1}: exit 1" in text
    assert TASK["id"] in text
    definition = json.loads(text.split("definition:\n", 1)[1])
    assert definition["id"] == "/web" and "tasks" not in definition and "tasksRunning" not in definition


def test_redeployable_drops_server_owned_and_info_keys() -> None:
    body = marathonformat.redeployable({**APP, "tasks": [TASK]})
    assert "version" not in body and "versionInfo" not in body and "deployments" not in body
    assert body["cmd"] == "sleep 600" and body["instances"] == 3


def test_deployment_id_from_header_result_or_app_info() -> None:
    assert marathonformat.deployment_id({"marathon-deployment-id": DEP}, {}) == DEP
    assert marathonformat.deployment_id({}, {"deploymentId": DEP, "version": V2}) == DEP
    assert marathonformat.deployment_id({}, {**APP, "deployments": [{"id": DEP}]}) == DEP
    assert marathonformat.deployment_id({}, None) is None


def test_previous_version_is_the_newest_older_one() -> None:
    assert marathonformat.previous_version([V3, V1, V2], V3) == V2
    assert marathonformat.previous_version([V1, V2, V3], V2) == V1
    assert marathonformat.previous_version([V1], V1) is None


# ---------------------------------------------------------------------------------------------- errors


def test_422_keeps_marathon_message_and_every_detail() -> None:
    body = {
        "message": "Object is not valid",
        "details": [
            {"path": "/upgradeStrategy/minimumHealthCapacity", "errors": ["is greater than 1"]},
            {"path": "/cpus", "errors": ["got -1.0, expected 0.0 or more", "must be finite"]},
            {"path": "", "errors": ["AppDefinition must either contain one of 'cmd' or 'args'"]},
        ],
    }
    assert marathonformat.error_message("POST", "/v2/apps", 422, body) == (
        "POST /v2/apps: 422 Object is not valid: /upgradeStrategy/minimumHealthCapacity: is greater than 1; "
        "/cpus: got -1.0, expected 0.0 or more, must be finite; "
        "/: AppDefinition must either contain one of 'cmd' or 'args'"
    )
    assert marathonformat.error_kind(422, body) == ("invalid", EXIT_FAILED)


def test_409_lock_names_the_deployments_and_hints_force() -> None:
    body = {
        "message": "App is locked by one or more deployments. Override with the option '?force=true'. "
        "View details at '/v2/deployments/<DEPLOYMENT_ID>'.",
        "deployments": [{"id": DEP}, {"id": OTHER}],
    }
    text = marathonformat.error_message("PUT", "/v2/apps/web", 409, body)
    assert text == (
        f"PUT /v2/apps/web: 409 App is locked by one or more deployments. (deployments: {DEP}, {OTHER}); "
        "use --force to cancel them and go ahead"
    )
    assert "<DEPLOYMENT_ID>" not in text
    assert marathonformat.error_kind(409, body) == ("locked", EXIT_FAILED)
    assert marathonformat.error_kind(409, {"message": "An app with id [/x] already exists."})[0] == "conflict"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            {"message": "Invalid JSON", "details": "Unexpected end-of-input"},
            "400 Invalid JSON: Unexpected end-of-input",
        ),
        (404, {"message": "App '/nope' does not exist"}, "404 App '/nope' does not exist"),
        (401, {"message": "Invalid username or password."}, "401 Invalid username or password."),
        (502, "<html>\nBad gateway</html>", "502 <html>"),
        (500, None, "500 Internal Server Error"),
    ],
)
def test_other_errors_one_line(status: int, body: Any, expected: str) -> None:
    text = marathonformat.error_message("GET", "/v2/apps/nope", status, body, "Internal Server Error")
    assert text == f"GET /v2/apps/nope: {expected}"
    assert "\n" not in text


def test_unavailable_marathon_is_a_connection_failure() -> None:
    assert marathonformat.error_kind(503, {"message": "Futures timed out"}) == (
        "unavailable",
        EXIT_CONNECTION,
    )
    assert marathonformat.error_kind(404, {}) == ("not_found", EXIT_FAILED)


# ---------------------------------------------------------------------------------------------- progress


def script(p: Progress, items: list[Any]) -> Iterator[Progress]:
    """Fold a scripted sequence: ("event", e), ("deployments", listing), ("app", app-or-None)."""
    for kind, doc in items:
        if kind == "event":
            p = progress.fold_event(p, doc)
        elif kind == "deployments":
            p = progress.fold_deployments(p, doc)
        else:
            p = progress.fold_app(p, "/web", doc)
        yield p


def ev(kind: str, **fields: Any) -> dict[str, Any]:
    return {"eventType": kind, "timestamp": V2, **fields}


def test_scale_frames_from_a_scripted_event_sequence() -> None:
    items = [
        ("deployments", listed(0)),  # stored, not started yet
        ("app", counts(1)),
        ("event", ev("deployment_info", plan=PLAN, currentStep=SCALE)),
        ("event", ev("status_update_event", appId="/web", taskStatus="TASK_RUNNING")),
        ("app", counts(2, staged=1)),
        ("app", counts(3)),
        ("event", ev("deployment_step_success", plan=PLAN, currentStep=SCALE)),
        ("event", ev("deployment_success", id=DEP, plan=PLAN)),
        ("deployments", []),
    ]
    states = list(script(progress.start(DEP, ["/web"]), items))
    frames = [progress.frame(p, 1.0 + i, 200) for i, p in enumerate(states)]
    assert frames == [
        "[>                   ]   0%   1.0s  step 1/1; /web",
        "[=======>            ]  33%   2.0s  step 1/1; /web 1/3 running",
        "[=======>            ]  33%   3.0s  step 1/1 ScaleApplication /web; /web 1/3 running",
        "[=======>            ]  33%   4.0s  step 1/1 ScaleApplication /web; /web 1/3 running",
        "[=============>      ]  67%   5.0s  step 1/1 ScaleApplication /web; /web 2/3 running (1 staging)",
        "[====================] 100%   6.0s  step 1/1 ScaleApplication /web; /web 3/3 running",
        "[====================] 100%   7.0s  1/1 steps done; /web 3/3 running",
        "[====================] 100%   8.0s  1/1 steps done; /web 3/3 running",
        "[====================] 100%   9.0s  1/1 steps done; /web 3/3 running",
    ]
    final = progress.settle(states[-1])
    assert final.ended and final.outcome == "succeeded"
    assert progress.verdict(final, 12.34) == f"deployment {DEP} succeeded in 12.3s: /web 3/3 running"


def test_health_checked_app_counts_healthy_instances() -> None:
    p = progress.fold_app(progress.start(DEP, ["/web"]), "/web", counts(3, healthy=1, checks=True))
    assert progress.status_line(p) == "starting; /web 3/3 running, 1/3 healthy"
    assert progress.fraction(p) == pytest.approx(1 / 3)
    p = progress.fold_app(p, "/web", counts(3, healthy=3, checks=True))
    p = progress.fold_event(progress.fold_deployments(p, []), ev("deployment_success", id=DEP, plan=PLAN))
    assert progress.verdict(p, 3.0) == f"deployment {DEP} succeeded in 3.0s: /web 3/3 healthy"


def test_multi_step_plan_locates_steps_by_their_actions() -> None:
    start, scale = step(("StartApplication", "/web")), step(("ScaleApplication", "/web"))
    plan = {"id": DEP, "steps": [start, scale], "version": V2}
    p = progress.start(DEP)
    p = progress.fold_event(p, ev("deployment_info", plan=plan, currentStep=start))
    assert (p.steps_done, p.total_steps, [a.id for a in p.apps]) == (0, 2, ["/web"])
    # a poll that already saw step 2, then the late step-1 success: no double counting
    p = progress.fold_deployments(p, listed(2, 2, scale["actions"]))
    p = progress.fold_event(p, ev("deployment_step_success", plan=plan, currentStep=start))
    assert p.steps_done == 1
    assert progress.status_line(p) == "step 2/2 ScaleApplication /web; /web"
    p = progress.fold_event(p, ev("deployment_step_success", plan=plan, currentStep=scale))
    assert p.steps_done == 2


def test_events_of_other_deployments_change_nothing() -> None:
    p = progress.start(DEP, ["/web"])
    other = {"id": OTHER, "steps": [SCALE], "version": V2}
    for e in (
        ev("deployment_info", plan=other, currentStep=SCALE),
        ev("deployment_failed", id=OTHER, plan=other, reason="boom"),
        ev("group_change_success", groupId="/", version=V2),
    ):
        assert progress.fold_event(p, e) == p
        assert not progress.touches(p, e)
    assert progress.touches(p, ev("status_update_event", appId="/web", taskStatus="TASK_RUNNING"))
    assert progress.touches(p, ev("instance_health_changed_event", runSpecId="/web", healthy=True))
    assert not progress.touches(p, ev("status_update_event", appId="/other", taskStatus="TASK_RUNNING"))
    assert progress.touches(p, ev("deployment_info", plan=PLAN, currentStep=SCALE))


def test_failed_deployment_verdict_carries_the_reason() -> None:
    p = progress.fold_app(progress.start(DEP, ["/web"]), "/web", counts(1))
    p = progress.fold_event(p, ev("deployment_step_failure", plan=PLAN, currentStep=SCALE))
    p = progress.fold_event(p, ev("deployment_failed", id=DEP, plan=PLAN, reason="Deployment canceled"))
    p = progress.settle(progress.fold_deployments(p, []))
    assert p.outcome == "failed"
    assert (
        progress.verdict(p, 4.0)
        == f"deployment {DEP} failed after 4.0s: Deployment canceled (/web 1/3 running)"
    )


def test_outcome_inferred_when_the_final_event_was_missed() -> None:
    p = progress.fold_deployments(progress.start(DEP, ["/web"]), [])
    done = progress.settle(progress.fold_app(p, "/web", counts(3)))
    assert done.outcome == "succeeded"
    short = progress.settle(progress.fold_app(p, "/web", counts(1)))
    assert short.outcome == "failed" and short.reason == progress.NOT_CONVERGED
    deleted = progress.settle(progress.fold_app(p, "/web", None))
    assert progress.verdict(deleted, 1.0) == f"deployment {DEP} succeeded in 1.0s: /web deleted"
    still_running = progress.fold_deployments(progress.start(DEP), listed(1))
    assert progress.settle(still_running).outcome is None


def test_rollback_of_a_deployment_learns_its_apps_from_the_listing() -> None:
    p = progress.fold_deployments(progress.start(DEP), listed(1, 1, SCALE["actions"]))
    assert [a.id for a in p.apps] == ["/web"]
    assert progress.change_line(p, 2.5) == f"[   2.5s] deployment {DEP}: step 1/1 ScaleApplication /web; /web"


def test_bar_and_frame_width() -> None:
    assert progress.bar(0.0) == "[>" + " " * 19 + "]"
    assert progress.bar(0.5) == "[" + "=" * 10 + ">" + " " * 9 + "]"
    assert progress.bar(1.0) == "[" + "=" * 20 + "]"
    p = progress.fold_deployments(progress.start(DEP, ["/web"]), listed(1, 1, SCALE["actions"]))
    for columns in (20, 40, 60):
        text = progress.frame(p, 1.0, columns)
        assert len(text) <= columns - 1 and text.endswith("…")


def test_timeout_and_interrupt_say_the_deployment_keeps_running() -> None:
    p = progress.fold_deployments(progress.start(DEP, ["/web"]), listed(1, 1, SCALE["actions"]))
    text = progress.timeout_message(p, 600)
    assert text.startswith(f"deployment {DEP} still running after --timeout 600s (step 1/1")
    assert "keeps running" in text and f"deployments cancel {DEP}" in text
    assert "keeps running" in progress.interrupted_message(p)


# ---------------------------------------------------------------------------------------------- SSE


def test_sse_decoder_frames_split_anywhere() -> None:
    wire = (
        b"event: event_stream_attached\r\n"
        b'data: {"remoteAddress":"127.0.0.1","eventType":"event_stream_attached"}\r\n\r\n'
        b":\r\n"
        b'event: deployment_success\r\ndata: {"id":"d1"}\r\n\r\n'
        b"data: line1\ndata: line2\n\n"
    )
    expected = [
        ("event_stream_attached", '{"remoteAddress":"127.0.0.1","eventType":"event_stream_attached"}'),
        ("deployment_success", '{"id":"d1"}'),
        ("message", "line1\nline2"),
    ]
    for size in (1, 2, 7, len(wire)):
        decoder = SseDecoder()
        out = [e for i in range(0, len(wire), size) for e in decoder.feed(wire[i : i + size])]
        assert out == expected, size


def test_decode_event_adds_the_type_and_skips_non_objects() -> None:
    assert decode_event("deployment_success", '{"id":"d1"}') == {
        "id": "d1",
        "eventType": "deployment_success",
    }
    assert decode_event("x", "[1]") is None
    assert decode_event("x", "not json") is None


# ---------------------------------------------------------------------------------------------- parsing


def parse(*argv: str) -> Any:
    return build_parser().parse_args(list(argv))


def test_timeout_after_a_write_bounds_the_wait_before_it_connects() -> None:
    args = parse("--timeout", "7", "app", "scale", "/web", "3", "--timeout", "30", "--force", "--no-wait")
    assert (args.timeout, args.wait_timeout, args.force, args.no_wait, args.instances) == (
        7.0,
        30.0,
        True,
        True,
        3,
    )
    assert args.handler is marathon.cmd_scale
    args = parse("app", "list", "--timeout", "9", "--marathon", "a:1", "--marathon", "b:2")
    assert (args.timeout, args.marathon) == (9.0, ["a:1", "b:2"])


def test_deployments_lists_without_a_subcommand() -> None:
    assert parse("deployments").handler is marathon.cmd_deployments
    args = parse("deployments", "cancel", DEP, "--force")
    assert (args.handler, args.deployment_id, args.force) == (marathon.cmd_cancel, DEP, True)


@pytest.mark.parametrize(
    "argv",
    [("app", "scale", "/web", "-1"), ("app", "list", "--user", "nocolon"), ("app", "show"), ("app", "frob")],
)
def test_bad_command_lines_are_usage_errors(argv: tuple[str, ...]) -> None:
    with pytest.raises(CliError) as e:
        parse(*argv)
    assert e.value.code == 2


def test_basic_auth_header() -> None:
    assert basic_auth("alice:s3cr:et") == "Basic YWxpY2U6czNjcjpldA=="


def test_read_definition(tmp_path: Path) -> None:
    good = tmp_path / "app.json"
    good.write_text(json.dumps({"id": "/web", "cmd": "sleep 600"}))
    assert marathon.read_definition(str(good))["id"] == "/web"
    for content, why in (
        ("{", "is not JSON"),
        ("[]", "expected one app definition"),
        ('{"cmd":"x"}', 'no "id"'),
    ):
        bad = tmp_path / "bad.json"
        bad.write_text(content)
        with pytest.raises(UsageError, match=why):
            marathon.read_definition(str(bad))
    with pytest.raises(UsageError, match="cannot read"):
        marathon.read_definition(str(tmp_path / "missing.json"))


def test_read_definition_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('{"id": "/piped", "cmd": "sleep 600"}'))
    assert marathon.read_definition("-") == {"id": "/piped", "cmd": "sleep 600"}
    monkeypatch.setattr("sys.stdin", io.StringIO("nope"))
    with pytest.raises(UsageError, match="stdin is not JSON"):
        marathon.read_definition("-")


# ---------------------------------------------------------------------------------------------- display


def test_lines_display_prints_each_change_once() -> None:
    out = io.StringIO()
    display = marathonwait.Display("lines", out)
    p = progress.fold_deployments(progress.start(DEP, ["/web"]), listed(1, 1, SCALE["actions"]))
    display.show(p, 1.0)
    display.show(p, 2.0)
    display.show(progress.fold_app(p, "/web", counts(1)), 3.0)
    assert out.getvalue().splitlines() == [
        f"[   1.0s] deployment {DEP}: step 1/1 ScaleApplication /web; /web",
        f"[   3.0s] deployment {DEP}: step 1/1 ScaleApplication /web; /web 1/3 running",
    ]


def test_tty_display_redraws_one_line_and_clears_it() -> None:
    out = io.StringIO()
    display = marathonwait.Display("tty", out)
    p = progress.start(DEP, ["/web"])
    display.show(p, 1.0)
    display.note("a line that stays")
    assert out.getvalue().startswith("\r[>")
    assert out.getvalue().endswith("\x1b[K\r\x1b[Ka line that stays\n")
    quiet = io.StringIO()
    marathonwait.Display("quiet", quiet).show(p, 1.0)
    assert quiet.getvalue() == ""


# ---------------------------------------------------------------------------------------------- wait loop


class FakeMarathon:
    """Answers ``/v2/deployments`` and ``/v2/apps/web`` from scripts (the last answer repeats)."""

    def __init__(self, listings: list[Any], apps: list[Any]) -> None:
        self.listings = listings
        self.apps = apps
        self.notes: list[str] = []

    def get(self, path: str) -> Any:
        assert path == "/v2/deployments"
        item = self.listings.pop(0) if len(self.listings) > 1 else self.listings[0]
        if isinstance(item, CliError):
            raise item
        return item

    def get_or_none(self, path: str) -> Any:
        assert path == "/v2/apps/web"
        app = self.apps.pop(0) if len(self.apps) > 1 else self.apps[0]
        return None if app is None else {"app": app}

    def note(self, message: str) -> None:
        self.notes.append(message)


class FakeStream:
    def __init__(self, items: list[Any]) -> None:
        self.events: queue.Queue[Any] = queue.Queue()
        for item in items:
            self.events.put(item)
        self.closed = False

    def close(self) -> None:
        self.closed = True


def run_wait(m: FakeMarathon, stream: FakeStream | None, started: float | None = None) -> Progress:
    return marathonwait.wait(
        m,  # type: ignore[arg-type]
        stream,  # type: ignore[arg-type]
        progress.start(DEP, ["/web"]),
        started=time.monotonic() if started is None else started,
        timeout=30.0,
        display=marathonwait.Display("quiet"),
    )


def test_wait_takes_the_verdict_from_the_stream() -> None:
    failed = ev("deployment_failed", id=DEP, plan=PLAN, reason="Failed to start")
    stream = FakeStream([ev("deployment_info", plan=PLAN, currentStep=SCALE), failed])
    p = run_wait(FakeMarathon([listed(1), []], [counts(1)]), stream)
    assert (p.outcome, p.reason) == ("failed", "Failed to start")
    assert stream.closed


def test_wait_without_a_stream_polls_until_gone_and_infers() -> None:
    m = FakeMarathon([listed(0), listed(1), []], [counts(1), counts(2), counts(3)])
    p = run_wait(m, None)
    assert p.outcome == "succeeded" and p.apps[0].running == 3


def test_wait_survives_a_short_loss_of_marathon() -> None:
    lost = CliError("cannot reach Marathon", EXIT_CONNECTION, "connection")
    m = FakeMarathon([lost, listed(1), []], [counts(3)])
    p = run_wait(m, FakeStream([StreamEnded("Marathon closed the event stream")]))
    assert p.outcome == "succeeded"
    assert any("cannot reach Marathon" in n for n in m.notes)


def test_wait_past_the_deadline_is_a_timeout() -> None:
    with pytest.raises(CliError) as e:
        run_wait(FakeMarathon([listed(1)], [counts(1)]), None, started=time.monotonic() - 31.0)
    assert e.value.code == EXIT_TIMEOUT and "keeps running" in e.value.message
