"""``master-py``'s command line, named as Mesos' master flags.  Public, so the Ansible role checks a
rendered flags file with the master's own parser before it replaces the live one."""

from __future__ import annotations

import argparse

from paas_common.duration import parse_duration


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse(argv: list[str]) -> argparse.Namespace:
    """The flags; argparse exits 2 with the reason on a malformed command line."""
    p = argparse.ArgumentParser(prog="master-py", description="A Mesos 1.x-compatible master.")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5050)
    p.add_argument("--hostname", help="advertised hostname (default: the IP)")
    p.add_argument(
        "--zk", help="zk://host:port[,host:port...]/path for leader election (default: none, lead alone)"
    )
    p.add_argument("--zk_session_timeout", type=_duration, default=10.0, metavar="DURATION")
    p.add_argument("--allocation_interval", type=_duration, default=1.0, metavar="DURATION")
    p.add_argument(
        "--agent_ping_timeout", type=_duration, default=15.0, metavar="DURATION", help="between agent PINGs"
    )
    p.add_argument(
        "--max_agent_ping_timeouts", type=int, default=5, help="missed PONGs before an agent is unreachable"
    )
    p.add_argument(
        "--agent_reregister_timeout",
        type=_duration,
        default=600.0,
        metavar="DURATION",
        help="after a failover, how long agents have to re-register (default 10mins)",
    )
    p.add_argument("--log-level", default="INFO")
    return p.parse_args([a.replace("--log_level", "--log-level") for a in argv])
