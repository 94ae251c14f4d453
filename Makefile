# Thin wrappers over scripts/: the scripts are what CI and the README run.
.PHONY: demo demo-down test test-ansible unit lint bench bench-ensemble bench-launch bench-failover soak setup

setup:
	bash scripts/setup.sh

# The sandbox: five Debian hosts in Docker, site.yml over SSH, a sample app through HAProxy (re-run: no change).
demo:
	bash scripts/demo.sh

demo-down:
	bash scripts/sandbox.sh down

test:
	bash scripts/test.sh

# Every Molecule scenario and the sandbox test (upgrade, rollback): ~27 min on 2 cores.
test-ansible:
	bash scripts/test.sh tests/molecule tests/sandbox

unit: setup
	.venv/bin/python -m pytest tests/unit -q

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

bench: setup
	.venv/bin/python bench/zk_bench.py
	.venv/bin/python bench/alloc_bench.py
	.venv/bin/python bench/master_failover.py --rounds 3

bench-ensemble: setup
	.venv/bin/python bench/zk_bench.py --ensemble 3 --repeat 3 --markdown
	.venv/bin/python bench/zk_failover.py --rounds 5

# Docker task launches through master-py + agent-py vs a `docker run` loop (needs scripts/docker-setup.sh).
bench-launch: setup
	.venv/bin/python bench/launch_bench.py --markdown

# Leader killed -> standby accepting scheduler calls, on zk_py and Apache ZooKeeper.
bench-failover: setup
	.venv/bin/python bench/master_failover.py --rounds 5

# The long fault runs (not in CI): many more simulated ZAB runs, and the real-process fault tests repeated.
soak: setup
	ZAB_SIM_RUNS=20000 .venv/bin/python -m pytest tests/unit/test_zab_sim.py -q
	for i in 1 2 3 4 5; do .venv/bin/python -m pytest tests/integration/test_ensemble.py -q -x || exit 1; done
