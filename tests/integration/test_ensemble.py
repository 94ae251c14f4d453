"""ZooKeeper ensembles under faults: replication, observers, leader crash, partition, lost majority, and
linearizable CAS across a failover.  Proven against Apache ZooKeeper 3.8.0; zk_py joins ENSEMBLE_KINDS once
its quorum mode exists."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NotReadOnlyCallError
from kazoo.handlers.threading import KazooTimeoutError

from tests.support.clients import WAIT, client_factory
from tests.support.ensemble import CLIENT_OPTIONS, Ensemble, digest, election_hello_rewriter
from tests.support.linearizability import History, check, run_cas_workload
from tests.support.servers import require_apache

ENSEMBLE_KINDS = ["zk_py", "apache"]
OP_TIMEOUT = 3.0  # bound on one client request; longer than any failover on loopback with tickTime=200
REFUSAL_WAIT = 2.0  # how long a request or session must keep failing to count as refused

UNKNOWN_OUTCOME = (KazooException, KazooTimeoutError)  # connection loss, session expiry, our own timeout

EnsembleFactory = Callable[..., Ensemble]


@pytest.fixture(
    params=[pytest.param(k, marks=pytest.mark.apache) if k == "apache" else k for k in ENSEMBLE_KINDS]
)
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "apache":
        require_apache()
    return str(request.param)


@pytest.fixture
def ensemble(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> Iterator[EnsembleFactory]:
    """``ensemble(**kwargs)`` → a started ``Ensemble``; all are killed afterwards, logs shown on failure."""
    made: list[Ensemble] = []
    failed_before = request.session.testsfailed

    def make(**kw: Any) -> Ensemble:
        ens = Ensemble(kind, tmp_path / f"ensemble{len(made)}", **kw)
        made.append(ens)
        ens.start()
        return ens

    try:
        yield make
    finally:
        for ens in made:
            if request.session.testsfailed > failed_before:
                ens.dump_logs()
            ens.stop()


@contextlib.contextmanager
def clients(*hosts: str) -> Iterator[list[KazooClient]]:
    """One started kazoo client per connection string, all stopped on exit."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(client_factory(h))(**CLIENT_OPTIONS) for h in hosts]


def mntr(ens: Ensemble, sid: int) -> dict[str, str]:
    lines = ens.member(sid).four_letter("mntr").splitlines()
    return dict(line.split("\t", 1) for line in lines if "\t" in line)


def wait_until(what: str, cond: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.05)


def assert_converged(ens: Ensemble, must_exist: set[str]) -> None:
    """Every member holds every path in ``must_exist`` and all members hold the very same tree."""
    snapshots = {sid: ens.tree_snapshot(sid) for sid in ens.members}
    for sid, tree in snapshots.items():
        missing = sorted(must_exist - tree.keys())
        assert not missing, f"member {sid} lost {len(missing)} acknowledged writes, e.g. {missing[:5]}"
    first, *others = snapshots
    for sid in others:
        a, b = snapshots[first], snapshots[sid]
        diff = sorted(p for p in a.keys() | b.keys() if a.get(p) != b.get(p))
        assert not diff, f"members {first} and {sid} differ at {diff[:5]}"
    assert len({digest(tree) for tree in snapshots.values()}) == 1


