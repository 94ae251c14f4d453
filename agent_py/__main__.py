"""``agent-py``: run an agent until SIGTERM (flags named as Mesos' agent flags)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
from pathlib import Path

from agent_py.daemon import Agent, AgentConfig
from agent_py.resources import ResourceDetectionError, agent_resources, probe_machine
from paas_common.resources import ResourceError, parse_attributes
from paas_common.runtime import setup_logging
from paas_common.zkleader import ZkUrlError, parse_zk_url

CONTAINERIZERS = ("docker", "mesos")


def _flags(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="agent-py", description="A Mesos 1.x-style agent for master-py.")
    p.add_argument("--master", required=True, help="host:port of the master, or zk://host:port[,…]/path")
    p.add_argument("--work_dir", required=True, type=Path, help="checkpoints and sandboxes live here")
    p.add_argument("--resources", help="e.g. 'cpus:2;mem:1024;ports:[31000-32000]' (default: detected)")
    p.add_argument("--attributes", default="", help="e.g. 'rack:a;zone:b'")
    p.add_argument("--hostname", help="advertised hostname (default: this host's name)")
    p.add_argument("--ip", default="127.0.0.1", help="address of the HTTP endpoints (default 127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=5051, help="port of the HTTP endpoints, registered with the master"
    )
    p.add_argument("--containerizers", default="docker,mesos", help="docker, mesos or both (default)")
    p.add_argument("--docker_bind_address", default="127.0.0.1", help="host address of port mappings")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args([a.replace("--log_level", "--log-level") for a in argv])


def _config(args: argparse.Namespace) -> AgentConfig:
    """The AgentConfig, or ValueError with a message for the user."""
    if args.master.startswith("zk://"):
        parse_zk_url(args.master)
    elif ":" not in args.master:
        raise ValueError(f"--master: expected host:port or zk://…, got {args.master!r}")
    kinds = tuple(k.strip() for k in args.containerizers.split(",") if k.strip())
    if not kinds or any(k not in CONTAINERIZERS for k in kinds):
        raise ValueError(f"--containerizers: expected a list of {', '.join(CONTAINERIZERS)}")
    if not 0 <= args.port < 65536:
        raise ValueError(f"--port: expected a port number, got {args.port}")
    work_dir = args.work_dir.absolute()
    resources = agent_resources(args.resources, probe_machine(work_dir))
    return AgentConfig(
        master=args.master,
        work_dir=work_dir,
        resources=resources.to_json(),
        attributes=parse_attributes(args.attributes) if args.attributes else [],
        hostname=args.hostname or socket.gethostname(),
        ip=args.ip,
        port=args.port,
        containerizers=kinds,
        docker_bind_address=args.docker_bind_address,
        flags=_flag_values(args),
    )


def _flag_values(args: argparse.Namespace) -> dict[str, str]:
    """The flags as Mesos' /flags shows them: every flag with a value, as text."""
    return {name: str(value) for name, value in sorted(vars(args).items()) if value is not None}


async def _run(agent: Agent) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.stopped.set)
    loop.add_signal_handler(signal.SIGUSR1, agent.draining.set)  # Mesos' agent: shut down, tasks too
    return await agent.run()


def main(argv: list[str] | None = None) -> int:
    args = _flags(sys.argv[1:] if argv is None else argv)
    setup_logging(args.log_level)
    try:
        cfg = _config(args)
    except (ResourceDetectionError, ResourceError, ZkUrlError, ValueError) as e:
        print(f"agent-py: {e}", file=sys.stderr)
        return 2
    try:
        cfg.work_dir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(_run(Agent(cfg)))
    except OSError as e:
        logging.getLogger("agent_py").error("cannot start: %s", e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
