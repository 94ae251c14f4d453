"""marathon_py.mesos.MesosClient, the framework's connection to Mesos, against real daemons: zk_py, master-py
(one, or two for failover) and agent-py running command tasks.  What the real master cannot be made to do
on cue (announce a short heartbeat interval and then fall silent, answer 503 then redirect, send ERROR) a
scripted master in the test's own event loop does.  Every wait is bounded; processes are always killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web

from marathon_py.mesos import (
    CallError,
    ClientEvent,
    ClientOptions,
    Disconnected,
    FrameworkRemoved,
    MesosClient,
    NotSubscribed,
    SubscribeError,
)
from marathon_py.schedcalls import framework_info
from master_py import events
from paas_common import recordio
from paas_common import schedapi as sc
from tests.support.agents import AgentProc
from tests.support.clients import WAIT
from tests.support.masters import MasterProc
from tests.support.pymesos_fw import command_task
from tests.support.servers import ZkServer, free_port

T = TypeVar("T")
FLAGS = ("--zk_session_timeout", "2secs", "--allocation_interval", "0.2secs")
FAST = ClientOptions(backoff_min=0.05, backoff_max=1.0, request_timeout=5.0, zk_timeout=5.0)
INFO = framework_info(user="root", hostname="127.0.0.1", name="marathon-test")


def run(scenario: Awaitable[None], timeout: float = 6 * WAIT) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(timeout):
            await scenario

    asyncio.run(bounded())


class Recorder:
    """The consumer: records every event it is handed; ``fail`` makes it raise on chosen events."""

    def __init__(self, fail: Callable[[ClientEvent], bool] = lambda e: False) -> None:
        self.events: list[ClientEvent] = []
        self.fail = fail
        self._new = asyncio.Event()

    async def __call__(self, event: ClientEvent) -> None:
        self.events.append(event)
        self._new.set()
        if self.fail(event):
            raise RuntimeError("the consumer could not handle this one")

    async def wait(
        self, what: str, find: Callable[[list[ClientEvent]], T | None], timeout: float = WAIT
    ) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (found := find(self.events)) is None:
            left = deadline - loop.time()
            assert left > 0, f"{what}; events so far: {self.summary()}"
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), left)
        return found

    def statuses(self, task_id: str) -> list[sc.TaskStatus]:
        return [e.status for e in self.events if isinstance(e, sc.Update) and e.status.task_id == task_id]

    async def status(
        self, task_id: str, state: str, *, reconciled: bool = False, since: int = 0
    ) -> sc.TaskStatus:
        def find(_: list[ClientEvent]) -> sc.TaskStatus | None:
            for s in self.statuses(task_id)[since:]:
                if s.state == state and (s.reason == "REASON_RECONCILIATION") == reconciled:
                    return s
            return None

        return await self.wait(f"{task_id}: no {state}", find)

    async def offer(self) -> dict[str, Any]:
        def find(events: list[ClientEvent]) -> dict[str, Any] | None:
            offers = [o for e in events if isinstance(e, sc.Offers) for o in e.offers]
            return dict(offers[-1]) if offers else None

        return await self.wait("no offer", find)

    def summary(self) -> list[str]:
        return [
            f"{e.status.task_id}:{e.status.state}" if isinstance(e, sc.Update) else type(e).__name__
            for e in self.events
        ]


async def get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as s, s.get(url, timeout=aiohttp.ClientTimeout(total=5)) as r:
        return json.loads(await r.read())


async def eventually(what: str, probe: Callable[[], Awaitable[T | None]], timeout: float = WAIT) -> T:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: object = None
    while loop.time() < deadline:
        try:
            found = await probe()
        except (aiohttp.ClientError, OSError) as e:
            last = e
        else:
            if found is not None:
                return found
            last = found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: last seen {last!r}")


# ---------------------------------------------------------------------------------------------- real daemons


class Cluster:
    def __init__(self, zk: ZkServer, masters: list[MasterProc], agent: AgentProc) -> None:
        self.zk, self.masters, self.agent = zk, masters, agent

    @property
    def zk_url(self) -> str:
        return f"zk://{self.zk.hosts}/mesos"

    async def leader(self) -> MasterProc:
        async def probe() -> MasterProc | None:
            for m in self.masters:
                if m.running() and (await get_json(f"{m.url}/metrics/snapshot")).get("master/elected") == 1:
                    return m
            return None

        return await eventually("a leading master", probe)


def start_cluster(tmp: Path, masters: int) -> Iterator[Cluster]:
    zk = ZkServer("zk_py", tmp / "zk", extra_cfg={"tickTime": "500"})
    procs: list[MasterProc] = []
    agent: AgentProc | None = None
    try:
        zk.start()
        url = f"zk://{zk.hosts}/mesos"
        for n in range(masters):
            procs.append(MasterProc(tmp / f"m{n}", zk=url, flags=FLAGS))
            procs[-1].start()
        agent = AgentProc(tmp / "agent", procs[0], master_url=url)
        agent.start()
        yield Cluster(zk, procs, agent)
    finally:
        if agent is not None:
            agent.cleanup()
        for m in procs:
            m.kill()
        zk.kill()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from start_cluster(tmp_path_factory.mktemp("mesos"), masters=1)


@pytest.fixture
def ha_cluster(tmp_path: Path) -> Iterator[Cluster]:
    yield from start_cluster(tmp_path, masters=2)


async def launch(client: MesosClient, rec: Recorder, task_id: str, command: str) -> tuple[str, sc.TaskStatus]:
    """Launch a command task on the next offer; its agent id and its TASK_RUNNING update."""
    offer = await rec.offer()
    agent_id = offer["agent_id"]["value"]
    task = {**command_task(task_id, command), "agent_id": {"value": agent_id}}
    await client.call(sc.accept([sc.offer_id(offer)], [sc.launch([task])], refuse_seconds=1.0))
    return agent_id, await rec.status(task_id, "TASK_RUNNING")


def test_launch_acknowledge_reconcile_kill_teardown(cluster: Cluster) -> None:
    async def scenario() -> None:
        first_running = {"seen": False}

        def fail_once(e: ClientEvent) -> bool:  # the consumer fails on the first RUNNING: not acknowledged
            if isinstance(e, sc.Update) and e.status.state == "TASK_RUNNING" and e.status.uuid:
                was, first_running["seen"] = first_running["seen"], True
                return not was
            return False

        rec = Recorder(fail_once)
        persisted: list[tuple[str, int]] = []

        async def persist(fid: str) -> None:
            persisted.append((fid, len(rec.events)))

        client = MesosClient(cluster.zk_url, INFO, rec, on_framework_id=persist, options=FAST)
        with pytest.raises(NotSubscribed):
            await client.call(sc.revive())
        async with client:
            await client.wait_connected(WAIT)
            fid = client.framework_id
            assert fid is not None and persisted == [(fid, 0)]  # stored before any event was handled
            assert isinstance(rec.events[0], sc.Subscribed) and rec.events[0].framework_id == fid

            agent_id, running = await launch(client, rec, "sleeper", "sleep 120")
            # The agent sends one update at a time and the next only once the previous is acknowledged:
            # STARTING was, and RUNNING arrived again because the consumer failed on it the first time.
            await rec.wait("RUNNING resent", lambda _: len(rec.statuses("sleeper")) >= 3 or None)
            updates = rec.statuses("sleeper")
            assert [s.state for s in updates[:3]] == ["TASK_STARTING", "TASK_RUNNING", "TASK_RUNNING"]
            assert updates[1].uuid == updates[2].uuid == running.uuid and running.agent_id == agent_id

            await client.call(sc.reconcile([("sleeper", agent_id), ("nope", agent_id)]))
            answer = await rec.status("sleeper", "TASK_RUNNING", reconciled=True)
            assert answer.uuid is None and answer.source == "SOURCE_MASTER"
            gone = await rec.status("nope", "TASK_GONE", reconciled=True)  # PARTITION_AWARE: not TASK_LOST
            assert gone.uuid is None
            n = len(rec.statuses("sleeper"))
            await client.call(sc.reconcile())  # implicit: every task of the framework
            await rec.status("sleeper", "TASK_RUNNING", reconciled=True, since=n)

            await client.call(sc.kill("sleeper", agent_id))
            killed = await rec.status("sleeper", "TASK_KILLED")
            assert killed.uuid and killed.source == "SOURCE_EXECUTOR"
            master = f"{client.leader}/master/state"

            async def completed() -> bool | None:  # the terminal update was acknowledged
                (fw,) = [f for f in (await get_json(master))["frameworks"] if f["id"] == fid]
                return True if [t["id"] for t in fw["completed_tasks"]] == ["sleeper"] else None

            await eventually("TASK_KILLED acknowledged", completed)
            await client.close(teardown=True)
            state = await get_json(master)
            assert fid not in [f["id"] for f in state["frameworks"]]
            assert fid in [f["id"] for f in state["completed_frameworks"]]
        assert persisted == [(fid, 0)]

    run(scenario())


def test_refused_calls_and_a_removed_framework(cluster: Cluster) -> None:
    async def scenario() -> None:
        rec = Recorder()
        client = MesosClient(cluster.zk_url, INFO, rec, options=FAST)
        async with client:
            await client.wait_connected(WAIT)
            fid = client.framework_id
            with pytest.raises(CallError) as refused:
                await client.call({"type": "KILL"})
            assert refused.value.status == 400 and "Expecting 'kill' to be present" in refused.value.body
            assert client.connected  # a refused call does not end the subscription
            # Torn down behind the client's back: its stream ends, and re-subscribing is refused for good.
            await client.call(sc.teardown())
            with pytest.raises(FrameworkRemoved) as removed:
                await asyncio.wait_for(client.join(), WAIT)
            assert removed.value.status == 403 and "Framework has been removed" in str(removed.value)
            assert any(isinstance(e, Disconnected) for e in rec.events)
            assert not client.connected
        # A scheduler started later with the stored id learns it at once, with the master's reason.
        async with MesosClient(cluster.zk_url, INFO, Recorder(), framework_id=fid, options=FAST) as again:
            with pytest.raises(FrameworkRemoved, match=f"{fid}.*Framework has been removed"):
                await again.wait_connected(WAIT)

    run(scenario())


def test_master_failover_keeps_the_framework_and_its_task(ha_cluster: Cluster) -> None:
    async def scenario() -> None:
        rec = Recorder()
        persisted: list[str] = []

        async def persist(fid: str) -> None:
            persisted.append(fid)

        client = MesosClient(ha_cluster.zk_url, INFO, rec, on_framework_id=persist, options=FAST)
        async with client:
            await client.wait_connected(WAIT)
            fid = client.framework_id
            agent_id, _ = await launch(client, rec, "survivor", "sleep 120")
            old = await ha_cluster.leader()
            assert client.leader == old.url

            old.kill()  # kill -9
            await rec.wait(
                "Disconnected", lambda ev: next((e for e in ev if isinstance(e, Disconnected)), None)
            )
            subs = await rec.wait(
                "SUBSCRIBED again", lambda ev: [e for e in ev if isinstance(e, sc.Subscribed)][1:] or None
            )
            assert subs[0].framework_id == fid and client.framework_id == fid and persisted == [fid]
            new = await ha_cluster.leader()
            assert new is not old and client.leader == new.url

            # Reconciliation answers once the agent has re-registered with the new leader: ask until then.
            async def reconciled() -> sc.TaskStatus | None:
                n = len(rec.statuses("survivor"))
                await client.call(sc.reconcile([("survivor", agent_id)]))
                await asyncio.sleep(0.5)
                found = [s for s in rec.statuses("survivor")[n:] if s.reason == "REASON_RECONCILIATION"]
                return found[0] if found else None

            answer = await eventually("a reconciliation answer from the new leader", reconciled)
            assert answer.state == "TASK_RUNNING"
            states = [s.state for s in rec.statuses("survivor")]
            assert "TASK_LOST" not in states and "TASK_KILLED" not in states
            await client.close(teardown=True)

    run(scenario())


# ---------------------------------------------------------------------------------------------- scripted


class ScriptedMaster:
    """A leader that subscribes everyone as ``scripted-0001`` with a 0.2 s heartbeat interval, then sends
    what the test queues (heartbeats only once ``silent`` is off), and answers every other call 202; and a
    standby that answers 503 once, then redirects to the leader as Mesos does (``//host:port/path``)."""

    FID = "scripted-0001"

    def __init__(self) -> None:
        self.port, self.standby_port = free_port(), free_port()
        self.subscribes: list[dict[str, Any]] = []
        self.calls: list[tuple[dict[str, Any], str | None]] = []  # call, its Mesos-Stream-Id
        self.standby_hits = 0
        self.stream_ids: list[str] = []
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.silent = True  # no heartbeats
        self._runners: list[web.AppRunner] = []

    async def __aenter__(self) -> ScriptedMaster:
        for port, view in ((self.port, self.leader), (self.standby_port, self.standby)):
            app = web.Application()
            app.router.add_post("/api/v1/scheduler", view)
            runner = web.AppRunner(app, shutdown_timeout=0.1)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            self._runners.append(runner)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for runner in self._runners:
            await runner.cleanup()

    async def standby(self, request: web.Request) -> web.Response:
        self.standby_hits += 1
        if self.standby_hits == 1:
            return web.Response(status=503, text="No leader elected")
        return web.Response(status=307, headers={"Location": f"//127.0.0.1:{self.port}{request.path}"})

    async def leader(self, request: web.Request) -> web.StreamResponse:
        doc = await request.json()
        if doc["type"] != "SUBSCRIBE":
            self.calls.append((doc, request.headers.get("Mesos-Stream-Id")))
            return web.Response(status=202)
        self.subscribes.append(doc)
        self.stream_ids.append(str(uuid.uuid4()))
        resp = web.StreamResponse(
            headers={"Content-Type": "application/json", "Mesos-Stream-Id": self.stream_ids[-1]}
        )
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        subscribed = events.subscribed(self.FID, {"id": "scripted"})
        subscribed["subscribed"]["heartbeat_interval_seconds"] = 0.2
        queue = self.queue = asyncio.Queue()  # events queued from now on go to this stream
        with contextlib.suppress(ConnectionResetError):
            await resp.write(recordio.encode(json.dumps(subscribed).encode()))
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), 0.2)
                except TimeoutError:
                    if self.silent:
                        continue
                    event = events.heartbeat()
                await resp.write(recordio.encode(json.dumps(event).encode()))
        return resp

    def acks(self) -> list[tuple[dict[str, Any], str | None]]:
        return [(c, sid) for c, sid in self.calls if c["type"] == "ACKNOWLEDGE"]


