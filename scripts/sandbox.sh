#!/usr/bin/env bash
# The sandbox (`make demo`, `make demo-down`): the whole stack on five Debian hosts that are containers of
# baremetal-paas/debian-host:bookworm on an --internal Docker network, deployed by `ansible-playbook
# site.yml` over SSH exactly as on bare metal, with a sample app served through HAProxy.
#
#   scripts/sandbox.sh up       create what is missing, converge site.yml, deploy the app, print where to look
#   scripts/sandbox.sh down     remove the containers, their volumes, the network and the key directory
#   scripts/sandbox.sh status   the containers and the URLs
#
# The hosts, their addresses and roles come from inventories/sandbox/hosts.yml (agents: group mesos_agents).
# Re-running `up` converges with nothing changed. Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
# The project's ansible.cfg (default inventory: the sandbox), also where Ansible would skip it (a world-writable
# checkout).
export ANSIBLE_CONFIG="$PWD/ansible.cfg"

NETWORK=sandbox-paas
SUBNET=10.213.80.0/24
PREFIX=sandbox-
LABEL=org.baremetal-paas.sandbox
IMAGE=baremetal-paas/debian-host:bookworm
TASK_IMAGE=baremetal-paas/busybox:latest
KEYDIR=.sandbox
APP=examples/sandbox-web.json
BOOT_TIMEOUT=${SANDBOX_BOOT_TIMEOUT:-120}
APP_TIMEOUT=${SANDBOX_APP_TIMEOUT:-300}
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

log() { echo "sandbox: [$(date +%T)] $*"; }

# "name address kind" per host (kind: agent for group mesos_agents, else control), from the inventory.
hosts_table() {
  .venv/bin/ansible-inventory --list 2>/dev/null | .venv/bin/python -c '
import json, sys
inv = json.load(sys.stdin)
def members(group):
    g = inv.get(group, {})
    return set(g.get("hosts", [])).union(*(members(c) for c in g.get("children", [])))
agents = members("mesos_agents")
for name, hv in sorted(inv["_meta"]["hostvars"].items()):
    print(name, hv["ansible_host"], "agent" if name in agents else "control")'
}

# The sample app's service port, and the first host of a kind (control hosts also run HAProxy).
service_port() { .venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["container"]["portMappings"][0]["servicePort"])' "$APP"; }
first_of() { awk -v k="$1" '$3 == k {print $2; exit}' <<<"$TABLE"; }

ensure_network() {
  docker network inspect "$NETWORK" >/dev/null 2>&1 && return
  log "network $NETWORK ($SUBNET, internal)"
  docker network create --internal --subnet "$SUBNET" --label "$LABEL=1" "$NETWORK" >/dev/null
}

