"""paasctl's command line: argument parsing, dispatch, and the one place that prints.

Command groups — ``zk`` (paasctl.zk), ``master`` and ``agent`` (paasctl.mesos), ``run`` (paasctl.run),
``dev`` (paasctl.dev), ``app`` and ``deployments`` (paasctl.marathon) — live in their own modules and
plug in with ``add_options(parser, with_defaults)`` and ``register(groups, common, formatter, epilog)``.

Global options work before or after the subcommand (``paasctl --json zk ls /`` and
``paasctl zk ls / --json``): the top-level parser owns the defaults, and every leaf parser repeats
the options with ``default=SUPPRESS`` so a leaf only sets what was actually typed there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from paasctl import dev, marathon, mesos, run, zk
from paasctl.common import EXIT_CODES_HELP, EXIT_INTERRUPTED, EXIT_USAGE, CliError, Outcome
from paasctl.options import default, seconds

GROUPS = (zk, mesos, run, dev, marathon)
MAX_TIMEOUT = 300.0
DEFAULT_TIMEOUT = 5.0


class Parser(argparse.ArgumentParser):
    """Usage errors as one line (plus a pointer to --help) instead of the full usage block."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see '{self.prog} --help')", EXIT_USAGE, "usage")


class Formatter(argparse.HelpFormatter):
    """Wraps one-line descriptions but keeps multi-line text (the exit-status epilog) as written."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def add_global_options(parser: argparse.ArgumentParser, with_defaults: bool) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        default=default(False, with_defaults),
        help="machine-readable JSON output on stdout",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=seconds("timeout", MAX_TIMEOUT),
        default=default(DEFAULT_TIMEOUT, with_defaults),
        help=f"connect timeout, at most {MAX_TIMEOUT:g} (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        default=default(False, with_defaults),
        help="log client library details to stderr",
    )


def build_parser() -> argparse.ArgumentParser:
    top = Parser(
        prog="paasctl",
        description="Operator CLI for baremetal-paas (ZooKeeper, Mesos, Marathon, a dev cluster).",
        epilog=EXIT_CODES_HELP,
        formatter_class=Formatter,
    )
    add_global_options(top, with_defaults=True)
    for group in GROUPS:
        group.add_options(top, with_defaults=True)
    common = argparse.ArgumentParser(add_help=False)
    add_global_options(common, with_defaults=False)
    groups = top.add_subparsers(dest="group", metavar="GROUP", required=True, parser_class=Parser)
    for group in GROUPS:
        group.register(groups, common, Formatter, EXIT_CODES_HELP)
    return top


def _emit(outcome: Outcome, as_json: bool) -> None:
    if outcome.raw is not None and not as_json:
        sys.stdout.flush()
        sys.stdout.buffer.write(outcome.raw)
        sys.stdout.buffer.flush()
        return
    if as_json:
        body = outcome.json if outcome.json is not None else {}
        sys.stdout.write(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    elif outcome.text is not None:
        sys.stdout.write(outcome.text + "\n")
    sys.stdout.flush()


def _report(err: CliError, as_json: bool) -> int:
    sys.stderr.write(f"paasctl: {err.message}\n")
    if as_json:
        sys.stdout.write(json.dumps(err.to_json(), ensure_ascii=False) + "\n")
        sys.stdout.flush()
    return err.code


def _utf8_streams() -> None:
    """Data is printed as UTF-8 whatever the locale; undecodable stderr text must not crash us."""
    for stream, errors in ((sys.stdout, "strict"), (sys.stderr, "backslashreplace")):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(encoding="utf-8", errors=errors)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one paasctl command; returns the exit status (see EXIT_CODES_HELP)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    _utf8_streams()
    as_json = "--json" in args_list  # known before parsing, so usage errors honour it too
    try:
        args = build_parser().parse_args(args_list)
        as_json = bool(args.json)
        if getattr(args, "raw", False) and as_json:
            raise CliError(
                "--raw cannot be combined with --json (see 'paasctl zk get --help')", EXIT_USAGE, "usage"
            )
        outcome: Outcome = args.handler(args)
        _emit(outcome, as_json)
        return outcome.code
    except CliError as e:
        return _report(e, as_json)
    except KeyboardInterrupt:
        sys.stderr.write("paasctl: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (paasctl ... | head): stop quietly, as other Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
