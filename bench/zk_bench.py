"""Side-by-side load benchmark of zk_py and Apache ZooKeeper on this machine.

Both servers run standalone with their default settings (forceSync on, same tickTime) and face the same
client load: ``--procs`` spawned processes, each with its own kazoo client keeping ``--window`` async
requests in flight.  The servers run one after the other so they never compete for the cores; the client
side is identical, so the zk_py/Apache ratio stays meaningful even when the absolute figures are
client-bound.

    .venv/bin/python bench/zk_bench.py                 # both servers, default load
    .venv/bin/python bench/zk_bench.py --quick         # smoke test, well under a minute
    .venv/bin/python bench/zk_bench.py --only apache --json out.json
    .venv/bin/python bench/zk_bench.py --ensemble 3    # 3-server ensembles, client i on member i % 3
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import queue
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient
from kazoo.handlers.threading import AsyncResult, SequentialThreadingHandler

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

KINDS = ("zk_py", "apache")
LOAD_PHASES = ("create", "set", "get", "exists", "multi", "delete")
SYNC_PHASES = ("sync_get", "sync_set")
ALL_PHASES = LOAD_PHASES + SYNC_PHASES
READ_PHASES = frozenset({"get", "exists", "sync_get"})
GOAL_READ = 1.0  # zk_py/Apache throughput ratio the project aims for on reads ...
GOAL_WRITE = 0.7  # ... and on writes
MULTI_OPS = 4  # create + 2 x setData + delete per transaction

STALL_S = 30.0  # no reply for this long means the server is wedged: give up instead of hanging
CONNECT_S = 30.0
SERVER_START_S = 90.0


@dataclass(frozen=True)
class LoadConfig:
    """The load every server gets; identical for both kinds."""

    procs: int = 4
    window: int = 100
    count: int = 20_000  # ops per process per phase (create: nodes per process)
    duration_limit: float = 15.0  # seconds per phase, whichever bound comes first
    value_size: int = 100
    sync_count: int = 2_000  # ops per synchronous latency phase
    warmup: int = 3_000  # untimed ops per process before the first phase (JIT, caches)


@dataclass
class Share:
    """One process's part of one phase; start/end are perf_counter() values, comparable across processes
    on Linux (CLOCK_MONOTONIC), so the phase's wall time is max(end) - min(start)."""

    ops: int
    errors: int
    start: float
    end: float
    lat: bytes  # array('d') of request->completion seconds


@dataclass
class PhaseStats:
    ops: int
    errors: int
    seconds: float
    ops_per_s: float
    p50_ms: float
    p99_ms: float


# --------------------------------------------------------------------------------------------- client side


class _TimedResult(AsyncResult):  # type: ignore[misc]
    """A kazoo result that reports its own completion to the window that armed it.

    Reporting from ``set`` itself (in kazoo's reader thread) instead of via ``rawlink`` saves a hop through
    kazoo's callback queue per op, which is most of what makes a Python client the bottleneck.
    """

    def __init__(self, handler: _TimingHandler) -> None:
        super().__init__(handler)
        self.window, handler.armed = handler.armed, None  # only the first result an API call creates
        self.t0 = time.perf_counter()

    def set(self, value: Any = None) -> None:
        if self.window is not None:
            self.window.done(self.t0, self.window.failed is not None and self.window.failed(value))
        super().set(value)

    def set_exception(self, exception: BaseException) -> None:
        if self.window is not None:
            self.window.done(self.t0, True)
        super().set_exception(exception)


class _TimingHandler(SequentialThreadingHandler):  # type: ignore[misc]
    """kazoo's threading handler, handing out results that time themselves while a window is armed.

    An API call may create several results (``create_async`` wraps an inner one); the first one created is
    the one returned to the caller, so that is the one timed.
    """

    armed: _Window | None = None

    def async_result(self) -> _TimedResult:
        return _TimedResult(self)


