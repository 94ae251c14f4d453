"""``paasctl zk``: the CLI as a subprocess against real servers, plus its pure formatting helpers.

The subprocess tests run against both servers through the shared ``zk_server`` fixture; each test
works under its own random base path so tests never see each other's nodes. The unit tests at the
end need no server.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl

from paasctl.cli import build_parser, main
from paasctl.common import UsageError
from paasctl.zkformat import (
    STAT_FIELDS,
    data_json,
    data_text,
    decode_data,
    depth_of,
    format_stat,
    format_status,
    format_time_ms,
    format_tree,
    hex64,
    judge,
    node_kind,
    parse_auth,
    parse_hosts,
    parse_srvr,
    preorder,
    tree_json,
    validate_path,
)
from tests.support.servers import ZkServer, free_port, require_apache

REPO = Path(__file__).resolve().parents[2]
CLI_TIMEOUT = 120  # seconds a single paasctl run may take before the test gives up on it
LIVE_TIMEOUT = "30"  # paasctl --timeout against a live server


def paasctl(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m paasctl`` with the repo on the path; bytes in, bytes out.

    PAASCTL_ZK from the caller's environment is dropped so it cannot redirect a test.
    """
    full_env = {k: v for k, v in os.environ.items() if k != "PAASCTL_ZK"}
    full_env.update({"PYTHONPATH": str(REPO), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "paasctl", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        cwd=REPO,
        env=full_env,
        timeout=CLI_TIMEOUT,
        check=False,
    )


class Cli:
    """paasctl bound to one server; ``zk(...)`` runs ``paasctl --zk HOSTS zk ...``."""

    def __init__(self, hosts: str) -> None:
        self.hosts = hosts

    def zk(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        # A generous bound, not a speed expectation: test hosts can be heavily loaded.
        return paasctl("--zk", self.hosts, "--timeout", LIVE_TIMEOUT, "zk", *args, stdin=stdin)

    def ok(self, *args: str, stdin: bytes | None = None) -> str:
        r = self.zk(*args, stdin=stdin)
        assert r.returncode == 0, (args, r.returncode, r.stderr.decode(), r.stdout.decode())
        assert r.stderr == b"", r.stderr.decode()
        return r.stdout.decode("utf-8")

    def json(self, *args: str, stdin: bytes | None = None) -> Any:
        return json.loads(self.ok(*args, "--json", stdin=stdin))

    def fails(self, code: int, *args: str) -> str:
        """Run, expect exit ``code`` and a single ``paasctl: ...`` line on stderr; return that line."""
        r = self.zk(*args)
        err = r.stderr.decode()
        assert r.returncode == code, (args, r.returncode, r.stdout.decode(), err)
        assert "Traceback" not in err
        assert err.startswith("paasctl: ") and err.endswith("\n") and err.count("\n") == 1, err
        return err.strip()


@pytest.fixture
def cli(zk_server: Any) -> Cli:
    return Cli(zk_server.hosts)


@pytest.fixture
def base(cli: Cli) -> Iterator[str]:
    """A fresh base path for one test, removed afterwards (best effort)."""
    path = f"/paasctl-{uuid.uuid4().hex[:12]}"
    cli.ok("create", path)
    yield path
    cli.zk("delete", "--recursive", path)


# ---------------------------------------------------------------------------------------------- reads/writes


def test_create_get_set_stat(cli: Cli, base: str) -> None:
    node = f"{base}/a/b"
    assert cli.ok("create", node, "hello", "--parents") == f"{node}\n"
    assert cli.ok("get", node) == "hello\n"

    got = cli.json("get", node)
    assert got["path"] == node and got["data"] == "hello" and got["encoding"] == "utf-8"
    assert got["length"] == 5 and got["stat"]["version"] == 0 and got["stat"]["dataLength"] == 5

    assert cli.ok("set", node, "world", "--version", "0") == ""
    after = cli.json("set", node, "again")
    assert after["stat"]["version"] == 2

    st = cli.json("stat", node)
    assert st["kind"] == "persistent" and st["stat"]["version"] == 2 and set(st["stat"]) == set(STAT_FIELDS)
    text = cli.ok("stat", node)
    assert "dataVersion = 2" in text and "ephemeralOwner = 0x0" in text and "numChildren = 0" in text

    with_stat = cli.ok("get", node, "--stat")
    assert with_stat.startswith("again\ncZxid = 0x") and "dataLength = 5" in with_stat

    # Parents made by --parents are empty; options may come before or after the subcommand.
    r = paasctl("zk", "get", f"{base}/a", "--json", "--zk", cli.hosts, "--timeout", LIVE_TIMEOUT)
    assert r.returncode == 0 and json.loads(r.stdout)["data"] == ""


def test_data_from_stdin_and_binary(cli: Cli, base: str) -> None:
    node = f"{base}/bin"
    blob = b"\x00\x01\xfe\xff"
    cli.ok("create", node, "-", stdin=blob)
    assert cli.ok("get", node) == f"base64:{base64.b64encode(blob).decode()}\n"
    got = cli.json("get", node)
    assert got["encoding"] == "base64" and base64.b64decode(got["data"]) == blob
    r = cli.zk("get", node, "--raw")
    assert r.returncode == 0 and r.stdout == blob

    cli.ok("set", node, "-", stdin="grüße\n".encode())
    assert cli.json("get", node)["data"] == "grüße\n"
    assert cli.zk("get", node, "--raw").stdout == "grüße\n".encode()


def test_ls_recursive_and_tree(cli: Cli, base: str) -> None:
    for p in ("b/x", "a/y/z", "c"):
        cli.ok("create", "--parents", f"{base}/{p}")
    assert cli.ok("ls", base) == "a\nb\nc\n"
    assert cli.json("ls", base) == {"path": base, "children": ["a", "b", "c"]}
    assert cli.ok("ls", f"{base}/c") == ""

    expected = [base] + [f"{base}/{p}" for p in ("a", "a/y", "a/y/z", "b", "b/x", "c")]
    assert cli.ok("ls", "-R", base).splitlines() == expected
    assert cli.json("ls", "-R", base)["paths"] == expected

    assert cli.ok("tree", base) == (f"{base}\n├── a\n│   └── y\n│       └── z\n├── b\n│   └── x\n└── c\n")
    assert cli.ok("tree", base, "--depth", "1") == (
        f"{base}\n├── a (+1 not shown)\n├── b (+1 not shown)\n└── c\n"
    )
    assert cli.ok("tree", base, "-d", "0") == f"{base} (+3 not shown)\n"
    tree = cli.json("tree", base)
    assert [c["name"] for c in tree["children"]] == ["a", "b", "c"]
    assert tree["children"][0]["children"][0]["children"][0]["path"] == f"{base}/a/y/z"


def test_sequential_ephemeral_container(cli: Cli, base: str) -> None:
    first = cli.ok("create", "--sequential", f"{base}/job-").strip()
    second = cli.json("create", "-s", f"{base}/job-", "data")["path"]
    assert first.startswith(f"{base}/job-") and len(first) == len(f"{base}/job-") + 10
    assert int(second.rsplit("-", 1)[1]) > int(first.rsplit("-", 1)[1])

    # The ephemeral node lives as long as paasctl's own session, so it is gone once the command exits.
    assert cli.ok("create", "--ephemeral", f"{base}/eph") == f"{base}/eph\n"
    assert "eph" not in cli.json("ls", base)["children"]

    assert cli.ok("create", "--container", f"{base}/box/inner", "--parents") == f"{base}/box/inner\n"
    assert cli.json("stat", f"{base}/box/inner")["stat"]["numChildren"] == 0


def test_delete(cli: Cli, base: str) -> None:
    cli.ok("create", "--parents", f"{base}/d/e/f")
    msg = cli.fails(1, "delete", f"{base}/d")
    assert msg == f"paasctl: {base}/d: node has children (use --recursive)"
    assert cli.json("delete", "--recursive", f"{base}/d") == {"path": f"{base}/d", "deleted": 3}
    assert cli.json("ls", base)["children"] == []

    cli.ok("create", f"{base}/v", "x")
    cli.ok("set", f"{base}/v", "y")
    msg = cli.fails(1, "delete", f"{base}/v", "--version", "0")
    assert msg == f"paasctl: {base}/v: bad version (expected 0, node is at version 1)"
    assert cli.ok("delete", f"{base}/v", "-v", "1") == ""
    cli.fails(1, "stat", f"{base}/v")


# ---------------------------------------------------------------------------------------------- errors


def test_operation_errors(cli: Cli, base: str) -> None:
    missing = f"{base}/missing"
    assert cli.fails(1, "get", missing) == f"paasctl: {missing}: no such node"
    assert cli.fails(1, "ls", missing) == f"paasctl: {missing}: no such node"
    assert cli.fails(1, "tree", missing) == f"paasctl: {missing}: no such node"
    assert cli.fails(1, "set", missing, "x") == f"paasctl: {missing}: no such node"
    assert cli.fails(1, "delete", "-r", missing) == f"paasctl: {missing}: no such node"
    assert cli.fails(1, "create", f"{missing}/child") == (
        f"paasctl: {missing}/child: parent node does not exist (use --parents)"
    )
    assert cli.fails(1, "create", base) == f"paasctl: {base}: node already exists"
    assert cli.fails(1, "set", base, "x", "--version", "7") == (
        f"paasctl: {base}: bad version (expected 7, node is at version 0)"
    )
    assert cli.fails(1, "delete", "/") == "paasctl: /: the root node cannot be deleted"

    r = cli.zk("get", missing, "--json")
    assert r.returncode == 1
    assert json.loads(r.stdout) == {
        "ok": False,
        "error": "no_node",
        "message": f"{missing}: no such node",
        "path": missing,
    }
    r = cli.zk("set", base, "x", "-v", "3", "--json")
    assert json.loads(r.stdout)["error"] == "bad_version" and json.loads(r.stdout)["actual"] == 0


def test_no_auth(cli: Cli, base: str) -> None:
    node = f"{base}/secret"
    zk = KazooClient(hosts=cli.hosts, timeout=10, auth_data=[("digest", "alice:s3cret")])
    zk.start(timeout=30)
    try:
        zk.create(node, b"top", acl=[make_digest_acl("alice", "s3cret", all=True)])
    finally:
        zk.stop()
        zk.close()
    assert cli.fails(1, "get", node) == f"paasctl: {node}: not authorized (try --auth user:password)"
    assert cli.fails(1, "get", node, "--auth", "alice:wrong") == f"paasctl: {node}: not authorized"
    assert cli.ok("get", node, "--auth", "alice:s3cret") == "top\n"
    assert cli.ok("delete", node, "--auth", "alice:s3cret") == ""


def test_chroot(cli: Cli, base: str) -> None:
    cli.ok("create", f"{base}/inside", "v")
    rooted = Cli(cli.hosts + base)
    assert rooted.ok("ls", "/") == "inside\n"
    assert rooted.ok("create", "-s", "/q-").startswith("/q-")
    assert rooted.ok("create", "-c", "/c") == "/c\n"
    assert sorted(cli.json("ls", base)["children"])[0] == "c"


def test_unreachable_server() -> None:
    port = free_port()
    r = paasctl("--zk", f"127.0.0.1:{port}", "--timeout", "0.5", "zk", "ls", "/")
    assert r.returncode == 3
    assert r.stderr.decode() == f"paasctl: cannot connect to 127.0.0.1:{port} within 0.5s\n"
    r = paasctl("zk", "get", "/x", "--json", "--timeout", "0.5", "--zk", f"127.0.0.1:{port}")
    assert r.returncode == 3 and json.loads(r.stdout)["error"] == "connection"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["zk", "get"], "required: PATH"),
        (["zk", "get", "relative"], "path must be absolute"),
        (["zk", "ls", "/a//b"], "empty node name"),
        (["zk", "ls", "/a/"], "must not end with /"),
        (["zk", "ls", "/a/../b"], "relative node name"),
        (["--timeout", "0", "zk", "ls", "/"], "invalid timeout"),
        (["--timeout", "1000", "zk", "ls", "/"], "invalid timeout"),
        (["zk", "ls", "/", "--timeout", "soon"], "invalid timeout"),
        (["zk", "set", "/a", "b", "--version", "x"], "invalid version"),
        (["zk", "tree", "/", "--depth", "-1"], "invalid depth"),
        (["zk", "frobnicate"], "invalid choice"),
        ([], "required: GROUP"),
        (["--zk", "host:port:x", "zk", "ls", "/"], "invalid ZooKeeper address"),
        (["zk", "ls", "/", "--auth", "nocolon"], "--auth must be user:password"),
        (["zk", "get", "/a", "--raw", "--json"], "--raw cannot be combined with --json"),
        (["zk", "create", "/a", "--container", "--ephemeral"], "--container cannot be combined"),
        (["zk", "delete", "/a", "-r", "-v", "2"], "--version cannot be combined with --recursive"),
    ],
)
def test_usage_errors(args: list[str], needle: str) -> None:
    """Checked before any connection is made: the default server need not exist."""
    r = paasctl("--timeout", "2", *args) if args[:1] != ["--timeout"] else paasctl(*args)
    err = r.stderr.decode()
    assert r.returncode == 2, (args, r.returncode, err)
    assert err.startswith("paasctl: ") and err.count("\n") == 1 and needle in err, err
    assert "Traceback" not in err