ensure_key() {
  mkdir -p "$KEYDIR"
  chmod 700 "$KEYDIR"
  [ -f "$KEYDIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C baremetal-paas-sandbox -f "$KEYDIR/id_ed25519"
  # `ssh -F .sandbox/ssh_config ctl1` reaches a host as root with the sandbox's key.
  : >"$KEYDIR/ssh_config"
  while read -r name ip _; do
    printf 'Host %s\n  HostName %s\n  User root\n  IdentityFile %s\n  UserKnownHostsFile %s\n  StrictHostKeyChecking accept-new\n' \
      "$name" "$ip" "$PWD/$KEYDIR/id_ed25519" "$PWD/$KEYDIR/known_hosts" >>"$KEYDIR/ssh_config"
  done <<<"$TABLE"
}

# One host: systemd as PID 1 without --privileged; agents also run Docker Engine (NET_ADMIN, no seccomp
# filter, /var/lib/docker on a volume: overlay2 cannot stack on the container's overlay root).
ensure_host() {
  local name=$1 ip=$2 kind=$3 container=$PREFIX$1
  local state
  state=$(docker inspect --format '{{.State.Status}}' "$container" 2>/dev/null || true)
  if [ "$state" = running ]; then return; fi
  if [ -n "$state" ]; then
    log "starting $container"
    docker start "$container" >/dev/null
    return
  fi
  local args=(--detach --name "$container" --hostname "$name" --label "$LABEL=1"
    --network "$NETWORK" --ip "$ip" --cap-add SYS_ADMIN
    --tmpfs /run --tmpfs /run/lock --volume /sys/fs/cgroup:/sys/fs/cgroup:ro)
  local other other_ip _k
  while read -r other other_ip _k; do args+=(--add-host "$other:$other_ip"); done <<<"$TABLE"
  if [ "$kind" = agent ]; then
    docker volume create --label "$LABEL=1" "$container-docker" >/dev/null
    args+=(--cap-add NET_ADMIN --security-opt seccomp=unconfined --volume "$container-docker:/var/lib/docker")
  fi
  log "creating $container ($ip, $kind)"
  docker run "${args[@]}" "$IMAGE" >/dev/null
}

# systemd booted, the key authorized, sshd answering; bounded by BOOT_TIMEOUT for all hosts together.
wait_for_ssh() {
  local deadline=$((SECONDS + BOOT_TIMEOUT)) name ip _k
  while read -r name ip _k; do
    until docker exec "$PREFIX$name" systemctl is-system-running 2>/dev/null | grep -qE '^(running|degraded)$'; do
      [ "$SECONDS" -lt "$deadline" ] || { log "$name: systemd did not finish booting"; return 1; }
      sleep 1
    done
    docker exec -i "$PREFIX$name" sh -c 'cat > /root/.ssh/authorized_keys' <"$KEYDIR/id_ed25519.pub"
    until ssh -n -F "$KEYDIR/ssh_config" -o BatchMode=yes -o ConnectTimeout=5 "$name" true 2>/dev/null; do
      [ "$SECONDS" -lt "$deadline" ] || { log "$name: no SSH at $ip"; return 1; }
      sleep 1
    done
  done <<<"$TABLE"
}

prepare_controller() {
  bash scripts/setup.sh
  bash scripts/docker-setup.sh   # Docker Engine, busybox-static and the task image
  bash scripts/build-host-image.sh
  # The hosts reach no mirror: the docker and haproxy_lb roles download .deb files here (apt lists needed).
  compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null || $SUDO apt-get update -qq
  # Agents cannot pull: the roles load this tarball into each agent's Docker Engine.
  [ -f "$KEYDIR/busybox.tar" ] || docker save --output "$KEYDIR/busybox.tar" "$TASK_IMAGE"
}

deploy_app() {
  local ctl port
  ctl=$(first_of control)
  port=$(service_port)
  local marathons=()
  while read -r _n ip kind; do [ "$kind" = control ] && marathons+=(--marathon "http://$ip:8080"); done <<<"$TABLE"
  # POST when new, else PUT: an unchanged definition makes a deployment with no steps (tasks left alone).
  log "deploying $APP through Marathon"
  .venv/bin/paasctl app "${marathons[@]}" deploy "$APP" --timeout "$APP_TIMEOUT"
  log "waiting for the app through HAProxy at http://$ctl:$port/"
  local deadline=$((SECONDS + APP_TIMEOUT))
  until curl -fsS --max-time 5 "http://$ctl:$port/" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { log "the app did not answer through HAProxy within ${APP_TIMEOUT}s"; return 1; }
    sleep 1
  done
}

where_to_look() {
  local ctl port
  ctl=$(first_of control)
  port=$(service_port)
  cat <<EOF

The sandbox is up ($(wc -l <<<"$TABLE") hosts on $NETWORK, $SUBNET):
  Marathon UI       http://$ctl:8080/ui/   (any control host; standbys proxy to the leader)
  Mesos master      http://$ctl:5050/master/state   (the leader: http://$ctl:5050/master/redirect)
  the sample app    http://$ctl:$port/   (HAProxy on every control host, port $port)
  HAProxy stats     http://$ctl:9090/haproxy?stats
  ssh               ssh -F $KEYDIR/ssh_config <host>   ($(awk '{printf "%s%s", sep, $1; sep=", "}' <<<"$TABLE"))
  ansible           .venv/bin/ansible-playbook site.yml   (the default inventory is the sandbox)
  upgrade/rollback  .venv/bin/ansible-playbook playbooks/upgrade.yml | playbooks/rollback.yml
  remove it all     make demo-down
EOF
}

up() {
  local started=$SECONDS
  mkdir -p "$KEYDIR"
  log "preparing the controller (setup.sh, docker-setup.sh, the host image)"
  prepare_controller
  TABLE=$(hosts_table)
  ensure_key
  ensure_network
  while read -r name ip kind; do ensure_host "$name" "$ip" "$kind"; done <<<"$TABLE"
  log "waiting for the hosts to boot and answer SSH"
  wait_for_ssh
  log "ansible-playbook site.yml"
  .venv/bin/ansible-playbook site.yml
  deploy_app
  where_to_look
  log "up in $((SECONDS - started))s"
}

down() {
  local containers volumes
  mapfile -t containers < <(docker ps -aq --filter "label=$LABEL=1")
  if [ ${#containers[@]} -gt 0 ]; then
    log "removing containers $(docker inspect --format '{{.Name}}' "${containers[@]}" | tr -d / | xargs)"
    timeout 120 docker rm --force --volumes "${containers[@]}" >/dev/null
  fi
  mapfile -t volumes < <(docker volume ls -q --filter "label=$LABEL=1")
  [ ${#volumes[@]} -eq 0 ] || docker volume rm "${volumes[@]}" >/dev/null
  if docker network inspect "$NETWORK" >/dev/null 2>&1; then
    log "removing network $NETWORK"
    docker network rm "$NETWORK" >/dev/null
  fi
  rm -rf "$KEYDIR"
}

status() {
  docker ps -a --filter "label=$LABEL=1" --format 'table {{.Names}}\t{{.Status}}'
  docker network inspect "$NETWORK" >/dev/null 2>&1 || { echo "no sandbox network: make demo"; return; }
  TABLE=$(hosts_table)
  where_to_look
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
