"""Mesos resources and attributes: parsing, v1 JSON, fixed-point arithmetic (pure, no I/O).

Mesos keeps scalars to three decimal digits (MESOS-4687): every scalar here is an ``int`` of
thousandths, so ``0.1 + 0.2 == 0.3`` holds exactly and sums never drift.  A ``Resources`` value is
immutable and maps ``(name, role)`` to one of

* ``int``                          a SCALAR in thousandths (``cpus:0.5`` -> ``500``),
* ``tuple[tuple[int, int], ...]``  RANGES, sorted and coalesced (``[31000-31004,31006-32000]``),
* ``frozenset[str]``               a SET.

``role`` is ``"*"`` for unreserved resources and the role of a static reservation otherwise
(``cpus(ops):2``).  Empty values are never stored, so ``Resources()`` is the only empty value.

Parsing follows ``Resources::parse``/``Attributes::parse`` of Mesos 1.11 (``src/common/resources.cpp``,
``values.cpp``, ``attributes.cpp``): the agent flag syntax or a JSON array of v1 ``Resource`` objects;
bad input raises ``ResourceError`` naming the offending token.  Dynamic and refined reservations, disk
infos, revocable and shared resources are outside what this project offers and are rejected.
``to_json`` writes v1 ``Resource`` objects field for field as the master writes them into offers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal, TypeAlias

Ranges: TypeAlias = tuple[tuple[int, int], ...]
Value: TypeAlias = int | Ranges | frozenset[str]
Key: TypeAlias = tuple[str, str]
JsonObj: TypeAlias = dict[str, Any]
Format: TypeAlias = Literal["PRE_RESERVATION_REFINEMENT", "POST_RESERVATION_REFINEMENT", "ENDPOINT"]

UNRESERVED = "*"
_U64 = 2**64 - 1
_MAX_MILLI = 2**63 - 1
_TYPES = ("SCALAR", "RANGES", "SET")
_ROLE_BAD_CHARS = frozenset("\x08\t\n\x0b\x0c\r ")
_UNSUPPORTED_FIELDS = ("disk", "revocable", "shared", "provider_id")


class ResourceError(ValueError):
    """Malformed resources or attributes, or arithmetic that would go negative."""


# ---------------------------------------------------------------------------------------------------------
# fixed point and value primitives


def to_milli(value: float, what: str = "value") -> int:
    """A double as Mesos' ``convertToFixed``: ``llround(value * 1000)``."""
    if math.isnan(value) or math.isinf(value):
        raise ResourceError(f"{what}: unsupported floating point value {value!r}")
    scaled = value * 1000
    if abs(scaled) > _MAX_MILLI:
        raise ResourceError(f"{what}: value {value!r} is too large")
    return math.floor(scaled + 0.5) if scaled >= 0 else -math.floor(-scaled + 0.5)


def from_milli(milli: int) -> float:
    """Thousandths back to the double nearest the decimal (what Mesos prints, e.g. ``0.3``)."""
    return milli / 1000


def format_milli(milli: int) -> str:
    """``2500`` -> ``"2.5"``, ``8000`` -> ``"8"``: the shortest decimal, as Mesos' ``operator<<``."""
    sign = "-" if milli < 0 else ""
    whole, frac = divmod(abs(milli), 1000)
    return f"{sign}{whole}" if frac == 0 else f"{sign}{whole}." + f"{frac:03d}".rstrip("0")


def _parse_number(text: str, what: str) -> float:
    """A decimal as ``numify<double>`` accepts it; infinities, NaN and ``_`` separators are refused."""
    low = text.lower()
    if "_" in text or "inf" in low or "nan" in low:
        raise ResourceError(f"{what}: unsupported numeric value '{text}'")
    try:
        return float(text)
    except ValueError:
        raise ResourceError(f"{what}: '{text}' is not a number") from None


