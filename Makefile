# Thin wrappers over scripts/: the scripts are what CI and the README run.
.PHONY: demo test unit lint bench setup

setup:
	bash scripts/setup.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

unit: setup
	.venv/bin/python -m pytest tests/unit -q

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

bench: setup
	.venv/bin/python bench/zk_bench.py
