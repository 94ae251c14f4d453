"""The group tree as pure data, the way ``/v2/groups`` shows it (``state/RootGroup.scala``, reference §2.2).

A group is ``{"id", "apps": [app…], "groups": [group…], "pods": [], "dependencies": [id…], "version"?,
"enforceRole"?}`` (``enforceRole`` on top-level groups only); apps are normalized app dicts
(``appdef``). Trees are values: every function returns a new root and shares untouched subtrees, so
callers must not mutate what they pass in or get back. As in Marathon, a change stamps ``version`` on
every group of the tree, and missing parent groups are created on the way.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from marathon_py import appdef
from marathon_py.pathid import PathId, canonical
from marathon_py.validation import ApiError, Conflict, ValidationError

Group = dict[str, Any]
App = dict[str, Any]
G = TypeVar("G", bound=Mapping[str, Any])
CYCLIC = "Dependency graph has cyclic dependencies."
SAME_ID = "Groups and Applications may not have the same identifier."
DEFAULT_PORT_RANGE = (10000, 20000)  # --local_port_min, --local_port_max (inclusive)


class PortRangeExhausted(ApiError):
    """Marathon's ``PortRangeExhaustedException`` (a 500 with this message)."""

    def __init__(self, low: int, high: int) -> None:
        super().__init__(f"All ports in the range [{low}-{high}) are already in use")


class CyclicDependencyError(ValidationError):
    """The dependency graph has a cycle: Marathon's 422 on the root group (``hasNonCyclicDependencies``)."""

    def __init__(self) -> None:
        super().__init__([("/", CYCLIC)])


def new_group(group_id: str | PathId, version: str | None = None, *, enforce_role: bool = False) -> Group:
    """An empty group; top-level groups get ``enforceRole`` (``--new_group_enforce_role``, off by default)."""
    gid = group_id if isinstance(group_id, PathId) else PathId.parse(group_id).canonical()
    group: Group = {"id": str(gid), "apps": [], "groups": [], "pods": [], "dependencies": []}
    if version is not None:
        group["version"] = version
    if gid.is_top_level:
        group["enforceRole"] = enforce_role
    return group


def empty_root(version: str | None = None) -> Group:
    return new_group(PathId.root(), version)


def iter_groups(group: G) -> Iterator[G]:
    """``group`` and all groups below it, depth first, parents first (``transitiveGroupsById``).

    The read-only traversals take sparse groups too (a missing ``apps``/``groups`` is empty), since stored
    plans refer to the version-less empty root as ``{"id": "/"}``.
    """
    yield group
    for child in group.get("groups") or ():
        yield from iter_groups(child)


def all_apps(group: Mapping[str, Any]) -> list[App]:
    """Every app in ``group`` and below (Marathon's ``transitiveApps``), in tree order."""
    return [app for g in iter_groups(group) for app in g.get("apps") or ()]


_BY_ID_MEMO: list[tuple[Mapping[str, Any], Mapping[str, App]]] = []  # the trees asked last, kept alive
_BY_ID_MEMO_SIZE = 8


def apps_by_id(group: Mapping[str, Any]) -> Mapping[str, App]:
    """App id → app; shared, not to be changed.  One root update asks this of the same few trees a dozen
    times (versions, ports, plan, machines), so the last ones are remembered by identity: trees are values
    (never changed in place), and an O(apps) pass per question is what makes 10,000 apps slow."""
    apps, children = group.get("apps"), group.get("groups")
    for tree, by_id in _BY_ID_MEMO:  # the same tree, or a shallow copy (the same lists of apps and groups)
        same_lists = apps is not None and tree.get("apps") is apps and tree.get("groups") is children
        if tree is group or same_lists:
            return by_id
    by_id = {app["id"]: app for app in all_apps(group)}
    _BY_ID_MEMO.insert(0, (group, by_id))
    del _BY_ID_MEMO[_BY_ID_MEMO_SIZE:]
    return by_id


def map_apps(group: Group, fn: Callable[[App], App]) -> Group:
    """The tree with ``fn`` applied to every app, in one pass; unchanged subtrees are shared."""
    apps = [fn(app) for app in group["apps"]]
    children = [map_apps(child, fn) for child in group["groups"]]
    if all(map(operator.is_, apps, group["apps"])) and all(map(operator.is_, children, group["groups"])):
        return group
    return {**group, "apps": apps, "groups": children}


def find_group(root: Group, group_id: str | PathId) -> Group | None:
    gid = group_id if isinstance(group_id, PathId) else PathId.parse(group_id).canonical()
    node: Group | None = root
    for depth in range(len(gid.segments)):
        wanted = str(PathId(gid.segments[: depth + 1]))
        assert node is not None
        node = next((g for g in node["groups"] if g["id"] == wanted), None)
        if node is None:
            return None
    return node


