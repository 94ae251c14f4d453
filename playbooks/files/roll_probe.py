"""Health of one service of the stack, for the rolling playbooks (upgrade.yml, rollback.yml).

Runs on a managed host (stdlib only) through ansible.builtin.script; exits 0 when the service is healthy as
a whole, 1 otherwise (the playbooks retry, bounded), and prints JSON: what was seen, and the leader's
address where the service has one (the playbooks restart it last).

  roll_probe.py zookeeper HOST:PORT...            every member serving in a quorum, exactly one leader
  roll_probe.py masters [--agents N] [--framework NAME] URL...
                                                  /health everywhere, one elected master, N agents active
                                                  on it and the framework registered
  roll_probe.py marathon URL...                   /ping pong everywhere and one leader named by all (basic
                                                  auth from MARATHON_PROBE_CREDENTIALS, user:password)
  roll_probe.py agent URL [--master-port P] [--tasks ID,...]
                                                  the agent registered and active on its master, these tasks
                                                  still running on it (prints the running ones)
  roll_probe.py lb URL                            HAProxy's health check answers and every backend with
                                                  servers has one UP
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import os
import socket
import sys
import urllib.error
import urllib.request
from typing import Any

TIMEOUT = 5.0
SERVING = ("leader", "follower", "observer", "standalone")


def http(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """(status, body); (0, reason) when nothing answered."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=TIMEOUT) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, ""
    except (OSError, ValueError) as e:
        return 0, str(e)


def http_json(url: str, headers: dict[str, str] | None = None) -> Any:
    status, body = http(url, headers)
    try:
        return json.loads(body) if status == 200 else None
    except ValueError:
        return None


def srvr(address: str) -> str:
    """The member's mode from the srvr four-letter word ('' when it does not serve)."""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), TIMEOUT) as s:
            s.settimeout(TIMEOUT)
            s.sendall(b"srvr")
            data = b"".join(iter(lambda: s.recv(4096), b"")).decode(errors="replace")
    except OSError:
        return ""
    return next((line.split(":", 1)[1].strip() for line in data.splitlines() if line.startswith("Mode:")), "")


def zookeeper(args: argparse.Namespace) -> dict[str, Any]:
    modes = {a: srvr(a) for a in args.targets}
    leaders = [a for a, m in modes.items() if m in ("leader", "standalone")]
    ok = all(m in SERVING for m in modes.values()) and len(leaders) == 1
    return {"ok": ok, "modes": modes, "leader": leaders[0].rsplit(":", 1)[0] if len(leaders) == 1 else None}


def masters(args: argparse.Namespace) -> dict[str, Any]:
    health = {u: http(u + "/health")[0] for u in args.targets}
    elected = [
        u for u in args.targets if (http_json(u + "/metrics/snapshot") or {}).get("master/elected") == 1
    ]
    seen: dict[str, Any] = {"health": health, "elected": elected}
    ok = all(s == 200 for s in health.values()) and len(elected) == 1
    if ok:
        leader = elected[0]
        slaves = (http_json(leader + "/master/slaves") or {}).get("slaves", [])
        seen["active_agents"] = sum(1 for s in slaves if s.get("active"))
        ok = seen["active_agents"] >= args.agents
        if args.framework:
            frameworks = (http_json(leader + "/master/frameworks") or {}).get("frameworks", [])
            seen["framework"] = any(f.get("name") == args.framework and f.get("active") for f in frameworks)
            ok = ok and seen["framework"]
        seen["leader"] = leader.split("://", 1)[-1].rsplit(":", 1)[0]
    return {"ok": ok, **seen}


def marathon(args: argparse.Namespace) -> dict[str, Any]:
    credentials = os.environ.get("MARATHON_PROBE_CREDENTIALS", "").encode()  # user:password if required
    auth = {"Authorization": "Basic " + base64.b64encode(credentials).decode()} if credentials else {}
    pings = {u: http(u + "/ping", auth)[1].strip() for u in args.targets}
    leaders = {u: (http_json(u + "/v2/leader", auth) or {}).get("leader") for u in args.targets}
    named = set(leaders.values())
    ok = all(p == "pong" for p in pings.values()) and len(named) == 1 and None not in named
    leader = next(iter(named)) if ok else None
    return {
        "ok": ok,
        "ping": pings,
        "leaders": leaders,
        "leader": leader.rsplit(":", 1)[0] if leader else None,
    }


def running_tasks(state: dict[str, Any]) -> list[str]:
    return sorted(
        t["id"]
        for f in state.get("frameworks", [])
        for e in f.get("executors", [])
        for t in e.get("tasks", [])
        if t.get("state") == "TASK_RUNNING"
    )


def agent(args: argparse.Namespace) -> dict[str, Any]:
    state = http_json(args.targets[0] + "/state") or {}
    tasks = running_tasks(state)
    expected = [t for t in (args.tasks or "").split(",") if t]
    seen: dict[str, Any] = {"id": state.get("id"), "master": state.get("master_hostname"), "tasks": tasks}
    active = False
    if state.get("id") and state.get("master_hostname"):
        slaves = http_json(f"http://{state['master_hostname']}:{args.master_port}/master/slaves") or {}
        active = any(s.get("id") == state["id"] and s.get("active") for s in slaves.get("slaves", []))
    seen["missing_tasks"] = sorted(set(expected) - set(tasks))
    return {"ok": active and not seen["missing_tasks"], "active": active, **seen}


def lb(args: argparse.Namespace) -> dict[str, Any]:
    base = args.targets[0]
    health = http(base + "/_haproxy_health_check")[0]
    status, body = http(base + "/haproxy?stats;csv")
    servers: dict[str, list[str]] = {}
    for row in csv.DictReader(io.StringIO(body.lstrip("# "))) if status == 200 else ():
        if row.get("svname") not in ("FRONTEND", "BACKEND") and row.get("pxname") != "stats":
            servers.setdefault(row["pxname"], []).append(row.get("status", ""))
    down = sorted(b for b, states in servers.items() if not any(s.startswith("UP") for s in states))
    return {
        "ok": health == 200 and status == 200 and not down,
        "health": health,
        "backends": servers,
        "down": down,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kind", choices=["zookeeper", "masters", "marathon", "agent", "lb"])
    p.add_argument("targets", nargs="+")
    p.add_argument("--agents", type=int, default=0)
    p.add_argument("--framework", default="")
    p.add_argument("--master-port", type=int, default=5050)
    p.add_argument("--tasks", default="")
    args = p.parse_args()
    result = globals()[args.kind](args)
    print(json.dumps(result, sort_keys=True))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
