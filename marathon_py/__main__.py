"""``marathon-py`` (the framework, flags as Marathon's) and ``marathon-py lb`` (the HAProxy bridge)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from paas_common.runtime import relax_gc, setup_logging


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["lb"]:
        from marathon_py.lb.cli import main as lb_main

        return lb_main(args[1:])
    from marathon_py.daemon import Daemon
    from marathon_py.flags import parse

    options = parse(args, os.environ)
    setup_logging(options.args.log_level)
    relax_gc()
    try:
        return asyncio.run(Daemon(options).run())
    except OSError as e:
        logging.getLogger("marathon_py").error("cannot start: %s", e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