def coalesce(ranges: Iterable[tuple[int, int]]) -> Ranges:
    """Sort and merge overlapping or adjacent ranges (Mesos' ``coalesce``: ``[1-2,3-4]`` -> ``[1-4]``)."""
    out: list[tuple[int, int]] = []
    for b, e in sorted(ranges):
        if out and b <= out[-1][1] + 1:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((b, e))
    return tuple(out)


def ranges_contain(big: Ranges, small: Ranges) -> bool:
    """Every range of ``small`` lies inside one range of ``big`` (both coalesced)."""
    i, n = 0, len(big)
    for b, e in small:
        while i < n and big[i][1] < b:
            i += 1
        if i == n or big[i][0] > b or big[i][1] < e:
            return False
    return True


def ranges_subtract(left: Ranges, right: Ranges) -> Ranges:
    """``left`` minus ``right``: ranges split where a hole is cut (Mesos' ``internal::subtract``)."""
    out: list[tuple[int, int]] = []
    j, n = 0, len(right)
    for b, e in left:
        while j < n and right[j][1] < b:
            j += 1
        k = j
        while k < n and right[k][0] <= e:
            rb, re_ = right[k]
            if rb > b:
                out.append((b, rb - 1))
            b = re_ + 1
            if b > e:
                break
            k += 1
        if b <= e:
            out.append((b, e))
    return tuple(out)


def ranges_count(ranges: Ranges) -> int:
    return sum(e - b + 1 for b, e in ranges)


def format_ranges(ranges: Ranges, sep: str = ",") -> str:
    return "[" + sep.join(f"{b}-{e}" for b, e in ranges) + "]"


def format_set(items: Iterable[str], sep: str = ",") -> str:
    return "{" + sep.join(sorted(items)) + "}"


def _brackets_match(text: str, open_: str, close: str) -> bool:
    depth = 0
    for ch in text:
        if ch == open_:
            depth += 1
        elif ch == close:
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _tokenize(text: str, delims: str) -> list[str]:
    """stout's ``strings::tokenize``: split on any delimiter, drop empty tokens."""
    out: list[str] = []
    cur: list[str] = []
    for ch in text:
        if ch in delims:
            if cur:
                out.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


def parse_value(text: str, what: str) -> tuple[str, float | Ranges | frozenset[str] | str]:
    """Mesos' ``values::parse``: ``[a-b,…]`` RANGES, ``{x,y}`` SET, a number SCALAR, else TEXT.

    Spaces are removed first, as upstream does.  A negative number is TEXT there; callers that need
    a resource turn that into a "negative value" error.
    """
    temp = text.replace(" ", "")
    if not temp:
        raise ResourceError(f"{what}: expecting a non-empty value")
    if not all(_brackets_match(temp, o, c) for o, c in ("{}", "[]", "()")):
        raise ResourceError(f"{what}: mismatched brackets in '{text}'")
    if temp.startswith("["):
        tokens = _tokenize(temp, "[]-,\n")
        if not tokens or len(tokens) % 2:
            raise ResourceError(f"{what}: expecting one or more ranges in '{text}'")
        pairs = []
        for i in range(0, len(tokens), 2):
            b, e = tokens[i], tokens[i + 1]
            if not (b.isascii() and b.isdigit() and e.isascii() and e.isdigit()):
                raise ResourceError(f"{what}: expecting non-negative integers in '{b}-{e}'")
            lo, hi = int(b), int(e)
            if lo > hi or hi > _U64:
                raise ResourceError(f"{what}: invalid range '{b}-{e}'")
            pairs.append((lo, hi))
        return "RANGES", coalesce(pairs)
    if "[" in temp:
        raise ResourceError(f"{what}: unexpected '[' in '{text}'")
    if temp.startswith("{"):
        return "SET", frozenset(_tokenize(temp, "{},\n"))
    if "{" in temp:
        raise ResourceError(f"{what}: unexpected '{{' in '{text}'")
    try:
        number = _parse_number(temp, what)
    except ResourceError:
        return "TEXT", temp
    if number < 0:
        return "TEXT", temp
    return "SCALAR", number