def test_help_documents_exit_codes() -> None:
    r = paasctl("zk", "status", "--help")
    out = r.stdout.decode()
    assert r.returncode == 0
    for line in ("1    operation failed", "2    usage error", "3    connection failure", "4    status"):
        assert line in out


# ---------------------------------------------------------------------------------------------- status


def test_status(cli: Cli) -> None:
    st = cli.json("status")
    assert st["ok"] is True
    (server,) = st["servers"]
    assert server["server"] == cli.hosts and server["state"] == "serving"
    assert server["mode"] == "standalone" and server["ruok"] in ("imok", "not allowed")
    assert isinstance(server["zxid"], int) and server["node_count"] >= 1 and server["connections"] >= 0
    text = cli.ok("status")
    assert "standalone" in text and "all 1 server(s) serving" in text

    dead = f"127.0.0.1:{free_port()}"
    r = paasctl("--zk", f"{cli.hosts},{dead}", "--timeout", LIVE_TIMEOUT, "zk", "status")
    out = r.stdout.decode()
    assert r.returncode == 4 and r.stderr == b""
    assert dead in out and "down" in out and "1 of 2 server(s) not serving" in out
    r = paasctl("--zk", f"{dead}", "--timeout", "1", "--json", "zk", "status")
    assert r.returncode == 4 and json.loads(r.stdout)["servers"][0]["error"] == "connection refused"


