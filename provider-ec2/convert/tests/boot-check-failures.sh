#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Boot verification's failure paths, fast (real QEMU, no guest OS):
#  1. a blank disk: SeaBIOS's "No bootable device" fails the check at once,
#     the report has the console tail, the disk is unchanged (overlay);
#  2. a blank disk on UEFI (OVMF found by firmware.json) fails the same way;
#  3. KVM that aborts at start (this host's QEMU does, MSR 0x10a; a wrapper
#     makes it certain) falls back to TCG and says why; --accel kvm does not;
#  4. a QEMU that hangs: killed at the time limit with its whole process
#     group (a child it started is gone too);
#  5. --mode warn: the same failure is a warning, exit 0;
#  6. console bytes that are not UTF-8: replaced, the report still JSON.
set -euo pipefail
tool=$1
py=/usr/bin/python3
command -v qemu-system-x86_64 >/dev/null || { echo "FAIL: qemu-system-x86_64 missing; run scripts/install-deps.sh" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/boot-check-failures.XXXXXX")
trap 'rm -rf "$work"' EXIT
truncate -s 64M "$work/blank.raw"
sum0=$(sha256sum <"$work/blank.raw")
real_qemu=$(command -v qemu-system-x86_64)
check () { "$py" - "$@" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
exec(sys.argv[2])
PY
}

# 1. BIOS, blank disk.
rc=0; start=$(date +%s)
"$tool" boot --accel tcg --timeout 120 "$work/blank.raw" >"$work/r1.json" 2>"$work/r1.err" || rc=$?
secs=$(( $(date +%s) - start ))
[ "$rc" -eq 11 ] || { cat "$work/r1.err" >&2; echo "FAIL: blank disk: exit $rc, want 11 (failed)" >&2; exit 1; }
[ "$secs" -lt 30 ] || { echo "FAIL: blank disk took ${secs}s; the failure must be seen at once" >&2; exit 1; }
grep -q 'did not boot (BIOS, virtio-blk/virtio-net, tcg): the console shows "No bootable device' "$work/r1.err" ||
  { cat "$work/r1.err" >&2; echo "FAIL: message does not say what the console showed" >&2; exit 1; }
check "$work/r1.json" '
assert not r["ok"] and r["error"] == "failed" and r["accel"] == "tcg", r
assert any("No bootable device" in l for l in r["consoleTail"]), r["consoleTail"]
assert any("SeaBIOS" in l for l in r["consoleTail"]), r["consoleTail"]
assert not any("\x1b" in l for l in r["consoleTail"]), "escape codes in the tail"
assert r["kvmFallback"] is None, r'
[ "$(sha256sum <"$work/blank.raw")" = "$sum0" ] || { echo "FAIL: the disk was written" >&2; exit 1; }
echo "ok 1 blank disk (BIOS) fails in ${secs}s"

# 2. UEFI, blank disk: OVMF's boot manager finds nothing.
rc=0; start=$(date +%s)
"$tool" boot --firmware uefi --accel tcg --timeout 240 "$work/blank.raw" >"$work/r2.json" 2>"$work/r2.err" || rc=$?
secs=$(( $(date +%s) - start ))
[ "$rc" -eq 11 ] || { cat "$work/r2.err" "$work/r2.json" >&2; echo "FAIL: UEFI blank disk: exit $rc, want 11" >&2; exit 1; }
check "$work/r2.json" '
assert r["firmwareCode"] and r["firmwareCode"].startswith("/"), r
assert "UEFI" in r["message"], r'
echo "ok 2 blank disk (UEFI, $(check "$work/r2.json" 'print(r["firmwareCode"])')) fails in ${secs}s"

# 3. KVM aborting at start.
cat >"$work/qemu-kvm-abort" <<SH
#!/bin/bash
for a in "\$@"; do
  if [ "\$a" = kvm ]; then
    echo 'qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69' >&2
    kill -ABRT \$\$
  fi
done
exec $real_qemu "\$@"
SH
chmod +x "$work/qemu-kvm-abort"
rc=0
"$tool" boot --qemu "$work/qemu-kvm-abort" --timeout 120 "$work/blank.raw" >"$work/r3.json" 2>"$work/r3.err" || rc=$?
[ "$rc" -eq 11 ] || { cat "$work/r3.err" >&2; echo "FAIL: fallback run: exit $rc, want 11" >&2; exit 1; }
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
  check "$work/r3.json" '
assert r["accel"] == "tcg", r
assert "exited at start (signal 6)" in r["kvmFallback"] and "MSR 0x10a" in r["kvmFallback"], r
assert any("No bootable device" in l for l in r["consoleTail"]), r'
  rc=0
  "$tool" boot --qemu "$work/qemu-kvm-abort" --accel kvm --timeout 60 "$work/blank.raw" >"$work/r3b.json" 2>"$work/r3b.err" || rc=$?
  [ "$rc" -eq 11 ] && grep -q 'QEMU exited (signal 6).*MSR 0x10a' "$work/r3b.err" ||
    { cat "$work/r3b.err" >&2; echo "FAIL: --accel kvm must not fall back (exit $rc)" >&2; exit 1; }
  echo "ok 3 KVM abort at start falls back to TCG; --accel kvm reports it"
else
  # No usable /dev/kvm: the report says so and TCG is used straight away.
  check "$work/r3.json" 'assert r["accel"] == "tcg" and r["kvmFallback"].startswith("/dev/kvm: "), r'
  echo "ok 3 no usable /dev/kvm here: TCG, kvmFallback names /dev/kvm (the abort path needs /dev/kvm)"
fi

# 4. A QEMU that never boots: the time limit kills its process group.
cat >"$work/qemu-hang" <<SH
#!/bin/bash
echo "SeaBIOS (fake)"
sleep 600 &
echo \$! >"$work/child.pid"
echo \$\$ >"$work/qemu.pid"
wait
SH
chmod +x "$work/qemu-hang"
rc=0; start=$(date +%s)
"$tool" boot --qemu "$work/qemu-hang" --accel tcg --timeout 3 "$work/blank.raw" >"$work/r4.json" 2>"$work/r4.err" || rc=$?
secs=$(( $(date +%s) - start ))
[ "$rc" -eq 9 ] || { cat "$work/r4.err" >&2; echo "FAIL: hang: exit $rc, want 9 (timeout)" >&2; exit 1; }
[ "$secs" -lt 10 ] || { echo "FAIL: the timeout took ${secs}s" >&2; exit 1; }
grep -q 'no login prompt within 3 s (tcg); last console line: "SeaBIOS (fake)"; fix: raise verify-boot-timeout' "$work/r4.err" ||
  { cat "$work/r4.err" >&2; echo "FAIL: timeout message" >&2; exit 1; }
# Gone, or a zombie its new parent has not reaped yet (ctest's or init's).
running () { [ -r "/proc/$1/stat" ] && ! awk '{ exit $3 != "Z" }' "/proc/$1/stat"; }
for f in qemu child; do
  pid=$(cat "$work/$f.pid")
  ! running "$pid" || { echo "FAIL: $f (pid $pid) still runs after the timeout" >&2; kill -9 "$pid"; exit 1; }
done
echo "ok 4 hang killed at the time limit with its process group in ${secs}s"

# 5. warn: reported, not fatal.
rc=0
"$tool" boot --mode warn --accel tcg --timeout 60 "$work/blank.raw" >"$work/r5.json" 2>"$work/r5.err" || rc=$?
[ "$rc" -eq 0 ] && grep -q '^pallet-convert-tool: warning (failed): boot check: the converted guest did not boot' "$work/r5.err" ||
  { cat "$work/r5.err" >&2; echo "FAIL: warn mode: exit $rc, want 0 with a warning" >&2; exit 1; }
check "$work/r5.json" 'assert not r["ok"], r'
echo "ok 5 warn mode reports the failed boot and goes on"

# 6. Console bytes that are not UTF-8 (firmware box drawing; a cut
# multibyte character) become '?': the report stays JSON, UTF-8 is kept.
cat >"$work/qemu-bytes" <<'SH'
#!/bin/bash
printf 'SeaBIOS \xc4\xcd\xff menu\n'
printf 'caf\xc3\xa9 \xe2\x97\x8f ok, cut \xe2\x97\n'
printf 'debian login: \n'
sleep 600
SH
chmod +x "$work/qemu-bytes"
rc=0
"$tool" boot --qemu "$work/qemu-bytes" --accel tcg --timeout 30 "$work/blank.raw" >"$work/r6.json" 2>"$work/r6.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$work/r6.err" "$work/r6.json" >&2; echo "FAIL: non-UTF-8 console: exit $rc, want 0" >&2; exit 1; }
check "$work/r6.json" '
assert r["ok"] and r["matched"] == "debian login:", r
assert "SeaBIOS ??? menu" in r["consoleTail"], r["consoleTail"]
assert "caf\u00e9 \u25cf ok, cut ??" in r["consoleTail"], r["consoleTail"]'
echo "ok 6 console bytes that are not UTF-8 are replaced; the report is JSON"
echo PASS
