"""Constraint evaluation and validation (reference §5), with the cases of Marathon 1.10's ConstraintsTest."""

from __future__ import annotations

import pytest

from marathon_py.constraints import (
    MSG_FIELDS,
    MSG_GROUP_BY,
    MSG_ILLEGAL,
    MSG_IS,
    MSG_LIKE,
    MSG_MAX_PER,
    MSG_OPERATOR,
    MSG_REGEX,
    MSG_UNIQUE_VALUE,
    Placement,
    attribute_string,
    attribute_strings,
    constraint_errors,
    format_scalar,
    meets,
    relevant_placements,
)
from paas_common.resources import parse_attributes


def at(host: str = "host", attrs: str = "", version: str | None = None) -> Placement:
    """A placement (or offer) on ``host`` with agent attributes in Mesos' flag syntax."""
    return Placement(host, attribute_strings(parse_attributes(attrs)), version=version)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (2.5, "2.5"),
        (1.0005, "1"),  # binary 1.000499999… rounds down
        (1.00051, "1.001"),
        (1.1005, "1.101"),  # binary 1.100500000…03 rounds up
        (0.0625, "0.062"),  # an exact tie goes to the even digit
        (0.0635, "0.064"),
        (1234567.0, "1234567"),
        (0.0, "0"),
    ],
)
def test_scalars_are_formatted_like_java_decimal_format(value: float, text: str) -> None:
    assert format_scalar(value) == text


def test_attribute_values_as_marathon_compares_them() -> None:
    ranges = {
        "name": "p",
        "type": "RANGES",
        "ranges": {"range": [{"begin": 5, "end": 6}, {"begin": 1, "end": 2}]},
    }
    assert attribute_string(ranges) == "[1-2,5-6]"
    assert attribute_string({"name": "s", "type": "SET", "set": {"item": ["b", "a"]}}) == "{a,b}"
    assert attribute_string({"name": "t", "type": "TEXT", "text": {"value": "rack-1"}}) == "rack-1"
    assert attribute_string({"name": "n", "type": "SCALAR", "scalar": {"value": 3.0}}) == "3"
    first = [
        {"name": "a", "type": "TEXT", "text": {"value": "x"}},
        {"name": "a", "type": "TEXT", "text": {"value": "y"}},
    ]
    assert attribute_strings(first) == {"a": "x"}


def test_unique() -> None:
    c = ["hostname", "UNIQUE"]
    assert meets(c, at("h1"), [])
    assert meets(c, at("h1"), [at("h2")])
    assert not meets(c, at("h1"), [at("h2"), at("h1")])
    rack = ["rack", "UNIQUE"]
    assert meets(rack, at("h", "rack:a"), [at("h", "rack:b"), at("h")])  # instances lacking it do not clash
    assert not meets(rack, at("h", "rack:a"), [at("x", "rack:a")])
    assert not meets(rack, at("h"), [])  # the offer lacks the attribute


def test_cluster_with_and_without_value() -> None:
    assert meets(["rack", "CLUSTER", "a"], at("h", "rack:a"), [])
    assert not meets(["rack", "CLUSTER", "a"], at("h", "rack:b"), [])
    assert meets(["jdk", "CLUSTER", "7"], at("h", "jdk:7"), [at("h", "jdk:7")])
    assert not meets(["jdk", "CLUSTER", "7"], at("h", "jdk:6"), [at("h", "jdk:7")])
    # without a value: anywhere at first, then where the first instance went
    assert meets(["rack", "CLUSTER"], at("h", "rack:b"), [])
    assert meets(["rack", "CLUSTER"], at("h", "rack:b"), [at("x", "rack:b"), at("y", "rack:c")])
    assert not meets(["rack", "CLUSTER"], at("h", "rack:c"), [at("x", "rack:b"), at("y", "rack:c")])
    assert not meets(["rack", "CLUSTER"], at("h", "rack:c"), [at("x")])  # first instance has no rack


def test_group_by_with_count_rack_sequence() -> None:
    """ConstraintsTest "RackGroupedByConstraints"."""
    c = ["rack_id", "GROUP_BY", "2"]
    r1, r2 = at("x", "rack_id:rack-1"), at("x", "rack_id:rack-2")
    rack1, rack2 = at("foohost", "foo:bar;rack_id:rack-1"), at("foohost", "foo:bar;rack_id:rack-2")
    assert meets(c, rack1, [])
    assert not meets(c, rack1, [r1])
    assert meets(c, rack2, [r1])
    assert meets(c, rack1, [r1, r2])
    assert not meets(c, rack1, [r1, r1, r2])
    assert not meets(c, at("foohost"), [])  # no attribute, no match


