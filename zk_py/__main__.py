"""``zk-py PATH/TO/zoo.cfg``: run a zk_py server until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from paas_common.runtime import setup_logging

from . import __version__
from .config import ConfigError, load
from .quorum import QuorumPeer
from .server import ZkServer, install_event_loop_policy


async def _serve(server: ZkServer) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.request_stop)
    await server.start()
    await server.wait_stopped()
    await server.stop()
    return 1 if server.fatal else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="zk-py", description="A ZooKeeper 3.8-compatible server.")
    p.add_argument("config", type=Path, help="path to zoo.cfg")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR (default INFO)")
    p.add_argument("--version", action="version", version=f"zk-py {__version__}")
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    log = logging.getLogger("zk_py")
    try:
        cfg = load(args.config)
    except ConfigError as e:
        log.error("invalid configuration %s: %s", args.config, e)
        print(f"zk-py: invalid configuration {args.config}: {e}", file=sys.stderr)
        return 2
    factory = install_event_loop_policy()
    server = ZkServer(cfg, None if cfg.standalone else QuorumPeer)
    try:
        if factory is not None:
            with asyncio.Runner(loop_factory=factory) as runner:
                return runner.run(_serve(server))
        return asyncio.run(_serve(server))
    except OSError as e:
        log.error("cannot start: %s", e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
