"""The hierarchical DRF allocator (``master_py.allocator``) and its sorter: fairness (the DRF paper's
example, weights, hierarchical roles), decline filters, revive/suppress, minimum offer size, agent and
framework life cycle, plus properties checked on random operation sequences."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from master_py.allocator import Allocator, AllocatorError, Offer, min_allocatable_from_offer_filters
from master_py.sorter import DrfSorter, Totals
from paas_common.resources import EMPTY, Resources

R = Resources.parse


def one(offers: list[Offer]) -> Offer:
    assert len(offers) == 1, offers
    return offers[0]


def receivers(offers: Iterable[Offer]) -> list[str]:
    return [o.framework_id for o in offers]


# --- fairness -------------------------------------------------------------------------------------------


def test_drf_paper_example_per_task_offers() -> None:
    """DRF paper §4.1: 9 CPUs, 18 GB; A runs <1 CPU, 4 GB>, B <3 CPU, 1 GB>.  Each offer cycle the
    framework with the lowest dominant share gets the agent's free resources, launches one task if it
    fits and hands the rest back (declining, with a short filter, when nothing fits)."""
    alloc = Allocator()
    alloc.add_agent("s1", "h1", R("cpus:9;mem:18432"))
    task = {"A": R("cpus:1;mem:4096"), "B": R("cpus:3;mem:1024")}
    for fid in task:
        alloc.add_framework(fid, ["*"])
    launched: list[str] = []
    for now in range(40):
        for offer in alloc.allocate(float(now)):
            need = task[offer.framework_id]
            if offer.resources.contains(need):
                launched.append(offer.framework_id)
                alloc.recover_resources(offer.framework_id, "s1", offer.resources - need, refuse_seconds=0)
            else:
                alloc.decline(offer.framework_id, "s1", offer.resources, refuse_seconds=5, now=float(now))
    assert launched == ["A", "B", "A", "B", "A"]
    assert alloc.allocation("A")["s1"]["*"] == R("cpus:3;mem:12288")
    assert alloc.allocation("B")["s1"]["*"] == R("cpus:6;mem:2048")
    assert alloc.framework_share("A", "*") == pytest.approx(2 / 3)
    assert alloc.framework_share("B", "*") == pytest.approx(2 / 3)
    assert alloc.available("s1") == R("mem:4096")


def test_whole_free_capacity_goes_to_lowest_share() -> None:
    alloc = Allocator()
    alloc.add_framework("big", ["*"])
    alloc.add_framework("small", ["*"])
    alloc.add_agent("a0", "h", R("cpus:4;mem:4096"), used={"big": {"*": R("cpus:2;mem:512")}})
    alloc.add_agent("a1", "h", R("cpus:4;mem:4096;ports:[31000-32000]"))
    offer = one(alloc.allocate(0.0, agents=["a1"]))
    assert offer == Offer("small", "a1", "*", R("cpus:4;mem:4096;ports:[31000-32000]"))
    assert alloc.available("a1") == EMPTY
    offer = one(alloc.allocate(0.0))
    assert offer == Offer("big", "a0", "*", R("cpus:2;mem:3584"))  # small (4 cpus) now has the larger share


def test_role_weight_two_gets_twice_the_dominant_share() -> None:
    alloc = Allocator()
    alloc.set_weight("gold", 2.0)
    alloc.add_framework("g", ["gold"])
    alloc.add_framework("b", ["bronze"])
    for i in range(30):
        alloc.add_agent(f"a{i}", "h", R("cpus:1;mem:1024"))
    offers = alloc.allocate(0.0)
    count = {fid: receivers(offers).count(fid) for fid in ("g", "b")}
    assert count == {"g": 20, "b": 10}
    assert alloc.role_share("gold") == pytest.approx(alloc.role_share("bronze"))  # weighted shares equal
    assert alloc.framework_share("g", "gold") == pytest.approx(2 * alloc.framework_share("b", "bronze"))


def test_roles_first_then_frameworks_within_a_role() -> None:
    """Role ``busy`` has one framework with most of the cluster: the idle role's framework is offered
    first even though ``busy`` also has an empty framework."""
    alloc = Allocator()
    alloc.add_framework("hog", ["busy"])
    alloc.add_framework("newcomer", ["busy"])
    alloc.add_framework("loner", ["idle"])
    alloc.add_agent("a0", "h", R("cpus:8;mem:8192"), used={"hog": {"busy": R("cpus:8;mem:8192")}})
    alloc.add_agent("a1", "h", R("cpus:1;mem:1024"))
    alloc.add_agent("a2", "h", R("cpus:1;mem:1024"))
    assert alloc.role_order() == ["idle", "busy"]
    assert alloc.framework_order("busy") == ["newcomer", "hog"]
    assert receivers(alloc.allocate(0.0, agents=["a1"])) == ["loner"]
    assert receivers(alloc.allocate(0.0, agents=["a2"])) == ["loner"]  # busy still holds far more


def test_hierarchical_roles_are_sorted_level_by_level() -> None:
    alloc = Allocator()
    alloc.add_framework("web", ["eng/web"])
    alloc.add_framework("db", ["eng/db"])
    alloc.add_framework("ops", ["ops"])
    alloc.add_agent("a0", "h", R("cpus:2;mem:2048"), used={"web": {"eng/web": R("cpus:2;mem:2048")}})
    for i in range(1, 4):
        alloc.add_agent(f"a{i}", "h", R("cpus:2;mem:2048"))
    # "eng" as a whole holds a quarter of the cluster, so "ops" (nothing) comes first; within "eng",
    # "eng/db" (nothing) comes before "eng/web"
    assert alloc.role_order() == ["ops", "eng/db", "eng/web"]
    assert receivers(alloc.allocate(0.0, agents=["a1"])) == ["ops"]
    assert receivers(alloc.allocate(0.0, agents=["a2"])) == ["db"]  # eng and ops tie at 1/4; eng sorts first
    assert alloc.role_order() == ["ops", "eng/db", "eng/web"]


# --- sorter -----------------------------------------------------------------------------------------------


def test_sorter_virtual_leaf_and_collapse() -> None:
    totals = Totals()
    totals.add({"cpus": 10_000})
    s = DrfSorter(totals)
    for client in ("a", "a/b", "c"):
        s.add(client)
        s.activate(client)
    s.allocated("a", {"cpus": 1000})
    s.allocated("a/b", {"cpus": 3000})
    s.allocated("c", {"cpus": 2000})
    # subtree "a" holds 4 of 10 cpus, so "c" (2) comes first; inside "a", "a/." (1) before "a/b" (3)
    assert s.sorted_clients() == ["c", "a", "a/b"]
    assert s.share("a") == pytest.approx(0.1) and s.share("a/b") == pytest.approx(0.3)
    s.set_weight("a", 4.0)  # the internal node "a" now counts 0.4 / 4 = 0.1 < 0.2
    assert s.sorted_clients() == ["a", "a/b", "c"]
    s.remove("a/b")  # "a" collapses back into a leaf, keeping its weight
    assert s.sorted_clients() == ["a", "c"] and s.share("a") == pytest.approx(0.025)
    s.deactivate("a")
    assert s.sorted_clients() == ["c"]
    s.remove("a")
    s.remove("c")
    assert len(s) == 0 and s.sorted_clients() == []


def _tree_order(
    allocs: dict[str, int], counts: dict[str, int], weights: dict[str, float], total: int
) -> list[str]:
    """Brute-force DRF order of hierarchical clients with one resource, as upstream's recursive sort:
    a node's share and count cover its subtree, divided by the weight of its path; a client with
    descendants is a virtual "." child (path "x/.", default weight)."""
    clients = set(allocs)

    def subtree(path: str) -> list[str]:
        return [c for c in clients if c == path or c.startswith(path + "/")]

    def order(prefix: str) -> list[str]:
        if prefix:
            names = {c[len(prefix) + 1 :].split("/")[0] for c in clients if c.startswith(prefix + "/")}
        else:
            names = {c.split("/")[0] for c in clients}
        entries: list[tuple[tuple[float, int, str], list[str]]] = []
        if prefix in clients:
            entries.append(
                ((allocs[prefix] / total / weights.get(f"{prefix}/.", 1.0), counts[prefix], "."), [prefix])
            )
        for name in names:
            path = f"{prefix}/{name}" if prefix else name
            sub = subtree(path)
            share = sum(allocs[c] for c in sub) / total / weights.get(path, 1.0)
            key = (share, sum(counts[c] for c in sub), name)
            entries.append((key, [path] if sub == [path] else order(path)))
        return [c for _, cs in sorted(entries, key=lambda e: e[0]) for c in cs]

    return order("")


_CLIENTS = ["a", "a/b", "a/b/c", "a/d", "e", "e/f", "g"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["alloc", "alloc", "unalloc", "activate", "deactivate", "weight"]),
            st.sampled_from(_CLIENTS),
            st.integers(1, 5),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_sorter_matches_brute_force_order(ops: list[tuple[str, str, int]]) -> None:
    totals = Totals()
    totals.add({"cpus": 1_000_000})
    s = DrfSorter(totals)
    allocs: dict[str, int] = {}
    counts: dict[str, int] = {}
    weights: dict[str, float] = {}
    active: set[str] = set()
    for kind, client, amount in ops:
        if client not in allocs:
            s.add(client)
            allocs[client], counts[client] = 0, 0
        if kind == "alloc":
            s.allocated(client, {"cpus": amount * 1000})
            allocs[client] += amount * 1000
            counts[client] += 1
        elif kind == "unalloc":
            amount = min(amount * 1000, allocs[client])
            s.unallocated(client, {"cpus": amount})
            allocs[client] -= amount
        elif kind == "activate":
            s.activate(client)
            active.add(client)
        elif kind == "deactivate":
            s.deactivate(client)
            active.discard(client)
        else:
            s.set_weight(client, float(amount))
            weights[client] = float(amount)
        expected = [c for c in _tree_order(allocs, counts, weights, 1_000_000) if c in active]
        assert s.sorted_clients() == expected  # after every step: the heaps are kept, not rebuilt


# --- filters, revive, suppress ------------------------------------------------------------------------


def _two_frameworks(agent: str = "cpus:4;mem:4096", **kw: object) -> Allocator:
    alloc = Allocator(**kw)  # type: ignore[arg-type]
    alloc.add_framework("f1", ["*"])
    alloc.add_framework("f2", ["*"])
    alloc.add_agent("s1", "h", R(agent))
    return alloc


def test_decline_filter_lasts_refuse_seconds() -> None:
    alloc = _two_frameworks()
    offer = one(alloc.allocate(0.0))
    assert offer.framework_id == "f1"
    alloc.decline("f1", "s1", offer.resources, refuse_seconds=10, now=0.0)
    offer = one(alloc.allocate(1.0))
    assert offer.framework_id == "f2"
    alloc.decline("f2", "s1", offer.resources, refuse_seconds=0, now=1.0)  # 0: no filter at all
    assert receivers(alloc.allocate(9.9)) == ["f2"]  # f1 still filtered
    alloc.recover_resources("f2", "s1", R("cpus:4;mem:4096"))
    assert receivers(alloc.allocate(10.0)) == ["f1"]  # expired at 0 + 10
    assert alloc.filter_count(10.0) == 0


def test_filter_lasts_at_least_one_allocation_interval() -> None:
    alloc = _two_frameworks(allocation_interval=1.0)
    alloc.decline("f1", "s1", one(alloc.allocate(0.0)).resources, refuse_seconds=0.1, now=0.0)
    assert receivers(alloc.allocate(0.5)) == ["f2"]  # MESOS-4302: max(interval, refuse_seconds)
    alloc.recover_resources("f2", "s1", R("cpus:4;mem:4096"))
    assert receivers(alloc.allocate(1.0)) == ["f1"]


def test_refuse_seconds_negative_means_default_and_huge_is_capped() -> None:
    alloc = _two_frameworks()
    res = R("cpus:4;mem:4096")
    alloc.decline("f1", "s1", one(alloc.allocate(0.0)).resources, refuse_seconds=-1, now=0.0)
    alloc.decline("f2", "s1", one(alloc.allocate(0.0)).resources, refuse_seconds=1e12, now=0.0)
    assert alloc.allocate(4.9) == []
    assert receivers(alloc.allocate(5.0)) == ["f1"]  # default 5 s
    alloc.recover_resources("f1", "s1", res)
    assert alloc.filter_count(365 * 86400 - 1) == 1
    assert alloc.filter_count(365 * 86400) == 0


def test_filter_applies_only_when_refused_contains_offer() -> None:
    alloc = _two_frameworks()
    offer = one(alloc.allocate(0.0))
    alloc.recover_resources("f1", "s1", offer.resources - R("cpus:2"), refuse_seconds=0)  # keeps cpus:2
    offer = one(alloc.allocate(0.0))  # f2 has the lower share now
    assert offer == Offer("f2", "s1", "*", R("cpus:2;mem:4096"))
    alloc.decline("f2", "s1", R("cpus:2;mem:4096"), refuse_seconds=100, now=0.0)
    alloc.recover_resources("f1", "s1", R("cpus:2"))  # the task ended: cpus:4;mem:4096 free again
    assert one(alloc.allocate(1.0)).framework_id == "f1"  # share and count tie: f1 first by name
    alloc.recover_resources("f1", "s1", R("cpus:4;mem:4096"))
    alloc.suppress("f1")
    # bigger than what f2 refused: not filtered
    assert one(alloc.allocate(2.0)) == Offer("f2", "s1", "*", R("cpus:4;mem:4096"))


def test_smaller_offer_stays_filtered() -> None:
    alloc = _two_frameworks()
    alloc.suppress("f2")
    alloc.decline("f1", "s1", one(alloc.allocate(0.0)).resources, refuse_seconds=100, now=0.0)
    alloc.add_framework("f3", ["*"])
    offer = one(alloc.allocate(1.0))
    assert offer.framework_id == "f3"
    alloc.recover_resources("f3", "s1", offer.resources - R("cpus:1"))  # f3 keeps one cpu
    alloc.suppress("f3")
    assert alloc.allocate(2.0) == []  # cpus:3;mem:4096 is contained in what f1 refused


def test_revive_clears_filters_and_unsuppresses() -> None:
    alloc = _two_frameworks()
    alloc.suppress("f2")
    assert alloc.suppressed_roles("f2") == {"*"}
    alloc.decline("f1", "s1", one(alloc.allocate(0.0)).resources, refuse_seconds=1000, now=0.0)
    assert alloc.allocate(1.0) == []  # f1 filtered, f2 suppressed
    alloc.revive("f1")
    assert receivers(alloc.allocate(2.0)) == ["f1"]
    alloc.decline("f1", "s1", R("cpus:4;mem:4096"), refuse_seconds=1000, now=2.0)
    alloc.revive("f2", ["*"])
    assert alloc.suppressed_roles("f2") == set()
    assert receivers(alloc.allocate(3.0)) == ["f2"]


def test_suppress_one_role_of_a_multi_role_framework() -> None:
    alloc = Allocator()
    alloc.add_framework("m", ["r1", "r2"], suppressed_roles=["r2"])
    alloc.add_agent("s1", "h", R("cpus:1;mem:64"))
    assert one(alloc.allocate(0.0)).role == "r1"
    alloc.recover_resources("m", "s1", R("cpus:1;mem:64"))  # one role held: role may be omitted
    alloc.suppress("m", ["r1"])
    alloc.revive("m", ["r2"])
    assert one(alloc.allocate(0.0)).role == "r2"


def test_deactivated_framework_gets_nothing_and_loses_filters() -> None:
    alloc = _two_frameworks()
    alloc.decline("f1", "s1", one(alloc.allocate(0.0)).resources, refuse_seconds=1000, now=0.0)
    alloc.deactivate_framework("f2")
    assert alloc.allocate(1.0) == []
    alloc.deactivate_framework("f1")
    alloc.activate_framework("f1")
    assert receivers(alloc.allocate(1.0)) == ["f1"]  # its filters went with the deactivation


# --- minimum allocatable ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "offered"),
    [("cpus:0.009;mem:31", False), ("cpus:0.01", True), ("mem:32", True), ("cpus:0.005;mem:32;disk:1", True)],
)
def test_default_min_allocatable(agent: str, offered: bool) -> None:
    alloc = Allocator()
    alloc.add_framework("f", ["*"])
    alloc.add_agent("s1", "h", R(agent))
    assert bool(alloc.allocate(0.0)) is offered


def test_min_allocatable_knob_and_framework_override() -> None:
    alloc = Allocator(min_allocatable="cpus:1;mem:128|gpus:1")
    alloc.add_framework("f", ["*"])
    alloc.add_agent("s1", "h", R("cpus:1;mem:64"))
    assert alloc.allocate(0.0) == []
    offer_filters = {
        "*": {"min_allocatable_resources": {"quantities": [{"quantities": {"mem": {"value": 64}}}]}}
    }
    alloc.add_framework("g", ["*"], min_allocatable=min_allocatable_from_offer_filters(offer_filters))
    assert receivers(alloc.allocate(0.0)) == ["g"]
    alloc2 = Allocator(min_allocatable=[])
    alloc2.add_framework("f", ["*"])
    alloc2.add_agent("s1", "h", R("disk:1"))
    assert receivers(alloc2.allocate(0.0)) == ["f"]


# --- agents and frameworks --------------------------------------------------------------------------------


def test_agent_removal_drops_its_allocations_and_offers() -> None:
    alloc = Allocator()
    alloc.add_framework("f1", ["*"])
    alloc.add_framework("f2", ["*"])
    alloc.add_agent("s1", "h", R("cpus:8;mem:8192"), used={"f1": {"*": R("cpus:8;mem:8192")}})
    alloc.add_agent("s2", "h", R("cpus:8;mem:8192"))
    alloc.add_agent("s3", "h", R("cpus:8;mem:8192"))
    assert alloc.framework_order("*") == ["f2", "f1"]
    alloc.remove_agent("s1")
    assert alloc.framework_share("f1", "*") == 0.0 and alloc.allocation("f1") == {}
    # unknown s1 skipped; shares tie at 0 and f2 has been allocated to fewer times
    assert receivers(alloc.allocate(0.0, agents=["s1", "s2"])) == ["f2"]
    alloc.decline("f2", "s2", R("cpus:8;mem:8192"), refuse_seconds=100, now=0.0)
    alloc.remove_agent("s2")
    alloc.recover_resources("f2", "s2", R("cpus:8;mem:8192"))  # late recovery for a gone agent: ignored
    assert alloc.agent_ids() == ["s3"] and alloc.filter_count(0.0) == 0
    assert alloc.framework_share("f1", "*") == 0.0


def test_deactivated_agent_is_not_offered() -> None:
    alloc = _two_frameworks()
    alloc.deactivate_agent("s1")
    assert alloc.allocate(0.0) == []
    alloc.activate_agent("s1")
    assert receivers(alloc.allocate(0.0)) == ["f1"]


def test_framework_removal_returns_everything() -> None:
    alloc = _two_frameworks()
    alloc.add_agent("s2", "h", R("cpus:1;mem:64"))
    offers = alloc.allocate(0.0)
    assert sorted(receivers(offers)) == ["f1", "f2"]
    alloc.remove_framework("f1")
    alloc.remove_framework("f2")
    assert alloc.available("s1") == R("cpus:4;mem:4096") and alloc.available("s2") == R("cpus:1;mem:64")
    assert alloc.role_order() == [] and alloc.framework_ids() == []
    alloc.recover_resources("f1", "s1", R("cpus:1"))  # late: ignored


def test_used_reported_before_the_framework_subscribes() -> None:
    alloc = Allocator()
    alloc.add_agent("s1", "h", R("cpus:4;mem:4096"), used={"old": {"*": R("cpus:3;mem:1024")}})
    alloc.add_framework("new", ["*"])
    assert one(alloc.allocate(0.0)) == Offer("new", "s1", "*", R("cpus:1;mem:3072"))
    alloc.add_framework("old", ["*"])  # adopts what the agent reported
    assert alloc.allocation("old") == {"s1": {"*": R("cpus:3;mem:1024")}}
    assert alloc.framework_share("old", "*") == pytest.approx(0.75)
    alloc.add_agent("s2", "h", R("cpus:4;mem:4096"))
    alloc.remove_framework("old")
    assert alloc.available("s1") == R("cpus:3;mem:1024")


def test_used_given_with_the_framework() -> None:
    alloc = Allocator()
    alloc.add_agent("s1", "h", R("cpus:4;mem:4096"))
    alloc.add_framework(
        "f", ["web"], used={"s1": {"web": R("cpus:1;mem:1024")}, "gone": {"web": R("cpus:1")}}
    )
    assert alloc.available("s1") == R("cpus:3;mem:3072")
    alloc.update_framework("f", ["api"])  # keeps "web" tracked while it holds resources there
    assert one(alloc.allocate(0.0)).role == "api"
    alloc.recover_resources("f", "s1", R("cpus:1;mem:1024"), role="web")
    assert alloc.role_order() == ["api"]


def test_reservations_go_to_their_role_and_sub_roles() -> None:
    alloc = Allocator()
    alloc.add_framework("any", ["*"])
    alloc.add_framework("web", ["eng/web"])
    alloc.add_agent("s1", "h", R("cpus:2;mem:1024;cpus(eng):4;mem(eng):512"))
    offers = {o.framework_id: o for o in alloc.allocate(0.0)}
    # "*" and "eng/web" tie at zero ("*" < "eng" by name): "any" takes the unreserved part, "web" the
    # reservation of its parent role
    assert offers["any"].resources == R("cpus:2;mem:1024")
    assert offers["web"] == Offer("web", "s1", "eng/web", R("cpus(eng):4;mem(eng):512"))
    alloc.recover_resources("any", "s1", R("cpus:2;mem:1024"))
    alloc.suppress("any")
    assert one(alloc.allocate(1.0)) == Offer("web", "s1", "eng/web", R("cpus:2;mem:1024"))


def test_gpu_agents_only_for_gpu_frameworks() -> None:
    alloc = Allocator()
    alloc.add_framework("plain", ["*"])
    alloc.add_agent("g1", "h", R("cpus:4;mem:1024;gpus:1"))
    assert alloc.allocate(0.0) == []
    alloc.add_framework("ml", ["*"], gpu_aware=True)
    assert receivers(alloc.allocate(0.0)) == ["ml"]


def test_update_agent_total() -> None:
    alloc = _two_frameworks()
    offer = one(alloc.allocate(0.0))
    alloc.update_agent("s1", R("cpus:8;mem:8192"))
    assert alloc.available("s1") == R("cpus:4;mem:4096") and alloc.total("s1") == R("cpus:8;mem:8192")
    assert alloc.allocations_on("s1") == {"f1": {"*": offer.resources}}


def test_random_agent_order_with_rng() -> None:
    alloc = Allocator(rng=random.Random(7))
    alloc.add_framework("f", ["*"])
    for i in range(20):
        alloc.add_agent(f"a{i:02d}", "h", R("cpus:1;mem:64"))
    order = [o.agent_id for o in alloc.allocate(0.0)]
    assert sorted(order) == [f"a{i:02d}" for i in range(20)] and order != sorted(order)


def test_caller_errors() -> None:
    alloc = _two_frameworks()
    with pytest.raises(AllocatorError, match="already added"):
        alloc.add_agent("s1", "h", R("cpus:1"))
    with pytest.raises(AllocatorError, match="already added"):
        alloc.add_framework("f1", ["*"])
    with pytest.raises(AllocatorError, match="unknown framework"):
        alloc.suppress("nope")
    with pytest.raises(AllocatorError, match="exceeds total"):
        alloc.add_agent("s2", "h", R("cpus:1"), used={"f1": {"*": R("cpus:2")}})
    one(alloc.allocate(0.0))
    with pytest.raises(AllocatorError, match="does not hold cpus:5"):
        alloc.recover_resources("f1", "s1", R("cpus:5"))
    with pytest.raises(ValueError, match="positive"):
        alloc.set_weight("*", 0)
    with pytest.raises(ValueError, match="bad minimum allocatable quantity 'cpus:x'"):
        Allocator(min_allocatable="cpus:x|mem:32")
    with pytest.raises(ValueError, match="invalid role"):
        alloc.add_framework("f9", ["a//b"])


# --- properties -----------------------------------------------------------------------------------------

_AGENT_SHAPES = [R("cpus:4;mem:4096;ports:[31000-31009]"), R("cpus:1;mem:512"), R("cpus:2;mem:64;disk:100")]

_ops = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "allocate",
                "allocate1",
                "recover",
                "decline",
                "keep",
                "suppress",
                "revive",
                "add_agent",
                "rm_agent",
                "add_fw",
                "rm_fw",
            ]
        ),
        st.integers(0, 1000),
    ),
    min_size=10,
    max_size=60,
)


def _check_invariants(alloc: Allocator) -> None:
    for aid in alloc.agent_ids():
        held = EMPTY
        for roles in alloc.allocations_on(aid).values():
            for res in roles.values():
                held = held + res
        assert held + alloc.available(aid) == alloc.total(aid)


@settings(max_examples=200, deadline=None)
@given(_ops, st.integers(0, 2**16))
def test_random_operations_keep_the_books(ops: list[tuple[str, int]], seed: int) -> None:
    """Random life cycles: allocations never exceed totals, available + allocations == total, and each
    single-agent cycle offers to a framework whose share was minimal among eligible ones (one role,
    no filters in play for the receiver's competitors)."""
    rnd = random.Random(seed)
    alloc = Allocator(rng=rnd)
    outstanding: list[Offer] = []
    agents = 0
    fws = 0
    now = 0.0
    for op, n in ops:
        now += 1.0
        live_agents, live_fws = alloc.agent_ids(), alloc.framework_ids()
        if op == "add_agent" or not live_agents:
            alloc.add_agent(f"a{agents}", "h", _AGENT_SHAPES[n % len(_AGENT_SHAPES)])
            agents += 1
        elif op == "add_fw" or not live_fws:
            alloc.add_framework(f"f{fws}", ["*"])
            fws += 1
        elif op == "rm_agent":
            alloc.remove_agent(live_agents[n % len(live_agents)])
        elif op == "rm_fw":
            alloc.remove_framework(live_fws[n % len(live_fws)])
        elif op == "suppress":
            alloc.suppress(live_fws[n % len(live_fws)])
        elif op == "revive":
            alloc.revive(live_fws[n % len(live_fws)])
        elif op in ("allocate", "allocate1"):
            target = [live_agents[n % len(live_agents)]] if op == "allocate1" else None
            if target is not None:
                order = alloc.framework_order("*")
                shares = {f: alloc.framework_share(f, "*") for f in order}
            offers = alloc.allocate(now, target)
            for o in offers:
                assert alloc.total(o.agent_id).contains(o.resources)
                assert not alloc.available(o.agent_id).contains(o.resources) or not o.resources
            if target is not None and offers and alloc.filter_count(now) == 0:
                assert shares[offers[0].framework_id] == min(shares.values())
                assert offers[0].framework_id == order[0]
            outstanding += offers
        elif outstanding:
            o = outstanding.pop(n % len(outstanding))
            if o.agent_id in live_agents and o.framework_id in live_fws:
                if op == "decline":
                    alloc.decline(o.framework_id, o.agent_id, o.resources, refuse_seconds=n % 4, now=now)
                elif op == "recover":
                    alloc.recover_resources(o.framework_id, o.agent_id, o.resources)
                # "keep": the offer becomes a running task
        _check_invariants(alloc)


class _Reference:
    """A naive hierarchical DRF allocator (flat roles): every decision re-sorts everything from scratch.
    The real allocator must make exactly the same offers."""

    def __init__(self, weights: dict[str, float]) -> None:
        self.weights = weights
        self.totals: dict[str, Resources] = {}
        self.available: dict[str, Resources] = {}
        self.fw_roles: dict[str, list[str]] = {}
        self.suppressed: dict[str, set[str]] = {}
        self.filters: dict[tuple[str, str, str], list[tuple[float, Resources]]] = {}
        self.held: dict[tuple[str, str, str], Resources] = {}  # (framework, role, agent)
        self.count: dict[tuple[str, str], int] = {}  # (role, "") for roles, (role, framework)

    def share(self, qty: dict[str, int], weight: float) -> float:
        total = Resources.parse("")
        for t in self.totals.values():
            total = total + t
        tq = total.quantities()
        return max([qty.get(n, 0) / v for n, v in tq.items() if v > 0] + [0.0]) / weight

    def qty(self, fid: str | None, role: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for (f, r, _), res in self.held.items():
            if r == role and fid in (None, f):
                for n, v in res.quantities().items():
                    out[n] = out.get(n, 0) + v
        return out

    def allocate(self, now: float, agents: list[str]) -> list[Offer]:
        offers = []
        for aid in agents:
            roles = {r for f, rs in self.fw_roles.items() for r in rs if r not in self.suppressed[f]}
            role_key = {
                r: (self.share(self.qty(None, r), self.weights.get(r, 1.0)), self.count[(r, "")], r)
                for r in roles
            }
            for role in sorted(roles, key=role_key.__getitem__):
                avail = self.available[aid]
                if not avail:
                    break
                fws = [f for f, rs in self.fw_roles.items() if role in rs and role not in self.suppressed[f]]
                fws.sort(key=lambda f: (self.share(self.qty(f, role), 1.0), self.count[(role, f)], f))
                for f in fws:
                    if not (avail.milli("cpus") >= 10 or avail.milli("mem") >= 32000):
                        continue
                    live = [x for x in self.filters.get((f, role, aid), []) if x[0] > now]
                    if any(refused.contains(avail) for _, refused in live):
                        continue
                    self.available[aid] = EMPTY
                    self.held[(f, role, aid)] = self.held.get((f, role, aid), EMPTY) + avail
                    self.count[(role, "")] += 1
                    self.count[(role, f)] += 1
                    offers.append(Offer(f, aid, role, avail))
                    break
        return offers

    def recover(self, o: Offer, refuse: float | None, now: float) -> None:
        key = (o.framework_id, o.role, o.agent_id)
        self.held[key] = self.held[key] - o.resources
        if not self.held[key]:
            del self.held[key]
        self.available[o.agent_id] = self.available[o.agent_id] + o.resources
        if refuse is not None and refuse > 0:
            self.filters.setdefault(key, []).append((now + max(1.0, refuse), o.resources))

    def add_framework(self, fid: str, roles: list[str]) -> None:
        for role in roles:
            if not any(role in rs for rs in self.fw_roles.values()):
                self.count[(role, "")] = 0
            self.count[(role, fid)] = 0
        self.fw_roles[fid] = roles
        self.suppressed[fid] = set()

    def remove_framework(self, fid: str) -> None:
        for key in [k for k in self.held if k[0] == fid]:
            self.available[key[2]] = self.available[key[2]] + self.held.pop(key)
        for key in [k for k in self.filters if k[0] == fid]:
            del self.filters[key]
        del self.fw_roles[fid], self.suppressed[fid]

    def remove_agent(self, aid: str) -> None:
        for key in [k for k in self.held if k[2] == aid]:
            del self.held[key]
        for key in [k for k in self.filters if k[2] == aid]:
            del self.filters[key]
        del self.totals[aid], self.available[aid]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "allocate",
                    "allocate",
                    "allocate1",
                    "recover",
                    "decline",
                    "partial",
                    "suppress",
                    "revive",
                    "revive",
                    "add_agent",
                    "rm_agent",
                    "add_fw",
                    "rm_fw",
                ]
            ),
            st.integers(0, 1000),
        ),
        min_size=20,
        max_size=80,
    )
)
def test_same_offers_as_a_naive_reference(ops: list[tuple[str, int]]) -> None:
    weights = {"a": 2.0, "b": 1.0}
    alloc, ref = Allocator(), _Reference(weights)
    for role, w in weights.items():
        alloc.set_weight(role, w)
    role_sets = [["a"], ["b"], ["a", "b"]]
    outstanding: list[Offer] = []
    agents = fws = 0
    now = 0.0
    for op, n in ops:
        now += 0.5
        live_agents, live_fws = alloc.agent_ids(), alloc.framework_ids()
        assert live_agents == list(ref.totals) and live_fws == list(ref.fw_roles)
        if op == "add_agent" or not live_agents:
            total = _AGENT_SHAPES[n % len(_AGENT_SHAPES)]
            alloc.add_agent(f"s{agents}", "h", total)
            ref.totals[f"s{agents}"] = ref.available[f"s{agents}"] = total
            agents += 1
        elif op == "add_fw" or not live_fws:
            roles = role_sets[n % len(role_sets)]
            alloc.add_framework(f"f{fws}", roles)
            ref.add_framework(f"f{fws}", roles)
            fws += 1
        elif op == "rm_agent":
            aid = live_agents[n % len(live_agents)]
            alloc.remove_agent(aid)
            ref.remove_agent(aid)
            outstanding = [o for o in outstanding if o.agent_id != aid]
        elif op == "rm_fw":
            fid = live_fws[n % len(live_fws)]
            alloc.remove_framework(fid)
            ref.remove_framework(fid)
            outstanding = [o for o in outstanding if o.framework_id != fid]
        elif op in ("suppress", "revive"):
            fid = live_fws[n % len(live_fws)]
            role = ref.fw_roles[fid][n % len(ref.fw_roles[fid])]
            if op == "suppress":
                alloc.suppress(fid, [role])
                ref.suppressed[fid].add(role)
            else:
                alloc.revive(fid, [role])
                ref.suppressed[fid].discard(role)
                for key in [k for k in ref.filters if k[:2] == (fid, role)]:
                    del ref.filters[key]
        elif op in ("allocate", "allocate1"):
            target = [live_agents[n % len(live_agents)]] if op == "allocate1" else live_agents
            offers = alloc.allocate(now, None if op == "allocate" else target)
            assert offers == ref.allocate(now, target)
            outstanding += offers
        elif outstanding:
            o = outstanding.pop(n % len(outstanding))
            refuse = float(n % 4) * 4 if op in ("decline", "partial") else None
            if op == "partial":  # decline the cpus only, keep the rest
                kept = o.resources.minus(o.resources.filter_names(["cpus"]))
                if kept:
                    outstanding.append(o._replace(resources=kept))
                o = o._replace(resources=o.resources - kept)
            alloc.recover_resources(
                o.framework_id, o.agent_id, o.resources, role=o.role, refuse_seconds=refuse, now=now
            )
            ref.recover(o, refuse, now)
