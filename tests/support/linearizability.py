"""A linearizability checker for one versioned register (a ZooKeeper znode), plus a kazoo workload for it.

The register holds ``(value, version)`` and supports ZooKeeper's three single-node operations:

- ``read`` → ``(value, version)``: ``sync`` then ``get`` (a bare ``get`` on a follower may be stale, which
  ZooKeeper allows, so it is not a linearizable read);
- ``write(value)`` → the new version: ``set`` with version -1;
- ``cas((expected, value))`` → the new version: ``set`` with version ``expected``.  BadVersion is recorded
  as ``fail`` and checked too: the version must have differed at the moment the CAS took effect.

The checker is Wing & Gong's search with Lowe's memoisation (as in Porcupine): walk the history in time
order, tentatively linearize any pending call whose result the model accepts, backtrack when some operation's
return is reached before it was linearized, and never revisit a (set of linearized ops, register state)
pair.  Operations whose outcome is unknown (``info``: timeout, connection loss, or never completed) took
effect at some point after their invocation or never, exactly as Jepsen's ``:info``: they have no return
event, accept whatever result the model gives, and are only linearized where they change the register —
"never" is the same as "after everything else".  Timeouts would still make the search blow up (every subset
of them is a candidate), so ``_prepare`` first pins down what the reads reveal about them (see there).
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError

from tests.support.ensemble import CLIENT_OPTIONS

OpKind = Literal["read", "write", "cas"]
Status = Literal["pending", "ok", "fail", "info"]
State = tuple[Hashable, int]  # (value, version)


@dataclass(frozen=True)
class Op:
    """One operation as a client saw it; times are ``time.monotonic_ns()``."""

    id: int
    client: int
    kind: OpKind
    arg: Any  # write: value; cas: (expected_version, value); read: None
    invoke: int
    complete: int | None = None
    status: Status = "pending"
    result: Any = None  # read: (value, version); write / cas: the new version

    def __str__(self) -> str:
        arg = "" if self.kind == "read" else repr(self.arg)
        res = f" -> {self.result!r}" if self.status == "ok" else ""
        return f"#{self.id} client {self.client} {self.kind}({arg}) {self.status}{res}"


class History:
    """A thread-safe recorder: ``invoke`` before sending, then exactly one of ``ok`` / ``fail`` / ``info``.

    ``fail`` means the operation certainly had no effect — for a CAS, ZooKeeper's BadVersion, which the
    checker holds to its meaning (the version differed); ``info`` that it may or may not have taken effect.
    Operations still pending when the history is checked count as ``info``.
    """

    def __init__(self, initial: State = (None, 0)) -> None:
        self.initial = initial
        self._ops: list[Op] = []
        self._lock = threading.Lock()

    def invoke(self, client: int, kind: OpKind, arg: Any = None) -> int:
        with self._lock:
            op = Op(len(self._ops), client, kind, arg, time.monotonic_ns())
            self._ops.append(op)
            return op.id

    def _complete(self, op_id: int, status: Status, result: Any = None) -> None:
        now = time.monotonic_ns()
        with self._lock:
            op = self._ops[op_id]
            if op.status != "pending":
                raise ValueError(f"{op} completed twice")
            self._ops[op_id] = replace(op, complete=now, status=status, result=result)

    def ok(self, op_id: int, result: Any) -> None:
        self._complete(op_id, "ok", result)

    def fail(self, op_id: int) -> None:
        self._complete(op_id, "fail")

    def info(self, op_id: int) -> None:
        self._complete(op_id, "info")

    def ops(self) -> list[Op]:
        with self._lock:
            return list(self._ops)

    def count(self, status: Status) -> int:
        with self._lock:
            return sum(1 for op in self._ops if op.status == status)

    def __len__(self) -> int:
        with self._lock:
            return len(self._ops)


@dataclass(frozen=True)
class Result:
    ok: bool
    explanation: str


class SearchBudgetExceeded(RuntimeError):
    """The search gave up: no verdict either way (raise the budget or shorten the history)."""


# ---------------------------------------------------------------------------------------------- the model


def _known(op: Op) -> bool:
    """Whether the op's outcome is known (it has a return event the linearization must respect)."""
    return op.status in ("ok", "fail")


