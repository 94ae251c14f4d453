"""An unmodified pymesos 0.3.15 scheduler against master_py: ZooKeeper detection, subscription, calls,
teardown; and a standby master's redirect."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymesos import MesosSchedulerDriver, Scheduler

from tests.support.clients import WAIT
from tests.support.masters import MasterProc
from tests.support.servers import ZkServer


class Recorder(Scheduler):  # type: ignore[misc]
    def __init__(self) -> None:
        self.registered_ev = threading.Event()
        self.updates: list[dict[str, Any]] = []
        self.update_ev = threading.Event()
        self.framework_id: str | None = None

    def registered(self, driver: Any, framework_id: Any, master_info: Any) -> None:
        self.framework_id = framework_id["value"]
        self.registered_ev.set()

    def statusUpdate(self, driver: Any, update: Any) -> None:
        self.updates.append(dict(update))
        self.update_ev.set()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


@pytest.fixture
def masters(zkpy_server: ZkServer, tmp_path: Path) -> Iterator[list[MasterProc]]:
    zk = f"zk://{zkpy_server.hosts}/mesos"
    made = [MasterProc(tmp_path, zk=zk), MasterProc(tmp_path, zk=zk)]
    try:
        made[0].start()
        made[1].start()
        yield made
    finally:
        for m in made:
            m.kill()


def test_pymesos_finds_the_leader_subscribes_and_tears_down(
    masters: list[MasterProc], zkpy_server: ZkServer
) -> None:
    leader, standby = masters
    assert get_json(f"{leader.url}/metrics/snapshot")["master/elected"] == 1
    assert get_json(f"{standby.url}/metrics/snapshot")["master/elected"] == 0
    sched = Recorder()
    driver = MesosSchedulerDriver(
        sched, {"user": "root", "name": "interop"}, f"zk://{zkpy_server.hosts}/mesos", use_addict=True
    )
    driver.start()
    try:
        assert sched.registered_ev.wait(WAIT), leader.log_tail()
        state = get_json(f"{leader.url}/master/state")
        (fw,) = state["frameworks"]
        assert fw["id"] == sched.framework_id and fw["name"] == "interop" and fw["connected"]
        driver.reconcileTasks([{"task_id": {"value": "ghost"}}])  # explicit reconcile of an unknown task
        assert sched.update_ev.wait(WAIT)
        assert sched.updates[0]["task_id"]["value"] == "ghost"
        assert sched.updates[0]["state"] == "TASK_LOST"
        assert sched.updates[0]["reason"] == "REASON_RECONCILIATION"
    finally:
        driver.stop()  # TEARDOWN
        driver.join()
    state = get_json(f"{leader.url}/master/state")
    assert state["frameworks"] == [] and [f["id"] for f in state["completed_frameworks"]] == [
        sched.framework_id
    ]


def test_standby_redirects_scheduler_calls_to_the_leader(masters: list[MasterProc]) -> None:
    leader, standby = masters
    req = urllib.request.Request(
        f"{standby.url}/api/v1/scheduler",
        data=b"{}",
        headers={"Content-Type": "application/json"},
        method="POST",
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kw: Any) -> None:
            return None

    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.build_opener(NoRedirect).open(req, timeout=5)
    assert e.value.code == 307
    assert e.value.headers["Location"] == f"//127.0.0.1:{leader.port}/api/v1/scheduler"


def test_bad_calls_get_mesos_errors(masters: list[MasterProc]) -> None:
    leader = masters[0]

    def post(body: bytes, ctype: str | None = "application/json") -> tuple[int, str]:
        headers = {"Content-Type": ctype} if ctype else {}
        req = urllib.request.Request(
            f"{leader.url}/api/v1/scheduler", data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    assert post(b"{", "application/json") == (400, post(b"{")[1])
    assert post(b"{")[1].startswith("Failed to parse body into JSON")
    assert post(b"{}", "text/plain")[0] == 415
    status, text = post(json.dumps({"type": "REVIVE", "framework_id": {"value": "nope"}}).encode())
    assert (status, text) == (400, "Framework cannot be found")
    assert get_json(f"{leader.url}/version")["version"] == "1.11.0"
