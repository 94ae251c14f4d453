"""Watch tables with ZooKeeper 3.8 semantics (WatchManager + WatcherModeManager).

Two tables as upstream: data watches (exists/getData) and child watches (getChildren).
Persistent watches from addWatch go in both.  A watcher is any hashable owner (the server
uses its connection objects); watches die with the connection, never with the session.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from .paths import parent_of
from .proto import Event

STANDARD, PERSISTENT, RECURSIVE = 0, 1, 2

Watcher = Hashable


class _Table:
    __slots__ = ("by_path", "by_watcher", "recursive_count")

    def __init__(self) -> None:
        self.by_path: dict[str, dict[Watcher, int]] = {}
        self.by_watcher: dict[Watcher, set[str]] = {}
        self.recursive_count = 0

    def add(self, path: str, w: Watcher, mode: int) -> None:
        ws = self.by_path.setdefault(path, {})
        old = ws.get(w)
        if old == RECURSIVE:
            self.recursive_count -= 1
        if mode == RECURSIVE:
            self.recursive_count += 1
        ws[w] = mode
        self.by_watcher.setdefault(w, set()).add(path)

    def remove(self, path: str, w: Watcher, mode: int | None = None) -> bool:
        ws = self.by_path.get(path)
        if not ws or w not in ws or (mode is not None and ws[w] != mode):
            return False
        if ws.pop(w) == RECURSIVE:
            self.recursive_count -= 1
        if not ws:
            del self.by_path[path]
        paths = self.by_watcher.get(w)
        if paths is not None:
            paths.discard(path)
            if not paths:
                del self.by_watcher[w]
        return True

    def has(self, path: str, w: Watcher, mode: int | None = None) -> bool:
        ws = self.by_path.get(path)
        if not ws or w not in ws:
            return False
        return mode is None or ws[w] == mode

    def remove_watcher(self, w: Watcher) -> None:
        for path in self.by_watcher.pop(w, ()):
            ws = self.by_path.get(path)
            if ws is not None:
                if ws.pop(w, None) == RECURSIVE:
                    self.recursive_count -= 1
                if not ws:
                    del self.by_path[path]

    def trigger(self, path: str, event: Event, suppress: set[Watcher] | None = None) -> set[Watcher]:
        fired: set[Watcher] = set()
        ws = self.by_path.get(path)
        if ws:
            for w, mode in list(ws.items()):
                if mode == RECURSIVE:
                    if event != Event.NODE_CHILDREN_CHANGED:
                        fired.add(w)
                    continue
                fired.add(w)
                if mode == STANDARD:
                    self.remove(path, w)
        if self.recursive_count and path != "/":
            p = path
            while p != "/":
                p = parent_of(p)
                ancestors = self.by_path.get(p)
                if ancestors and event != Event.NODE_CHILDREN_CHANGED:
                    fired.update(w for w, mode in ancestors.items() if mode == RECURSIVE)
        if suppress:
            fired -= suppress
        return fired

    def count(self) -> int:
        return sum(len(v) for v in self.by_path.values())


class WatchManager:
    """Both watch tables; ``trigger`` maps one tree change to the watchers to notify."""

    def __init__(self) -> None:
        self.data = _Table()
        self.child = _Table()

    def add_data(self, path: str, w: Watcher) -> None:
        self.data.add(path, w, STANDARD)

    def add_child(self, path: str, w: Watcher) -> None:
        self.child.add(path, w, STANDARD)

    def add_persistent(self, path: str, w: Watcher, recursive: bool) -> None:
        mode = RECURSIVE if recursive else PERSISTENT
        self.data.add(path, w, mode)
        self.child.add(path, w, mode)

    def trigger(self, path: str, event: Event) -> set[Watcher]:
        if event == Event.NODE_CHILDREN_CHANGED:
            return self.child.trigger(path, event)
        fired = self.data.trigger(path, event)
        if event == Event.NODE_DELETED:
            fired |= self.child.trigger(path, event, fired)
        return fired

    def remove_watcher(self, w: Watcher) -> None:
        self.data.remove_watcher(w)
        self.child.remove_watcher(w)

    def remove(self, path: str, w: Watcher, watcher_type: int, *, dry_run: bool = False) -> bool:
        """removeWatches/checkWatches: type 1 children, 2 data, 3 any (3.8 knows no other types).

        3.8 removes a watch whatever its mode; callers reject other types as upstream does.
        """
        tables: list[tuple[_Table, int | None]]
        if watcher_type == 1:
            tables = [(self.child, None)]
        elif watcher_type == 2:
            tables = [(self.data, None)]
        elif watcher_type == 3:
            tables = [(self.child, None), (self.data, None)]
        else:
            return False
        if dry_run:
            # 3.8's WatchManager.containsWatcher answers whether *anyone* watches the path (it never
            # looks the caller up); checkWatches clients see that, so zk_py answers the same.
            return bool(path) and any(t.by_path.get(path) for t, _ in tables)
        found = False
        for t, m in tables:
            if t.remove(path, w, m):
                found = True
        return found

    # ---- introspection for the four-letter words ----

    def watch_count(self) -> int:
        return self.data.count() + self.child.count()

    def paths_by_watcher(self) -> dict[Watcher, set[str]]:
        out: dict[Watcher, set[str]] = {}
        for t in (self.data, self.child):
            for w, paths in t.by_watcher.items():
                out.setdefault(w, set()).update(paths)
        return out

    def watchers_by_path(self) -> dict[str, set[Watcher]]:
        out: dict[str, set[Watcher]] = {}
        for t in (self.data, self.child):
            for p, ws in t.by_path.items():
                out.setdefault(p, set()).update(ws)
        return out

    def watched_paths(self) -> Iterable[str]:
        return self.watchers_by_path().keys()