class Writers:
    """Threads creating sequential znodes under ``parent`` until stopped, remembering what was acknowledged.

    A request that fails or times out may still have been applied: only ``acked`` is a promise.
    """

    def __init__(
        self, hosts: str, parent: str, threads: int = 3, max_ops: int = 5000, pause: float = 0.01
    ) -> None:
        self.hosts = hosts
        self.parent = parent
        self.max_ops = max_ops
        self.pause = pause  # keeps the tree small enough to compare quickly
        self.acked: set[str] = set()
        self.unknown = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def __enter__(self) -> Writers:
        with clients(self.hosts) as (zk,):
            zk.ensure_path(self.parent)
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=OP_TIMEOUT + WAIT)

    def count(self) -> int:
        with self._lock:
            return len(self.acked)

    def wait_for(self, acks: int, timeout: float = 30.0) -> None:
        wait_until(f"{acks} acknowledged writes (have {self.count()})", lambda: self.count() >= acks, timeout)

    def _run(self, i: int) -> None:
        with clients(self.hosts) as (zk,):
            for _ in range(self.max_ops):
                if self._stop.is_set():
                    return
                try:
                    path = zk.create_async(f"{self.parent}/w{i}-", b"x", sequence=True).get(
                        timeout=OP_TIMEOUT
                    )
                except Exception:  # connection loss, timeout, …: the outcome is unknown
                    with self._lock:
                        self.unknown += 1
                else:
                    with self._lock:
                        self.acked.add(path)
                self._stop.wait(self.pause)


def test_election_handshake_advertises_the_proxy() -> None:
    """The dial-back address in ZooKeeper's election hello is rewritten, whatever pieces it arrives in."""
    rewrite = election_hello_rewriter(lambda: ("127.0.0.1", 4242))
    hello = struct.pack(">qqi", -65536, 3, 16) + b"127.0.0.13:38061"
    for cut in range(len(hello)):
        assert rewrite(hello[:cut]) is None
    rewritten = struct.pack(">qqi", -65536, 3, 14) + b"127.0.0.1:4242"
    assert rewrite(hello + b"next message") == rewritten + b"next message"
    old_style = struct.pack(">q", 3)  # protocol version >= 0 is a bare sid: nothing to rewrite
    assert rewrite(old_style) == old_style


def test_three_servers_replicate_to_every_member(ensemble: EnsembleFactory) -> None:
    ens = ensemble()
    leader = ens.sid_of(ens.leader())
    assert len(ens.followers()) == 2
    assert mntr(ens, leader)["zk_synced_followers"] == "2"
    sids = sorted(ens.members)
    with clients(*(ens.member(s).hosts for s in sids)) as zks:
        for sid, zk in zip(sids, zks, strict=True):
            zk.create(f"/written-on-{sid}", str(sid).encode())
        for zk in zks:
            for sid in sids:
                zk.sync(f"/written-on-{sid}")
                assert zk.get(f"/written-on-{sid}")[0] == str(sid).encode()
    assert_converged(ens, {f"/written-on-{sid}" for sid in sids})


def test_observer_serves_reads_without_voting(ensemble: EnsembleFactory) -> None:
    ens = ensemble(voters=5, observers=1)
    (observer,) = ens.observer_ids
    assert ens.mode(observer) == "observer"
    assert [ens.sid_of(m) for m in ens.observers()] == [observer]
    leader_stats = mntr(ens, ens.sid_of(ens.leader()))
    assert (leader_stats["zk_synced_followers"], leader_stats["zk_synced_observers"]) == ("4", "1")
    with clients(ens.hosts_of(ens.voter_ids), ens.member(observer).hosts) as (voter_zk, observer_zk):
        voter_zk.create("/from-a-voter", b"v")
        observer_zk.sync("/from-a-voter")
        assert observer_zk.get("/from-a-voter")[0] == b"v"
        observer_zk.create("/through-the-observer", b"o")  # forwarded to the leader
        voter_zk.sync("/through-the-observer")
        assert voter_zk.get("/through-the-observer")[0] == b"o"
    assert_converged(ens, {"/from-a-voter", "/through-the-observer"})


def test_leader_crash_loses_no_acknowledged_write(ensemble: EnsembleFactory) -> None:
    ens = ensemble()
    old = ens.sid_of(ens.leader())
    with Writers(ens.hosts, "/acked") as writers:
        writers.wait_for(30)
        ens.member(old).kill()
        new = ens.wait_for_leader(exclude=[old])
        writers.wait_for(writers.count() + 30)  # the new leader commits too
    assert new != old
    ens.start_member(old)
    ens.wait_ready()
    assert ens.mode(old) == "follower"
    assert_converged(ens, writers.acked)