class SrvrOnlyApache(ZkServer):
    """Apache with its default 4lw whitelist (srvr only; Apache always allows srvr).

    The shared readiness check asks ``ruok``, which this server refuses, so wait on ``srvr`` instead.
    """

    def _wait_ready(self, timeout: float, serving: bool = True) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"apache exited during start\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                if "Mode:" in self.four_letter("srvr", timeout=1.0):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"apache not serving after {timeout:.0f}s\n{self.log_tail()}")


@pytest.mark.apache
def test_status_with_default_whitelist(tmp_path: Path) -> None:
    """ruok is refused by Apache's default whitelist, yet the server counts as serving."""
    require_apache()
    with SrvrOnlyApache("apache", tmp_path / "apache", extra_cfg={"4lw.commands.whitelist": "srvr"}) as srv:
        st = Cli(srv.hosts).json("status")
    (server,) = st["servers"]
    assert st["ok"] is True and server["ruok"] == "not allowed" and server["mode"] == "standalone"


# ---------------------------------------------------------------------------------------------- unit tests
# Pure helpers of paasctl.zkformat and the argument parser; no server needed.

Stat = namedtuple("Stat", STAT_FIELDS)  # shaped like kazoo's ZnodeStat


def make_stat(**kw: int) -> Any:
    fields = dict.fromkeys(STAT_FIELDS, 0)
    fields.update(kw)
    return Stat(**fields)


