#!/usr/bin/env bash
# The README's demo: a zk_py server on 127.0.0.1:2181 in the foreground (Ctrl-C stops it).
# Try it from another shell:  .venv/bin/paasctl zk status   /   .venv/bin/paasctl zk tree /
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p demo-data/zookeeper
echo "demo: zk_py on 127.0.0.1:2181 (data in demo-data/); Ctrl-C to stop"
exec .venv/bin/zk-py examples/zoo.cfg