def test_partitioned_leader_is_replaced_and_rejoins(ensemble: EnsembleFactory) -> None:
    ens = ensemble(proxied=True)
    old = ens.sid_of(ens.leader())
    majority = [sid for sid in ens.voter_ids if sid != old]
    with (
        clients(ens.member(old).hosts) as (minority_zk,),
        Writers(ens.hosts_of(majority), "/acked") as writers,
    ):
        writers.wait_for(20)
        ens.partition(old)
        # Sent at once, this reaches the old leader while it still thinks it leads; it can never commit it.
        attempt = minority_zk.create_async("/minority-write", b"lost")
        new = ens.wait_for_leader(exclude=[old])
        assert new in majority
        writers.wait_for(writers.count() + 20)
        wait_until("the cut-off leader stops serving", lambda: ens.mode(old) is None)
        with pytest.raises(UNKNOWN_OUTCOME):  # connection loss or timeout: never a success
            attempt.get(timeout=OP_TIMEOUT)
        minority_zk.stop()  # drop anything still queued before the partition heals
    ens.heal()
    ens.wait_ready()
    assert ens.sid_of(ens.leader()) == new
    assert_converged(ens, writers.acked)
    assert "/minority-write" not in ens.tree_snapshot(old)


def test_lost_majority_stops_writes_until_it_returns(ensemble: EnsembleFactory) -> None:
    ens = ensemble()
    leader = ens.sid_of(ens.leader())
    survivor, other = (sid for sid in ens.voter_ids if sid != leader)
    with clients(ens.member(survivor).hosts) as (zk,):
        acked = {zk.create(f"/before-{i}", b"x") for i in range(20)}
        for sid in (leader, other):
            ens.member(sid).stop()
        wait_until("the lone survivor stops serving", lambda: ens.mode(survivor) is None)
        with pytest.raises(UNKNOWN_OUTCOME):  # connection loss or timeout: never a success
            zk.create_async("/during-outage", b"?").get(timeout=REFUSAL_WAIT)
    lonely = KazooClient(hosts=ens.member(survivor).hosts, **CLIENT_OPTIONS)
    try:
        with pytest.raises(KazooTimeoutError):  # no quorum, no session
            lonely.start(timeout=REFUSAL_WAIT)
    finally:
        lonely.stop()
        lonely.close()
    for sid in (leader, other):
        ens.start_member(sid)
    ens.wait_ready()
    with clients(ens.hosts) as (zk,):
        acked.add(zk.create("/after-recovery", b"x"))
    assert_converged(ens, acked)


@pytest.mark.parametrize("fault", ["crash", "partition"])
def test_cas_history_across_leader_failure_is_linearizable(ensemble: EnsembleFactory, fault: str) -> None:
    """Jepsen-style: concurrent read/write/CAS on one znode from every member while the leader crashes
    (kill -9) or is cut off from the majority; the history must be linearizable."""
    ens = ensemble(proxied=fault == "partition")
    old = ens.sid_of(ens.leader())
    members = [ens.member(sid).hosts for sid in sorted(ens.members)]
    # Client i starts on member i % n and fails over to the others in order.
    rotations = [",".join(members[i:] + members[:i]) for i in range(len(members))]
    history = History()
    workload = threading.Thread(
        target=run_cas_workload,
        kwargs={
            "hosts_per_client": rotations,
            "path": "/register",
            "clients": 6,
            "ops_per_client": 40,
            "timeout": 60.0,
            "op_timeout": OP_TIMEOUT,
            "pause": 0.05,
            "seed": 3,
            "history": history,
        },
        daemon=True,
    )
    workload.start()
    wait_until("40 completed ops before the crash", lambda: history.count("ok") >= 40, timeout=30)
    crash = time.monotonic_ns()
    if fault == "crash":
        ens.member(old).kill()
    else:
        ens.partition(old)
    ens.wait_for_leader(exclude=[old])
    workload.join(timeout=60.0 + 2 * OP_TIMEOUT + 20)
    assert not workload.is_alive()
    if fault == "partition":
        ens.heal()
    ops = history.ops()
    assert any(op.status == "ok" and op.invoke > crash and op.kind != "read" for op in ops), (
        "no write after the crash"
    )
    result = check(history)
    assert result.ok, result.explanation


