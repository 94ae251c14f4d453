#!/usr/bin/env bash
# pymesos 0.3.15 (the interop client for master_py) into .venv.  `pip install pymesos` fails on Python 3.11:
# its dependency http-parser 0.9.0 ships Cython C that no longer compiles (benoitc/http-parser#94,
# douban/pymesos#130).  pymesos only needs http-parser's pure-Python fallback, so install pymesos and its
# other dependencies without dependency resolution and copy just the .py files of http_parser.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if "$PY" -c "import pymesos, http_parser.http" 2>/dev/null; then
  exit 0
fi
echo "setup: installing pymesos 0.3.15 (with http-parser's pure-Python parser)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
.venv/bin/pip download -q --no-deps --no-binary :all: -d "$tmp" http-parser==0.9.0
tar -xzf "$tmp"/http-parser-0.9.0.tar.gz -C "$tmp"
site=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
mkdir -p "$site/http_parser"
cp "$tmp"/http-parser-0.9.0/http_parser/*.py "$site/http_parser/"
.venv/bin/pip install -q --no-deps pymesos==0.3.15 addict==2.4.0 six
"$PY" -c "import pymesos, http_parser.http; from http_parser.http import HttpParser" >/dev/null