class _Window:
    """Keeps up to ``size`` async kazoo requests in flight and records request->completion per op.

    The issuer tops the window up in batches (whenever a quarter of it has completed) rather than per reply:
    one thread wake-up per batch instead of per op cuts the client's CPU per op by about a third, so the
    server, not the Python client, gets more of the machine.  In-flight requests stay between 3/4 and all of
    ``size``.
    """

    def __init__(
        self, handler: _TimingHandler, size: int, stop: Any, failed: Callable[[Any], bool] | None = None
    ) -> None:
        self.size = size
        self.refill_at = size - max(1, size // 4)
        self.failed = failed
        self._handler = handler
        self._cv = threading.Condition(threading.Lock())
        self._inflight = 0
        self._stop = stop
        self.lat = array("d")
        self.errors = 0
        self.last = 0.0

    def done(self, t0: float, error: bool) -> None:
        now = time.perf_counter()
        self.lat.append(now - t0)
        if error:
            self.errors += 1
        self.last = now
        with self._cv:
            self._inflight -= 1
            if self._inflight == self.refill_at or self._inflight == 0:
                self._cv.notify()

    def _wait(self, most: int, what: str) -> None:
        """Block (holding the condition) until at most ``most`` requests are in flight."""
        while self._inflight > most:
            if not self._cv.wait(timeout=STALL_S):
                raise TimeoutError(f"{what}: no reply within {STALL_S:.0f}s, {self._inflight} in flight")

    def run(self, issue: Callable[[int], Any], n: int, deadline: float) -> Share:
        start = time.perf_counter()
        issued = 0
        handler = self._handler
        try:
            while issued < n and time.perf_counter() < deadline and not self._stop.is_set():
                with self._cv:
                    self._wait(self.refill_at, "window")
                    batch = min(self.size - self._inflight, n - issued)
                    self._inflight += batch
                for _ in range(batch):
                    handler.armed = self
                    issue(issued)
                    issued += 1
        finally:
            handler.armed = None
        with self._cv:
            self._wait(0, "drain")  # every completion recorded
        end = self.last if issued else time.perf_counter()
        return Share(issued, self.errors, start, end, self.lat.tobytes())


def _txn_failed(value: Any) -> bool:
    return any(isinstance(r, Exception) for r in value or ())


def _connect(hosts: str) -> Any:
    client = KazooClient(hosts=hosts, timeout=30.0, handler=_TimingHandler())
    client.start(timeout=CONNECT_S)
    return client


def _close(client: Any) -> None:
    try:
        client.stop()
        client.close()
    except Exception:
        pass


def _issuer(
    name: str, client: Any, base: str, paths: list[str], value: bytes, created: int, count: int
) -> tuple[Callable[[int], Any], int, Callable[[Any], bool] | None]:
    """What one load phase sends: (issue op i, how many ops, how to spot a failed reply value)."""
    m = max(created, 1)  # set/get/exists/multi cycle over the nodes this process created
    if name == "create":
        return (lambda i: client.create_async(paths[i], value)), count, None
    if name == "set":
        return (lambda i: client.set_async(paths[i % m], value)), count, None
    if name == "get":
        return (lambda i: client.get_async(paths[i % m])), count, None
    if name == "exists":
        return (lambda i: client.exists_async(paths[i % m])), count, None
    if name == "delete":
        return (lambda i: client.delete_async(paths[i])), created, None
    if name == "multi":

        def txn(i: int) -> Any:
            t = client.transaction()
            scratch = f"{base}/m{i:08d}"
            t.create(scratch, value)
            t.set_data(paths[i % m], value)
            t.set_data(paths[(i + 1) % m], value)
            t.delete(scratch)
            return t.commit_async()

        return txn, count, _txn_failed
    raise ValueError(f"unknown phase {name!r}")


def _load_worker(idx: int, hosts: str, root: str, cfg: LoadConfig, barrier: Any, stop: Any, out: Any) -> None:
    """One client process: all load phases in order, in lock-step with the others via ``barrier``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and tells us via ``stop``
    shares: dict[str, Share] = {}
    error: str | None = None
    client: Any = None
    try:
        client = _connect(hosts)
        base = f"{root}/w{idx}"
        client.ensure_path(base)
        value = b"v" * cfg.value_size
        paths = [f"{base}/n{i:08d}" for i in range(cfg.count)]
        warm = f"{base}/warm"
        client.create(warm, value)

        def window(failed: Callable[[Any], bool] | None = None) -> _Window:
            return _Window(client.handler, cfg.window, stop, failed)

        barrier.wait()
        half = cfg.warmup // 2
        warm_deadline = time.perf_counter() + cfg.duration_limit
        window().run(lambda i: client.set_async(warm, value), half, warm_deadline)
        window().run(lambda i: client.get_async(warm), half, warm_deadline)

        created = 0
        for name in LOAD_PHASES:
            barrier.wait()
            deadline = time.perf_counter() + cfg.duration_limit
            issue, n, failed = _issuer(name, client, base, paths, value, created, cfg.count)
            share = window(failed).run(issue, n, deadline)
            if name == "create":
                created = share.ops
            shares[name] = share
    except Exception as e:
        error = f"load worker {idx}: {type(e).__name__}: {e}"
        barrier.abort()  # release the others instead of letting them wait for the barrier timeout
    finally:
        if client is not None:
            _close(client)
        out.put((idx, shares, error))


def _sync_worker(hosts: str, root: str, cfg: LoadConfig, stop: Any, out: Any) -> None:
    """A single synchronous client: the latency an idle server gives one caller."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    shares: dict[str, Share] = {}
    error: str | None = None
    client: Any = None
    try:
        client = _connect(hosts)
        value = b"s" * cfg.value_size
        path = f"{root}/sync"
        client.create(path, value, makepath=True)
        for _ in range(min(cfg.sync_count, 200)):
            client.set(path, value)
            client.get(path)
        ops: dict[str, Callable[[], Any]] = {
            "sync_get": lambda: client.get(path),
            "sync_set": lambda: client.set(path, value),
        }
        for name in SYNC_PHASES:
            op = ops[name]
            lat = array("d")
            start = time.perf_counter()
            deadline = start + cfg.duration_limit
            for i in range(cfg.sync_count):
                if i & 0x3F == 0 and (time.perf_counter() >= deadline or stop.is_set()):
                    break
                t0 = time.perf_counter()
                op()
                lat.append(time.perf_counter() - t0)
            shares[name] = Share(len(lat), 0, start, time.perf_counter(), lat.tobytes())
    except Exception as e:
        error = f"sync worker: {type(e).__name__}: {e}"
    finally:
        if client is not None:
            _close(client)
        out.put((-1, shares, error))


# --------------------------------------------------------------------------------------------- driver side


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = math.ceil(q / 100.0 * len(sorted_values))
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


def merge(shares: list[Share]) -> PhaseStats:
    """Combine the processes' shares of a phase: total ops over the phase's wall time, pooled latencies."""
    lat: list[float] = []
    for s in shares:
        a = array("d")
        a.frombytes(s.lat)
        lat.extend(a)
    lat.sort()
    ops = sum(s.ops for s in shares)
    active = [s for s in shares if s.ops]
    seconds = (max(s.end for s in active) - min(s.start for s in active)) if active else 0.0
    return PhaseStats(
        ops=ops,
        errors=sum(s.errors for s in shares),
        seconds=round(seconds, 4),
        ops_per_s=round(ops / seconds, 1) if seconds > 0 else 0.0,
        p50_ms=round(percentile(lat, 50) * 1e3, 3),
        p99_ms=round(percentile(lat, 99) * 1e3, 3),
    )


def _collect(
    procs: list[Any], out: Any, expected: int, timeout: float
) -> list[tuple[int, dict[str, Share], str | None]]:
    """Read one result per worker; bounded in time, and noticing workers that died without reporting."""
    results: list[tuple[int, dict[str, Share], str | None]] = []
    deadline = time.monotonic() + timeout
    idle_since: float | None = None
    while len(results) < expected:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"benchmark workers did not finish within {timeout:.0f}s")
        try:
            results.append(out.get(timeout=min(1.0, remaining)))
            idle_since = None
        except queue.Empty:
            if all(not p.is_alive() for p in procs):
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 3.0:
                    codes = [p.exitcode for p in procs]
                    raise RuntimeError(
                        f"benchmark workers exited without reporting (exit codes {codes})"
                    ) from None
    return results