def validate_role(role: str) -> None:
    """``roles::validate``: ``*`` or slash-separated components without ``.``, ``..``, ``*``, leading
    ``-`` or whitespace."""
    if role == UNRESERVED:
        return
    if not role:
        raise ResourceError("role names cannot be the empty string")
    if role.startswith("/") or role.endswith("/") or "//" in role:
        raise ResourceError(f"invalid role '{role}': bad use of '/'")
    for comp in role.split("/"):
        if comp in (".", "..", "*"):
            raise ResourceError(f"invalid role '{role}': cannot include '{comp}' as a component")
        if comp.startswith("-"):
            raise ResourceError(f"invalid role '{role}': component '{comp}' starts with a dash")
        if any(ch in _ROLE_BAD_CHARS for ch in comp):
            raise ResourceError(f"invalid role '{role}': component '{comp}' contains whitespace or backspace")


def is_ancestor_or_self(ancestor: str, role: str) -> bool:
    """A reservation for ``a`` is allocatable to ``a`` and to ``a/b`` (hierarchical roles)."""
    return role == ancestor or role.startswith(ancestor + "/")


# ---------------------------------------------------------------------------------------------------------
# Resources


def _add_value(name: str, cur: Value, v: Value) -> Value:
    if isinstance(cur, int) and isinstance(v, int):
        return cur + v
    if isinstance(cur, tuple) and isinstance(v, tuple):
        return coalesce(cur + v)
    if isinstance(cur, frozenset) and isinstance(v, frozenset):
        return cur | v
    raise ResourceError(f"resource '{name}': cannot combine values of different types")


def _contains_value(cur: Value, v: Value) -> bool:
    if isinstance(cur, int) and isinstance(v, int):
        return cur >= v
    if isinstance(cur, tuple) and isinstance(v, tuple):
        return cur == v or ranges_contain(cur, v)
    if isinstance(cur, frozenset) and isinstance(v, frozenset):
        return v <= cur
    return False


def _sub_value(cur: Value, v: Value) -> Value | None:
    """``cur - v`` (saturating for scalars); ``None`` when the types differ."""
    if isinstance(cur, int) and isinstance(v, int):
        return max(cur - v, 0)
    if isinstance(cur, tuple) and isinstance(v, tuple):
        return ranges_subtract(cur, v)
    if isinstance(cur, frozenset) and isinstance(v, frozenset):
        return cur - v
    return None


def _quantity(v: Value) -> int:
    """A value's size in thousandths: scalar as is, ranges and sets by their number of elements."""
    if isinstance(v, int):
        return v
    if isinstance(v, tuple):
        return ranges_count(v) * 1000
    return len(v) * 1000


