"""Offers → launches, and what Marathon tells Mesos about wanting offers (reference §8 "Offer matching",
§7.2 backoff), pure.  Marathon 1.10: ``OfferProcessorImpl`` (decline unmatched offers for
``--decline_offer_duration``, accept with a 0 s filter so the rest comes back at once), ``TaskLauncherActor``
(only instances whose launch delay has passed; ``--max_instances_per_offer`` over all apps),
``ReviveOffersActor`` (revive when launches become pending, at most once per ``--min_revive_offers_interval``;
suppress roles with nothing to launch).

``Launcher`` holds the per-app launch delays (``backoff.LaunchDelay``), the offer statistics of
``/v2/queue`` and the revive/suppress state; the caller owns the instances and hands in those waiting.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from marathon_py.backoff import LaunchDelay, config_version
from marathon_py.constraints import Placement
from marathon_py.instances import InstanceRecord
from marathon_py.matcher import Match, MatchConfig, match_many, usable_resources
from marathon_py.outputs import Output, Revive, Suppress
from marathon_py.taskinfo import task_info
from marathon_py.taskjson import OfferStats
from paas_common.resources import Resources

JsonObj = dict[str, Any]
App = Mapping[str, Any]


@dataclass(frozen=True)
class LaunchConfig:
    decline_offer_duration: float = 120.0  # --decline_offer_duration
    min_revive_offers_interval: float = 5.0  # --min_revive_offers_interval
    roles: tuple[str, ...] = ("*",)  # the framework's roles (suppressed while nothing is to launch)
    env_prefix: str = ""  # --env_vars_prefix
    match: MatchConfig = field(default_factory=MatchConfig)


@dataclass(frozen=True)
class Planned:
    """One launch decided on an offer."""

    instance_id: str
    task_id: str
    match: Match
    task_info: JsonObj


@dataclass
class Answer:
    """A batch of offers answered: launches in order, TaskInfos per accepted offer, offers to decline."""

    launches: list[Planned] = field(default_factory=list)
    accepted: dict[str, list[JsonObj]] = field(default_factory=dict)
    declined: list[str] = field(default_factory=list)


def _offer_id(offer: Mapping[str, Any]) -> str:
    return str((offer.get("id") or {}).get("value", ""))


def _minus(offer: Mapping[str, Any], used: Resources) -> dict[str, Any]:
    """The offer with ``used`` taken out (what the next app may still match)."""
    role = (offer.get("allocation_info") or {}).get("role")
    rest = usable_resources(offer.get("resources") or []) - used
    return {**offer, "resources": rest.to_json(allocation_role=role if isinstance(role, str) else None)}


class Launcher:
    def __init__(self, config: LaunchConfig | None = None, rng: random.Random | None = None) -> None:
        self.config = config or LaunchConfig()
        self._rng = rng or random.Random(0)
        self.delays: dict[str, LaunchDelay] = {}
        self.stats: dict[str, OfferStats] = {}
        self.subscribed = False
        self._suppressed: set[str] = set()
        self._ready: set[str] = set()  # waiting instances whose delay passed, at the last evaluation
        self._revive_roles: set[str] = set()  # roles owed a revive (rate-limited)
        self._last_revive: float | None = None

    # -- launch delays ------------------------------------------------------------------------------------

    def app_changed(self, app: App) -> None:
        """The app's definition is now ``app``: a new config version resets its delay (§7.2)."""
        delay = self.delays.get(app["id"])
        if delay is None:
            self.delays[app["id"]] = LaunchDelay.of_app(app)
        else:
            delay.on_app(app)

    def app_removed(self, app_id: str) -> None:
        self.delays.pop(app_id, None)
        self.stats.pop(app_id, None)

    def is_current(self, app: App, version: str) -> bool:
        """Does an instance of ``version`` belong to the app's current config (the delay's key)?"""
        since = config_version(app)
        return since is None or version >= since

    def ready(self, app_id: str, now: float) -> bool:
        delay = self.delays.get(app_id)
        return delay is None or delay.is_ready(now)

    def expire(self, now: float) -> None:
        for delay in self.delays.values():
            delay.expire(now)

    # -- offers ---------------------------------------------------------------------------------------------

    def match(
        self,
        offers: Sequence[Mapping[str, Any]],
        wanting: Sequence[tuple[App, list[InstanceRecord]]],
        placements: dict[str, list[Placement]],
        now: float,
    ) -> Answer:
        """Each offer in turn, each app version in ``wanting`` order (oldest waiting first), at most
        ``max_instances_per_offer`` launches per offer over all apps.  ``placements`` (app id → where its
        instances run) grows with every launch, so constraints hold across the whole batch."""
        answer = Answer()
        cfg = replace(self.config.match, now=now)
        left = [list(recs) for _, recs in wanting]
        for offer in offers:
            oid, doc, launched = _offer_id(offer), offer, 0
            for (app, _), queue in zip(wanting, left, strict=True):
                room = cfg.max_instances_per_offer - launched
                if not queue or room <= 0:
                    continue
                stats = self.stats.setdefault(app["id"], OfferStats())
                places = placements.setdefault(app["id"], [])
                batch = match_many(
                    app, len(queue), [doc], places, self._rng, replace(cfg, max_instances_per_offer=room)
                )
                if not batch.matches:
                    miss = batch.unmatched.get(oid)
                    stats.unmatched(doc, miss.reasons if miss else (), now)
                    continue
                used = Resources()
                for m in batch.matches:
                    rec = queue.pop(0)
                    task_id = rec.next_task_id()
                    info = task_info(app, m, task_id, m.agent_id, env_prefix=self.config.env_prefix)
                    answer.launches.append(Planned(rec.instance_id, task_id, m, info))
                    answer.accepted.setdefault(oid, []).append(info)
                    places.append(m.placement)
                    used = used + m.resources
                    stats.matched(now)
                launched += len(batch.matches)
                doc = _minus(doc, used)
            if oid not in answer.accepted:
                answer.declined.append(oid)
        return answer

    def forget_stats(self, app_ids: Iterable[str]) -> None:
        """Apps with nothing left to launch start their next launch attempt with fresh statistics."""
        for app_id in app_ids:
            self.stats.pop(app_id, None)

    # -- revive / suppress --------------------------------------------------------------------------------

    def on_subscribed(self, ready: Mapping[str, str]) -> None:
        """A new subscription gets offers for every role without asking; nothing is suppressed yet."""
        self.subscribed = True
        self._suppressed = set()
        self._ready = set(ready)
        self._revive_roles = set()

    def demand(self, ready: Mapping[str, str], roles: Iterable[str], now: float) -> list[Output]:
        """``ready``: waiting instance id → its role, for instances whose launch delay passed.  New ones
        ask for a revive of their roles (rate-limited: owed revives go out on a later call); roles in
        ``roles`` (the framework's and the apps') with nothing ready are suppressed."""
        if not self.subscribed:
            return []
        out: list[Output] = []
        wanted = set(ready.values())
        self._revive_roles |= {ready[i] for i in ready.keys() - self._ready}
        self._revive_roles &= wanted
        self._ready = set(ready)
        interval = self.config.min_revive_offers_interval
        if self._revive_roles and (self._last_revive is None or now - self._last_revive >= interval):
            out.append(Revive(tuple(sorted(self._revive_roles))))
            self._suppressed -= self._revive_roles
            self._revive_roles = set()
            self._last_revive = now
        idle = (set(self.config.roles) | set(roles)) - wanted - self._suppressed
        if idle:
            out.append(Suppress(tuple(sorted(idle))))
            self._suppressed |= idle
        return out