def _stop_procs(procs: list[Any], out: Any, grace: float = 15.0) -> None:
    """End our own workers: let them finish while draining ``out`` (a worker blocks at exit until its
    queued results are read), then SIGTERM/SIGKILL only those that do not."""
    deadline = time.monotonic() + grace
    while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
        with suppress(queue.Empty):
            out.get(timeout=0.1)
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join(timeout=5)
        if p.is_alive():
            p.kill()
        p.join(timeout=5)


def _phase_bound(cfg: LoadConfig) -> float:
    """Upper bound for a whole run of one server's load phases, for the collector's timeout."""
    return CONNECT_S + (len(LOAD_PHASES) + 1) * (cfg.duration_limit + 2 * STALL_S) + 30.0


def drive(members: list[str], cfg: LoadConfig, log: Callable[[str], None]) -> dict[str, PhaseStats]:
    """Run all phases against running server(s) and return per-phase stats.

    Load process i talks to ``members[i % len(members)]`` (one entry for a standalone server; one per
    ensemble member, so reads spread over the members and writes are forwarded to the leader); the
    synchronous-latency client talks to the first.
    """
    root = f"/bench/run-{os.getpid()}-{time.time_ns()}"  # own subtree: a reused server never collides
    ctx = mp.get_context("spawn")  # fresh interpreters: no inherited threads or sockets
    out = ctx.Queue()
    stop = ctx.Event()
    barrier = ctx.Barrier(cfg.procs, timeout=cfg.duration_limit + 2 * STALL_S + CONNECT_S)
    procs = [
        ctx.Process(
            target=_load_worker,
            args=(i, members[i % len(members)], root, cfg, barrier, stop, out),
            name=f"zkbench-load-{i}",
        )
        for i in range(cfg.procs)
    ]
    procs.append(
        ctx.Process(target=_sync_worker, args=(members[0], root, cfg, stop, out), name="zkbench-sync")
    )
    try:
        for p in procs[:-1]:
            p.daemon = True
            p.start()
        results = _collect(procs[:-1], out, cfg.procs, _phase_bound(cfg))
        errors = [e for _, _, e in results if e]
        if errors:
            raise RuntimeError("; ".join(errors))
        stats = {name: merge([r[1][name] for r in results if name in r[1]]) for name in LOAD_PHASES}
        procs[-1].daemon = True
        procs[-1].start()
        ((_, shares, error),) = _collect(procs[-1:], out, 1, CONNECT_S + 2 * cfg.duration_limit + STALL_S)
        if error:
            raise RuntimeError(error)
        stats.update({name: merge([shares[name]]) for name in SYNC_PHASES})
        for name in ALL_PHASES:
            s = stats[name]
            log(
                f"  {name:<9} {s.ops:>8} ops in {s.seconds:6.2f}s  {s.ops_per_s:>9.0f} ops/s  "
                f"p50 {s.p50_ms:7.2f} ms  p99 {s.p99_ms:7.2f} ms"
                + (f"  ERRORS {s.errors}" if s.errors else "")
            )
        return stats
    finally:
        stop.set()
        barrier.abort()
        _stop_procs([p for p in procs if p.pid is not None], out)
        out.close()
        out.join_thread()


