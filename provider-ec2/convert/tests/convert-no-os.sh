#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A blank disk (an empty ext4 filesystem, no OS): inspection, conversion
# and verification all report "no operating system found", naming the
# disk, and the disk is byte-identical afterwards.
set -euo pipefail
tool=$1
py=/usr/bin/python3
for t in virt-v2v-in-place mkfs.ext4 cmp "$py"; do
  command -v "$t" >/dev/null || { echo "FAIL: $t missing; run scripts/install-deps.sh" >&2; exit 1; }
done
work=$(mktemp -d /var/tmp/pallet-convert-noos.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/content"
echo "just data" >"$work/content/README"
truncate -s 256M "$work/blank.img"
mkfs.ext4 -q -F -d "$work/content" "$work/blank.img"
cp "$work/blank.img" "$work/orig.img"

t0=$(date +%s)
rc=0
"$tool" inspect --tcg --format raw "$work/blank.img" 2>"$work/inspect.err" || rc=$?
cat "$work/inspect.err"
[ "$rc" -eq 2 ] || { echo "FAIL: inspect exit $rc, want 2 (no-os)" >&2; exit 1; }
grep -q "no operating system found" "$work/inspect.err" &&
grep -qF "$work/blank.img" "$work/inspect.err" ||
  { echo "FAIL: inspect message does not say 'no operating system found' for the disk" >&2; exit 1; }
t1=$(date +%s)

rc=0
"$tool" convert --tcg --timeout 500 "$work/blank.img" >"$work/result.json" 2>"$work/convert.err" || rc=$?
cat "$work/convert.err"
[ "$rc" -eq 2 ] || { echo "FAIL: convert exit $rc, want 2 (no-os)" >&2; exit 1; }
"$py" - "$work/result.json" "$work/blank.img" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m = r["message"] or ""
if r["ok"] or r["error"] != "no-os" or "no operating system found" not in m \
   or sys.argv[2] not in m or "fix: " not in m:
    sys.exit("FAIL: want a no-os error naming the disk with a fix: %r" % r)
PY
t2=$(date +%s)

rc=0
"$tool" verify --tcg "$work/blank.img" >"$work/verify.json" 2>"$work/verify.err" || rc=$?
cat "$work/verify.err"
[ "$rc" -eq 2 ] || { echo "FAIL: verify exit $rc, want 2 (no-os)" >&2; exit 1; }
[ ! -s "$work/verify.json" ] || { echo "FAIL: verify printed a report for a disk without an OS" >&2; exit 1; }
grep -q "no operating system found" "$work/verify.err" &&
grep -qF "$work/blank.img" "$work/verify.err" ||
  { echo "FAIL: verify message does not say 'no operating system found' for the disk" >&2; exit 1; }
cmp "$work/orig.img" "$work/blank.img" || { echo "FAIL: the disk was modified" >&2; exit 1; }
echo "inspect $((t1 - t0))s, convert $((t2 - t1))s, verify $(( $(date +%s) - t2 ))s; disk byte-identical"
echo PASS
