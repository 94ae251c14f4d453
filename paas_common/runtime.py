"""What every daemon's ``__main__`` shares: structured logs to stderr (journald on hosts), the GC policy."""

from __future__ import annotations

import gc
import logging
import sys

LOG_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s"


def setup_logging(level: str) -> None:
    """``key=value`` lines on stderr; an unknown level name means INFO."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO), stream=sys.stderr, format=LOG_FORMAT
    )


# Objects allocated between young collections (CPython's default: 700).
GC_YOUNG_THRESHOLD = 50_000


def relax_gc() -> None:
    """Make full garbage collections rare in daemons that hold large state in memory.

    With the default thresholds a daemon holding millions of objects (marathon-py with 10,000 apps and
    their tasks) runs a full collection every few hundred thousand allocations, and each one walks the
    whole heap: a pause of ~200 ms on whichever request triggered it.  Almost all of that state is freed
    by reference counting; cycles are rare, so collecting less often only delays the few there are."""
    gc.collect()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 100)
