"""The leader's edge around ``MarathonCore``: it runs core calls, carries out their outputs and feeds the
core what happens outside (Mesos events, probe results, the clock).

Ordering (reference §7.4, §8): a decision's store writes reach ZooKeeper before anything it decided is
sent to Mesos, published, acknowledged or answered to an HTTP client.  Writes are *group-committed*: core
calls run at once (they are synchronous and the core lives in memory), their outputs join the current
batch, and one flusher writes each batch — one write per key, the last decision (``outputs.ordered``),
sent together on the ZooKeeper session — then publishes the batch's events and hands its Mesos calls and
acknowledgements, in decision order, to one sender.  Under load a batch holds many decisions and costs one
round of ZooKeeper writes instead of one per decision.

Every caller of ``decide`` waits for the writes that hold its outputs, and the callers take turns, one
decision per iteration of the event loop, so a hundred parallel API writes (each a pass over the whole
root group) cannot starve the Mesos event stream, the sender and the flusher.  Mesos events do not wait
(``react``): each is decided as it arrives, in stream order, and only its acknowledgement must wait for the
write, which the sender sees to (they were decided one flush each: a slow flush held up every status
update and offer).  The sender keeps the calls' order (a DECLINE's filter before the next REVIVE, a KILL
after its LAUNCH) except within runs of acknowledgements or of ACCEPTs, which commute and go out together.

A failed store write is fatal (``failed`` is set): memory is ahead of ZooKeeper, so the daemon steps down
and the next leader reloads, as Marathon crashes on a storage error.  A failed Mesos call only logs: offers
and kills are retried by the core's timers and reconciliation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp

from marathon_py import probes
from marathon_py.core import CoreConfig, MarathonCore
from marathon_py.deployment import load_plan
from marathon_py.health import Result
from marathon_py.http.errors import HttpError
from marathon_py.http.events import EventBus
from marathon_py.http.orchestrator import Decision
from marathon_py.mesos import ClientEvent, Disconnected, MesosClient, MesosError
from marathon_py.outputs import (
    PERSISTS,
    Ack,
    Decline,
    DeleteDeployment,
    DeleteInstance,
    Event,
    Kill,
    Launch,
    Output,
    Persist,
    Probe,
    ReadinessProbe,
    Reconcile,
    Revive,
    SaveDeployment,
    SaveInstance,
    SaveRoot,
    SaveTaskFailure,
    Suppress,
    instance_of_doc,
    ordered,
)
from marathon_py.store import CorruptNode
from marathon_py.zkstore import ZkStore
from paas_common import schedapi as sc

log = logging.getLogger(__name__)
T = TypeVar("T")
TICK = 1.0  # the core's timers (launch delays, kill retries, probes, reconciliation) run this often
MAX_PROBES = 256  # --max_concurrent_marathon_health_checks (reference §6)
MAX_UNFLUSHED = 2000  # outputs of Mesos events decided ahead of their writes before the stream waits
MAX_PARALLEL_CALLS = 96  # acknowledgements or ACCEPTs in flight at once (aiohttp's pool holds 100)
MAX_CALLS_BEHIND = 500  # Mesos calls waiting for the sender before ``decide`` lets it catch up first …
CATCH_UP_WAIT = 1.0  # … for at most this long (seconds)
REACT_TURN = 32  # Mesos events decided before the stream lets the rest of the loop run


class Service:
    """One leadership term: the core, its store and (once attached) its Mesos connection."""

    def __init__(
        self,
        core: MarathonCore,
        store: ZkStore,
        bus: EventBus,
        *,
        clock: Callable[[], float] = time.time,
        tick: float = TICK,
    ) -> None:
        self._core = core
        self.store = store
        self.bus = bus
        self.clock = clock
        self.tick_interval = tick
        self.mesos: MesosClient | None = None
        self.failed = asyncio.Event()  # a store write failed: this term is over
        self.failure: BaseException | None = None
        self.counters: dict[str, int] = {}
        self._batch: list[Output] = []
        self._batch_done: asyncio.Future[None] | None = None
        self._wake = asyncio.Event()
        self._calls: deque[Output] = deque()  # written, to be sent to Mesos in order
        self._turn = asyncio.Semaphore(1)  # decide's callers, one per loop iteration
        self._calls_wake = asyncio.Event()
        self._calls_caught_up = asyncio.Event()
        self._calls_caught_up.set()
        self._reacted = 0
        self._probe_slots = asyncio.Semaphore(MAX_PROBES)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []

    # -- the Orchestrator protocol (marathon_py.http.orchestrator) -----------------------------------------

    @property
    def core(self) -> MarathonCore:
        return self._core

    @property
    def versions(self) -> ZkStore:
        return self.store

    def now(self) -> float:
        return self.clock()

    async def decide(self, fn: Decision[T]) -> T:
        async with self._turn:  # released at once: the next caller decides in the next loop iteration
            if not self._calls_caught_up.is_set():  # Mesos is behind: acknowledgements and launches first
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._calls_caught_up.wait(), CATCH_UP_WAIT)
            self._check_term()
            result, outputs = fn(self._core, self.now())
        await self.carry(outputs)
        return result

    async def react(self, fn: Decision[None]) -> None:
        """A Mesos event's decision: queued without waiting for its writes, unless ``MAX_UNFLUSHED``
        outputs already wait for theirs (then the event stream waits, so the backlog stays bounded)."""
        self._check_term()
        _, outputs = fn(self._core, self.now())
        done = self._queue(outputs)
        if done is not None and len(self._batch) > MAX_UNFLUSHED:
            await asyncio.shield(done)
        self._reacted += 1
        if self._reacted % REACT_TURN == 0:  # a chunk of the stream holds hundreds of events
            await asyncio.sleep(0)

    async def carry(self, outputs: list[Output]) -> None:
        """Queue ``outputs`` in the current batch and wait until the batch is written."""
        done = self._queue(outputs)
        if done is not None:
            await asyncio.shield(done)

    def _queue(self, outputs: list[Output]) -> asyncio.Future[None] | None:
        """Add ``outputs`` to the current batch; the future of its flush (None when there is nothing)."""
        if not outputs:
            return None
        self._check_term()
        self._batch.extend(outputs)
        if self._batch_done is None:
            self._batch_done = asyncio.get_running_loop().create_future()
        self._wake.set()
        return self._batch_done

    def _check_term(self) -> None:
        if self.failed.is_set():
            raise HttpError(503, f"Leadership lost: {self.failure}")

    # -- life cycle -----------------------------------------------------------------------------------------

    async def start(self, mesos: MesosClient | None) -> None:
        """Resume the stored deployments, then flush, tick and (with ``mesos``) subscribe."""
        self._session = aiohttp.ClientSession()
        self._loops = [
            asyncio.create_task(self._flusher(), name="marathon-flush"),
            asyncio.create_task(self._sender(), name="marathon-mesos-calls"),
            asyncio.create_task(self._ticker(), name="marathon-tick"),
        ]
        await self.carry(self._core.start(self.now()))
        self.mesos = mesos
        if mesos is not None:
            await mesos.start()

    async def stop(self) -> None:
        if self.mesos is not None:
            await self.mesos.close()
        for task in [*self._loops, *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._loops, *self._tasks, return_exceptions=True)
        if self._batch_done is not None and not self._batch_done.done():
            self._batch_done.set_exception(asyncio.CancelledError())
        if self._session is not None:
            await self._session.close()

    # -- Mesos events ---------------------------------------------------------------------------------------

    async def handle(self, ev: ClientEvent) -> None:
        """``MesosClient``'s handler: each event is one core call, decided in stream order (``react``)."""
        if isinstance(ev, sc.Subscribed):
            master = str(ev.master_info.get("hostname") or ev.master_info.get("id") or "")
            await self.react(lambda c, now: (None, c.subscribed(ev.framework_id, now, master)))
        elif isinstance(ev, sc.Offers):
            self._count("offers", len(ev.offers))
            await self.react(lambda c, now: (None, c.offers(ev.offers, now)))
        elif isinstance(ev, sc.Rescind):
            await self.react(lambda c, now: (None, c.rescind(ev.offer_id, now)))
        elif isinstance(ev, sc.Update):
            self._count("status_updates")
            raw = ev.status.raw or _status_json(ev.status)
            await self.react(lambda c, now: (None, c.status_update(raw, now)))
        elif isinstance(ev, Disconnected):
            await self.react(lambda c, now: (None, c.disconnected(now)))
        elif isinstance(ev, sc.Failure):
            log.warning(
                "Mesos FAILURE: agent %s executor %s status %s", ev.agent_id, ev.executor_id, ev.status
            )
        elif isinstance(ev, sc.Error):
            log.error("Mesos ERROR: %s", ev.message)

    # -- the flusher ----------------------------------------------------------------------------------------

    async def _flusher(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, done = self._batch, self._batch_done
            self._batch, self._batch_done = [], None
            if not batch or done is None:
                continue
            try:
                await self._flush(ordered(batch))
            except Exception as exc:  # the store failed: nothing more may be decided in this term
                log.error("store write failed, stepping down: %s", exc)
                self.failure = exc
                self.failed.set()
                done.set_exception(exc)
                done.exception()  # marked retrieved: Mesos events' decisions do not wait for it
                return
            done.set_result(None)

    async def _flush(self, outputs: list[Output]) -> None:
        """The writes (pipelined on the one session, in call order: the root on its own, the other writes
        between roots batched); then, in decision order, events and probes at once and the Mesos calls to
        the sender."""
        writes: list[Awaitable[None]] = []
        docs: list[tuple[str, str, Any]] = []
        for out in outputs:
            if isinstance(out, SaveRoot):
                if docs:
                    writes.append(self.store.write_docs(docs))
                    docs = []
                writes.append(self.store.save_root(dict(out.root), out.apps_changed))
            elif isinstance(out, PERSISTS):
                docs.append(_doc_change(out))
        if docs:
            writes.append(self.store.write_docs(docs))
        await asyncio.gather(*writes)
        for out in outputs:
            if isinstance(out, Event | Probe | ReadinessProbe):
                self._act(out)
            elif not isinstance(out, PERSISTS):
                self._calls.append(out)
                self._calls_wake.set()
        if len(self._calls) > MAX_CALLS_BEHIND:
            self._calls_caught_up.clear()

    async def _sender(self) -> None:
        """Mesos calls one after the other; a run of acknowledgements or of ACCEPTs together."""
        while True:
            await self._calls_wake.wait()
            self._calls_wake.clear()
            while self._calls:
                run = [self._calls.popleft()]
                while (
                    self._calls
                    and len(run) < MAX_PARALLEL_CALLS
                    and isinstance(run[0], Ack | Launch)
                    and type(self._calls[0]) is type(run[0])
                ):
                    run.append(self._calls.popleft())
                if len(self._calls) <= MAX_CALLS_BEHIND // 2:
                    self._calls_caught_up.set()
                await asyncio.gather(*(self._send(_mesos_call(out), out) for out in run))

    def _act(self, out: Event | Probe | ReadinessProbe) -> None:
        if isinstance(out, Event):
            self.bus.publish(out.event, out.full)
        elif isinstance(out, Probe):
            self._spawn(self._probe(out))
        else:
            self._spawn(self._readiness(out))

    async def _send(self, call: dict[str, Any] | None, out: Output) -> None:
        mesos = self.mesos
        if mesos is None or call is None:
            return
        try:
            await mesos.call(call)
            self._count(f"calls.{call['type'].lower()}")
        except (MesosError, aiohttp.ClientError, OSError, TimeoutError) as e:
            log.warning("%s not sent: %s", call.get("type"), e)
            if isinstance(out, Launch):
                self._count("launch_failures")

    # -- timers and probes ----------------------------------------------------------------------------------

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            await self.decide(lambda c, now: (None, c.tick(now)))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _probe(self, p: Probe) -> None:
        async with self._probe_slots:
            try:
                result = await probes.probe(p.check, p.host, p.port, self._session)
            except ValueError as e:
                result = Result(False, str(e))
        await self.decide(lambda c, now: (None, c.health_result(p.instance_id, p.check_index, result, now)))

    async def _readiness(self, p: ReadinessProbe) -> None:
        async with self._probe_slots:
            assert self._session is not None
            ready, answer = await probes.readiness(p.check, p.host, p.port, self._session)
        await self.decide(lambda c, now: (None, c.readiness_result(p.instance_id, ready, now, answer)))

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n


def _mesos_call(out: Output) -> dict[str, Any] | None:
    """The v1 call of a Mesos output (``paas_common.schedapi``), None for an acknowledgement not needed."""
    if isinstance(out, Launch):
        return sc.accept(out.offer_ids, [sc.launch(out.task_infos)], out.refuse_seconds)
    if isinstance(out, Decline):
        return sc.decline(out.offer_ids, out.refuse_seconds)
    if isinstance(out, Kill):
        return sc.kill(out.task_id, out.agent_id, out.grace_period_seconds)
    if isinstance(out, Revive):
        return sc.revive(out.roles)
    if isinstance(out, Suppress):
        return sc.suppress(out.roles)
    if isinstance(out, Reconcile):
        tasks = out.tasks
        return sc.reconcile((t["task_id"]["value"], (t.get("agent_id") or {}).get("value")) for t in tasks)
    if isinstance(out, Ack):
        return sc.acknowledgement(sc.task_status(out.status))
    return None


def _doc_change(out: Persist) -> tuple[str, str, Any]:
    """A write other than the root as ``ZkStore.write_docs`` takes it: (category, key, doc or None)."""
    if isinstance(out, SaveDeployment):
        return "deployment", out.id, out.doc
    if isinstance(out, DeleteDeployment):
        return "deployment", out.id, None
    if isinstance(out, SaveInstance):
        return "instance", out.id, out.doc
    if isinstance(out, DeleteInstance):
        return "instance", out.id, None
    assert isinstance(out, SaveTaskFailure), out
    return "taskFailure", out.app_id, out.doc


def _status_json(status: sc.TaskStatus) -> dict[str, Any]:
    doc: dict[str, Any] = {"task_id": {"value": status.task_id}, "state": status.state}
    if status.agent_id:
        doc["agent_id"] = {"value": status.agent_id}
    for key in ("uuid", "source", "reason", "message", "healthy", "timestamp"):
        value = getattr(status, key)
        if value is not None:
            doc[key] = value
    return doc


def core_from_store(store: ZkStore, config: CoreConfig, rng: random.Random | None = None) -> MarathonCore:
    """A new leader's core, built from nothing but what ``store.load()`` read (reference §8): the current
    root, the running deployments (their roots resolved from the stored versions), the instances and the
    last task failures; older app versions are looked up in the store when an instance still runs one."""

    def resolve(version: str | None) -> dict[str, Any]:
        if version is None:
            return {"id": "/"}
        root = store.root(version)
        if root is None:
            raise CorruptNode(f"a deployment refers to root version {version}, which is gone")
        return root

    plans = []
    for deployment_id, doc in store.deployments().items():
        try:
            plans.append(load_plan(json.dumps(doc).encode(), resolve))
        except (CorruptNode, KeyError, ValueError) as e:  # Marathon drops a plan it cannot resolve
            log.error("dropping stored deployment %s: %s", deployment_id, e)
    return MarathonCore(
        store.root(),
        plans,
        [instance_of_doc(doc) for doc in store.instances().values()],
        dict(store.task_failures()),
        config=config,
        rng=rng or random.Random(),
        app_versions=store.app,
    )
