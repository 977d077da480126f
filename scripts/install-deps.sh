#!/bin/sh
# Installs the Debian 12 packages Pallet builds, tests and demos with.
# Does nothing when they are all present already.  Needs root (or sudo).
set -eu
PKGS="build-essential cmake pkg-config git
 libcurl4-openssl-dev libjansson-dev libssl-dev libcunit1-dev libxml2-dev libyaml-dev
 libguestfs-dev libguestfs-tools guestfs-tools virt-v2v qemu-utils qemu-system-x86 ovmf
 nbdkit libnbd-bin debootstrap fdisk dosfstools e2fsprogs grub-pc-bin
 python3 python3-botocore python3-yaml python3-jsonschema awscli valgrind clang libclang-rt-14-dev
 dpkg-dev debhelper rpm cpio file binutils curl ca-certificates openssl groff-base"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