@pytest.mark.parametrize("path", ["/", "/a", "/a/b-c_d.e", "/zookeeper/quota", "/ü/名前", "/a/.b", "/..."])
def test_validate_path_accepts(path: str) -> None:
    assert validate_path(path) == path


@pytest.mark.parametrize(
    "path",
    [
        "",
        "a",
        "a/b",
        "/a/",
        "//",
        "/a//b",
        "/a/./b",
        "/..",
        "/a\x00",
        "/a\x1f",
        "/a\x7f",
        "/\ud800",
        "/\uffff",
    ],
)
def test_validate_path_rejects(path: str) -> None:
    with pytest.raises(UsageError):
        validate_path(path)


def test_validate_path_sequential_may_end_in_slash() -> None:
    assert validate_path("/queue/", sequential=True) == "/queue/"
    with pytest.raises(UsageError):
        validate_path("/queue/")


def test_parse_hosts() -> None:
    assert parse_hosts("127.0.0.1:2181") == ([("127.0.0.1", 2181)], "")
    assert parse_hosts("a:1, b ,c:3/app/x") == ([("a", 1), ("b", 2181), ("c", 3)], "/app/x")
    assert parse_hosts("[::1]:2182,[fe80::1]") == ([("::1", 2182), ("fe80::1", 2181)], "")
    assert parse_hosts("h:1/") == ([("h", 1)], "")
    for bad in ("", ",", "h:0", "h:70000", "h:x", "a b:1", "h:1/bad/", "h:1:2"):
        with pytest.raises(UsageError):
            parse_hosts(bad)


