"""kazoo 2.11's recipes against zk_py and Apache ZooKeeper 3.8.0.

The recipes combine ephemeral-sequential nodes, one-shot watches and versioned writes, so they
exercise the server's ordering and notification rules together.  Every contender runs on its own
client (its own session); threads wait on events with timeouts, never on unbounded sleeps.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionClosedError, LockTimeout, NoNodeError
from kazoo.protocol.states import ZnodeStat
from kazoo.recipe.barrier import Barrier, DoubleBarrier
from kazoo.recipe.counter import Counter
from kazoo.recipe.election import Election
from kazoo.recipe.lock import Lock, Semaphore
from kazoo.recipe.party import Party, ShallowParty
from kazoo.recipe.queue import LockingQueue, Queue
from kazoo.recipe.watchers import ChildrenWatch, DataWatch

if TYPE_CHECKING:
    pass

from tests.support.clients import WAIT, ClientFactory


@pytest.fixture
def base(zk: KazooClient) -> str:
    """A fresh parent node per test, so tests never see each other's nodes."""
    return zk.create(f"/krec-{uuid.uuid4().hex[:10]}")


class Worker(threading.Thread):
    """A daemon thread that keeps its exception for the test to re-raise."""

    def __init__(self, target: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None
        self.result: Any = None

    def run(self) -> None:
        try:
            self.result = self._target_fn()
        except BaseException as e:
            self.error = e

    def finish(self, timeout: float = WAIT) -> Any:
        self.join(timeout)
        assert not self.is_alive(), "worker did not finish in time"
        if self.error is not None:
            raise self.error
        return self.result


def _wait_until(cond: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll a server-side condition with a hard deadline."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _take(q: queue.Queue[Any], timeout: float = WAIT) -> Any:
    try:
        return q.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"nothing arrived within {timeout}s") from None


# --------------------------------------------------------------------------- Lock / Semaphore


def test_lock_gives_mutual_exclusion(make_client: ClientFactory, zk: KazooClient, base: str) -> None:
    """An unversioned read-modify-write counter only adds up if the lock really excludes."""
    counter = zk.create(f"{base}/counter", b"0")
    lock_path = f"{base}/lock"
    rounds, workers = 15, 3
    inside = [0]
    max_inside = [0]
    guard = threading.Lock()

    def contend(i: int) -> None:
        client = make_client()
        lock = Lock(client, lock_path, identifier=f"w{i}")
        for _ in range(rounds):
            assert lock.acquire(timeout=WAIT)
            try:
                with guard:
                    inside[0] += 1
                    max_inside[0] = max(max_inside[0], inside[0])
                value = int(client.get(counter)[0])
                client.set(counter, str(value + 1).encode())
                with guard:
                    inside[0] -= 1
            finally:
                lock.release()

    threads = [Worker(lambda i=i: contend(i)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.finish(WAIT * 3)
    assert zk.get(counter)[0] == str(rounds * workers).encode()
    assert max_inside[0] == 1
    assert zk.get_children(lock_path) == []  # every contender cleaned up its node


def test_lock_released_when_holder_session_closes(make_client: ClientFactory, base: str) -> None:
    holder, waiter = make_client(), make_client()
    lock_path = f"{base}/lock"
    held = Lock(holder, lock_path, identifier="holder")
    assert held.acquire(timeout=WAIT)
    other = Lock(waiter, lock_path, identifier="waiter")
    assert other.acquire(blocking=False) is False
    with pytest.raises(LockTimeout):
        other.acquire(timeout=0.5)
    got = threading.Event()

    def wait_for_lock() -> None:
        if other.acquire(timeout=WAIT):
            got.set()

    t = Worker(wait_for_lock)
    t.start()
    _wait_until(lambda: len(waiter.get_children(lock_path)) == 2, "the waiter's contender node")
    assert other.contenders() == ["holder", "waiter"]
    assert not got.is_set()
    holder.stop()  # closeSession deletes the holder's ephemeral lock node
    t.finish()
    assert got.is_set() and other.is_acquired
    assert other.contenders() == ["waiter"]
    other.release()
    assert waiter.get_children(lock_path) == []


def test_semaphore_caps_concurrent_leases(make_client: ClientFactory, base: str) -> None:
    clients = [make_client() for _ in range(3)]
    sems = [Semaphore(c, f"{base}/sem", identifier=f"s{i}", max_leases=2) for i, c in enumerate(clients)]
    assert sems[0].acquire(timeout=WAIT) and sems[1].acquire(timeout=WAIT)
    assert sems[2].acquire(blocking=False) is False
    assert sorted(sems[2].lease_holders()) == ["s0", "s1"]
    sems[0].release()
    assert sems[2].acquire(timeout=WAIT)
    assert sorted(sems[1].lease_holders()) == ["s1", "s2"]
    for s in sems[1:]:
        s.release()


# --------------------------------------------------------------------------- Election


def test_election_second_takes_over_after_first_leaves(make_client: ClientFactory, base: str) -> None:
    c1, c2, observer = make_client(), make_client(), make_client()
    path = f"{base}/election"
    leading: queue.Queue[str] = queue.Queue()
    done = {"one": threading.Event(), "two": threading.Event()}

    def lead(name: str) -> None:
        leading.put(name)
        done[name].wait(WAIT * 2)

    e1, e2 = Election(c1, path, "one"), Election(c2, path, "two")
    t1 = Worker(lambda: e1.run(lead, "one"))
    t1.start()
    assert _take(leading) == "one"
    t2 = Worker(lambda: e2.run(lead, "two"))
    t2.start()
    _wait_until(lambda: len(observer.get_children(path)) == 2, "the second contender")
    assert Election(observer, path).contenders() == ["one", "two"]
    assert leading.empty()  # the second contender waits while the first leads
    c1.stop()  # the leader's session ends; its lock node goes with it
    assert _take(leading) == "two"
    assert Election(observer, path).contenders() == ["two"]
    done["one"].set()
    done["two"].set()
    with pytest.raises(ConnectionClosedError):
        t1.finish()  # the deposed leader's client is closed, so kazoo cannot release its (gone) node
    t2.finish()
    _wait_until(lambda: observer.get_children(path) == [], "the election to empty")


def test_election_cancel_before_winning(make_client: ClientFactory, base: str) -> None:
    c1, c2 = make_client(), make_client()
    path = f"{base}/election"
    leading: queue.Queue[str] = queue.Queue()
    release = threading.Event()
    e1, e2 = Election(c1, path, "one"), Election(c2, path, "two")
    t1 = Worker(lambda: e1.run(lambda: (leading.put("one"), release.wait(WAIT * 2))))
    t1.start()
    assert _take(leading) == "one"
    t2 = Worker(lambda: e2.run(lambda: leading.put("two")))
    t2.start()
    _wait_until(lambda: len(c1.get_children(path)) == 2, "the second contender")
    e2.cancel()
    t2.finish()
    assert leading.empty()
    _wait_until(lambda: e1.contenders() == ["one"], "the cancelled contender to leave")
    release.set()
    t1.finish()


# --------------------------------------------------------------------------- queues


def test_queue_fifo_across_clients(make_client: ClientFactory, base: str) -> None:
    producer, consumer = make_client(), make_client()
    path = f"{base}/q"
    q_in, q_out = Queue(producer, path), Queue(consumer, path)
    for item in (b"a", b"b", b"c"):
        q_in.put(item)
    Queue(consumer, path).put(b"d")
    assert len(q_out) == 4
    assert [q_out.get() for _ in range(4)] == [b"a", b"b", b"c", b"d"]
    assert q_out.get() is None and len(q_in) == 0
    q_in.put(b"low", priority=200)
    q_in.put(b"high", priority=1)
    q_in.put(b"mid")
    assert [q_out.get(), q_out.get(), q_out.get()] == [b"high", b"mid", b"low"]


def test_queue_concurrent_consumers_take_each_item_once(make_client: ClientFactory, base: str) -> None:
    path = f"{base}/q"
    producer = Queue(make_client(), path)
    items = [f"item-{i:03d}".encode() for i in range(60)]
    for item in items:
        producer.put(item)
    taken: list[list[bytes]] = [[], [], []]

    def consume(out: list[bytes]) -> None:
        q = Queue(make_client(), path)
        while (item := q.get()) is not None:
            out.append(item)

    threads = [Worker(lambda out=out: consume(out)) for out in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.finish(WAIT * 3)
    assert sorted(b for part in taken for b in part) == items
    for part in taken:
        assert part == sorted(part)  # each consumer sees items in queue order


def test_locking_queue(make_client: ClientFactory, base: str) -> None:
    path = f"{base}/lq"
    producer = LockingQueue(make_client(), path)
    producer.put_all([b"a", b"b", b"c"])
    assert len(producer) == 3
    c1, c2 = make_client(), make_client()
    q1, q2 = LockingQueue(c1, path), LockingQueue(c2, path)
    assert q1.get(timeout=WAIT) == b"a"
    assert q1.get(timeout=WAIT) == b"a"  # an unconsumed entry is returned again
    assert q2.get(timeout=WAIT) == b"b"  # "a" is locked by q1
    assert q1.holds_lock() and q2.holds_lock()
    assert q1.release()  # give "a" back unconsumed
    assert q1.get(timeout=WAIT) == b"a"
    assert q1.consume() and q2.consume()
    assert len(producer) == 1
    # a consumer whose session ends gives its entry back
    c3 = make_client()
    assert LockingQueue(c3, path).get(timeout=WAIT) == b"c"
    assert q1.get(timeout=0.5) is None
    c3.stop()
    assert q1.get(timeout=WAIT) == b"c"
    assert q1.consume()
    assert len(producer) == 0
    # a blocked get wakes up when an entry arrives
    t = Worker(lambda: q2.get(timeout=WAIT))
    t.start()
    t.join(0.3)
    assert t.is_alive()  # the queue is empty, so get() waits on a children watch
    producer.put(b"late")
    assert t.finish() == b"late"
    assert q2.consume()


# --------------------------------------------------------------------------- barriers


def test_barrier_blocks_until_removed(make_client: ClientFactory, base: str) -> None:
    path = f"{base}/barrier"
    owner = Barrier(make_client(), path)
    assert Barrier(make_client(), path).wait(timeout=0.1) is True  # no barrier, no wait
    owner.create()
    barriers = [Barrier(make_client(), path) for _ in range(2)]
    waiters = [Worker(lambda b=b: b.wait(timeout=WAIT)) for b in barriers]
    for w in waiters:
        w.start()
    assert Barrier(make_client(), path).wait(timeout=0.3) is False
    assert all(w.is_alive() for w in waiters)
    assert owner.remove()
    assert [w.finish() for w in waiters] == [True, True]
    assert owner.remove() is False  # already gone


def test_double_barrier_enter_and_leave_together(
    make_client: ClientFactory, zk: KazooClient, base: str
) -> None:
    path = f"{base}/dbl"
    n = 3
    entered = [threading.Event() for _ in range(n)]
    go_leave = [threading.Event() for _ in range(n)]
    left = [threading.Event() for _ in range(n)]

    def member(i: int) -> bool:
        db = DoubleBarrier(make_client(), path, n, identifier=f"m{i}")
        db.enter()
        entered[i].set()
        assert go_leave[i].wait(WAIT * 2)
        db.leave()
        left[i].set()
        return bool(db.participating is False)

    def members_present() -> int:
        try:
            return len([c for c in zk.get_children(path) if c != "ready"])
        except NoNodeError:
            return 0

    workers = [Worker(lambda i=i: member(i)) for i in range(n)]
    workers[0].start()
    workers[1].start()
    _wait_until(lambda: members_present() == 2, "two members at the barrier")
    assert not any(e.is_set() for e in entered)  # nobody passes before everyone arrived
    workers[2].start()
    for e in entered:
        assert e.wait(WAIT)
    go_leave[0].set()
    go_leave[1].set()
    assert not left[0].wait(0.5)  # nobody finishes leaving before everyone left
    assert not any(e.is_set() for e in left)
    assert members_present() >= 1
    go_leave[2].set()
    assert [w.finish(WAIT * 2) for w in workers] == [True, True, True]
    assert members_present() == 0


# --------------------------------------------------------------------------- counter, party


def test_counter_concurrent_increments_add_up(make_client: ClientFactory, zk: KazooClient, base: str) -> None:
    path = f"{base}/count"
    clients = [make_client(), make_client()]
    per_thread, threads_per_client = 20, 2

    def bump(client: KazooClient) -> None:
        counter = Counter(client, path)
        for _ in range(per_thread):
            counter += 1

    threads = [Worker(lambda c=c: bump(c)) for c in clients for _ in range(threads_per_client)]
    for t in threads:
        t.start()
    for t in threads:
        t.finish(WAIT * 3)
    total = per_thread * threads_per_client * len(clients)
    assert Counter(zk, path).value == total
    data, stat = zk.get(path)
    assert data == str(total).encode() and stat.version == total
    c = Counter(zk, path)
    c -= 5
    assert (c.pre_value, c.post_value) == (total, total - 5)
    floats = Counter(zk, f"{base}/f", default=0.5)
    floats += 1.25
    assert Counter(make_client(), f"{base}/f", default=0.0).value == 1.75


@pytest.mark.parametrize("kind", [Party, ShallowParty])
def test_party_membership(make_client: ClientFactory, base: str, kind: type) -> None:
    path = f"{base}/party"
    c1, c2, watcher = make_client(), make_client(), make_client()
    alpha, beta = kind(c1, path, "alpha"), kind(c2, path, "beta")
    view = kind(watcher, path)
    assert len(view) == 0 and list(view) == []
    alpha.join()
    beta.join()
    assert sorted(view) == ["alpha", "beta"] and len(view) == 2
    assert beta.leave() is True
    assert list(view) == ["alpha"]
    beta.join()
    c1.stop()  # a member whose session ends leaves the party
    assert list(view) == ["beta"]


# --------------------------------------------------------------------------- watch recipes


def test_data_watch_sees_every_state_in_order(make_client: ClientFactory, zk: KazooClient, base: str) -> None:
    writer = make_client()
    path = f"{base}/dw"
    seen: queue.Queue[tuple[bytes | None, int | None]] = queue.Queue()

    def on_change(data: bytes | None, stat: ZnodeStat | None) -> None:
        seen.put((data, stat.version if stat else None))

    DataWatch(zk, path, on_change)
    assert _take(seen) == (None, None)  # a missing node is reported, and watched for creation
    writer.create(path, b"v0")
    assert _take(seen) == (b"v0", 0)
    for i in range(1, 4):
        writer.set(path, f"v{i}".encode())
        assert _take(seen) == (f"v{i}".encode(), i)
    writer.delete(path)
    assert _take(seen) == (None, None)
    writer.create(path, b"again")
    assert _take(seen) == (b"again", 0)


def test_data_watch_stops_when_callback_returns_false(
    make_client: ClientFactory, zk: KazooClient, base: str
) -> None:
    writer = make_client()
    path = zk.create(f"{base}/dw", b"0")
    calls: queue.Queue[bytes] = queue.Queue()

    def once(data: bytes | None, _stat: ZnodeStat | None) -> bool:
        calls.put(data or b"")
        return data != b"1"

    DataWatch(zk, path, once)
    assert _take(calls) == b"0"
    writer.set(path, b"1")
    assert _take(calls) == b"1"
    writer.set(path, b"2")
    writer.set(path, b"3")
    with pytest.raises(AssertionError):
        _take(calls, timeout=0.5)


def test_children_watch_sees_every_state_in_order(
    make_client: ClientFactory, zk: KazooClient, base: str
) -> None:
    writer = make_client()
    path = zk.create(f"{base}/cw")
    seen: queue.Queue[list[str]] = queue.Queue()
    ChildrenWatch(zk, path, lambda children: seen.put(sorted(children)))
    assert _take(seen) == []
    writer.create(f"{path}/a")
    assert _take(seen) == ["a"]
    writer.create(f"{path}/b", ephemeral=True)
    assert _take(seen) == ["a", "b"]
    writer.delete(f"{path}/a")
    assert _take(seen) == ["b"]
    writer.stop()  # the ephemeral child vanishes with its session
    assert _take(seen) == []


def test_children_watch_sees_a_transaction_atomically(
    make_client: ClientFactory, zk: KazooClient, base: str
) -> None:
    writer = make_client()
    path = zk.create(f"{base}/tx")
    seen: queue.Queue[list[str]] = queue.Queue()
    ChildrenWatch(zk, path, lambda children: seen.put(sorted(children)))
    assert _take(seen) == []
    with writer.transaction() as tx:
        tx.create(f"{path}/x", b"1")
        tx.create(f"{path}/y", b"2")
        tx.create(f"{path}/z-", b"3", sequence=True)
    assert tx.committed
    assert _take(seen) == ["x", "y", "z-0000000002"]  # never a partial view
    tx = writer.transaction()
    tx.delete(f"{path}/x")
    tx.set_data(f"{path}/y", b"two", version=0)
    tx.check(f"{path}/z-0000000002", 0)
    results = tx.commit()
    assert results[0] is True and isinstance(results[1], ZnodeStat) and results[2] is True
    assert _take(seen) == ["y", "z-0000000002"]
    assert zk.get(f"{path}/y")[0] == b"two"
