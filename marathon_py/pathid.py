"""Marathon path ids (``state/PathId.scala``, reference §4.1): ``/group/sub/app``.

Parsing drops leading, trailing and doubled slashes; ``.`` and ``..`` segments are resolved only by
``canonical`` against a base, exactly as Marathon's ``canonicalPath`` does (``..`` above the root stays at
the root). Validation returns Marathon's messages so callers can put them under their own JSON path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SEGMENT_PATTERN = (
    r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])|(\.|\.\.)$"
)
_SEGMENT = re.compile(SEGMENT_PATTERN)
# the looser RAML facet of strings.PathId, checked while reading JSON ("error.pattern")
RAML_PATTERN = re.compile(
    r"^(\/?((\.\.)|(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9]))?($|\/))+$"
)
RESERVED = ("restart", "tasks", "versions", ".", "..")

INVALID_CHARS = f"must fully match regular expression '{SEGMENT_PATTERN}'"
RESERVED_KEYWORD = "must not end with any of the following reserved keywords: " + ", ".join(RESERVED)
EMPTY_PATH = "Path must contain at least one path element"
NOT_ABSOLUTE = "Path needs to be absolute"


@dataclass(frozen=True, order=False)
class PathId:
    """An absolute or relative id; immutable, hashable, ordered by segments."""

    segments: tuple[str, ...]
    absolute: bool = True

    @classmethod
    def parse(cls, text: str) -> PathId:
        """``"/a//b/"`` → ``/a/b``; relative unless it starts with ``/``."""
        return cls(tuple(part for part in text.strip("/").split("/") if part), text.startswith("/"))

    @classmethod
    def root(cls) -> PathId:
        return cls((), True)

    @classmethod
    def from_safe(cls, text: str) -> PathId:
        """The inverse of ``safe``: ``a_b_c`` → ``/a/b/c`` (how Marathon names apps in ZooKeeper)."""
        return cls(tuple(text.split("_")) if text else ())

    def __str__(self) -> str:
        joined = "/".join(self.segments)
        return "/" + joined if self.absolute else joined

    def __lt__(self, other: PathId) -> bool:
        return self.canonical().segments < other.canonical().segments

    @property
    def is_root(self) -> bool:
        return self.absolute and not self.segments

    @property
    def is_top_level(self) -> bool:
        return not self.is_root and self.parent.is_root

    @property
    def parent(self) -> PathId:
        """The enclosing group; the root (absolute) for one-segment ids and for the root itself."""
        if len(self.segments) <= 1:
            return PathId.root()
        return PathId(self.segments[:-1], self.absolute)

    @property
    def name(self) -> str:
        """The last segment ("" for the root)."""
        return self.segments[-1] if self.segments else ""

    @property
    def root_segment(self) -> str:
        """The top-level group name (Marathon's ``root``), "" for the root."""
        return self.segments[0] if self.segments else ""

    def all_parents(self) -> list[PathId]:
        """Parents nearest first, ending with the root; empty for the root."""
        result: list[PathId] = []
        current = self
        while not current.is_root:
            current = current.parent
            result.append(current)
        return result

    def child(self, name: str) -> PathId:
        return PathId((*self.segments, *PathId.parse(name).segments), self.absolute)

    def includes(self, other: PathId) -> bool:
        """True when ``other`` is this id or one of its ancestors (segment prefix)."""
        return (
            len(other.segments) <= len(self.segments)
            and self.segments[: len(other.segments)] == other.segments
        )

    def canonical(self, base: PathId | None = None) -> PathId:
        """Absolute id with ``.``/``..`` resolved; relative ids are taken relative to ``base`` (root)."""
        base = base or PathId.root()
        if not base.absolute:
            raise ValueError("Base path is not absolute, canonical path can not be computed!")
        result: list[str] = []
        for part in self.segments if self.absolute else (*base.segments, *self.segments):
            if part == "..":
                if result:
                    result.pop()
            elif part != ".":
                result.append(part)
        return PathId(tuple(result), True)

    def safe(self) -> str:
        """Segments joined with ``_`` (ZooKeeper node names); absolute ids only."""
        if not self.absolute:
            raise ValueError(f"Path absolute flag is not true for path {self}. Can not create safe path.")
        return "_".join(self.segments)

    def hostname(self) -> str:
        """``/a/b/c`` → ``c.b.a`` (Mesos-DNS style)."""
        return ".".join(reversed(self.segments))

    def errors(self, *, base: PathId | None = None) -> list[str]:
        """Marathon's messages for an invalid id (``pathIdValidator`` / ``validPathWithBase``).

        Without ``base`` the reserved-keyword rule applies (run specs); with it, the id must resolve to a
        direct child of ``base`` (ids nested in a group update).
        """
        found: list[str] = []
        if not all(_SEGMENT.fullmatch(part) for part in self.segments):
            found.append(INVALID_CHARS)
        if base is None:
            if self.segments and self.segments[-1] in RESERVED:
                found.append(RESERVED_KEYWORD)
        elif self.canonical(base).parent != base:
            found.append(f"Identifier is not child of '{base}'")
        return found


def canonical(text: str, base: str | PathId = "/") -> str:
    """``canonical("b", "/a")`` → ``"/a/b"``: the string form callers store."""
    base_id = base if isinstance(base, PathId) else PathId.parse(base).canonical()
    return str(PathId.parse(text).canonical(base_id))


def parse(text: str) -> PathId:
    return PathId.parse(text)