@contextmanager
def _server(
    kind: str, workroot: Path | None, log: Callable[[str], None], ensemble: int = 0
) -> Iterator[list[str]]:
    """Fresh server(s) of ``kind`` in a scratch directory, stopped and removed whatever happens.

    ``ensemble`` > 0: that many voters with upstream's default timing (tickTime 2000, initLimit 10,
    syncLimit 5), each on its own loopback address; yields one connection string per member.
    """
    from tests.support.servers import ZkServer

    workdir = Path(tempfile.mkdtemp(prefix=f"zkbench-{kind}-", dir=workroot))
    try:
        if ensemble:
            with _ensemble(kind, workdir, ensemble, log) as members:
                yield members
            return
        srv = ZkServer(kind, workdir)
        try:
            srv.start(timeout=SERVER_START_S)  # its error message already carries the log tail
            try:
                yield [srv.hosts]
            except Exception:
                log(srv.log_tail(20))
                raise
        finally:
            srv.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def _ensemble(kind: str, workdir: Path, voters: int, log: Callable[[str], None]) -> Iterator[list[str]]:
    from tests.support.ensemble import Ensemble

    timing = {"tickTime": "2000", "initLimit": "10", "syncLimit": "5"}
    with Ensemble(kind, workdir, voters=voters, extra_cfg=timing) as ens:
        ens.start(timeout=SERVER_START_S)
        log(f"[{kind}] ensemble modes: {ens.modes()}")
        yield [ens.member(sid).hosts for sid in sorted(ens.members)]


