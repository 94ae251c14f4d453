"""Leader failover time of a 3-server zk_py ensemble beside an Apache ZooKeeper 3.8 ensemble.

Each round: wait until the ensemble serves, kill -9 the leader, then poll the survivors (``srvr`` every
10 ms) until one reports ``Mode: leader`` and a fresh client connected to it has a create acknowledged.
The figure is the time from the kill to that acknowledgement.  The killed server is restarted and the
ensemble settles before the next round.  Both kinds use upstream's default timing (tickTime 2000,
initLimit 10, syncLimit 5) unless --tick-time says otherwise.

    .venv/bin/python bench/zk_failover.py --rounds 5
    .venv/bin/python bench/zk_failover.py --only zk_py --rounds 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from paasctl.fourlw import send_command  # noqa: E402
from tests.support.ensemble import Ensemble  # noqa: E402

KINDS = ("zk_py", "apache")
GOAL_MS = 1000.0
POLL_S = 0.01
ROUND_LIMIT_S = 60.0


def _leader_among(ens: Ensemble, sids: list[int]) -> int | None:
    for sid in sids:
        srv = ens.member(sid)
        try:
            out = send_command(srv.host, srv.port, "srvr", 0.5)
        except OSError:
            continue
        if "Mode: leader" in out:
            return sid
    return None


def _write_ok(hosts: str, path: str) -> bool:
    zk = KazooClient(hosts=hosts, timeout=4.0, connection_retry={"max_tries": 0})
    try:
        zk.start(timeout=2.0)
        zk.create(path, b"x", sequence=True)
        return True
    except Exception:
        return False
    finally:
        zk.stop()
        zk.close()


def one_round(ens: Ensemble, rnd: int) -> float:
    """Kill the leader; milliseconds until a survivor acknowledges a write."""
    ens.wait_ready(ROUND_LIMIT_S)
    old = ens.sid_of(ens.leader())
    survivors = [s for s in sorted(ens.members) if s != old]
    ens.member(old).kill()
    t0 = time.monotonic()
    deadline = t0 + ROUND_LIMIT_S
    while time.monotonic() < deadline:
        new = _leader_among(ens, survivors)
        if new is not None and _write_ok(ens.member(new).hosts, f"/failover-{rnd}-"):
            took = (time.monotonic() - t0) * 1000
            ens.start_member(old)
            return took
        time.sleep(POLL_S)
    raise RuntimeError(f"no leader serving writes {ROUND_LIMIT_S:.0f}s after killing server {old}")


def run_kind(kind: str, rounds: int, tick: int, workroot: Path | None, log: Any) -> list[float]:
    workdir = Path(tempfile.mkdtemp(prefix=f"zkfailover-{kind}-", dir=workroot))
    timing = {"tickTime": str(tick), "initLimit": "10", "syncLimit": "5"}
    try:
        with Ensemble(kind, workdir, voters=3, extra_cfg=timing) as ens:
            ens.start(timeout=90)
            times = []
            for rnd in range(rounds):
                ms = one_round(ens, rnd)
                log(f"[{kind}] round {rnd + 1}/{rounds}: {ms:7.1f} ms from kill to an acknowledged write")
                times.append(ms)
            return times
    except Exception:
        ens_logs = sorted(workdir.glob("server*/server.log"))
        for f in ens_logs:
            log(f"--- {f} ---\n" + "\n".join(f.read_text(errors="replace").splitlines()[-25:]))
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--tick-time", type=int, default=2000)
    p.add_argument("--only", choices=KINDS)
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--workdir", type=Path)
    args = p.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    results: dict[str, list[float]] = {}
    for kind in [args.only] if args.only else list(KINDS):
        results[kind] = run_kind(kind, args.rounds, args.tick_time, args.workdir, log)
    print(f"| server | rounds | median ms | min ms | max ms | goal (< {GOAL_MS:.0f} ms) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for kind, ts in results.items():
        med = statistics.median(ts)
        print(
            f"| {kind} | {len(ts)} | {med:.0f} | {min(ts):.0f} | {max(ts):.0f} | "
            f"{'ok' if med < GOAL_MS else 'MISS'} |"
        )
    if len(results) == 2:
        ratio = statistics.median(results["apache"]) / statistics.median(results["zk_py"])
        print(f"\nApache median / zk_py median = {ratio:.2f} (higher is better for zk_py)")
    if args.json:
        Path(args.json).write_text(json.dumps({"tick_time": args.tick_time, "ms": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
