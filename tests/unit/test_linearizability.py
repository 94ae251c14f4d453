"""The register linearizability checker: accepts what a real register could do, rejects what it could not."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.linearizability import History, Op, OpKind, SearchBudgetExceeded, State, Status, check

INITIAL: State = ("init", 0)


def op(
    i: int,
    kind: OpKind,
    arg: Any,
    invoke: int,
    complete: int | None,
    result: Any = None,
    status: Status = "ok",
) -> Op:
    return Op(i, client=i, kind=kind, arg=arg, invoke=invoke, complete=complete, status=status, result=result)


def verdict(*ops: Op) -> bool:
    return check(ops, initial=INITIAL).ok


# ------------------------------------------------------------------------------------- hand-made histories


def test_sequential_history_is_linearizable() -> None:
    assert verdict(
        op(0, "write", "a", 0, 1, 1),
        op(1, "read", None, 2, 3, ("a", 1)),
        op(2, "cas", (1, "b"), 4, 5, 2),
        op(3, "cas", (1, "c"), 6, 7, status="fail"),
        op(4, "read", None, 8, 9, ("b", 2)),
    )


def test_concurrent_read_may_see_either_side_of_a_write() -> None:
    write = op(0, "write", "a", 0, 10, 1)
    assert verdict(write, op(1, "read", None, 1, 2, INITIAL))
    assert verdict(write, op(1, "read", None, 1, 2, ("a", 1)))


def test_concurrent_writes_take_versions_in_some_order() -> None:
    assert verdict(
        op(0, "write", "a", 0, 10, 2), op(1, "write", "b", 1, 9, 1), op(2, "read", None, 11, 12, ("a", 2))
    )


@pytest.mark.parametrize(
    "ops",
    [
        pytest.param(
            [op(0, "write", "a", 0, 1, 1), op(1, "write", "b", 2, 3, 2), op(2, "read", None, 4, 5, ("a", 1))],
            id="stale-read",
        ),
        pytest.param([op(0, "write", "a", 0, 1, 1), op(1, "read", None, 2, 3, INITIAL)], id="lost-write"),
        pytest.param(
            [op(0, "cas", (0, "a"), 0, 10, 1), op(1, "cas", (0, "b"), 1, 11, 1)],
            id="cas-twice-on-one-version",
        ),
        pytest.param([op(0, "cas", (0, "a"), 0, 1, status="fail")], id="cas-rejected-on-matching-version"),
        pytest.param([op(0, "cas", (5, "a"), 0, 1, 6)], id="cas-accepted-on-wrong-version"),
        pytest.param([op(0, "write", "a", 0, 1, 3)], id="write-skips-versions"),
        pytest.param([op(0, "read", None, 0, 1, ("ghost", 1))], id="read-of-a-value-never-written"),
        pytest.param(
            [op(0, "read", None, 0, 1, ("a", 1)), op(1, "write", "a", 2, 3, 1)], id="read-from-the-future"
        ),
        pytest.param(
            [
                op(0, "write", "a", 0, 10, 1),
                op(1, "read", None, 1, 2, ("a", 1)),
                op(2, "read", None, 3, 4, INITIAL),
            ],
            id="reads-go-back-in-time",
        ),
    ],
)
def test_impossible_histories_are_rejected(ops: list[Op]) -> None:
    result = check(ops, initial=INITIAL)
    assert not result.ok
    assert "not linearizable" in result.explanation


def test_unknown_write_may_take_effect_late_or_never() -> None:
    unknown = op(0, "write", "a", 0, None, status="info")
    assert verdict(unknown, op(1, "read", None, 5, 6, INITIAL), op(2, "read", None, 100, 101, ("a", 1)))
    assert verdict(unknown, op(1, "read", None, 100, 101, INITIAL))
    assert verdict(unknown, op(1, "write", "b", 50, 51, 1), op(2, "read", None, 60, 61, ("a", 2)))


def test_unknown_write_cannot_take_effect_before_its_invocation() -> None:
    assert not verdict(op(0, "read", None, 0, 1, ("a", 1)), op(1, "write", "a", 5, None, status="info"))


def test_unknown_write_cannot_be_undone() -> None:
    assert not verdict(
        op(0, "write", "a", 0, None, status="info"),
        op(1, "read", None, 5, 6, ("a", 1)),
        op(2, "read", None, 7, 8, INITIAL),
    )


def test_unknown_cas_applies_only_on_its_version() -> None:
    assert verdict(op(0, "cas", (0, "a"), 0, None, status="info"), op(1, "read", None, 5, 6, ("a", 1)))
    assert not verdict(op(0, "cas", (3, "a"), 0, None, status="info"), op(1, "read", None, 5, 6, ("a", 4)))


def test_a_read_value_pins_the_version_of_an_unknown_write() -> None:
    unknown = op(0, "write", "a", 0, None, status="info")
    assert verdict(unknown, op(1, "read", None, 5, 6, ("a", 1)), op(2, "write", "b", 7, 8, 2))
    assert not verdict(unknown, op(1, "write", "b", 1, 2, 1), op(2, "read", None, 5, 6, ("a", 1)))


def test_unknown_writes_of_one_value_are_told_apart_by_version() -> None:
    assert verdict(
        op(0, "write", "a", 0, None, status="info"),
        op(1, "write", "a", 0, None, status="info"),
        op(2, "read", None, 5, 6, ("a", 1)),
        op(3, "read", None, 7, 8, ("a", 2)),
    )


def test_many_unread_unknown_writes_count_only_through_versions() -> None:
    unknown = [op(i, "write", f"x{i}", i, None, status="info") for i in range(40)]
    assert verdict(
        *unknown, op(40, "write", "last", 100, 101, 31), op(41, "read", None, 102, 103, ("last", 31))
    )
    assert not verdict(*unknown, op(40, "write", "last", 100, 101, 42))


def test_failed_writes_and_unknown_reads_are_ignored() -> None:
    assert verdict(
        op(0, "write", "a", 0, 1, status="fail"),
        op(1, "read", None, 0, None, status="info"),
        op(2, "read", None, 2, 3, INITIAL),
    )


def test_history_records_concurrent_clients() -> None:
    history = History(initial=INITIAL)

    def client(c: int) -> None:
        for _ in range(50):
            history.info(history.invoke(c, "write", f"{c}"))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    ops = history.ops()
    assert len(ops) == 200 and [o.id for o in ops] == list(range(200))
    assert all(o.complete is not None and o.complete >= o.invoke for o in ops)
    with pytest.raises(ValueError, match="completed twice"):
        history.ok(0, 1)
    assert check(history).ok


def test_pending_ops_count_as_unknown() -> None:
    history = History(initial=INITIAL)
    history.invoke(0, "write", "a")
    history.ok(history.invoke(1, "read"), ("a", 1))
    assert check(history).ok


def test_budget_bounds_the_search() -> None:
    ops = generate(random.Random(7), clients=8, ops_per_client=25, info_rate=0.1)
    with pytest.raises(SearchBudgetExceeded):
        check(ops, initial=INITIAL, budget=10)


# ------------------------------------------------------------------------------------- generated histories


def generate(rng: random.Random, clients: int, ops_per_client: int, info_rate: float) -> list[Op]:
    """A history a real register could produce: each client issues ops one after another, every op takes
    effect at a random instant inside its interval, and results come from running the ops in that order.
    Unknown ops took effect at their instant or, half the time, never."""
    plans: list[tuple[int, int, int, int]] = []  # (point, client, invoke, complete)
    for c in range(clients):
        t = rng.randrange(20)
        for _ in range(ops_per_client):
            invoke, complete = t, t + 1 + rng.randrange(60)
            plans.append((rng.randrange(invoke, complete + 1), c, invoke, complete))
            t = complete + 1 + rng.randrange(10)
    value, version = INITIAL
    ops: list[Op] = []
    for i, (_, c, invoke, complete) in enumerate(sorted(plans)):
        kind: OpKind = rng.choice(["read", "write", "cas"])
        arg: Any = None
        if kind == "write":
            arg = f"v{i}"
        elif kind == "cas":
            arg = (version if rng.random() < 0.6 else max(0, version + rng.choice((-1, 1))), f"v{i}")
        unknown = kind != "read" and rng.random() < info_rate
        status: Status = "info" if unknown else "ok"
        result: Any = None
        if kind == "read":
            result = (value, version)
        elif not unknown or rng.random() < 0.5:
            if kind == "write" or arg[0] == version:
                value, version = arg if kind == "write" else arg[1], version + 1
                result = version
            else:
                status = "info" if unknown else "fail"
        ops.append(
            Op(i, c, kind, arg, invoke, None if unknown else complete, status, None if unknown else result)
        )
    return ops


def mutate(rng: random.Random, ops: list[Op]) -> list[Op] | None:
    """Change one definite result to a plausible wrong one: another state the register really had, a
    neighbouring version, or a flipped CAS verdict."""
    states = sorted({o.result for o in ops if o.kind == "read" and o.status == "ok"}, key=repr)
    candidates = [i for i, o in enumerate(ops) if o.status in ("ok", "fail")]
    if not candidates:
        return None
    i = rng.choice(candidates)
    o = ops[i]
    if o.kind == "read":
        others = [s for s in states if s != o.result]
        if not others:
            return None
        new = Op(o.id, o.client, o.kind, o.arg, o.invoke, o.complete, "ok", rng.choice(others))
    elif o.status == "fail":
        new = Op(o.id, o.client, o.kind, o.arg, o.invoke, o.complete, "ok", o.arg[0] + 1)
    elif o.kind == "cas" and rng.random() < 0.5:
        new = Op(o.id, o.client, o.kind, o.arg, o.invoke, o.complete, "fail", None)
    else:
        new = Op(o.id, o.client, o.kind, o.arg, o.invoke, o.complete, "ok", o.result + rng.choice((-1, 1)))
    return [*ops[:i], new, *ops[i + 1 :]]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    clients=st.integers(1, 8),
    ops_per_client=st.integers(1, 12),
    info_rate=st.sampled_from([0.0, 0.1, 0.3]),
)
def test_histories_from_a_real_register_are_accepted(
    seed: int, clients: int, ops_per_client: int, info_rate: float
) -> None:
    ops = generate(random.Random(seed), clients, ops_per_client, info_rate)
    result = check(ops, initial=INITIAL)
    assert result.ok, result.explanation


def test_mutated_histories_are_mostly_rejected() -> None:
    rng = random.Random(20240601)
    rejected = total = 0
    while total < 150:
        mutated = mutate(rng, generate(rng, clients=5, ops_per_client=8, info_rate=0.1))
        if mutated is None:
            continue
        total += 1
        rejected += not check(mutated, initial=INITIAL).ok
    assert rejected >= 0.8 * total, f"only {rejected}/{total} mutated histories rejected"


@pytest.mark.parametrize("clients", [5, 10])
def test_two_hundred_op_histories_are_decided(clients: int) -> None:
    """The size the ensemble tests produce: Lowe's memoisation keeps this to a small search."""
    rng = random.Random(clients)
    ops = generate(rng, clients, 200 // clients, info_rate=0.05)
    assert check(ops, initial=INITIAL, budget=500_000).ok
    mutated = mutate(rng, ops)
    assert mutated is not None
    check(mutated, initial=INITIAL, budget=500_000)  # a verdict either way, within the budget
