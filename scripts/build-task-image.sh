#!/usr/bin/env bash
# Build the task image the agent tests run: baremetal-paas/busybox:latest, a static busybox with a symlink
# per applet (sh, sleep, httpd, nc, cat, head, …), /tmp and a minimal /etc.  No registry is needed (or
# reachable): the root filesystem is assembled here from Debian's busybox-static and `docker import`ed.
# Idempotent: does nothing when the image exists, unless --force.
set -euo pipefail

IMAGE=${TASK_IMAGE:-baremetal-paas/busybox:latest}
BUSYBOX=${BUSYBOX:-/bin/busybox}

if [ "${1:-}" != "--force" ] && timeout 20 docker image inspect "$IMAGE" >/dev/null 2>&1; then
  exit 0
fi
# A dynamically linked busybox (Debian's `busybox` package) would not run in an empty rootfs; ldd fails on
# a static binary.
if [ ! -x "$BUSYBOX" ] || ldd "$BUSYBOX" >/dev/null 2>&1; then
  echo "build-task-image: $BUSYBOX is not a static busybox (apt-get install busybox-static)" >&2
  exit 1
fi

root=$(mktemp -d "${TMPDIR:-/tmp}/task-rootfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,etc,root,tmp,var/www,proc,sys,dev,mnt/mesos/sandbox}
chmod 1777 "$root/tmp"
cp "$BUSYBOX" "$root/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
ln -s bin "$root/sbin"
mkdir -p "$root/usr"
ln -s ../bin "$root/usr/bin"
ln -s ../bin "$root/usr/sbin"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
echo 'hello from baremetal-paas/busybox' >"$root/var/www/index.html"

version=$("$BUSYBOX" | awk 'NR==1{print $2}')  # no head: SIGPIPE under pipefail
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf - . \
  | timeout 120 docker import \
    --change 'CMD ["/bin/sh"]' \
    --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL org.baremetal-paas.busybox=$version" \
    - "$IMAGE" >/dev/null
echo "build-task-image: built $IMAGE (busybox $version)"
