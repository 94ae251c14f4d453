#!/usr/bin/env bash
# Build the host image that stands in for a bare-metal Debian machine in Molecule and the sandbox:
# baremetal-paas/debian-host:bookworm, a debootstrapped Debian 12 rootfs that boots systemd as PID 1 in
# Docker (without --privileged: --cap-add SYS_ADMIN, tmpfs /run and /run/lock, /sys/fs/cgroup ro), runs
# sshd (root by key only; /root/.ssh/authorized_keys is the empty slot the sandbox fills) and has python3
# with venv for Ansible.  No registry is reachable here, so the rootfs is `docker import`ed.
# Idempotent: does nothing when the image carries this recipe's hash, unless --force.  Needs root and
# debootstrap (installed with apt-get when missing).
set -euo pipefail
SELF=$(readlink -f "$0")
cd "$(dirname "$SELF")/.."

IMAGE=${HOST_IMAGE:-baremetal-paas/debian-host:bookworm}
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
LABEL=org.baremetal-paas.recipe
LOCK=${TMPDIR:-/tmp}/baremetal-paas-host-image.lock
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

# What the roles and Molecule expect on a host: systemd + sshd + python3 (venv for paas_release,
# python3-apt for ansible.builtin.apt, acl for become_user), and the probes the health gates use.
PACKAGES=(
  systemd systemd-sysv dbus openssh-server python3 python3-venv python3-apt sudo iproute2 procps
  ca-certificates curl netbase acl netcat-openbsd iputils-ping less gnupg
)
# Units that cannot work in a container (no udev, consoles, kernel mounts) or that race Ansible (apt timers).
MASKED=(
  systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-udev-trigger.service
  systemd-udev-settle.service systemd-modules-load.service systemd-remount-fs.service systemd-firstboot.service
  sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount sys-fs-fuse-connections.mount
  dev-hugepages.mount dev-mqueue.mount getty.target console-getty.service getty@tty1.service
  apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer
)

recipe=$( { cat "$SELF"; echo "$MIRROR"; } | sha256sum | cut -c1-16)

current() { timeout 20 docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null; }

if [ "${1:-}" != "--force" ] && [ "$(current || true)" = "$recipe" ]; then
  exit 0
fi

# One build at a time (pytest and a Molecule run may both ask); the loser re-checks after the wait.
exec 9>"$LOCK"
if ! flock -w 1200 9; then
  echo "build-host-image: another build held $LOCK for 20 minutes" >&2
  exit 1
fi
if [ "${1:-}" != "--force" ] && [ "$(current || true)" = "$recipe" ]; then
  exit 0
fi

if ! command -v debootstrap >/dev/null; then
  echo "build-host-image: installing debootstrap"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

root=$(mktemp -d "${TMPDIR:-/tmp}/host-rootfs.XXXXXX")
# debootstrap leaves /proc and /sys mounted in the rootfs when it fails half way: unmount before deleting.
cleanup() {
  for m in proc sys dev/pts; do $SUDO umount -l "$root/$m" 2>/dev/null || true; done
  $SUDO rm -rf --one-file-system "$root" "$root.log"
}
trap cleanup EXIT

started=$SECONDS
echo "build-host-image: debootstrap $SUITE from $MIRROR (a few minutes)"
include=$(IFS=,; echo "${PACKAGES[*]}")
if ! timeout 1200 $SUDO debootstrap --variant=minbase --include="$include" "$SUITE" "$root" "$MIRROR" \
  >"$root.log" 2>&1; then
  echo "build-host-image: debootstrap failed; the end of its log:" >&2
  tail -n 30 "$root.log" >&2
  [ -f "$root/debootstrap/debootstrap.log" ] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
  exit 1
fi
rm -f "$root.log"

# systemd-in-Docker: no consoles, no udev; boot to multi-user with sshd; a fresh machine-id per container.
$SUDO systemctl --root="$root" mask "${MASKED[@]}" >/dev/null 2>&1
$SUDO systemctl --root="$root" set-default multi-user.target >/dev/null 2>&1
$SUDO systemctl --root="$root" enable ssh.service >/dev/null 2>&1
: | $SUDO tee "$root/etc/machine-id" >/dev/null
$SUDO rm -f "$root/var/lib/dbus/machine-id"

# Every container gets its own SSH host keys, made on first boot before sshd starts.
$SUDO rm -f "$root"/etc/ssh/ssh_host_*
$SUDO tee "$root/etc/systemd/system/ssh-hostkeys.service" >/dev/null <<'EOF'
[Unit]
Description=Generate SSH host keys on first boot
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service
EOF
$SUDO systemctl --root="$root" enable ssh-hostkeys.service >/dev/null 2>&1
$SUDO tee "$root/etc/ssh/sshd_config.d/baremetal-paas.conf" >/dev/null <<'EOF'
# Root by key only: the sandbox writes its controller key into /root/.ssh/authorized_keys.
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
EOF
$SUDO install -d -m 0700 "$root/root/.ssh"
$SUDO install -m 0600 /dev/null "$root/root/.ssh/authorized_keys"

# Runtime apt (roles install docker.io, haproxy): the full suite set, no recommends, no docs.
$SUDO tee "$root/etc/apt/sources.list" >/dev/null <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
EOF
echo 'APT::Install-Recommends "false";' | $SUDO tee "$root/etc/apt/apt.conf.d/90no-recommends" >/dev/null
$SUDO tee "$root/etc/dpkg/dpkg.cfg.d/90nodoc" >/dev/null <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/locale/*
EOF
$SUDO rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/usr/share/man/* "$root"/usr/share/locale/* \
  "$root"/var/log/*.log "$root"/debootstrap
echo "$IMAGE" | $SUDO tee "$root/etc/baremetal-paas-host-image" >/dev/null

# Docker 20.10's import/commit refuse STOPSIGNAL, so the rootfs is imported under a scratch tag and the
# image metadata is added by a (registry-free) legacy build on top of it.
base="$IMAGE-rootfs"
$SUDO tar --sort=name --numeric-owner -C "$root" --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' \
  -cf - . | timeout 600 docker import - "$base" >/dev/null
printf '%s\n' "FROM $base" 'ENV container=docker' 'STOPSIGNAL SIGRTMIN+3' "LABEL $LABEL=$recipe" \
  'CMD ["/sbin/init"]' \
  | DOCKER_BUILDKIT=0 timeout 300 docker build -q -t "$IMAGE" - >"$root.log" 2>&1 || { cat "$root.log" >&2; exit 1; }
rm -f "$root.log"
docker rmi "$base" >/dev/null
echo "build-host-image: built $IMAGE (recipe $recipe) in $((SECONDS - started))s"
