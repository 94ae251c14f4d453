#!/usr/bin/env bash
# The test command of the README: set up this machine, then run every test.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/unit -x).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "test: setup failed" >&2; exit 1; }
bash scripts/docker-setup.sh || { echo "test: Docker Engine setup failed" >&2; exit 1; }
.venv/bin/python -m pytest -p no:cacheprovider "$@"
rc=$?
if [ "$rc" = 5 ]; then
  echo "test: pytest collected no tests - treating that as a failure" >&2
  exit 1
fi
exit "$rc"
