"""``master-py``: run a Mesos-compatible master until SIGTERM (flags named as Mesos' master flags)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from paas_common.duration import parse_duration
from paas_common.runtime import setup_logging
from paas_common.zkleader import ZkUrlError, parse_zk_url

from .app import Master, MasterConfig


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _flags(argv: list[str] | None) -> argparse.Namespace:
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
    return p.parse_args([a.replace("--log_level", "--log-level") for a in (argv or sys.argv[1:])])


async def _run(master: Master) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, master.stopped.set)
    await master.start()
    await master.stopped.wait()
    await master.stop()
    return master.exit_code


def main(argv: list[str] | None = None) -> int:
    args = _flags(argv)
    setup_logging(args.log_level)
    try:
        zk = parse_zk_url(args.zk) if args.zk else None
    except ZkUrlError as e:
        print(f"master-py: --zk: {e}", file=sys.stderr)
        return 2
    cfg = MasterConfig(
        ip=args.ip,
        port=args.port,
        hostname=args.hostname,
        zk=zk,
        zk_session_timeout=args.zk_session_timeout,
        allocation_interval=args.allocation_interval,
        agent_ping_timeout=args.agent_ping_timeout,
        max_agent_ping_timeouts=args.max_agent_ping_timeouts,
        agent_reregister_timeout=args.agent_reregister_timeout,
    )
    try:
        return asyncio.run(_run(Master(cfg)))
    except OSError as e:
        logging.getLogger("master_py").error("cannot start: %s", e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
