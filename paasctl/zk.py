"""``paasctl zk``: znode operations through kazoo, and ``status`` through four-letter words.

Every kazoo call goes through :meth:`ZkSession.wait`, which bounds the wait and turns kazoo's
exceptions into one-line :class:`CliError` messages with a stable ``kind`` and exit code.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from kazoo import exceptions as kx
from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.paths import _prefix_root
from kazoo.protocol.serialization import Create2
from kazoo.security import OPEN_ACL_UNSAFE

from paasctl import fourlw
from paasctl.common import EXIT_CONNECTION, EXIT_FAILED, EXIT_UNHEALTHY, CliError, Outcome, UsageError
from paasctl.zkformat import (
    data_json,
    data_text,
    depth_of,
    format_stat,
    format_status,
    format_tree,
    join_path,
    node_kind,
    parse_auth,
    parse_hosts,
    preorder,
    stat_dict,
    tree_json,
    validate_path,
)

DEFAULT_HOSTS = "127.0.0.1:2181"
SESSION_TIMEOUT = 10.0  # seconds; kazoo drops a silent connection after 2/3 of this
OP_TIMEOUT = SESSION_TIMEOUT + 2.0  # safety net per request, beyond kazoo's own read timeout
CLOSE_WAIT = 15.0  # bound on a clean session close (normally instant; ephemerals vanish with it)
BATCH = 512  # outstanding async requests while walking or deleting a subtree

Handler = Callable[[argparse.Namespace], Outcome]


class CreateContainer(Create2):  # type: ignore[misc]
    """createContainer (opcode 19): a CreateRequest with flags 4; kazoo 2.11 has no API for it."""

    type = 19


# ---------------------------------------------------------------------------------------------- session


@dataclass
class ZkSession:
    client: KazooClient
    hosts: str
    has_auth: bool

    def wait(self, result: Any, path: str, op: str = "") -> Any:
        """Result of a kazoo async call, or a CliError describing why there is none."""
        try:
            return result.get(timeout=OP_TIMEOUT)
        except (kx.KazooException, KazooTimeoutError) as e:
            raise self.error(e, path, op) from None

    def error(self, exc: BaseException, path: str, op: str = "") -> CliError:
        """Map a kazoo exception to the message an operator should read."""
        if isinstance(exc, kx.NoNodeError):
            if op == "create":
                return CliError(
                    f"{path}: parent node does not exist (use --parents)", kind="no_node", path=path
                )
            return CliError(f"{path}: no such node", kind="no_node", path=path)
        if isinstance(exc, kx.NodeExistsError):
            return CliError(f"{path}: node already exists", kind="node_exists", path=path)
        if isinstance(exc, kx.BadVersionError):
            return CliError(f"{path}: bad version", kind="bad_version", path=path)
        if isinstance(exc, kx.NotEmptyError):
            return CliError(f"{path}: node has children (use --recursive)", kind="not_empty", path=path)
        if isinstance(exc, kx.NoAuthError):
            hint = "" if self.has_auth else " (try --auth user:password)"
            return CliError(f"{path}: not authorized{hint}", kind="no_auth", path=path)
        if isinstance(exc, kx.AuthFailedError):
            return CliError("authentication failed (check --auth)", kind="auth_failed")
        if isinstance(exc, kx.NoChildrenForEphemeralsError):
            return CliError(
                f"{path}: parent is ephemeral and cannot have children", kind="ephemeral_parent", path=path
            )
        if isinstance(exc, kx.InvalidACLError):
            return CliError(f"{path}: invalid ACL", kind="invalid_acl", path=path)
        if isinstance(exc, kx.BadArgumentsError):
            return CliError(f"{path}: bad arguments (rejected by server)", kind="bad_arguments", path=path)
        if isinstance(exc, kx.UnimplementedError):
            return CliError(
                f"{path}: operation not supported by this server", kind="unimplemented", path=path
            )
        if isinstance(exc, KazooTimeoutError):
            return CliError(
                f"{path}: no reply from {self.hosts} within {OP_TIMEOUT:g}s",
                EXIT_CONNECTION,
                "connection",
                path=path,
            )
        if isinstance(exc, kx.SessionExpiredError):
            return CliError(
                f"{path}: session to {self.hosts} expired", EXIT_CONNECTION, "connection", path=path
            )
        if isinstance(exc, (kx.ConnectionLoss, kx.ConnectionClosedError)):
            return CliError(
                f"{path}: connection to {self.hosts} lost", EXIT_CONNECTION, "connection", path=path
            )
        name = type(exc).__name__.removesuffix("Error") or "error"
        return CliError(f"{path}: {name}: {exc}".rstrip(": "), EXIT_FAILED, "failed", path=path)

    def batch(self, items: Iterable[str], call: Callable[[str], Any]) -> Iterator[tuple[str, Any]]:
        """Pipeline ``call(path)`` over many paths, BATCH at a time; yields (path, result or exception)."""
        pending: list[tuple[str, Any]] = []

        def drain() -> Iterator[tuple[str, Any]]:
            for path, result in pending:
                try:
                    yield path, result.get(timeout=OP_TIMEOUT)
                except kx.NoNodeError as e:
                    yield path, e
                except (kx.KazooException, KazooTimeoutError) as e:
                    raise self.error(e, path) from None
            pending.clear()

        for path in items:
            pending.append((path, call(path)))
            if len(pending) >= BATCH:
                yield from drain()
        yield from drain()


def _quiet_kazoo(verbose: bool) -> None:
    """kazoo logs reconnect attempts as warnings; an operator wants one clear line, not a log."""
    log = logging.getLogger("kazoo")
    if verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s", stream=sys.stderr)
    else:
        log.addHandler(logging.NullHandler())
        log.propagate = False


@contextmanager
def open_session(args: argparse.Namespace) -> Iterator[ZkSession]:
    """Connect within ``--timeout`` seconds or fail with exit code 3; always close the session."""
    hosts: str = args.zk
    parse_hosts(hosts)  # kazoo's own parser accepts garbage and fails later with a worse message
    auth = [parse_auth(args.auth)] if args.auth else None
    _quiet_kazoo(args.verbose)
    client = KazooClient(
        hosts=hosts,
        timeout=SESSION_TIMEOUT,
        auth_data=auth,
        # Retry quickly inside the --timeout window (a server that is just starting still counts).
        connection_retry={"max_tries": -1, "delay": 0.05, "backoff": 2, "max_delay": 0.5},
    )
    connected = False
    try:
        client.start_async().wait(timeout=args.timeout)
        connected = client.connected
        if not connected:
            raise CliError(
                f"cannot connect to {hosts} within {args.timeout:g}s",
                EXIT_CONNECTION,
                "connection",
                hosts=hosts,
            )
        yield ZkSession(client, hosts, bool(auth))
    finally:
        _shutdown(client, CLOSE_WAIT if connected else 0.2)


def _shutdown(client: KazooClient, wait: float) -> None:
    """Close the session, but never wait longer than ``wait`` seconds for it.

    kazoo's stop() joins its connection thread, which may sit in a connect attempt for the whole
    session timeout; that thread is a daemon, so giving up on it cannot keep the process alive.
    """

    def stop() -> None:
        with suppress(Exception):
            client.stop()
        with suppress(Exception):
            client.close()

    t = threading.Thread(target=stop, name="paasctl-zk-close", daemon=True)
    t.start()
    t.join(wait)


def precheck(args: argparse.Namespace) -> None:
    """Argument checks argparse cannot express, done before connecting so usage errors stay exit 2."""
    validate_path(args.path, sequential=getattr(args, "sequential", False))
    if getattr(args, "container", False) and (args.ephemeral or args.sequential):
        raise UsageError("--container cannot be combined with --ephemeral or --sequential")
    if args.zk_command == "delete" and args.recursive and args.version != -1:
        raise UsageError("--version cannot be combined with --recursive")
    if args.auth:
        parse_auth(args.auth)
    parse_hosts(args.zk)


def with_session(fn: Callable[[ZkSession, argparse.Namespace], Outcome]) -> Handler:
    def run(args: argparse.Namespace) -> Outcome:
        precheck(args)
        with open_session(args) as zk:
            return fn(zk, args)

    return run


# ---------------------------------------------------------------------------------------------- helpers


def read_data(arg: str) -> bytes:
    """``-`` reads stdin as bytes; else the argument's original bytes (os.fsencode undoes argv decoding)."""
    if arg == "-":
        return sys.stdin.buffer.read()
    return os.fsencode(arg)


