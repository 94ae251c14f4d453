"""Marathon's state in ZooKeeper: layout, payloads and version pruning, as pure code (reference §8).

Marathon 1.4+ keeps its state under ``<zk>/state`` (``ZkPersistenceStore.scala``); we keep its paths and
bucketing but store JSON instead of protobuf. With ``--zk zk://hosts/marathon`` the layout is::

    /marathon/state                               J{"layout": 1}
    /marathon/state/apps/<b>/<app key>            (empty) one child per stored version of the app
    /marathon/state/apps/<b>/<app key>/<version>  the app definition (normalized app JSON, §4.1)
    /marathon/state/group/<b>/root                J{"version": <current root version>}
    /marathon/state/group/<b>/root/<version>      the root group, apps replaced by {"id", "version"} refs
    /marathon/state/deployment/<b>/<id>           a deployment plan (the caller's JSON)
    /marathon/state/instance/<b>/<id>             an instance (the caller's JSON)
    /marathon/state/taskFailure/<b>/<app key>     the last task failure of an app (the caller's JSON)
    /marathon/state/framework-id                  J{"value": <framework id>} (Mesos' FrameworkID JSON)

``<b>`` is Marathon's bucket ``abs(id.hashCode % 16)`` in hex, with Java's ``String.hashCode`` (stable,
so every instance and a real Marathon agree), which keeps 10,000 apps in 16 child lists of ~625.
``<app key>`` is the app's path id with its segments joined by ``_`` (Marathon's storage id; ``_`` cannot
occur in a path segment). Versions are the ISO-8601 timestamps of ``version`` (§1.4); they are znode
names, compared as times.

Every payload is one header byte and JSON: ``J`` + UTF-8 JSON, or ``Z`` + zlib(JSON) when the JSON is
longer than ``--zk_compression_threshold`` (64 KiB) and ``--zk_compression`` is on. A payload larger than
``--zk_max_node_size`` (Marathon's default 1,024,000 bytes, below ZooKeeper's 1 MiB jute.maxbuffer) is
refused before anything is written (the 422 of §10's Allegro report).

Pruning (Marathon's ``GcActor``): the newest ``--zk_max_versions`` (50) root versions are kept, never the
current one dropped; an app version stays while some kept root version references it, so no kept root can
point at a missing app version, an app keeps at most 50 versions, and an app deleted from the tree
disappears with the last root that held it.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Group = dict[str, Any]
App = dict[str, Any]
AppVersion = tuple[str, str]  # (app id, version)

LAYOUT = 1
BUCKETS = 16
PLAIN, COMPRESSED = b"J", b"Z"
BUCKETED = ("apps", "deployment", "instance", "taskFailure")
ROOT_ID = "root"


class StoreError(Exception):
    """A write was refused or failed; nothing of it is stored (callers crash and let a new leader load)."""


class NodeTooLarge(StoreError):
    """A payload above ``--zk_max_node_size``."""


class CorruptNode(StoreError):
    """A znode whose payload this layout cannot read."""


class NotLeader(StoreError):
    """The leadership fence failed: this instance is no longer the leader and must not write."""


class StoreConflict(StoreError):
    """Someone else changed the current root group under us (another writer)."""


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Marathon's storage flags (``--zk_*``)."""

    max_versions: int = 50
    compression: bool = True
    compression_threshold: int = 64 * 1024
    max_node_size: int = 1_024_000


def java_hash(text: str) -> int:
    """Java's ``String.hashCode`` (signed 32 bits over UTF-16 code units)."""
    h = 0
    units = text.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i : i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def bucket(key: str) -> str:
    """``abs(key.hashCode % 16)`` in hex; Java's ``%`` keeps the dividend's sign, so this is |h| mod 16."""
    return format(abs(java_hash(key)) % BUCKETS, "x")


def app_key(app_id: str) -> str:
    """``/prod/web`` → ``prod_web``."""
    segments = [s for s in app_id.split("/") if s]
    if not segments:
        raise ValueError(f"not an app id: {app_id!r}")
    return "_".join(segments)


def app_id_of(key: str) -> str:
    return "/" + key.replace("_", "/")


def check_name(name: str, what: str) -> str:
    """Opaque ids (deployment, instance, version) become znode names: refuse what ZooKeeper would."""
    if not name or name in (".", "..") or "/" in name or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise ValueError(f"{what} {name!r} cannot be a znode name")
    return name


@dataclass(frozen=True, slots=True)
class Layout:
    """The znode paths under ``<zk path>/state``."""

    zk_path: str  # the --zk URL's path, e.g. /marathon

    @property
    def namespace(self) -> str:
        return f"{self.zk_path.rstrip('/')}/state"

    def category(self, name: str) -> str:
        return f"{self.namespace}/{name}"

    def bucket_dirs(self) -> list[str]:
        """Every bucket directory that must exist before ids are created in it."""
        dirs = [f"{self.category(c)}/{format(b, 'x')}" for c in BUCKETED for b in range(BUCKETS)]
        return [*dirs, f"{self.category('group')}/{bucket(ROOT_ID)}"]

    def node(self, category: str, name: str) -> str:
        return f"{self.category(category)}/{bucket(name)}/{name}"

    def app(self, app_id: str) -> str:
        return self.node("apps", app_key(app_id))

    def app_version(self, app_id: str, version: str) -> str:
        return f"{self.app(app_id)}/{check_name(version, 'version')}"

    @property
    def root(self) -> str:
        return self.node("group", ROOT_ID)

    def root_version(self, version: str) -> str:
        return f"{self.root}/{check_name(version, 'version')}"

    def task_failure(self, app_id: str) -> str:
        return self.node("taskFailure", app_key(app_id))

    @property
    def framework_id(self) -> str:
        return self.category("framework-id")


