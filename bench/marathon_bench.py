"""marathon_py at scale, beside Marathon's published figures (reference §10).

Real processes on loopback — zk_py, master-py, marathon-py — and simulated Mesos agents (``simagents``,
tasks are records, as Marathon's own scale tests use a fake executor).  Three measurements:

1. one app with ``--instances`` (500) instances: POST → ``GET /v2/apps/ID`` shows them all running and no
   deployment (Marathon 1.4.2 took 38.5 s on 5 agents; goal ≤ 10 s); the app is then deleted;
2. ``--apps`` (10,000) single-instance apps POSTed by ``--clients`` (100) concurrent clients (Marathon's
   continuous perf test: same shape, 60 min allowed; goal ≤ 5 min): time until every POST was accepted and
   until every task runs and no deployment is left.  A 403 (``--max_running_deployments`` reached) is
   retried after ``RETRY_S``, as a client must; the retries are counted;
3. with those tasks running, ``GET /v2/apps``, ``?embed=apps.tasks`` (marathon-lb) and
   ``?embed=apps.counts`` (the UI): median and p95 of ``--samples`` sequential requests (goal ≤ 200 ms).

marathon-py runs with Marathon's defaults plus the two flags Marathon's own perf CI sets
(``tests/performance/config/docker-compose.yml``): ``--max_instances_per_offer 500`` and
``--max_running_deployments 10000`` (``--marathon-flag`` adds more; a later flag wins).  Every process is
killed at the end, also on failure or SIGTERM.  Exit status 0 when every phase completed (goals met or
not), 1 otherwise.

    .venv/bin/python bench/marathon_bench.py                 # the full run (a few minutes)
    .venv/bin/python bench/marathon_bench.py --quick         # smoke: 200 apps, 50 instances, < 1 min
    .venv/bin/python bench/marathon_bench.py --profile DIR   # also py-spy marathon-py (needs py-spy)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(REPO_ROOT))

from bench.simagents import SimCluster  # noqa: E402
from tests.support.marathons import MarathonProc  # noqa: E402
from tests.support.masters import MasterProc  # noqa: E402
from tests.support.servers import ZkServer  # noqa: E402

# Marathon's figures (reference §10) and the goals of issue 5.
MARATHON_500_S = 38.5  # 1 app → 500 instances, Marathon 1.4.2 shakedown scale test
MARATHON_NAPPS_LIMIT_S = 3600.0  # perf CI: 10,000 apps x 1 with 100 parallel requests, 60 min allowed
GOAL_INSTANCES_S, GOAL_APPS_S, GOAL_LIST_MS = 10.0, 300.0, 200.0
FULL_INSTANCES, FULL_APPS = 500, 10_000  # the goals are judged at these sizes only

APP = {  # policies/test-continuous-n-apps.yml, without the fake executor
    "cmd": "sleep infinity",
    "cpus": 0.005,
    "mem": 32,
    "disk": 0,
    "instances": 1,
    "backoffFactor": 1.0,
    "backoffSeconds": 0,
}
BIG_APP_ID = "/bench/big"
APPS_GROUP = "/bench/apps"
PERF_CI_FLAGS = ("--max_instances_per_offer", "500", "--max_running_deployments", "10000")
RETRY_S = 0.2  # a client's pause after 403 (too many deployments) or 503 (no leader yet)
POLL_S = 0.2  # the big app's status (its figure is seconds)
IDLE_POLL_S = 0.5  # GET /v2/deployments renders every running plan: polled only once the agents run all
HTTP_TIMEOUT = 60.0
LISTS = ("/v2/apps", "/v2/apps?embed=apps.tasks", "/v2/apps?embed=apps.counts")


@dataclass
class Results:
    agents: int
    instances: int
    apps: int
    clients: int
    instances_s: float | None = None
    apps_accepted_s: float | None = None
    apps_running_s: float | None = None
    retries_403: int = 0
    tasks_running: int = 0
    lists: dict[str, dict[str, float]] = field(default_factory=dict)  # path → median/p95 ms, bytes
    error: str | None = None


class BenchError(RuntimeError):
    """A phase failed or did not finish in time."""


# -------------------------------------------------------------------- processes


@contextlib.contextmanager
def stack(workdir: Path, marathon_flags: tuple[str, ...]) -> Iterator[tuple[MasterProc, MarathonProc]]:
    """zk_py, master-py (elected through it) and a leading marathon-py; all killed on the way out."""
    zk = ZkServer("zk_py", workdir / "zk")
    master = MasterProc(workdir / "master")
    marathon: MarathonProc | None = None
    try:
        zk.start()
        master.zk = f"zk://{zk.hosts}/mesos"
        master.start()
        marathon = MarathonProc(
            workdir / "marathon",
            zk=f"zk://{zk.hosts}/marathon",
            master=master.zk,
            flags=marathon_flags,
            fast=False,  # Marathon's defaults, then PERF_CI_FLAGS and the caller's
        )
        marathon.start()
        marathon.wait_leading()
        yield master, marathon
    finally:
        if marathon is not None:
            marathon.kill()
        master.kill()
        zk.kill()


@contextlib.contextmanager
def profiling(pid: int, out: Path | None) -> Iterator[None]:
    """py-spy records ``pid`` while the block runs (a flame graph SVG and raw collapsed stacks)."""
    if out is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out.mkdir(parents=True, exist_ok=True)
    argv = [spy, "record", "--pid", str(pid), "--rate", "50", "--format", "raw", "-o", str(out / "raw.txt")]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# -------------------------------------------------------------------- the API client


class Api:
    """A few Marathon calls on one keep-alive session; each answer's status and parsed body."""

    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base = base
        self.http = http

    async def call(self, method: str, path: str, doc: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, self.base + path, json=doc) as resp:
            raw = await resp.read()
            return resp.status, (json.loads(raw) if raw else None)

    async def get(self, path: str) -> Any:
        status, body = await self.call("GET", path)
        if status != 200:
            raise BenchError(f"GET {path}: {status} {body}")
        return body

    async def post_app(self, app: dict[str, Any], deadline: float) -> int:
        """POST one app until accepted; the number of 403/503 retries it took."""
        retries = 0
        while True:
            status, body = await self.call("POST", "/v2/apps", app)
            if status == 201:
                return retries
            if status not in (403, 503) or time.monotonic() > deadline:
                raise BenchError(f"POST {app['id']}: {status} {body}")
            retries += 1
            await asyncio.sleep(RETRY_S)

    async def idle(self) -> bool:
        return await self.get("/v2/deployments") == []


