#!/usr/bin/env bash
# Prepare this machine for the tests: Debian packages the tests use, and a virtualenv with the
# project and its dev dependencies.  Idempotent; safe to run on a fresh Debian bookworm machine.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

# Apache ZooKeeper 3.8 + zkCli.sh (interop, comparison); openssl (test certificates); chromium (the web UI
# test); haproxy (marathon-py lb); debootstrap (the Debian host image of Molecule and the sandbox)
apt_packages=(zookeeper openssl chromium haproxy debootstrap)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
  echo "setup: installing the project and its dev dependencies into .venv"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi
bash scripts/install-pymesos.sh   # the interop client for master_py (needs a workaround on Python 3.11)