class Resources:
    """An immutable bag of Mesos resources; see the module docstring for the representation."""

    __slots__ = ("_items", "_qty")

    _items: dict[Key, Value]
    _qty: dict[str, int] | None

    def __init__(self, items: Mapping[Key, Value] | None = None) -> None:
        self._items = {}
        self._qty = None
        for (name, role), v in (items or {}).items():
            self._items[(name, role)] = _check_value(name, role, v)
        self._items = {k: v for k, v in self._items.items() if v}

    @classmethod
    def _of(cls, items: dict[Key, Value]) -> Resources:
        """Wrap an already valid, empty-free dict without copying (the hot path)."""
        r = object.__new__(cls)
        r._items = items
        r._qty = None
        return r

    # -- construction ------------------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str, default_role: str = UNRESERVED) -> Resources:
        """``--resources``: a JSON array of v1 Resource objects, or ``name(role):value;…``."""
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                doc = json.loads(stripped)
            except ValueError:
                doc = None
            if isinstance(doc, list):
                return cls.from_json(doc, default_role)
        validate_role(default_role)
        out: dict[Key, Value] = {}
        for token in text.split(";"):
            if not token.strip():
                continue
            name, role, value = _parse_token(token, default_role)
            _merge_new(out, name, role, value, token)
        return cls._of({k: v for k, v in out.items() if v})

    @classmethod
    def from_json(cls, doc: Any, default_role: str = UNRESERVED) -> Resources:
        """A JSON array of v1 ``Resource`` objects (as frameworks send them in ACCEPT, or ``--resources``).

        Both reservation formats are accepted (``role`` or ``reservations``); ``allocation_info`` is
        ignored (the caller knows the offer's role).  A name may not appear with two types (upstream's
        ``validateCommandLineResources``; here a name always has one type).
        """
        if not isinstance(doc, list):
            raise ResourceError("resources JSON must be an array of Resource objects")
        validate_role(default_role)
        out: dict[Key, Value] = {}
        for i, obj in enumerate(doc):
            name, role, value = _resource_from_json(obj, i, default_role)
            _merge_new(out, name, role, value, f"item {i}")
        return cls._of({k: v for k, v in out.items() if v})

    @classmethod
    def scalars(cls, values: Mapping[str, float], role: str = UNRESERVED) -> Resources:
        """``Resources.scalars({"cpus": 1, "mem": 128})``: a convenience for tests and the allocator."""
        validate_role(role)
        items: dict[Key, Value] = {}
        for name, v in values.items():
            if v < 0:
                raise ResourceError(f"resource '{name}': negative value {v!r}")
            m = to_milli(float(v), f"resource '{name}'")
            if m:
                items[(name, role)] = m
        return cls._of(items)

    # -- output --------------------------------------------------------------------------------------------

    def to_json(
        self, fmt: Format = "PRE_RESERVATION_REFINEMENT", allocation_role: str | None = None
    ) -> list[JsonObj]:
        """v1 ``Resource`` objects in proto field order, as the master writes them.

        ``PRE_RESERVATION_REFINEMENT`` is what a framework without the RESERVATION_REFINEMENT capability
        (pymesos, Marathon) sees: ``"role"`` always set (``"*"`` when unreserved).  ``POST_…`` carries
        ``reservations`` instead and ``ENDPOINT`` both.  ``allocation_role`` adds ``allocation_info``,
        which the master shows to MULTI_ROLE frameworks only (MESOS-8237).
        """
        out: list[JsonObj] = []
        for (name, role), v in self._items.items():
            obj: JsonObj = {"name": name}
            if isinstance(v, int):
                obj["type"] = "SCALAR"
                obj["scalar"] = {"value": from_milli(v)}
            elif isinstance(v, tuple):
                obj["type"] = "RANGES"
                obj["ranges"] = {"range": [{"begin": b, "end": e} for b, e in v]}
            else:
                obj["type"] = "SET"
                obj["set"] = {"item": sorted(v)}
            if fmt != "POST_RESERVATION_REFINEMENT":
                obj["role"] = role
            if allocation_role is not None:
                obj["allocation_info"] = {"role": allocation_role}
            if role != UNRESERVED and fmt != "PRE_RESERVATION_REFINEMENT":
                obj["reservations"] = [{"type": "STATIC", "role": role}]
            out.append(obj)
        return out

    def model(self) -> dict[str, float | str]:
        """The v0 JSON of ``/state`` (``model(Resources)``): scalars summed per name, ranges/sets as text."""
        out: dict[str, float | str] = {"cpus": 0.0, "gpus": 0.0, "mem": 0.0, "disk": 0.0}
        for name in self.names():
            v = self.get(name)
            if isinstance(v, int):
                out[name] = from_milli(v)
            elif isinstance(v, tuple):
                out[name] = format_ranges(v, ", ")
            elif v is not None:
                out[name] = format_set(v, ", ")
        return out

    def __str__(self) -> str:
        """The agent flag syntax, which ``parse`` reads back: ``cpus:2;mem:1024;ports:[31000-32000]``."""
        parts = []
        for (name, role), v in self._items.items():
            label = name if role == UNRESERVED else f"{name}({role})"
            if isinstance(v, int):
                parts.append(f"{label}:{format_milli(v)}")
            elif isinstance(v, tuple):
                parts.append(f"{label}:{format_ranges(v)}")
            else:
                parts.append(f"{label}:{format_set(v)}")
        return ";".join(parts)

    def __repr__(self) -> str:
        return f"Resources({str(self)!r})"

    # -- queries -------------------------------------------------------------------------------------------

    def empty(self) -> bool:
        return not self._items

    def __bool__(self) -> bool:
        return bool(self._items)

    def items(self) -> Iterator[tuple[str, str, Value]]:
        """``(name, role, value)`` in insertion order."""
        for (name, role), v in self._items.items():
            yield name, role, v

    def names(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self._items))

    def roles(self) -> set[str]:
        """Reservation roles present (``"*"`` excluded)."""
        return {role for _, role in self._items if role != UNRESERVED}

    def get(self, name: str) -> Value | None:
        """The value of ``name`` over all roles combined (a scalar sum, merged ranges, a set union)."""
        acc: Value | None = None
        for (n, _), v in self._items.items():
            if n == name:
                acc = v if acc is None else _add_value(name, acc, v)
        return acc

    def milli(self, name: str) -> int:
        """Scalar ``name`` in thousandths over all roles (0 if absent)."""
        return self.quantities().get(name, 0)

    def scalar(self, name: str) -> float:
        return from_milli(self.milli(name))

    def ranges(self, name: str) -> Ranges:
        v = self.get(name)
        return v if isinstance(v, tuple) else ()

    def set_items(self, name: str) -> frozenset[str]:
        v = self.get(name)
        return v if isinstance(v, frozenset) else frozenset()

    @property
    def cpus(self) -> float:
        return self.scalar("cpus")

    @property
    def mem(self) -> float:
        return self.scalar("mem")

    @property
    def disk(self) -> float:
        return self.scalar("disk")

    def quantities(self) -> dict[str, int]:
        """Scalar sums per name in thousandths, all roles together (what DRF shares are computed from).

        Cached: a ``Resources`` never changes.  Callers must not mutate the result.
        """
        q = self._qty
        if q is None:
            q = {}
            for (name, _), v in self._items.items():
                if type(v) is int:
                    q[name] = q.get(name, 0) + v
            self._qty = q
        return q

    def has_quantities(self, required: Mapping[str, int]) -> bool:
        """``Resources::contains(ResourceQuantities)``: for each name, the amount summed over roles (ports
        and set items counted one by one, in thousandths) reaches the requirement."""
        q = self.quantities()
        for name, need in required.items():
            have = q.get(name)
            if have is None:
                have = sum(_quantity(v) for (n, _), v in self._items.items() if n == name)
            if have < need:
                return False
        return True

    def allocatable_to(self, role: str) -> Resources:
        """Unreserved resources plus those reserved to ``role`` or one of its ancestors."""
        items = self._items
        if all(r == UNRESERVED for _, r in items):
            return self
        return Resources._of(
            {k: v for k, v in items.items() if k[1] == UNRESERVED or is_ancestor_or_self(k[1], role)}
        )

    def unreserved(self) -> Resources:
        return Resources._of({k: v for k, v in self._items.items() if k[1] == UNRESERVED})

    def reserved(self, role: str | None = None) -> Resources:
        """Reserved resources (to ``role`` only, when given)."""
        return Resources._of(
            {k: v for k, v in self._items.items() if k[1] != UNRESERVED and (role is None or k[1] == role)}
        )

    def filter_names(self, names: Iterable[str]) -> Resources:
        keep = set(names)
        return Resources._of({k: v for k, v in self._items.items() if k[0] in keep})

    # -- arithmetic and comparison -------------------------------------------------------------------------

    def contains(self, other: Resources) -> bool:
        """Mesos' ``contains``: every resource of ``other`` fits in the same-role resource here."""
        if other is self:
            return True
        items = self._items
        for k, v in other._items.items():
            cur = items.get(k)
            if cur is None or not _contains_value(cur, v):
                return False
        return True

    def __add__(self, other: Resources) -> Resources:
        if not other._items:
            return self
        if not self._items:
            return other
        items = dict(self._items)
        for k, v in other._items.items():
            cur = items.get(k)
            items[k] = v if cur is None else _add_value(k[0], cur, v)
        return Resources._of(items)

    def __sub__(self, other: Resources) -> Resources:
        """Strict subtraction: ``other`` must be contained, or ``ResourceError`` names what is missing."""
        if not other._items:
            return self
        items = dict(self._items)
        for k, v in other._items.items():
            cur = items.get(k)
            if cur is None or not _contains_value(cur, v):
                have = Resources._of({k: cur}) if cur is not None else "nothing"
                raise ResourceError(f"cannot subtract {Resources._of({k: v})}: only {have} present")
            rest = _sub_value(cur, v)
            if rest:
                items[k] = rest
            else:
                del items[k]
        return Resources._of(items)

    def minus(self, other: Resources) -> Resources:
        """Mesos' saturating ``-``: whatever of ``other`` is present is removed, the rest is ignored."""
        if not other._items:
            return self
        items = dict(self._items)
        for k, v in other._items.items():
            cur = items.get(k)
            if cur is None:
                continue
            rest = _sub_value(cur, v)
            if rest is None:
                continue
            if rest:
                items[k] = rest
            else:
                del items[k]
        return Resources._of(items)

    def __le__(self, other: Resources) -> bool:
        return other.contains(self)

    def __ge__(self, other: Resources) -> bool:
        return self.contains(other)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Resources) and self._items == other._items

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))