def encode(doc: Any, what: str, config: StoreConfig) -> bytes:
    """Header byte + JSON (zlib above the threshold); NodeTooLarge above ``max_node_size``."""
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    if config.compression and len(text) > config.compression_threshold:
        data = COMPRESSED + zlib.compress(text)
    else:
        data = PLAIN + text
    if len(data) > config.max_node_size:
        raise NodeTooLarge(
            f"{what}: {len(data)} bytes would exceed the maximum ZK node size ({config.max_node_size} bytes)"
        )
    return data


def decode(data: bytes, where: str = "node") -> Any:
    try:
        if data[:1] == PLAIN:
            return json.loads(data[1:])
        if data[:1] == COMPRESSED:
            return json.loads(zlib.decompress(data[1:]))
    except (ValueError, zlib.error) as exc:
        raise CorruptNode(f"{where}: unreadable payload ({exc})") from exc
    raise CorruptNode(f"{where}: unknown payload header {data[:1]!r}")


def version_key(version: str) -> tuple[datetime, str]:
    """Versions sort as times (``…:51Z`` before ``…:51.164Z``); unparsable names sort first."""
    try:
        when = datetime.fromisoformat(version.replace("Z", "+00:00"))
    except ValueError:
        when = datetime.min
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when, version


def newest_first(versions: Iterable[str]) -> list[str]:
    return sorted(versions, key=version_key, reverse=True)


def split_root(root: Group) -> tuple[Group, dict[str, App]]:
    """The stored form of a root group (apps → ``{"id", "version"}`` refs) and its apps by id."""
    apps: dict[str, App] = {}

    def strip(group: Group) -> Group:
        refs = []
        for app in group["apps"]:
            if "version" not in app:
                raise ValueError(f"app {app['id']} has no version")
            apps[app["id"]] = app
            refs.append({"id": app["id"], "version": app["version"]})
        return {**group, "apps": refs, "groups": [strip(g) for g in group["groups"]]}

    if "version" not in root:
        raise ValueError("the root group has no version")
    return strip(root), apps


def join_root(stored: Group, app_of: Callable[[str, str], App | None]) -> Group:
    """The root group with its refs resolved; CorruptNode when a ref points at a missing app version."""

    def fill(group: Group) -> Group:
        apps = []
        for ref in group["apps"]:
            app = app_of(ref["id"], ref["version"])
            if app is None:
                raise CorruptNode(
                    f"root {stored.get('version')} references missing app {ref['id']} {ref['version']}"
                )
            apps.append(app)
        return {**group, "apps": apps, "groups": [fill(g) for g in group["groups"]]}

    return fill(stored)


def root_refs(stored: Group) -> dict[str, str]:
    """App id → version referenced by a stored root."""
    refs: dict[str, str] = {}

    def walk(group: Group) -> None:
        refs.update((ref["id"], ref["version"]) for ref in group["apps"])
        for child in group["groups"]:
            walk(child)

    walk(stored)
    return refs


@dataclass(slots=True)
class References:
    """How many stored root versions reference each app version."""

    count: Counter[AppVersion] = field(default_factory=Counter)

    def add(self, refs: Mapping[str, str]) -> None:
        self.count.update(refs.items())

    def remove(self, refs: Mapping[str, str]) -> list[AppVersion]:
        """Forget one root's refs; the app versions no root references any more."""
        self.count.subtract(refs.items())
        released = [key for key in refs.items() if self.count[key] <= 0]
        for key in released:
            del self.count[key]
        return released

    def would_release(self, dropped: Iterable[Mapping[str, str]]) -> set[AppVersion]:
        lost: Counter[AppVersion] = Counter()
        for refs in dropped:
            lost.update(refs.items())
        return {key for key, n in lost.items() if self.count[key] <= n}


@dataclass(frozen=True, slots=True)
class Prune:
    """What one pruning pass deletes, in deletion order (versions before their app node)."""

    roots: list[str]
    app_versions: list[AppVersion]
    app_nodes: list[str]


def roots_to_drop(versions: Collection[str], current: str | None, max_versions: int) -> list[str]:
    """The root versions beyond the newest ``max_versions``, oldest first, never the current one."""
    keep = max(max_versions, 1)
    return [v for v in newest_first(versions)[keep:] if v != current][::-1]


def plan_prune(
    root_versions: Collection[str],
    current: str | None,
    config: StoreConfig,
    refs_of: Callable[[str], Mapping[str, str]],
    references: References,
    app_versions: Mapping[str, Collection[str]],
    orphans: Collection[AppVersion] = (),
) -> Prune:
    """Drop old roots and every app version only they referenced (plus known ``orphans``)."""
    roots = roots_to_drop(root_versions, current, config.max_versions)
    dead = references.would_release(refs_of(v) for v in roots) | set(orphans)
    doomed = sorted(dead, key=lambda key: (key[0], version_key(key[1])))
    gone: Counter[str] = Counter(app for app, _ in doomed)
    nodes = [app for app, n in sorted(gone.items()) if n >= len(app_versions.get(app, ()))]
    return Prune(roots, doomed, nodes)