def test_group_by_three_racks_and_scalar_values() -> None:
    """ConstraintsTest "RackGroupedByConstraints2/3": 1.0 on an instance equals 1 in an offer."""
    c = ["rack_id", "GROUP_BY", "3"]
    p1, p2, p3 = (at("x", f"rack_id:{n}.0") for n in (1, 2, 3))
    o1, o2, o3 = (at("foohost", f"foo:bar;rack_id:{n}") for n in (1, 2, 3))
    assert meets(c, o1, [])
    assert meets(c, o2, [p1])
    assert meets(c, o3, [p1, p2])
    assert meets(c, o1, [p1, p2, p3])
    assert meets(c, o2, [p1, p2, p3, p1])
    assert not meets(c, o2, [p1, p2, p3, p1, p2])


def test_group_by_hostname_sequence() -> None:
    """ConstraintsTest "HostnameGroupedByConstraints"."""
    c = ["hostname", "GROUP_BY", "2"]
    placed: list[Placement] = []
    assert meets(c, at("host1"), placed)
    placed.append(at("host1"))
    assert not meets(c, at("host1"), placed)
    assert meets(c, at("host2"), placed)
    placed.append(at("host2"))
    assert meets(c, at("host1"), placed)
    placed.append(at("host1"))
    assert not meets(c, at("host1"), placed)
    assert meets(c, at("host3"), placed)
    placed.append(at("host3"))
    assert not meets(c, at("host1"), placed)
    assert meets(c, at("host3"), placed)
    assert meets(c, at("host2"), placed)


def test_group_by_without_count_learns_values_from_offers() -> None:
    """n = 0: a value never seen is always welcome; a known one only while it is among the smallest."""
    c = ["zone", "GROUP_BY"]
    a, b = at("h", "zone:a"), at("h", "zone:b")
    assert meets(c, a, [])
    assert meets(c, a, [a])  # one group, and it is the smallest
    assert meets(c, b, [a, a])  # a new value
    assert not meets(c, a, [a, a, b])
    assert meets(c, b, [a, a, b])
    # instances lacking the attribute are a group of their own and count for the minimum
    assert meets(c, a, [a, at("h")])
    assert not meets(c, a, [a, a, at("h")])
    assert meets(["zone", "GROUP_BY", "inf"], at("h", "zone:c"), [a])  # unbounded: only new values
    assert not meets(["zone", "GROUP_BY", "inf"], a, [a])


def test_max_per() -> None:
    """ConstraintsTest "HostnameMaxPerConstraints" / "RackMaxPerConstraints"."""
    c = ["hostname", "MAX_PER", "2"]
    assert meets(c, at("host1"), [])
    assert meets(c, at("host1"), [at("host1")])
    assert meets(c, at("host2"), [at("host1"), at("host1")])
    assert not meets(c, at("host1"), [at("host1"), at("host1")])
    rack = ["rack_id", "MAX_PER", "2"]
    in1 = at("x", "rack_id:1")
    assert meets(rack, at("foohost", "foo:bar;rack_id:1"), [in1])
    assert not meets(rack, at("foohost", "foo:bar;rack_id:1"), [in1, in1])
    assert meets(rack, at("foohost", "foo:bar;rack_id:2"), [in1, in1])
    assert not meets(["hostname", "MAX_PER", "0"], at("host1"), [])
    assert not meets(rack, at("foohost"), [])


def test_like_and_unlike_are_full_matches() -> None:
    assert meets(["jdk", "LIKE", "7"], at("h", "jdk:7"), [])
    assert not meets(["jdk", "LIKE", "7"], at("h", "jdk:17"), [])  # full match, not search
    assert meets(["jdk", "LIKE", "1?7"], at("h", "jdk:17"), [])
    assert not meets(["jdk", "UNLIKE", "7"], at("h", "jdk:7"), [])
    assert meets(["jdk", "UNLIKE", "7"], at("h", "jdk:6"), [])
    assert meets(["jdk", "LIKE", r"\[6-7\]"], at("h", "jdk:[6-7]"), [])
    assert meets(["hostname", "LIKE", "web-[0-9]+"], at("web-12"), [])
    assert not meets(["hostname", "UNLIKE", "web-[0-9]+"], at("web-12"), [])


def test_missing_attribute_only_unlike_matches() -> None:
    offer = at("foohost")
    for op, value in (("LIKE", "7"), ("CLUSTER", "7"), ("IS", "7"), ("MAX_PER", "5"), ("GROUP_BY", "")):
        assert not meets(["jdk", op, value], offer, [])
    assert meets(["jdk", "UNLIKE", "7"], offer, [])
    assert meets(["jdk", "UNLIKE", ""], offer, [])  # even without a value


