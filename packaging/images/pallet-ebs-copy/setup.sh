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
mkdir -p /var/lib/pallet
chmod 1777 /var/lib/pallet
rm -rf /var/lib/apt/lists/*
