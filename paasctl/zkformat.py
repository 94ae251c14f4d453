"""Pure helpers for ``paasctl zk``: argument checks, parsing of server replies and output formatting.

Nothing here touches a socket, a clock or a terminal, so all of it is unit-tested directly; the
I/O lives in ``paasctl.zk`` (kazoo) and ``paasctl.fourlw`` (raw four-letter-word sockets).
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from paasctl.common import UsageError

DEFAULT_PORT = 2181

# Field order of the jute Stat record (and of kazoo's ZnodeStat).
STAT_FIELDS = (
    "czxid",
    "mzxid",
    "ctime",
    "mtime",
    "version",
    "cversion",
    "aversion",
    "ephemeralOwner",
    "dataLength",
    "numChildren",
    "pzxid",
)
CONTAINER_OWNER = 0x8000000000000000  # ephemeralOwner ZooKeeper gives container nodes
_U64 = (1 << 64) - 1


# ---------------------------------------------------------------------------------------------- input


def _bad_char(c: str) -> bool:
    """Characters ZooKeeper's PathUtils rejects in a path (controls, surrogates, private use, specials)."""
    o = ord(c)
    return o == 0 or 0x01 <= o <= 0x1F or 0x7F <= o <= 0x9F or 0xD800 <= o <= 0xF8FF or 0xFFF0 <= o <= 0xFFFF


def validate_path(path: str, sequential: bool = False) -> str:
    """Check a znode path like the server will, so typos fail fast with a clear usage error.

    A sequential create may end in ``/`` (the server appends the counter to the parent path).
    """
    if not path:
        raise UsageError("path must not be empty")
    if not path.startswith("/"):
        raise UsageError(f"{path}: path must be absolute (start with /)")
    if path == "/":
        return path
    check = path + "1" if sequential and path.endswith("/") else path
    if check.endswith("/"):
        raise UsageError(f"{path}: path must not end with /")
    for part in check[1:].split("/"):
        if part == "":
            raise UsageError(f"{path}: empty node name (//) in path")
        if part in (".", ".."):
            raise UsageError(f"{path}: relative node name '{part}' in path")
    bad = [c for c in check if _bad_char(c)]
    if bad:
        raise UsageError(f"{path}: invalid character {bad[0]!r} in path")
    return path


def parse_hosts(hosts: str) -> tuple[list[tuple[str, int]], str]:
    """Split a kazoo/ZooKeeper connect string ``h1:p1,h2:p2/chroot`` into servers and chroot.

    Accepts bracketed IPv6 (``[::1]:2181``) and a missing port (2181).
    """
    spec = hosts.strip()
    chroot = ""
    slash = spec.find("/")
    if slash >= 0:
        spec, chroot = spec[:slash], spec[slash:]
        if chroot == "/":
            chroot = ""
        elif chroot:
            validate_path(chroot)
    servers: list[tuple[str, int]] = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?|([^:\[\]\s]+)(?::(\d+))?", item)
        if not m:
            raise UsageError(f"invalid ZooKeeper address {item!r} (expected host:port)")
        host = m.group(1) or m.group(3)
        port_s = m.group(2) or m.group(4)
        port = int(port_s) if port_s else DEFAULT_PORT
        if not 0 < port < 65536:
            raise UsageError(f"invalid port in ZooKeeper address {item!r}")
        servers.append((host, port))
    if not servers:
        raise UsageError(f"no ZooKeeper servers in {hosts!r}")
    return servers, chroot


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_auth(auth: str) -> tuple[str, str]:
    """``user:password`` for the digest scheme; the password may itself contain ``:``."""
    user, sep, _password = auth.partition(":")
    if not sep or not user:
        raise UsageError("--auth must be user:password")
    return ("digest", auth)


def join_path(parent: str, child: str) -> str:
    return ("" if parent == "/" else parent) + "/" + child


def depth_of(path: str, root: str) -> int:
    """How many levels ``path`` is below ``root`` (0 for the root itself)."""
    if path == root:
        return 0
    rest = path[len(root) :] if root != "/" else path
    return rest.count("/")


# ---------------------------------------------------------------------------------------------- data


def _is_printable_text(text: str) -> bool:
    """Text a terminal shows faithfully: no control characters other than newline, CR and tab."""
    return not any(unicodedata.category(c) == "Cc" and c not in "\n\r\t" for c in text)


def decode_data(data: bytes | None) -> tuple[str | None, str | None]:
    """Return ``(shown, encoding)``: UTF-8 text when the bytes are printable UTF-8, else base64.

    ``(None, None)`` for a node whose data is null (as opposed to empty).
    """
    if data is None:
        return None, None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and _is_printable_text(text):
        return text, "utf-8"
    return base64.b64encode(data).decode("ascii"), "base64"


