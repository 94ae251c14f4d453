"""The web UI in headless Chromium (Debian's chromium, driven by Playwright) against the whole stack on
loopback — zk_py, master-py, one agent-py, marathon-py (issue 5, acceptance 6): create an app through the
form (a 422 shown next to its field first), see it listed and Running 1/1, scale it to 2, see its 2 tasks,
destroy it; a locked app scaled with "force" after the 409 and then edited as JSON; a deployment rolled back
and one stopped from the deployments page. Every UI action is checked through the REST API as well. Waits
are Playwright's bounded expectations; a failing test leaves a screenshot and the page's HTML under its
tmp_path."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.marathons import MarathonProc, Stack, marathon_stack

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright

    HAVE_PLAYWRIGHT = True
except ImportError:  # reported by require_browser
    HAVE_PLAYWRIGHT = False

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
INSTALL_HINT = "apt-get install -y chromium && .venv/bin/pip install playwright (scripts/setup.sh)"
UI_MS = 15_000  # a page reacting to a click or an event
DEPLOY_MS = 90_000  # tasks launched or killed through master and agent
APP = "/webui-test"
UNPLACEABLE = {"cmd": "sleep 600", "cpus": 0.1, "mem": 100_000, "instances": 1}  # no agent has the memory


def require_browser() -> None:
    problem = None
    if not HAVE_PLAYWRIGHT:
        problem = "the playwright package is not installed"
    elif not os.access(CHROMIUM, os.X_OK):
        problem = f"no chromium at {CHROMIUM}"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI run without a browser: {problem}: {INSTALL_HINT}")
        pytest.skip(f"{problem}: {INSTALL_HINT}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_browser()
    with sync_playwright() as pw:
        args = ["--disable-dev-shm-usage", "--disable-gpu", *(["--no-sandbox"] if os.geteuid() == 0 else [])]
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args, timeout=60_000)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def stack(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with marathon_stack(tmp_path_factory.mktemp("webui")) as s:
        yield s


@pytest.fixture
def marathon(stack: Stack) -> Iterator[MarathonProc]:
    m = stack.marathon
    yield m
    for app in m.get("/v2/apps")["apps"]:  # each test leaves nothing behind
        m.request("DELETE", f"/v2/apps{app['id']}?force=true")
    m.wait_for("apps gone", lambda: m.get("/v2/apps")["apps"] == [] and m.deployments_done(), 60)


class Watched:
    """A page plus what it did wrong: script errors and requests to any other origin."""

    def __init__(self, page: Page, origin: str) -> None:
        self.page = page
        self.errors: list[str] = []
        self.foreign: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("request", lambda req: None if req.url.startswith(origin) else self.foreign.append(req.url))

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.foreign == [], self.foreign


@pytest.fixture
def ui(
    browser: Browser, marathon: MarathonProc, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Watched]:
    failed_before = request.session.testsfailed
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(UI_MS)
    watched = Watched(page, marathon.url + "/")
    try:
        page.goto(marathon.url + "/")
        yield watched
        watched.assert_clean()
    finally:
        if request.session.testsfailed > failed_before:
            keep_evidence(page, tmp_path)
        context.close()


def keep_evidence(page: Page, where: Path) -> None:
    """What the browser showed when the test failed: a full-page screenshot and the DOM."""
    with contextlib.suppress(Exception):
        page.screenshot(path=str(where / "failure.png"), full_page=True)
        (where / "failure.html").write_text(page.content())
        print(f"web UI evidence: {where / 'failure.png'}, {where / 'failure.html'}")


def app_row(page: Page, app_id: str) -> Any:
    return page.locator(f'[data-testid="app-row"][data-app-id="{app_id}"]')


def confirm_dialog(page: Page, value: str | None = None) -> None:
    dialog = page.get_by_test_id("dialog")
    expect(dialog).to_be_visible()
    if value is not None:
        page.get_by_test_id("dialog-input").fill(value)
    page.get_by_test_id("dialog-confirm").click()
    expect(dialog).to_be_hidden()


def rest_app(m: MarathonProc, app_id: str) -> dict[str, Any] | None:
    status, _, body = m.request("GET", f"/v2/apps{app_id}")
    assert status in (200, 404), body
    return body["app"] if status == 200 else None


def instances(m: MarathonProc, app_id: str) -> int:
    app = rest_app(m, app_id)
    assert app is not None, f"{app_id} does not exist"
    return int(app["instances"])


def test_create_see_running_scale_and_destroy(ui: Watched, marathon: MarathonProc) -> None:
    page, m = ui.page, marathon
    expect(page).to_have_url(re.compile(r"/ui/(#/apps)?$"))
    expect(page.get_by_test_id("live-status")).to_have_text("live")  # the event stream is attached

    # create through the form; Marathon's 422 lands next to the field first
    page.get_by_test_id("create-app").click()
    page.get_by_test_id("field-id").fill("/Not A Valid Id")
    page.get_by_test_id("field-cmd").fill("sleep 600")
    page.get_by_test_id("field-cpus").fill("0.1")
    page.get_by_test_id("field-mem").fill("32")
    page.get_by_test_id("field-instances").fill("1")
    page.get_by_test_id("submit-app").click()
    expect(page.get_by_test_id("error-id")).to_be_visible()
    expect(page.get_by_test_id("field-id")).to_have_attribute("aria-invalid", "true")
    assert m.get("/v2/apps")["apps"] == []
    page.get_by_test_id("field-id").fill(APP)
    page.get_by_test_id("submit-app").click()

    row = app_row(page, APP)
    expect(row).to_be_visible()
    created = rest_app(m, APP)
    assert created is not None
    assert (created["cmd"], created["cpus"], created["mem"], created["instances"]) == (
        "sleep 600",
        0.1,
        32,
        1,
    )
    expect(row.get_by_test_id("app-status")).to_have_text("Running", timeout=DEPLOY_MS)
    expect(row.get_by_test_id("app-instances")).to_have_text("1 / 1", timeout=DEPLOY_MS)
    running = rest_app(m, APP)
    assert running is not None and running["tasksRunning"] == 1 and len(running["tasks"]) == 1

    # scale to 2 from the list
    row.get_by_test_id("scale-app").click()
    confirm_dialog(page, "2")
    expect(row.get_by_test_id("app-instances")).to_have_text("2 / 2", timeout=DEPLOY_MS)
    expect(row.get_by_test_id("app-status")).to_have_text("Running", timeout=DEPLOY_MS)
    scaled = rest_app(m, APP)
    assert scaled is not None and scaled["instances"] == 2 and scaled["tasksRunning"] == 2

    # its detail: the same two running tasks the API lists
    row.get_by_test_id("app-link").click()
    detail = page.get_by_test_id("app-detail")
    expect(detail).to_have_attribute("data-app-id", APP)
    tasks = detail.get_by_test_id("task-row")
    expect(tasks).to_have_count(2)
    expect(detail.get_by_test_id("task-state")).to_have_text(["TASK_RUNNING", "TASK_RUNNING"])
    ui_ids = sorted(tasks.nth(i).get_attribute("data-task-id") or "" for i in range(2))
    api_tasks = m.get(f"/v2/apps{APP}/tasks")["tasks"]
    assert ui_ids == sorted(t["id"] for t in api_tasks)
    for t in api_tasks:
        endpoint = detail.locator(f'[data-task-id="{t["id"]}"] [data-testid="task-endpoint"]')
        expect(endpoint).to_have_text(", ".join(f"{t['host']}:{p}" for p in t["ports"]) or t["host"])
    expect(detail.get_by_test_id("version-item")).not_to_have_count(0)
    expect(detail.get_by_test_id("app-config")).to_contain_text('"cmd": "sleep 600"')

    # destroy from the detail page: back on the list, the app gone there and in the API
    detail.get_by_test_id("destroy-app").click()
    confirm_dialog(page)
    expect(page).to_have_url(re.compile(r"#/apps$"))
    expect(app_row(page, APP)).to_have_count(0)
    expect(page.get_by_test_id("no-apps")).to_be_visible()
    assert rest_app(m, APP) is None
    m.wait_for("its tasks killed", lambda: m.get("/v2/tasks")["tasks"] == [], DEPLOY_MS / 1000)


def test_locked_app_is_scaled_with_force_after_the_409(ui: Watched, marathon: MarathonProc) -> None:
    page, m = ui.page, marathon
    status, _, body = m.request("POST", "/v2/apps", {"id": "/starved", **UNPLACEABLE})
    assert status == 201, body
    page.goto(f"{m.url}/ui/#/apps/%2Fstarved")
    detail = page.get_by_test_id("app-detail")
    expect(detail.get_by_test_id("detail-status")).to_have_text(re.compile("Deploying|Waiting"))

    detail.get_by_test_id("scale-app").click()
    confirm_dialog(page, "0")
    banner = page.get_by_test_id("error-banner")
    expect(banner).to_contain_text("locked")
    assert instances(m, "/starved") == 1
    page.get_by_test_id("force-retry").click()
    expect(banner).to_be_hidden()
    expect(detail.get_by_test_id("detail-status")).to_have_text("Suspended", timeout=DEPLOY_MS)
    assert instances(m, "/starved") == 0
    m.wait_deployed(DEPLOY_MS / 1000)

    # edit its JSON (PUT), then the create form starts afresh in form mode
    detail.get_by_test_id("edit-app").click()
    editor = page.get_by_test_id("field-json")
    expect(editor).to_have_value(re.compile('"mem": 100000'))
    editor.fill(editor.input_value().replace('"mem": 100000', '"mem": 32'))
    page.get_by_test_id("submit-app").click()
    expect(detail.get_by_test_id("app-config")).to_contain_text('"mem": 32')
    assert (rest_app(m, "/starved") or {}).get("mem") == 32
    page.get_by_test_id("create-app").click()
    expect(page.get_by_test_id("field-id")).to_have_value("")
    expect(editor).to_be_hidden()


def test_deployments_are_rolled_back_and_stopped(ui: Watched, marathon: MarathonProc) -> None:
    page, m = ui.page, marathon
    page.get_by_test_id("nav-deployments").click()
    expect(page.get_by_test_id("no-deployments")).to_be_visible()

    # rollback of a new app's deployment removes the app again
    status, headers, _ = m.request("POST", "/v2/apps", {"id": "/rolled-back", **UNPLACEABLE})
    assert status == 201
    row = page.locator(
        f'[data-testid="deployment-row"][data-deployment-id="{headers["Marathon-Deployment-Id"]}"]'
    )
    expect(row.get_by_test_id("deployment-apps")).to_have_text("/rolled-back")
    row.get_by_test_id("rollback-deployment").click()
    confirm_dialog(page)
    expect(row).to_have_count(0)
    m.wait_for("rolled back", lambda: rest_app(m, "/rolled-back") is None and m.deployments_done(), 60)
    expect(page.get_by_test_id("no-deployments")).to_be_visible()

    # a forced stop leaves the app as far as it got
    status, headers, _ = m.request("POST", "/v2/apps", {"id": "/stopped", **UNPLACEABLE})
    assert status == 201
    row = page.locator(
        f'[data-testid="deployment-row"][data-deployment-id="{headers["Marathon-Deployment-Id"]}"]'
    )
    row.get_by_test_id("stop-deployment").click()
    confirm_dialog(page)
    expect(row).to_have_count(0)
    expect(page.get_by_test_id("no-deployments")).to_be_visible()
    assert m.deployments_done()
    stopped = rest_app(m, "/stopped")
    assert stopped is not None and stopped["instances"] == 1 and stopped["tasksRunning"] == 0
