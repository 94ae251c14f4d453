"""Fast leader election (upstream FastLeaderElection.lookForLeader) as a pure state machine.

Messages and clock ticks go in; notifications to send and, once decided, the outcome come
out.  No sockets, no threads, no clock: the asyncio layer (and the deterministic simulator in
the tests) deliver messages and call :meth:`Election.tick`.  This is the first piece of the
ensemble (issue 3); ZAB discovery/sync/broadcast will follow the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum

FINALIZE_WAIT_MS = 200
MAX_NOTIFICATION_INTERVAL_MS = 60_000


class PeerState(IntEnum):
    """Upstream's ServerState ordinals, as they travel in notifications."""

    LOOKING = 0
    FOLLOWING = 1
    LEADING = 2
    OBSERVING = 3


@dataclass(frozen=True, slots=True)
class Vote:
    leader: int
    zxid: int
    peer_epoch: int


@dataclass(frozen=True, slots=True)
class Notification:
    sender: int
    state: PeerState
    vote: Vote
    election_epoch: int


@dataclass(frozen=True, slots=True)
class Outcome:
    state: PeerState
    leader: int
    peer_epoch: int
    election_epoch: int


def better(new: Vote, cur: Vote, voters: frozenset[int]) -> bool:
    """totalOrderPredicate: higher peer epoch, then higher zxid, then higher sid; non-voters never win."""
    if new.leader not in voters:
        return False
    return (new.peer_epoch, new.zxid, new.leader) > (cur.peer_epoch, cur.zxid, cur.leader)


def same_leader(a: Vote, b: Vote) -> bool:
    """Upstream Vote.equals for servers out of election: their zxids may differ (ZOOKEEPER-1732)."""
    return a.leader == b.leader and a.peer_epoch == b.peer_epoch


def has_quorum(supporters: set[int], voters: frozenset[int]) -> bool:
    """A strict majority of the voting members."""
    return len(supporters & voters) * 2 > len(voters)


@dataclass
class Election:
    """One server's view of one round of leader election."""

    sid: int
    voters: frozenset[int]
    peers: frozenset[int]  # everyone to notify: voters and observers, self excluded
    last_zxid: int
    current_epoch: int
    logical_clock: int = 0
    proposal: Vote = field(init=False)
    received: dict[int, Vote] = field(default_factory=dict)
    out_of_election: dict[int, tuple[Vote, PeerState]] = field(default_factory=dict)
    outcome: Outcome | None = None
    _finalize_at: int | None = None
    _resend_at: int = 0
    _interval: int = FINALIZE_WAIT_MS

    def __post_init__(self) -> None:
        self.proposal = self._own_vote()

    @property
    def is_observer(self) -> bool:
        return self.sid not in self.voters

    def _own_vote(self) -> Vote:
        if self.is_observer:  # observers propose nobody they could elect
            return Vote(-1, -1, -1)
        return Vote(self.sid, self.last_zxid, self.current_epoch)

    def _note(self) -> Notification:
        state = PeerState.LOOKING if self.outcome is None else self.outcome.state
        return Notification(self.sid, state, self.proposal, self.logical_clock)

    def _broadcast(self) -> list[tuple[int, Notification]]:
        note = self._note()
        return [(p, note) for p in sorted(self.peers)]

    # ---- inputs

    def start(self, now: int) -> list[tuple[int, Notification]]:
        """Begin a new round: bump the logical clock and vote for ourselves."""
        self.logical_clock += 1
        self.proposal = self._own_vote()
        self.received = {}
        self.out_of_election = {}
        self.outcome = None
        self._finalize_at = None
        self._interval = FINALIZE_WAIT_MS
        self._resend_at = now + self._interval
        if not self.is_observer:
            self.received[self.sid] = self.proposal
        return self._broadcast()

    def receive(self, n: Notification, now: int) -> list[tuple[int, Notification]]:
        """Handle one notification; returns what to send."""
        if self.outcome is not None:
            # Decided: tell a looking peer who leads, so it can join (WorkerReceiver does this).
            if n.state == PeerState.LOOKING:
                return [(n.sender, self._note())]
            return []
        out: list[tuple[int, Notification]] = []
        if n.state == PeerState.LOOKING:
            if n.sender not in self.voters:
                return []  # an observer's vote never counts
            if n.election_epoch > self.logical_clock:
                self.logical_clock = n.election_epoch
                self.received = {}
                own = self._own_vote()
                self.proposal = n.vote if better(n.vote, own, self.voters) else own
                out = self._broadcast()
            elif n.election_epoch < self.logical_clock:
                return [(n.sender, self._note())]  # bring the laggard up to our round
            elif better(n.vote, self.proposal, self.voters):
                self.proposal = n.vote
                out = self._broadcast()
            self.received[n.sender] = n.vote
            if not self.is_observer:
                self.received[self.sid] = self.proposal
            supporters = {s for s, v in self.received.items() if v == self.proposal}
            if has_quorum(supporters, self.voters) and self._finalize_at is None:
                self._finalize_at = now + FINALIZE_WAIT_MS
            elif not has_quorum(supporters, self.voters):
                self._finalize_at = None
            return out
        # The sender has settled (FOLLOWING / LEADING / OBSERVING): join the existing leader.
        if n.election_epoch == self.logical_clock and n.sender in self.voters:
            self.received[n.sender] = n.vote
            supporters = {s for s, v in self.received.items() if v == n.vote}
            if has_quorum(supporters, self.voters) and self._leader_confirmed(n.vote, n.election_epoch):
                return self._decide(n.vote, n.election_epoch)
        self.out_of_election[n.sender] = (n.vote, n.state)
        supporters = {s for s, (v, _) in self.out_of_election.items() if same_leader(v, n.vote)}
        if has_quorum(supporters | {n.vote.leader}, self.voters) and self._leader_confirmed(
            n.vote, n.election_epoch
        ):
            self.logical_clock = n.election_epoch
            return self._decide(n.vote, n.election_epoch)
        return out

    def established(self, epoch: int) -> None:
        """The ZAB layer serves in ``epoch``: report that epoch from now on (upstream updateElectionVote),
        so every member of the ensemble answers a looking server with the same vote."""
        if self.outcome is not None:
            self.proposal = replace(self.proposal, peer_epoch=epoch)
            self.outcome = replace(self.outcome, peer_epoch=epoch)

    def _leader_confirmed(self, vote: Vote, election_epoch: int) -> bool:
        """checkLeader: follow another server only after it said it leads; lead only in our own round."""
        if vote.leader == self.sid:
            return self.logical_clock == election_epoch
        seen = self.out_of_election.get(vote.leader)
        return seen is not None and seen[1] == PeerState.LEADING

    def tick(self, now: int) -> list[tuple[int, Notification]]:
        """Finalize after the quiet period, or resend our vote with exponential backoff."""
        if self.outcome is not None:
            return []
        if self._finalize_at is not None and now >= self._finalize_at:
            return self._decide(self.proposal, self.logical_clock)
        if now >= self._resend_at:
            self._interval = min(self._interval * 2, MAX_NOTIFICATION_INTERVAL_MS)
            self._resend_at = now + self._interval
            return self._broadcast()
        return []

    def _decide(self, vote: Vote, election_epoch: int) -> list[tuple[int, Notification]]:
        if self.is_observer:
            state = PeerState.OBSERVING
        elif vote.leader == self.sid:
            state = PeerState.LEADING
        else:
            state = PeerState.FOLLOWING
        self.proposal = vote
        self.outcome = Outcome(state, vote.leader, vote.peer_epoch, election_epoch)
        self._finalize_at = None
        return self._broadcast()