def test_redirects_manual_acks_silent_stream_and_error() -> None:
    async def scenario() -> None:
        async with ScriptedMaster() as master:
            rec = Recorder()
            persisted: list[str] = []

            async def persist(fid: str) -> None:
                persisted.append(fid)

            client = MesosClient(
                f"127.0.0.1:{free_port()},127.0.0.1:{master.standby_port}",  # nothing listens on the first
                INFO,
                rec,
                on_framework_id=persist,
                auto_ack=False,
                options=FAST,
            )
            async with client:
                await client.wait_connected(WAIT)  # refused, 503, refused, then 307 followed to the leader
                assert master.standby_hits == 2 and client.leader == f"http://127.0.0.1:{master.port}"
                assert "framework_id" not in master.subscribes[0] and persisted == [master.FID]

                status = events.task_status(
                    "t1", "TASK_RUNNING", now=1.0, source="SOURCE_EXECUTOR", agent_id="a1"
                )
                status["uuid"] = "AAAA"
                master.queue.put_nowait(events.update(status))
                master.queue.put_nowait(events.rescind("marker"))
                await rec.wait("the marker", lambda ev: sc.Rescind("marker") in ev or None)
                assert master.acks() == []  # auto_ack=False: the consumer decides
                (update,) = [e for e in rec.events if isinstance(e, sc.Update)]
                await client.ack(update.status)
                assert master.acks() == [
                    (sc.stamp(sc.acknowledge("a1", "t1", "AAAA"), master.FID), master.stream_ids[0])
                ]

                # The leader falls silent (no heartbeats): after 5 intervals the stream counts as dead.
                gone = await rec.wait(
                    "Disconnected", lambda ev: next((e for e in ev if isinstance(e, Disconnected)), None)
                )
                assert "no event or heartbeat" in gone.reason
                await rec.wait(
                    "re-subscribed", lambda ev: [e for e in ev if isinstance(e, sc.Subscribed)][1:] or None
                )
                again = master.subscribes[1]
                assert again["framework_id"] == {"value": master.FID}
                assert again["subscribe"]["framework_info"]["id"] == {"value": master.FID}
                assert persisted == [master.FID]  # the same id: nothing new to store
                master.silent = False

                # ERROR: a scheduler must abort (Marathon crashes); the consumer hears it first.
                master.queue.put_nowait(events.error("Framework has been removed"))
                with pytest.raises(FrameworkRemoved, match="ERROR: Framework has been removed"):
                    await asyncio.wait_for(client.join(), WAIT)
                assert sc.Error("Framework has been removed") in rec.events
                assert isinstance(FrameworkRemoved("x"), SubscribeError)

    run(scenario())
