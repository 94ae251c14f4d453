#!/usr/bin/env bash
# Prepare the local Docker Engine for agent_py's tests: install Debian's docker.io and busybox-static if
# missing, start dockerd if it does not answer (no systemd needed: it is started detached, logging to a
# file), and build the task image baremetal-paas/busybox:latest locally (no registry is reachable).
# Idempotent and bounded: a second run only checks; dockerd gets at most DOCKER_START_TIMEOUT seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
START_TIMEOUT=${DOCKER_START_TIMEOUT:-60}

missing=()
for p in docker.io busybox-static; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "docker-setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

engine_up() { timeout 10 docker info >/dev/null 2>&1; }

if ! engine_up; then
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    $SUDO systemctl start docker
  elif ! pgrep -x dockerd >/dev/null; then
    log=/var/log/dockerd.log
    $SUDO test -w /var/log || log="${TMPDIR:-/tmp}/dockerd.log"
    echo "docker-setup: starting dockerd (log: $log)"
    # Own session, stdin closed: the daemon outlives this script and the test run that called it.
    $SUDO setsid sh -c "exec dockerd >>'$log' 2>&1 </dev/null" &
  fi
  deadline=$((SECONDS + START_TIMEOUT))
  until engine_up; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "docker-setup: the Docker Engine did not answer within ${START_TIMEOUT}s" \
        "(if dockerd runs: may $(id -un) use /var/run/docker.sock?)" >&2
      [ -n "${log:-}" ] && $SUDO tail -n 20 "$log" >&2
      exit 1
    fi
    sleep 0.5
  done
fi

bash scripts/build-task-image.sh