def data_json(data: bytes | None) -> dict[str, Any]:
    shown, encoding = decode_data(data)
    return {"data": shown, "encoding": encoding, "length": None if data is None else len(data)}


def data_text(data: bytes | None) -> str:
    """One printable form: the text itself, or ``base64:<...>`` for binary data."""
    shown, encoding = decode_data(data)
    if shown is None:
        return ""
    return shown if encoding == "utf-8" else f"base64:{shown}"


# ---------------------------------------------------------------------------------------------- stat


def stat_dict(stat: Any) -> dict[str, int]:
    """A kazoo ZnodeStat (or anything with the jute Stat fields) as a plain dict, jute field names."""
    return {name: int(getattr(stat, name)) for name in STAT_FIELDS}


def hex64(value: int) -> str:
    """Zxids and session ids the way ZooKeeper prints them: unsigned 64-bit hex."""
    return f"0x{value & _U64:x}"


def format_time_ms(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC, millisecond precision (stable across hosts and locales)."""
    dt = datetime.fromtimestamp(ms / 1000.0, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def node_kind(stat: Mapping[str, int]) -> str:
    """persistent or ephemeral from the owner; Apache reports owner 0 for containers and TTL nodes
    (DataTree.getClientEphemeralOwner), so those two show up only if a server exposes the marker."""
    owner = stat["ephemeralOwner"] & _U64
    if owner == 0:
        return "persistent"
    if owner == CONTAINER_OWNER:
        return "container"
    if owner >> 56 == 0xFF:
        return "ttl"
    return "ephemeral"


def format_stat(stat: Any) -> str:
    """zkCli-style ``name = value`` lines (zxids in hex, times in UTC)."""
    d = stat_dict(stat)
    lines = []
    for name in STAT_FIELDS:
        v = d[name]
        if name in ("czxid", "mzxid", "pzxid", "ephemeralOwner"):
            shown = hex64(v)
        elif name in ("ctime", "mtime"):
            shown = format_time_ms(v)
        else:
            shown = str(v)
        label = {
            "version": "dataVersion",
            "aversion": "aclVersion",
            "czxid": "cZxid",
            "mzxid": "mZxid",
            "pzxid": "pZxid",
        }.get(name, name)
        lines.append(f"{label} = {shown}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- trees


def preorder(root: str, children: Mapping[str, Sequence[str]]) -> list[str]:
    """Full paths of ``root`` and every listed descendant, parents before children, siblings sorted."""
    out: list[str] = []
    stack = [root]
    while stack:
        path = stack.pop()
        out.append(path)
        kids = sorted(children.get(path, ()))
        stack.extend(join_path(path, k) for k in reversed(kids))
    return out


def _hidden_note(n: int) -> str:
    return f" (+{n} not shown)" if n else ""


def format_tree(root: str, children: Mapping[str, Sequence[str]], hidden: Mapping[str, int]) -> str:
    """An indented tree with box-drawing branches; ``hidden`` maps cut-off nodes to their child count."""
    lines = [root + _hidden_note(hidden.get(root, 0))]

    def entries(path: str, prefix: str) -> list[tuple[str, str, str, bool]]:
        kids = sorted(children.get(path, ()))
        return [(join_path(path, k), k, prefix, i == len(kids) - 1) for i, k in enumerate(kids)]

    stack = entries(root, "")[::-1]
    while stack:
        path, name, prefix, last = stack.pop()
        lines.append(f"{prefix}{'└── ' if last else '├── '}{name}{_hidden_note(hidden.get(path, 0))}")
        stack.extend(entries(path, prefix + ("    " if last else "│   "))[::-1])
    return "\n".join(lines)


def tree_json(root: str, children: Mapping[str, Sequence[str]], hidden: Mapping[str, int]) -> dict[str, Any]:
    """Nested ``{"name", "path", "children", "hidden"}``; ``hidden`` counts children beyond --depth."""

    def node(path: str) -> dict[str, Any]:
        name = path if path == root else path.rsplit("/", 1)[1]
        return {
            "name": name,
            "path": path,
            "children": [node(join_path(path, k)) for k in sorted(children.get(path, ()))],
            "hidden": hidden.get(path, 0),
        }

    return node(root)


# ---------------------------------------------------------------------------------------------- status

NOT_SERVING = "This ZooKeeper instance is not currently serving requests"


def not_whitelisted(reply: str) -> bool:
    return "is not executed because it is not in the whitelist" in reply


def parse_srvr(text: str) -> dict[str, Any]:
    """Parse a ``srvr`` (or ``stat``) reply into typed fields; unknown lines are ignored.

    Raises ValueError when the reply is not a srvr report (not serving, not whitelisted, garbage).
    """
    if NOT_SERVING in text:
        raise ValueError("not serving requests")
    if not_whitelisted(text):
        raise ValueError("srvr is not in 4lw.commands.whitelist")
    out: dict[str, Any] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "Zookeeper version":
            out["version"] = value
        elif key == "Latency min/avg/max":
            parts = value.split("/")
            if len(parts) == 3:
                out["latency_min"], out["latency_avg"], out["latency_max"] = (
                    _num(parts[0]),
                    _num(parts[1]),
                    _num(parts[2]),
                )
        elif key in ("Received", "Sent", "Connections", "Outstanding", "Node count"):
            out[key.lower().replace(" ", "_")] = int(value)
        elif key == "Zxid":
            out["zxid"] = int(value, 16) if value.lower().startswith("0x") else int(value)
        elif key == "Mode":
            out["mode"] = value
    if "mode" not in out:
        raise ValueError("unrecognised srvr reply: " + (text.strip().splitlines() or ["(empty)"])[0][:80])
    return out


def _num(s: str) -> int | float:
    s = s.strip()
    return float(s) if "." in s else int(s)


@dataclass
class ServerStatus:
    """What ``status`` learnt about one server; ``ok`` means reachable and serving."""

    address: str
    ok: bool = False
    state: str = "down"  # serving | not serving | down | unknown
    ruok: str | None = None  # imok | not allowed | <other reply> | None (no answer)
    error: str | None = None
    srvr: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "server": self.address,
            "ok": self.ok,
            "state": self.state,
            "ruok": self.ruok,
            "error": self.error,
        }
        for key in (
            "mode",
            "zxid",
            "node_count",
            "latency_min",
            "latency_avg",
            "latency_max",
            "connections",
            "outstanding",
            "received",
            "sent",
            "version",
        ):
            d[key] = self.srvr.get(key)
        d["zxid_hex"] = hex64(d["zxid"]) if d["zxid"] is not None else None
        return d


def judge(
    address: str,
    ruok_reply: str | None,
    ruok_error: str | None,
    srvr_reply: str | None,
    srvr_error: str | None,
) -> ServerStatus:
    """Combine the ``ruok`` and ``srvr`` answers (or socket errors) of one server into a verdict."""
    st = ServerStatus(address)
    if ruok_reply is not None:
        r = ruok_reply.strip()
        st.ruok = "not allowed" if not_whitelisted(r) else r
    if srvr_reply is None:
        # No srvr answer at all: the socket failed, so the server is down (or a firewall says so).
        st.state, st.error = "down", srvr_error or ruok_error or "no reply"
        return st
    try:
        st.srvr = parse_srvr(srvr_reply)
    except ValueError as e:
        st.error = str(e)
        st.state = "not serving" if NOT_SERVING in srvr_reply else "unknown"
        return st
    if st.ruok not in ("imok", "not allowed"):
        st.state = "not serving"
        st.error = f"ruok answered {st.ruok!r}" if st.ruok is not None else f"ruok failed: {ruok_error}"
        return st
    st.state, st.ok = "serving", True
    return st


def format_status(rows: Iterable[ServerStatus]) -> str:
    """A fixed-column table plus a one-line summary; ``-`` where a value is unknown."""
    rows = list(rows)
    header = ("SERVER", "STATE", "MODE", "ZXID", "NODES", "LATENCY(min/avg/max ms)", "CONNS", "RUOK")
    table: list[tuple[str, ...]] = [header]
    for r in rows:
        s = r.srvr
        latency = f"{s['latency_min']}/{s['latency_avg']}/{s['latency_max']}" if "latency_avg" in s else "-"
        table.append(
            (
                r.address,
                r.state,
                str(s.get("mode", "-")),
                hex64(s["zxid"]) if "zxid" in s else "-",
                str(s.get("node_count", "-")),
                latency,
                str(s.get("connections", "-")),
                r.ruok or "-",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = []
    for i, row in enumerate(table):
        line = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        if i > 0 and rows[i - 1].error:
            line += f"  ({rows[i - 1].error})"
        lines.append(line)
    bad = [r for r in rows if not r.ok]
    modes = sorted({str(r.srvr.get("mode")) for r in rows if r.ok})
    if bad:
        lines.append(f"{len(bad)} of {len(rows)} server(s) not serving")
    else:
        lines.append(f"all {len(rows)} server(s) serving ({', '.join(modes)})")
    return "\n".join(lines)
