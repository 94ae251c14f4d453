"""agent_py.resources: Mesos' detection rules, the --resources syntax, and refusing an oversized request."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest

from agent_py.resources import (
    GB,
    MB,
    Machine,
    ResourceDetectionError,
    agent_resources,
    detect,
    parse_flag,
    probe_machine,
)
from paas_common.resources import Resources

TWO_CORES = Machine(cpus=2, mem_total_bytes=24 * GB, disk_total_bytes=252 * GB)


def test_detection_keeps_mesos_host_reserves() -> None:
    # mem >= 2 GB: total - 1 GB; disk >= 10 GB: total - 5 GB
    assert detect(TWO_CORES) == Resources.parse("cpus:2;mem:23552;disk:252928;ports:[31000-32000]")


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
    assert (detected.scalar("mem"), detected.scalar("disk")) == (expected_mem, expected_disk)


def test_failed_probes_use_mesos_fallbacks() -> None:
    detected = detect(Machine(cpus=None, mem_total_bytes=None, disk_total_bytes=None))
    assert (detected.cpus, detected.mem, detected.disk) == (1.0, 1024.0, 10240.0)


def test_probe_measures_this_host(tmp_path: Path) -> None:
    machine = probe_machine(tmp_path / "not" / "created" / "yet")  # the nearest existing parent counts
    assert machine.cpus == psutil.cpu_count(logical=True)
    assert machine.mem_total_bytes == psutil.virtual_memory().total
    assert machine.disk_total_bytes == psutil.disk_usage(str(tmp_path)).total


def test_override_replaces_only_the_names_it_gives() -> None:
    resources = agent_resources("cpus:1.5;ports:[8000-8010,9000-9000];zones:{b,a}", TWO_CORES)
    assert resources == Resources.parse(
        "cpus:1.5;mem:23552;disk:252928;ports:[8000-8010,9000-9000];zones:{a,b}"
    )
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
    assert agent_resources("mem:24576;cpus:2", TWO_CORES).mem == 24576.0


@pytest.mark.parametrize(
    "flag",
    [
        "cpus",
        "cpus:two",
        "cpus:-1",
        "cpus:nan",
        "ports:[2000-1000]",
        "ports:[a-b]",
        ":3",
        '[{"name": "cpus", "type": "SCALAR"}]',
        '{"name": "cpus"}',
    ],
)
def test_malformed_flags_are_refused_naming_the_problem(flag: str) -> None:
    with pytest.raises(ResourceDetectionError, match="--resources: "):
        parse_flag(flag)


@pytest.mark.parametrize(
    ("flag", "message"), [("[not json", "bad JSON"), ("file:///no/such/file", "cannot read")]
)
def test_unreadable_flags_are_refused(flag: str, message: str) -> None:
    with pytest.raises(ResourceDetectionError, match=message):
        parse_flag(flag)


def test_json_and_file_forms(tmp_path: Path) -> None:
    resources = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 4}},
        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31005, "end": 31010}]}},
        {"name": "zones", "type": "SET", "set": {"item": ["x"]}, "role": "*"},
    ]
    expected = Resources.parse("cpus:4;ports:[31005-31010];zones:{x}")
    assert parse_flag(json.dumps(resources)) == expected
    path = tmp_path / "resources.txt"
    path.write_text("cpus:4;ports:[31005-31010];zones:{x}\n")
    assert parse_flag(f"file://{path}") == expected


def test_reservations_in_the_flag_are_kept() -> None:
    assert parse_flag("cpus(web):2;cpus:1").reserved("web") == Resources.parse("cpus(web):2")
