"""``agent-py``'s command line (named as Mesos' agent flags) and the ``AgentConfig`` it gives.  Public, so
the Ansible role checks a rendered unit with the agent's own rules before it replaces the running one."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

from agent_py.daemon import AgentConfig
from agent_py.resources import agent_resources, probe_machine
from paas_common.resources import parse_attributes
from paas_common.zkleader import parse_zk_url

CONTAINERIZERS = ("docker", "mesos")


def parse(argv: list[str]) -> argparse.Namespace:
    """The flags; argparse exits 2 with the reason on a malformed command line."""
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


def config(args: argparse.Namespace) -> AgentConfig:
    """The AgentConfig, or ValueError (``ResourceError``, ``ZkUrlError``, ``ResourceDetectionError``) with a
    message for the user: the resources are checked against the measured machine."""
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