async def until(
    what: str, check: Callable[[], Awaitable[bool]], deadline: float, every: float = POLL_S
) -> None:
    while not await check():
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not reached in time")
        await asyncio.sleep(every)


# -------------------------------------------------------------------- the phases


async def one_app(api: Api, cluster: SimCluster, n: int, timeout: float) -> float:
    """POST one app with ``n`` instances; seconds until the API shows all running and no deployment."""
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    status, body = await api.call("POST", "/v2/apps", {**APP, "id": BIG_APP_ID, "instances": n})
    if status != 201:
        raise BenchError(f"POST {BIG_APP_ID}: {status} {body}")
    await cluster.wait_running(n, timeout)  # the agents' view first: polling costs the leader nothing

    async def shown() -> bool:
        app = (await api.get(f"/v2/apps{BIG_APP_ID}"))["app"]
        return bool(app["tasksRunning"] == n and not app["deployments"])

    await until(f"{n} instances shown running", shown, deadline)
    elapsed = time.monotonic() - t0
    status, body = await api.call("DELETE", f"/v2/apps{BIG_APP_ID}")
    if status != 200:
        raise BenchError(f"DELETE {BIG_APP_ID}: {status} {body}")
    await cluster.wait_until(lambda: cluster.running == 0, timeout, "the big app's tasks killed")
    await until("the delete deployed", api.idle, deadline + timeout, IDLE_POLL_S)
    return elapsed


async def many_apps(
    api: Api, cluster: SimCluster, n: int, clients: int, timeout: float
) -> tuple[float, float, int]:
    """POST ``n`` single-instance apps from ``clients`` workers: (seconds to all accepted, seconds to all
    running with no deployment left, 403/503 retries)."""
    deadline = time.monotonic() + timeout
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    retries = 0

    async def worker() -> None:
        nonlocal retries
        while not queue.empty():
            i = queue.get_nowait()
            retries += await api.post_app({**APP, "id": f"{APPS_GROUP}/app-{i:05d}"}, deadline)

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(clients)))
    accepted = time.monotonic() - t0
    await cluster.wait_running(n, max(deadline - time.monotonic(), 1.0))
    await until("every deployment finished", api.idle, deadline, IDLE_POLL_S)
    return accepted, time.monotonic() - t0, retries


async def list_latency(api: Api, path: str, samples: int) -> dict[str, float]:
    """Median and p95 (ms) of ``samples`` sequential GETs of ``path`` after one warm-up; answer size."""
    size = len(json.dumps(await api.get(path)))
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        async with api.http.get(api.base + path) as resp:
            await resp.read()
            if resp.status != 200:
                raise BenchError(f"GET {path}: {resp.status}")
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return {"median_ms": statistics.median(times), "p95_ms": p95, "bytes": float(size)}


