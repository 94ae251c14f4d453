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
    logging.getLogger("aiohttp.server").addFilter(client_fault_as_warning)


def client_fault_as_warning(record: logging.LogRecord) -> bool:
    """aiohttp logs a malformed request (bad request line, header or chunk: the client's fault, answered
    with a 400) at ERROR with a traceback, which pages operators for what any port on a network receives;
    one WARNING line naming the fault says all there is.  Other records pass unchanged."""
    exc = record.exc_info[1] if record.exc_info else None
    if exc is None or "aiohttp" not in sys.modules:
        return True
    from aiohttp.http_exceptions import HttpProcessingError

    if isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500:
        lines = (line.strip() for line in str(exc.message).splitlines())
        fault = " ".join(line for line in lines if line.strip("^"))  # aiohttp's caret line points, no more
        record.msg, record.args = "%s: %s %s", (record.getMessage(), exc.code, fault)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text = None, None
    return True


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
