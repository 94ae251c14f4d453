"""Launch throughput: N Docker tasks through master-py + agent-py, driven by an unmodified pymesos
framework, beside a sequential ``docker run -d`` loop of the same N containers.

What each side measures (time.monotonic() in this process):

* mesos: a fresh pymesos framework subscribes to a master-py with one agent-py and launches all N tasks
  in one ACCEPT on its first offer.  ``launch`` runs from that ACCEPT (the first launch request) until the
  framework has received TASK_RUNNING for every task; agent-py reports RUNNING once the engine has
  created and started the container, which is what ``docker run -d`` waits for.  ``+offer`` runs from
  ``driver.start()`` (SUBSCRIBE) to the same point, so registration and the wait for the first offer
  (master-py allocates in ``allocation_interval`` = 1 s batches) are included.
* docker: N x ``docker run -d`` from the CLI, one after the other, each returning once its container
  started, with what agent-py gives its containers: same image and command, cpu shares + CFS quota,
  memory = memory+swap limit, json-file log options and a bind-mounted sandbox directory.  Timed from the
  first invocation to the return of the last.

Every task runs ``trap 'exit 0' TERM; sleep 600 & wait``: alive for the whole measurement (both sides end
with N running containers and no exit is processed meanwhile), gone at once on SIGTERM (the teardown
between repetitions needs no kill grace).  Master and agent start once, untimed, on 127.0.0.1; each
repetition has a fresh framework (its TEARDOWN kills the tasks) and ends with all containers removed;
the two sides alternate order.  Goal: mesos ``launch`` <= 1.2 x docker.

    .venv/bin/python bench/launch_bench.py                  # N=30, 3 repetitions (~1-2 min)
    .venv/bin/python bench/launch_bench.py --n 10 --reps 1  # smoke run
    .venv/bin/python bench/launch_bench.py --markdown --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from agent_py.containerizer import CPU_SHARES_PER_CPU, SANDBOX_MOUNT, memory_limit_bytes  # noqa: E402
from agent_py.containerizer.docker import CFS_PERIOD_US, LABEL_OWNER, LOG_CONFIG  # noqa: E402
from tests.support.agents import AgentProc  # noqa: E402
from tests.support.docker import SETUP_HINT, TASK_IMAGE, remove_owned  # noqa: E402
from tests.support.masters import MasterProc  # noqa: E402
from tests.support.pymesos_fw import TERMINAL, Framework, docker_task, driving, running_agent, running_master  # noqa: E402

COMMAND = "trap 'exit 0' TERM; sleep 600 & wait"
CPUS, MEM_MB = 0.05, 32.0  # agent-py refuses to advertise more CPUs than the host has: N x CPUS <= 2
AGENT_CPUS = 2
GOAL_RATIO = 1.2
SETTLE_S = 60.0  # bound for the teardown of one repetition


@dataclass
class MesosRound:
    launch_s: float  # ACCEPT → every task RUNNING at the framework
    total_s: float  # driver.start() → the same
    offer_wait_s: float  # driver.start() → first offer
    starting_s: float  # ACCEPT → every task STARTING (the agent got RUN_TASK and began the launch)


def agent_idle(client: docker.DockerClient, agent: AgentProc) -> bool:
    """No container of the agent left and no task checkpoint (every update acknowledged)."""
    listed = client.api.containers(all=True, filters={"label": f"{LABEL_OWNER}={agent.owner}"})
    return not listed and not list(agent.workdir.glob("meta/tasks/*/*.json"))


def mesos_round(
    master: MasterProc, agent: AgentProc, client: docker.DockerClient, n: int, tag: str
) -> MesosRound:
    ids = [f"{tag}-{i}" for i in range(n)]
    resources = f"cpus:{CPUS};mem:{MEM_MB:g}"
    sched = Framework([docker_task(t, COMMAND, resources) for t in ids])

    def settled() -> bool:
        return all(any(s in ("TASK_RUNNING", *TERMINAL) for s in sched.states(t)) for t in ids)

    t0 = time.monotonic()
    with driving(sched, f"127.0.0.1:{master.port}", name="launch-bench"):
        sched.wait_until("not every task settled", settled, timeout=60 + 2 * n)
    failed = {t: sched.states(t) for t in ids if (t, "TASK_RUNNING") not in sched.arrivals}
    if failed:
        raise RuntimeError(f"tasks did not reach TASK_RUNNING: {failed}\n{agent.log_tail()}")
    # The framework's TEARDOWN has the agent kill the tasks; wait until the agent is done with them.
    deadline = time.monotonic() + SETTLE_S
    while not agent_idle(client, agent):
        if time.monotonic() > deadline:
            raise RuntimeError(f"agent not idle {SETTLE_S:.0f}s after the teardown\n{agent.log_tail()}")
        time.sleep(0.2)
    accepted = sched.marks["accepted"]
    return MesosRound(
        launch_s=max(sched.arrivals[t, "TASK_RUNNING"] for t in ids) - accepted,
        total_s=max(sched.arrivals[t, "TASK_RUNNING"] for t in ids) - t0,
        offer_wait_s=sched.marks["offered"] - t0,
        starting_s=max(sched.arrivals.get((t, "TASK_STARTING"), accepted) for t in ids) - accepted,
    )


def docker_argv(name: str, owner: str, sandbox: Path) -> list[str]:
    """``docker run -d`` with the settings agent-py's Docker containerizer uses for a task."""
    mem = memory_limit_bytes(MEM_MB)
    log_opts = [a for k, v in LOG_CONFIG.config.items() for a in ("--log-opt", f"{k}={v}")]
    return [
        "docker", "run", "-d", "--name", name, "--label", f"{LABEL_OWNER}={owner}",
        "--cpu-shares", str(int(CPUS * CPU_SHARES_PER_CPU)), "--cpu-period", str(CFS_PERIOD_US),
        "--cpu-quota", str(int(CPUS * CFS_PERIOD_US)), "--memory", str(mem), "--memory-swap", str(mem),
        "--log-driver", LOG_CONFIG.type, *log_opts,
        "-v", f"{sandbox}:{SANDBOX_MOUNT}", "-w", SANDBOX_MOUNT, "-e", f"MESOS_SANDBOX={SANDBOX_MOUNT}",
        "--entrypoint", "/bin/sh", TASK_IMAGE, "-c", COMMAND,
    ]  # fmt: skip