async def measure(args: argparse.Namespace, master: MasterProc, marathon: MarathonProc, res: Results) -> None:
    resources = f"cpus:{args.agent_cpus};mem:{args.agent_mem};disk:1000;ports:[31000-32000]"
    async with (
        SimCluster(master.url, args.agents, resources=resources, ready_timeout=args.timeout) as cluster,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT),
            headers={"Accept": "application/json"},
        ) as http,
    ):
        api = Api(marathon.url, http)
        log(f"{args.agents} agents up; 1 app x {args.instances} instances")
        res.instances_s = await one_app(api, cluster, args.instances, args.timeout)
        log(f"  {res.instances_s:.2f} s; {args.apps} apps from {args.clients} clients")
        accepted, running, res.retries_403 = await many_apps(
            api, cluster, args.apps, args.clients, args.timeout
        )
        res.apps_accepted_s, res.apps_running_s = accepted, running
        log(f"  accepted in {accepted:.1f} s, running in {running:.1f} s; GET latencies")
        counted = await api.get("/v2/apps?embed=apps.counts")
        res.tasks_running = sum(a["tasksRunning"] for a in counted["apps"])
        if res.tasks_running != args.apps:
            raise BenchError(f"the API shows {res.tasks_running} tasks running, not {args.apps}")
        for path in LISTS:
            res.lists[path] = await list_latency(api, path, args.samples)


# -------------------------------------------------------------------- report


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _goal(value: float | None, goal: float, judged: bool) -> str:
    if value is None:
        return "failed"
    if not judged:
        return f"n/a (goal at full size: <= {goal:g})"
    return f"{'ok' if value <= goal else 'MISSED'} (<= {goal:g})"


def table(res: Results) -> str:
    full_i, full_a = res.instances == FULL_INSTANCES, res.apps == FULL_APPS

    def secs(v: float | None) -> str:
        return "—" if v is None else f"{v:.2f} s"

    def ratio(v: float | None, ref: float) -> str:
        return "—" if v is None else f"{v / ref:.3f}"

    rows = [
        "| measurement | marathon_py | Marathon | ours / Marathon | goal |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| 1 app x {res.instances} instances → running | {secs(res.instances_s)} | "
        f"{MARATHON_500_S:g} s (1.4.2, 500) | {ratio(res.instances_s, MARATHON_500_S) if full_i else '—'} | "
        f"{_goal(res.instances_s, GOAL_INSTANCES_S, full_i)} |",
        f"| {res.apps} apps x 1, {res.clients} clients: all POSTs accepted | {secs(res.apps_accepted_s)} | "
        "— | — | |",
        f"| {res.apps} apps x 1: all running, no deployment | {secs(res.apps_running_s)} | "
        f"< {MARATHON_NAPPS_LIMIT_S / 60:g} min (perf CI limit) | "
        f"{ratio(res.apps_running_s, MARATHON_NAPPS_LIMIT_S) if full_a else '—'} | "
        f"{_goal(res.apps_running_s, GOAL_APPS_S, full_a)} |",
    ]
    for path, f in res.lists.items():
        rows.append(
            f"| `GET {path}`, {res.tasks_running} tasks: median / p95 | {f['median_ms']:.0f} / "
            f"{f['p95_ms']:.0f} ms ({f['bytes'] / 1e6:.1f} MB) | 12 s with 1,000 tasks (#1274) | — | "
            f"{_goal(f['median_ms'], GOAL_LIST_MS, full_a)} |"
        )
    return "\n".join(rows)


# -------------------------------------------------------------------- main


def _flags(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--instances", type=int, default=FULL_INSTANCES, help="instances of the one big app")
    p.add_argument("--apps", type=int, default=FULL_APPS, help="single-instance apps")
    p.add_argument("--clients", type=int, default=100, help="concurrent API clients posting them")
    p.add_argument("--agents", type=int, default=100, help="simulated agents")
    p.add_argument("--agent-cpus", type=float, default=8.0)
    p.add_argument("--agent-mem", type=int, default=16384)
    p.add_argument("--samples", type=int, default=20, help="GETs per list measurement")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per phase")
    p.add_argument("--quick", action="store_true", help="200 apps, 50 instances, 10 agents, 5 samples")
    p.add_argument("--marathon-flag", action="append", default=[], help="extra marathon-py flag (repeat)")
    p.add_argument("--profile", type=Path, help="py-spy record marathon-py into this directory")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    if args.quick:
        args.instances, args.apps, args.agents, args.samples, args.timeout = 50, 200, 10, 5, 120.0
    return args


def _sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that kill the processes


def main(argv: list[str] | None = None) -> int:
    args = _flags(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    res = Results(args.agents, args.instances, args.apps, args.clients)
    workdir = Path(tempfile.mkdtemp(prefix="marathon-bench-"))
    flags = PERF_CI_FLAGS + tuple(f for flag in args.marathon_flag for f in flag.split(maxsplit=1))
    try:
        with stack(workdir, flags) as (master, marathon):
            assert marathon._proc is not None
            with profiling(marathon._proc.pid, args.profile):
                try:
                    asyncio.run(measure(args, master, marathon, res))
                except (BenchError, TimeoutError, aiohttp.ClientError) as e:
                    res.error = f"{type(e).__name__}: {e}"
                    log(f"FAILED: {res.error}\n--- marathon-py log tail ---\n{marathon.log_tail()}")
    except RuntimeError as e:  # a process did not start
        res.error = str(e)
        log(f"FAILED: {e}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(table(res))
    if args.json:
        args.json.write_text(json.dumps(asdict(res), indent=2) + "\n")
    return 1 if res.error else 0


if __name__ == "__main__":
    sys.exit(main())
