#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs inside the image's root filesystem (Containerfile RUN, or chroot
# from build-rootfs.sh) with packages.list next to it.
set -eu
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
sed -e 's/#.*//' -e '/^[[:space:]]*$/d' packages.list |
  xargs apt-get install -y -q --no-install-recommends
# The Pod runs as the qemu user (uid 107, Forklift's) with no capabilities:
# supermin must be able to read the kernel it puts in the appliance.
chmod 0644 /boot/vmlinuz-*
# (gid 107 may be taken already by a system group: use it as is.)
getent group 107 >/dev/null || groupadd -g 107 qemu
getent passwd 107 >/dev/null || useradd -u 107 -g 107 -d /var/tmp -s /usr/sbin/nologin qemu
rm -rf /var/lib/apt/lists/*
