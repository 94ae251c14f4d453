#!/usr/bin/env bash
# The README's demo (`make demo`): the sandbox — five Debian hosts in Docker converged by site.yml over SSH,
# a sample app deployed through Marathon and served by HAProxy (scripts/sandbox.sh; `make demo-down`).
exec bash "$(dirname "$0")/sandbox.sh" up
