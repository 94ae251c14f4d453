"""marathon_py.store: ZooKeeper layout, payload encoding, root refs and version pruning (pure)."""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marathon_py.election import latch_sequence, participants
from marathon_py.store import (
    COMPRESSED,
    PLAIN,
    CorruptNode,
    Layout,
    NodeTooLarge,
    References,
    StoreConfig,
    app_id_of,
    app_key,
    bucket,
    check_name,
    decode,
    encode,
    java_hash,
    join_root,
    newest_first,
    plan_prune,
    root_refs,
    roots_to_drop,
    split_root,
)
from tests.support.marathon_docs import app, incompressible, root_with, ts

CONFIG = StoreConfig()


def test_java_string_hashcode_and_buckets() -> None:
    assert java_hash("") == 0
    assert java_hash("hello") == 99162322
    assert java_hash("polygenelubricants") == -(2**31)  # Integer.MIN_VALUE: abs() would overflow in Java
    assert java_hash("\U0001f600") == 31 * 0xD83D + 0xDE00  # UTF-16 code units, as Java sees them
    assert bucket("polygenelubricants") == "0"
    assert bucket("root") == format(3506402 % 16, "x")
    assert {bucket(f"app{i}") for i in range(200)} == {format(b, "x") for b in range(16)}


def test_layout_paths() -> None:
    layout = Layout("/marathon/")
    assert layout.namespace == "/marathon/state"
    assert layout.app("/prod/web") == f"/marathon/state/apps/{bucket('prod_web')}/prod_web"
    assert layout.app_version("/prod/web", ts(1)).endswith(f"/prod_web/{ts(1)}")
    assert layout.root == f"/marathon/state/group/{bucket('root')}/root"
    assert (
        layout.node("instance", "web.instance-1")
        == f"/marathon/state/instance/{bucket('web.instance-1')}/web.instance-1"
    )
    assert layout.task_failure("/prod/web") == f"/marathon/state/taskFailure/{bucket('prod_web')}/prod_web"
    assert layout.framework_id == "/marathon/state/framework-id"
    dirs = layout.bucket_dirs()
    assert len(dirs) == 4 * 16 + 1 and len(set(dirs)) == len(dirs)


def test_app_keys_round_trip_and_names_are_checked() -> None:
    assert app_key("/a/b-c/d.e") == "a_b-c_d.e"
    assert app_id_of(app_key("/a/b-c/d.e")) == "/a/b-c/d.e"
    with pytest.raises(ValueError):
        app_key("/")
    for bad in ("", ".", "..", "a/b", "a\nb"):
        with pytest.raises(ValueError):
            check_name(bad, "instance id")
    assert check_name("web.marathon-1234", "instance id") == "web.marathon-1234"


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_payloads_round_trip(doc: Any) -> None:
    assert decode(encode(doc, "doc", CONFIG)) == doc
    assert decode(encode(doc, "doc", StoreConfig(compression_threshold=0))) == doc


def test_compression_above_the_threshold_only() -> None:
    small = {"cmd": "x" * 100}
    big = {"cmd": "x" * (70 * 1024)}
    assert encode(small, "app", CONFIG)[:1] == PLAIN
    assert encode(small, "app", CONFIG) == b'J{"cmd":"' + b"x" * 100 + b'"}'  # readable in zkCli
    packed = encode(big, "app", CONFIG)
    assert packed[:1] == COMPRESSED and len(packed) < 1024
    assert decode(packed) == big
    assert encode(big, "app", StoreConfig(compression=False))[:1] == PLAIN


def test_node_size_limit_is_a_clear_error() -> None:
    config = StoreConfig(max_node_size=10_000)
    assert encode({"env": incompressible(9_000)}, "app /a", config)
    with pytest.raises(
        NodeTooLarge, match=r"app /a: \d+ bytes would exceed the maximum ZK node size \(10000 bytes\)"
    ):
        encode({"env": incompressible(20_000)}, "app /a", config)
    with pytest.raises(NodeTooLarge):
        encode({"env": incompressible(2_000_000)}, "app /a", CONFIG)  # compressed, still too big
    assert encode({"env": "a" * 2_000_000}, "app /a", CONFIG)[:1] == COMPRESSED  # compresses below it


@pytest.mark.parametrize("data", [b"", b"X{}", b"J{", COMPRESSED + b"nope", COMPRESSED + zlib.compress(b"{")])
def test_corrupt_payloads_are_refused(data: bytes) -> None:
    with pytest.raises(CorruptNode):
        decode(data, "/x")


def test_versions_sort_as_times() -> None:
    assert newest_first(["2024-01-01T00:00:51.164Z", "2024-01-01T00:00:51Z", "2023-12-31T23:59:59.999Z"]) == [
        "2024-01-01T00:00:51.164Z",
        "2024-01-01T00:00:51Z",
        "2023-12-31T23:59:59.999Z",
    ]
    assert newest_first(["junk", ts(1)]) == [ts(1), "junk"]


