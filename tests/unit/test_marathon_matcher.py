"""Offer matching: resources and roles, host ports, constraints, batches (reference §5, §8, §2.5)."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from marathon_py.constraints import Placement, meets_all
from marathon_py.matcher import (
    Match,
    MatchConfig,
    NoMatch,
    accepted_roles,
    match,
    match_many,
    pick_ports,
    usable_resources,
)
from paas_common.resources import Resources, parse_attributes

VERSION = "2021-01-01T00:00:00.000Z"


def app(**over: Any) -> dict[str, Any]:
    """A normalized host-networking app (the §4.1 defaults) with one dynamic port."""
    doc: dict[str, Any] = {
        "id": "/web",
        "cmd": "sleep 1000",
        "instances": 1,
        "cpus": 1.0,
        "mem": 128.0,
        "disk": 0.0,
        "gpus": 0,
        "networks": [{"mode": "host"}],
        "portDefinitions": [{"port": 10000, "protocol": "tcp", "name": "http", "labels": {}}],
        "requirePorts": False,
        "constraints": [],
        "acceptedResourceRoles": [],
        "role": "*",
        "labels": {},
        "version": VERSION,
        "versionInfo": {"lastConfigChangeAt": VERSION, "lastScalingAt": VERSION},
    }
    doc.update(over)
    return doc


def offer(resources: str = "cpus:4;mem:1024;disk:1000;ports:[31000-31009]", **over: Any) -> dict[str, Any]:
    """A v1 Offer as master_py sends it (resources in the agent flag syntax)."""
    doc: dict[str, Any] = {
        "id": {"value": over.pop("oid", "O1")},
        "framework_id": {"value": "F"},
        "agent_id": {"value": over.pop("agent", "S1")},
        "hostname": over.pop("hostname", "agent1"),
        "resources": Resources.parse(resources).to_json(),
        "attributes": parse_attributes(over.pop("attributes", "")),
    }
    doc.update(over)
    return doc


def ok(result: Match | NoMatch) -> Match:
    assert isinstance(result, Match), result
    return result


def refused(result: Match | NoMatch) -> tuple[str, ...]:
    assert isinstance(result, NoMatch), result
    return result.reasons


RNG = random.Random(7)


def test_fit_takes_exactly_what_the_app_needs() -> None:
    m = ok(match(app(disk=10.0), offer(), [], random.Random(1)))
    assert (m.offer_id, m.agent_id, m.hostname) == ("O1", "S1", "agent1")
    assert m.resources.milli("cpus") == 1000 and m.resources.milli("mem") == 128_000
    assert m.resources.milli("disk") == 10_000
    assert len(m.host_ports) == 1 and m.host_ports[0] is not None and 31000 <= m.host_ports[0] <= 31009
    assert m.resources.ranges("ports") == ((m.host_ports[0], m.host_ports[0]),)
    assert [r["name"] for r in m.resources_json] == ["cpus", "mem", "disk", "ports"]
    assert all(r["role"] == "*" for r in m.resources_json)
    assert m.placement.hostname == "agent1" and m.placement.version == VERSION
    assert Resources.from_json(m.resources_json) == m.resources


def test_zero_disk_and_gpus_are_not_asked_for() -> None:
    m = ok(match(app(portDefinitions=[]), offer("cpus:1;mem:128"), [], RNG))
    assert m.resources == Resources.parse("cpus:1;mem:128") and m.host_ports == ()


def test_insufficient_scalars_are_all_reported_and_funnelled() -> None:
    result = match(app(cpus=8.0, mem=4096.0, disk=5000.0, gpus=1), offer(), [], RNG)
    assert refused(result) == (
        "InsufficientCpus",
        "InsufficientMemory",
        "InsufficientGpus",
        "InsufficientDisk",
    )
    assert isinstance(result, NoMatch) and result.reason == "InsufficientCpus"
    assert refused(match(app(mem=2048.0), offer(), [], RNG)) == ("InsufficientMemory",)


def test_reserved_resources_for_the_app_role_are_used_in_offer_order() -> None:
    o = offer(
        "cpus(ops):0.5;cpus:4;mem(ops):64;mem:1024;ports:[31000-31000]", allocation_info={"role": "ops"}
    )
    m = ok(match(app(role="ops"), o, [], RNG))
    assert m.resources == Resources.parse("cpus(ops):0.5;cpus:0.5;mem(ops):64;mem:64;ports:[31000-31000]")
    assert all(r["allocation_info"] == {"role": "ops"} for r in m.resources_json)
    assert {(r["name"], r["role"]) for r in m.resources_json} >= {("cpus", "ops"), ("cpus", "*")}


def test_accepted_resource_roles() -> None:
    assert accepted_roles(app()) == {"*"}
    assert accepted_roles(app(role="ops")) == {"ops", "*"}
    assert accepted_roles(app(role="ops"), MatchConfig(accepted_roles_default="reserved")) == {"ops"}
    assert accepted_roles(app(role="ops"), MatchConfig(accepted_roles_default="unreserved")) == {"*"}
    assert accepted_roles(app(role="ops", acceptedResourceRoles=["ops"])) == {"ops"}
    o = offer(
        "cpus(ops):2;mem(ops):512;cpus:0.5;mem:512;ports:[31000-31001]", allocation_info={"role": "ops"}
    )
    # only unreserved accepted: 0.5 cpus are not enough
    assert refused(match(app(role="ops", acceptedResourceRoles=["*"]), o, [], RNG)) == ("InsufficientCpus",)
    # only the reservation accepted: cpus/mem fit but it has no ports
    only_ops = app(role="ops", acceptedResourceRoles=["ops"])
    assert refused(match(only_ops, o, [], RNG)) == ("InsufficientPorts",)
    m = ok(match(only_ops | {"portDefinitions": []}, o, [], RNG))
    assert m.resources.roles() == {"ops"} and not m.resources.unreserved()


def test_unfulfilled_role() -> None:
    o = offer("cpus(other):4;mem(other):1024")
    assert refused(match(app(), o, [], RNG)) == ("InsufficientCpus", "InsufficientMemory", "UnfulfilledRole")
    # an offer allocated to another role is not for this app at all
    assert refused(match(app(), offer(allocation_info={"role": "ops"}), [], RNG)) == ("UnfulfilledRole",)


def test_random_ports_are_deterministic_per_seed_and_consecutive() -> None:
    a = app(portDefinitions=[{"port": 0}, {"port": 0}, {"port": 0}])
    o = offer("cpus:4;mem:1024;ports:[31000-31099,32000-32099]")
    first = ok(match(a, o, [], random.Random(42))).host_ports
    assert first == ok(match(a, o, [], random.Random(42))).host_ports
    seen = {ok(match(a, o, [], random.Random(seed))).host_ports for seed in range(20)}
    assert len(seen) > 10  # really random
    for ports in seen:
        assert len(set(ports)) == 3
        assert all(p is not None and (31000 <= p <= 31099 or 32000 <= p <= 32099) for p in ports)


def test_random_ports_wrap_around_the_offered_ranges() -> None:
    ranges = [("*", 31000, 31001), ("*", 32000, 32000)]
    for seed in range(30):
        picked = pick_ports([0, 0, 0], ranges, random.Random(seed))
        assert picked is not None and sorted(x[1] for x in picked if x) == [31000, 31001, 32000]
    assert pick_ports([0, 0, 0, 0], ranges, random.Random(0)) is None


def test_require_ports_takes_the_given_numbers() -> None:
    a = app(requirePorts=True, portDefinitions=[{"port": 31005}, {"port": 31001}])
    m = ok(match(a, offer(), [], RNG))
    assert m.host_ports == (31005, 31001)
    assert m.resources.ranges("ports") == ((31001, 31001), (31005, 31005))
    assert refused(match(app(requirePorts=True, portDefinitions=[{"port": 10000}]), offer(), [], RNG)) == (
        "InsufficientPorts",
    )


def test_too_few_ports_is_insufficient_ports() -> None:
    a = app(portDefinitions=[{"port": 0}] * 3)
    result = match(a, offer("cpus:4;mem:1024;ports:[31000-31001]"), [], RNG)
    assert refused(result) == ("InsufficientPorts",)
    assert refused(match(app(), offer("cpus:4;mem:1024"), [], RNG)) == ("InsufficientPorts",)


def bridge_app(mappings: list[dict[str, Any]], mode: str = "container/bridge") -> dict[str, Any]:
    container = {"type": "DOCKER", "docker": {"image": "nginx"}, "portMappings": mappings}
    return app(container=container, networks=[{"mode": mode, "name": "dcos"}], portDefinitions=[])


def test_bridge_mappings_mix_fixed_and_dynamic_without_duplicates() -> None:
    a = bridge_app([{"containerPort": 80, "hostPort": 0}, {"containerPort": 81, "hostPort": 31002}])
    o = offer("cpus:4;mem:1024;ports:[31000-31002]")
    for seed in range(20):
        m = ok(match(a, o, [], random.Random(seed)))
        assert m.host_ports[1] == 31002 and m.host_ports[0] in (31000, 31001)
    # the fixed port must be offered even without requirePorts
    b = bridge_app([{"containerPort": 80, "hostPort": 9999}])
    assert refused(match(b, o, [], RNG)) == ("InsufficientPorts",)
    twice = bridge_app([{"containerPort": 80, "hostPort": 31000}, {"containerPort": 81, "hostPort": 31000}])
    assert refused(match(twice, o, [], RNG)) == ("InsufficientPorts",)


def test_container_mode_mappings_without_host_port_take_none() -> None:
    a = bridge_app([{"containerPort": 80}, {"containerPort": 81, "hostPort": 0}], mode="container")
    m = ok(match(a, offer("cpus:4;mem:1024;ports:[31000-31000]"), [], RNG))
    assert m.host_ports == (None, 31000)
    none = bridge_app([{"containerPort": 80}], mode="container")
    m = ok(match(none, offer("cpus:4;mem:1024"), [], RNG))
    assert m.host_ports == (None,) and not m.resources.ranges("ports")


def test_constraints_are_checked_against_placements() -> None:
    a = app(constraints=[["hostname", "UNIQUE"]])
    placed = [Placement("agent1", version=VERSION)]
    assert refused(match(a, offer(), placed, RNG)) == ("UnfulfilledConstraint",)
    assert ok(match(a, offer(hostname="agent2"), placed, RNG))
    # an instance of an older config does not count (rolling upgrades may co-locate)
    old = [Placement("agent1", version="2020-01-01T00:00:00.000Z")]
    assert ok(match(a, offer(), old, RNG))
    rack = app(constraints=[["rack", "LIKE", "r[12]"]])
    assert ok(match(rack, offer(attributes="rack:r1"), [], RNG)).placement.attributes == {"rack": "r1"}
    assert refused(match(rack, offer(attributes="rack:r3"), [], RNG)) == ("UnfulfilledConstraint",)


def test_gpu_agents_are_kept_for_gpu_apps() -> None:
    o = offer("cpus:4;mem:1024;gpus:2;ports:[31000-31009]")
    assert refused(match(app(), o, [], RNG)) == ("DeclinedScarceResources",)
    assert ok(match(app(), o, [], RNG, MatchConfig(gpu_scheduling_behavior="unrestricted")))
    assert ok(match(app(labels={"GPU_SCHEDULING_BEHAVIOR": "unrestricted"}), o, [], RNG))
    assert ok(match(app(gpus=1), o, [], RNG)).resources.milli("gpus") == 1000


def test_remote_region_needs_a_region_constraint() -> None:
    remote = offer(domain={"fault_domain": {"region": {"name": "us"}, "zone": {"name": "us-1"}}})
    config = MatchConfig(local_region="eu")
    assert refused(match(app(), remote, [], RNG, config)) == ()
    assert ok(match(app(), remote, [], RNG, MatchConfig(local_region="us")))
    assert ok(match(app(constraints=[["@region", "IS", "us"]]), remote, [], RNG, config))


def test_agents_in_maintenance_are_avoided() -> None:
    window = {"start": {"nanoseconds": 1000 * 10**9}, "duration": {"nanoseconds": 100 * 10**9}}
    o = offer(unavailability=window)
    assert ok(match(app(), o, [], RNG, MatchConfig(now=900.0)))
    assert ok(match(app(), o, [], RNG, MatchConfig(now=2000.0)))  # the window is over
    inside = refused(match(app(), o, [], RNG, MatchConfig(now=1050.0)))
    assert inside == ("UnfulfilledConstraint", "AgentMaintenance")
    assert refused(match(app(), o, [], RNG, MatchConfig(now=950.0, draining_seconds=60))) == inside
    assert ok(match(app(), o, [], RNG, MatchConfig(now=1050.0, maintenance_mode=False)))


def test_match_many_keeps_unique_within_the_batch() -> None:
    a = app(constraints=[["hostname", "UNIQUE"]])
    offers = [offer(oid="A", hostname="h1"), offer(oid="B", hostname="h1"), offer(oid="C", hostname="h2")]
    batch = match_many(a, 3, offers, [], random.Random(3))
    assert [m.offer_id for m in batch.matches] == ["A", "C"]
    assert batch.unmatched["B"].reasons == ("UnfulfilledConstraint",)
    assert [p.hostname for p in batch.placements] == ["h1", "h2"]


def test_match_many_consumes_offer_resources_and_respects_limits() -> None:
    o = offer("cpus:4;mem:1024;ports:[31000-31009]")
    batch = match_many(app(), 10, [o], [], random.Random(5))
    assert len(batch.matches) == 4  # cpus run out
    ports = [m.host_ports[0] for m in batch.matches]
    assert len(set(ports)) == 4
    total = sum((m.resources for m in batch.matches), Resources())
    assert usable_resources(o["resources"]).contains(total)
    assert len(match_many(app(cpus=0.1), 10, [o], [], RNG).matches) == 5  # --max_instances_per_offer
    assert len(match_many(app(cpus=0.1), 2, [o, offer(oid="O2")], [], RNG).matches) == 2
    batch = match_many(app(cpus=0.1), 7, [o, offer(oid="O2")], [], RNG)
    assert [m.offer_id for m in batch.matches] == ["O1"] * 5 + ["O2"] * 2


def test_match_many_max_per_and_group_by_in_one_batch() -> None:
    hosts = [offer(oid=f"O{i}", hostname=f"h{i % 2}", attributes=f"rack:r{i % 2}") for i in range(4)]
    batch = match_many(app(cpus=0.1, constraints=[["hostname", "MAX_PER", "2"]]), 10, hosts, [], RNG)
    assert sorted(p.hostname or "" for p in batch.placements) == ["h0", "h0", "h1", "h1"]
    spread = match_many(app(cpus=0.1, constraints=[["rack", "GROUP_BY", "2"]]), 4, hosts, [], RNG)
    # a second r0 on the first offer is refused until r1 is in use, as across separate offers
    assert [p.attributes["rack"] for p in spread.placements] == ["r0", "r1", "r1", "r0"]


def test_unsupported_offer_resources_are_skipped() -> None:
    o = offer()
    o["resources"].append(
        {"name": "disk", "type": "SCALAR", "scalar": {"value": 5}, "disk": {"persistence": {}}}
    )
    assert usable_resources(o["resources"]) == Resources.parse(
        "cpus:4;mem:1024;disk:1000;ports:[31000-31009]"
    )


# -- properties --------------------------------------------------------------------------------

_CONSTRAINTS = [
    ["hostname", "UNIQUE"],
    ["rack", "GROUP_BY", "2"],
    ["rack", "MAX_PER", "1"],
    ["hostname", "CLUSTER"],
    ["rack", "LIKE", "r[01]"],
    ["rack", "UNLIKE", "r1"],
    ["rack", "IS", "r0"],
]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]], list[Placement], int]:
    roles = ["*", "ops"]
    offers = []
    for i in range(draw(st.integers(1, 4))):
        parts = []
        for role in draw(st.lists(st.sampled_from(roles), min_size=1, max_size=2, unique=True)):
            label = "" if role == "*" else f"({role})"
            cpus, mem = draw(st.integers(0, 40)) / 10, draw(st.integers(0, 8)) * 64
            begin = 31000 + draw(st.integers(0, 50))
            end = begin + draw(st.integers(-1, 6))
            parts += [f"cpus{label}:{cpus}", f"mem{label}:{mem}"]
            if end >= begin:
                parts.append(f"ports{label}:[{begin}-{end}]")
        host = draw(st.sampled_from(["h0", "h1", "h2"]))
        rack = draw(st.sampled_from(["", "rack:r0", "rack:r1", "rack:r2"]))
        offers.append(offer(";".join(parts), oid=f"O{i}", hostname=host, attributes=rack))
    n_ports = draw(st.integers(0, 3))
    fixed = draw(st.booleans())
    defs = [{"port": 31000 + draw(st.integers(0, 56)) if fixed else 0} for _ in range(n_ports)]
    if len({d["port"] for d in defs}) != len(defs) and fixed:
        defs = defs[:1]
    a = app(
        cpus=draw(st.integers(1, 20)) / 10,
        mem=float(draw(st.integers(0, 4)) * 64),
        role=draw(st.sampled_from(roles)),
        requirePorts=fixed,
        portDefinitions=defs,
        constraints=draw(st.lists(st.sampled_from(_CONSTRAINTS), max_size=2)),
    )
    placements = [
        Placement(
            draw(st.sampled_from(["h0", "h1"])),
            {"rack": draw(st.sampled_from(["r0", "r1"]))},
            version=VERSION,
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    return a, offers, placements, draw(st.integers(0, 2**32))


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_a_match_uses_only_offered_resources_and_keeps_constraints(
    case: tuple[dict[str, Any], list[dict[str, Any]], list[Placement], int],
) -> None:
    a, offers, placements, seed = case
    roles = accepted_roles(a)
    for o in offers:
        result = match(a, o, placements, random.Random(seed))
        if isinstance(result, NoMatch):
            continue
        assert usable_resources(o["resources"]).contains(result.resources)
        assert result.resources.roles() <= roles - {"*"}
        assert result.resources.milli("cpus") == round(a["cpus"] * 1000)
        ports = [p for p in result.host_ports if p is not None]
        assert len(ports) == len(set(ports)) == len(a["portDefinitions"])
        assert not meets_all(a["constraints"], result.placement, placements)
    batch = match_many(a, 6, offers, placements, random.Random(seed))
    assert len(batch.matches) <= 6
    for o in offers:
        used = sum((m.resources for m in batch.matches if m.offer_id == o["id"]["value"]), Resources())
        assert usable_resources(o["resources"]).contains(used)
    placed = list(placements)
    for m in batch.matches:  # each launch was valid given the ones before it
        assert not meets_all(a["constraints"], m.placement, placed)
        placed.append(m.placement)


def test_a_port_offered_in_two_roles_is_still_one_port() -> None:
    """Found by the property above: 31000 unreserved and reserved for `ops` must not serve two requests."""
    ranges = [("*", 31000, 31000), ("ops", 31000, 31000)]
    assert pick_ports([0, 0], ranges, random.Random(0)) is None
    (got,) = pick_ports([0], ranges, random.Random(0)) or [None]
    assert got is not None and got[1] == 31000