def find_app(root: Group, app_id: str | PathId) -> App | None:
    aid = app_id if isinstance(app_id, PathId) else PathId.parse(app_id).canonical()
    parent = find_group(root, aid.parent)
    wanted = str(aid)
    return None if parent is None else next((a for a in parent["apps"] if a["id"] == wanted), None)


def _contains_apps(group: Group) -> bool:
    return any(g.get("apps") or g.get("pods") for g in iter_groups(group))


def _stamp(group: Group, version: str) -> Group:
    return {**group, "version": version, "groups": [_stamp(g, version) for g in group["groups"]]}


def _update_group(
    root: Group, gid: PathId, fn: Callable[[Group], Group], version: str | None, enforce_role: bool
) -> Group:
    def go(node: Group, depth: int) -> Group:
        if depth == len(gid.segments):
            return fn(node)
        child_id = PathId(gid.segments[: depth + 1])
        children = list(node["groups"])
        index = next((i for i, g in enumerate(children) if g["id"] == str(child_id)), None)
        child = (
            children[index] if index is not None else new_group(child_id, version, enforce_role=enforce_role)
        )
        updated = go(child, depth + 1)
        if index is None:
            children.append(updated)
        else:
            children[index] = updated
        return {**node, "groups": children}

    result = go(root, 0)
    return _stamp(result, version) if version is not None else result


def put_group(root: Group, group: Group, version: str | None = None, *, enforce_role: bool = False) -> Group:
    """``group`` placed at its id (replacing what was there), parents created as needed."""
    return _update_group(root, PathId.parse(group["id"]), lambda _: group, version, enforce_role)


def put_app(root: Group, app: App, version: str | None = None, *, enforce_role: bool = False) -> Group:
    """``app`` created or replaced in its parent group; an empty group with the same id is dropped."""
    aid = PathId.parse(app["id"])

    def place(parent: Group) -> Group:
        apps = list(parent["apps"])
        index = next((i for i, a in enumerate(apps) if a["id"] == app["id"]), None)
        if index is None:
            apps.append(app)
        else:
            apps[index] = app
        groups = [g for g in parent["groups"] if g["id"] != app["id"] or _contains_apps(g)]
        return {**parent, "apps": apps, "groups": groups}

    return _update_group(root, aid.parent, place, version, enforce_role)


def remove(root: Group, path: str | PathId, version: str | None = None) -> Group:
    """The app or group at ``path`` removed (the root: everything); unchanged but re-stamped if absent."""
    pid = path if isinstance(path, PathId) else PathId.parse(path).canonical()
    if pid.is_root:
        return empty_root(version)
    key = (
        "apps" if find_app(root, pid) is not None else "groups" if find_group(root, pid) is not None else None
    )
    if key is None:
        return _stamp(root, version) if version is not None else root

    def drop(parent: Group) -> Group:
        return {**parent, key: [item for item in parent[key] if item["id"] != str(pid)]}

    return _update_group(root, pid.parent, drop, version, False)


def scale_by(root: Group, group_id: str | PathId, factor: float, version: str | None = None) -> Group:
    """Every app at or below ``group_id`` gets ``instances = ceil(instances * factor)`` (``scaleBy``)."""
    gid = group_id if isinstance(group_id, PathId) else PathId.parse(group_id).canonical()

    def scale(group: Group) -> Group:
        apps = [{**app, "instances": math.ceil(app["instances"] * factor)} for app in group["apps"]]
        return {**group, "apps": apps, "groups": [scale(g) for g in group["groups"]]}

    return _update_group(root, gid, scale, version, False)


# dependencies


def app_dependencies(root: Mapping[str, Any]) -> dict[str, set[str]]:
    """Edges app → apps it depends on (``RootGroup.applicationDependencies``, checked against 1.10.26).

    An app's dependency on an app id gives that app, on a group id every app below that group; a
    group's dependency on a group makes each of its apps depend on every app below the other group; a
    group's dependency on an app, and unknown ids, add nothing. Ids are canonical in the model; relative
    ones still resolve (against the group, or the app's parent), as ``PathId.canonicalPath`` would.
    """
    apps = apps_by_id(root)
    graph: dict[str, set[str]] = {app_id: set() for app_id in apps}
    group_deps = [g for g in iter_groups(root) if g.get("dependencies")]
    app_deps = [(app_id, app["dependencies"]) for app_id, app in apps.items() if app.get("dependencies")]
    if not group_deps and not app_deps:  # the common case, and O(apps) instead of O(apps x depth)
        return graph
    below = {g["id"]: {a["id"] for a in all_apps(g)} for g in iter_groups(root)}
    for group in group_deps:
        for dep in group["dependencies"]:
            targets = below.get(canonical(dep, group["id"]), set())
            for app_id in below[group["id"]]:
                graph[app_id] |= targets
    for app_id, deps in app_deps:
        parent = PathId.parse(app_id).parent
        for dep in deps:
            dep_id = canonical(dep, parent)
            graph[app_id] |= {dep_id} if dep_id in apps else below.get(dep_id, set())
    return graph


