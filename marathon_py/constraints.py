"""App placement constraints (reference §5; Marathon 1.10.26 ``mesos/Constraints.scala``), pure.

A constraint ``[field, OPERATOR, value?]`` is checked against one offer and the *placements* of the app's
instances (where they run: hostname, region, zone, agent attributes).  Field values are compared as the
strings Marathon makes of them, so ``rack:1.0`` on an agent and ``"1"`` in a constraint are equal.

GROUP_BY follows the released 1.10 algorithm (a new value is always welcome; a known value only while it
is among the least used and at least ``n`` values are in use).  The reference's wording ("count <
instances/n, or equal with remainder left") describes mesosphere/marathon#7206, merged after the last 1.10
release and never shipped; it would also divide by zero for a GROUP_BY without a value.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

OPERATORS = ("UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS")
HOSTNAME_FIELDS = ("hostname", "@hostname")
REGION_FIELD = "@region"
ZONE_FIELD = "@zone"
_INT_MAX = 2**31 - 1

# SchedulingValidationMessages (api/v2/validation/SchedulingValidation.scala)
MSG_FIELDS = "Each constraint must have either 2 or 3 fields"
MSG_ILLEGAL = "illegal constraint specification"
MSG_OPERATOR = "operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS"
MSG_UNIQUE_VALUE = "UNIQUE does not accept a value"
MSG_GROUP_BY = "GROUP BY must define an integer value or else no value at all"
MSG_MAX_PER = "MAX_PER requires an integer value"
MSG_LIKE = "LIKE and UNLIKE require a non-empty, regular expression value"
MSG_REGEX = "is not a valid regular expression"
MSG_IS = (
    "IS only supports Mesos text and float values "
    "(see http://mesos.apache.org/documentation/latest/attributes-resources/)"
)
_IS_VALUE = re.compile(r"[a-zA-Z0-9_/.-]*")
_SCALAR_VALUE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_JAVA_INT = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class Placement:
    """Where an instance runs (or an offer would put it): what constraint fields are read from.

    ``attributes`` holds the agent's attributes already formatted as Marathon compares them;
    ``version`` is the app version the instance was launched with (None: unknown, always counted).
    """

    hostname: str | None
    attributes: Mapping[str, str] = field(default_factory=dict, hash=False)
    region: str | None = None
    zone: str | None = None
    version: str | None = None

    @classmethod
    def of_offer(cls, offer: Mapping[str, Any], version: str | None = None) -> Placement:
        """The placement an instance launched on this v1 ``Offer`` gets."""
        fault = (offer.get("domain") or {}).get("fault_domain") or {}
        return cls(
            hostname=offer.get("hostname"),
            attributes=attribute_strings(offer.get("attributes") or []),
            region=(fault.get("region") or {}).get("name"),
            zone=(fault.get("zone") or {}).get("name"),
            version=version,
        )

    def value(self, field_name: str) -> str | None:
        """The constraint field's value here (``readerForField``); None when the agent lacks it."""
        if field_name in HOSTNAME_FIELDS:
            return self.hostname
        if field_name == REGION_FIELD:
            return self.region
        if field_name == ZONE_FIELD:
            return self.zone
        return self.attributes.get(field_name)


