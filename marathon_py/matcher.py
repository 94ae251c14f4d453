"""Offer matching for apps (reference §8 "Offer matching", §2.5 reasons), pure.

Follows Marathon 1.10.26's ``RunSpecOfferMatcher`` / ``ResourceMatcher`` / ``PortsMatcher``: an offer fits
when its resources of an accepted role cover cpus, mem, gpus and disk (consumed in offer order, so a
reservation is used only where the offer lists it), every constraint holds, the agent is not in a
maintenance window, the region is local (unless the app constrains @region/@zone) and no GPU agent is
spent on a GPU-less app; then host ports are picked.  Randomness comes only from the ``rng`` handed in.

Not modelled: resident apps (reservations, persistent volumes), scheduler plugins.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from marathon_py.constraints import REGION_FIELD, ZONE_FIELD, Placement, meets_all, relevant_placements
from paas_common.resources import UNRESERVED, Key, ResourceError, Resources, Value, coalesce, to_milli

# NoOfferMatchReason.reasonFunnel: when an offer fails for several reasons, /v2/queue reports the first.
REASON_FUNNEL = (
    "UnfulfilledRole",
    "UnfulfilledConstraint",
    "NoCorrespondingReservationFound",
    "AgentMaintenance",
    "InsufficientCpus",
    "InsufficientMemory",
    "InsufficientDisk",
    "InsufficientGpus",
    "InsufficientPorts",
    "DeclinedScarceResources",
)
_SCALARS = (
    ("cpus", "InsufficientCpus"),
    ("mem", "InsufficientMemory"),
    ("gpus", "InsufficientGpus"),
    ("disk", "InsufficientDisk"),
)


@dataclass(frozen=True)
class MatchConfig:
    """The Marathon flags the matcher reads (defaults as in 1.10)."""

    accepted_roles_default: str = "any"  # --accepted_resource_roles_default_behavior: any|unreserved|reserved
    gpu_scheduling_behavior: str = "restricted"  # --gpu_scheduling_behavior
    local_region: str | None = None  # the master's region (MasterInfo.domain)
    maintenance_mode: bool = True  # --[disable_]maintenance_mode
    draining_seconds: float = 0.0  # --draining_seconds
    now: float | None = None  # seconds since the epoch; maintenance windows are only checked when given
    max_instances_per_offer: int = 5  # --max_instances_per_offer


DEFAULT_CONFIG = MatchConfig()


@dataclass(frozen=True)
class Match:
    """What to launch: the resources to take (v1 JSON ready for ACCEPT/TaskInfo), the host port per
    port definition / mapping (None: a container-mode mapping without host port) and the placement."""

    offer_id: str
    agent_id: str
    hostname: str
    resources: Resources
    resources_json: list[dict[str, Any]]
    host_ports: tuple[int | None, ...]
    placement: Placement


@dataclass(frozen=True)
class NoMatch:
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str | None:
        """The one reason /v2/queue's ``rejectSummary*`` counts (lowest in the funnel)."""
        return min(self.reasons, key=REASON_FUNNEL.index) if self.reasons else None


@dataclass
class Batch:
    """``match_many``'s result: launches in order, why each offer that got none was refused (offers not
    looked at because ``n`` was reached are in neither), and the placements including the new ones."""

    matches: list[Match] = field(default_factory=list)
    unmatched: dict[str, NoMatch] = field(default_factory=dict)
    placements: list[Placement] = field(default_factory=list)


@dataclass(frozen=True)
class _Offer:
    doc: Mapping[str, Any]
    resources: Resources
    placement: Placement

    @property
    def id(self) -> str:
        return str((self.doc.get("id") or {}).get("value", ""))

    @property
    def allocation_role(self) -> str | None:
        role = (self.doc.get("allocation_info") or {}).get("role")
        return role if isinstance(role, str) else None


def usable_resources(doc: Iterable[Any]) -> Resources:
    """The offer's resources Marathon may use for an ordinary task: anything ``Resources`` cannot
    represent (disk infos, dynamic or refined reservations, revocable) is left out, as upstream's
    selector leaves out volumes and labelled reservations."""
    out = Resources()
    for item in doc:
        try:
            out = out + Resources.from_json([item])
        except ResourceError:
            continue
    return out


def _parse(offer: Mapping[str, Any], version: str | None) -> _Offer:
    return _Offer(offer, usable_resources(offer.get("resources") or []), Placement.of_offer(offer, version))


def app_role(app: Mapping[str, Any]) -> str:
    return str(app.get("role") or UNRESERVED)


