"""Mesos resources: the agent flag and JSON syntaxes, v1 JSON as the master emits it, fixed-point and range
arithmetic, attributes, and precise errors (``paas_common.resources``)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paas_common.resources import (
    EMPTY,
    ResourceError,
    Resources,
    attributes_model,
    coalesce,
    format_milli,
    parse_attributes,
    ranges_contain,
    ranges_subtract,
    to_milli,
)

R = Resources.parse


# --- parsing -------------------------------------------------------------------------------------------


def test_flag_syntax_with_roles_ranges_and_sets() -> None:
    r = R("cpus:24;gpus:2;mem:24576;disk:409600;ports:[21000-24000,30000-34000];bugs(debug_role):{a,b,c}")
    assert r.cpus == 24.0 and r.mem == 24576.0 and r.disk == 409600.0 and r.scalar("gpus") == 2.0
    assert r.ranges("ports") == ((21000, 24000), (30000, 34000))
    assert r.set_items("bugs") == {"a", "b", "c"}
    assert r.roles() == {"debug_role"}
    assert r.reserved("debug_role") == R("bugs(debug_role):{a,b,c}")


def test_role_suffix_default_role_and_spaces() -> None:
    r = R(" cpus(ops) : 2 ; mem : 1 024 ", default_role="*")
    assert dict(((n, role), v) for n, role, v in r.items()) == {("cpus", "ops"): 2000, ("mem", "*"): 1024000}
    assert R("cpus:1", default_role="web").roles() == {"web"}
    assert R("cpus(*):1") == R("cpus:1")


def test_ranges_are_coalesced_and_same_keys_merge() -> None:
    assert R("ports:[3-4,1-2,10-12,11-15]").ranges("ports") == ((1, 4), (10, 15))
    assert R("cpus:1;cpus:0.5;mem:10") == R("cpus:1.5;mem:10")
    assert R("cpus:0;mem:1") == R("mem:1")  # empty resources are dropped


def test_json_array_in_both_reservation_formats() -> None:
    doc = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2.5}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": "512"}, "role": "ops"},
        {
            "name": "disk",
            "type": "SCALAR",
            "scalar": {"value": 100},
            "reservations": [{"type": "STATIC", "role": "a/b"}],
        },
        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31001}]}},
        {"name": "zones", "type": "SET", "set": {"item": ["x", "y"]}, "allocation_info": {"role": "*"}},
    ]
    r = Resources.from_json(doc)
    assert r == R("cpus:2.5;mem(ops):512;disk(a/b):100;ports:[31000-31001];zones:{x,y}")
    assert R(json.dumps(doc)) == r  # --resources may be a JSON array
    assert Resources.from_json(doc[:1], default_role="web") == R("cpus(web):2.5")


def test_scalars_constructor() -> None:
    assert Resources.scalars({"cpus": 0.1, "mem": 32}) == R("cpus:0.1;mem:32")
    with pytest.raises(ResourceError, match="negative"):
        Resources.scalars({"cpus": -1})


# --- v1 JSON output --------------------------------------------------------------------------------------


def test_to_json_pre_reservation_refinement_is_what_pymesos_sees() -> None:
    assert R("cpus:8;ports:[31001-31001,31003-31005]").to_json() == [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 8.0}, "role": "*"},
        {
            "name": "ports",
            "type": "RANGES",
            "ranges": {"range": [{"begin": 31001, "end": 31001}, {"begin": 31003, "end": 31005}]},
            "role": "*",
        },
    ]
    assert R("cpus(ops):0.5").to_json() == [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}, "role": "ops"}
    ]


def test_to_json_post_and_endpoint_formats_and_allocation_info() -> None:
    r = R("cpus(ops):1;s:{b,a}")
    assert r.to_json("POST_RESERVATION_REFINEMENT", allocation_role="ops") == [
        {
            "name": "cpus",
            "type": "SCALAR",
            "scalar": {"value": 1.0},
            "allocation_info": {"role": "ops"},
            "reservations": [{"type": "STATIC", "role": "ops"}],
        },
        {"name": "s", "type": "SET", "set": {"item": ["a", "b"]}, "allocation_info": {"role": "ops"}},
    ]
    endpoint = r.to_json("ENDPOINT")
    assert endpoint[0]["role"] == "ops" and endpoint[0]["reservations"] == [{"type": "STATIC", "role": "ops"}]
    assert list(endpoint[0]) == ["name", "type", "scalar", "role", "reservations"]  # proto field order


@pytest.mark.parametrize("fmt", ["PRE_RESERVATION_REFINEMENT", "POST_RESERVATION_REFINEMENT", "ENDPOINT"])
def test_json_round_trip(fmt: str) -> None:
    r = R("cpus:1.25;mem(ops):64;ports:[1-5,7-7];s(a/b):{x}")
    assert Resources.from_json(json.loads(json.dumps(r.to_json(fmt)))) == r  # type: ignore[arg-type]


def test_v0_model_for_state() -> None:
    assert R("cpus:8;mem:2082;cpus(ops):0.5;ports:[1-2,4-4];s:{b,a}").model() == {
        "cpus": 8.5,
        "gpus": 0.0,
        "mem": 2082.0,
        "disk": 0.0,
        "ports": "[1-2, 4-4]",
        "s": "{a, b}",
    }


def test_str_is_the_flag_syntax_and_parses_back() -> None:
    r = R("cpus:0.25;mem(ops):1024;ports:[31000-32000];s:{a,b}")
    assert str(r) == "cpus:0.25;mem(ops):1024;ports:[31000-32000];s:{a,b}"
    assert R(str(r)) == r
    assert repr(EMPTY) == "Resources('')"


# --- fixed point ----------------------------------------------------------------------------------------


def test_fixed_point_scalars_are_exact() -> None:
    assert R("cpus:0.1") + R("cpus:0.2") == R("cpus:0.3")
    assert (R("cpus:0.1") + R("cpus:0.2")).to_json()[0]["scalar"]["value"] == 0.3
    ten = EMPTY
    for _ in range(10):
        ten = ten + R("cpus:0.1")
    assert ten == R("cpus:1") and ten.milli("cpus") == 1000
    assert R("cpus:1") - R("cpus:0.9") == R("cpus:0.1")


def test_rounding_to_three_decimals_like_llround() -> None:
    assert to_milli(0.0005) == 1 and to_milli(0.0004) == 0 and to_milli(2.0015) == 2002
    assert R("cpus:0.1234") == R("cpus:0.123")
    assert Resources.from_json(
        [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.30000000000000004}}]
    ) == R("cpus:0.3")
    assert format_milli(2500) == "2.5" and format_milli(8000) == "8" and format_milli(10) == "0.01"


# --- arithmetic -----------------------------------------------------------------------------------------


def test_range_arithmetic_merges_and_splits() -> None:
    assert (R("ports:[1-5]") + R("ports:[6-9]")).ranges("ports") == ((1, 9),)
    assert (R("ports:[1-5]") + R("ports:[8-9]")).ranges("ports") == ((1, 5), (8, 9))
    assert (R("ports:[31000-32000]") - R("ports:[31100-31200,31500-31500]")).ranges("ports") == (
        (31000, 31099),
        (31201, 31499),
        (31501, 32000),
    )
    assert R("ports:[1-10]") - R("ports:[1-10]") == EMPTY
    assert R("ports:[1-10]").contains(R("ports:[2-3,9-10]"))
    assert not R("ports:[1-5,7-10]").contains(R("ports:[5-7]"))


def test_set_arithmetic() -> None:
    assert R("s:{a,b}") + R("s:{b,c}") == R("s:{a,b,c}")
    assert R("s:{a,b,c}") - R("s:{b}") == R("s:{a,c}")
    assert not R("s:{a}").contains(R("s:{a,b}"))


def test_contains_respects_roles_and_comparisons() -> None:
    both = R("cpus:2;cpus(ops):2")
    assert both.contains(R("cpus(ops):1;cpus:2"))
    assert not R("cpus:4").contains(R("cpus(ops):1"))
    assert R("cpus:1") <= R("cpus:2;mem:1") and R("cpus:2;mem:1") >= R("mem:1")
    assert not R("cpus:1;mem:1") <= R("cpus:2")
    assert EMPTY.empty() and not EMPTY and R("cpus:1")


def test_strict_and_saturating_subtraction() -> None:
    with pytest.raises(ResourceError, match=r"cannot subtract cpus:3: only cpus:2 present"):
        R("cpus:2") - R("cpus:3")
    with pytest.raises(ResourceError, match="only nothing present"):
        R("cpus:2") - R("mem:1")
    with pytest.raises(ResourceError, match="ports"):
        R("ports:[1-5]") - R("ports:[5-6]")
    assert R("cpus:2;ports:[1-5]").minus(R("cpus:3;mem:1;ports:[5-6]")) == R("ports:[1-4]")


def test_quantities_and_allocatable_to() -> None:
    r = R("cpus:1;cpus(eng):2;mem(eng/web):64;ports:[1-10]")
    assert r.quantities() == {"cpus": 3000, "mem": 64000}
    assert r.has_quantities({"ports": 10000, "cpus": 3000}) and not r.has_quantities({"ports": 11000})
    assert r.allocatable_to("eng/web") == r
    assert r.allocatable_to("eng") == R("cpus:1;cpus(eng):2;ports:[1-10]")
    assert r.allocatable_to("other") == r.unreserved() == R("cpus:1;ports:[1-10]")
    assert r.allocatable_to("engineering") == r.unreserved()


# --- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cpus:-1", "resource 'cpus': negative value '-1'"),
        ("cpus:abc", "resource 'cpus': value 'abc' is not a scalar, ranges or set"),
        ("cpus", "missing or extra ':' in 'cpus'"),
        ("cpus:1:2", "missing or extra ':' in 'cpus:1:2'"),
        ("cpus(ops:2", "mismatched parentheses in 'cpus(ops:2'"),
        ("cpusops):2", "mismatched parentheses in 'cpusops):2'"),
        ("ports:[1-x]", "resource 'ports': expecting non-negative integers in '1-x'"),
        ("ports:[5-1]", "resource 'ports': invalid range '5-1'"),
        ("ports:[1-2,3]", "expecting one or more ranges in '[1-2,3]'"),
        ("ports:[1-2", "mismatched brackets"),
        ("cpus:0.0001", "rounds to 0"),
        ("mem:inf", "resource 'mem'"),
        ("mem:nan", "resource 'mem'"),
        ("cpus:1;cpus:[1-2]", "same name ('cpus') but different types"),
        ("cpus(a//b):1", "resource 'cpus': invalid role 'a//b'"),
        ("cpus(-x):1", "starts with a dash"),
        ("(ops):1", "empty resource name"),
    ],
)
def test_flag_syntax_errors_name_the_token(text: str, message: str) -> None:
    with pytest.raises(ResourceError) as err:
        R(text)
    assert message in str(err.value)
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"name": "cpus"}, "must be an array"),
        ([{"type": "SCALAR", "scalar": {"value": 1}}], "item 0: missing or empty 'name'"),
        (
            [{"name": "cpus", "type": "TEXT", "text": {"value": "x"}}],
            "resource 'cpus' (item 0): unknown or unsupported type \"TEXT\"",
        ),
        ([{"name": "cpus", "type": "FOO"}], 'unknown or unsupported type "FOO"'),
        ([{"name": "cpus", "type": "SCALAR", "scalar": {"value": -2}}], "negative value -2.0"),
        ([{"name": "cpus", "type": "SCALAR", "scalar": {"value": "x"}}], "'x' is not a number"),
        (
            [{"name": "cpus", "type": "SCALAR", "ranges": {}}],
            "a SCALAR resource needs exactly the 'scalar' field",
        ),
        ([{"name": "p", "type": "RANGES", "ranges": {"range": [{"begin": 5, "end": 1}]}}], "begin > end"),
        (
            [
                {
                    "name": "p",
                    "type": "RANGES",
                    "ranges": {"range": [{"begin": 1, "end": 5}, {"begin": 3, "end": 9}]},
                }
            ],
            "overlapping ranges",
        ),
        (
            [{"name": "p", "type": "RANGES", "ranges": {"range": [{"begin": -1, "end": 5}]}}],
            "non-negative integer",
        ),
        ([{"name": "s", "type": "SET", "set": {"item": ["a", "a"]}}], "duplicated set elements"),
        (
            [
                {
                    "name": "cpus",
                    "type": "SCALAR",
                    "scalar": {"value": 1},
                    "reservations": [{"type": "DYNAMIC", "role": "r"}],
                }
            ],
            "dynamic reservations are not supported",
        ),
        (
            [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}, "disk": {}}],
            "'disk' resources are not supported",
        ),
        ([{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}, "role": "a/./b"}], "cannot include '.'"),
        ([{"name": "cpus", "type": "SCALAR", "scalar": {"value": True}}], "expected a number"),
    ],
)
def test_json_errors(doc: object, message: str) -> None:
    with pytest.raises(ResourceError) as err:
        Resources.from_json(doc)
    assert message in str(err.value)


# --- attributes -----------------------------------------------------------------------------------------


def test_attributes_to_v1_json() -> None:
    assert parse_attributes("rack:a;zone: b c ;n:3;u:[1-4,6-6];neg:-3;url:http://x:1") == [
        {"name": "rack", "type": "TEXT", "text": {"value": "a"}},
        {"name": "zone", "type": "TEXT", "text": {"value": "bc"}},  # upstream removes spaces
        {"name": "n", "type": "SCALAR", "scalar": {"value": 3.0}},
        {
            "name": "u",
            "type": "RANGES",
            "ranges": {"range": [{"begin": 1, "end": 4}, {"begin": 6, "end": 6}]},
        },
        {"name": "neg", "type": "TEXT", "text": {"value": "-3"}},  # negative numbers are text upstream
        {"name": "url", "type": "TEXT", "text": {"value": "http://x:1"}},
    ]
    assert parse_attributes("") == []
    attrs = parse_attributes("rack:a;n:2.5;u:[1-4];")
    assert attributes_model(attrs) == {"rack": "a", "n": 2.5, "u": "[1-4]"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rack", "invalid attribute key:value pair 'rack'"),
        (":a", "invalid attribute key:value pair ':a'"),
        ("rack:", "invalid attribute key:value pair 'rack:'"),
        ("s:{a,b}", "attribute 's': set values are not supported"),
        ("u:[1-x]", "attribute 'u': expecting non-negative integers"),
    ],
)
def test_attribute_errors(text: str, message: str) -> None:
    with pytest.raises(ResourceError) as err:
        parse_attributes(text)
    assert message in str(err.value)


# --- properties -----------------------------------------------------------------------------------------

_small_ranges = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 8)), max_size=6).map(
    lambda xs: coalesce((b, b + n) for b, n in xs)
)


def _points(r: tuple[tuple[int, int], ...]) -> set[int]:
    return {p for b, e in r for p in range(b, e + 1)}


@given(_small_ranges, _small_ranges)
def test_range_operations_match_a_set_of_points(
    a: tuple[tuple[int, int], ...], b: tuple[tuple[int, int], ...]
) -> None:
    assert _points(coalesce(a + b)) == _points(a) | _points(b)
    assert _points(ranges_subtract(a, b)) == _points(a) - _points(b)
    assert ranges_contain(a, b) == (_points(b) <= _points(a))
    for r in (coalesce(a + b), ranges_subtract(a, b)):  # canonical: sorted, disjoint, not adjacent
        assert all(r[i][1] + 1 < r[i + 1][0] for i in range(len(r) - 1))


_resources = st.builds(
    lambda cpus, mem, ports, items, role: Resources(
        {
            ("cpus", "*"): cpus,
            ("mem", role): mem,
            ("ports", "*"): ports,
            ("s", role): frozenset(items),
        }
    ),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    _small_ranges,
    st.sets(st.sampled_from("abcde")),
    st.sampled_from(["*", "ops", "eng/web"]),
)


@settings(max_examples=200)
@given(_resources, _resources)
def test_addition_and_subtraction_are_inverse(a: Resources, b: Resources) -> None:
    total = a + b
    assert total.contains(a) and total.contains(b)
    assert b + a == total
    assert (total - b) + b == total
    if not _overlap(a, b):
        assert total - b == a
    if a.contains(b):
        assert (a - b) + b == a
    assert R(str(total)) == total
    assert Resources.from_json(total.to_json("ENDPOINT")) == total


def _overlap(a: Resources, b: Resources) -> bool:
    """Ranges or set items present in both (addition then loses multiplicity, as in Mesos)."""
    return bool(_points(a.ranges("ports")) & _points(b.ranges("ports"))) or bool(
        a.set_items("s") & b.set_items("s")
    )
