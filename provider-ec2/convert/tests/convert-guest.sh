#!/bin/bash
# The one full conversion in the suite: build (or reuse) the cached
# EC2-shaped Debian 12 guest, inspect it (debian 12 x86_64 BIOS), convert a
# copy in place through pallet_convert (virt-v2v-in-place, TCG), check the
# conversion really changed the guest, then boot the result on virtio.
set -euo pipefail
tool=$1
guestdir=$2
py=/usr/bin/python3
for t in virt-v2v-in-place virt-ls qemu-system-x86_64 qemu-img "$py"; do
  command -v "$t" >/dev/null || { echo "FAIL: $t missing; run scripts/install-deps.sh" >&2; exit 1; }
done
export LIBGUESTFS_BACKEND=direct
export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
work=$(mktemp -d /var/tmp/pallet-convert-guest.XXXXXX)
trap 'rm -rf "$work"' EXIT
step () { echo "convert-guest: [$(date +%T)] $*"; }
t=$(date +%s); lap=0
# Seconds since the last call, in $lap (not $(...): t must change here).
lap () { local n; n=$(date +%s); lap=$((n - t)); t=$n; }

img=$("$guestdir/build-guest.sh")
lap
step "guest image $img ready in ${lap}s: $(du -m "$img" | cut -f1) MiB allocated, $(( $(stat -c %s "$img") >> 20 )) MiB virtual"

json=$("$tool" inspect --tcg --format raw "$img")
lap
step "inspected in ${lap}s: $json"
"$py" - "$json" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
want = {"type": "linux", "distro": "debian", "major": 12, "arch": "x86_64",
        "firmware": "bios", "esp": None, "packageFormat": "deb", "rootCount": 1}
bad = {k: (j.get(k), v) for k, v in want.items() if j.get(k) != v}
if bad or not (j.get("root") or "").startswith("/dev/"):
    sys.exit("FAIL: inspection mismatch (got, want): %r root=%r" % (bad, j.get("root")))
PY

cp --sparse=always "$img" "$work/disk.img"
lap
rc=0
"$tool" convert --tcg --timeout 1000 --log "$work/v2v.log" "$work/disk.img" \
  >"$work/result.json" || rc=$?
lap
step "converted in ${lap}s (exit $rc): $(cat "$work/result.json")"
[ "$rc" -eq 0 ] || { tail -n 40 "$work/v2v.log" >&2; echo "FAIL: conversion failed" >&2; exit 1; }
"$py" - "$work/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
if not r["ok"] or r["error"] != "ok" or r["message"] is not None:
    sys.exit("FAIL: result not ok: %r" % r)
if r["steps"] < 8 or r["exitStatus"] != 0:
    sys.exit("FAIL: too few progress steps or bad exit status: %r" % r)
PY
grep -q 'out: \[ *[0-9.]*\] Converting .* to run on KVM' "$work/v2v.log" ||
  { echo "FAIL: no 'Converting ... to run on KVM' step in the log" >&2; exit 1; }
cmp -s "$img" "$work/disk.img" && { echo "FAIL: the converted disk is unchanged" >&2; exit 1; }
# What virt-v2v leaves behind in a converted Debian guest.
# (one appliance launch: virt-ls lists both directories, one after another)
files=$(virt-ls --format=raw -a "$work/disk.img" /boot /usr/lib/virt-sysprep)
lap
step "checked the converted guest in ${lap}s"
grep -q '^initrd\.img-.*\.pre-v2v$' <<<"$files" || { echo "FAIL: no initrd .pre-v2v in /boot: $files" >&2; exit 1; }
grep -q '^firstboot\.sh$' <<<"$files" || { echo "FAIL: no firstboot.sh installed: $files" >&2; exit 1; }

"$guestdir/boot-check.sh" "$work/disk.img" --timeout 600 --log "$work/serial.log"
lap
step "booted in ${lap}s"
step "converted image: $(du -m "$work/disk.img" | cut -f1) MiB allocated"
echo PASS
