"""Deterministic simulation of fast leader election: seeded networks that delay, reorder, duplicate
and drop notifications; servers that restart.  Invariants are checked on every run."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

import pytest

from zk_py.election import Election, Notification, PeerState, Vote, better


@dataclass(order=True)
class Msg:
    at: int
    seq: int
    dst: int = field(compare=False)
    note: Notification = field(compare=False)


class Sim:
    def __init__(self, seed: int, n: int, observers: int = 0, loss: float = 0.0, dup: float = 0.0) -> None:
        self.rnd = random.Random(seed)
        self.sids = list(range(1, n + observers + 1))
        self.voters = frozenset(self.sids[:n])
        self.loss, self.dup = loss, dup
        self.now = 0
        self.seq = 0
        self.queue: list[Msg] = []
        self.down: set[int] = set()
        self.decided_at: dict[int, int] = {}
        # Random histories: several servers may share an epoch or a zxid, so ties exercise the sid rule.
        self.nodes = {
            sid: Election(
                sid,
                self.voters,
                frozenset(s for s in self.sids if s != sid),
                last_zxid=self.rnd.choice([0, 5, 7, 7]),
                current_epoch=self.rnd.choice([1, 2, 2]),
            )
            for sid in self.sids
        }

    def send(self, out: list[tuple[int, Notification]]) -> None:
        for dst, note in out:
            if self.rnd.random() < self.loss:
                continue
            copies = 2 if self.rnd.random() < self.dup else 1
            for _ in range(copies):
                self.seq += 1
                heapq.heappush(self.queue, Msg(self.now + self.rnd.randint(1, 120), self.seq, dst, note))

    def start_all(self) -> None:
        for sid in self.sids:
            self.send(self.nodes[sid].start(self.now + self.rnd.randint(0, 50)))

    def run(self, until: int) -> None:
        while self.now < until:
            if self.queue and self.queue[0].at <= self.now + 10:
                m = heapq.heappop(self.queue)
                self.now = max(self.now, m.at)
                if m.dst not in self.down:
                    self.send(self.nodes[m.dst].receive(m.note, self.now))
            else:
                self.now += 10
            for sid in self.sids:
                if sid not in self.down:
                    self.send(self.nodes[sid].tick(self.now))
                    self.confirm(sid)
            settled = all(
                s in self.decided_at and self.now - self.decided_at[s] >= 2_000
                for s in self.sids
                if s not in self.down
            )
            if settled and not self.queue:
                return

    def confirm(self, sid: int) -> None:
        """What the ZAB layer does after an election (initLimit): a follower that cannot reach a leading
        leader, or a leader that no quorum follows, goes back to LOOKING."""
        e = self.nodes[sid]
        if e.outcome is None:
            self.decided_at.pop(sid, None)
            return
        t = self.decided_at.setdefault(sid, self.now)
        if self.now - t < 2_000:
            return
        o = e.outcome
        if o.state == PeerState.LEADING:
            followers = {
                s
                for s, x in self.nodes.items()
                if s not in self.down and x.outcome and x.outcome.leader == sid and s in self.voters
            }
            ok = len(followers) * 2 > len(self.voters)
        else:
            lead = self.nodes[o.leader]
            ok = (
                o.leader not in self.down
                and lead.outcome is not None
                and lead.outcome.state == PeerState.LEADING
            )
        if not ok:
            self.decided_at.pop(sid, None)
            self.send(e.start(self.now))

    def check(self) -> None:
        decided = {s: e.outcome for s, e in self.nodes.items() if s not in self.down}
        assert all(decided.values()), f"undecided: {[s for s, o in decided.items() if o is None]}"
        leaders = {o.leader for o in decided.values() if o}
        assert len(leaders) == 1, f"servers disagree on the leader: {decided}"
        (leader,) = leaders
        assert leader in self.voters, "an observer was elected"
        for s, o in decided.items():
            assert o is not None
            if s not in self.voters:
                assert o.state == PeerState.OBSERVING
            else:
                assert o.state == (PeerState.LEADING if s == leader else PeerState.FOLLOWING)
        # The leader is at least as up to date as a quorum of voters (what makes ZAB's recovery safe).
        lead = self.nodes[leader]
        mine = Vote(leader, lead.last_zxid, lead.current_epoch)
        not_better = [
            s
            for s in self.voters
            if not better(Vote(s, self.nodes[s].last_zxid, self.nodes[s].current_epoch), mine, self.voters)
        ]
        assert len(not_better) * 2 > len(self.voters)


@pytest.mark.parametrize("n,observers", [(3, 0), (5, 0), (3, 1), (5, 2)])
def test_reordering_and_duplication(n: int, observers: int) -> None:
    for seed in range(300):
        sim = Sim(seed, n, observers, dup=0.2)
        sim.start_all()
        sim.run(until=120_000)
        sim.check()


@pytest.mark.parametrize("n", [3, 5])
def test_message_loss_is_survived_by_resends(n: int) -> None:
    for seed in range(200):
        sim = Sim(seed, n, loss=0.25)
        sim.start_all()
        sim.run(until=600_000)
        sim.check()


@pytest.mark.parametrize("n", [3, 5])
def test_a_restarted_server_rejoins_the_leader(n: int) -> None:
    for seed in range(200):
        sim = Sim(seed, n, dup=0.1)
        sim.start_all()
        sim.run(until=120_000)
        sim.check()
        leader = next(iter({e.outcome.leader for e in sim.nodes.values() if e.outcome}))
        victim = sim.rnd.choice([s for s in sim.sids if s != leader])
        sim.send(sim.nodes[victim].start(sim.now))  # crash + restart: a new round, same history
        sim.run(until=sim.now + 120_000)
        sim.check()
        assert sim.nodes[victim].outcome is not None and sim.nodes[victim].outcome.leader == leader


def test_minority_cannot_elect() -> None:
    """With a majority down, the survivors keep looking and never decide."""
    for seed in range(100):
        sim = Sim(seed, 5)
        sim.down = {1, 2, 3}
        for sid in (4, 5):
            sim.send(sim.nodes[sid].start(0))
        sim.run(until=30_000)
        assert sim.nodes[4].outcome is None and sim.nodes[5].outcome is None
