#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The provider's convert op on a state saying the disk was converted: it
# only verifies, and the unconverted test guest fails verification
# (convert-op-verify.c says what is checked).  One appliance launch.
#   convert-op-verify.sh PROGRAM PROVIDER.so GUESTDIR
set -euo pipefail
prog=$1 so=$2 guestdir=$3
export LIBGUESTFS_BACKEND=direct
export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
work=$(mktemp -d /var/tmp/pallet-convert-op.XXXXXX)
trap 'rm -rf "$work"' EXIT
img=$("$guestdir/build-guest.sh")
cp --sparse=always "$img" "$work/i-0abc-sda"
t=$(date +%s)
"$prog" "$so" "$work/i-0abc-sda"
echo "stage op-verify: $(( $(date +%s) - t )) s"
