"""``paasctl app …`` and ``paasctl deployments …`` as subprocesses against the whole stack on loopback.

One module-wide stack (zk_py, master-py, one agent-py, a leading marathon-py and a standby) serves every
test; apps are plain command tasks.  Commands go to the leader, except where the standby's proxying (and
its 302 for the event stream) and the failover past an unreachable ``--marathon`` are the point.  What is
checked is what an operator relies on: exit statuses, the verdict line, Marathon's errors on one stderr
line, and Marathon's own state afterwards (read directly, not through paasctl).
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.marathons import MarathonProc, Stack, marathon_stack
from tests.support.paasctl import CLI_TIMEOUT, fails, ok, ok_json, paasctl, start
from tests.support.servers import free_port

WAIT = ["--timeout", "120"]  # bound on each wait: generous for a loaded host, not a speed claim
VERDICT = re.compile(r"deployment (\S+) succeeded in [\d.]+s: (.+)")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with marathon_stack(tmp_path_factory.mktemp("paasctl-marathon"), marathons=2) as s:
        yield s


def at(m: MarathonProc) -> list[str]:
    return ["--marathon", m.url]


def app_file(tmp_path: Path, app_id: str, **fields: Any) -> Path:
    doc = {"id": app_id, "cmd": "sleep 600", "cpus": 0.1, "mem": 32, "instances": 1} | fields
    path = tmp_path / f"{app_id.strip('/')}.json"
    path.write_text(json.dumps(doc))
    return path


def verdict(stdout: str) -> tuple[str, str]:
    """(deployment id, what the verdict says of the apps) from the last line; fails if it is no success."""
    last = stdout.rstrip("\n").splitlines()[-1]
    m = VERDICT.fullmatch(last)
    assert m, stdout
    return m.group(1), m.group(2)


def running_tasks(m: MarathonProc, app_id: str) -> set[str]:
    tasks = m.get(f"/v2/apps{app_id}/tasks")["tasks"]
    return {t["id"] for t in tasks if t["state"] == "TASK_RUNNING"}


def test_app_lifecycle(stack: Stack, tmp_path: Path) -> None:
    m = stack.leader()
    first = app_file(tmp_path, "/web")

    out = ok("app", "deploy", first, *at(m), *WAIT)
    assert out.startswith("creating /web: deployment ")
    _, apps = verdict(out)
    assert apps == "/web 1/1 running"
    assert len(running_tasks(m, "/web")) == 1
    assert m.get("/v2/deployments") == []  # waited until the deployment was gone

    rows = [line.split() for line in ok("app", "list", *at(m)).splitlines()]
    assert rows[0] == ["ID", "RUNNING", "HEALTHY", "CPUS", "MEM(MB)", "STATUS"]
    assert ["/web", "1/1", "-", "0.1", "32", "Running"] in rows

    shown = ok("app", "show", "web", *at(m))
    assert "status         Running (1/1 running" in shown
    assert next(iter(running_tasks(m, "/web"))) in shown
    assert json.loads(shown.split("definition:\n", 1)[1])["cmd"] == "sleep 600"
    doc = ok_json("app", "show", "/web", *at(m))
    assert doc["app"]["id"] == "/web" and doc["app"]["tasksRunning"] == 1 and len(doc["app"]["tasks"]) == 1

    out = ok("app", "scale", "/web", "2", *at(m), *WAIT)
    assert out.startswith("scaling /web from 1 to 2 instances: deployment ")
    assert verdict(out)[1] == "/web 2/2 running"
    before = running_tasks(m, "/web")
    assert len(before) == 2

    assert verdict(ok("app", "restart", "/web", *at(m), *WAIT))[1] == "/web 2/2 running"
    after = running_tasks(m, "/web")
    assert len(after) == 2 and not after & before  # every instance replaced

    rows = [line.split() for line in ok("app", "tasks", "/web", *at(m)).splitlines()]
    assert rows[0][:4] == ["ID", "HOST", "PORTS", "STATE"]
    assert {r[0] for r in rows[1:]} == after and {r[3] for r in rows[1:]} == {"TASK_RUNNING"}

    # an update, then back: the default rollback target is the version before the current one
    out = ok("app", "deploy", app_file(tmp_path, "/web", cmd="sleep 700", instances=2), *at(m), *WAIT)
    assert out.startswith("updating /web: deployment ") and verdict(out)[1] == "/web 2/2 running"
    assert m.get("/v2/apps/web")["app"]["cmd"] == "sleep 700"
    assert verdict(ok("app", "rollback", "/web", *at(m), *WAIT))[1] == "/web 2/2 running"
    assert m.get("/v2/apps/web")["app"]["cmd"] == "sleep 600"

    oldest = min(m.get("/v2/apps/web/versions")["versions"])
    out = ok("app", "rollback", "/web", "--to", oldest, *at(m), *WAIT)
    assert f"rolling /web back to version {oldest}" in out and verdict(out)[1] == "/web 1/1 running"
    assert m.get("/v2/apps/web")["app"]["instances"] == 1

    assert ok("deployments", *at(m)).split() == ["ID", "APPS", "STEP", "CURRENT", "ACTIONS", "VERSION"]
    assert ok_json("deployments", *at(m)) == []

    assert verdict(ok("app", "delete", "/web", *at(m), *WAIT))[1] == "/web deleted"
    assert m.request("GET", "/v2/apps/web")[0] == 404
    assert "/web" not in ok("app", "list", *at(m))
    r = fails(1, "app", "show", "/web", *at(m))
    assert "404 App '/web' does not exist" in r.stderr


def test_json_write_result(stack: Stack, tmp_path: Path) -> None:
    m = stack.leader()
    result = ok_json("app", "deploy", app_file(tmp_path, "/jsonapp"), *at(m), *WAIT)
    assert result["ok"] is True and result["outcome"] == "succeeded"
    [app] = result["apps"]
    assert (app["id"], app["running"], app["target"]) == ("/jsonapp", 1, 1)
    started = ok_json("app", "delete", "/jsonapp", "--no-wait", *at(m))
    assert set(started) >= {"deploymentId", "version"}  # Marathon's DeploymentResult as it came
    m.wait_deployed()


def test_invalid_definition_shows_marathon_details(stack: Stack, tmp_path: Path) -> None:
    m = stack.leader()
    bad = app_file(tmp_path, "/bad", cpus=-1, upgradeStrategy={"minimumHealthCapacity": 2.0})
    r = fails(1, "app", "deploy", bad, *at(m))
    assert "POST /v2/apps: 422 " in r.stderr
    assert "/cpus" in r.stderr and "/upgradeStrategy/minimumHealthCapacity" in r.stderr
    assert m.request("GET", "/v2/apps/bad")[0] == 404
    not_json = tmp_path / "broken.json"
    not_json.write_text('{"id": "/x",')
    assert "is not JSON" in fails(2, "app", "deploy", not_json, *at(m)).stderr


def test_locked_app_timeout_interrupt_and_cancel(stack: Stack, tmp_path: Path) -> None:
    """An app no offer can fit keeps its deployment running: the lock, --timeout, Ctrl-C and cancel."""
    m = stack.leader()
    stuck = app_file(tmp_path, "/stuck", cpus=64)  # the agent has 4 CPUs
    out = ok("app", "deploy", stuck, "--no-wait", *at(m))
    deployment = re.search(r"deployment (\S+) started", out)
    assert deployment, out
    dep = deployment.group(1)

    r = fails(1, "app", "scale", "/stuck", "2", *at(m))
    assert "409 App is locked by one or more deployments" in r.stderr
    assert dep in r.stderr and "--force" in r.stderr
    assert dep in ok("deployments", *at(m))

    r = fails(5, "app", "scale", "/stuck", "2", "--force", "--timeout", "2", *at(m))
    assert "still running after --timeout 2s" in r.stderr and "keeps running" in r.stderr
    [listed] = m.get("/v2/deployments")
    assert listed["affectedApps"] == ["/stuck"]

    proc = start("app", "scale", "/stuck", "3", "--force", *at(m), *WAIT)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # "scaling /stuck …: deployment ID", written once the change is in
        assert first.startswith("scaling /stuck from 2 to 3 instances: deployment "), first
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=CLI_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "keeps running" in err and "Traceback" not in err
    [listed] = m.get("/v2/deployments")  # still there: Ctrl-C only stopped the waiting
    assert first.split()[-1] == listed["id"]

    out = ok("deployments", "cancel", listed["id"], "--force", *at(m))
    assert out.strip() == f"deployment {listed['id']} stopped (no rollback: what it changed so far stays)"
    assert m.get("/v2/deployments") == []
    assert m.get("/v2/apps/stuck")["app"]["instances"] == 3

    ok("app", "scale", "/stuck", "4", "--no-wait", *at(m))
    [listed] = m.get("/v2/deployments")
    out = ok("deployments", "cancel", listed["id"], *at(m), *WAIT)  # without --force: rolled back
    assert out.startswith(f"rolling back deployment {listed['id']}: deployment ")
    verdict(out)
    assert m.get("/v2/apps/stuck")["app"]["instances"] == 3
    assert m.get("/v2/deployments") == []

    verdict(ok("app", "delete", "/stuck", *at(m), *WAIT))


def test_standby_and_failover(stack: Stack, tmp_path: Path) -> None:
    """Through an unreachable URL first, then the standby: it proxies the writes, redirects the stream."""
    leader = stack.leader()
    standby = next(x for x in stack.marathons if x is not leader)
    dead = f"127.0.0.1:{free_port()}"
    via = ["--marathon", dead, "--marathon", standby.url]
    r = paasctl("--verbose", "app", "deploy", app_file(tmp_path, "/proxied"), *via, *WAIT)
    assert r.returncode == 0, r.stderr
    assert verdict(r.stdout)[1] == "/proxied 1/1 running"
    assert f"cannot reach http://{dead}" in r.stderr  # tried first, then skipped
    assert "no event stream" not in r.stderr  # the standby's 302 led the stream to the leader
    assert verdict(ok("app", "scale", "/proxied", "2", *via, *WAIT))[1] == "/proxied 2/2 running"
    assert len(running_tasks(leader, "/proxied")) == 2
    verdict(ok("app", "delete", "/proxied", *via, *WAIT))

    r = fails(3, "app", "list", "--marathon", f"127.0.0.1:{free_port()}")
    assert "cannot reach Marathon" in r.stderr and "connection refused" in r.stderr