def test_parse_auth() -> None:
    assert parse_auth("u:p:w") == ("digest", "u:p:w")
    for bad in ("u", ":p", ""):
        with pytest.raises(UsageError):
            parse_auth(bad)


def test_decode_data() -> None:
    assert decode_data(None) == (None, None)
    assert decode_data(b"") == ("", "utf-8")
    assert decode_data("héllo\n\tx\r".encode()) == ("héllo\n\tx\r", "utf-8")
    assert decode_data(b"\xff") == ("/w==", "base64")
    assert decode_data(b"a\x00b") == ("YQBi", "base64")  # valid UTF-8 but not printable text
    assert decode_data(b"\x1b[31m") == ("G1szMW0=", "base64")
    assert data_text(b"\xff") == "base64:/w==" and data_text(None) == "" and data_text(b"ok") == "ok"
    assert data_json(None) == {"data": None, "encoding": None, "length": None}
    assert data_json(b"\x00") == {"data": "AA==", "encoding": "base64", "length": 1}


def test_stat_formatting() -> None:
    st = make_stat(
        czxid=0x10,
        mzxid=0x1F,
        ctime=1_700_000_000_123,
        mtime=0,
        version=3,
        ephemeralOwner=-1,
        dataLength=5,
        numChildren=2,
        pzxid=0x20,
    )
    assert format_stat(st).splitlines() == [
        "cZxid = 0x10",
        "mZxid = 0x1f",
        "ctime = 2023-11-14T22:13:20.123Z",
        "mtime = 1970-01-01T00:00:00.000Z",
        "dataVersion = 3",
        "cversion = 0",
        "aclVersion = 0",
        "ephemeralOwner = 0xffffffffffffffff",
        "dataLength = 5",
        "numChildren = 2",
        "pZxid = 0x20",
    ]
    assert hex64(-(1 << 63)) == "0x8000000000000000"
    assert format_time_ms(1) == "1970-01-01T00:00:00.001Z"
    assert node_kind({"ephemeralOwner": 0}) == "persistent"
    assert node_kind({"ephemeralOwner": 0x100004E42B90000}) == "ephemeral"
    assert node_kind({"ephemeralOwner": -(1 << 63)}) == "container"


TREE = {"/r": ["b", "a"], "/r/a": ["x"], "/r/b": [], "/r/a/x": []}


def test_preorder_and_depth() -> None:
    assert preorder("/r", TREE) == ["/r", "/r/a", "/r/a/x", "/r/b"]
    assert preorder("/", {"/": ["z", "a"]}) == ["/", "/a", "/z"]
    assert [depth_of(p, "/r") for p in preorder("/r", TREE)] == [0, 1, 2, 1]
    assert depth_of("/a/b", "/") == 2 and depth_of("/", "/") == 0


