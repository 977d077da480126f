#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The one full conversion in the suite: build (or reuse) the cached
# EC2-shaped Debian 12 guest, inspect it (debian 12 x86_64 BIOS), check the
# post-conversion verification refuses it as it is (its initramfs has no
# virtio_net), convert a copy in place through pallet_convert
# (virt-v2v-in-place, TCG), check the conversion really changed the guest,
# verify it (Pallet_convert_verify: every check passes), then boot the
# result on virtio-blk + virtio-net with verify-boot (Pallet_convert_boot),
# which must see the login prompt and the marker of a first-boot script
# the same conversion installed.  Prints "stage NAME: SECONDS s" lines.
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
t=$(date +%s.%N); lap=0
# Seconds since the last call, in $lap (not $(...): t must change here).
lap () { local n; n=$(date +%s.%N); lap=$("$py" -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$t" "$n"); t=$n; }
stage () { echo "stage $1: $lap s"; }

img=$("$guestdir/build-guest.sh")
lap; stage guest
step "guest image $img ready in ${lap}s: $(du -m "$img" | cut -f1) MiB allocated, $(( $(stat -c %s "$img") >> 20 )) MiB virtual"

json=$("$tool" inspect --tcg --format raw "$img")
lap; stage inspect
step "inspected in ${lap}s: $json"
"$py" - "$json" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
want = {"type": "linux", "distro": "debian", "major": 12, "arch": "x86_64",
        "firmware": "bios", "esp": None, "packageFormat": "deb", "rootCount": 1,
        "virtioBefore": {"kernel": True, "initramfs": True}}
bad = {k: (j.get(k), v) for k, v in want.items() if j.get(k) != v}
if bad or not (j.get("root") or "").startswith("/dev/"):
    sys.exit("FAIL: inspection mismatch (got, want): %r root=%r" % (bad, j.get("root")))
if not (j.get("kernel") or "").endswith("-cloud-amd64"):
    sys.exit("FAIL: inspection kernel: %r" % j.get("kernel"))
if {"device": j["root"], "type": "ext4", "mountpoint": "/"} not in j.get("filesystems", []):
    sys.exit("FAIL: inspection filesystems: %r" % j.get("filesystems"))
PY

# The unconverted guest fails verification: the check can fail.
rc=0
"$tool" verify --tcg "$img" >"$work/verify-orig.json" 2>"$work/verify-orig.err" || rc=$?
lap; stage verify-original
step "verification of the unconverted guest (exit $rc): $(cat "$work/verify-orig.err")"
[ "$rc" -eq 11 ] || { cat "$work/verify-orig.json" >&2; echo "FAIL: verify of the unconverted guest exited $rc, want 11" >&2; exit 1; }
"$py" - "$work/verify-orig.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bad = sorted(c["name"] for c in r["checks"] if not c["ok"])
if r["ok"] or bad != ["initramfs-virtio-net"]:
    sys.exit("FAIL: want only initramfs-virtio-net to fail before conversion: %r" % r)
PY
grep -q 'check initramfs-virtio-net failed: .* does not carry virtio_net .*; fix: ' "$work/verify-orig.err" ||
  { echo "FAIL: the message does not name the failed check and the fix" >&2; exit 1; }

cp --sparse=always "$img" "$work/disk.img"
lap
rc=0
# A first-boot script (libguestfs's firstboot service, installed on the
# conversion's overlay) that the boot check below must see on the console.
marker="PALLET-FIRSTBOOT-MARKER-$$"
printf '#!/bin/sh\necho "%s ran as $(id -un)"\n' "$marker" >"$work/10-marker.sh"
"$tool" convert --tcg --timeout 1000 --log "$work/v2v.log" --firstboot "$work/10-marker.sh" \
  "$work/disk.img" >"$work/result.json" || rc=$?
lap; stage convert
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
lap; stage check-files
step "checked the converted guest in ${lap}s"
grep -q '^initrd\.img-.*\.pre-v2v$' <<<"$files" || { echo "FAIL: no initrd .pre-v2v in /boot: $files" >&2; exit 1; }
grep -q '^firstboot\.sh$' <<<"$files" || { echo "FAIL: no firstboot.sh installed: $files" >&2; exit 1; }

rc=0
"$tool" verify --tcg "$work/disk.img" >"$work/verify.json" 2>"$work/verify.err" || rc=$?
lap; stage verify
step "verification (exit $rc): $(cat "$work/verify.json") $(cat "$work/verify.err")"
[ "$rc" -eq 0 ] || { echo "FAIL: the converted guest failed verification" >&2; exit 1; }
"$py" - "$work/verify.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
names = [c["name"] for c in r["checks"]]
want = ["kernel-virtio-blk", "kernel-virtio-net", "initramfs-virtio-blk",
        "initramfs-virtio-net", "fstab-device-names", "grub-device-names"]
if not r["ok"] or names != want or not all(c["ok"] for c in r["checks"]) \
   or not (r["kernel"] or "").endswith("-cloud-amd64"):
    sys.exit("FAIL: verification report: %r" % r)
if "lsinitramfs" not in r["checks"][3]["detail"]:
    sys.exit("FAIL: the initramfs was not listed by the guest's lsinitramfs: %r" % r["checks"][3])
PY

# verify-boot: the product's boot check (virtio-blk + virtio-net, KVM or
# TCG) must see a login prompt and the first-boot script's marker.
rc=0
"$tool" boot --timeout 600 --expect "$marker ran as root" "$work/disk.img" \
  >"$work/boot.json" 2>"$work/boot.err" || rc=$?
lap; stage boot
step "booted in ${lap}s (exit $rc): $(cat "$work/boot.err")"
[ "$rc" -eq 0 ] || { cat "$work/boot.json" >&2; echo "FAIL: verify-boot did not see the guest come up" >&2; exit 1; }
"$py" - "$work/boot.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
if not r["ok"] or "login:" not in (r["matched"] or "") and "finished" not in (r["matched"] or ""):
    sys.exit("FAIL: boot report: %r" % r)
if not all(e["seen"] for e in r["expect"]) or len(r["expect"]) != 1:
    sys.exit("FAIL: the first-boot marker was not on the console: %r" % r)
PY
step "converted image: $(du -m "$work/disk.img" | cut -f1) MiB allocated"
echo PASS
