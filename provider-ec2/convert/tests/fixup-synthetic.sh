#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The device-name fix-up on small synthetic guests built here with
# guestfish (no OS, just the files inspection and the fix-up read):
#
#   A (3 disks): GPT disk 0 = /boot ext4, root ext4, swap; disk 1 = a
#     whole-disk XFS; disk 2 (attached as /dev/sdf) = MBR, one ext4.
#     fstab, crypttab, /etc/default/grub, grub.cfg on /boot (mounted by
#     its Nitro name), a BLS entry, /etc/kernel/cmdline, dracut,
#     initramfs-tools resume and cloud-init mounts name them as
#     /dev/nvme0n1pN, /dev/nvme1n1, /dev/xvda2, /dev/xvdf1, /dev/sdf1.
#     Every name is rewritten to the UUID (PARTUUID for crypttab) blkid
#     reports; comments are left alone.
#   B (2 disks): disk 1 is a clone of the root (same UUID and label, no
#     partition table) and fstab names /dev/xvdg1 which nothing is
#     attached as: refused, exit 14, naming file and line, disks unchanged.
#
#   fixup-synthetic.sh PALLET-CONVERT-TOOL
set -euo pipefail
tool=$1
export LIBGUESTFS_BACKEND=direct
export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
work=$(mktemp -d /tmp/pallet-fixup-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail () { echo "FAIL: $*" >&2; exit 1; }
t0=$(date +%s)

skeleton () { # guestfish commands making a Debian-looking root on /
  cat <<'EOF'
mkdir-p /bin
mkdir-p /usr/bin
mkdir-p /etc/default
write /etc/os-release "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n"
write /etc/debian_version "12.5\n"
EOF
}

truncate -s 64M "$work/a0.img"
truncate -s 320M "$work/a1.img"
truncate -s 16M "$work/a2.img"
truncate -s 32M "$work/b0.img"
truncate -s 16M "$work/b1.img"
{
  cat <<'EOF'
run
part-init /dev/sda gpt
part-add /dev/sda p 2048 34815
part-add /dev/sda p 34816 100351
part-add /dev/sda p 100352 -34
mkfs ext4 /dev/sda1
mkfs ext4 /dev/sda2
mkswap /dev/sda3
mkfs xfs /dev/sdb
part-disk /dev/sdc mbr
mkfs ext4 /dev/sdc1
part-disk /dev/sdd mbr
mkfs ext4 /dev/sdd1 label:cloudimg-rootfs
set-uuid /dev/sdd1 0b5c4f5e-2f7a-4c1e-9a55-0123456789ab
mkfs ext4 /dev/sde label:cloudimg-rootfs
set-uuid /dev/sde 0b5c4f5e-2f7a-4c1e-9a55-0123456789ab
mount /dev/sda2 /
EOF
  skeleton
  cat <<'EOF'
mkdir /boot
mount /dev/sda1 /boot
mkdir-p /boot/grub
mkdir-p /boot/loader/entries
mkdir-p /etc/dracut.conf.d
mkdir-p /etc/initramfs-tools/conf.d
mkdir-p /etc/cloud/cloud.cfg.d
mkdir-p /etc/kernel
write /etc/fstab "# / was /dev/nvme0n1p2 at launch\n/dev/nvme0n1p2 / ext4 defaults 0 1\n/dev/nvme0n1p1 /boot ext4 defaults 0 2\n/dev/nvme0n1p3 none swap sw 0 0\n/dev/nvme1n1 /data xfs defaults,nofail 0 2\n/dev/xvdf1 /srv ext4 defaults,nofail 0 2\ntmpfs /tmp tmpfs defaults 0 0\n"
write /etc/crypttab "cswap /dev/nvme0n1p3 /dev/urandom swap,cipher=aes-xts-plain64\n"
write /etc/default/grub "GRUB_DEFAULT=0\n#GRUB_CMDLINE_LINUX=\"root=/dev/nvme0n1p2\"\nGRUB_CMDLINE_LINUX=\"root=/dev/nvme0n1p2 resume=/dev/nvme0n1p3 console=ttyS0\"\n"
write /boot/grub/grub.cfg "menuentry 'Debian' {\n\tlinux /vmlinuz root=/dev/nvme0n1p2 ro\n}\n"
write /boot/loader/entries/debian.conf "title Debian\nlinux /vmlinuz\noptions root=/dev/xvda2 ro\n"
write /etc/kernel/cmdline "root=/dev/nvme0n1p2 ro\n"
write /etc/dracut.conf.d/90-ec2.conf "add_device+=\" /dev/sdf1 \"\n"
write /etc/initramfs-tools/conf.d/resume "RESUME=/dev/nvme0n1p3\n"
write /etc/cloud/cloud.cfg.d/90-mounts.cfg "mounts:\n  - [ /dev/nvme1n1, /data, xfs, \"defaults,nofail\", \"0\", \"2\" ]\n"
umount-all
mount /dev/sdd1 /
EOF
  skeleton
  cat <<'EOF'
write /etc/fstab "/dev/nvme0n1p1 / ext4 defaults 0 1\n/dev/nvme1n1 /data ext4 defaults 0 2\n/dev/xvdg1 /srv ext4 defaults 0 2\n"
umount-all
-mount /dev/nvme0n1p1 /
-mount-vfs "" zfs /dev/sdc1 /
mount /dev/sda1 /
-fallocate64 /big 64M
rm-f /big
umount-all
EOF
} | guestfish -a "$work/a0.img" -a "$work/a1.img" -a "$work/a2.img" \
              -a "$work/b0.img" -a "$work/b1.img" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log" >&2; fail "building the synthetic disks with guestfish"; }
echo "stage build: $(( $(date +%s) - t0 )) s"

# The appliance's own words for three failures, made above on purpose
# (virt-v2v prints them as "PROG: error: libguestfs error: TEXT")
# (a device that does not exist, a filesystem type it lacks, a full
# filesystem), each classified with its cause and fix.
check_error () { # PATTERN WANT-CLASS WANT-TEXT
  local line
  line=$(grep -m1 -F -- "$1" "$work/build.log") || { cat "$work/build.log" >&2; fail "guestfish never said: $1"; }
  printf 'virt-v2v-in-place: error: libguestfs error: %s\n' "${line#libguestfs: error: }" >"$work/err.txt"
  "$tool" map-error "$work/err.txt" /srv/disk-0.raw >"$work/err.out"
  grep -qF -- "$2: converting /srv/disk-0.raw: $3" "$work/err.out" ||
    { echo "$line" >&2; cat "$work/err.out" >&2; fail "mapping of '$line'"; }
  grep -q "check the disk path" "$work/err.out" && fail "'$line' blamed the disk path"
  return 0
}
check_error "/dev/nvme0n1p1: No such file or directory" device-name \
  "the guest's /etc/fstab names a device that does not exist"
check_error "unknown filesystem type 'zfs'" unsupported "the guest has a filesystem the libguestfs appliance"
check_error "No space left on device" guest-space "a guest filesystem ran out of space"

# A: every name resolved and rewritten.
t1=$(date +%s)
"$tool" fixup --tcg --format raw --device /dev/xvda=0 --device /dev/sdf=2 \
  "$work/a0.img" "$work/a1.img" "$work/a2.img" >"$work/a.json" 2>"$work/a.err" ||
  { cat "$work/a.err" >&2; fail "fixup of guest A exited $?"; }
echo "stage fixup-a: $(( $(date +%s) - t1 )) s"

t1=$(date +%s)
guestfish --ro -a "$work/a0.img" -a "$work/a1.img" -a "$work/a2.img" >"$work/a.out" 2>&1 <<'EOF' ||
run
echo UUID-BOOT
vfs-uuid /dev/sda1
echo UUID-ROOT
vfs-uuid /dev/sda2
echo UUID-SWAP
vfs-uuid /dev/sda3
echo UUID-DATA
vfs-uuid /dev/sdb
echo UUID-SRV
vfs-uuid /dev/sdc1
echo PARTUUID-SWAP
part-get-gpt-guid /dev/sda 3
mount-ro /dev/sda2 /
mount-ro /dev/sda1 /boot
echo FILES
cat /etc/fstab
cat /etc/crypttab
cat /etc/default/grub
cat /boot/grub/grub.cfg
cat /boot/loader/entries/debian.conf
cat /etc/kernel/cmdline
cat /etc/dracut.conf.d/90-ec2.conf
cat /etc/initramfs-tools/conf.d/resume
cat /etc/cloud/cloud.cfg.d/90-mounts.cfg
EOF
  { cat "$work/a.out" >&2; fail "reading guest A back"; }
echo "stage read-a: $(( $(date +%s) - t1 )) s"
val () { grep -A1 -x "$1" "$work/a.out" | tail -n1; }
boot=$(val UUID-BOOT) root=$(val UUID-ROOT) swap=$(val UUID-SWAP)
data=$(val UUID-DATA) srv=$(val UUID-SRV)
pswap=$(val PARTUUID-SWAP | tr 'A-Z' 'a-z')
files=$(sed -n '/^FILES$/,$p' "$work/a.out")
for want in \
  "# / was /dev/nvme0n1p2 at launch" \
  "UUID=$root / ext4 defaults 0 1" \
  "UUID=$boot /boot ext4 defaults 0 2" \
  "UUID=$swap none swap sw 0 0" \
  "UUID=$data /data xfs defaults,nofail 0 2" \
  "UUID=$srv /srv ext4 defaults,nofail 0 2" \
  "cswap PARTUUID=$pswap /dev/urandom swap,cipher=aes-xts-plain64" \
  "#GRUB_CMDLINE_LINUX=\"root=/dev/nvme0n1p2\"" \
  "GRUB_CMDLINE_LINUX=\"root=UUID=$root resume=UUID=$swap console=ttyS0\"" \
  "	linux /vmlinuz root=UUID=$root ro" \
  "options root=UUID=$root ro" \
  "root=UUID=$root ro" \
  "add_device+=\" /dev/disk/by-uuid/$srv \"" \
  "RESUME=UUID=$swap" \
  "  - [ UUID=$data, /data, xfs, \"defaults,nofail\", \"0\", \"2\" ]"; do
  grep -qxF -- "$want" <<<"$files" || { echo "$files" >&2; fail "guest A lacks the line: $want"; }
done
# No device name left outside comments.
if grep -v '^ *#' <<<"$files" | grep -Eq '/dev/(nvme[0-9]|xvd[a-z]|sd[a-z])'; then
  echo "$files" >&2; fail "a device name was left in guest A"
fi
# The rewrites are reported: 14 of them, fstab's with their lines.
/usr/bin/python3 - "$work/a.json" "$root" <<'EOF' || fail "the rewrite list of guest A"
import json, sys
rw = json.load(open(sys.argv[1]))
assert len(rw) == 14, rw
assert {"file": "/etc/fstab", "line": 2, "from": "/dev/nvme0n1p2",
        "to": "UUID=" + sys.argv[2]} in rw, rw
files = {r["file"] for r in rw}
for f in ("/etc/fstab", "/etc/crypttab", "/etc/default/grub", "/boot/grub/grub.cfg",
          "/boot/loader/entries/debian.conf", "/etc/kernel/cmdline",
          "/etc/dracut.conf.d/90-ec2.conf", "/etc/initramfs-tools/conf.d/resume",
          "/etc/cloud/cloud.cfg.d/90-mounts.cfg"):
    assert f in files, (f, files)
EOF

# B: refused, nothing written.
before=$(sha256sum "$work/b0.img" "$work/b1.img")
t1=$(date +%s)
rc=0
"$tool" fixup --tcg --format raw "$work/b0.img" "$work/b1.img" >"$work/b.json" 2>"$work/b.err" || rc=$?
echo "stage fixup-b: $(( $(date +%s) - t1 )) s"
[ "$rc" -eq 14 ] || { cat "$work/b.err" >&2; fail "guest B: exit $rc, want 14 (device-name)"; }
for want in "(device-name)" "the guest names 2 devices" \
  "/etc/fstab line 2: /dev/nvme1n1: /dev/sdb's UUID 0b5c4f5e-2f7a-4c1e-9a55-0123456789ab is shared" \
  "/etc/fstab line 3: /dev/xvdg1: there are only 2 disks" "fix-device-names: false"; do
  grep -qF -- "$want" "$work/b.err" || { cat "$work/b.err" >&2; fail "guest B's message lacks: $want"; }
done
grep -q "line 1" "$work/b.err" && { cat "$work/b.err" >&2; fail "guest B: the root (a unique PARTUUID) was refused"; }
[ "$before" = "$(sha256sum "$work/b0.img" "$work/b1.img")" ] || fail "guest B's disks changed"
echo "fixup-synthetic: ok ($(( $(date +%s) - t0 )) s)"