EMPTY = Resources()


def _check_value(name: str, role: str, v: Value) -> Value:
    """Validate and normalise a value handed to the public constructor."""
    if not name:
        raise ResourceError("empty resource name")
    validate_role(role)
    if isinstance(v, bool):
        raise ResourceError(f"resource '{name}': unsupported value {v!r}")
    if isinstance(v, int):
        if v < 0:
            raise ResourceError(f"resource '{name}': negative value {format_milli(v)}")
        return v
    if isinstance(v, tuple):
        for pair in v:
            if len(pair) != 2 or not 0 <= pair[0] <= pair[1] <= _U64:
                raise ResourceError(f"resource '{name}': invalid range {pair!r}")
        return coalesce(v)
    if isinstance(v, frozenset):
        return v
    raise ResourceError(f"resource '{name}': unsupported value {v!r}")


def _merge_new(out: dict[Key, Value], name: str, role: str, value: Value, token: str) -> None:
    """Add a freshly parsed resource, refusing a name given twice with different types."""
    for (n, _), v in out.items():
        if n == name and type(v) is not type(value):
            raise ResourceError(f"resources with the same name ('{name}') but different types in '{token}'")
    key = (name, role)
    cur = out.get(key)
    if cur is None or not cur:
        out[key] = value
    elif value:
        out[key] = _add_value(name, cur, value)