def _log(ens: Ensemble, sid: int) -> str:
    return ens.member(sid).log_path.read_text(errors="replace")


def test_member_with_a_diverged_log_is_truncated_on_restart(ensemble: EnsembleFactory, kind: str) -> None:
    """A leader logs a write no follower ever saw, crashes; after a new epoch it must drop that write."""
    ens = ensemble(proxied=True)
    old = ens.sid_of(ens.leader())
    others = [sid for sid in ens.voter_ids if sid != old]
    with clients(ens.member(old).hosts) as (zk,):
        zk.create("/before", b"b")
        ens.blackhole(old)  # links stay up, nothing gets through: the leader logs but cannot replicate
        attempt = zk.create_async("/diverged", b"never acknowledged")
        time.sleep(0.2)  # within syncLimit (400 ms): the leader still leads and has logged the proposal
        ens.member(old).kill()
        ens.partition(old)  # reset the silent links, dropping whatever they held
        with pytest.raises(UNKNOWN_OUTCOME):
            attempt.get(timeout=OP_TIMEOUT)
    ens.heal()
    ens.wait_for_leader(exclude=[old])
    with clients(ens.hosts_of(others)) as (zk,):
        zk.create("/after", b"a")  # the new epoch has history the old leader lacks
    ens.start_member(old)
    ens.wait_ready()
    assert_converged(ens, {"/before", "/after"})
    assert "/diverged" not in ens.tree_snapshot(old)
    if kind == "zk_py":
        assert "truncated to 0x" in _log(ens, old)


def test_member_without_data_catches_up_from_a_snapshot(ensemble: EnsembleFactory, kind: str) -> None:
    """A member whose disk was replaced rejoins empty: older than the leader's history, it gets SNAP."""
    ens = ensemble(extra_cfg={"snapCount": "20"})
    with clients(ens.hosts) as (zk,):
        for i in range(120):
            zk.create(f"/snap-{i:03d}", b"x" * 100)
    for sid in ens.members:  # restarted leaders start their history at their newest snapshot
        ens.member(sid).stop()
    for sid in ens.members:
        ens.start_member(sid)
    ens.wait_ready()
    with clients(ens.hosts) as (zk,):
        zk.create("/after-restart", b"y")
    victim = ens.sid_of(ens.followers()[0])
    member = ens.member(victim)
    member.stop()
    shutil.rmtree(member.data_dir / "version-2")
    ens.start_member(victim)
    ens.wait_ready()
    assert_converged(ens, {f"/snap-{i:03d}" for i in range(120)} | {"/after-restart"})
    if kind == "zk_py":
        assert "loaded the leader's snapshot" in _log(ens, victim)


def test_sessions_are_global(ensemble: EnsembleFactory) -> None:
    """Sessions live on the leader: renewed through a follower, moved between members, expired everywhere."""
    ens = ensemble()
    f1, f2 = (ens.sid_of(m) for m in ens.followers())
    leader = ens.sid_of(ens.leader())
    with clients(ens.member(f1).hosts, ens.member(leader).hosts) as (zk1, zl):
        zk1.create("/owned", b"e", ephemeral=True)
        sid, passwd = zk1.client_id
        time.sleep(2.5 * zk1._session_timeout / 1000)  # well past the negotiated timeout
        zl.sync("/owned")
        assert zl.exists("/owned") is not None, "a session kept alive on a follower expired on the leader"
        with client_factory(ens.member(f2).hosts) as make:  # the same session on another member
            moved = make(client_id=(sid, passwd), **CLIENT_OPTIONS)
            assert moved.client_id[0] == sid
            assert moved.exists("/owned").ephemeralOwner == sid
        # The session's connections are gone and nobody renews it: the leader expires it for everyone.
        zk1.stop()  # (kazoo closes the session; zk1 was displaced by `moved` anyway)
        wait_until("the ephemeral disappears everywhere", lambda: zl.exists("/owned") is None)
    with clients(ens.member(f2).hosts) as (zk2,):
        zk2.create("/expiring", b"e", ephemeral=True)
        os.kill(ens.member(f2).pid or 0, signal.SIGSTOP)  # its client can no longer renew the session
        try:
            with clients(ens.member(leader).hosts) as (zl,):
                wait_until("the leader expires the silent session", lambda: zl.exists("/expiring") is None)
        finally:
            os.kill(ens.member(f2).pid or 0, signal.SIGCONT)


