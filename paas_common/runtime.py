"""What every daemon's ``__main__`` shares: structured logs to stderr (journald on hosts)."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s"


def setup_logging(level: str) -> None:
    """``key=value`` lines on stderr; an unknown level name means INFO."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO), stream=sys.stderr, format=LOG_FORMAT
    )
