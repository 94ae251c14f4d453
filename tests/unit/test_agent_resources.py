"""agent_py.resources: Mesos' detection rules, the --resources syntax, and refusing an oversized request."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_py.resources import (
    GB,
    MB,
    Machine,
    ResourceDetectionError,
    agent_resources,
    detect,
    format_resources,
    parse_resources,
    probe_machine,
)

TWO_CORES = Machine(cpus=2, mem_total_bytes=24 * GB, disk_total_bytes=252 * GB)


def test_detection_keeps_mesos_host_reserves() -> None:
    assert detect(TWO_CORES) == {
        "cpus": 2.0,
        "mem": 23 * 1024.0,  # >= 2 GB: total - 1 GB
        "disk": 247 * 1024.0,  # >= 10 GB: total - 5 GB
        "ports": [(31000, 32000)],
    }


@pytest.mark.parametrize(
    ("mem", "disk", "expected_mem", "expected_disk"),
    [
        (2 * GB, 10 * GB, 1024.0, 5 * 1024.0),  # the thresholds themselves take the fixed reserve
        (2 * GB - MB, 10 * GB - MB, 1023.0, 5 * 1024.0 - 1),  # just below: half, whole MB rounded down
        (1536 * MB, 8 * GB, 768.0, 4096.0),
        (1536 * MB + 1, 8 * GB + 3, 768.0, 4096.0),
    ],
)
def test_small_machines_keep_half(mem: int, disk: int, expected_mem: float, expected_disk: float) -> None:
    detected = detect(Machine(cpus=1, mem_total_bytes=mem, disk_total_bytes=disk))
    assert (detected["mem"], detected["disk"]) == (expected_mem, expected_disk)


def test_failed_probes_use_mesos_fallbacks() -> None:
    detected = detect(Machine(cpus=None, mem_total_bytes=None, disk_total_bytes=None))
    assert (detected["cpus"], detected["mem"], detected["disk"]) == (1.0, 1024.0, 10240.0)


def test_probe_measures_this_host(tmp_path: Path) -> None:
    machine = probe_machine(tmp_path / "not" / "created" / "yet")  # the nearest existing parent counts
    assert machine.cpus == psutil.cpu_count(logical=True)
    assert machine.mem_total_bytes == psutil.virtual_memory().total
    assert machine.disk_total_bytes == psutil.disk_usage(str(tmp_path)).total


def test_override_replaces_only_the_names_it_gives() -> None:
    resources = agent_resources("cpus:1.5;ports:[8000-8010, 9000-9000];zones:{b,a}", TWO_CORES)
    assert resources == {
        "cpus": 1.5,
        "mem": 23 * 1024.0,
        "disk": 247 * 1024.0,
        "ports": [(8000, 8010), (9000, 9000)],
        "zones": frozenset({"a", "b"}),
    }
    assert agent_resources(None, TWO_CORES) == detect(TWO_CORES)


@pytest.mark.parametrize(
    ("flag", "words"),
    [
        ("cpus:512", ["cpus:512", "only 2 CPUs"]),
        ("mem:999999", ["mem:999999", "24576 MB of memory"]),
        ("disk:300000", ["disk:300000", "258048 MB of disk"]),
    ],
)
def test_more_than_the_machine_has_is_refused(flag: str, words: list[str]) -> None:
    with pytest.raises(ResourceDetectionError) as refused:
        agent_resources(flag, TWO_CORES)
    assert all(w in str(refused.value) for w in words)


def test_the_host_reserve_may_be_given_away() -> None:
    assert agent_resources("mem:24576;cpus:2", TWO_CORES)["mem"] == 24576.0


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("cpus", "expected name:value"),
        ("cpus:two", "bad value"),
        ("cpus:-1", "non-negative"),
        ("cpus:nan", "non-negative"),
        ("cpus:1;cpus:2", "given twice"),
        ("cpus(web):2", "role reservations"),
        ("ports:[2000-1000]", "begin > end"),
        ("ports:[a-b]", "bad range"),
        ("ports:[0-10]", "outside 1-65535"),
        (":3", "bad resource name"),
        ('[{"name": "cpus", "type": "SCALAR"}]', "bad SCALAR Resource"),
        ('[{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}, "role": "web"}]', "role reservations"),
        ('{"name": "cpus"}', "bad value"),
        ("[not json", "bad JSON"),
        ("file:///no/such/file", "cannot read"),
    ],
)
def test_malformed_flags_are_refused(flag: str, message: str) -> None:
    with pytest.raises(ResourceDetectionError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_resources(flag)


def test_json_and_file_forms(tmp_path: Path) -> None:
    resources = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 4}},
        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31005, "end": 31010}]}},
        {"name": "zones", "type": "SET", "set": {"item": ["x"]}, "role": "*"},
    ]
    expected = {"cpus": 4.0, "ports": [(31005, 31010)], "zones": frozenset({"x"})}
    assert parse_resources(json.dumps(resources)) == expected
    path = tmp_path / "resources.txt"
    path.write_text("cpus:4;ports:[31005-31010];zones:{x}\n")
    assert parse_resources(f"file://{path}") == expected


def test_ranges_are_merged_and_sorted() -> None:
    assert parse_resources("ports:[9000-9010,31000-32000,8000-8999,9005-9020]")["ports"] == [
        (8000, 9020),
        (31000, 32000),
    ]


def test_format_is_mesos_syntax() -> None:
    assert format_resources(detect(TWO_CORES)) == "cpus:2;mem:23552;disk:252928;ports:[31000-32000]"
    assert format_resources({"cpus": 0.1 + 0.2, "zones": frozenset({"b", "a"})}) == "cpus:0.3;zones:{a,b}"


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
scalars = st.integers(min_value=0, max_value=10**9).map(lambda n: n / 1000)


def _spans(steps: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Disjoint, non-adjacent ranges (the form parse_resources normalises to) from (gap, length) steps."""
    out, end = [], 0
    for gap, length in steps:
        begin = end + gap + 2
        end = begin + length
        out.append((begin, end))
    return out


ranges = st.lists(st.tuples(st.integers(0, 500), st.integers(0, 100)), min_size=1, max_size=5).map(_spans)
sets = st.frozensets(names, min_size=1, max_size=4)


@given(st.dictionaries(names, scalars | ranges | sets, max_size=6))
def test_format_parse_round_trip(
    resources: dict[str, float | list[tuple[int, int]] | frozenset[str]],
) -> None:
    assert parse_resources(format_resources(resources)) == resources
