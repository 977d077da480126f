#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# boot-check.sh: boot a disk image under QEMU/TCG and wait for it to come up.
#
#   tests/guest/boot-check.sh IMAGE [--uefi] [--timeout SECS] [--expect REGEX]
#                             [--log FILE] [--bus virtio|ide] [--disk IMAGE2]...
#
# Boots IMAGE (raw or qcow2, detected) with qemu-system-x86_64 -accel tcg,
# -nographic, the serial console to a log file, the disk on virtio-blk
# (virtio-blk-pci; --bus ide for an unconverted guest) and one virtio-net
# NIC on user-mode networking with restrict=on (DHCP from QEMU, no way out
# of the host), as KubeVirt would give it; snapshot=on, so the image itself
# is never written.  --uefi boots OVMF (q35, empty NVRAM: the guest's
# removable-path EFI/BOOT/BOOTX64.EFI).  Each --disk adds a further disk
# on the same bus (vdb, vdc...), also snapshot=on.  Succeeds when the serial console shows REGEX (default:
# the PALLET-BOOT-OK marker that build-guest.sh's pallet-boot-ok.service
# prints once multi-user.target runs, or a "login:" prompt).  Fails on
# timeout (default 400 s), a kernel panic, an initramfs shell, or QEMU
# exiting.  Prints the matching line on success and the tail of the serial
# console on failure.
set -euo pipefail

die () { echo "boot-check: error: $*" >&2; exit 2; }
usage () { die "usage: $0 IMAGE [--uefi] [--timeout SECS] [--expect REGEX] [--log FILE] [--bus virtio|ide] [--disk IMAGE2]..."; }

image=""; extra=(); uefi=0; timeout=400; expect='PALLET-BOOT-OK|login:'; log=""; bus=virtio
while [ $# -gt 0 ]; do
  case "$1" in
    --uefi) uefi=1 ;;
    --timeout) [ $# -ge 2 ] || usage; timeout=$2; shift ;;
    --expect) [ $# -ge 2 ] || usage; expect=$2; shift ;;
    --log) [ $# -ge 2 ] || usage; log=$2; shift ;;
    --bus) [ $# -ge 2 ] || usage; bus=$2; shift ;;
    --disk) [ $# -ge 2 ] || usage; extra+=("$2"); shift ;;
    -*) usage ;;
    *) [ -z "$image" ] || usage; image=$1 ;;
  esac
  shift
done
[ -n "$image" ] || usage
[ -r "$image" ] || die "image '$image' not readable; build it with tests/guest/build-guest.sh"
case "$timeout" in ''|*[!0-9]*) die "--timeout '$timeout' is not a number of seconds" ;; esac
case "$bus" in virtio|ide) ;; *) die "--bus '$bus' must be virtio or ide" ;; esac
for tool in qemu-system-x86_64 qemu-img; do
  command -v "$tool" >/dev/null || die "'$tool' not found; install it with ./scripts/install-deps.sh"
done

format_of () {
  local f
  f=$(qemu-img info "$1" | awk -F': ' '$1 == "file format" { print $2 }')
  case "$f" in raw|qcow2) echo "$f" ;; *) die "image '$1' has format '$f'; want raw or qcow2" ;; esac
}
format=$(format_of "$image")
for x in "${extra[@]}"; do [ -r "$x" ] || die "disk '$x' not readable"; done

work=$(mktemp -d "${TMPDIR:-/tmp}/boot-check.XXXXXX")
qpid=""
cleanup () {
  [ -n "$qpid" ] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
[ -n "$log" ] || log="$work/serial.log"
: >"$log"

fw=()
if [ "$uefi" -eq 1 ]; then
  code=/usr/share/OVMF/OVMF_CODE_4M.fd
  vars=/usr/share/OVMF/OVMF_VARS_4M.fd
  [ -r "$code" ] && [ -r "$vars" ] || die "OVMF firmware ($code) missing; install the ovmf package"
  cp "$vars" "$work/vars.fd"
  fw=(-machine q35 -drive "if=pflash,format=raw,unit=0,readonly=on,file=$code"
      -drive "if=pflash,format=raw,unit=1,file=$work/vars.fd")
fi

if [ "$bus" = virtio ]; then
  disk=(-drive "file=$image,format=$format,if=none,id=d0,snapshot=on"
        -device virtio-blk-pci,drive=d0,bootindex=0)
else
  disk=(-drive "file=$image,format=$format,if=ide,snapshot=on")
fi
n=1
for x in "${extra[@]}"; do
  if [ "$bus" = virtio ]; then
    disk+=(-drive "file=$x,format=$(format_of "$x"),if=none,id=d$n,snapshot=on"
           -device "virtio-blk-pci,drive=d$n")
  else
    disk+=(-drive "file=$x,format=$(format_of "$x"),if=ide,snapshot=on")
  fi
  n=$((n + 1))
done

start=$(date +%s)
qemu-system-x86_64 -accel tcg -m 1024 -smp 1 -nographic -monitor none \
  -serial "file:$log" "${fw[@]}" \
  -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0 \
  "${disk[@]}" \
  </dev/null >"$work/qemu.out" 2>&1 &
qpid=$!

fail () {
  echo "boot-check: FAIL: $image: $* after $(( $(date +%s) - start ))s; serial log tail:" >&2
  tail -n 25 "$log" | tr -d '\r' >&2
  exit 1
}
while :; do
  if line=$(grep -a -m1 -E -- "$expect" "$log"); then
    echo "boot-check: OK: $image reached '$expect' in $(( $(date +%s) - start ))s: $(echo "$line" | tr -d '\r')"
    exit 0
  fi
  grep -a -q -E 'Kernel panic|end Kernel panic|\(initramfs\)|Gave up waiting for root' "$log" &&
    fail "the guest failed to boot"
  kill -0 "$qpid" 2>/dev/null ||
    { qpid=""; cat "$work/qemu.out" >&2; fail "QEMU exited"; }
  [ $(( $(date +%s) - start )) -lt "$timeout" ] || fail "timed out waiting for '$expect'"
  sleep 2
done