def _step(state: State, op: Op) -> State | None:
    """The register after ``op`` at this point, or None if ``op`` cannot (or need not) take effect here."""
    version = state[1]
    if op.kind == "read":
        return state if op.result == state else None
    if op.kind == "write":
        if _known(op) and op.result != version + 1:
            return None
        return (op.arg, version + 1)
    expected, new_value = op.arg
    if op.status == "fail":  # BadVersion: legal only where the version differed
        return state if version != expected else None
    if version != expected:  # an ok CAS cannot fail; an unknown one failing here is the same as "never"
        return None
    if _known(op) and op.result != version + 1:
        return None
    return (new_value, version + 1)


def _relevant(op: Op) -> bool:
    """Ops the search must place: reads and writes that certainly failed, or reads of unknown outcome, are
    invisible to every other operation."""
    if op.status in ("pending", "info"):
        return op.kind != "read"
    return op.status == "ok" or op.kind == "cas"


# ---------------------------------------------------------------------------------------------- the search


class _Entry:
    __slots__ = ("index", "is_call", "match", "next", "prev")

    def __init__(self, index: int, is_call: bool) -> None:
        self.index = index
        self.is_call = is_call
        self.match: _Entry | None = None
        self.prev: _Entry | None = None
        self.next: _Entry | None = None


def _build_list(ops: list[Op]) -> _Entry:
    """The events as a doubly linked list behind a head; on equal times calls come first (permissive)."""
    events: list[tuple[int, int, _Entry]] = []
    for i, op in enumerate(ops):
        call = _Entry(i, True)
        events.append((op.invoke, 0, call))
        if _known(op):
            ret = _Entry(i, False)
            call.match = ret
            assert op.complete is not None
            events.append((op.complete, 1, ret))
    events.sort(key=lambda e: (e[0], e[1]))
    head = _Entry(-1, False)
    prev = head
    for _, _, entry in events:
        prev.next = entry
        entry.prev = prev
        prev = entry
    return head


def _lift(call: _Entry) -> None:
    for entry in (call, call.match):
        if entry is None:
            continue
        assert entry.prev is not None
        entry.prev.next = entry.next
        if entry.next is not None:
            entry.next.prev = entry.prev


def _unlift(call: _Entry) -> None:
    for entry in (call.match, call):
        if entry is None:
            continue
        assert entry.prev is not None
        entry.prev.next = entry
        if entry.next is not None:
            entry.next.prev = entry


class _Unread:
    """Stands in for the value of an unknown write no read ever returned (see ``_prepare``)."""

    def __repr__(self) -> str:
        return "<a value no read returned>"


_UNREAD = _Unread()


def _written(op: Op) -> Hashable:
    return op.arg if op.kind == "write" else op.arg[1] if op.kind == "cas" else None


def _prepare(all_ops: list[Op], initial: State) -> tuple[list[Op], list[tuple[int, int] | None]]:
    """The ops the search places, and for each one its (symmetry group, rank in the group) or None.

    Two facts about unknown writes (and CASes) shrink the search without losing any linearization:

    - One whose value a read returned, written by no other op, certainly took effect, with the version
      that read saw, before that read completed: it becomes a known op with that result and return time.
    - Ones whose value no read returned are interchangeable: only their count shows (through versions).
      Their values become one placeholder, and within a group (all such writes; such CASes with the same
      expected version) they are placed in invocation order only: swapping two members of a group in any
      linearization leaves it valid.  Without this the search tries every subset of the timed-out writes.
    """
    ops = sorted((op for op in all_ops if _relevant(op)), key=lambda o: (o.invoke, o.id))
    writers: dict[Hashable, int] = {}
    for op in ops:
        if op.kind != "read":
            writers[_written(op)] = writers.get(_written(op), 0) + 1
    first_read: dict[Hashable, tuple[int, int]] = {}  # value -> (earliest read completion, version seen)
    for op in ops:
        if op.kind == "read" and op.status == "ok":
            assert op.complete is not None
            seen_at = (op.complete, op.result[1])
            first_read[op.result[0]] = min(first_read.get(op.result[0], seen_at), seen_at)
    groups: dict[Hashable, list[int]] = {}  # group key -> [group number, members so far]
    members: list[tuple[int, int] | None] = []
    for i, op in enumerate(ops):
        value = _written(op)
        if _known(op) or op.kind == "read" or (value in first_read and writers[value] > 1):
            members.append(None)
        elif value in first_read:
            members.append(None)
            if value != initial[0]:
                complete, version = first_read[value]
                ops[i] = replace(op, status="ok", complete=complete, result=version)
        else:
            group = groups.setdefault("write" if op.kind == "write" else ("cas", op.arg[0]), [len(groups), 0])
            members.append((group[0], group[1]))
            group[1] += 1
            ops[i] = replace(op, arg=_UNREAD if op.kind == "write" else (op.arg[0], _UNREAD))
    return ops, members