def _parse_token(token: str, default_role: str) -> tuple[str, str, Value]:
    """One ``name(role):value`` token of the flag syntax."""
    pair = _tokenize(token, ":")
    if len(pair) != 2:
        raise ResourceError(f"bad value for resources, missing or extra ':' in '{token.strip()}'")
    head, raw = pair
    if "(" in head:
        open_, close = head.find("("), head.find(")")
        if close < open_ or head[close + 1 :].strip():
            raise ResourceError(f"bad value for resources, mismatched parentheses in '{token.strip()}'")
        name, role = head[:open_].strip(), head[open_ + 1 : close].strip()
    elif ")" in head:
        raise ResourceError(f"bad value for resources, mismatched parentheses in '{token.strip()}'")
    else:
        name, role = head.strip(), default_role
    if not name:
        raise ResourceError(f"empty resource name in '{token.strip()}'")
    try:
        validate_role(role)
    except ResourceError as e:
        raise ResourceError(f"resource '{name}': {e}") from None
    kind, parsed = parse_value(raw, f"resource '{name}'")
    return name, role, _as_resource_value(name, kind, parsed, raw)


def _as_resource_value(name: str, kind: str, parsed: object, raw: str) -> Value:
    if kind == "TEXT":
        text = str(parsed)
        if text.startswith("-"):
            try:
                _parse_number(text, name)
            except ResourceError:
                pass
            else:
                raise ResourceError(f"resource '{name}': negative value '{raw.strip()}'")
        raise ResourceError(f"resource '{name}': value '{raw.strip()}' is not a scalar, ranges or set")
    if kind == "SCALAR":
        assert isinstance(parsed, float)
        milli = to_milli(parsed, f"resource '{name}'")
        if parsed != 0 and milli <= 0:
            raise ResourceError(f"resource '{name}': value '{raw.strip()}' rounds to 0 (3 decimal places)")
        return milli
    assert isinstance(parsed, (tuple, frozenset))
    return parsed


