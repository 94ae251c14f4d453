"""argparse pieces the command groups share, so every option behaves and complains the same way.

Defaults belong to the top-level parser alone (see paasctl.cli): a group's ``add_options`` runs twice,
with real defaults at the top and with ``SUPPRESS`` for the leaf parsers.  Numeric option values are
checked by :func:`number`, which turns a bad value into argparse's one-line usage error (exit 2) of the
form ``invalid WHAT 'VALUE' (HINT)``.
"""

from __future__ import annotations

import argparse
import copy
import math
from collections.abc import Callable
from typing import Any, TypeVar

N = TypeVar("N", int, float)


def default(value: Any, with_defaults: bool) -> Any:
    """``value`` at the top level, ``SUPPRESS`` in a leaf (so a leaf only sets what was typed there)."""
    return value if with_defaults else argparse.SUPPRESS


def leaf_parent(add_options: Callable[..., None], **kw: Any) -> argparse.ArgumentParser:
    """A parent parser carrying a group's options without defaults, for its leaf parsers."""
    leaf = argparse.ArgumentParser(add_help=False)
    add_options(leaf, with_defaults=False, **kw)
    return leaf


def number(
    convert: Callable[[str], N], accept: Callable[[N], bool], what: str, hint: str
) -> Callable[[str], N]:
    """An argparse ``type``: ``convert(value)`` if ``accept`` holds, else ``invalid WHAT 'VALUE' (HINT)``."""

    def parse(value: str) -> N:
        invalid = argparse.ArgumentTypeError(f"invalid {what} {value!r} ({hint})")
        try:
            n = convert(value)
        except ValueError:
            raise invalid from None
        if not accept(n):
            raise invalid
        return n

    return parse


def seconds(what: str, maximum: float) -> Callable[[str], float]:
    """A duration in seconds, > 0 and at most ``maximum``."""
    return number(float, lambda t: 0 < t <= maximum, what, f"seconds, > 0 and <= {maximum:g}")


def amount(what: str, unit: str) -> Callable[[str], float]:
    """A finite quantity of at least 0.001 ``unit`` (CPUs, MB)."""
    return number(float, lambda v: math.isfinite(v) and v >= 0.001, what, f"{unit}, at least 0.001")


def without_timeout(common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The global options minus ``--timeout``, which after a waiting command (``run``, Marathon writes)
    bounds the whole wait instead."""
    clone = argparse.ArgumentParser(add_help=False)
    for action in common._actions:  # argparse has no public way to leave out one inherited option
        if "--timeout" not in action.option_strings:
            clone._add_action(copy.copy(action))
    return clone