def format_scalar(value: float) -> str:
    """Java's ``new DecimalFormat("0.###")`` (HALF_EVEN on the double's exact binary value)."""
    text = format(Decimal(value).quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def attribute_string(attribute: Mapping[str, Any]) -> str:
    """A v1 ``Attribute``'s value as Marathon's ``getValueString`` writes it."""
    kind = attribute.get("type")
    if kind == "SCALAR":
        return format_scalar(float(attribute["scalar"]["value"]))
    if kind == "RANGES":
        ranges = sorted((r["begin"], r["end"]) for r in attribute["ranges"].get("range") or [])
        return "[" + ",".join(f"{b}-{e}" for b, e in ranges) + "]"
    if kind == "SET":
        return "{" + ",".join(sorted(attribute["set"].get("item") or [])) + "}"
    return str(attribute["text"]["value"])


def attribute_strings(attributes: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Name → formatted value; the first attribute of a name wins, as ``find`` does upstream."""
    out: dict[str, str] = {}
    for a in attributes:
        if a.get("name") not in out:
            out[str(a.get("name"))] = attribute_string(a)
    return out


def _java_int(text: str) -> int | None:
    """``String.toInt``: an optional sign and digits within a 32-bit int."""
    if not _JAVA_INT.fullmatch(text):
        return None
    n = int(text)
    return n if -(2**31) <= n <= _INT_MAX else None


def _java_regex(text: str) -> re.Pattern[str] | None:
    try:
        return re.compile(text)
    except re.error:
        return None


def constraint_errors(c: object) -> list[str]:
    """Marathon's 422 messages for one app constraint (``complyWithAppConstraintRules``); [] if valid."""
    if not isinstance(c, (list, tuple)) or not all(isinstance(x, str) for x in c):
        return [MSG_ILLEGAL]
    if not 2 <= len(c) <= 3:
        return [MSG_FIELDS]
    field_name, op = c[0], c[1].upper()
    value = c[2] if len(c) == 3 else None
    if not field_name:
        return [MSG_ILLEGAL]
    if op not in OPERATORS:
        return [MSG_OPERATOR]
    if op == "UNIQUE" and value is not None:
        return [MSG_UNIQUE_VALUE]
    if op == "GROUP_BY" and value is not None and _java_int(value) is None:
        return [MSG_GROUP_BY]
    if op == "MAX_PER" and (value is None or _java_int(value) is None):
        return [MSG_MAX_PER]
    if op in ("LIKE", "UNLIKE"):
        if value is None:
            return [MSG_LIKE]
        if _java_regex(value) is None:
            return [MSG_REGEX]
    if op == "IS" and not _IS_VALUE.fullmatch(value or ""):
        return [MSG_IS]
    return []


def _after(version: str | None, since: str | None) -> bool:
    if version is None or since is None:
        return True
    return _instant(version) >= _instant(since)


def _instant(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def relevant_placements(app: Mapping[str, Any], placements: Iterable[Placement]) -> list[Placement]:
    """Instances launched with the current config only (``runSpecVersion >= lastConfigChangeVersion``):
    old-config instances are about to be replaced, so a rolling upgrade may co-locate with them (§5)."""
    since = (app.get("versionInfo") or {}).get("lastConfigChangeAt") or app.get("version")
    return [p for p in placements if _after(p.version, since)]


def meets(constraint: Sequence[str], offer: Placement, placements: Sequence[Placement]) -> bool:
    """Whether an instance on ``offer`` keeps ``constraint`` given the instances at ``placements``."""
    field_name, op = constraint[0], constraint[1].upper()
    value = constraint[2] if len(constraint) > 2 else ""
    offered = offer.value(field_name)
    if offered is None:
        return op == "UNLIKE"  # an offer lacking the field only satisfies UNLIKE
    placed = [p.value(field_name) for p in placements]
    if op == "UNIQUE":
        return offered not in placed
    if op == "CLUSTER":
        return (not placed or placed[0] == offered) if not value else offered == value
    if op == "GROUP_BY":
        return _group_by(offered, placed, _group_count(value))
    if op == "MAX_PER":
        limit = _java_int(value)
        return limit is not None and placed.count(offered) < limit
    if op in ("LIKE", "UNLIKE"):
        pattern = _java_regex(value) if value else None
        if pattern is None:
            return False  # upstream logs "value is required" and refuses both
        return (pattern.fullmatch(offered) is not None) == (op == "LIKE")
    if op == "IS":
        return offered == (format_scalar(float(value)) if _SCALAR_VALUE.fullmatch(value) else value)
    return False


def _group_count(value: str) -> int:
    """``getIntValue``: ``inf`` is unbounded, anything unparsable (or absent) is 0."""
    if value == "inf":
        return _INT_MAX
    return max(0, _java_int(value) or 0)


def _group_by(offered: str, placed: list[str | None], minimum: int) -> bool:
    """1.10's even spread: a value not used yet is always accepted (this is how Marathon learns the
    values from offers when ``n`` is 0); a used one only when at least ``n`` groups exist (instances
    lacking the field form a group of their own) and it is one of the smallest."""
    counts = Counter(placed)
    if offered not in counts:
        return True
    return len(counts) >= minimum and counts[offered] == min(counts.values())


def meets_all(
    constraints: Iterable[Sequence[str]], offer: Placement, placements: Sequence[Placement]
) -> list[int]:
    """Indices of the constraints the offer breaks (empty: all met)."""
    return [i for i, c in enumerate(constraints) if not meets(c, offer, placements)]
