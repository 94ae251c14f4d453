"""Entry point for ``python -m paasctl`` and the ``paasctl`` console script."""

from __future__ import annotations

import sys

from paasctl.cli import main

if __name__ == "__main__":
    sys.exit(main())

__all__ = ["main"]
