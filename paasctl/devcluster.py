"""What a ``paasctl dev`` cluster is, as data: its parts and ports, their command lines, ``cluster.json``
and the texts the commands print.

Nothing here starts or signals a process (that is paasctl.devprocess), so the layout can be read and
tested on its own.  ``cluster.json`` in the cluster's directory records, per part, the process (pid and
start time, so a reused pid is never taken for it), its port and log; paasctl.dev writes it after every
start, so even a half-started cluster can be brought down.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from paasctl.common import CliError
from paasctl.mesosformat import table, yes_no

HOST = "127.0.0.1"
PARTS = ("zookeeper", "master", "agent", "marathon", "lb")  # start order; stopped in reverse
OPTIONAL = frozenset({"lb"})  # the HAProxy bridge runs only where HAProxy is installed
DEFAULT_PORTS = {"zookeeper": 2181, "master": 5050, "agent": 5051, "marathon": 8080, "lb": 9090}
STATE_FILE = "cluster.json"
MARKER = ".paasctl-dev"  # a directory without it (and not empty) is not ours to wipe
Step = tuple[str, list[str], dict[str, Any]]  # part, ``python -m`` arguments, extra cluster.json fields


def zk_url(ports: Mapping[str, int], group: str = "mesos") -> str:
    """The ``--master``/``--zk`` URL of one of the cluster's ZooKeeper groups (``mesos``, ``marathon``)."""
    return f"zk://{HOST}:{ports['zookeeper']}/{group}"


def zoo_cfg(data_dir: Path, port: int) -> str:
    """zk_py's configuration: standalone, on HOST, every four-letter word allowed (for ``ruok``)."""
    cfg = {
        "tickTime": "2000",
        "dataDir": str(data_dir),
        "clientPort": str(port),
        "clientPortAddress": HOST,
        "4lw.commands.whitelist": "*",
        "admin.enableServer": "false",
    }
    return "".join(f"{k}={v}\n" for k, v in cfg.items())


def parts_of(state: Mapping[str, Any]) -> list[str]:
    """The parts a recorded cluster has (older cluster.json files lack the later ones)."""
    return [p for p in PARTS if p not in OPTIONAL or p in state.get("parts", ())]


def commands(
    workdir: Path,
    ports: Mapping[str, int],
    kinds: list[str],
    resources: str | None,
    agent_ip_flag: bool,
    haproxy: str | None = None,
) -> list[Step]:
    """Each part's ``python -m`` arguments and the extra fields cluster.json keeps about it; the HAProxy
    bridge (``marathon-py lb``, its stats/health frontend on the ``lb`` port) only with an ``haproxy``."""
    url = zk_url(ports)
    master = ["master_py", "--ip", HOST, "--port", str(ports["master"]), "--zk", url]
    agent = [
        "agent_py", "--master", url, "--work_dir", str(workdir / "agent"), "--hostname", HOST,
        "--port", str(ports["agent"]), "--containerizers", ",".join(kinds),
    ]  # fmt: skip
    if agent_ip_flag:
        agent += ["--ip", HOST]
    if resources:
        agent += ["--resources", resources]
    marathon = [
        "marathon_py", "--master", url, "--zk", zk_url(ports, "marathon"), "--hostname", HOST,
        "--http_address", HOST, "--http_port", str(ports["marathon"]),
    ]  # fmt: skip
    steps: list[Step] = [
        ("zookeeper", ["zk_py", str(workdir / "zookeeper" / "zoo.cfg")], {}),
        ("master", master, {"url": f"http://{HOST}:{ports['master']}"}),
        ("agent", agent, {"work_dir": str(workdir / "agent")}),
        ("marathon", marathon, {"url": f"http://{HOST}:{ports['marathon']}"}),
    ]
    if haproxy is not None:
        lb = [
            "marathon_py", "lb", "--marathon", f"http://{HOST}:{ports['marathon']}", "--haproxy-bin", haproxy,
            "--haproxy-config", str(workdir / "lb" / "haproxy.cfg"), "--bind-address", HOST,
            "--http-port", "0", "--appid-port", "0", "--stats-port", str(ports["lb"]), "--maxconn", "1000",
        ]  # fmt: skip
        steps.append(("lb", lb, {"url": f"http://{HOST}:{ports['lb']}"}))
    return steps


# ---------------------------------------------------------------------------------------------- cluster.json


def load(workdir: Path) -> dict[str, Any] | None:
    """The recorded cluster, or None when there is none."""
    try:
        doc = json.loads((workdir / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise CliError(f"{workdir / STATE_FILE}: unreadable ({e})", kind="bad_state") from None
    return doc if isinstance(doc, dict) else None


def save(workdir: Path, state: dict[str, Any]) -> None:
    """Replace cluster.json atomically (a reader never sees half of it)."""
    tmp = workdir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(workdir / STATE_FILE)


def endpoints(state: dict[str, Any]) -> dict[str, Any]:
    """What a user or a test needs to reach the cluster."""
    return {
        "workdir": state.get("workdir"),
        "zookeeper": f"{HOST}:{state['zookeeper']['port']}" if state.get("zookeeper") else None,
        "zk": state.get("zk_url"),
        "master": (state.get("master") or {}).get("url"),
        "agent": f"{HOST}:{state['agent']['port']}" if state.get("agent") else None,
        "marathon": (state.get("marathon") or {}).get("url"),
        "lb": (state.get("lb") or {}).get("url"),
        "containerizers": state.get("containerizers"),
        "pids": {p: state[p]["pid"] for p in parts_of(state) if state.get(p)},
        "logs": str(Path(str(state.get("workdir"))) / "logs"),
    }


# ---------------------------------------------------------------------------------------------- texts


def up_text(eps: dict[str, Any], heading: str, warnings: list[str]) -> str:
    lines = [
        heading,
        f"  zookeeper  {eps['zookeeper']}",
        f"  master     {eps['master']}  (--master {eps['zk']})",
        f"  agent      {eps['agent']}  (containerizers {','.join(eps['containerizers'] or [])})",
        f"  marathon   {eps['marathon']}",
        *([f"  lb         HAProxy on 127.0.0.1 service ports; stats {eps['lb']}"] if eps.get("lb") else []),
        f"  logs       {eps['logs']}",
        f"try: paasctl master state --master {eps['zk']}",
        f"     paasctl app list --marathon {eps['marathon']}",
    ]
    return "\n".join([*lines, *(f"warning: {w}" for w in warnings)])


def down_text(stopped: Mapping[str, str], tasks: Mapping[str, Any]) -> str:
    return "\n".join(
        [
            *(f"{p:<10} {stopped[p]}" for p in PARTS if p in stopped),
            f"tasks      {tasks['process_tasks_killed']} process task(s) killed, "
            f"{len(tasks['containers_removed'])} container(s) removed",
        ]
    )


def status_text(rows: dict[str, dict[str, Any]]) -> str:
    return table(
        ("PART", "ENDPOINT", "PID", "RUNNING", "HEALTHY", "DETAIL"),
        [
            (
                n,
                str(r["endpoint"] or "-"),
                str(r["pid"] or "-"),
                yes_no(r["running"]),
                yes_no(r["healthy"]),
                r["detail"],
            )
            for n, r in rows.items()
        ],
    )
