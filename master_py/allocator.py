"""Mesos' hierarchical DRF allocator as a pure core: agents, frameworks and filters in, offers out.

Semantics follow ``HierarchicalAllocatorProcess`` of Mesos 1.11 (``src/master/allocator/mesos/
hierarchical.cpp``) without quota:

* ``allocate(now, agents)`` visits the candidate agents (shuffled when an ``rng`` is given, as upstream
  does) and offers **everything still available on an agent** to the first framework in DRF order —
  roles by the role sorter, then frameworks within the role by that role's framework sorter — that is
  active, not suppressed in the role, not filtering those resources and meeting the minimum
  allocatable size.  Resources reserved to a role (``cpus(ops):2``) are offerable only to that role
  and its sub-roles, so an agent can yield one offer per role.  Offered resources count as allocated
  until the master hands them back with ``recover_resources``/``decline``.
* Shares live in ``sorter.DrfSorter`` heaps updated as allocations and recoveries happen; a cycle never
  re-sorts all frameworks per agent (MESOS-9239/9249).  The cost per agent is a few heap operations
  plus one per framework that had to be skipped (filtered, too small an offer).
* Decline filters (``refuse_seconds``, default 5 s; clamped to 365 days; negative means the default;
  0 installs none) last ``max(allocation_interval, refuse_seconds)`` (MESOS-4302) and filter an offer
  iff the refused resources contain it.  ``revive`` clears a role's filters and unsuppresses it;
  ``deactivate_framework`` clears all filters.
* Minimum allocatable resources default to Mesos' ``cpus:0.01|mem:32`` (any one alternative suffices);
  frameworks may override per role (``FrameworkInfo.offer_filters``).
* Agents with GPUs are offered only to GPU_RESOURCES-capable frameworks (``--filter_gpu_resources``).

No clocks: ``now`` (seconds, any epoch) is passed in; no I/O; errors in the caller's bookkeeping raise
``AllocatorError``.  The master batches triggers (``--allocation_interval``, plus immediate runs on
changes for the agents concerned), decides when to call ``allocate`` and turns ``Offer`` tuples into
v1 offers.  Batching matters: adding or removing an agent changes every share, which the sorters
recompute once at the next ``allocate`` (O(frameworks)), so coalesce registrations into one run.

API: ``add_agent/remove_agent/update_agent/activate_agent/deactivate_agent``;
``add_framework/remove_framework/update_framework/activate_framework/deactivate_framework``;
``suppress/revive``; ``set_weight``; ``recover_resources`` (unused, ended, declined) and ``decline``;
``allocate``; queries ``available/total/allocation/allocations_on/role_share/framework_share/
role_order/framework_order/filter_count``; ``expire_filters`` to free memory.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from master_py.sorter import DrfSorter, Totals
from paas_common.resources import EMPTY, ResourceError, Resources, to_milli, validate_role

DEFAULT_REFUSE_SECONDS = 5.0
MAX_REFUSE_SECONDS = 365 * 24 * 3600.0
DEFAULT_MIN_ALLOCATABLE = "cpus:0.01|mem:32"

MinAllocatable = list[dict[str, int]]


class AllocatorError(ValueError):
    """The caller's view disagrees with the allocator's (unknown ids, recovering what was not held)."""


class Offer(NamedTuple):
    """Resources of one agent offered to one framework in one role."""

    framework_id: str
    agent_id: str
    role: str
    resources: Resources


def parse_min_allocatable(text: str) -> MinAllocatable:
    """``--min_allocatable_resources``: ``|``-separated alternatives of ``name:value;…`` quantities."""
    out: MinAllocatable = []
    for alt in text.split("|"):
        qty: dict[str, int] = {}
        for token in alt.split(";"):
            if not token.strip():
                continue
            name, sep, raw = token.partition(":")
            name = name.strip()
            try:
                value = float(raw.strip())
            except ValueError:
                value = -1.0
            if not sep or not name or not value >= 0:
                raise ResourceError(f"bad minimum allocatable quantity '{token.strip()}'")
            qty[name] = qty.get(name, 0) + to_milli(value, name)
        if qty:
            out.append(qty)
    return out


def min_allocatable_from_offer_filters(offer_filters: Mapping[str, Any]) -> dict[str, MinAllocatable]:
    """``FrameworkInfo.offer_filters`` (role -> ``{min_allocatable_resources: {quantities: [{quantities:
    {name: {value}}}]}}``) as per-role alternatives for ``add_framework``."""
    out: dict[str, MinAllocatable] = {}
    for role, flt in offer_filters.items():
        mar = (flt or {}).get("min_allocatable_resources") or {}
        alts: MinAllocatable = []
        for q in mar.get("quantities", []) or []:
            qty = {name: to_milli(float(s["value"]), name) for name, s in (q.get("quantities") or {}).items()}
            alts.append(qty)
        out[role] = alts
    return out


def _filter_timeout(refuse_seconds: float, allocation_interval: float) -> float:
    """How long a decline filter lasts (``recoverResources``): 0 means no filter."""
    if refuse_seconds != refuse_seconds or refuse_seconds < 0:  # NaN or negative: the default
        refuse_seconds = DEFAULT_REFUSE_SECONDS
    elif refuse_seconds > MAX_REFUSE_SECONDS:
        refuse_seconds = MAX_REFUSE_SECONDS
    if refuse_seconds == 0:
        return 0.0
    return max(allocation_interval, refuse_seconds)


# role -> what one framework holds on one agent in that role, as the chunks it was given (merged lazily:
# a declined offer usually comes back whole, and matching a chunk is far cheaper than range arithmetic)
RoleAllocs = dict[str, list[Resources]]
_NEVER = float("inf")


def _merged(chunks: list[Resources]) -> Resources:
    return chunks[0] if len(chunks) == 1 else sum(chunks, EMPTY)


def _held(roles: RoleAllocs) -> Resources:
    return sum((c for chunks in roles.values() for c in chunks), EMPTY)


@dataclass(slots=True, eq=False)
class _Agent:
    id: str
    hostname: str
    total: Resources
    attributes: list[dict[str, Any]]
    available: Resources
    # framework id -> role -> offered or allocated; the inner dict is shared with _Framework.allocs
    allocs: dict[str, RoleAllocs] = field(default_factory=dict)
    active: bool = True
    reserved: bool = False
    gpus: bool = False
    filtered_by: set[str] = field(default_factory=set)  # frameworks with decline filters on this agent
    # role -> (offerable, role epoch, valid until): every framework of the role turned this down
    skip: dict[str, tuple[Resources, int, float]] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class _Framework:
    id: str
    roles: set[str]
    suppressed: set[str]
    active: bool
    gpu_aware: bool
    min_allocatable: dict[str, MinAllocatable]
    # role -> agent id -> [(expires_at, refused)]
    filters: dict[str, dict[str, list[tuple[float, Resources]]]] = field(default_factory=dict)
    allocs: dict[str, RoleAllocs] = field(default_factory=dict)  # agent id -> role -> resources
    tracked: set[str] = field(default_factory=set)  # roles whose framework sorter holds it


class Allocator:
    """Hierarchical DRF over roles then frameworks; see the module docstring."""

    def __init__(
        self,
        *,
        allocation_interval: float = 1.0,
        min_allocatable: str | MinAllocatable = DEFAULT_MIN_ALLOCATABLE,
        fair_sharing_excluded: Iterable[str] = (),
        filter_gpu_resources: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        self.allocation_interval = allocation_interval
        if isinstance(min_allocatable, str):
            min_allocatable = parse_min_allocatable(min_allocatable)
        self._min = min_allocatable
        self._filter_gpus = filter_gpu_resources
        self._rng = rng
        self._excluded = frozenset(fair_sharing_excluded)
        self._totals = Totals()
        self._roles = DrfSorter(self._totals, self._excluded, hierarchical=True)
        self._fw_sorters: dict[str, DrfSorter] = {}
        self._epochs: dict[str, int] = {}  # role -> bumped whenever its frameworks might accept more
        self._agents: dict[str, _Agent] = {}
        self._frameworks: dict[str, _Framework] = {}
        self._pending: dict[str, set[str]] = {}  # unknown framework id -> agents recording its use
        self._overrides = 0  # frameworks with per-role minimum allocatable overrides

    # -- agents -------------------------------------------------------------------------------------------

    def add_agent(
        self,
        agent_id: str,
        hostname: str,
        total: Resources,
        attributes: Iterable[dict[str, Any]] = (),
        used: Mapping[str, Mapping[str, Resources]] | None = None,
        active: bool = True,
    ) -> None:
        """An agent (re)registered.  ``used``: framework id -> role -> resources its tasks hold; those of
        frameworks not added yet are kept aside until ``add_framework`` claims them (as upstream)."""
        if agent_id in self._agents:
            raise AllocatorError(f"agent {agent_id} already added")
        agent = _Agent(agent_id, hostname, total, list(attributes), total, active=active)
        agent.reserved = bool(total.roles())
        agent.gpus = total.milli("gpus") > 0
        for fid, by_role in (used or {}).items():
            roles = {role: [res] for role, res in by_role.items() if res}
            if roles:
                agent.allocs[fid] = roles
        held = sum((_held(roles) for roles in agent.allocs.values()), EMPTY)
        if not total.contains(held):
            raise AllocatorError(f"agent {agent_id}: used {held} exceeds total {total}")
        agent.available = total - held
        self._agents[agent_id] = agent
        self._totals.add(total.quantities())
        for fid, roles in agent.allocs.items():
            fw = self._frameworks.get(fid)
            if fw is not None:
                self._adopt(fw, agent, roles)
            else:
                self._pending.setdefault(fid, set()).add(agent_id)

    def remove_agent(self, agent_id: str) -> None:
        """The agent is gone: its allocations leave the sorters, filters on it are dropped."""
        agent = self._agent(agent_id)
        for fid, roles in agent.allocs.items():
            fw = self._frameworks.get(fid)
            if fw is None:
                self._pending.get(fid, set()).discard(agent_id)
                continue
            del fw.allocs[agent_id]
            for role, chunks in roles.items():
                self._untrack_allocation(fw, role, _merged(chunks))
        for fid in agent.filtered_by:
            filtering = self._frameworks.get(fid)
            if filtering is None:
                continue
            for role in list(filtering.filters):
                filtering.filters[role].pop(agent_id, None)
                if not filtering.filters[role]:
                    del filtering.filters[role]
        self._totals.sub(agent.total.quantities())
        del self._agents[agent_id]

    def update_agent(self, agent_id: str, total: Resources) -> None:
        """The agent's total changed (``updateSlave``); what is allocated stays allocated."""
        agent = self._agent(agent_id)
        held = sum((_held(roles) for roles in agent.allocs.values()), EMPTY)
        self._totals.sub(agent.total.quantities())
        self._totals.add(total.quantities())
        agent.total = total
        agent.available = total.minus(held)
        agent.reserved = bool(total.roles())
        agent.gpus = total.milli("gpus") > 0

    def activate_agent(self, agent_id: str) -> None:
        self._agent(agent_id).active = True

    def deactivate_agent(self, agent_id: str) -> None:
        """No offers for this agent until reactivated (disconnected or draining)."""
        self._agent(agent_id).active = False

    # -- frameworks ---------------------------------------------------------------------------------------

    def add_framework(
        self,
        framework_id: str,
        roles: Iterable[str],
        *,
        active: bool = True,
        suppressed_roles: Iterable[str] = (),
        gpu_aware: bool = False,
        min_allocatable: Mapping[str, MinAllocatable] | None = None,
        used: Mapping[str, Mapping[str, Resources]] | None = None,
    ) -> None:
        """A framework subscribed.  ``used``: agent id -> role -> resources of its running tasks (only
        needed for agents added without telling; an agent's own ``used`` record wins)."""
        if framework_id in self._frameworks:
            raise AllocatorError(f"framework {framework_id} already added")
        roles = set(roles)
        for role in roles:
            validate_role(role)
        fw = _Framework(
            framework_id,
            roles,
            set(suppressed_roles) & roles,
            active,
            gpu_aware,
            dict(min_allocatable or {}),
        )
        self._frameworks[framework_id] = fw
        self._overrides += bool(fw.min_allocatable)
        for role in sorted(roles):
            self._track(fw, role)
        for aid in self._pending.pop(framework_id, ()):
            agent = self._agents[aid]
            self._adopt(fw, agent, agent.allocs[framework_id])
        for aid, by_role in (used or {}).items():
            other = self._agents.get(aid)
            if other is None or framework_id in other.allocs:
                continue
            agent = other
            roles_map = {role: [res] for role, res in by_role.items() if res}
            if not roles_map:
                continue
            agent.available = agent.available - _held(roles_map)
            agent.allocs[framework_id] = roles_map
            self._adopt(fw, agent, roles_map)

    def remove_framework(self, framework_id: str) -> None:
        """Everything the framework held goes back to its agents."""
        fw = self._framework(framework_id)
        for aid, roles in fw.allocs.items():
            agent = self._agents[aid]
            del agent.allocs[framework_id]
            for role, chunks in roles.items():
                res = _merged(chunks)
                agent.available = agent.available + res
                self._untrack_allocation(fw, role, res)
        fw.allocs.clear()
        for role in list(fw.tracked):
            self._untrack(fw, role)
        self._overrides -= bool(fw.min_allocatable)
        del self._frameworks[framework_id]

    def update_framework(
        self, framework_id: str, roles: Iterable[str], suppressed_roles: Iterable[str] = ()
    ) -> None:
        """Re-subscription with new roles or suppressed roles (``updateFramework``)."""
        fw = self._framework(framework_id)
        new = set(roles)
        for role in new:
            validate_role(role)
        suppressed = set(suppressed_roles) & new
        for role in sorted(new - fw.roles):
            fw.roles.add(role)
            self._track(fw, role)
        for role in fw.roles - new:
            fw.roles.discard(role)
            fw.filters.pop(role, None)
            fw.suppressed.discard(role)
            self._untrack(fw, role)
        self.suppress(framework_id, suppressed - fw.suppressed)
        self.revive(framework_id, fw.suppressed - suppressed)
        self._sync(fw)

    def activate_framework(self, framework_id: str) -> None:
        fw = self._framework(framework_id)
        fw.active = True
        self._sync(fw)

    def deactivate_framework(self, framework_id: str) -> None:
        """Disconnected: no offers, filters dropped; its allocation still counts for its share."""
        fw = self._framework(framework_id)
        fw.active = False
        fw.filters.clear()
        self._sync(fw)

    def suppress(self, framework_id: str, roles: Iterable[str] | None = None) -> None:
        """SUPPRESS: no offers in these roles (all of the framework's roles when ``None``)."""
        fw = self._framework(framework_id)
        fw.suppressed |= (fw.roles if roles is None else set(roles)) & fw.roles
        self._sync(fw)

    def revive(self, framework_id: str, roles: Iterable[str] | None = None) -> None:
        """REVIVE: clear the roles' decline filters and unsuppress them (all roles when ``None``)."""
        fw = self._framework(framework_id)
        chosen = fw.roles if roles is None else set(roles) & fw.roles
        for role in chosen:
            fw.filters.pop(role, None)
            self._bump(role)
        fw.suppressed -= chosen
        self._sync(fw)

    def set_weight(self, role: str, weight: float) -> None:
        """Role weight (``/weights``): a weight-2 role is entitled to twice the dominant share."""
        validate_role(role)
        self._roles.set_weight(role, weight)

    # -- resources coming back ----------------------------------------------------------------------------

    def recover_resources(
        self,
        framework_id: str,
        agent_id: str,
        resources: Resources,
        *,
        role: str | None = None,
        refuse_seconds: float | None = None,
        now: float = 0.0,
    ) -> None:
        """Offered or used resources come back (declined, unused part of ACCEPT, task ended).

        ``role`` may be omitted when the framework holds resources on the agent in one role only.
        With ``refuse_seconds`` a decline filter is installed (see the module docstring).  Unknown
        agents and frameworks are ignored, as upstream: their resources were recovered on removal.
        """
        if not resources:
            return
        agent = self._agents.get(agent_id)
        if agent is None:
            return
        roles = agent.allocs.get(framework_id)
        if roles is None:
            return
        if role is None:
            if len(roles) != 1:
                raise AllocatorError(f"{framework_id} holds roles {sorted(roles)} on {agent_id}: name one")
            role = next(iter(roles))
        chunks = roles.get(role, [])
        for i, chunk in enumerate(chunks):
            if chunk is resources or chunk == resources:
                del chunks[i]
                break
        else:
            held = _merged(chunks) if chunks else EMPTY
            if not held.contains(resources):
                raise AllocatorError(
                    f"framework {framework_id} does not hold {resources} on agent {agent_id} in role {role!r}"
                )
            rest = held - resources
            chunks[:] = [rest] if rest else []
        if not chunks:
            del roles[role]
        agent.available = agent.available + resources
        fw = self._frameworks.get(framework_id)
        if not roles:
            del agent.allocs[framework_id]
            if fw is not None:
                fw.allocs.pop(agent_id, None)
            else:
                self._pending.get(framework_id, set()).discard(agent_id)
        if fw is None:
            return
        self._untrack_allocation(fw, role, resources)
        if refuse_seconds is not None:
            timeout = _filter_timeout(refuse_seconds, self.allocation_interval)
            if timeout > 0:
                fw.filters.setdefault(role, {}).setdefault(agent_id, []).append((now + timeout, resources))
                agent.filtered_by.add(framework_id)

    def decline(
        self,
        framework_id: str,
        agent_id: str,
        resources: Resources,
        refuse_seconds: float = DEFAULT_REFUSE_SECONDS,
        now: float = 0.0,
        *,
        role: str | None = None,
    ) -> None:
        """DECLINE (or the unused part of ACCEPT): recover and filter for ``refuse_seconds``."""
        self.recover_resources(
            framework_id, agent_id, resources, role=role, refuse_seconds=refuse_seconds, now=now
        )

    def expire_filters(self, now: float) -> int:
        """Drop filters expired at ``now`` (they are ignored anyway); returns how many remain."""
        remaining = 0
        for fw in self._frameworks.values():
            for role in list(fw.filters):
                by_agent = fw.filters[role]
                for aid in list(by_agent):
                    live = [f for f in by_agent[aid] if f[0] > now]
                    if live:
                        by_agent[aid] = live
                        remaining += len(live)
                    else:
                        del by_agent[aid]
                if not by_agent:
                    del fw.filters[role]
        return remaining

    # -- the allocation cycle -----------------------------------------------------------------------------

    def allocate(self, now: float, agents: Iterable[str] | None = None) -> list[Offer]:
        """One allocation run over ``agents`` (all when ``None``); returns the offers made."""
        if agents is None:
            candidates = [a for a in self._agents.values() if a.active and a.available]
        else:
            known = self._agents
            candidates = [known[a] for a in dict.fromkeys(agents) if a in known]
            candidates = [a for a in candidates if a.active and a.available]
        if self._rng is not None:
            self._rng.shuffle(candidates)
        offers: list[Offer] = []
        roles = self._roles
        popped: list[Any] = []
        for agent in candidates:
            available = agent.available
            meets_min = self._meets_min(available)
            if not meets_min and not self._overrides:
                continue  # nobody could take it
            try:
                for role_leaf in roles.walk(popped):
                    role = role_leaf.client
                    offerable = available
                    if agent.reserved:
                        offerable = available.allocatable_to(role)
                        if not offerable:
                            continue
                        if offerable is not available:
                            meets_min = self._meets_min(offerable)
                    if self._offer_in_role(agent, role, offerable, meets_min, now, offers):
                        available = agent.available
                        if not available:
                            break
                        meets_min = self._meets_min(available)
            finally:
                roles.restore(popped)
        return offers

    def _meets_min(self, offerable: Resources) -> bool:
        """The global minimum allocatable resources: any one alternative suffices."""
        return not self._min or any(offerable.has_quantities(m) for m in self._min)

    def _offer_in_role(
        self, agent: _Agent, role: str, offerable: Resources, meets_min: bool, now: float, offers: list[Offer]
    ) -> bool:
        """Offer ``offerable`` to the first eligible framework of ``role`` in DRF order.

        When every active framework of the role turns it down, that verdict does not depend on shares,
        only on the role's frameworks (``_epochs``), the offerable resources and the earliest expiry of
        the filters involved; it is remembered on the agent so that an idle cluster of declining
        frameworks costs O(1) per agent and role instead of a walk over all of them.
        """
        epoch = self._epochs[role]
        skip = agent.skip.get(role)
        if (
            skip is not None
            and skip[1] == epoch
            and now < skip[2]
            and (skip[0] is offerable or skip[0] == offerable)
        ):
            return False
        sorter = self._fw_sorters[role]
        frameworks = self._frameworks
        gpu_only = agent.gpus and self._filter_gpus
        until = _NEVER
        popped: list[Any] = []
        try:
            for leaf in sorter.walk(popped):
                fw = frameworks[leaf.client]
                if gpu_only and not fw.gpu_aware:
                    continue
                override = fw.min_allocatable.get(role) if fw.min_allocatable else None
                if override is None:
                    if not meets_min:
                        continue
                elif override and not any(offerable.has_quantities(m) for m in override):
                    continue
                if fw.filters:
                    expires = self._filtered(fw, role, agent.id, offerable, now)
                    if expires:
                        until = min(until, expires)
                        continue
                self._grant(agent, fw, role, offerable)
                offers.append(Offer(fw.id, agent.id, role, offerable))
                agent.skip.pop(role, None)
                return True
        finally:
            sorter.restore(popped)
        agent.skip[role] = (offerable, epoch, until)
        return False

    def _filtered(self, fw: _Framework, role: str, agent_id: str, offerable: Resources, now: float) -> float:
        """The expiry of a live filter of ``fw`` refusing ``offerable`` on the agent, else 0."""
        by_agent = fw.filters.get(role)
        if not by_agent:
            return 0.0
        flist = by_agent.get(agent_id)
        if not flist:
            return 0.0
        expired = False
        hit = 0.0
        for expires, refused in flist:
            if expires <= now:
                expired = True
            elif refused is offerable or refused.contains(offerable):  # usually the very object offered
                hit = expires
                break
        if expired:
            live = [f for f in flist if f[0] > now]
            if live:
                by_agent[agent_id] = live
            else:
                del by_agent[agent_id]
                if not by_agent:
                    del fw.filters[role]
        return hit

    def _grant(self, agent: _Agent, fw: _Framework, role: str, res: Resources) -> None:
        agent.available = EMPTY if res is agent.available else agent.available - res
        roles = fw.allocs.get(agent.id)
        if roles is None:
            roles = {}
            fw.allocs[agent.id] = roles
            agent.allocs[fw.id] = roles
        chunks = roles.get(role)
        if chunks is None:
            roles[role] = [res]
        else:
            chunks.append(res)
        self._track_allocation(fw, role, res)

    # -- sorter bookkeeping -------------------------------------------------------------------------------

    def _track(self, fw: _Framework, role: str) -> None:
        """Put the framework into the role's framework sorter (creating the role on first use)."""
        if role in fw.tracked:
            self._sync(fw)
            return
        sorter = self._fw_sorters.get(role)
        if sorter is None:
            sorter = self._fw_sorters[role] = DrfSorter(self._totals, self._excluded, hierarchical=False)
            self._roles.add(role)
        sorter.add(fw.id)
        fw.tracked.add(role)
        self._bump(role)
        self._sync(fw)

    def _untrack(self, fw: _Framework, role: str) -> None:
        """Take the framework out of the role unless it still holds resources there (upstream's
        ``tryUntrackFrameworkUnderRole``); the role disappears with its last framework."""
        if role not in fw.tracked:
            return
        if any(role in roles for roles in fw.allocs.values()):
            self._sync(fw)
            return
        sorter = self._fw_sorters[role]
        sorter.remove(fw.id)
        fw.tracked.discard(role)
        self._bump(role)
        if not len(sorter):
            del self._fw_sorters[role]
            self._roles.remove(role)
        else:
            self._sync_role(role)

    def _sync(self, fw: _Framework) -> None:
        """Activate the framework exactly in the roles it may receive offers in."""
        for role in fw.tracked:
            sorter = self._fw_sorters[role]
            want = fw.active and role in fw.roles and role not in fw.suppressed
            if want != sorter.is_active(fw.id):
                if want:
                    sorter.activate(fw.id)
                else:
                    sorter.deactivate(fw.id)
                self._bump(role)
                self._sync_role(role)

    def _bump(self, role: str) -> None:
        """Invalidate every agent's "nobody in this role wants it" verdict (see ``_offer_in_role``)."""
        self._epochs[role] = self._epochs.get(role, 0) + 1

    def _sync_role(self, role: str) -> None:
        """A role is walked only while some framework in it is active (nothing else could be offered)."""
        if self._fw_sorters[role].active_count:
            self._roles.activate(role)
        else:
            self._roles.deactivate(role)

    def _adopt(self, fw: _Framework, agent: _Agent, roles: RoleAllocs) -> None:
        """Link an agent's record of the framework's resources and count them in the sorters."""
        fw.allocs[agent.id] = roles
        agent.allocs[fw.id] = roles
        for role, chunks in roles.items():
            for res in chunks:
                self._track_allocation(fw, role, res)

    def _track_allocation(self, fw: _Framework, role: str, res: Resources) -> None:
        if role not in fw.tracked:
            self._track(fw, role)
        qty = res.quantities()
        self._roles.allocated(role, qty)
        self._fw_sorters[role].allocated(fw.id, qty)

    def _untrack_allocation(self, fw: _Framework, role: str, res: Resources) -> None:
        qty = res.quantities()
        self._roles.unallocated(role, qty)
        self._fw_sorters[role].unallocated(fw.id, qty)
        if role not in fw.roles:
            self._untrack(fw, role)

    # -- queries ------------------------------------------------------------------------------------------

    def _agent(self, agent_id: str) -> _Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise AllocatorError(f"unknown agent {agent_id}")
        return agent

    def _framework(self, framework_id: str) -> _Framework:
        fw = self._frameworks.get(framework_id)
        if fw is None:
            raise AllocatorError(f"unknown framework {framework_id}")
        return fw

    def agent_ids(self) -> list[str]:
        return list(self._agents)

    def framework_ids(self) -> list[str]:
        return list(self._frameworks)

    def total(self, agent_id: str) -> Resources:
        return self._agent(agent_id).total

    def available(self, agent_id: str) -> Resources:
        return self._agent(agent_id).available

    def allocations_on(self, agent_id: str) -> dict[str, dict[str, Resources]]:
        """framework id -> role -> resources offered or allocated on the agent."""
        allocs = self._agent(agent_id).allocs
        return {fid: {r: _merged(c) for r, c in roles.items()} for fid, roles in allocs.items()}

    def allocation(self, framework_id: str) -> dict[str, dict[str, Resources]]:
        """agent id -> role -> resources offered to or used by the framework."""
        allocs = self._framework(framework_id).allocs
        return {aid: {r: _merged(c) for r, c in roles.items()} for aid, roles in allocs.items()}

    def role_share(self, role: str) -> float:
        """The role's weighted dominant share (0 for an unknown role)."""
        return self._roles.share(role) if role in self._roles else 0.0

    def framework_share(self, framework_id: str, role: str) -> float:
        sorter = self._fw_sorters.get(role)
        return sorter.share(framework_id) if sorter is not None and framework_id in sorter else 0.0

    def role_order(self) -> list[str]:
        """Roles with an active framework, in the order the next cycle will visit them."""
        return self._roles.sorted_clients()

    def framework_order(self, role: str) -> list[str]:
        sorter = self._fw_sorters.get(role)
        return sorter.sorted_clients() if sorter is not None else []

    def suppressed_roles(self, framework_id: str) -> set[str]:
        return set(self._framework(framework_id).suppressed)

    def filter_count(self, now: float) -> int:
        """Active decline filters (``allocator/mesos/offer_filters/…`` metrics)."""
        return sum(
            1
            for fw in self._frameworks.values()
            for by_agent in fw.filters.values()
            for flist in by_agent.values()
            for expires, _ in flist
            if expires > now
        )