def test_empty_regex_refuses_like_and_unlike() -> None:
    assert not meets(["jdk", "LIKE", ""], at("h", "jdk:7"), [])
    assert not meets(["jdk", "UNLIKE", ""], at("h", "jdk:7"), [])


def test_is_compares_scalars_after_rounding() -> None:
    """ConstraintsTest "IS operator"."""
    assert meets(["hostname", "IS", "righthost.com"], at("righthost.com"), [])
    assert not meets(["hostname", "IS", "righthost.com"], at("wronghost.com"), [])
    assert meets(["number", "IS", "1.0"], at("host", "number:1"), [])
    assert meets(["number", "IS", "1"], at("host", "number:1.0"), [])
    assert meets(["number", "IS", "1.0001"], at("host", "number:1.0"), [])
    assert meets(["number", "IS", "1.0005"], at("host", "number:1.0"), [])
    assert not meets(["number", "IS", "1.00051"], at("host", "number:1.0"), [])
    assert not meets(["number", "IS", "1.001"], at("host", "number:1.0"), [])
    assert meets(["rack", "IS", "rack-1"], at("host", "rack:rack-1"), [])


def test_fields_hostname_region_zone() -> None:
    offer = {
        "hostname": "agent-1",
        "attributes": [{"name": "hostname", "type": "TEXT", "text": {"value": "not-used"}}],
        "domain": {"fault_domain": {"region": {"name": "eu"}, "zone": {"name": "eu-1a"}}},
    }
    p = Placement.of_offer(offer)
    assert meets(["hostname", "IS", "agent-1"], p, [])
    assert meets(["@hostname", "IS", "agent-1"], p, [])
    assert meets(["@region", "IS", "eu"], p, [])
    assert meets(["@zone", "UNIQUE"], p, [Placement("x", zone="eu-1b")])
    assert not meets(["@zone", "UNIQUE"], p, [Placement("x", zone="eu-1a")])
    assert not meets(["@region", "IS", "eu"], Placement("agent-2"), [])  # no fault domain


def test_old_config_instances_are_ignored() -> None:
    app = {
        "version": "2020-01-02T00:00:00.000Z",
        "versionInfo": {"lastConfigChangeAt": "2020-01-01T00:00:00Z"},
    }
    old = at("h1", version="2019-12-31T23:59:59.999Z")
    same = at("h2", version="2020-01-01T00:00:00.000Z")
    scaled = at("h3", version="2020-01-02T00:00:00.000Z")
    unknown = at("h4")
    assert relevant_placements(app, [old, same, scaled, unknown]) == [same, scaled, unknown]


@pytest.mark.parametrize(
    ("constraint", "errors"),
    [
        (["hostname", "UNIQUE"], []),
        (["hostname", "unique"], []),  # operators are case-insensitive on input
        (["hostname"], [MSG_FIELDS]),
        (["a", "B", "c", "d"], [MSG_FIELDS]),
        (["", "UNIQUE"], [MSG_ILLEGAL]),
        ("hostname:UNIQUE", [MSG_ILLEGAL]),
        (["hostname", 1], [MSG_ILLEGAL]),
        (["hostname", "SPREAD"], [MSG_OPERATOR]),
        (["hostname", "UNIQUE", "x"], [MSG_UNIQUE_VALUE]),
        (["hostname", "UNIQUE", ""], [MSG_UNIQUE_VALUE]),
        (["rack", "CLUSTER"], []),
        (["rack", "CLUSTER", "a"], []),
        (["rack", "GROUP_BY"], []),
        (["rack", "GROUP_BY", "3"], []),
        (["rack", "GROUP_BY", "three"], [MSG_GROUP_BY]),
        (["rack", "GROUP_BY", "99999999999"], [MSG_GROUP_BY]),
        (["rack", "MAX_PER", "2"], []),
        (["rack", "MAX_PER"], [MSG_MAX_PER]),
        (["rack", "MAX_PER", "2.5"], [MSG_MAX_PER]),
        (["rack", "LIKE"], [MSG_LIKE]),
        (["rack", "UNLIKE", "a.*"], []),
        (["rack", "LIKE", "("], [MSG_REGEX]),
        (["rack", "LIKE", ""], []),  # compiles, so it passes (and then never matches)
        (["rack", "IS", "rack-1.5"], []),
        (["rack", "IS"], []),
        (["rack", "IS", "[1-2]"], [MSG_IS]),
        (["rack", "IS", "a b"], [MSG_IS]),
    ],
)
def test_constraint_errors(constraint: object, errors: list[str]) -> None:
    assert constraint_errors(constraint) == errors