def test_format_tree() -> None:
    assert format_tree("/r", TREE, {}) == "/r\n├── a\n│   └── x\n└── b"
    assert format_tree("/r", {"/r": ["a", "b"]}, {"/r/a": 4}) == "/r\n├── a (+4 not shown)\n└── b"
    assert format_tree("/", {}, {"/": 2}) == "/ (+2 not shown)"
    deep = {"/": ["a"], "/a": ["b", "c"], "/a/b": ["d"]}
    assert format_tree("/", deep, {}) == "/\n└── a\n    ├── b\n    │   └── d\n    └── c"
    assert tree_json("/r", {"/r": ["a"]}, {"/r/a": 1}) == {
        "name": "/r",
        "path": "/r",
        "hidden": 0,
        "children": [{"name": "a", "path": "/r/a", "children": [], "hidden": 1}],
    }


SRVR = """Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC
Latency min/avg/max: 0/1.4/5
Received: 12
Sent: 11
Connections: 2
Outstanding: 0
Zxid: 0x4
Mode: standalone
Node count: 8
"""


def test_parse_srvr() -> None:
    d = parse_srvr(SRVR)
    assert d == {
        "version": "3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC",
        "latency_min": 0,
        "latency_avg": 1.4,
        "latency_max": 5,
        "received": 12,
        "sent": 11,
        "connections": 2,
        "outstanding": 0,
        "zxid": 4,
        "mode": "standalone",
        "node_count": 8,
    }
    for bad in (
        "This ZooKeeper instance is not currently serving requests\n",
        "srvr is not executed because it is not in the whitelist.\n",
        "",
        "garbage",
    ):
        with pytest.raises(ValueError):
            parse_srvr(bad)


def test_judge_and_format_status() -> None:
    ok = judge("h:1", "imok", None, SRVR, None)
    assert ok.ok and ok.state == "serving" and ok.ruok == "imok"
    restricted = judge("h:2", "ruok is not executed because it is not in the whitelist.", None, SRVR, None)
    assert restricted.ok and restricted.ruok == "not allowed"
    down = judge("h:3", None, "connection refused", None, None)
    assert not down.ok and down.state == "down" and down.error == "connection refused"
    not_serving = "This ZooKeeper instance is not currently serving requests\n"
    no_quorum = judge("h:4", "imok", None, not_serving, None)
    assert not no_quorum.ok and no_quorum.state == "not serving"
    blocked = judge("h:5", "imok", None, "srvr is not executed because it is not in the whitelist.", None)
    assert not blocked.ok and blocked.state == "unknown" and "whitelist" in (blocked.error or "")

    text = format_status([ok, down])
    lines = text.splitlines()
    assert lines[0].split() == [
        "SERVER",
        "STATE",
        "MODE",
        "ZXID",
        "NODES",
        "LATENCY(min/avg/max",
        "ms)",
        "CONNS",
        "RUOK",
    ]
    assert lines[1].split() == ["h:1", "serving", "standalone", "0x4", "8", "0/1.4/5", "2", "imok"]
    assert lines[2].startswith("h:3") and lines[2].endswith("(connection refused)")
    assert lines[-1] == "1 of 2 server(s) not serving"
    assert format_status([ok]).splitlines()[-1] == "all 1 server(s) serving (standalone)"
    j = down.to_json()
    assert j["ok"] is False and j["mode"] is None and j["zxid_hex"] is None
    assert ok.to_json()["zxid_hex"] == "0x4"


def test_global_options_anywhere() -> None:
    parser = build_parser()
    a = parser.parse_args(["--json", "--zk", "h:1", "--timeout", "2", "zk", "ls", "/"])
    b = parser.parse_args(["zk", "ls", "/", "--json", "--zk", "h:1", "--timeout", "2"])
    c = parser.parse_args(["zk", "--zk", "h:1", "ls", "/", "--json", "--timeout", "2"])
    for ns in (a, b, c):
        assert (ns.json, ns.zk, ns.timeout, ns.path) == (True, "h:1", 2.0, "/")
    d = parser.parse_args(["zk", "ls", "/"])
    assert (d.json, d.timeout, d.auth) == (False, 5.0, None)


def test_main_usage_error_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zk", "get", "nope", "--json"]) == 2
    out, err = capsys.readouterr()
    assert err == "paasctl: nope: path must be absolute (start with /)\n"
    assert json.loads(out)["error"] == "usage"
