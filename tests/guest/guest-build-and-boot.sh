#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Build (or reuse) the cached guest and check the unconverted image boots
# from an IDE disk, as it would on a Xen/PV-less source.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
t0=$(date +%s)
img=$("$here/build-guest.sh")
echo "guest-build-and-boot: image $img ready in $(( $(date +%s) - t0 ))s" \
     "($(du -m "$img" | cut -f1) MiB allocated, $(stat -c %s "$img") bytes virtual)"
exec "$here/boot-check.sh" "$img" --bus ide
