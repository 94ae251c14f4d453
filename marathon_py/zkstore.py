"""Marathon's repository over ZooKeeper: reads from memory, writes to ZooKeeper first (reference §8).

The layout, payloads and pruning rules are ``store``'s. ``load()`` reads everything once (the new leader's
``on_elected_prepare``); afterwards reads never touch ZooKeeper, and a write changes the cache only after
ZooKeeper accepted it, so memory never shows what a crash could lose.

Writes use kazoo's asynchronous calls from the event loop (no thread per write): requests go out on the
one session in call order and ZooKeeper applies them in that order, so concurrent writes of one key land
as called. Every write is a ``multi`` that starts with ``check(<fence>)`` when a fence is set: the
leader's own election znode (``election.LeaderElection.node``). A deposed leader's znode is gone (session
expired, abdicated or deleted), so its writes fail as a whole with ``NotLeader`` instead of clobbering
the new leader's state. A root save is one ``multi`` holding the new app versions, the root version and
the ``root`` pointer, the pointer set with its expected znode version, so a second writer gets
``StoreConflict`` and no root can point at an app version that was not stored. Pruning runs afterwards
as its own ``multi``; if it fails it is retried with the next save. A failed or timed-out write raises
``StoreError``; Marathon's answer, and the caller's, is to crash and let the next leader reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NoNodeError, RolledBackError, RuntimeInconsistency

from marathon_py.store import (
    LAYOUT,
    App,
    AppVersion,
    CorruptNode,
    Group,
    Layout,
    NotLeader,
    References,
    StoreConfig,
    StoreConflict,
    StoreError,
    app_id_of,
    check_name,
    decode,
    encode,
    join_root,
    newest_first,
    plan_prune,
    root_refs,
    split_root,
)

log = logging.getLogger(__name__)
OP_TIMEOUT = 10.0  # Marathon's --zk_timeout
MULTI_BYTES = 512 * 1024  # payload of one batched multi (ZooKeeper's jute.maxbuffer is 1 MiB a request)
MULTI_OPS = 1000
_NAMED = {"deployment": "deployment id", "instance": "instance id"}  # keys that become znode names


async def zk_call(result: Any, timeout: float = OP_TIMEOUT) -> Any:
    """Await a kazoo ``IAsyncResult`` (its callback runs on kazoo's thread)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(fut: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
        if fut.done():
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(value)

    def done(res: Any) -> None:
        try:
            value, error = res.get_nowait(), None
        except Exception as exc:
            value, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(settle, future, value, error)

    result.rawlink(done)
    try:
        return await asyncio.wait_for(future, timeout)
    except TimeoutError as exc:
        raise StoreError(f"ZooKeeper did not answer within {timeout:g} s") from exc


async def connect(hosts: str, session_timeout: float = 10.0) -> KazooClient:
    """A started kazoo client (``--zk_session_timeout`` 10 s, as Marathon)."""
    client = KazooClient(hosts=hosts, timeout=session_timeout)
    await asyncio.to_thread(client.start, session_timeout)
    return client


class ZkStore:
    """The leader's state: apps, root group versions, deployments, instances, task failures, framework id."""

    def __init__(
        self,
        client: KazooClient,
        zk_path: str,
        config: StoreConfig | None = None,
        op_timeout: float = OP_TIMEOUT,
    ) -> None:
        self.client = client
        self.layout = Layout(zk_path)
        self.config = config or StoreConfig()
        self.op_timeout = op_timeout
        self.fence: str | None = None  # path of the leader's election znode; every write checks it exists
        self._root_lock = asyncio.Lock()
        self._reset()

    def _reset(self) -> None:
        self._present: set[str] = set()  # znodes that exist once the writes sent so far land
        self._docs: dict[str, dict[str, Any]] = {"deployment": {}, "instance": {}, "taskFailure": {}}
        self._apps: dict[str, dict[str, bytes]] = {}  # app id → version → payload
        self._roots: dict[str, bytes] = {}  # root version → payload (stored form)
        self._root: Group | None = None
        self._current_apps: dict[str, App] = {}
        self._pointer_version = -1  # znode version of the root pointer (it exists once loaded)
        self._loaded = False
        self._refs = References()
        self._orphans: set[AppVersion] = set()
        self._framework_id: str | None = None

    # ------------------------------------------------------------------ loading

    async def load(self) -> None:
        """Read the whole state into memory (a new leader, before it acts)."""
        await asyncio.wait_for(asyncio.to_thread(self._ensure_layout), self.op_timeout * 3)
        self._reset()
        fid = await self._read(self.layout.framework_id)
        self._framework_id = None if fid is None else decode(fid, self.layout.framework_id)["value"]
        for category in self._docs:
            for name, data in (await self._read_bucketed(category)).items():
                key = app_id_of(name) if category == "taskFailure" else name
                self._docs[category][key] = decode(data, f"{category}/{name}")
        app_ids = [app_id_of(key) for key in await self._read_bucketed("apps", data=False)]
        for app_id, versions in zip(
            app_ids, await self._read_dirs([self.layout.app(a) for a in app_ids]), strict=True
        ):
            self._apps[app_id] = versions
            self._present.update(self.layout.app_version(app_id, v) for v in versions)
        self._roots = (await self._read_dirs([self.layout.root]))[0]
        self._present.update(self.layout.root_version(v) for v in self._roots)
        for version, data in self._roots.items():
            self._refs.add(root_refs(decode(data, f"root {version}")))
        stored = {(a, v) for a, versions in self._apps.items() for v in versions}
        self._orphans = {key for key in stored if self._refs.count[key] <= 0}
        pointer, stat = await zk_call(self.client.get_async(self.layout.root), self.op_timeout)
        self._pointer_version = stat.version
        self._present.add(self.layout.root)
        self._loaded = True
        if pointer:
            current = decode(pointer, self.layout.root)["version"]
            if current not in self._roots:
                raise CorruptNode(f"the current root version {current} is not stored")
            root = join_root(decode(self._roots[current]), self._stored_app)
            self._set_current(root, split_root(root)[1])

    def _ensure_layout(self) -> None:
        """Create the namespace and bucket directories; refuse a layout newer than ours (blocking)."""
        ns = self.layout.namespace
        self.client.ensure_path(ns)
        data, _ = self.client.get(ns)
        if not data:
            self.client.set(ns, encode({"layout": LAYOUT}, ns, self.config))
        elif decode(data, ns).get("layout", 0) > LAYOUT:
            raise StoreError(
                f"{ns} holds a newer storage layout ({decode(data, ns)}) than this Marathon knows"
            )
        for path in [*self.layout.bucket_dirs(), self.layout.root]:
            self.client.ensure_path(path)

    async def _read(self, path: str) -> bytes | None:
        try:
            data, _ = await zk_call(self.client.get_async(path), self.op_timeout)
        except NoNodeError:
            return None
        return bytes(data)

    async def _read_dirs(self, paths: list[str], data: bool = True) -> list[dict[str, bytes]]:
        """Children of each path (with their data, or b""), all requests in flight at once."""
        listings = await asyncio.gather(
            *(zk_call(self.client.get_children_async(p), self.op_timeout) for p in paths)
        )
        if not data:
            return [dict.fromkeys(names, b"") for names in listings]
        wanted = [f"{p}/{name}" for p, names in zip(paths, listings, strict=True) for name in names]
        blobs = iter(await asyncio.gather(*(self._read(path) for path in wanted)))
        found = [{name: next(blobs) for name in names} for names in listings]
        return [{name: blob for name, blob in part.items() if blob is not None} for part in found]

    async def _read_bucketed(self, category: str, data: bool = True) -> dict[str, bytes]:
        dirs = [d for d in self.layout.bucket_dirs() if d.startswith(self.layout.category(category) + "/")]
        found = {name: blob for part in await self._read_dirs(dirs, data) for name, blob in part.items()}
        self._present.update(self.layout.node(category, name) for name in found)
        return found

    # ------------------------------------------------------------------ reads (memory only)

    def root(self, version: str | None = None) -> Group | None:
        """The current root group (or a stored version of it), apps inline; callers must not mutate it."""
        if version is None or (self._root is not None and version == self._root.get("version")):
            return self._root
        data = self._roots.get(version)
        return None if data is None else join_root(decode(data, f"root {version}"), self._stored_app)

    def root_versions(self) -> list[str]:
        """Stored root versions, newest first."""
        return newest_first(self._roots)

    def app(self, app_id: str, version: str | None = None) -> App | None:
        """The app in the current root, or a stored version of it (also of an app since deleted)."""
        current = self._current_apps.get(app_id)
        if version is None or (current is not None and current.get("version") == version):
            return current
        return self._stored_app(app_id, version)

    def app_versions(self, app_id: str) -> list[str]:
        """Stored versions of an app, newest first."""
        return newest_first(self._apps.get(app_id, {}))

    def _stored_app(self, app_id: str, version: str) -> App | None:
        data = self._apps.get(app_id, {}).get(version)
        return None if data is None else dict(decode(data, f"app {app_id} {version}"))

    def deployments(self) -> Mapping[str, Any]:
        return MappingProxyType(self._docs["deployment"])

    def instances(self) -> Mapping[str, Any]:
        return MappingProxyType(self._docs["instance"])

    def task_failure(self, app_id: str) -> Any | None:
        return self._docs["taskFailure"].get(app_id)

    def task_failures(self) -> Mapping[str, Any]:
        return MappingProxyType(self._docs["taskFailure"])

    def framework_id(self) -> str | None:
        return self._framework_id

    def _set_current(self, root: Group, apps: dict[str, App]) -> None:
        self._root = root
        self._current_apps = apps

    # ------------------------------------------------------------------ writes (ZooKeeper first)

    async def save_root(self, root: Group, apps_changed: Iterable[str] = ()) -> None:
        """Store ``root`` as the current root: app versions not stored yet (and ``apps_changed``), the root
        version and the pointer in one ``multi``; then prune old versions."""
        async with self._root_lock:
            stored, apps = split_root(root)
            version = str(root["version"])
            force = set(apps_changed)
            ops: list[tuple[str, str, bytes]] = []  # (op, path, data)
            new_apps: list[tuple[str, str, bytes]] = []
            for app_id, app in apps.items():
                if app["version"] in self._apps.get(app_id, {}) and app_id not in force:
                    continue
                data = encode(app, f"app {app_id}", self.config)
                if self.layout.app(app_id) not in self._present:
                    ops.append(("create", self.layout.app(app_id), b""))
                ops.append(self._upsert(self.layout.app_version(app_id, app["version"]), data))
                new_apps.append((app_id, app["version"], data))
            root_data = encode(stored, f"root group {version}", self.config)
            ops.append(self._upsert(self.layout.root_version(version), root_data))
            pointer = encode({"version": version}, self.layout.root, self.config)
            ops.append(("set", self.layout.root, pointer))
            await self._commit(ops, expect=self._pointer_version)
            self._pointer_version += 1
            self._present.update(path for _, path, _ in ops)
            for app_id, app_version, data in new_apps:
                self._apps.setdefault(app_id, {})[app_version] = data
            if version in self._roots:  # the same version saved again: its old refs no longer count
                released = self._refs.remove(root_refs(decode(self._roots[version])))
                self._orphans.update(released)
            self._roots[version] = root_data
            self._refs.add(root_refs(stored))
            self._orphans.difference_update(root_refs(stored).items())
            self._set_current(root, apps)
            await self._prune()

    async def _prune(self) -> None:
        dropped: dict[str, dict[str, str]] = {}  # refs of the roots the plan drops, decoded once

        def refs_of(version: str) -> dict[str, str]:
            dropped[version] = root_refs(decode(self._roots[version]))
            return dropped[version]

        current = None if self._root is None else self._root.get("version")
        plan = plan_prune(self._roots, current, self.config, refs_of, self._refs, self._apps, self._orphans)
        if not plan.roots and not plan.app_versions:
            return
        ops = [("delete", self.layout.root_version(v), b"") for v in plan.roots]
        ops += [("delete", self.layout.app_version(a, v), b"") for a, v in plan.app_versions]
        ops += [("delete", self.layout.app(a), b"") for a in plan.app_nodes]
        try:
            await self._commit(ops)
        except StoreError as exc:
            log.warning("pruning old versions failed (retried with the next save): %s", exc)
            return
        self._present.difference_update(path for _, path, _ in ops)
        for v, refs in dropped.items():
            del self._roots[v]
            self._refs.remove(refs)
        for app_id, app_version in plan.app_versions:
            self._apps.get(app_id, {}).pop(app_version, None)
            self._orphans.discard((app_id, app_version))
        for app_id in plan.app_nodes:
            self._apps.pop(app_id, None)

    async def save_deployment(self, deployment_id: str, doc: Any) -> None:
        await self._put("deployment", check_name(deployment_id, "deployment id"), doc)

    async def delete_deployment(self, deployment_id: str) -> None:
        await self._delete("deployment", deployment_id)

    async def save_instance(self, instance_id: str, doc: Any) -> None:
        await self._put("instance", check_name(instance_id, "instance id"), doc)

    async def delete_instance(self, instance_id: str) -> None:
        await self._delete("instance", instance_id)

    async def save_task_failure(self, app_id: str, doc: Any) -> None:
        await self._put("taskFailure", app_id, doc)

    async def delete_task_failure(self, app_id: str) -> None:
        await self._delete("taskFailure", app_id)

    async def write_docs(self, changes: Sequence[tuple[str, str, Any]]) -> None:
        """Saves (a doc) and deletes (None) of deployments, instances and task failures, keys distinct, in
        as few ``multi``s as ``MULTI_BYTES`` allows: a thousand status updates are a few requests, not a
        thousand (each costs kazoo's thread a turn at the GIL, which the busy event loop holds)."""
        ops: list[tuple[str, str, bytes]] = []
        for category, key, doc in changes:
            path = self._path(category, key)
            if doc is not None:
                if category in _NAMED:
                    check_name(key, _NAMED[category])
                ops.append(self._upsert(path, encode(doc, f"{category} {key}", self.config)))
                self._present.add(path)
            elif path in self._present:
                ops.append(("delete", path, b""))
                self._present.discard(path)
        chunk: list[tuple[str, str, bytes]] = []
        size = 0
        for op in ops:
            if chunk and (size + len(op[2]) + len(op[1]) > MULTI_BYTES or len(chunk) >= MULTI_OPS):
                await self._commit(chunk)
                chunk, size = [], 0
            chunk.append(op)
            size += len(op[2]) + len(op[1])
        if chunk:
            await self._commit(chunk)
        for category, key, doc in changes:
            if doc is None:
                self._docs[category].pop(key, None)
            else:
                self._docs[category][key] = doc

    async def save_framework_id(self, framework_id: str) -> None:
        path = self.layout.framework_id
        await self._commit([self._upsert(path, encode({"value": framework_id}, path, self.config))])
        self._present.add(path)
        self._framework_id = framework_id

    def _path(self, category: str, key: str) -> str:
        return self.layout.task_failure(key) if category == "taskFailure" else self.layout.node(category, key)

    async def _put(self, category: str, key: str, doc: Any) -> None:
        path = self._path(category, key)
        op = self._upsert(path, encode(doc, f"{category} {key}", self.config))
        self._present.add(path)
        try:
            await self._commit([op])
        except StoreError:
            if op[0] == "create":
                self._present.discard(path)
            raise
        self._docs[category][key] = doc

    async def _delete(self, category: str, key: str) -> None:
        path = self._path(category, key)
        if path in self._present:
            self._present.discard(path)
            await self._commit([("delete", path, b"")])
        self._docs[category].pop(key, None)

    def _upsert(self, path: str, data: bytes) -> tuple[str, str, bytes]:
        return ("set" if path in self._present else "create", path, data)

    async def _commit(self, ops: list[tuple[str, str, bytes]], expect: int = -1) -> None:
        """One ``multi``: the fence check, then ``ops`` (``set`` of the root pointer expects ``expect``)."""
        if not self._loaded:
            raise StoreError("the store writes only after load()")
        tx = self.client.transaction()
        if self.fence is not None:
            tx.check(self.fence, -1)
        for op, path, data in ops:
            if op == "create":
                tx.create(path, data)
            elif op == "set":
                tx.set_data(path, data, expect if path == self.layout.root else -1)
            else:
                tx.delete(path)
        try:
            results = await zk_call(tx.commit_async(), self.op_timeout)
        except StoreError:
            raise
        except Exception as exc:  # session expired, connection closed
            raise StoreError(f"ZooKeeper write failed: {type(exc).__name__}: {exc}") from exc
        self._raise_failure(ops, results)

    def _raise_failure(self, ops: list[tuple[str, str, bytes]], results: list[Any]) -> None:
        paths = ([self.fence] if self.fence is not None else []) + [path for _, path, _ in ops]
        for path, result in zip(paths, results, strict=False):
            if not isinstance(result, Exception) or isinstance(
                result, RolledBackError | RuntimeInconsistency
            ):
                continue
            if path == self.fence and isinstance(result, NoNodeError):
                raise NotLeader(f"not the leader any more ({path} is gone); nothing was written")
            if path == self.layout.root and isinstance(result, BadVersionError):
                raise StoreConflict("the root group was changed in ZooKeeper by another writer")
            raise StoreError(
                f"ZooKeeper refused the write at {path}: {type(result).__name__}; nothing was written"
            )