def docker_round(client: docker.DockerClient, workdir: Path, n: int, tag: str) -> float:
    owner = f"launch-bench-{tag}"
    try:
        t0 = time.monotonic()
        for i in range(n):
            sandbox = workdir / tag / str(i)
            sandbox.mkdir(parents=True)  # agent-py creates each sandbox in its launch path too
            done = subprocess.run(
                docker_argv(f"{owner}-{i}", owner, sandbox), capture_output=True, timeout=60
            )
            if done.returncode != 0:
                raise RuntimeError(f"docker run failed: {done.stderr.decode(errors='replace').strip()}")
        took = time.monotonic() - t0
        listed = client.api.containers(filters={"label": f"{LABEL_OWNER}={owner}", "status": "running"})
        if len(listed) != n:
            raise RuntimeError(f"docker: {len(listed)} of {n} containers running")
        return took
    finally:
        remove_owned(client, owner)


@dataclass
class Summary:
    n: int
    reps: int
    mesos: list[MesosRound]
    docker_s: list[float]

    def median(self, field: str) -> float:
        return float(statistics.median(getattr(r, field) for r in self.mesos))

    @property
    def docker_median(self) -> float:
        return statistics.median(self.docker_s)


def format_table(s: Summary, markdown: bool) -> str:
    d = s.docker_median
    launch, total = s.median("launch_s"), s.median("total_s")
    head = ["side", "what is timed", f"median of {s.reps}", "tasks/s", "/ docker", "goal"]
    goal = ("ok" if launch / d <= GOAL_RATIO else "MISS") + f" (<= {GOAL_RATIO:g})"

    def row(side: str, what: str, secs: float, note: str = "") -> list[str]:
        return [side, what, f"{secs:.2f} s", f"{s.n / secs:.1f}", f"{secs / d:.2f}", note]

    rows = [
        row("docker", f"{s.n} x `docker run -d`, sequential", d),
        row("mesos", "ACCEPT -> all TASK_RUNNING", launch, goal),
        row("mesos", "SUBSCRIBE -> all TASK_RUNNING", total),
    ]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in [head, *rows])


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="launch-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run(n: int, reps: int) -> Summary:
    try:
        client = docker.from_env(version="auto", timeout=60)
        client.images.get(TASK_IMAGE)
    except DockerException as e:
        raise SystemExit(f"Docker Engine or task image not usable ({e}): {SETUP_HINT}") from None
    mesos: list[MesosRound] = []
    docker_s: list[float] = []
    run_id = uuid.uuid4().hex[:8]
    if n * CPUS > AGENT_CPUS:
        raise SystemExit(f"--n {n}: at most {int(AGENT_CPUS / CPUS)} tasks of {CPUS:g} cpu fit the agent")
    resources = f"cpus:{AGENT_CPUS};mem:{n * MEM_MB + 256:g}"
    try:
        with (
            scratch() as work,
            running_master(work / "master") as master,
            running_agent(work / "agent", master, resources) as agent,
        ):
            for rep in range(reps):
                tag = f"{run_id}-{rep}"
                for side in ("mesos", "docker") if rep % 2 == 0 else ("docker", "mesos"):
                    if side == "mesos":
                        mesos.append(mesos_round(master, agent, client, n, tag))
                        r = mesos[-1]
                        print(
                            f"rep {rep + 1} mesos: launch {r.launch_s:.2f} s (all STARTING after"
                            f" {r.starting_s:.2f} s), from SUBSCRIBE {r.total_s:.2f} s"
                            f" (first offer after {r.offer_wait_s:.2f} s)",
                            file=sys.stderr,
                            flush=True,
                        )
                    else:
                        docker_s.append(docker_round(client, work / "docker", n, tag))
                        print(f"rep {rep + 1} docker: {docker_s[-1]:.2f} s", file=sys.stderr, flush=True)
    finally:
        client.close()
    return Summary(n, reps, mesos, docker_s)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=30, help="tasks (and containers) per repetition (default 30)")
    p.add_argument("--reps", type=int, default=3, help="repetitions per side; medians are reported")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--json", metavar="PATH", help="also write every repetition as JSON")
    args = p.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the context managers remove the processes and containers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    s = run(args.n, args.reps)
    print(format_table(s, args.markdown))
    print(
        f"\n{s.n} Docker tasks ({CPUS:g} cpu, {MEM_MB:g} MB, `{COMMAND}`) of {TASK_IMAGE}; one master-py and"
        f" one agent-py on 127.0.0.1; medians of {s.reps}.  Python {sys.version.split()[0]}."
    )
    if args.json:
        doc: dict[str, Any] = {"n": s.n, "reps": s.reps, "docker_s": s.docker_s}
        doc["mesos"] = [asdict(r) for r in s.mesos]
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