def check(history: History | Sequence[Op], initial: State | None = None, budget: int = 500_000) -> Result:
    """Decide whether the history is linearizable.

    ``budget`` bounds the search by the number of distinct (linearized set, state) pairs it may visit,
    which bounds both its memory and (at a few microseconds each) its time; over it, no verdict is given.
    """
    if isinstance(history, History):
        initial = history.initial if initial is None else initial
        all_ops = history.ops()
    else:
        all_ops = list(history)
    state: State = initial if initial is not None else (None, 0)
    ops, members = _prepare(all_ops, state)
    placed_in_group = [0] * (1 + max((m[0] for m in members if m is not None), default=-1))
    known_left = sum(1 for op in ops if _known(op))
    head = _build_list(ops)
    linearized = 0
    seen: set[tuple[int, State]] = set()
    stack: list[tuple[_Entry, State]] = []
    best: tuple[int, Op | None, State, list[int]] = (-1, None, state, [])
    entry = head.next
    while known_left:
        assert entry is not None, "a known op always has a return event after its call"
        op = ops[entry.index]
        if entry.is_call:
            member = members[entry.index]
            new_state = None if member and member[1] != placed_in_group[member[0]] else _step(state, op)
            if new_state is not None:
                key = (linearized | (1 << entry.index), new_state)
                if key not in seen:
                    if len(seen) >= budget:
                        raise SearchBudgetExceeded(f"no verdict after {budget} states over {len(ops)} ops")
                    seen.add(key)
                    stack.append((entry, state))
                    state, linearized = new_state, key[0]
                    known_left -= _known(op)
                    if member:
                        placed_in_group[member[0]] += 1
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
            continue
        # A return event of an op not yet linearized: this prefix is a dead end.
        if len(stack) > best[0]:
            best = (len(stack), op, state, [ops[e.index].id for e, _ in stack])
        if not stack:
            break
        call, state = stack.pop()
        linearized &= ~(1 << call.index)
        known_left += _known(ops[call.index])
        member = members[call.index]
        if member:
            placed_in_group[member[0]] -= 1
        _unlift(call)
        entry = call.next
    if not known_left:
        return Result(True, f"linearizable ({len(ops)} ops placed, {len(seen)} states explored)")
    return Result(False, _explain(all_ops, best))


def _explain(all_ops: list[Op], best: tuple[int, Op | None, State, list[int]]) -> str:
    depth, stuck, state, prefix = best
    by_id = {op.id: op for op in all_ops}
    tail = "\n".join(f"    {by_id[i]}" for i in prefix[-8:]) or "    (none)"
    assert stuck is not None
    what = by_id[stuck.id]
    when = "before it returned" if _known(what) else "before a read returned its value"
    return (
        f"not linearizable: {what} cannot take effect {when}.\n"
        f"  The longest consistent order placed {depth} ops, leaving the register at {state!r}; "
        "its last ones:\n"
        f"{tail}"
    )


# ---------------------------------------------------------------------------------------------- workload


