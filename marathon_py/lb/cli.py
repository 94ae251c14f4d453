"""``marathon-py lb``: marathon-lb's flags (``--marathon``, ``--group``, ``--haproxy-config``,
``--health-check`` on by default, ``--strict-mode``, ``--skip-config-cleanup``, ``--dry``,
``--max-backoff``; §9.2) plus what a self-managed HAProxy needs (``--haproxy-bin``, ``--pid-file``,
``--master-socket``, the fixed frontends' ports). SIGTERM/SIGINT stop the bridge and its HAProxy; SIGHUP
re-reads Marathon (as in marathon-lb).  ``--auth-credentials`` may instead come from the variable
``MARATHON_LB_AUTH_CREDENTIALS``, which keeps the password off the command line (``ps`` shows it to every
local user).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import shutil
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

import aiohttp

from marathon_py.lb.bridge import Bridge, BridgeConfig, MarathonClient, MarathonError
from marathon_py.lb.config import DEFAULT_GROUP, LbOptions
from marathon_py.lb.haproxy import HAProxy, HAProxyError, Outcome
from paas_common.runtime import setup_logging

log = logging.getLogger("marathon_py.lb")
PROG = "marathon-py lb"


def _port(text: str) -> int | None:
    """A TCP port; 0 leaves that frontend out."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}") from None
    if not 0 <= value < 65536:
        raise argparse.ArgumentTypeError(f"port {value} out of range")
    return value or None


def _credentials(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError("expected user:password")
    return user, password


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seconds {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


CREDENTIALS_VARIABLE = "MARATHON_LB_AUTH_CREDENTIALS"


def parse(argv: list[str], env: Mapping[str, str] | None = None) -> argparse.Namespace:
    """The flags, or argparse's exit 2 with the reason; ``env`` may hold the credentials (the flag wins)."""
    p = argparse.ArgumentParser(prog=PROG, description="marathon-lb: Marathon's apps and events → HAProxy.")
    p.add_argument(
        "--marathon", "-m", action="extend", nargs="+", required=True, metavar="URL", help="repeatable"
    )
    p.add_argument(
        "--group",
        action="append",
        help=f"serve apps whose HAPROXY_GROUP has this name (repeatable; '*' = all; default {DEFAULT_GROUP})",
    )
    p.add_argument("--haproxy-config", type=Path, default=Path("/etc/haproxy/haproxy.cfg"))
    p.add_argument("--haproxy-bin", default="haproxy")
    p.add_argument("--pid-file", type=Path, help="the HAProxy master's (default: <config>.pid)")
    p.add_argument("--master-socket", type=Path, help="the HAProxy master CLI (default: <config>.sock)")
    p.add_argument(
        "--reload-command",
        help="HAProxy runs elsewhere (e.g. 'systemctl reload haproxy'): run this after installing a config",
    )
    p.add_argument("--bind-address", default="*", help="address of every frontend (default *)")
    p.add_argument("--http-port", type=_port, default=80, help="vhost frontend (0: none)")
    p.add_argument("--appid-port", type=_port, default=9091, help="X-Marathon-App-Id frontend (0: none)")
    p.add_argument("--stats-port", type=_port, default=9090, help="stats and health frontend (0: none)")
    p.add_argument("--maxconn", type=int, default=50000)
    p.add_argument("--auth-credentials", type=_credentials, metavar="USER:PASSWORD")
    p.add_argument(
        "--no-health-check",
        dest="health_check",
        action="store_false",
        help="ignore task health",
    )
    p.add_argument("--strict-mode", action="store_true", help="serve only HAPROXY_{n}_ENABLED=true ports")
    p.add_argument("--skip-config-cleanup", action="store_true", help="on a rejected config keep the old one")
    p.add_argument("--once", action="store_true", help="render, check and install once, then exit")
    p.add_argument("--dry", action="store_true", help="print the config and exit")
    p.add_argument("--resync-interval", type=_seconds, default=300.0, help="full re-read every (seconds)")
    p.add_argument("--debounce", type=_seconds, default=0.5, help="coalesce events within (seconds)")
    p.add_argument("--max-backoff", type=_seconds, default=300.0, help="event stream reconnect cap (seconds)")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    secret = (env or {}).get(CREDENTIALS_VARIABLE)
    if args.auth_credentials is None and secret:
        try:
            args.auth_credentials = _credentials(secret)
        except argparse.ArgumentTypeError as e:
            p.error(f"{CREDENTIALS_VARIABLE}: {e}")
    return args


def bridge_config(args: argparse.Namespace) -> BridgeConfig:
    options = LbOptions(
        groups=frozenset(args.group or [DEFAULT_GROUP]),
        bind_address=args.bind_address,
        http_port=args.http_port,
        appid_port=args.appid_port,
        stats_port=args.stats_port,
        health_check=args.health_check,
        strict_mode=args.strict_mode,
        maxconn=args.maxconn,
    )
    return BridgeConfig(
        marathons=tuple(args.marathon),
        options=options,
        auth=args.auth_credentials,
        resync_interval=args.resync_interval,
        debounce=args.debounce,
        max_backoff=args.max_backoff,
        config_cleanup=not args.skip_config_cleanup,
    )


def haproxy_of(args: argparse.Namespace) -> HAProxy:
    reload_command = shlex.split(args.reload_command) if args.reload_command else None
    return HAProxy(
        args.haproxy_config,
        binary=args.haproxy_bin,
        manage=reload_command is None and not args.once,
        pid_file=args.pid_file,
        master_socket=args.master_socket,
        reload_command=reload_command,
    )


async def _run(args: argparse.Namespace) -> int:
    cfg = bridge_config(args)
    haproxy = haproxy_of(args)
    async with aiohttp.ClientSession() as session:
        bridge = Bridge(cfg, MarathonClient(session, cfg), haproxy)
        if args.dry:
            _, _, rendered = await bridge.render()
            sys.stdout.write(rendered.text)
            return 0
        if args.once:
            applied = await bridge.sync_once()
            return 1 if applied.outcome in (Outcome.INVALID, Outcome.FAILED) else 0
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, bridge.stop)
        loop.add_signal_handler(signal.SIGINT, bridge.stop)
        loop.add_signal_handler(signal.SIGHUP, bridge.mark_dirty, "SIGHUP")
        await bridge.run()
    return 0


def main(argv: list[str]) -> int:
    args = parse(argv, os.environ)
    setup_logging(args.log_level)
    if not args.dry and shutil.which(args.haproxy_bin) is None:
        log.error("no %s binary (Debian: apt-get install haproxy)", args.haproxy_bin)
        return 2
    try:
        return asyncio.run(_run(args))
    except (MarathonError, HAProxyError, OSError, ValueError) as e:
        log.error("%s", e)
        return 1
