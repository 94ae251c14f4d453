"""Apache's own zkCli (3.8.0) against zk_py and Apache ZooKeeper: what an operator types and sees.

Each test pipes a script into one zkCli session (see tests/support/zkcli.py) and asserts on what zkCli
prints for every command: node names, data, stat fields and the exact error lines.  The same assertions
hold for both servers, so any difference is a zk_py incompatibility an operator would notice.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from tests.support.servers import ZkServer
from tests.support.zkcli import CliResult, run_command, run_script, zkcli_available

pytestmark = pytest.mark.skipif(
    not zkcli_available(), reason="zkCli needs java and Debian's zookeeper package"
)

STAT_KEYS = [
    "cZxid",
    "ctime",
    "mZxid",
    "mtime",
    "pZxid",
    "cversion",
    "dataVersion",
    "aclVersion",
    "ephemeralOwner",
    "dataLength",
    "numChildren",
]


def stat_of(text: str) -> dict[str, str]:
    """The ``key = value`` stat block zkCli prints (stat, get -s, ls -s, getAcl -s), in order."""
    pairs = re.findall(r"^(\w+) = (.*)$", text, re.M)
    assert [k for k, _ in pairs] == STAT_KEYS, f"not a stat block:\n{text}"
    return dict(pairs)


def before_stat(text: str) -> str:
    """What a command printed before its stat block (the data of ``get -s``, the list of ``ls -s``)."""
    return text.split("\ncZxid = ", 1)[0]


def acl_entries(text: str) -> set[tuple[str, str, str]]:
    """getAcl's two-line entries (`'scheme,'id` then `: perms`) as (scheme, id, perms)."""
    found = re.findall(r"^'(\w+),'(.*)\n: ([cdrwa]*)$", text, re.M)
    assert len(found) * 2 == len(text.splitlines()), f"not an ACL listing:\n{text}"
    return set(found)


def digest(user: str, password: str) -> str:
    """The digest scheme's id: user:base64(sha1(user:password))."""
    return f"{user}:" + base64.b64encode(hashlib.sha1(f"{user}:{password}".encode()).digest()).decode()


def script(srv: ZkServer, commands: list[str]) -> CliResult:
    return run_script(srv.hosts, commands, timeout=90)


def test_create_get_set_stat_delete(zk_server: ZkServer) -> None:
    r = script(
        zk_server,
        [
            "create /app hello",
            "create /app again",
            "create /app/one 1",
            "create /app/two 'two words'",
            "create /missing/child x",
            "ls /app",
            "ls /",
            "get /app",
            "get /app/two",
            "set /app world",
            "get -s /app",
            "set -v 0 /app stale",
            "set -v 1 /app fresh",
            "stat /app",
            "ls -s /app",
            "getAllChildrenNumber /app",
            "delete /app",
            "delete -v 5 /app/one",
            "delete /app/one",
            "delete /app/one",
            "ls /app",
            "create /app/two/three/four x",
            "create /app/two/three 3",
            "create /app/two/three/four 4",
            "ls -R /app",
            "getAllChildrenNumber /app",
            "deleteall /app",
            "stat /app",
            "get /app",
            "ls /",
            "create /empty",
            "get /empty",
        ],
    )
    assert r.output_of("create /app hello") == "Created /app"
    assert r.output_of("create /app again") == "Node already exists: /app"
    assert r.output_of("create /app/two 'two words'") == "Created /app/two"
    assert r.output_of("create /missing/child x") == "Node does not exist: /missing/child"
    assert r.outputs_of("ls /app") == ["[one, two]", "[two]"]
    assert r.outputs_of("ls /") == ["[app, zookeeper]", "[zookeeper]"]
    assert r.output_of("get /app") == "hello"
    assert r.output_of("get /app/two") == "two words"
    assert r.output_of("set /app world") == ""

    got = r.output_of("get -s /app")
    assert before_stat(got) == "world"
    st = stat_of(got)
    assert (st["dataVersion"], st["dataLength"], st["numChildren"], st["cversion"]) == ("1", "5", "2", "2")
    assert (st["aclVersion"], st["ephemeralOwner"]) == ("0", "0x0")
    assert int(st["mZxid"], 16) > int(st["cZxid"], 16)
    assert int(st["pZxid"], 16) > int(st["cZxid"], 16)

    assert r.output_of("set -v 0 /app stale") == "version No is not valid : /app"
    assert r.output_of("set -v 1 /app fresh") == ""
    st = stat_of(r.output_of("stat /app"))
    assert (st["dataVersion"], st["dataLength"], st["numChildren"]) == ("2", "5", "2")
    ls_s = r.output_of("ls -s /app")
    assert before_stat(ls_s) == "[one, two]"
    assert stat_of(ls_s)["dataVersion"] == "2"
    assert r.outputs_of("getAllChildrenNumber /app") == ["2", "3"]

    assert r.output_of("delete /app") == "Node not empty: /app"
    assert r.output_of("delete -v 5 /app/one") == "version No is not valid : /app/one"
    assert r.outputs_of("delete /app/one") == ["", "Node does not exist: /app/one"]

    assert r.output_of("create /app/two/three/four x") == "Node does not exist: /app/two/three/four"
    assert r.output_of("ls -R /app").splitlines() == [
        "/app",
        "/app/two",
        "/app/two/three",
        "/app/two/three/four",
    ]
    assert r.output_of("deleteall /app") == ""
    assert r.outputs_of("stat /app")[-1] == "Node does not exist: /app"
    assert r.outputs_of("get /app") == ["hello", "Node does not exist: /app"]
    assert r.output_of("get /empty") == "null"  # a node created without data holds no bytes