def walk(
    zk: ZkSession, root: str, max_depth: int | None = None
) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Children of every node under ``root`` (level by level, pipelined), down to ``max_depth``.

    Returns ``(children, hidden)``: ``hidden`` maps each node at the depth limit to its child count.
    Nodes that vanish during the walk are skipped; a missing ``root`` is an error.
    """
    client = zk.client
    children: dict[str, list[str]] = {}
    hidden: dict[str, int] = {}
    level, depth = [root], 0
    while level:
        if max_depth is not None and depth >= max_depth:
            for path, st in zk.batch(level, client.exists_async):
                if st is None or isinstance(st, Exception):
                    if path == root:
                        raise zk.error(kx.NoNodeError(), path)
                elif st.numChildren:
                    hidden[path] = st.numChildren
            break
        next_level: list[str] = []
        for path, kids in zk.batch(level, client.get_children_async):
            if isinstance(kids, Exception):
                if path == root:
                    raise zk.error(kids, path)
                continue
            children[path] = sorted(kids)
            next_level.extend(join_path(path, k) for k in children[path])
        level, depth = next_level, depth + 1
    return children, hidden


# ---------------------------------------------------------------------------------------------- commands


def cmd_ls(zk: ZkSession, args: argparse.Namespace) -> Outcome:
    path = args.path
    if args.recursive:
        children, _ = walk(zk, path)
        paths = preorder(path, children)
        return Outcome(json={"path": path, "paths": paths}, text="\n".join(paths))
    kids = sorted(zk.wait(zk.client.get_children_async(path), path))
    return Outcome(json={"path": path, "children": kids}, text="\n".join(kids) if kids else None)


def cmd_get(zk: ZkSession, args: argparse.Namespace) -> Outcome:
    path = args.path
    data, stat = zk.wait(zk.client.get_async(path), path)
    if args.raw:
        return Outcome(raw=data or b"")
    text = data_text(data)
    if args.stat:
        text += "\n" + format_stat(stat)
    return Outcome(json={"path": path, **data_json(data), "stat": stat_dict(stat)}, text=text)


def _bad_version(zk: ZkSession, path: str, expected: int) -> CliError:
    """A bad-version error that says what the version actually is (one extra read, best effort)."""
    try:
        st = zk.client.exists_async(path).get(timeout=OP_TIMEOUT)
    except Exception:
        st = None
    if st is None:
        return CliError(
            f"{path}: bad version (expected {expected})", kind="bad_version", path=path, expected=expected
        )
    return CliError(
        f"{path}: bad version (expected {expected}, node is at version {st.version})",
        kind="bad_version",
        path=path,
        expected=expected,
        actual=st.version,
    )


def cmd_set(zk: ZkSession, args: argparse.Namespace) -> Outcome:
    path = args.path
    data = read_data(args.data)
    try:
        stat = zk.wait(zk.client.set_async(path, data, args.version), path)
    except CliError as e:
        if e.kind == "bad_version":
            raise _bad_version(zk, path, args.version) from None
        raise
    return Outcome(json={"path": path, "stat": stat_dict(stat)}, text=None)


def cmd_create(zk: ZkSession, args: argparse.Namespace) -> Outcome:
    path = args.path
    data = read_data(args.data) if args.data is not None else b""
    client = zk.client
    if args.container:
        if args.parents:
            parent = path.rsplit("/", 1)[0] or "/"
            zk.wait(client.ensure_path_async(parent), parent, "create")
        result = client.handler.async_result()
        acl = client.default_acl or OPEN_ACL_UNSAFE
        client._call(CreateContainer(_prefix_root(client.chroot, path), data, acl, 4), result)
        created_raw, _stat = zk.wait(result, path, "create")
        created = client.unchroot(created_raw)
    else:
        created = zk.wait(
            client.create_async(
                path, data, ephemeral=args.ephemeral, sequence=args.sequential, makepath=args.parents
            ),
            path,
            "create",
        )
    return Outcome(json={"path": created}, text=created)


def cmd_delete(zk: ZkSession, args: argparse.Namespace) -> Outcome:
    path = args.path
    if path == "/":
        raise CliError("/: the root node cannot be deleted", kind="bad_arguments", path=path)
    if not args.recursive:
        try:
            zk.wait(zk.client.delete_async(path, args.version), path)
        except CliError as e:
            if e.kind == "bad_version":
                raise _bad_version(zk, path, args.version) from None
            raise
        return Outcome(json={"path": path, "deleted": 1}, text=None)
    children, _ = walk(zk, path)
    by_depth: dict[int, list[str]] = {}
    for p in preorder(path, children):
        by_depth.setdefault(depth_of(p, path), []).append(p)
    deleted = 0
    # Deepest level first, so every delete finds its node already empty; pipelined per level.
    for depth in sorted(by_depth, reverse=True):
        for _path, res in zk.batch(by_depth[depth], zk.client.delete_async):
            if not isinstance(res, kx.NoNodeError):  # gone already: someone else deleted it, fine
                deleted += 1
    return Outcome(json={"path": path, "deleted": deleted}, text=None)


def cmd_stat(zk: ZkSession, args: argparse.Namespace) -> Outcome:
    path = args.path
    stat = zk.wait(zk.client.exists_async(path), path)
    if stat is None:
        raise zk.error(kx.NoNodeError(), path)
    d = stat_dict(stat)
    return Outcome(json={"path": path, "kind": node_kind(d), "stat": d}, text=format_stat(stat))


def cmd_tree(zk: ZkSession, args: argparse.Namespace) -> Outcome:
    path = args.path
    children, hidden = walk(zk, path, args.depth)
    return Outcome(json=tree_json(path, children, hidden), text=format_tree(path, children, hidden))


def cmd_status(args: argparse.Namespace) -> Outcome:
    servers, _chroot = parse_hosts(args.zk)
    rows = fourlw.probe_all(servers, args.timeout)
    ok = all(r.ok for r in rows)
    return Outcome(
        json={"ok": ok, "servers": [r.to_json() for r in rows]},
        text=format_status(rows),
        code=0 if ok else EXIT_UNHEALTHY,
    )


# ---------------------------------------------------------------------------------------------- argparse


def _version(value: str) -> int:
    try:
        v = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid version {value!r} (an integer, -1 for any)") from None
    if v < -1:
        raise argparse.ArgumentTypeError(f"invalid version {value!r} (an integer, -1 for any)")
    return v


def _add_version_option(p: argparse.ArgumentParser) -> None:
    """-v/--version: the compare-and-set guard shared by set and delete."""
    p.add_argument(
        "-v",
        "--version",
        type=_version,
        default=-1,
        help="only if the node is at this data version (default -1: any)",
    )


def _depth(value: str) -> int:
    try:
        v = int(value)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"invalid depth {value!r} (a non-negative integer)")
    return v


def add_options(parser: argparse.ArgumentParser, with_defaults: bool) -> None:
    """The zk group's connection options; see paasctl.cli for why defaults are set only once."""

    def default(value: Any) -> Any:
        return value if with_defaults else argparse.SUPPRESS

    parser.add_argument(
        "--zk",
        metavar="HOSTS",
        default=default(os.environ.get("PAASCTL_ZK") or DEFAULT_HOSTS),
        help=f"ZooKeeper connect string host:port[,host:port...][/chroot] "
        f"(default: $PAASCTL_ZK or {DEFAULT_HOSTS})",
    )
    parser.add_argument(
        "--auth",
        metavar="USER:PASSWORD",
        default=default(None),
        help="authenticate with the digest scheme",
    )


