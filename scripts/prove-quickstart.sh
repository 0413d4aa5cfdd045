#!/usr/bin/env bash
# Proves the README's two quick-start commands on a bare Debian 12: a debootstrap `minbase` root plus git
# and ca-certificates (what a newcomer has), a clone of this repository's HEAD in it, then, as root in
# that root: `scripts/demo.sh` (for DEMO_SECONDS, default 30, instead of until Ctrl+C) and `scripts/test.sh`,
# and on request CI's own `.ci/run` (step `ci`), so a change to CI is proved the way a new machine sees it.
# Run by hand (as root; it downloads Debian packages and, in the interop test, npm packages):
#   scripts/prove-quickstart.sh            # both commands
#   QUICKSTART_STEPS=demo scripts/prove-quickstart.sh
#   QUICKSTART_STEPS="demo test ci" scripts/prove-quickstart.sh   # and then CI, in the same root
# Behind a TLS-intercepting proxy, QUICKSTART_EXTRA_CA_DIR names a folder of its CA certificates (*.crt),
# trusted in the root as on the host (npm reaches its registry over HTTPS; apt uses plain HTTP).
# The base tarball is cached in QUICKSTART_CACHE (default /var/cache/connector-quickstart), so only the
# first run pays for debootstrap's downloads. The root is thrown away afterwards (QUICKSTART_KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
cache=${QUICKSTART_CACHE:-/var/cache/connector-quickstart}
steps=${QUICKSTART_STEPS:-demo test}
mirror=${QUICKSTART_MIRROR:-http://deb.debian.org/debian}
tarball="$cache/bookworm-minbase-git.tgz"

[[ $(id -u) -eq 0 ]] || { echo "prove-quickstart: run as root (debootstrap, chroot)" >&2; exit 2; }
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }

root=$(mktemp -d /var/tmp/connector-quickstart.XXXXXX)
# mktemp makes it 0700: as the root's "/" that would keep every user but root out of everything (the
# package test runs the connector as its system user), which no installed Debian does.
chmod 0755 "$root"
cleanup() {
  if [[ -n "${QUICKSTART_KEEP:-}" ]]; then echo "prove-quickstart: root kept in $root"; else rm -rf "$root"; fi
}
trap cleanup EXIT

timed() {  # prints how long each step took: the figures worth knowing before putting this in CI
  local started=$SECONDS status=0
  "$@" || status=$?
  echo "prove-quickstart: '$*' took $((SECONDS - started)) s, exit status $status"
  return "$status"
}

if [[ ! -f "$tarball" ]]; then
  mkdir -p "$cache"
  timed debootstrap --variant=minbase --include=git,ca-certificates --make-tarball="$tarball.part" \
    bookworm "$root" "$mirror"
  mv "$tarball.part" "$tarball"
fi
timed debootstrap --variant=minbase --include=git,ca-certificates --unpack-tarball="$tarball" \
  bookworm "$root" "$mirror"
git clone --quiet --no-local "$repo" "$root/root/redis-eventhubs-connector"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The /etc/hosts of an installed Debian (debootstrap writes none): localhost is ::1 as well as 127.0.0.1,
# which is what a client that tries IPv6 first meets on a user's machine.
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n' \
  >"$root/etc/hosts"
if [[ -n "${QUICKSTART_EXTRA_CA_DIR:-}" ]]; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp "$QUICKSTART_EXTRA_CA_DIR"/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null
fi
# As in every build chroot: packages do not start their services (redis-server would take port 6379 of
# the host's network); on a real machine systemd starts it and setup.sh disables it again.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"

# New mount and PID namespaces: the mounts vanish and every process left inside dies with the namespace.
in_root() {
  unshare --mount --pid --fork --kill-child bash -c '
    root=$1; shift
    mount --rbind /dev "$root/dev" && mount -t proc proc "$root/proc" && mount -t sysfs sys "$root/sys"
    exec chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb PATH=/usr/sbin:/usr/bin:/sbin:/bin \
      bash -c "cd /root/redis-eventhubs-connector && $*"' in-root "$root" "$@"
}

for step in $steps; do
  case "$step" in
    demo) timed in_root "DEMO_SECONDS=${DEMO_SECONDS:-30} scripts/demo.sh" ;;
    test) timed in_root "scripts/test.sh" ;;
    ci) timed in_root "CI=true bash .ci/run" ;;
    *) echo "prove-quickstart: unknown step '$step' (demo, test, ci)" >&2; exit 2 ;;
  esac
done
echo "prove-quickstart: PASS ($steps)"