def _json_number(v: Any, what: str) -> float:
    """A JSON number; strings holding numbers are accepted too, as Mesos' JSON→protobuf does."""
    if isinstance(v, bool):
        raise ResourceError(f"{what}: expected a number, got {json.dumps(v)}")
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        return _parse_number(v.strip(), what)
    raise ResourceError(f"{what}: expected a number, got {json.dumps(v)}")


def _json_uint(v: Any, what: str) -> int:
    if isinstance(v, str) and v.strip().isdigit():
        v = int(v.strip())
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _U64:
        raise ResourceError(f"{what}: expected a non-negative integer, got {json.dumps(v)}")
    return v


def _resource_from_json(obj: Any, i: int, default_role: str) -> tuple[str, str, Value]:
    if not isinstance(obj, dict):
        raise ResourceError(f"resources JSON item {i}: expected an object")
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise ResourceError(f"resources JSON item {i}: missing or empty 'name'")
    where = f"resource '{name}' (item {i})"
    kind = obj.get("type")
    if isinstance(kind, int) and not isinstance(kind, bool) and 0 <= kind < len(_TYPES):
        kind = _TYPES[kind]
    if kind not in _TYPES:
        raise ResourceError(f"{where}: unknown or unsupported type {json.dumps(kind)}")
    present = [t for t in ("scalar", "ranges", "set") if t in obj]
    if present != [kind.lower()]:
        raise ResourceError(f"{where}: a {kind} resource needs exactly the '{kind.lower()}' field")
    for field in _UNSUPPORTED_FIELDS:
        if field in obj:
            raise ResourceError(f"{where}: '{field}' resources are not supported")
    role = _role_from_json(obj, where, default_role)
    body = obj[kind.lower()]
    if not isinstance(body, dict):
        raise ResourceError(f"{where}: '{kind.lower()}' must be an object")
    value: Value
    if kind == "SCALAR":
        number = _json_number(body.get("value"), f"{where} scalar")
        if number < 0:
            raise ResourceError(f"{where}: negative value {number!r}")
        value = to_milli(number, where)
        if number != 0 and value <= 0:
            raise ResourceError(f"{where}: value {number!r} rounds to 0 (3 decimal places)")
    elif kind == "RANGES":
        pairs = []
        for r in body.get("range", []) or []:
            if not isinstance(r, dict):
                raise ResourceError(f"{where}: each range must be an object")
            b, e = _json_uint(r.get("begin"), f"{where} begin"), _json_uint(r.get("end"), f"{where} end")
            if b > e:
                raise ResourceError(f"{where}: invalid range {b}-{e} (begin > end)")
            pairs.append((b, e))
        merged = coalesce(pairs)
        if ranges_count(merged) != sum(e - b + 1 for b, e in pairs):
            raise ResourceError(f"{where}: overlapping ranges")
        value = merged
    else:
        items = body.get("item", []) or []
        if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
            raise ResourceError(f"{where}: set items must be strings")
        if len(set(items)) != len(items):
            raise ResourceError(f"{where}: duplicated set elements")
        value = frozenset(items)
    return name, role, value