def dependency_depths(graph: Mapping[str, Collection[str]]) -> dict[str, int]:
    """Vertices on the longest path from each vertex (1 = depends on nothing): the planner's layers.

    Raises ``CyclicDependencyError`` on a cycle (a self-loop counts); iterative, so depth is unbounded.
    """
    depth: dict[str, int] = {}
    for start, targets in graph.items():
        if start in depth:
            continue
        if not targets:  # no dependencies: one vertex on its longest path (most apps; skips the walk)
            depth[start] = 1
            continue
        on_path = {start}
        stack = [(start, iter(graph[start]))]
        while stack:
            node, edges = stack[-1]
            nxt = next(edges, None)
            if nxt is None:
                stack.pop()
                on_path.discard(node)
                depth[node] = 1 + max((depth[d] for d in graph.get(node, ())), default=0)
            elif nxt in on_path:
                raise CyclicDependencyError()
            elif nxt not in depth:
                on_path.add(nxt)
                stack.append((nxt, iter(graph.get(nxt, ()))))
    return depth


def has_cycle(graph: Mapping[str, Collection[str]]) -> bool:
    """True when the directed graph has a cycle; vertices that are only edge targets depend on nothing."""
    try:
        dependency_depths(graph)
    except CyclicDependencyError:
        return True
    return False


def validate_dependencies(root: Mapping[str, Any]) -> None:
    """Raise ``CyclicDependencyError`` when the root's dependency graph has a cycle."""
    dependency_depths(app_dependencies(root))


_DEPS_MEMO: list[tuple[Mapping[str, Any], bool]] = []  # the tree asked last (validation, then the plan)


def has_dependencies(root: Mapping[str, Any]) -> bool:
    """Does any group or app of the tree declare dependencies?  Without any, the graph has no edges."""
    if _DEPS_MEMO and _DEPS_MEMO[0][0] is root:
        return _DEPS_MEMO[0][1]
    found = any(g.get("dependencies") for g in iter_groups(root)) or any(
        app.get("dependencies") for app in apps_by_id(root).values()
    )
    _DEPS_MEMO[:] = [(root, found)]
    return found


def validate_root(root: Group) -> None:
    """The root-group rules checked before a deployment: no cycles, no app/group id clash (422)."""
    details = []
    if has_dependencies(root) and has_cycle(app_dependencies(root)):
        details.append(("/", CYCLIC))
    for i, group in enumerate(iter_groups(root)):
        if not group["groups"]:
            continue  # no subgroup to clash with
        app_ids = {a["id"] for a in group["apps"]}
        if any(g["id"] in app_ids for g in group["groups"]):
            details.append(("/" if i == 0 else f"/groups({i - 1})", SAME_ID))
    if details:
        raise ValidationError(details)


def check_absent(root: Group, path: str, *, kind: str) -> None:
    """409 when an app ("app") or group ("group") cannot be created at ``path`` (§1.5 messages)."""
    if kind == "app" and find_app(root, path) is not None:
        raise Conflict(f"An app with id [{path}] already exists.")
    if kind == "group" and find_group(root, path) is not None:
        raise Conflict(f"Group {path} is already created. Use PUT to change this group.")
    if kind == "group" and find_app(root, path) is not None:
        raise Conflict(f"An app with the path {path} already exists.")


# versions and service ports, applied to a target tree before it is deployed


def set_versions(
    from_root: Mapping[str, Any], to_root: Group, now_iso: str, restarted: Collection[str] = ()
) -> Group:
    """``to_root`` with app versions set by ``appdef.with_version`` against ``from_root``, groups at now
    (``GroupVersioningUtil.updateVersionInfoForChangedApps``, what every root update applies first).
    ``restarted`` ids restart as if ``appdef.mark_for_restart`` had marked them."""
    before = apps_by_id(from_root)

    def version(app: App) -> App:
        old = before.get(app["id"])
        if old is app and "version" in app and app["id"] not in restarted:
            return app  # untouched by this update (shared with from_root): with_version would copy it as is
        return appdef.with_version(old, app, now_iso, restart=app["id"] in restarted)

    touched = [a for a in all_apps(to_root) if version(a) is not a] if restarted else None
    if touched is None:  # the apps an update left alone are shared with from_root, and versioned already
        touched = [a for a in all_apps(to_root) if before.get(a["id"]) is not a or "version" not in a]
    return _stamp(_map_some(to_root, touched, version), now_iso)