def run_cas_workload(
    hosts_per_client: Sequence[str],
    path: str,
    clients: int = 5,
    ops_per_client: int = 40,
    timeout: float = 60.0,
    *,
    op_timeout: float = 3.0,
    pause: float = 0.01,
    seed: int | None = None,
    history: History | None = None,
) -> History:
    """Random read/write/CAS ops on ``path`` from ``clients`` kazoo clients, one thread each.

    Client ``i`` connects to ``hosts_per_client[i % len]`` (hosts in the given order, no shuffling).  Each op
    waits at most ``op_timeout``; no op is invoked after ``timeout`` seconds.  Pass ``history`` to watch
    progress from another thread (e.g. to inject a fault once some ops completed).
    """
    rng = random.Random(seed)
    deadline = time.monotonic() + timeout
    setup = KazooClient(hosts=hosts_per_client[0], **CLIENT_OPTIONS)
    try:
        setup.start(timeout=min(timeout, 20.0))
        setup.ensure_path(path)
        data, stat = setup.get(path)
    finally:
        _close(setup)
    if history is None:
        history = History(initial=(data.decode(), stat.version))
    else:
        history.initial = (data.decode(), stat.version)
    workers = [
        _CasClient(history, i, hosts_per_client[i % len(hosts_per_client)], path, rng.randrange(1 << 30))
        for i in range(clients)
    ]
    threads = [
        threading.Thread(
            target=c.run,
            args=(ops_per_client, deadline, op_timeout, pause),
            name=f"cas-client-{c.client}",
            daemon=True,
        )
        for c in workers
    ]
    for t in threads:
        t.start()
    # A client invokes nothing after the deadline; its last op, its start and its stop are bounded too.
    join_by = deadline + 3 * op_timeout + 15.0
    for t in threads:
        t.join(timeout=max(0.0, join_by - time.monotonic()))
    return history


def _close(zk: Any) -> None:
    with contextlib.suppress(Exception):
        zk.stop()
    with contextlib.suppress(Exception):
        zk.close()


@dataclass
class _CasClient:
    """One thread's kazoo client issuing random ops and recording them."""

    history: History
    client: int
    hosts: str
    path: str
    seed: int

    def run(self, ops: int, deadline: float, op_timeout: float, pause: float) -> None:
        rng = random.Random(self.seed)
        zk = KazooClient(hosts=self.hosts, randomize_hosts=False, **CLIENT_OPTIONS)
        try:
            zk.start(timeout=max(0.1, min(op_timeout * 3, deadline - time.monotonic())))
        except Exception:
            _close(zk)
            return
        version = self.history.initial[1]  # the last version seen: most CASes expect it, so some succeed
        try:
            for n in range(ops):
                if time.monotonic() >= deadline:
                    break
                kind, arg = _pick(rng, f"c{self.client}-{n}", version)
                op_id = self.history.invoke(self.client, kind, arg)
                try:
                    result = _perform(zk, self.path, kind, arg, op_timeout)
                except BadVersionError:
                    if kind == "cas":
                        self.history.fail(op_id)
                    else:
                        self.history.info(op_id)
                except Exception:  # timeout, connection loss, session expiry: the outcome is unknown
                    self.history.info(op_id)
                else:
                    self.history.ok(op_id, result)
                    version = result[1] if kind == "read" else result
                if pause:
                    time.sleep(rng.uniform(0, 2 * pause))
        finally:
            _close(zk)


def _pick(rng: random.Random, value: str, version: int) -> tuple[OpKind, Any]:
    roll = rng.random()
    if roll < 0.4:
        return "read", None
    if roll < 0.6:
        return "write", value
    expected = version if rng.random() < 0.8 else max(0, version + rng.choice((-1, 1)))
    return "cas", (expected, value)


def _perform(zk: Any, path: str, kind: OpKind, arg: Any, op_timeout: float) -> Any:
    """One op, each request bounded by ``op_timeout``; reads sync first so a follower cannot answer stale."""
    if kind == "read":
        zk.sync_async(path).get(timeout=op_timeout)
        data, stat = zk.get_async(path).get(timeout=op_timeout)
        return (data.decode(), stat.version)
    value, version = (arg, -1) if kind == "write" else (arg[1], arg[0])
    return zk.set_async(path, value.encode(), version=version).get(timeout=op_timeout).version
