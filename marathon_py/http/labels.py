"""The ``label`` selector of ``GET /v2/apps`` (reference §2.1; ``api/v2/LabelSelector.scala``).

A query is selectors joined by commas, all of which must hold: ``key`` (the label exists), ``key==value``,
``key!=value``, ``key in (a, b)``, ``key notin (a, b)``. Terms are ``[-A-Za-z0-9_.]`` runs in which any
other character is escaped with a backslash; whitespace between tokens is skipped. A selector that names a
label the app lacks never holds, ``!=`` and ``notin`` included. A query that does not parse is Marathon's
``IllegalArgumentException``: 422 ``Can not parse label selector <query>. Reason: <why>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from marathon_py.validation import IllegalArgument

_TERM = re.compile(r"(?:\\.|[-A-Za-z0-9_.])+")
_ESCAPE = re.compile(r"\\(.)")
_SPACE = re.compile(r"\s*")
_EQUALITY = re.compile(r"==|!=")
_SET_OP = re.compile(r"in|notin")


@dataclass(frozen=True)
class Selector:
    key: str
    holds: Callable[[str], bool]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.key in labels and self.holds(labels[self.key])


class _Parser:
    """Marathon's ``RegexParsers`` grammar: ``selector := set | equality | existence`` (first that fits)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.expected = "a label"

    def _token(self, pattern: re.Pattern[str], what: str) -> str | None:
        start = _SPACE.match(self.text, self.pos)
        assert start is not None
        found = pattern.match(self.text, start.end())
        if found is None:
            self.expected = what
            return None
        self.pos = found.end()
        return found.group()

    def _literal(self, text: str) -> bool:
        return self._token(re.compile(re.escape(text)), f"'{text}'") is not None

    def _term(self) -> str | None:
        term = self._token(_TERM, "a label or value")
        return None if term is None else _ESCAPE.sub(r"\1", term)

    def _values(self) -> list[str] | None:
        if not self._literal("("):
            return None
        values: list[str] = []
        term = self._term()
        while term is not None:
            values.append(term)
            mark = self.pos
            if not self._literal(","):
                break
            term = self._term()
            if term is None:
                self.pos = mark
        return values if self._literal(")") else None

    def selector(self) -> Selector | None:
        start = self.pos
        key = self._term()
        if key is None:
            return None
        after_key = self.pos
        op = self._token(_SET_OP, "'in' or 'notin'")
        values = self._values() if op is not None else None
        if values is not None:
            wanted = frozenset(values)
            return Selector(key, wanted.__contains__ if op == "in" else lambda v: v not in wanted)
        self.pos = after_key
        op = self._token(_EQUALITY, "'==' or '!='")
        value = self._term() if op is not None else None
        if value is not None:
            return Selector(key, value.__eq__ if op == "==" else value.__ne__)
        self.pos = after_key
        return Selector(key, lambda _: True) if self.pos > start else None

    def selectors(self) -> list[Selector]:
        """``repsep(selector, ",")`` over the whole query, or 422."""
        found: list[Selector] = []
        selector = self.selector()
        while selector is not None:
            found.append(selector)
            mark = self.pos
            selector = self.selector() if self._literal(",") else None
            if selector is None:
                self.pos = mark
        rest = self.text[self.pos :].strip()
        if rest:
            reason = f"{self.expected} expected but '{rest[0]}' found"
            raise IllegalArgument(f"Can not parse label selector {self.text}. Reason: {reason}")
        return found


def parse(query: str) -> list[Selector]:
    """The selectors of ``query`` (none for an empty one: every app matches), or 422."""
    return _Parser(query).selectors()


def matches(selectors: list[Selector], labels: Mapping[str, str]) -> bool:
    return all(s.matches(labels) for s in selectors)
