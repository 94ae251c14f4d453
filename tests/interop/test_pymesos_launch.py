"""pymesos launches a task through master_py to an agent speaking our agent protocol (docs/protocols.md):
offer → LAUNCH → RUN_TASK on the agent's stream → status update → the framework's acknowledgement reaches
the agent.  The agent here is a minimal scripted client of the protocol; agent_py's daemon replaces it."""

from __future__ import annotations

import base64
import http.client
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paas_common.recordio import Decoder
from paas_common.resources import Resources
from tests.support.clients import WAIT
from tests.support.masters import MasterProc
from tests.support.pymesos_fw import Framework, command_task, driving, running_master


def post(url: str, doc: object, ctype: str = "application/json") -> tuple[int, bytes]:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class ScriptedAgent:
    """Registers, keeps the stream open on a thread, records every message the master sends."""

    def __init__(self, master: MasterProc) -> None:
        self.master = master
        self.messages: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        resources = Resources.parse("cpus:2;mem:1024;ports:[31000-31010]").to_json()
        status, body = post(
            f"{master.url}/agent/api/v1",
            {
                "type": "REGISTER",
                "register": {"hostname": "agent1", "port": 5051, "resources": resources, "attributes": []},
            },
        )
        assert status == 200, body
        self.agent_id = json.loads(body)["agent_id"]["value"]
        self.conn = http.client.HTTPConnection(master.ip, master.port, timeout=WAIT)
        self.conn.request(
            "POST",
            "/agent/api/v1",
            json.dumps({"type": "SUBSCRIBE", "agent_id": {"value": self.agent_id}}),
            {"Content-Type": "application/json"},
        )
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        dec = Decoder()
        try:
            while chunk := self.resp.read1(65536):
                for rec in dec.feed(chunk):
                    with self.cond:
                        self.messages.append(json.loads(rec))
                        self.cond.notify_all()
        except (OSError, AttributeError, ValueError):  # the test closed the connection under us
            pass

    def wait_for(self, kind: str) -> dict[str, Any]:
        with self.cond:
            ok = self.cond.wait_for(lambda: any(m["type"] == kind for m in self.messages), timeout=WAIT)
            assert ok, f"no {kind} from the master; got {[m['type'] for m in self.messages]}"
            return next(m for m in self.messages if m["type"] == kind)

    def update(self, framework_id: str, task_id: str, state: str, uuid: bytes) -> int:
        status = {
            "task_id": {"value": task_id},
            "framework_id": {"value": framework_id},
            "state": state,
            "source": "SOURCE_EXECUTOR",
            "agent_id": {"value": self.agent_id},
            "uuid": base64.b64encode(uuid).decode(),
        }
        code, _ = post(
            f"{self.master.url}/agent/api/v1",
            {"type": "UPDATE", "agent_id": {"value": self.agent_id}, "update": {"status": status}},
        )
        return code

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProc]:
    with running_master(tmp_path) as m:
        yield m


def test_offer_launch_update_acknowledge(master: MasterProc) -> None:
    agent = ScriptedAgent(master)
    sched = Framework([command_task("hello-1", "echo hello", "cpus:0.5;mem:64")])
    try:
        with driving(sched, f"127.0.0.1:{master.port}", name="launcher"):
            sched.wait_launched()
            run = agent.wait_for("RUN_TASK")["run_task"]
            assert run["task"]["task_id"] == {"value": "hello-1"} and run["framework"]["name"] == "launcher"
            assert agent.update(sched.framework_id, "hello-1", "TASK_RUNNING", b"u" * 16) == 202
            sched.wait_for("hello-1", "TASK_RUNNING")
            ack = agent.wait_for("ACKNOWLEDGE")["acknowledge"]  # pymesos acknowledged implicitly
            assert ack["task_id"] == {"value": "hello-1"} and base64.b64decode(ack["uuid"]) == b"u" * 16
    finally:
        agent.close()


def test_agent_protocol_bad_input(master: MasterProc) -> None:
    url = f"{master.url}/agent/api/v1"
    assert post(url, b"{", "application/json")[0] == 400
    assert post(url, {"type": "REGISTER"}, "text/plain")[0] == 415
    assert (
        post(url, {"type": "REGISTER", "register": {"hostname": "h", "resources": [{"name": "cpus"}]}})[0]
        == 400
    )
    assert post(url, {"type": "REGISTER", "register": {"hostname": "h", "resources": []}})[0] == 400
    assert post(url, {"type": "REGISTER", "register": {}}) == (
        400,
        b"Expecting 'register.hostname' to be present",
    )
    assert post(url, {"type": "UPDATE", "agent_id": {"value": "nope"}}) == (400, b"Agent cannot be found")
    agent_id = json.loads(
        post(
            url,
            {
                "type": "REGISTER",
                "register": {"hostname": "h", "resources": Resources.parse("cpus:1;mem:64").to_json()},
            },
        )[1]
    )["agent_id"]
    assert post(url, {"type": "UPDATE", "agent_id": agent_id, "update": {}})[0] == 400
    assert post(url, {"type": "EXPLODE", "agent_id": agent_id})[0] == 400
    assert post(url, {"type": "PONG", "agent_id": agent_id})[0] == 202
    assert post(url, {"type": "PONG", "agent_id": {"value": "nope"}}) == (400, b"Agent cannot be found")
    res = Resources.parse("cpus:1;mem:64").to_json()
    bad_register = [
        ({"tasks": {"not": "a list"}}, b"Expecting 'register.tasks' and 'register.frameworks' lists"),
        ({"frameworks": "x"}, b"Expecting 'register.tasks' and 'register.frameworks' lists"),
        ({"port": 70000}, b"Expecting 'register.port' to be a TCP port"),
        ({"port": "5051"}, b"Expecting 'register.port' to be a TCP port"),
    ]
    for extra, message in bad_register:
        body = {"hostname": "h", "resources": res, "agent_id": agent_id, **extra}
        assert post(url, {"type": "REGISTER", "register": body}) == (400, message), extra
    # Garbage task reports are skipped, a task with impossible resources is killed, the agent admitted.
    junk = [1, {}, {"framework_id": {"value": "F"}}, {"framework_id": "x", "task": {"task_id": 3}}]
    body = {"hostname": "h", "resources": res, "agent_id": agent_id, "tasks": junk, "frameworks": [1, {}]}
    status, answer = post(url, {"type": "REGISTER", "register": body})
    assert status == 200 and json.loads(answer)["agent_id"] == agent_id
    with urllib.request.urlopen(f"{master.url}/health", timeout=5) as r:  # still healthy
        assert r.status == 200
