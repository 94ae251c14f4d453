"""One allocation cycle of master_py's DRF allocator at Mesos' published benchmark shapes.

The shape is upstream's ``HierarchicalAllocator_BENCHMARK_Test.DeclineOffers``
(``src/tests/hierarchical_allocator_tests.cpp``): F frameworks in role ``*``; N agents of
``cpus:24;mem:4096;disk:4096;ports:[31000-32000]``, agent i already running ``cpus:16;mem:2014;disk:1024``
plus 16 port fragments for framework ``i % F``.  The timed step is one ``allocate()`` over every agent,
which offers each agent's free ``cpus:8;mem:2082;disk:3072`` + 15 ports to the framework lowest in DRF
order — the "allocation cycle" of the Mesos 1.7 performance blog (one role, no filtering), whose chart
gives Mesos 1.7.1 at 0.15 s / 1.45 s / 4.4 s for 1k/100, 10k/1k, 20k/2k.  Between repeats the offers
are recovered (untimed), so every repeat starts from the same allocation.

A second column times the round after every offer was declined with ``refuse_seconds`` = INT_MAX (what
DeclineOffers does next): each agent is now filtered by the framework that just declined it.

    .venv/bin/python bench/alloc_bench.py                  # 1k/100, 10k/1k, 20k/2k
    .venv/bin/python bench/alloc_bench.py --quick          # smoke run, a couple of seconds
    .venv/bin/python bench/alloc_bench.py --repeat 7 --markdown --json out.json
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from master_py.allocator import Allocator, Offer  # noqa: E402
from paas_common.resources import Resources  # noqa: E402

# (agents, frameworks, Mesos 1.7.1 seconds read off the 1.7 blog's chart; reference mesos.md §8.6)
SHAPES = [(1000, 100, 0.15), (10000, 1000, 1.45), (20000, 2000, 4.4)]
QUICK_SHAPES = [(200, 20, None), (1000, 100, 0.15)]
GOAL_RATIO = 0.1
INT_MAX = 2**31 - 1

AGENT = Resources.parse("cpus:24;mem:4096;disk:4096;ports:[31000-32000]")
# upstream's fragment([31000-32000], 16): 31000, 31002, …, 31028 and [31030-32000]
_PORTS = ",".join(f"{31000 + 2 * i}-{31000 + 2 * i}" for i in range(15)) + ",31030-32000"
USED = Resources.parse(f"cpus:16;mem:2014;disk:1024;ports:[{_PORTS}]")


@dataclass
class Result:
    agents: int
    frameworks: int
    setup_s: float
    cycle_s: float
    cycle_all_s: list[float]
    filtered_s: float
    offers: int
    mesos_s: float | None

    @property
    def ratio(self) -> float | None:
        return self.cycle_s / self.mesos_s if self.mesos_s else None


def build(agents: int, frameworks: int) -> Allocator:
    alloc = Allocator()
    fids = [f"fw-{i:05d}" for i in range(frameworks)]
    for fid in fids:
        alloc.add_framework(fid, ["*"])
    for i in range(agents):
        alloc.add_agent(f"agent-{i:06d}", f"host{i}", AGENT, used={fids[i % frameworks]: {"*": USED}})
    alloc.role_order()  # settle the shares after the agents joined, as upstream's first sort would
    alloc.framework_order("*")
    return alloc


def timed_cycle(alloc: Allocator, now: float) -> tuple[float, list[Offer]]:
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        offers = alloc.allocate(now)
        return time.perf_counter() - t0, offers
    finally:
        gc.enable()


def run_shape(agents: int, frameworks: int, mesos_s: float | None, repeat: int) -> Result:
    t0 = time.perf_counter()
    alloc = build(agents, frameworks)
    setup = time.perf_counter() - t0
    times = []
    offers: list[Offer] = []
    for r in range(repeat):
        dt, offers = timed_cycle(alloc, float(r))
        if len(offers) != agents:
            raise SystemExit(f"expected {agents} offers, got {len(offers)}")
        times.append(dt)
        if r < repeat - 1:
            for o in offers:
                alloc.recover_resources(o.framework_id, o.agent_id, o.resources, role=o.role)
    for o in offers:  # DeclineOffers: refuse forever, then time the next round
        alloc.decline(o.framework_id, o.agent_id, o.resources, refuse_seconds=INT_MAX, now=float(repeat))
    filtered, again = timed_cycle(alloc, float(repeat + 1))
    if len(again) != agents:
        raise SystemExit(f"expected {agents} offers after declines, got {len(again)}")
    return Result(agents, frameworks, setup, statistics.median(times), times, filtered, len(offers), mesos_s)


def format_table(results: list[Result], markdown: bool) -> str:
    head = ["agents / frameworks", "cycle (median)", "after declines", "Mesos 1.7.1", "ours / Mesos", "goal"]
    rows = []
    for r in results:
        ratio = r.ratio
        goal = "-" if ratio is None else ("ok" if ratio <= GOAL_RATIO else "MISS") + f" (<= {GOAL_RATIO:g})"
        rows.append(
            [
                f"{r.agents} / {r.frameworks}",
                f"{r.cycle_s * 1000:.1f} ms",
                f"{r.filtered_s * 1000:.1f} ms",
                f"{r.mesos_s:.2f} s" if r.mesos_s else "-",
                f"{ratio:.3f}" if ratio is not None else "-",
                goal,
            ]
        )
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*row) for row in [head, *rows])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small shapes only (smoke test)")
    p.add_argument("--repeat", type=int, default=0, help="timed cycles per shape (default 5, --quick 3)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = p.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 5)
    results = []
    for agents, frameworks, mesos_s in QUICK_SHAPES if args.quick else SHAPES:
        r = run_shape(agents, frameworks, mesos_s, repeat)
        print(
            f"{agents} agents / {frameworks} frameworks: setup {r.setup_s:.1f} s, cycles "
            + ", ".join(f"{t * 1000:.1f}" for t in r.cycle_all_s)
            + " ms",
            file=sys.stderr,
            flush=True,
        )
        results.append(r)
    print(format_table(results, args.markdown))
    print(
        f"\none cycle = allocate() over all agents, one offer per agent (DeclineOffers shape, role '*');"
        f" median of {repeat}; 'after declines' = the next round with every agent filtered by its last"
        f" framework (refuse_seconds = INT_MAX).  Python {sys.version.split()[0]}."
    )
    if args.json:
        doc = [asdict(r) | {"ratio": r.ratio} for r in results]
        Path(args.json).write_text(json.dumps({"repeat": repeat, "results": doc}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
