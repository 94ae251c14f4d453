"""Marathon's leader election: a Curator LeaderLatch at ``<zk>/leader-curator`` rebuilt on kazoo (§8, §2.6).

Each instance creates an EPHEMERAL_SEQUENTIAL znode named as Curator's protected LeaderLatch names it,
``_c_<uuid>-latch-<seq>``, holding its participant id ``host:port``; the lowest sequence leads. A real
Marathon sharing the path therefore agrees with us on who leads, and ``GET /v2/leader`` names the leader
by reading the lowest znode's data (§1.2: standbys proxy to it).

Let it crash (§8): the ``lost`` event fires, with a reason, when the session is lost (expired or closed
under us), when our znode disappears (deleted, ``abdicate()``) and, for the leader, as soon as the
connection is suspended (Curator's standard policy: a suspended leader cannot know whether it still
leads). The caller exits then; the supervisor restarts it as a fresh participant. Our znode's path is
the leadership fence the store checks in every write (``zkstore``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import NoNodeError
from kazoo.recipe.watchers import ChildrenWatch

from marathon_py.zkstore import OP_TIMEOUT, zk_call

log = logging.getLogger(__name__)
LATCH = "latch-"
PREFIX = "_c_"  # Curator's protection prefix (``_c_<uuid>-``)


def latch_sequence(name: str) -> int | None:
    """The sequence of a latch znode (Curator's sorter reads the digits after ``latch-``)."""
    _, sep, digits = name.rpartition(LATCH)
    return int(digits) if sep and digits.isdigit() else None


def participants(children: list[str]) -> list[str]:
    """Latch znodes in leadership order (lowest sequence first); other children are ignored."""
    latches = [(seq, name) for name in children if (seq := latch_sequence(name)) is not None]
    return [name for _, name in sorted(latches)]


class LeaderElection:
    """One participant: ``await start()``, then follow ``elected`` / ``lost`` (events) or the callbacks.

    ``on_elected()`` and ``on_lost(reason)`` run on the event loop. The kazoo client is the caller's
    (shared with the store) and must be started.
    """

    def __init__(
        self,
        client: KazooClient,
        zk_path: str,
        participant_id: str,
        *,
        on_elected: Callable[[], None] | None = None,
        on_lost: Callable[[str], None] | None = None,
        lose_on_suspend: bool = True,
    ) -> None:
        self.client = client
        self.path = f"{zk_path.rstrip('/')}/leader-curator"
        self.participant_id = participant_id
        self.on_elected = on_elected
        self.on_lost = on_lost
        self.lose_on_suspend = lose_on_suspend
        self.elected = asyncio.Event()
        self.lost = asyncio.Event()
        self.lost_reason: str | None = None
        self.node: str | None = None  # full path of our latch znode: the store's fence
        self._leader: str | None = None
        self._closing = False
        self._abdicating = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def is_leader(self) -> bool:
        return self.elected.is_set() and not self.lost.is_set()

    def leader(self) -> str | None:
        """The leader's participant id (``host:port``) as last seen, None while there is none."""
        return self._leader

    async def start(self, timeout: float = OP_TIMEOUT) -> None:
        """Join the latch; returns once the first view of the participants has been taken."""
        self._loop = asyncio.get_running_loop()
        await asyncio.wait_for(asyncio.to_thread(self._join), timeout)

    def _join(self) -> None:
        self.client.add_listener(self._state_changed)
        self.client.ensure_path(self.path)
        prefix = f"{self.path}/{PREFIX}{uuid.uuid4()}-{LATCH}"
        self.node = self.client.create(prefix, self.participant_id.encode(), ephemeral=True, sequence=True)
        ChildrenWatch(self.client, self.path, self._children_changed)

    def _children_changed(self, children: list[str]) -> bool:
        """kazoo's thread: find the leader and its id, hand both to the loop; False ends the watch."""
        if self._closing or self.lost.is_set():
            return False
        names = participants(children)
        leader_id: str | None = None
        for name in names:
            try:
                data, _ = self.client.get(f"{self.path}/{name}")
            except NoNodeError:  # gone between the listing and the read: the next one leads
                continue
            except Exception as exc:  # connection trouble: the state listener reports it
                log.debug("reading the leader znode failed: %s", exc)
            else:
                leader_id = bytes(data).decode()
            leader_node = f"{self.path}/{name}"
            self._to_loop(self._members, [f"{self.path}/{n}" for n in names], leader_node, leader_id)
            return True
        self._to_loop(self._members, [], None, None)
        return True

    def _members(self, nodes: list[str], leader_node: str | None, leader_id: str | None) -> None:
        if self._closing or self.lost.is_set():
            return
        self._leader = leader_id
        if self.node not in nodes:
            self._lose("abdicated" if self._abdicating else "our leader-curator znode is gone")
        elif leader_node == self.node and not self.elected.is_set():
            self._leader = self.participant_id
            self.elected.set()
            log.info("elected leader as %s (%s)", self.participant_id, self.node)
            if self.on_elected is not None:
                self.on_elected()
        elif leader_node != self.node and self.elected.is_set():
            self._lose(f"leadership passed to {leader_id}")

    def _state_changed(self, state: str) -> None:
        """kazoo's connection thread: never block here."""
        if state == KazooState.LOST:
            self._to_loop(self._lose, "lost the ZooKeeper session")
        elif state == KazooState.SUSPENDED and self.lose_on_suspend:
            self._to_loop(self._lose_if_leading, "ZooKeeper connection suspended while leading")

    def _lose_if_leading(self, reason: str) -> None:
        if self.elected.is_set():
            self._lose(reason)

    def _lose(self, reason: str) -> None:
        if self._closing or self.lost.is_set():
            return
        self.lost_reason = reason
        self.lost.set()
        log.warning("leadership election: %s", reason)
        if self.on_lost is not None:
            self.on_lost(reason)

    def _to_loop(self, fn: Callable[..., None], *args: Any) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens any more
                self._loop.call_soon_threadsafe(fn, *args)

    async def abdicate(self) -> None:
        """Give leadership up (``DELETE /v2/leader``): our znode goes, ``lost`` fires with "abdicated"."""
        self._abdicating = True
        await self._delete_node()

    async def close(self) -> None:
        """Stop contending quietly (shutdown): no ``lost`` event, our znode is removed if we still can."""
        self._closing = True
        self.client.remove_listener(self._state_changed)
        await self._delete_node()

    async def _delete_node(self) -> None:
        if self.node is not None:
            with contextlib.suppress(Exception):  # gone already, or no session: ZooKeeper drops it anyway
                await zk_call(self.client.delete_async(self.node))