def accepted_roles(app: Mapping[str, Any], config: MatchConfig = DEFAULT_CONFIG) -> frozenset[str]:
    """``acceptedResourceRoles`` if set, else ``defaultAcceptedResourceRolesSet`` of the flag."""
    given = app.get("acceptedResourceRoles") or []
    if given:
        return frozenset(given)
    role = app_role(app)
    behaviour = config.accepted_roles_default.lower()
    if behaviour == "unreserved":
        return frozenset({UNRESERVED})
    if behaviour == "reserved":
        return frozenset({role})
    return frozenset({role, UNRESERVED})


def port_requests(app: Mapping[str, Any]) -> list[int | None]:
    """Per port: 0 = any offered port, n = exactly n, None = no host port (``PortsMatcher``).

    Port mappings win when the container has any (bridge: hostPort defaults to 0; container mode: an
    absent hostPort takes none); otherwise port definitions, fixed only with ``requirePorts``."""
    mappings = (app.get("container") or {}).get("portMappings") or []
    if mappings:
        return [m.get("hostPort") for m in mappings]
    numbers: list[int | None] = [int(p.get("port", 0)) for p in app.get("portDefinitions") or []]
    return numbers if app.get("requirePorts") else [0] * len(numbers)


def _port_ranges(res: Resources, roles: frozenset[str]) -> list[tuple[str, int, int]]:
    return [
        (role, b, e)
        for name, role, v in res.items()
        if name == "ports" and role in roles and isinstance(v, tuple)
        for b, e in v
    ]


def _shuffled_ports(ranges: list[tuple[str, int, int]], rng: random.Random) -> Iterator[tuple[str, int]]:
    """``lazyRandomPortsFromRanges``: shuffle the ranges, start at a random port of their concatenation
    and wrap around, so dynamic ports are consecutive (little fragmentation) yet rarely reused at once."""
    total = sum(e - b + 1 for _, b, e in ranges)
    if not total:
        return
    shuffled = list(ranges)
    rng.shuffle(shuffled)
    start = rng.randrange(total)
    idx, before = 0, 0
    while before + shuffled[idx][2] - shuffled[idx][1] + 1 <= start:
        before += shuffled[idx][2] - shuffled[idx][1] + 1
        idx += 1
    role, b, e = shuffled[idx]
    first = b + start - before
    yield from ((role, p) for p in range(first, e + 1))
    for r, rb, re_ in shuffled[idx + 1 :] + shuffled[:idx]:
        yield from ((r, p) for p in range(rb, re_ + 1))
    yield from ((role, p) for p in range(b, first))


def pick_ports(
    requests: Sequence[int | None], ranges: list[tuple[str, int, int]], rng: random.Random
) -> list[tuple[str, int] | None] | None:
    """(role, port) per request, or None when the offer cannot serve them all.  Dynamic picks skip the
    fixed ports; a fixed port asked twice cannot be had twice."""
    fixed = [p for p in requests if p]
    if len(set(fixed)) != len(fixed):
        return None
    skip = set(fixed)  # grows with each pick: a port number offered in two roles is still one port
    dynamic = ((r, p) for r, p in _shuffled_ports(ranges, rng))
    out: list[tuple[str, int] | None] = []
    for want in requests:
        if want is None:
            out.append(None)
        elif want == 0:
            got = next((rp for rp in dynamic if rp[1] not in skip), None)
            if got is None:
                return None
            skip.add(got[1])
            out.append(got)
        else:
            role = next((r for r, b, e in ranges if b <= want <= e), None)
            if role is None:
                return None
            out.append((role, want))
    return out


def _take_scalar(res: Resources, name: str, need: int, roles: frozenset[str]) -> dict[Key, int] | None:
    """``consumeResources``: take from each accepted-role resource in offer order until ``need`` is met."""
    taken: dict[Key, int] = {}
    for n, role, v in res.items():
        if need <= 0:
            break
        if n == name and role in roles and isinstance(v, int):
            part = min(need, v)
            taken[(n, role)] = part
            need -= part
    return taken if need <= 0 else None


def _in_maintenance(offer: Mapping[str, Any], config: MatchConfig) -> bool:
    """``Availability.offerAvailable``: inside [start - draining, start + duration) the agent is avoided."""
    window = offer.get("unavailability") or {}
    start_ns = (window.get("start") or {}).get("nanoseconds")
    if not config.maintenance_mode or config.now is None or start_ns is None:
        return False
    now_ns = config.now * 1e9
    if now_ns <= start_ns - config.draining_seconds * 1e9:
        return False
    duration = (window.get("duration") or {}).get("nanoseconds")
    return not (duration is not None and now_ns > start_ns + duration)