def test_root_is_stored_with_refs_and_joined_back() -> None:
    root = root_with(ts(2), app("/a", ts(1)), app("/prod/web", ts(2)))
    stored, apps = split_root(root)
    assert stored["apps"] == [{"id": "/a", "version": ts(1)}]
    assert stored["groups"][0]["apps"] == [{"id": "/prod/web", "version": ts(2)}]
    assert set(apps) == {"/a", "/prod/web"}
    assert root_refs(stored) == {"/a": ts(1), "/prod/web": ts(2)}
    assert join_root(stored, lambda i, v: apps[i] if apps[i]["version"] == v else None) == root
    with pytest.raises(CorruptNode, match="missing app /a"):
        join_root(stored, lambda i, v: None)
    with pytest.raises(ValueError):
        split_root({**root, "apps": [{"id": "/x"}]})
    with pytest.raises(ValueError):
        split_root({k: v for k, v in root.items() if k != "version"})


def test_references_count_roots() -> None:
    refs = References()
    refs.add({"/a": ts(1), "/b": ts(1)})
    refs.add({"/a": ts(1), "/b": ts(2)})
    assert refs.would_release([{"/a": ts(1), "/b": ts(1)}]) == {("/b", ts(1))}
    assert refs.would_release([{"/a": ts(1), "/b": ts(1)}, {"/a": ts(1), "/b": ts(2)}]) == {
        ("/a", ts(1)),
        ("/b", ts(1)),
        ("/b", ts(2)),
    }
    assert refs.remove({"/a": ts(1), "/b": ts(1)}) == [("/b", ts(1))]
    assert refs.count == {("/a", ts(1)): 1, ("/b", ts(2)): 1}


def test_roots_beyond_max_versions_are_dropped_oldest_first() -> None:
    versions = [ts(i) for i in range(53)]
    assert roots_to_drop(versions, ts(52), 50) == [ts(0), ts(1), ts(2)]
    assert roots_to_drop(versions[:50], ts(49), 50) == []
    assert roots_to_drop(versions[:3], ts(0), 1) == [ts(1)]  # never the current one


def prune_history(saves: list[dict[str, str]], max_versions: int) -> tuple[list[str], dict[str, list[str]]]:
    """Simulate ZkStore's bookkeeping over a series of root saves (refs per root); what survives."""
    config = StoreConfig(max_versions=max_versions)
    roots: dict[str, dict[str, str]] = {}
    apps: dict[str, set[str]] = {}
    refs = References()
    for n, save in enumerate(saves):
        roots[ts(n)] = save
        refs.add(save)
        for a, v in save.items():
            apps.setdefault(a, set()).add(v)
        plan = plan_prune(list(roots), ts(n), config, roots.__getitem__, refs, apps)
        for v in plan.roots:
            refs.remove(roots.pop(v))
        for a, v in plan.app_versions:
            apps[a].discard(v)
        for a in plan.app_nodes:
            assert not apps.pop(a)
        for kept in roots.values():  # integrity: every kept root's refs are stored
            assert all(v in apps[a] for a, v in kept.items())
    return sorted(roots), {a: sorted(vs) for a, vs in apps.items()}


def test_pruning_keeps_fifty_versions_of_roots_and_apps() -> None:
    saves = [{"/web": ts(n), "/db": ts(0)} for n in range(60)]  # /web changes every time, /db never
    roots, apps = prune_history(saves, 50)
    assert roots == [ts(n) for n in range(10, 60)]
    assert apps["/web"] == [ts(n) for n in range(10, 60)]
    assert apps["/db"] == [ts(0)]  # still referenced by every kept root


def test_an_app_deleted_from_the_tree_goes_with_the_last_root_that_held_it() -> None:
    saves = [{"/old": ts(0), "/web": ts(n)} for n in range(3)] + [{"/web": ts(n)} for n in range(3, 8)]
    roots, apps = prune_history(saves, 5)
    assert roots == [ts(n) for n in range(3, 8)]
    assert "/old" not in apps


@given(
    st.lists(
        st.dictionaries(st.sampled_from(["/a", "/b", "/c"]), st.integers(0, 5)), min_size=1, max_size=30
    ),
    st.integers(1, 6),
)
def test_pruning_never_breaks_a_kept_root(changes: list[dict[str, int]], max_versions: int) -> None:
    saves = [{a: ts(v) for a, v in change.items()} for change in changes]
    roots, apps = prune_history(saves, max_versions)
    assert len(roots) == min(len(saves), max_versions)
    assert all(len(vs) <= max_versions for vs in apps.values())


def test_orphans_are_pruned_too() -> None:
    refs = References()
    refs.add({"/a": ts(2)})
    plan = plan_prune(
        [ts(2)],
        ts(2),
        CONFIG,
        lambda v: {"/a": ts(2)},
        refs,
        {"/a": [ts(1), ts(2)], "/z": [ts(1)]},
        [("/a", ts(1)), ("/z", ts(1))],
    )
    assert (
        plan.roots == [] and plan.app_versions == [("/a", ts(1)), ("/z", ts(1))] and plan.app_nodes == ["/z"]
    )


def test_curator_latch_order() -> None:
    names = ["_c_9f-latch-0000000012", "_c_1a-latch-0000000003", "other", "_c_77-latch-", "latch-0000000007"]
    assert latch_sequence("_c_1a-latch-0000000003") == 3
    assert latch_sequence("other") is None
    assert participants(names) == ["_c_1a-latch-0000000003", "latch-0000000007", "_c_9f-latch-0000000012"]