def test_ephemeral_sequential_and_container_nodes(zk_server: ZkServer) -> None:
    r = script(
        zk_server,
        [
            "create /q",
            "create -s /q/job- a",
            "create -s /q/job- b",
            "create -e /q/lock me",
            "create -e -s /q/eph- ",
            "create /q/lock/child x",
            "create -e /q/lock again",
            "ls /q",
            "getEphemerals",
            "getEphemerals /q/l",
            "stat /q/lock",
            "stat /q",
            "getAllChildrenNumber /q",
            "create -c /box",
            "create /box/item x",
            "ls /box",
            "get /box/item",
            "create -s /box/seq- ",
        ],
    )
    assert r.output_of("create -s /q/job- a") == "Created /q/job-0000000000"
    assert r.output_of("create -s /q/job- b") == "Created /q/job-0000000001"
    assert r.output_of("create -e /q/lock me") == "Created /q/lock"
    # the sequence counter is the parent's cversion, shared by all children
    assert r.output_of("create -e -s /q/eph- ") == "Created /q/eph-0000000003"
    assert r.output_of("create /q/lock/child x") == "Ephemerals cannot have children: /q/lock/child"
    assert r.output_of("create -e /q/lock again") == "Node already exists: /q/lock"
    assert r.output_of("ls /q") == "[eph-0000000003, job-0000000000, job-0000000001, lock]"

    def listed(text: str) -> set[str]:
        assert text.startswith("[") and text.endswith("]"), text
        return {p.strip() for p in text[1:-1].split(",") if p.strip()}

    assert listed(r.output_of("getEphemerals")) == {"/q/lock", "/q/eph-0000000003"}
    assert listed(r.output_of("getEphemerals /q/l")) == {"/q/lock"}
    lock = stat_of(r.output_of("stat /q/lock"))
    assert lock["ephemeralOwner"] != "0x0"
    assert (lock["dataLength"], lock["numChildren"]) == ("2", "0")
    parent = stat_of(r.output_of("stat /q"))
    assert (parent["numChildren"], parent["cversion"], parent["ephemeralOwner"]) == ("4", "4", "0x0")
    assert r.output_of("getAllChildrenNumber /q") == "4"

    assert r.output_of("create -c /box") == "Created /box"
    assert r.output_of("ls /box") == "[item]"
    assert r.output_of("get /box/item") == "x"
    assert r.output_of("create -s /box/seq- ") == "Created /box/seq-0000000001"

    # `quit` closed that session, so its ephemerals are gone for the next one; the rest stays.
    r2 = script(zk_server, ["ls /q", "getEphemerals", "get /q/lock", "ls /box"])
    assert r2.output_of("ls /q") == "[job-0000000000, job-0000000001]"
    assert r2.output_of("getEphemerals") == "[]"
    assert r2.output_of("get /q/lock") == "Node does not exist: /q/lock"
    assert r2.output_of("ls /box") == "[item, seq-0000000001]"


