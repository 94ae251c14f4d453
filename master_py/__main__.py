"""``master-py``: run a Mesos-compatible master until SIGTERM (flags named as Mesos' master flags)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from paas_common.runtime import setup_logging
from paas_common.zkleader import ZkUrlError, parse_zk_url

from . import flags
from .app import Master, MasterConfig


async def _run(master: Master) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, master.stopped.set)
    await master.start()
    await master.stopped.wait()
    await master.stop()
    return master.exit_code


def main(argv: list[str] | None = None) -> int:
    args = flags.parse(sys.argv[1:] if argv is None else argv)
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
