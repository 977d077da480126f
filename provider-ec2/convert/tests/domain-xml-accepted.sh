#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# virt-v2v-in-place accepts the libvirt XML pallet_convert writes for a
# two-disk guest (--print-source parses it without starting an appliance).
set -euo pipefail
tool=$1
command -v virt-v2v-in-place >/dev/null ||
  { echo "FAIL: virt-v2v-in-place missing; run scripts/install-deps.sh" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/pallet-domxml.XXXXXX")
trap 'rm -rf "$work"' EXIT
truncate -s 16M "$work/disk & one.img" "$work/disk<2>.img"
"$tool" domain-xml "$work/domain.xml" --format raw "$work/disk & one.img" "$work/disk<2>.img"
out=$(LC_ALL=C virt-v2v-in-place -i libvirtxml "$work/domain.xml" --print-source 2>&1) ||
  { echo "$out" >&2; echo "FAIL: virt-v2v-in-place rejected the XML" >&2; exit 1; }
echo "$out"
grep -q 'source name: pallet-guest' <<<"$out" || { echo "FAIL: name not parsed" >&2; exit 1; }
[ "$(grep -cE '^\s+[0-9]+ \[virtio-blk\]' <<<"$out")" -eq 2 ] ||
  { echo "FAIL: want 2 virtio-blk disks" >&2; exit 1; }
echo "PASS"
