"""The DRF sorter of Mesos' hierarchical allocator (``sorter/drf/sorter.cpp``), kept incrementally.

Clients (role paths such as ``eng/web``, or framework ids) are the leaves of a tree; each node's
allocation is the sum over its subtree, and its dominant share is ``max_r(allocation_r / total_r)``
over the scalar resources of the whole cluster, divided by its weight.  Siblings are ordered by
``(share, times allocated, name)`` exactly as upstream's ``compareDRF``.  A client that is also the
parent of other clients (role ``eng`` beside ``eng/web``) is represented by a virtual ``.`` child, as
upstream does.

Upstream re-sorts a ``vector`` (Mesos 1.6 did it per agent: MESOS-9239/9249).  Here every internal
node keeps a binary heap of its eligible children with *lazy invalidation*: a change of share pushes a
fresh entry with a new stamp (the node's version), stale entries are skipped when they surface, and a heap is
compacted once stale entries outnumber live ones.  An allocation pass walks the tree in DRF order by
popping (``walk``) and puts back what it popped (``restore``), so finding the first eligible client
costs O(depth · log n) instead of O(n log n), and an allocation that happens during the walk simply
re-inserts the popped node at its new place.  When the cluster totals change (an agent joins or
leaves) every share changes: that is recomputed lazily, once, at the next walk (upstream's ``dirty``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from heapq import heapify, heappop, heappush
from itertools import count

_Entry = tuple[float, int, str, int, "_Node"]


class Totals:
    """Cluster-wide scalar totals (thousandths per name), shared by the role sorter and every framework
    sorter; ``version`` tells a sorter that its shares are out of date."""

    __slots__ = ("amounts", "version")

    def __init__(self) -> None:
        self.amounts: dict[str, int] = {}
        self.version = 0

    def add(self, qty: Mapping[str, int]) -> None:
        for name, v in qty.items():
            self.amounts[name] = self.amounts.get(name, 0) + v
        self.version += 1

    def sub(self, qty: Mapping[str, int]) -> None:
        for name, v in qty.items():
            left = self.amounts.get(name, 0) - v
            if left > 0:
                self.amounts[name] = left
            else:
                self.amounts.pop(name, None)
        self.version += 1


class _Node:
    __slots__ = (
        "active",
        "alloc",
        "children",
        "client",
        "count",
        "heap",
        "leaf",
        "name",
        "parent",
        "path",
        "popped",
        "queued",
        "share",
        "stale",
        "version",
        "weight",
    )

    def __init__(self, name: str, path: str, leaf: bool, client: str = "") -> None:
        self.name = name
        self.path = path
        self.leaf = leaf
        self.client = client
        self.parent: _Node | None = None
        self.children: dict[str, _Node] = {}
        self.heap: list[_Entry] = []
        self.stale = 0
        self.active = False
        self.alloc: dict[str, int] = {}
        self.count = 0
        self.share = 0.0
        self.weight = 1.0
        self.version = 0
        self.queued = False
        self.popped = False

    @property
    def eligible(self) -> bool:
        """Internal nodes are always sorted; leaves only while active (upstream's INACTIVE_LEAF)."""
        return self.active or not self.leaf


class DrfSorter:
    """Clients in DRF order.  ``hierarchical=False`` treats client names as opaque (framework ids)."""

    def __init__(self, totals: Totals, excluded: frozenset[str] = frozenset(), hierarchical: bool = True):
        self._totals = totals
        self._excluded = excluded
        self._hierarchical = hierarchical
        self._root = _Node("", "", leaf=False)
        self._clients: dict[str, _Node] = {}
        self._weights: dict[str, float] = {}
        self._seen = -1
        self._share_totals: list[tuple[str, int]] = []
        # heap entry stamps, unique per sorter: an entry is valid iff it carries its node's current stamp,
        # and equal keys never fall through to comparing nodes
        self._stamp = count(1)
        self.active_count = 0

    # -- membership ---------------------------------------------------------------------------------------

    def __contains__(self, client: str) -> bool:
        return client in self._clients

    def __len__(self) -> int:
        return len(self._clients)

    def add(self, client: str) -> None:
        """Add an inactive client (upstream's two-phase ``add``: ``mkdir -p``, leaves become internal)."""
        if client in self._clients:
            raise KeyError(f"client {client!r} already in the sorter")
        tokens = client.split("/") if self._hierarchical else [client]
        cur, i = self._root, 0
        while i < len(tokens):
            if cur.leaf:  # a client becomes the parent of another: move it to a "." child
                self._to_internal(cur)
                break
            nxt = cur.children.get(tokens[i])
            if nxt is None:
                break
            cur, i = nxt, i + 1
        if i == len(tokens):  # the path is an internal node: its own client is the "." child
            leaf = self._new_child(cur, ".", leaf=True, client=client)
        else:
            for j in range(i, len(tokens) - 1):
                cur = self._new_child(cur, tokens[j], leaf=False, client="")
            leaf = self._new_child(cur, tokens[-1], leaf=True, client=client)
        self._clients[client] = leaf

    def remove(self, client: str) -> None:
        """Remove a client, its allocation from its ancestors, and internal nodes left useless."""
        leaf = self._clients.pop(client)
        if leaf.active:
            self.active_count -= 1
        alloc = leaf.alloc
        cur = leaf
        while cur is not self._root:
            parent = cur.parent
            assert parent is not None
            if cur is not leaf:
                _sub(cur.alloc, alloc)
            if not cur.children:
                self._detach(cur)
            elif len(cur.children) == 1 and "." in cur.children:
                self._to_leaf(cur)
            if cur.parent is not None:
                self._recompute(cur)
            cur = parent

    def activate(self, client: str) -> None:
        leaf = self._clients[client]
        if not leaf.active:
            leaf.active = True
            self.active_count += 1
            self._reposition(leaf)

    def deactivate(self, client: str) -> None:
        leaf = self._clients[client]
        if leaf.active:
            leaf.active = False
            self.active_count -= 1
            self._reposition(leaf)

    def is_active(self, client: str) -> bool:
        return self._clients[client].active

    def set_weight(self, path: str, weight: float) -> None:
        """Weight of a role path (applies to the node at that path: a leaf, or an internal node)."""
        if not weight > 0:
            raise ValueError(f"weight of {path!r} must be positive, got {weight!r}")
        self._weights[path] = weight
        node = self._find_path(path)
        if node is not None:
            node.weight = weight
            self._recompute(node)

    # -- allocations --------------------------------------------------------------------------------------

    def allocated(self, client: str, qty: Mapping[str, int]) -> None:
        """Resources went to ``client``: its and its ancestors' shares grow, they move in their heaps."""
        node: _Node | None = self._clients[client]
        root = self._root
        totals = self._share_totals
        while node is not root:  # the hot path of an allocation cycle: _share and _reposition inlined
            assert node is not None
            alloc = node.alloc
            for name, v in qty.items():
                alloc[name] = alloc.get(name, 0) + v
            node.count += 1
            share = 0.0
            for name, total in totals:
                a = alloc.get(name)
                if a and a / total > share:
                    share = a / total
            node.share = share / node.weight
            if not node.popped:
                self._reposition(node)
            node = node.parent

    def unallocated(self, client: str, qty: Mapping[str, int]) -> None:
        node: _Node | None = self._clients[client]
        root = self._root
        while node is not root:
            assert node is not None
            _sub(node.alloc, qty)
            self._recompute(node)
            node = node.parent

    def allocation(self, client: str) -> dict[str, int]:
        return dict(self._clients[client].alloc)

    def share(self, client: str) -> float:
        """The client's dominant share (over its weight), as the sorter orders it."""
        self._refresh()
        return self._clients[client].share

    # -- ordered walk -------------------------------------------------------------------------------------

    def walk(self, popped: list[_Node]) -> Iterator[_Node]:
        """Active leaves in DRF order, popping as it goes; the caller must ``restore(popped)`` after.

        Allocating to a yielded client during the walk is allowed: the popped client is re-inserted
        with its new share by ``restore``.  The walk is lazy, so stopping at the first eligible client
        costs a few heap operations.
        """
        self._refresh()
        return self._walk(self._root, popped)

    def _walk(self, node: _Node, popped: list[_Node]) -> Iterator[_Node]:
        heap = node.heap
        while heap:
            entry = heappop(heap)
            child = entry[4]
            if entry[3] != child.version:
                node.stale -= 1
                continue
            child.queued = False
            child.popped = True
            popped.append(child)
            if child.leaf:
                yield child
            else:
                yield from self._walk(child, popped)

    def restore(self, popped: list[_Node]) -> None:
        for node in popped:
            node.popped = False
            parent = node.parent
            if parent is not None and (node.active or not node.leaf):
                node.version = stamp = next(self._stamp)
                heappush(parent.heap, (node.share, node.count, node.name, stamp, node))
                node.queued = True
        popped.clear()

    def sorted_clients(self) -> list[str]:
        """All active clients in DRF order (for tests and operator endpoints; O(n log n))."""
        popped: list[_Node] = []
        try:
            return [leaf.client for leaf in self.walk(popped)]
        finally:
            self.restore(popped)

    # -- internals ----------------------------------------------------------------------------------------

    def _share(self, node: _Node) -> float:
        share = 0.0
        alloc = node.alloc
        if alloc:
            for name, total in self._share_totals:
                a = alloc.get(name)
                if a:
                    s = a / total
                    if s > share:
                        share = s
        return share / node.weight

    def _refresh(self) -> None:
        """Recompute every share and rebuild every heap if the cluster totals changed."""
        if self._seen == self._totals.version:
            return
        self._seen = self._totals.version
        self._share_totals = [
            (n, t) for n, t in self._totals.amounts.items() if t > 0 and n not in self._excluded
        ]
        stack = [self._root]
        while stack:
            node = stack.pop()
            for child in node.children.values():
                child.share = self._share(child)
                if not child.leaf:
                    stack.append(child)
            self._rebuild(node)

    def _rebuild(self, node: _Node) -> None:
        heap: list[_Entry] = []
        for child in node.children.values():
            child.version = stamp = next(self._stamp)
            child.queued = False
            if (child.active or not child.leaf) and not child.popped:
                heap.append((child.share, child.count, child.name, stamp, child))
                child.queued = True
        heapify(heap)
        node.heap[:] = heap  # in place: a suspended walk may hold the list
        node.stale = 0

    def _recompute(self, node: _Node) -> None:
        node.share = self._share(node)
        self._reposition(node)

    def _reposition(self, node: _Node) -> None:
        """Give ``node`` one valid heap entry matching its key (none if ineligible or popped)."""
        parent = node.parent
        if parent is None or node.popped:
            return
        if node.queued:
            parent.stale += 1
        node.version = stamp = next(self._stamp)
        node.queued = False
        if node.active or not node.leaf:
            heappush(parent.heap, (node.share, node.count, node.name, stamp, node))
            node.queued = True
        if parent.stale > 32 and parent.stale * 2 > len(parent.heap):
            self._rebuild(parent)

    def _new_child(self, parent: _Node, name: str, leaf: bool, client: str) -> _Node:
        path = name if parent is self._root else f"{parent.path}/{name}"
        node = _Node(name, path, leaf, client)
        node.weight = self._weights.get(path, 1.0)
        self._attach(parent, node)
        return node

    def _attach(self, parent: _Node, node: _Node) -> None:
        parent.children[node.name] = node
        node.parent = parent
        node.share = self._share(node)
        self._reposition(node)

    def _detach(self, node: _Node) -> None:
        parent = node.parent
        assert parent is not None
        if node.queued:
            parent.stale += 1
        node.version = 0
        node.queued = False
        del parent.children[node.name]
        node.parent = None

    def _to_internal(self, node: _Node) -> None:
        """Leaf ``a`` gains a descendant: it becomes internal, its client moves to a new ``a/.``."""
        virt = _Node(".", f"{node.path}/.", leaf=True, client=node.client)
        virt.alloc = dict(node.alloc)
        virt.count = node.count
        virt.active = node.active
        virt.weight = self._weights.get(virt.path, 1.0)
        node.leaf, node.active, node.client = False, False, ""
        self._clients[virt.client] = virt
        self._attach(node, virt)
        self._reposition(node)

    def _to_leaf(self, node: _Node) -> None:
        """Only ``a/.`` is left under ``a``: collapse it back into a leaf."""
        virt = node.children["."]
        self._detach(virt)
        node.leaf, node.active, node.client = True, virt.active, virt.client
        node.heap, node.stale = [], 0
        self._clients[node.client] = node
        self._reposition(node)

    def _find_path(self, path: str) -> _Node | None:
        node = self._root
        for token in path.split("/") if self._hierarchical else [path]:
            nxt = node.children.get(token)
            if nxt is None:
                return None
            node = nxt
        return node


def _sub(alloc: dict[str, int], qty: Mapping[str, int]) -> None:
    for name, v in qty.items():
        left = alloc.get(name, 0) - v
        if left > 0:
            alloc[name] = left
        else:
            alloc.pop(name, None)