def test_acl_digest_and_addauth(zk_server: ZkServer) -> None:
    alice = digest("alice", "secret")
    r = script(
        zk_server,
        [
            "create /secure top-secret",
            f"setAcl /secure digest:{alice}:cdrwa",
            "get /secure",
            "getAcl /secure",
            "addauth digest alice:wrong",
            "get /secure",
            "addauth digest alice:secret",
            "get /secure",
            "getAcl /secure",
            "whoami",
            "create /open x",
            "setAcl /open world:anyone:r",
            "set /open y",
            "get /open",
            "getAcl -s /open",
            "create /open/kid x",
            "create /mine m auth::cdrwa",
            "getAcl /mine",
            "create /bad x digest:nocolon:cdrwa",
        ],
    )
    assert r.output_of(f"setAcl /secure digest:{alice}:cdrwa") == ""
    assert r.outputs_of("get /secure") == [
        "Insufficient permission : /secure",
        "Insufficient permission : /secure",
        "top-secret",
    ]
    assert r.outputs_of("getAcl /secure") == [
        "Insufficient permission : /secure",
        f"'digest,'{alice}\n: cdrwa",
    ]
    who = r.output_of("whoami").splitlines()
    assert who[0] == "Auth scheme: User"
    assert "digest: alice" in who and "ip: 127.0.0.1" in who

    assert r.output_of("setAcl /open world:anyone:r") == ""
    assert r.output_of("set /open y") == "Insufficient permission : /open"
    assert r.output_of("get /open") == "x"
    acl_s = r.output_of("getAcl -s /open")
    assert before_stat(acl_s) == "'world,'anyone\n: r"
    assert (stat_of(acl_s)["aclVersion"], stat_of(acl_s)["dataVersion"]) == ("1", "0")
    assert r.output_of("create /open/kid x") == "Insufficient permission : /open/kid"
    assert r.output_of("create /mine m auth::cdrwa") == "Created /mine"
    # auth:: grants every id the session authenticated, the wrong password too: digest addauth never
    # fails, it only records the id the password hashes to.  Apache keeps auth ids in a hash set, so the
    # order of the entries carries no meaning.
    wrong = digest("alice", "wrong")
    assert acl_entries(r.output_of("getAcl /mine")) == {
        ("digest", wrong, "cdrwa"),
        ("digest", alice, "cdrwa"),
    }

    # A new session has no credentials until it adds them.
    r2 = script(
        zk_server,
        ["whoami", "get /secure", "get /mine", "addauth digest alice:secret", "get /mine", "delete /secure"],
    )
    assert r2.output_of("whoami") == "Auth scheme: User\nip: 127.0.0.1"
    assert r2.output_of("get /secure") == "Insufficient permission : /secure"
    assert r2.outputs_of("get /mine") == [
        "Insufficient permission : /mine",
        "m",
    ]
    assert r2.output_of("delete /secure") == ""  # deleting needs DELETE on the parent (world), not the node


def test_add_watch_persistent_recursive_sees_the_subtree(zk_server: ZkServer) -> None:
    r = script(
        zk_server,
        [
            "create /w",
            "addWatch -m PERSISTENT_RECURSIVE /w",
            "create /w/a 1",
            "create /w/a/deep 2",
            "set /w/a 3",
            "create /elsewhere x",
            "set /elsewhere y",
            "delete /w/a/deep",
            "ls /w",
            "get /w/a",
            "stat /w",
        ],
    )
    assert r.output_of("addWatch -m PERSISTENT_RECURSIVE /w") == ""
    assert r.output_of("create /w/a/deep 2") == "Created /w/a/deep"
    assert r.output_of("get /w/a") == "3"
    # Persistent watches stay armed after firing; recursive ones cover the whole subtree but never
    # send NodeChildrenChanged; /elsewhere is outside the watched tree.
    assert r.node_events() == [
        ("NodeCreated", "/w/a"),
        ("NodeCreated", "/w/a/deep"),
        ("NodeDataChanged", "/w/a"),
        ("NodeDeleted", "/w/a/deep"),
    ]
    assert all(e.state == "SyncConnected" for e in r.events if e.type != "None")


def test_one_command_per_invocation(zk_server: ZkServer) -> None:
    created = run_command(zk_server.hosts, "create /solo 'one shot'")
    assert (created.returncode, created.text) == (0, "Created /solo")
    again = run_command(zk_server.hosts, ["create", "/solo", "x"])
    assert (again.returncode, again.text) == (1, "Node already exists: /solo")
    got = run_command(zk_server.hosts, "get /solo")
    assert (got.returncode, got.text) == (0, "one shot")
    missing = run_command(zk_server.hosts, "get /nowhere")
    assert (missing.returncode, missing.text) == (1, "Node does not exist: /nowhere")
    listing = run_command(zk_server.hosts, "ls /")
    assert (listing.returncode, listing.text) == (0, "[solo, zookeeper]")