def test_read_only_mode_serves_reads_without_quorum(tmp_path: Path) -> None:
    """readonlymode.enabled: a member cut off from the quorum serves read-only clients, refuses the rest."""
    with Ensemble("zk_py", tmp_path, extra_cfg={"readonlymode.enabled": "true"}) as ens:
        ens.start()
        with clients(ens.hosts) as (zk,):
            zk.create("/kept", b"v")
        survivor, *others = ens.voter_ids
        for sid in others:
            ens.member(sid).stop()
        srv = ens.member(survivor)
        wait_until("the survivor turns read-only", lambda: srv.four_letter("isro") == "ro")
        assert "Mode: read-only" in srv.four_letter("srvr")
        with client_factory(srv.hosts) as make:
            ro = make(read_only=True, **CLIENT_OPTIONS)
            assert ro.get("/kept")[0] == b"v"
            with pytest.raises(NotReadOnlyCallError):
                ro.create("/refused", b"x")
        rw = KazooClient(hosts=srv.hosts, timeout=2.0, connection_retry={"max_tries": 1})
        try:
            with pytest.raises(KazooTimeoutError):  # a read-write client gets no session
                rw.start(timeout=REFUSAL_WAIT)
        finally:
            rw.stop()
            rw.close()
        for sid in others:
            ens.start_member(sid)
        ens.wait_ready()
        assert srv.four_letter("isro") == "rw"


def test_status_words_read_the_same_as_apache(ensemble: EnsembleFactory) -> None:
    """What scripts and exporters parse: srvr Mode and proposal sizes, conf quorum keys, mntr quorum keys."""
    ens = ensemble(voters=3, observers=1)
    leader = ens.leader()
    lines = leader.four_letter("srvr").splitlines()
    assert "Mode: leader" in lines and re.fullmatch(
        r"Proposal sizes last/min/max: -?\d+/-?\d+/-?\d+", lines[-1]
    )
    follower = ens.followers()[0]
    assert "Mode: follower" in follower.four_letter("srvr").splitlines()
    assert "Proposal sizes" not in follower.four_letter("srvr")
    sid = ens.sid_of(follower)
    conf = follower.four_letter("conf").splitlines()
    peer = ens.peers[sid]
    for line in (
        f"serverId={sid}",
        f"quorumPort={peer.quorum_port}",
        f"electionPort={peer.election_port}",
        "peerType=0",
        "electionAlg=3",
        "membership: ",
        "version=0",
    ):
        assert line in conf
    assert sum(line.startswith("server.") for line in conf) == 4
    (observer,) = ens.observer_ids
    assert "peerType=1" in ens.member(observer).four_letter("conf").splitlines()
    stats = mntr(ens, ens.sid_of(leader))
    assert stats["zk_server_state"] == "leader" and stats["zk_peer_state"] == "leading - broadcast"
    assert (stats["zk_learners"], stats["zk_synced_followers"], stats["zk_synced_observers"]) == (
        "3",
        "2",
        "1",
    )
    assert mntr(ens, sid)["zk_peer_state"] == "following - broadcast"
    assert follower.four_letter("isro") == "rw"
