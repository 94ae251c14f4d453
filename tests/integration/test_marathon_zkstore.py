"""marathon_py's ZooKeeper store and leader election against real servers (zk_py and Apache 3.8.0)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from kazoo.client import KazooClient

from marathon_py.election import LeaderElection
from marathon_py.store import NodeTooLarge, NotLeader, StoreConfig, StoreConflict, StoreError
from marathon_py.zkstore import ZkStore
from tests.support.clients import WAIT, ClientFactory, client_factory
from tests.support.marathon_docs import app, incompressible, root_with, ts
from tests.support.servers import ZkServer

ZK_PATH = "/marathon"


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 4 * WAIT))


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded) for something the code under test makes true on its own."""
    for _ in range(int(WAIT / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {WAIT} s: {what}")


async def loaded(zk: KazooClient, config: StoreConfig | None = None) -> ZkStore:
    store = ZkStore(zk, ZK_PATH, config)
    await store.load()
    return store


def test_state_survives_a_new_leader(zk_server: ZkServer) -> None:
    with client_factory(zk_server.hosts) as make:
        first, second, observer = make(), make(), make()

        async def scenario() -> None:
            a = await loaded(first)
            assert a.root() is None and a.framework_id() is None and not a.instances()
            await a.save_root(root_with(ts(1), app("/a", ts(1)), app("/prod/web", ts(1))))
            big = {**app("/prod/big", ts(2)), "env": {"BLOB": "x" * (100 * 1024)}}  # compressed
            root2 = root_with(ts(2), app("/a", ts(1)), app("/prod/web", ts(2)), big)
            await a.save_root(root2)
            await a.save_deployment("d-1", {"id": "d-1", "steps": [[{"action": "StartApplication"}]]})
            await a.save_deployment("d-2", {"id": "d-2"})
            await a.delete_deployment("d-2")
            await asyncio.gather(*(a.save_instance(f"a.instance-{i}", {"n": i}) for i in range(40)))
            await a.save_instance("a.instance-0", {"n": 0, "goal": "Stopped"})  # the latest write wins
            await a.delete_instance("a.instance-39")
            await a.save_framework_id("fw-0001")
            await a.save_task_failure("/prod/web", {"appId": "/prod/web", "state": "TASK_FAILED"})

            b = await loaded(second)  # a new leader reads everything back
            assert b.root() == root2 and b.root(ts(1)) == a.root(ts(1))
            assert b.root_versions() == [ts(2), ts(1)]
            assert b.app("/prod/big") == big and b.app("/prod/web", ts(1)) == app("/prod/web", ts(1))
            assert b.app_versions("/prod/web") == [ts(2), ts(1)] and b.app_versions("/a") == [ts(1)]
            assert dict(b.deployments()) == {"d-1": a.deployments()["d-1"]}
            assert dict(b.instances()) == dict(a.instances()) and len(b.instances()) == 39
            assert b.instances()["a.instance-0"] == {"n": 0, "goal": "Stopped"}
            assert b.framework_id() == "fw-0001" and b.task_failure("/prod/web") == a.task_failure(
                "/prod/web"
            )
            stored, _ = observer.get(b.layout.app_version("/prod/big", ts(2)))
            assert stored[:1] == b"Z" and len(stored) < 4096
            assert observer.get(b.layout.framework_id)[0] == b'J{"value":"fw-0001"}'

        run(scenario)


def test_versions_are_pruned_at_max_versions(zk_server: ZkServer) -> None:
    with client_factory(zk_server.hosts) as make:
        first, second, observer = make(), make(), make()

        async def scenario() -> None:
            a = await loaded(first)
            for n in range(55):  # /web changes every time, /db never, /gone only at first
                apps = [app("/web", ts(n)), app("/db", ts(0))] + ([app("/gone", ts(0))] if n < 2 else [])
                await a.save_root(root_with(ts(n), *apps))
            assert a.root_versions() == [ts(n) for n in reversed(range(5, 55))]
            assert len(a.app_versions("/web")) == 50 and a.app_versions("/db") == [ts(0)]
            assert a.app_versions("/gone") == []
            assert len(observer.get_children(a.layout.root)) == 50
            assert len(observer.get_children(a.layout.app("/web"))) == 50
            assert observer.exists(a.layout.app("/gone")) is None
            b = await loaded(second)
            assert b.root_versions() == a.root_versions() and b.app_versions("/web") == a.app_versions("/web")
            assert b.root(ts(5)) == a.root(ts(5)) and b.root() == a.root()

        run(scenario)


def test_a_failed_root_save_leaves_nothing_behind(zk_server: ZkServer) -> None:
    with client_factory(zk_server.hosts) as make:
        first, second, observer = make(), make(), make()

        async def scenario() -> None:
            a = await loaded(first)
            root1 = root_with(ts(1), app("/a", ts(1)))
            await a.save_root(root1)
            observer.create(
                a.layout.root_version(ts(2)), b"in the way"
            )  # the root version's create will fail
            root2 = root_with(ts(2), app("/a", ts(2)), app("/new", ts(2)))
            with pytest.raises(StoreError, match="NodeExistsError"):
                await a.save_root(root2)
            assert observer.exists(a.layout.app_version("/a", ts(2))) is None
            assert observer.exists(a.layout.app("/new")) is None  # the app node went with the multi
            assert a.root() == root1 and a.app_versions("/a") == [ts(1)]
            observer.delete(a.layout.root_version(ts(2)))
            await a.save_root(root2)  # the cache was not poisoned by the failure
            assert (await loaded(second)).root() == root2

        run(scenario)


def test_a_second_writer_conflicts_on_the_root(zk_server: ZkServer) -> None:
    with client_factory(zk_server.hosts) as make:
        first, second = make(), make()

        async def scenario() -> None:
            a, b = await loaded(first), await loaded(second)
            await b.save_root(root_with(ts(1), app("/b", ts(1))))
            with pytest.raises(StoreConflict):
                await a.save_root(root_with(ts(2), app("/a", ts(2))))

        run(scenario)


def test_the_node_size_limit_is_enforced_before_writing(zk_server: ZkServer) -> None:
    with client_factory(zk_server.hosts) as make:
        first, observer = make(), make()

        async def scenario() -> None:
            a = await loaded(first, StoreConfig(max_node_size=50_000))
            huge = {**app("/huge", ts(1)), "env": {"BLOB": incompressible(60_000)}}
            with pytest.raises(NodeTooLarge, match=r"app /huge: \d+ bytes would exceed"):
                await a.save_root(root_with(ts(1), huge))
            with pytest.raises(NodeTooLarge):
                await a.save_instance("huge.instance-1", {"blob": incompressible(60_000)})
            assert a.root() is None and not a.instances()
            assert (
                observer.get_children(a.layout.root) == [] and observer.exists(a.layout.app("/huge")) is None
            )

        run(scenario)


async def contender(make: ClientFactory, name: str, **kw: Any) -> tuple[KazooClient, LeaderElection]:
    zk = make()
    election = LeaderElection(zk, ZK_PATH, name, **kw)
    await election.start()
    return zk, election


def test_one_leads_and_the_other_takes_over(zk_server: ZkServer) -> None:
    with client_factory(zk_server.hosts) as make:
        observer = make()

        async def scenario() -> None:
            elected: list[str] = []
            a_zk, a = await contender(make, "127.0.0.1:8080", on_elected=lambda: elected.append("a"))
            await asyncio.wait_for(a.elected.wait(), WAIT)
            b_zk, b = await contender(make, "127.0.0.2:8080", on_elected=lambda: elected.append("b"))
            await until(lambda: b.leader() == "127.0.0.1:8080", "b sees a as leader")
            assert a.is_leader and not b.is_leader and a.leader() == "127.0.0.1:8080"
            names = observer.get_children(a.path)
            assert len(names) == 2 and all(n.startswith("_c_") and "-latch-" in n for n in names)
            assert observer.get(a.node)[0] == b"127.0.0.1:8080"
            a_zk.stop()  # the leader's process dies: its session closes, its znode goes
            await asyncio.wait_for(b.elected.wait(), WAIT)
            assert elected == ["a", "b"] and b.leader() == "127.0.0.2:8080" and b.is_leader
            await asyncio.wait_for(a.lost.wait(), WAIT)
            assert a.lost_reason == "lost the ZooKeeper session" and not b.lost.is_set()
            await b.close()  # a quiet shutdown is no loss
            assert not b.lost.is_set() and observer.get_children(a.path) == []
            b_zk.stop()

        run(scenario)


def test_session_expiry_and_abdication_fire_lost(zk_server: ZkServer) -> None:
    with client_factory(zk_server.hosts) as make:

        async def scenario() -> None:
            lost: list[str] = []
            _, a = await contender(make, "127.0.0.1:8080", on_lost=lost.append)
            b_zk, b = await contender(make, "127.0.0.2:8080")
            await asyncio.wait_for(a.elected.wait(), WAIT)
            # the classic way to expire a session: attach to it from a second client and close that
            twin = make(client_id=b_zk.client_id)
            twin.stop()
            await asyncio.wait_for(b.lost.wait(), WAIT)
            assert b.lost_reason == "lost the ZooKeeper session"
            await a.abdicate()
            await asyncio.wait_for(a.lost.wait(), WAIT)
            assert lost == ["abdicated"] and a.leader() is None

        run(scenario)


def test_a_deposed_leader_cannot_write(zk_server: ZkServer) -> None:
    with client_factory(zk_server.hosts) as make:
        observer = make()

        async def scenario() -> None:
            zk, election = await contender(make, "127.0.0.1:8080")
            await asyncio.wait_for(election.elected.wait(), WAIT)
            store = await loaded(zk)
            store.fence = election.node
            await store.save_instance("a.instance-1", {"n": 1})
            assert election.node is not None
            observer.delete(election.node)  # e.g. an operator, or the session of a partitioned leader
            await asyncio.wait_for(election.lost.wait(), WAIT)
            with pytest.raises(NotLeader):
                await store.save_instance("a.instance-1", {"n": 2})
            with pytest.raises(NotLeader):
                await store.save_root(root_with(ts(1), app("/a", ts(1))))
            assert store.instances()["a.instance-1"] == {"n": 1} and store.root() is None
            assert observer.get_children(store.layout.root) == []

        run(scenario)


def test_a_suspended_leader_steps_down(zk_server: ZkServer) -> None:
    with client_factory(zk_server.hosts) as make:

        async def scenario() -> None:
            _, a = await contender(make, "127.0.0.1:8080")
            await asyncio.wait_for(a.elected.wait(), WAIT)
            await asyncio.to_thread(zk_server.stop)
            await asyncio.wait_for(a.lost.wait(), WAIT)
            assert a.lost_reason == "ZooKeeper connection suspended while leading"

        run(scenario)
