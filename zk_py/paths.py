"""ZooKeeper path rules (PathUtils.validatePath) and parent/child helpers."""

from __future__ import annotations

from .proto import Err, ZkError


def _bad_char(c: str) -> bool:
    """Upstream checks UTF-16 code units: characters beyond the BMP are surrogate pairs, which it rejects."""
    o = ord(c)
    return o <= 0x1F or 0x7F <= o <= 0x9F or 0xD800 <= o <= 0xF8FF or o >= 0xFFF0


def path_problem(path: str) -> str | None:
    """Why ``path`` is not a valid absolute znode path, or None when it is."""
    if not path:
        return "Path length must be > 0"
    if path[0] != "/":
        return "Path must start with / character"
    if len(path) == 1:
        return None
    if path[-1] == "/":
        return "Path must not end with / character"
    last = "/"
    for i, c in enumerate(path[1:], 1):
        if c == "\0":
            return f"null character not allowed @{i}"
        if c == "/" and last == "/":
            return f"empty node name specified @{i}"
        if c == "." and last == "." and path[i - 2] == "/" and (i + 1 == len(path) or path[i + 1] == "/"):
            return f"relative paths not allowed @{i}"
        if c == "." and last == "/" and (i + 1 == len(path) or path[i + 1] == "/"):
            return f"relative paths not allowed @{i}"
        if _bad_char(c):
            return f"invalid character @{i}"
        last = c
    return None


def validate_path(path: str) -> None:
    """Raise BadArguments for an invalid path, as PrepRequestProcessor does."""
    problem = path_problem(path)
    if problem is not None:
        raise ZkError(Err.BAD_ARGUMENTS, f"{path!r}: {problem}")


def parent_of(path: str) -> str:
    """Parent path; the root's children have parent "/"."""
    i = path.rfind("/")
    return "/" if i <= 0 else path[:i]


def split(path: str) -> tuple[str, str]:
    """(parent, child name)."""
    i = path.rfind("/")
    return ("/" if i <= 0 else path[:i]), path[i + 1 :]