def register(
    groups: Any, common: argparse.ArgumentParser, formatter: type[argparse.HelpFormatter], epilog: str
) -> None:
    """Add ``zk`` and its subcommands; ``common`` carries the global options for every leaf."""
    leaf_opts = argparse.ArgumentParser(add_help=False)
    add_options(leaf_opts, with_defaults=False)
    parents = [common, leaf_opts]
    kw: dict[str, Any] = {"parents": parents, "formatter_class": formatter, "epilog": epilog}

    zk = groups.add_parser(
        "zk",
        help="ZooKeeper znodes and server status",
        description=("Read and change znodes on any ZooKeeper (zk_py or Apache) and check server health."),
        **kw,
    )
    sub = zk.add_subparsers(dest="zk_command", metavar="COMMAND", required=True)

    p = sub.add_parser("ls", help="list children", description="List the children of a znode (sorted).", **kw)
    p.add_argument("path", metavar="PATH")
    p.add_argument("-R", "--recursive", action="store_true", help="list all descendants as full paths")
    p.set_defaults(handler=with_session(cmd_ls))

    p = sub.add_parser(
        "get",
        help="print data",
        description=(
            "Print a znode's data: as UTF-8 text when it is printable UTF-8, otherwise as base64:<...> "
            '(--json says which in "encoding").'
        ),
        **kw,
    )
    p.add_argument("path", metavar="PATH")
    p.add_argument("-s", "--stat", action="store_true", help="also print the node's stat")
    p.add_argument("--raw", action="store_true", help="write the data bytes exactly as stored, nothing else")
    p.set_defaults(handler=with_session(cmd_get))

    p = sub.add_parser("set", help="replace data", description="Replace a znode's data.", **kw)
    p.add_argument("path", metavar="PATH")
    p.add_argument("data", metavar="DATA", help="new data, or - to read it from stdin")
    _add_version_option(p)
    p.set_defaults(handler=with_session(cmd_set))

    p = sub.add_parser(
        "create",
        help="create a node",
        description=(
            "Create a znode and print its path (the real one, for --sequential). An --ephemeral node lives "
            "only as long as this command's session, i.e. it is gone when paasctl exits."
        ),
        **kw,
    )
    p.add_argument("path", metavar="PATH")
    p.add_argument("data", metavar="DATA", nargs="?", help="initial data (default empty), or - for stdin")
    p.add_argument("-e", "--ephemeral", action="store_true", help="ephemeral node")
    p.add_argument("-s", "--sequential", action="store_true", help="append a sequence number to the name")
    p.add_argument(
        "-c",
        "--container",
        action="store_true",
        help="container node (the server removes it once its last child is gone)",
    )
    p.add_argument("-p", "--parents", action="store_true", help="create missing parent nodes (empty data)")
    p.set_defaults(handler=with_session(cmd_create))

    p = sub.add_parser("delete", help="delete a node", description="Delete a znode.", **kw)
    p.add_argument("path", metavar="PATH")
    p.add_argument("-r", "-R", "--recursive", action="store_true", help="delete the node and all descendants")
    _add_version_option(p)
    p.set_defaults(handler=with_session(cmd_delete))

    p = sub.add_parser("stat", help="print node metadata", description="Print a znode's stat.", **kw)
    p.add_argument("path", metavar="PATH")
    p.set_defaults(handler=with_session(cmd_stat))

    p = sub.add_parser(
        "tree", help="print a subtree", description="Print a subtree as an indented tree.", **kw
    )
    p.add_argument("path", metavar="PATH", nargs="?", default="/")
    p.add_argument(
        "-d",
        "--depth",
        type=_depth,
        default=None,
        help="levels below PATH to show (nodes cut off show '+N not shown')",
    )
    p.set_defaults(handler=with_session(cmd_tree))

    p = sub.add_parser(
        "status",
        help="health of every server in --zk",
        description=(
            "Ask every server of --zk 'ruok' and 'srvr' (four-letter words) and show mode, zxid, node count, "
            "latency and connections. Exit status 4 if any server is down or not serving."
        ),
        **kw,
    )
    p.set_defaults(handler=cmd_status)