def assign_dynamic_service_ports(
    from_root: Group,
    to_root: Group,
    port_range: tuple[int, int] = DEFAULT_PORT_RANGE,
    *,
    in_use: Collection[int] | None = None,
) -> Group:
    """``AssignDynamicServiceLogic``: service ports 0 of new or changed apps → cluster-unique ports.

    Ports used by any app of either tree are skipped; an app gets its old ports back first, so re-posting
    it with zeros keeps its service ports.  ``in_use``, the service ports of ``from_root``'s apps if the
    caller keeps them, spares a pass over every app of the tree.
    """
    low, high = port_range
    before = apps_by_id(from_root)
    touched = [app for app in all_apps(to_root) if before.get(app["id"]) is not app]  # others: unchanged
    used: set[int] | None = None  # found once an app needs a port: most updates assign none

    def free() -> Iterator[int]:
        nonlocal used
        if used is None:  # the ports of either tree's apps
            used = set(in_use) if in_use is not None else _service_ports_of(before.values())
            used |= _service_ports_of(touched)
        return (p for p in range(low, high + 1) if p not in used)

    free_ports: Iterator[int] | None = None

    def assign(app: App) -> App:
        nonlocal free_ports
        old = before.get(app["id"])
        if old is app:  # shared with from_root: unchanged, so not an upgrade
            return app
        ports = appdef.service_ports(app)
        if (old is not None and not appdef.is_upgrade(old, app)) or 0 not in ports:
            return app
        if free_ports is None:
            free_ports = free()
        candidates = iter([p for p in appdef.service_ports(old or {}) if low <= p <= high and p not in ports])
        assigned = []
        for port in ports:
            if port == 0:
                port = next(candidates, None) or next(free_ports, None) or 0
                if port == 0:
                    raise PortRangeExhausted(low, high)
            assigned.append(port)
        return _with_service_ports(app, assigned)

    return _map_some(to_root, touched, assign)


def _map_some(tree: Group, apps: list[App], fn: Callable[[App], App]) -> Group:
    """``map_apps(tree, fn)`` where ``fn`` is known to keep every app but ``apps`` as it is: with one of
    them changed, only its group's list is rebuilt (by a search in C); with more, the whole tree as usual
    (``fn`` then runs in tree order, which port assignment depends on)."""
    if len(apps) > 1:
        return map_apps(tree, fn)
    changes = {id(app): new for app in apps if (new := fn(app)) is not app}
    return _replace_apps(tree, changes) if changes else tree


def _replace_apps(group: Group, changes: Mapping[int, App]) -> Group:
    """``group`` with the apps in ``changes`` (by identity) replaced; unchanged subtrees are shared."""
    apps, children = group["apps"], [_replace_apps(child, changes) for child in group["groups"]]
    found = changes.keys() & set(map(id, apps))
    if found:
        objects, apps = list(map(id, apps)), list(apps)
        for key in found:
            apps[objects.index(key)] = changes[key]
    if apps is group["apps"] and all(map(operator.is_, children, group["groups"])):
        return group
    return {**group, "apps": apps, "groups": children}


def _service_ports_of(apps: Iterable[Mapping[str, Any]]) -> set[int]:
    used: set[int] = set()
    for app in apps:
        used.update(appdef.service_ports(app))
    return used


def _with_service_ports(app: App, ports: list[int]) -> App:
    container = app.get("container")
    if container is not None and container.get("portMappings"):
        mappings = [{**m, "servicePort": p} for m, p in zip(container["portMappings"], ports, strict=True)]
        return {**app, "container": {**container, "portMappings": mappings}}
    definitions = [{**d, "port": p} for d, p in zip(app["portDefinitions"], ports, strict=True)]
    return {**app, "portDefinitions": definitions}


def assign_service_ports(root: Group, app: App, port_range: tuple[int, int] = DEFAULT_PORT_RANGE) -> App:
    """``app`` (about to replace or join ``root``) with its service ports 0 assigned."""
    target = assign_dynamic_service_ports(root, put_app(root, app), port_range)
    assigned = find_app(target, app["id"])
    assert assigned is not None
    return assigned


def to_json(group: Group, app_json: Callable[[App], dict[str, Any]] | None = None) -> dict[str, Any]:
    """The group as ``GET /v2/groups`` renders it; ``app_json`` renders each app (``appdef.to_json``)."""
    render = app_json or appdef.to_json
    out: dict[str, Any] = {
        "id": group["id"],
        "apps": [render(app) for app in group["apps"]],
        "pods": list(group["pods"]),
        "groups": [to_json(g, render) for g in group["groups"]],
        "dependencies": list(group["dependencies"]),
    }
    for key in ("version", "enforceRole"):
        if key in group:
            out[key] = group[key]
    return out
