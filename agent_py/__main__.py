"""``agent-py``: run an agent until SIGTERM (flags named as Mesos' agent flags)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from agent_py import flags
from agent_py.daemon import Agent
from agent_py.resources import ResourceDetectionError
from paas_common.resources import ResourceError
from paas_common.runtime import setup_logging
from paas_common.zkleader import ZkUrlError


async def _run(agent: Agent) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.stopped.set)
    loop.add_signal_handler(signal.SIGUSR1, agent.draining.set)  # Mesos' agent: shut down, tasks too
    return await agent.run()


def main(argv: list[str] | None = None) -> int:
    args = flags.parse(sys.argv[1:] if argv is None else argv)
    setup_logging(args.log_level)
    try:
        cfg = flags.config(args)
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