def _region_ok(app: Mapping[str, Any], offer: _Offer, config: MatchConfig) -> bool:
    """Remote-region offers are used only by apps that constrain @region or @zone."""
    if any(c and c[0] in (REGION_FIELD, ZONE_FIELD) for c in app.get("constraints") or []):
        return True
    region = offer.placement.region
    return region is None or region == config.local_region


def _gpus_wasted(app: Mapping[str, Any], offer: _Offer, config: MatchConfig) -> bool:
    behaviour = (app.get("labels") or {}).get("GPU_SCHEDULING_BEHAVIOR")
    if behaviour not in ("restricted", "unrestricted"):
        behaviour = config.gpu_scheduling_behavior
    return behaviour == "restricted" and offer.resources.milli("gpus") > 0 and not app.get("gpus")


def _match(
    app: Mapping[str, Any],
    offer: _Offer,
    placements: Sequence[Placement],
    rng: random.Random,
    config: MatchConfig,
) -> Match | NoMatch:
    """``ResourceMatcher.matchResources`` on a parsed offer; placements already filtered by version."""
    if offer.allocation_role is not None and offer.allocation_role != app_role(app):
        return NoMatch(("UnfulfilledRole",))  # TaskLauncherActor only looks at offers for the app's role
    roles = accepted_roles(app, config)
    res = offer.resources
    reasons: list[str] = []
    items: dict[Key, Value] = {}
    for name, reason in _SCALARS:
        need = to_milli(float(app.get(name) or 0), name)
        taken = _take_scalar(res, name, need, roles) if need else {}
        if taken is None:
            reasons.append(reason)
        else:
            items.update(taken)
    if not any(role in roles for _, role, _ in res.items()):
        reasons.append("UnfulfilledRole")
    region_ok = _region_ok(app, offer, config)
    if meets_all(app.get("constraints") or [], offer.placement, placements):
        reasons.append("UnfulfilledConstraint")
    if _in_maintenance(offer.doc, config):
        reasons += ["UnfulfilledConstraint", "AgentMaintenance"]
    if _gpus_wasted(app, offer, config):
        reasons.append("DeclinedScarceResources")
    if reasons or not region_ok:
        return NoMatch(tuple(reasons))
    picked = pick_ports(port_requests(app), _port_ranges(res, roles), rng)
    if picked is None:
        return NoMatch(("InsufficientPorts",))
    by_role: dict[str, list[tuple[int, int]]] = {}
    for role, port in (p for p in picked if p is not None):
        by_role.setdefault(role, []).append((port, port))
    items.update({("ports", role): coalesce(ranges) for role, ranges in by_role.items()})
    used = Resources(items)
    return Match(
        offer_id=offer.id,
        agent_id=str((offer.doc.get("agent_id") or {}).get("value", "")),
        hostname=str(offer.doc.get("hostname", "")),
        resources=used,
        resources_json=used.to_json(allocation_role=offer.allocation_role),
        host_ports=tuple(None if p is None else p[1] for p in picked),
        placement=offer.placement,
    )


def match(
    app: Mapping[str, Any],
    offer: Mapping[str, Any],
    placements: Iterable[Placement],
    rng: random.Random,
    config: MatchConfig = DEFAULT_CONFIG,
) -> Match | NoMatch:
    """Match one instance of ``app`` (normalized app JSON, §4.1) against one v1 ``Offer``.

    ``placements`` are the app's instances; those of an older config are ignored (§5)."""
    relevant = relevant_placements(app, placements)
    return _match(app, _parse(offer, app.get("version")), relevant, rng, config)


def match_many(
    app: Mapping[str, Any],
    n: int,
    offers: Iterable[Mapping[str, Any]],
    placements: Iterable[Placement],
    rng: random.Random,
    config: MatchConfig = DEFAULT_CONFIG,
) -> Batch:
    """Launch up to ``n`` instances over a batch of offers, at most ``max_instances_per_offer`` each.

    Every launch takes its resources out of the offer and adds its placement, so UNIQUE, MAX_PER and
    GROUP_BY hold within the batch as they would across separate offers."""
    batch = Batch(placements=list(placements))
    relevant = relevant_placements(app, batch.placements)
    for doc in offers:
        if len(batch.matches) >= n:
            break
        offer = _parse(doc, app.get("version"))
        for launched in range(config.max_instances_per_offer):
            if len(batch.matches) >= n:
                break
            result = _match(app, offer, relevant, rng, config)
            if isinstance(result, NoMatch):
                if launched == 0:
                    batch.unmatched[offer.id] = result
                break
            batch.matches.append(result)
            batch.placements.append(result.placement)
            relevant.append(result.placement)
            offer = _Offer(offer.doc, offer.resources - result.resources, offer.placement)
    return batch
