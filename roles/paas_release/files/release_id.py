"""Name a release of the project: its version plus a hash of what goes into its wheel.

Run on the controller by the paas_release role; the name keys the wheelhouse cache and the release
directory on the hosts, so a changed source file makes a new release and an unchanged tree reuses the
cache.  The role's build recipe (tasks/build.yml) is hashed too: a changed recipe never reuses a wheelhouse
the old one built.  Prints JSON: {"version": ..., "release": ...}.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[1] / "tasks" / "build.yml"


def source_files(project: Path, includes: list[str]) -> list[Path]:
    """pyproject.toml and every file of the packages setuptools will find (the include patterns)."""
    tops = {p.split(".")[0].rstrip("*") for p in includes}
    files = [project / "pyproject.toml"]
    for top in sorted(tops):
        for path in sorted((project / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files.append(path)
    return files


def main() -> None:
    project = Path(sys.argv[1]).resolve()
    extras = sorted(e for e in sys.argv[2:] if e)
    meta = tomllib.loads((project / "pyproject.toml").read_text())
    version = meta["project"]["version"]
    includes = meta["tool"]["setuptools"]["packages"]["find"]["include"]
    digest = hashlib.sha256(",".join(extras).encode())
    digest.update(RECIPE.read_bytes())
    for path in source_files(project, includes):
        digest.update(str(path.relative_to(project)).encode() + b"\0" + path.read_bytes())
    print(json.dumps({"version": version, "release": f"{version}-{digest.hexdigest()[:12]}"}))


if __name__ == "__main__":
    main()
