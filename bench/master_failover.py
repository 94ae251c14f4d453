"""Master failover time: leader killed -> the standby, newly elected, accepting scheduler calls.

Each round: two master-py processes contend through one standalone ZooKeeper (zk_py, and Apache
ZooKeeper 3.8 beside it when installed); kill -9 the leader, then POST a framework SUBSCRIBE to the
standby every 10 ms until one is answered 200 with a stream (a standby answers 307, a master that won
the election but is still reading the registry 503).  The figure is the time from the kill to that 200.

With kill -9 the dead leader's ``json.info_`` znode lives until its ZooKeeper session expires, so the
figure is bounded below by ``--zk_session_timeout`` (Mesos' default 10 s; the server must allow it:
ZooKeeper's minimum session timeout is 2 x tickTime).  The default here is 1 s against a tickTime of
250 ms; pass ``--session 10`` for Mesos' defaults.

    .venv/bin/python bench/master_failover.py --rounds 5
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.masters import MasterProc  # noqa: E402
from tests.support.servers import ZkServer, apache_available  # noqa: E402

GOAL_S = 2.0
POLL_S = 0.01
ROUND_LIMIT_S = 60.0
SUBSCRIBE = json.dumps(
    {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "bench", "name": "failover-probe"}}}
)


def accepting(master: MasterProc) -> bool:
    """True once ``master`` answers a SUBSCRIBE with 200 (the probe framework is torn down at once)."""
    conn = http.client.HTTPConnection(master.ip, master.port, timeout=1.0)
    try:
        conn.request(
            "POST",
            "/api/v1/scheduler",
            SUBSCRIBE,
            {"Content-Type": "application/json", "Accept": "application/json"},
        )
        resp = conn.getresponse()
        if resp.status != 200:
            resp.read()
            return False
        return True  # closing the stream ends the probe: failover_timeout 0 removes it at the next tick
    except OSError:
        return False
    finally:
        conn.close()


def one_round(kind: str, workdir: Path, session: float, tick_ms: int) -> float:
    zk = ZkServer(kind, workdir / "zk", extra_cfg={"tickTime": str(tick_ms)})
    flags = ("--zk_session_timeout", f"{session}secs")
    masters: list[MasterProc] = []
    try:
        zk.start()
        url = f"zk://{zk.hosts}/mesos"
        first = MasterProc(workdir / "m1", zk=url, flags=flags)
        first.start()
        masters.append(first)
        deadline = time.monotonic() + ROUND_LIMIT_S
        while not accepting(first):
            if time.monotonic() > deadline:
                raise RuntimeError("the first master never led")
            time.sleep(POLL_S)
        second = MasterProc(workdir / "m2", zk=url, flags=flags)
        second.start()
        masters.append(second)
        if accepting(second):
            raise RuntimeError("the standby answered as a leader")
        t0 = time.monotonic()
        first.kill()
        while not accepting(second):
            if time.monotonic() - t0 > ROUND_LIMIT_S:
                raise RuntimeError("no new leader")
            time.sleep(POLL_S)
        return time.monotonic() - t0
    finally:
        for m in masters:
            m.kill()
        zk.kill()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--session", type=float, default=1.0, help="master --zk_session_timeout (s)")
    p.add_argument("--tick-time", type=int, default=250, help="ZooKeeper tickTime (ms)")
    p.add_argument("--only", choices=("zk_py", "apache"))
    args = p.parse_args()
    kinds = [args.only] if args.only else ["zk_py"] + (["apache"] if apache_available() else [])
    print(f"master failover, kill -9 leader -> standby accepts SUBSCRIBE; session {args.session:g} s, "
          f"tickTime {args.tick_time} ms, {args.rounds} rounds")  # fmt: skip
    print(f"| ZooKeeper | median s | min s | max s | goal < {GOAL_S:g} s |")
    print("| --- | ---: | ---: | ---: | --- |")
    for kind in kinds:
        times = []
        for _ in range(args.rounds):
            workdir = Path(tempfile.mkdtemp(prefix="master-failover-"))
            try:
                times.append(one_round(kind, workdir, args.session, args.tick_time))
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        med = statistics.median(times)
        print(
            f"| {kind} | {med:.2f} | {min(times):.2f} | {max(times):.2f} | "
            f"{'met' if med < GOAL_S else 'NOT met'} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