def machine_info() -> dict[str, Any]:
    mem_kb = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "mem_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, PhaseStats]]:
    """Median per kind and phase over the repeats (each figure separately)."""
    out: dict[str, dict[str, PhaseStats]] = {}
    for kind in KINDS:
        mine = [r["phases"] for r in runs if r["kind"] == kind]
        if not mine:
            continue
        out[kind] = {}
        for name in ALL_PHASES:
            ps = [m[name] for m in mine]
            out[kind][name] = PhaseStats(
                ops=int(statistics.median(p.ops for p in ps)),
                errors=sum(p.errors for p in ps),
                seconds=round(statistics.median(p.seconds for p in ps), 4),
                ops_per_s=round(statistics.median(p.ops_per_s for p in ps), 1),
                p50_ms=round(statistics.median(p.p50_ms for p in ps), 3),
                p99_ms=round(statistics.median(p.p99_ms for p in ps), 3),
            )
    return out


def _label(name: str) -> str:
    return f"{name} (x{MULTI_OPS})" if name == "multi" else name


def ratio(name: str, zk: PhaseStats, ap: PhaseStats) -> float | None:
    """zk_py relative to Apache, > 1 = zk_py faster: ops/s for the load phases; for the single-client
    ``sync_*`` phases Apache p50 / zk_py p50, since their ops/s (1/mean) is swayed by a few stalls caused by
    whatever else runs on the machine."""
    if name in SYNC_PHASES:
        return ap.p50_ms / zk.p50_ms if zk.p50_ms > 0 else None
    return zk.ops_per_s / ap.ops_per_s if ap.ops_per_s > 0 else None


def ratios(summary: dict[str, dict[str, PhaseStats]]) -> dict[str, float]:
    zk, ap = summary.get("zk_py"), summary.get("apache")
    if not zk or not ap:
        return {}
    out = {name: ratio(name, zk[name], ap[name]) for name in ALL_PHASES}
    return {k: round(v, 3) for k, v in out.items() if v is not None}


def format_table(summary: dict[str, dict[str, PhaseStats]], markdown: bool = False) -> str:
    """The side-by-side table with the ratio (see ``ratio``) and the goal: reads >= 1.0, writes >= 0.7."""
    zk, ap = summary.get("zk_py"), summary.get("apache")
    rs = ratios(summary)
    head = ["op", "zk_py ops/s", "Apache ops/s", "ratio", "goal", "zk_py p50/p99 ms", "Apache p50/p99 ms"]
    rows: list[list[str]] = []
    for name in ALL_PHASES:
        z = zk[name] if zk else None
        a = ap[name] if ap else None
        ratio_s = goal = "-"
        if name in rs:
            target = GOAL_READ if name in READ_PHASES else GOAL_WRITE
            ratio_s, goal = f"{rs[name]:.2f}", ("ok" if rs[name] >= target else "MISS") + f" (>={target:g})"

        def cell(s: PhaseStats | None) -> tuple[str, str]:
            if s is None:
                return "-", "-"
            err = f" ({s.errors} err)" if s.errors else ""
            return f"{s.ops_per_s:,.0f}{err}", f"{s.p50_ms:.2f} / {s.p99_ms:.2f}"

        (zo, zl), (ao, al) = cell(z), cell(a)
        rows.append([_label(name), zo, ao, ratio_s, goal, zl, al])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*r) for r in [head, *rows])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    d = LoadConfig()
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--procs", type=int, default=d.procs, help=f"client processes (default {d.procs})")
    p.add_argument(
        "--window",
        type=int,
        default=d.window,
        help=f"async requests in flight per process (default {d.window})",
    )
    p.add_argument(
        "--count", type=int, default=d.count, help=f"ops per process per phase (default {d.count})"
    )
    p.add_argument(
        "--duration-limit",
        type=float,
        default=d.duration_limit,
        help=f"seconds per phase at most (default {d.duration_limit:g})",
    )
    p.add_argument(
        "--value-size", type=int, default=d.value_size, help=f"bytes per value (default {d.value_size})"
    )
    p.add_argument(
        "--sync-count",
        type=int,
        default=d.sync_count,
        help=f"ops per synchronous latency phase (default {d.sync_count})",
    )
    p.add_argument("--only", choices=KINDS, help="benchmark one server only")
    p.add_argument("--repeat", type=int, default=1, help="runs per server, alternating the order (default 1)")
    p.add_argument("--quick", action="store_true", help="small smoke-test load (well under a minute)")
    p.add_argument("--json", metavar="PATH", help="also write all figures as JSON ('-' = stdout, no table)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--workdir", type=Path, help="parent directory for the servers' scratch data dirs")
    p.add_argument(
        "--ensemble", type=int, default=0, metavar="N", help="run N-server ensembles instead of standalone"
    )
    return p.parse_args(argv)