def _role_from_json(obj: JsonObj, where: str, default_role: str) -> str:
    """The reservation role from either format; only static, single-level reservations exist here."""
    reservations = obj.get("reservations") or []
    if not isinstance(reservations, list):
        raise ResourceError(f"{where}: 'reservations' must be an array")
    if len(reservations) > 1:
        raise ResourceError(f"{where}: refined reservations are not supported")
    if "reservation" in obj:
        raise ResourceError(f"{where}: dynamic reservations are not supported")
    if reservations:
        res = reservations[0]
        if not isinstance(res, dict) or res.get("type", "STATIC") not in ("STATIC", 1):
            raise ResourceError(f"{where}: dynamic reservations are not supported")
        role = res.get("role")
        if not isinstance(role, str):
            raise ResourceError(f"{where}: reservation without a 'role'")
        if "role" in obj and obj["role"] != role:
            raise ResourceError(f"{where}: 'role' {obj['role']!r} disagrees with the reservation {role!r}")
    else:
        role = obj.get("role", default_role)
        if not isinstance(role, str):
            raise ResourceError(f"{where}: 'role' must be a string")
    try:
        validate_role(role)
    except ResourceError as e:
        raise ResourceError(f"{where}: {e}") from None
    if reservations and role == UNRESERVED:
        raise ResourceError(f"{where}: cannot reserve for role '*'")
    return role


# ---------------------------------------------------------------------------------------------------------
# attributes


def parse_attributes(text: str) -> list[JsonObj]:
    """``--attributes='rack:a;zone:b;n:3;u:[1-4]'`` -> v1 ``Attribute`` objects (``Attributes::parse``).

    Numbers become SCALAR, ``[…]`` RANGES and anything else TEXT (a negative number is TEXT, as
    upstream).  Mesos aborts on SET attributes; here they are a ``ResourceError``.
    """
    out: list[JsonObj] = []
    for token in _tokenize(text, ";\n"):
        if not token.strip():
            continue
        name, sep, raw = token.partition(":")
        name = name.strip()
        if not sep or not name or not raw.strip():
            raise ResourceError(f"invalid attribute key:value pair '{token.strip()}'")
        kind, parsed = parse_value(raw, f"attribute '{name}'")
        obj: JsonObj = {"name": name, "type": kind}
        if isinstance(parsed, float):
            obj["scalar"] = {"value": parsed}
        elif isinstance(parsed, tuple):
            obj["ranges"] = {"range": [{"begin": b, "end": e} for b, e in parsed]}
        elif isinstance(parsed, str):
            obj["text"] = {"value": parsed}
        else:
            raise ResourceError(f"attribute '{name}': set values are not supported for attributes")
        out.append(obj)
    return out


def attributes_model(attributes: Iterable[JsonObj]) -> dict[str, float | str]:
    """The v0 JSON of ``/state`` for attributes: scalars as numbers, ranges/sets/text as strings."""
    out: dict[str, float | str] = {}
    for a in attributes:
        kind = a.get("type")
        if kind == "SCALAR":
            out[a["name"]] = float(a["scalar"]["value"])
        elif kind == "RANGES":
            out[a["name"]] = format_ranges(
                tuple((r["begin"], r["end"]) for r in a["ranges"].get("range", [])), ", "
            )
        elif kind == "SET":
            out[a["name"]] = format_set(a["set"].get("item", []), ", ")
        else:
            out[a["name"]] = str(a["text"]["value"])
    return out
