#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The libguestfs appliance cannot be built when supermin finds no host
# kernel: real virt-v2v-in-place runs in a private mount namespace with
# empty /boot and /lib/modules (and a fresh appliance cache) must say so,
# with the fix, and never blame the disk: once plain (libguestfs only says
# "supermin exited with error status 1"), once verbose (supermin's own
# "failed to find a suitable kernel").  No appliance is launched.
#
#   no-appliance-kernel.sh PALLET-CONVERT-TOOL      (needs root: unshare)
set -euo pipefail
tool=$1
if [ -z "${PALLET_IN_NS:-}" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "needs root (unshare --mount)" >&2; exit 1; }
  PALLET_IN_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi
work=$(mktemp -d /tmp/pallet-nokernel.XXXXXX)
trap 'umount /boot /lib/modules 2>/dev/null || true; rm -rf "$work"' EXIT
fail () { echo "FAIL: $*" >&2; exit 1; }
truncate -s 16M "$work/disk.raw"
mount -t tmpfs none /boot
mount -t tmpfs none /lib/modules
export TMPDIR="$work"
for mode in plain verbose; do
  export LIBGUESTFS_CACHEDIR="$work/cache-$mode"
  mkdir -p "$LIBGUESTFS_CACHEDIR"
  args=(--tcg --format raw)
  [ "$mode" = verbose ] && args+=(--verbose)
  rc=0
  "$tool" convert "${args[@]}" "$work/disk.raw" >"$work/out.json" 2>"$work/err" || rc=$?
  msg=$(grep 'pallet-convert-tool: error' "$work/err" || true)
  [ "$rc" -eq 8 ] || { cat "$work/err" >&2; fail "$mode: exit $rc, want 8 (tool)"; }
  if [ "$mode" = plain ]; then want="the libguestfs appliance cannot be built on this host"
  else want="supermin found no kernel on this host"; fi
  grep -qF "$want" <<<"$msg" || { echo "$msg" >&2; fail "$mode: the cause is missing"; }
  grep -qF "apt-get install linux-image-amd64" <<<"$msg" || { echo "$msg" >&2; fail "$mode: no fix"; }
  grep -q "disk path" <<<"$msg" && fail "$mode: blamed the disk path"
  echo "no-appliance-kernel: $mode: ok"
done
