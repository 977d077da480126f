#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# measure-install.sh: what scripts/install-deps.sh costs on a fresh Debian 12.
#
#   scripts/measure-install.sh [WORKDIR]
#
# Builds a minimal Debian 12 (debootstrap --variant=minbase: less than any
# real installation has, so the numbers are an upper bound) from the host's
# apt sources, then runs install-deps.sh in it and prints apt's download and
# disk summary, the wall time of install-deps.sh and the size of the root
# before and after.  Needs root, debootstrap and network access to the
# mirror; takes minutes.  README.md quotes its output.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "measure-install: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot)"
command -v debootstrap >/dev/null || die "debootstrap missing: run scripts/install-deps.sh"

if [ -z "${MEASURE_IN_NS:-}" ]; then
  MEASURE_IN_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi
work=${1:-$(mktemp -d /var/tmp/pallet-measure.XXXXXX)}
root=$work/root
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list)
[ -n "$mirror" ] || die "no Debian mirror in /etc/apt/sources.list*"

t0=$(date +%s)
debootstrap --variant=minbase bookworm "$root" "$mirror" > "$work/debootstrap.log" 2>&1 ||
  { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
t1=$(date +%s)
# The host's apt sources (same mirror, updates and security suites).
rm -f "$root/etc/apt/sources.list"
cp /etc/apt/sources.list.d/*.sources "$root/etc/apt/sources.list.d/" 2>/dev/null || true
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$root/etc/apt/sources.list"
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"; chmod +x "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mkdir -p "$root/src"
cp "$top/scripts/install-deps.sh" "$root/src/"
before=$(du -sxm "$root" | cut -f1)
chroot "$root" apt-get update -qq
# apt's own summary, without installing (--assume-no answers its question).
# shellcheck disable=SC2046
chroot "$root" apt-get install --no-install-recommends --assume-no \
  $(chroot "$root" sh /src/install-deps.sh --list) > "$work/summary.txt" 2>&1 || true
t2=$(date +%s)
chroot "$root" sh /src/install-deps.sh > "$work/install.log" 2>&1 ||
  { tail -n 30 "$work/install.log" >&2; die "install-deps.sh failed in the fresh root"; }
t3=$(date +%s)
after=$(du -sxm "$root" | cut -f1)
second=$( { /usr/bin/time -f %e chroot "$root" sh /src/install-deps.sh >/dev/null; } 2>&1 )
kernel=$(ls "$root"/boot/vmlinuz-* 2>/dev/null | head -n 1)
umount "$root/dev" "$root/proc"

grep -E '^(Need to get|After this operation|[0-9]+ upgraded)' "$work/summary.txt"
echo "debootstrap minbase: $((t1 - t0)) s, $before MiB"
echo "install-deps.sh: $((t3 - t2)) s wall (download and unpack), root grew to $after MiB (+$((after - before)) MiB)"
echo "install-deps.sh again (all present): ${second} s"
echo "appliance kernel: ${kernel:-NONE}"
echo "work dir: $work (delete it when done)"
