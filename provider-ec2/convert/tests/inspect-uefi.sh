#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Firmware detection on two small UEFI-shaped disks (no real OS: just enough
# of a Debian root for libguestfs inspection to recognise it):
#   gpt.img: GPT, an ESP partition (type C12A7328-...) and a Linux root;
#   mbr.img: MBR, a plain FAT partition that /etc/fstab mounts at /boot/efi.
# Both must inspect as debian 12 with "firmware": "uefi" and the ESP named.
# (BIOS is checked on the real guest by convert-guest.sh.)
set -euo pipefail
tool=$1
py=/usr/bin/python3
for t in sfdisk mkfs.fat mkfs.ext4 "$py"; do
  command -v "$t" >/dev/null || { echo "FAIL: $t missing; run scripts/install-deps.sh" >&2; exit 1; }
done
work=$(mktemp -d /var/tmp/pallet-inspect-uefi.XXXXXX)
trap 'rm -rf "$work"' EXIT

# make_disk IMG LABEL ESP_TYPE ROOT_TYPE FSTAB_EFI_LINE
make_disk () {
  local img=$1 label=$2 esp_type=$3 root_type=$4 efi_line=$5 root="$work/root-$(basename "$1")"
  mkdir -p "$root/etc" "$root/bin" "$root/usr/bin" "$root/boot/efi"
  printf 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n' \
    >"$root/etc/os-release"
  echo 12.7 >"$root/etc/debian_version"
  echo uefi-test >"$root/etc/hostname"
  printf '/dev/sda2 / ext4 defaults 0 1\n%s' "$efi_line" >"$root/etc/fstab"
  truncate -s 200M "$img"
  printf 'label: %s\nstart=2048, size=64MiB, type=%s\nstart=133120, type=%s\n' \
    "$label" "$esp_type" "$root_type" | sfdisk --quiet "$img" >/dev/null
  mkfs.fat --offset=2048 "$img" $((64 * 1024)) >/dev/null 2>&1
  # The root partition runs from sector 133120 to the end (minus the GPT
  # backup header); 120 MiB is inside it either way.
  mkfs.ext4 -q -F -d "$root" -E offset=$((133120 * 512)) "$img" 120M
}
make_disk "$work/gpt.img" gpt C12A7328-F81F-11D2-BA4B-00A0C93EC93B \
  0FC63DAF-8483-4772-8E79-3D69D8477DE4 ""
make_disk "$work/mbr.img" dos c 83 $'/dev/sda1 /boot/efi vfat umask=0077 0 1\n'

check () {  # check IMG FIRMWARE ESP
  local json
  json=$("$tool" inspect --tcg --format raw "$1")
  echo "$(basename "$1"): $json"
  "$py" - "$json" "$2" "$3" <<'PY'
import json, sys
j, fw, esp = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3] or None
if j["distro"] != "debian" or j["major"] != 12 or j["firmware"] != fw or j["esp"] != esp:
    sys.exit("FAIL: want debian 12 firmware=%s esp=%s, got %r" % (fw, esp, j))
PY
}
check "$work/gpt.img" uefi /dev/sda1
check "$work/mbr.img" uefi /dev/sda1
echo PASS