def config_from(args: argparse.Namespace) -> LoadConfig:
    cfg = LoadConfig(
        procs=args.procs,
        window=args.window,
        count=args.count,
        duration_limit=args.duration_limit,
        value_size=args.value_size,
        sync_count=args.sync_count,
    )
    if args.quick:
        cfg = replace(
            cfg,
            count=min(cfg.count, 1_500),
            duration_limit=min(cfg.duration_limit, 3.0),
            sync_count=min(cfg.sync_count, 300),
            warmup=500,
        )
    if (
        min(cfg.procs, cfg.window, cfg.count, cfg.sync_count) < 1
        or cfg.duration_limit <= 0
        or cfg.value_size < 0
    ):
        raise SystemExit(
            "zk_bench: --procs, --window, --count and --sync-count must be >= 1, "
            "--duration-limit > 0, --value-size >= 0"
        )
    return cfg


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = config_from(args)
    kinds = [args.only] if args.only else list(KINDS)
    to_stdout = args.json == "-"

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    log(
        f"zk_bench: {cfg.procs} procs x window {cfg.window}, {cfg.count} ops/proc/phase, "
        f"limit {cfg.duration_limit:g}s/phase, {cfg.value_size}-byte values, repeat {args.repeat}"
    )
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` cleans up like Ctrl-C does
    runs: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    try:
        for rnd in range(args.repeat):
            order = kinds if rnd % 2 == 0 else kinds[::-1]
            for kind in order:
                load1 = os.getloadavg()[0]  # others' load skews the figures; keep it on record
                log(f"[{kind}] round {rnd + 1}/{args.repeat}: starting server (load average {load1:.2f})")
                t0 = time.monotonic()
                try:
                    with _server(kind, args.workdir, log, args.ensemble) as members:
                        log(f"[{kind}] up at {members} after {time.monotonic() - t0:.1f}s; running load")
                        phases = drive(members, cfg, log)
                        runs.append({"kind": kind, "round": rnd, "load_avg_1m": load1, "phases": phases})
                except Exception as e:  # one server failing must not hide the other's figures
                    log(f"[{kind}] FAILED: {type(e).__name__}: {e}")
                    failures.append({"kind": kind, "round": rnd, "error": f"{type(e).__name__}: {e}"})
    except KeyboardInterrupt:
        log("zk_bench: interrupted; servers and workers stopped")
        return 130
    summary = summarize(runs)
    doc = {
        "machine": machine_info(),
        "config": asdict(cfg),
        "repeat": args.repeat,
        "summary": {k: {n: asdict(s) for n, s in v.items()} for k, v in summary.items()},
        "ratio_zk_py_over_apache": ratios(summary),
        "runs": [{**r, "phases": {n: asdict(s) for n, s in r["phases"].items()}} for r in runs],
        "failures": failures,
    }
    if args.json and not to_stdout:
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    if to_stdout:
        print(json.dumps(doc, indent=2))
    elif not summary:
        print("zk_bench: no server completed a run")
    else:
        print(format_table(summary, markdown=args.markdown))
        print(
            f"\nmulti = transactions/s ({MULTI_OPS} ops each); load p50/p99 include queueing in the "
            f"{cfg.window}-request window; sync_* = one synchronous client, ratio = Apache p50 / zk_py p50."
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
