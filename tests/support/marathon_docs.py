"""Small Marathon app and root-group documents for the marathon_py store tests."""

from __future__ import annotations

import hashlib
from typing import Any


def ts(n: int) -> str:
    """The n-th version: one second apart, Marathon's millisecond ISO form."""
    return f"2024-01-01T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}.000Z"


def incompressible(size: int) -> str:
    blocks = (hashlib.sha256(str(i).encode()).hexdigest() for i in range(size // 64 + 1))
    return "".join(blocks)[:size]


def app(app_id: str, version: str) -> dict[str, Any]:
    return {"id": app_id, "cmd": "sleep 1", "instances": 1, "version": version}


def root_with(version: str, *apps: dict[str, Any]) -> dict[str, Any]:
    sub = {"id": "/prod", "apps": [a for a in apps if a["id"].startswith("/prod/")], "groups": [], "pods": []}
    top = [a for a in apps if not a["id"].startswith("/prod/")]
    return {"id": "/", "apps": top, "groups": [sub], "pods": [], "dependencies": [], "version": version}
