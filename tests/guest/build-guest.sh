#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# build-guest.sh: build a small, real, EC2-shaped Debian 12 raw disk image.
#
#   tests/guest/build-guest.sh [--force] [--layout bios|uefi-lvm]
#
# Prints the path of the image on stdout (uefi-lvm: two paths, the root
# disk then the data disk, one a line); progress goes to stderr.
#
# --layout bios (the default): MBR + one ext4 root, debootstrap minbase + linux-image-cloud-amd64, GRUB
# (BIOS), cloud-init with the Ec2 datasource, amazon-ec2-utils, fstab by
# UUID, serial console, MODULES=list initramfs, and a boot marker unit
# printing PALLET-BOOT-OK on ttyS0 (see boot-check.sh).
#
# No loop device and no mount of the image: mkfs.ext4 -d fills the root
# filesystem straight from the rootfs directory at the partition's offset,
# and the boot sector is written with dd (what grub-install would do).
#
# --layout uefi-lvm: an EC2 Nitro-shaped guest.  Disk 0: GPT with an ESP
# (vfat, GRUB x86_64-efi at the removable path EFI/BOOT/BOOTX64.EFI, so
# OVMF boots it with empty NVRAM), /boot (ext4), a swap partition and an
# LVM PV holding vg0/root (XFS).  Disk 1: GPT, one ext4 "data" partition.
# fstab names /boot, the ESP, swap and /data by their Nitro names
# (/dev/nvme0n1p2, p1, p3, /dev/nvme1n1p1), GRUB's command line has
# resume=/dev/nvme0n1p3, initramfs-tools RESUME too; the root is
# /dev/mapper/vg0-root (an LV has no partition name).  The initramfs is
# MODULES=list WITHOUT virtio (xen-blkfront, nvme is built in, dm-mod,
# xfs): a conversion must add virtio.  Its disks are assembled with
# guestfish (libguestfs appliance: GPT, LVM, mkfs, tar-in), so no loop
# device or host mount is needed either; the GRUB image is made with
# grub-mkimage in the rootfs (what grub-install would do).
#
# The image is cached, keyed by a hash of this script (less this leading
# comment block, so editing it does not rebuild) and packages.list, in
#   $PALLET_GUEST_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/pallet/guest)
# Environment: PALLET_GUEST_MIRROR overrides the Debian mirror.
# Needs root (debootstrap, chroot, bind mounts in a private mount namespace).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self="$here/$(basename "${BASH_SOURCE[0]}")"
pkglist="$here/packages.list"
cache=${PALLET_GUEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pallet/guest}
suite=bookworm
disk_size=2G
part_start_sector=2048

die () { echo "build-guest: error: $*" >&2; exit 1; }
log () { echo "build-guest: [$(( $(date +%s) - t0 ))s] $*" >&2; }
t0=$(date +%s)

args=("$@") force=0 layout=bios
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1 ;;
    --layout)
      [ $# -ge 2 ] || die "--layout needs a value: bios or uefi-lvm"
      layout=$2; shift ;;
    *) die "unknown argument '$1'; usage: $0 [--force] [--layout bios|uefi-lvm]" ;;
  esac
  shift
done
case "$layout" in
  bios|uefi-lvm) ;;
  *) die "unknown layout '$layout'; use bios or uefi-lvm" ;;
esac

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap and chroot need it); rerun with sudo"
tools="debootstrap mkfs.ext4 sfdisk unshare flock sha256sum chroot truncate dd"
[ "$layout" = bios ] || tools="$tools guestfish tar"
for tool in $tools; do
  command -v "$tool" >/dev/null ||
    die "'$tool' not found; install it with ./scripts/install-deps.sh"
done
[ -r "$pkglist" ] || die "package list '$pkglist' missing; restore it from git"

key=$({ sed -n '/^[^#]/,$p' "$self"; cat "$pkglist"; echo "$layout"; } | sha256sum | cut -c1-16)
if [ "$layout" = bios ]; then
  img="$cache/debian12-ec2-$key.img"
  outputs=("$img")
else
  img="$cache/debian12-ec2-$layout-$key-disk0.img"
  outputs=("$img" "$cache/debian12-ec2-$layout-$key-disk1.img")
fi
have_outputs () {
  local o
  for o in "${outputs[@]}"; do [ -s "$o" ] || return 1; done
}

if [ "$force" -eq 0 ] && have_outputs; then
  printf '%s\n' "${outputs[@]}"
  exit 0
fi

# The rest runs in a private mount namespace: the bind mounts inside the
# chroot vanish with the process even if it is killed.
if [ -z "${PALLET_GUEST_IN_NS:-}" ]; then
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  if [ "$force" -eq 0 ] && have_outputs; then printf '%s\n' "${outputs[@]}"; exit 0; fi
  PALLET_GUEST_IN_NS=1 exec unshare --mount --propagation private "$self" "${args[@]}"
fi

# The first Debian (not security) mirror apt on this host uses.
find_mirror () {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' "$f" |
          grep -v -- '-security' | head -n1)
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "$f" |
          grep -v -- '-security' | head -n1)
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
}
mirror=${PALLET_GUEST_MIRROR:-$(find_mirror)}
[ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list*; set PALLET_GUEST_MIRROR"

work=$(mktemp -d "$cache/work-$key.XXXXXX")
root="$work/rootfs"
cleanup () {
  local m
  for m in var/cache/apt/archives dev/pts sys proc; do
    mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m"
  done
  # Never rm -rf through a bind mount (it would empty the host's directory).
  if grep -q " $root/" /proc/self/mounts; then
    echo "build-guest: warning: mounts left under $root; not removing $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

mkdir -p "$cache/debcache"
log "debootstrap $suite from $mirror"
debootstrap --variant=minbase --cache-dir="$cache/debcache" "$suite" "$root" "$mirror" \
  >"$work/debootstrap.log" 2>&1 ||
  { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap of $suite from $mirror failed (log above); check the mirror"; }

# Keep the image small and the install quiet: no docs, no daemons started.
cat >"$root/etc/dpkg/dpkg.cfg.d/01-pallet" <<'EOF'
force-unsafe-io
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
echo "deb $mirror $suite main" >"$root/etc/apt/sources.list"

# MODULES=list: only the storage drivers a root disk may sit behind (xen
# and IDE/SCSI for the EC2 and QEMU-pc sources, virtio for KubeVirt);
# nvme and ext4 are built into the -cloud kernel.  FSTYPE is temporary: in
# a chroot the fsck hook cannot probe the root device.
mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/usr/share/initramfs-tools/modules.d"
echo "MODULES=list" >"$root/etc/initramfs-tools/conf.d/pallet-modules.conf"
if [ "$layout" = bios ]; then
  echo "FSTYPE=ext4" >"$root/etc/initramfs-tools/conf.d/zz-pallet-fstype.conf"
  printf '%s\n' xen-blkfront ata_piix sd_mod virtio_pci virtio_blk virtio_scsi \
    >"$root/usr/share/initramfs-tools/modules.d/pallet-guest"
else
  # No virtio at all: what the EC2 instance needed (Xen or Nitro, whose
  # nvme is built in), the LVM and XFS the root sits on.
  echo "FSTYPE=xfs" >"$root/etc/initramfs-tools/conf.d/zz-pallet-fstype.conf"
  echo "RESUME=/dev/nvme0n1p3" >"$root/etc/initramfs-tools/conf.d/resume"
  printf '%s\n' xen-blkfront ata_piix sd_mod dm-mod xfs \
    >"$root/usr/share/initramfs-tools/modules.d/pallet-guest"
fi

mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev/pts "$root/dev/pts"
mount --bind "$cache/debcache" "$root/var/cache/apt/archives"

printf '%s\n' \
  "grub-pc grub-pc/install_devices multiselect" \
  "grub-pc grub-pc/install_devices_empty boolean true" |
  chroot "$root" debconf-set-selections

mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$pkglist")
if [ "$layout" = uefi-lvm ]; then
  # GRUB for EFI (grub-mkconfig from grub2-common; no grub-install run),
  # and the LVM and XFS tools the root needs.
  mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sed 's/^grub-pc$/grub-efi-amd64-bin/')
  pkgs+=(grub2-common lvm2 xfsprogs dosfstools)
fi
log "apt-get install ${#pkgs[@]} packages"
{
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get update -q &&
  DEBIAN_FRONTEND=noninteractive INITRD=No chroot "$root" apt-get install -y -q \
    --no-install-recommends -o Dpkg::Options::=--force-confdef \
    -o Dpkg::Options::=--force-confold "${pkgs[@]}"
} >"$work/apt.log" 2>&1 ||
  { tail -n 30 "$work/apt.log" >&2; die "apt-get install in the rootfs failed (log above)"; }

kver=$(cd "$root/lib/modules" && ls | sort -V | tail -n1)
[ -n "$kver" ] && [ -e "$root/boot/vmlinuz-$kver" ] || die "no kernel installed in the rootfs"
[ -e "$root/boot/initrd.img-$kver" ] ||
  chroot "$root" update-initramfs -c -k "$kver" >>"$work/apt.log" 2>&1 ||
  die "update-initramfs -c -k $kver failed; see the apt log"
rm -f "$root/etc/initramfs-tools/conf.d/zz-pallet-fstype.conf"

# A UUID derived from the cache key: the same inputs give the same image.
uuid="${key:0:8}-${key:8:4}-4${key:13:3}-8${key:1:3}-${key:4:12}"

log "configure the guest (kernel $kver, root UUID $uuid)"
echo "ip-172-31-0-10" >"$root/etc/hostname"
cat >"$root/etc/hosts" <<'EOF'
127.0.0.1 localhost
127.0.1.1 ip-172-31-0-10.ec2.internal ip-172-31-0-10
::1 localhost ip6-localhost ip6-loopback
EOF
cat >"$root/etc/fstab" <<EOF
# <file system> <mount point> <type> <options> <dump> <pass>
UUID=$uuid / ext4 rw,discard,errors=remount-ro,x-systemd.growfs 0 1
EOF
# cloud-init renders the NIC on first boot; no static eth0 (the guest sees
# ens3/ens5).
cat >"$root/etc/network/interfaces" <<'EOF'
source /etc/network/interfaces.d/*
auto lo
iface lo inet loopback
EOF
mkdir -p "$root/etc/cloud/cloud.cfg.d"
cat >"$root/etc/cloud/cloud.cfg.d/01_ec2.cfg" <<'EOF'
datasource_list: [ Ec2, None ]
datasource:
  Ec2:
    strict_id: false
    timeout: 5
    max_wait: 10
system_info:
  default_user:
    name: admin
EOF
cat >"$root/etc/default/grub" <<'EOF'
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200 earlyprintk=ttyS0,115200"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --speed=115200"
EOF
# The boot marker boot-check.sh waits for.
cat >"$root/etc/systemd/system/pallet-boot-ok.service" <<'EOF'
[Unit]
Description=Print the Pallet boot marker on the serial console
After=local-fs.target basic.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "PALLET-BOOT-OK kernel=$(uname -r) root=$(findmnt -no SOURCE /) data=$(findmnt -no SOURCE /data || echo none)" >/dev/ttyS0'

[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/pallet-boot-ok.service \
  "$root/etc/systemd/system/multi-user.target.wants/pallet-boot-ok.service"
: >"$root/etc/machine-id"
rm -f "$root/usr/sbin/policy-rc.d" "$root/var/lib/dbus/machine-id"

# The uefi-lvm layout: config, GRUB for EFI, and two disks assembled by
# guestfish.  Ends the script.
build_uefi_lvm () {
  local boot_uuid="${key:4:8}-${key:0:4}-4${key:9:3}-9${key:2:3}-${key:3:12}"
  local disk0="$work/disk0.img" disk1="$work/disk1.img"
  mkdir -p "$root/boot/efi" "$root/data"
  cat >"$root/etc/fstab" <<EOF
# <file system> <mount point> <type> <options> <dump> <pass>
/dev/mapper/vg0-root / xfs defaults 0 1
/dev/nvme0n1p2 /boot ext4 defaults 0 2
/dev/nvme0n1p1 /boot/efi vfat umask=0077 0 0
/dev/nvme0n1p3 none swap sw 0 0
/dev/nvme1n1p1 /data ext4 defaults,nofail 0 2
EOF
  sed -i 's|^GRUB_CMDLINE_LINUX=.*|GRUB_CMDLINE_LINUX="resume=/dev/nvme0n1p3 console=tty0 console=ttyS0,115200 earlyprintk=ttyS0,115200"|' \
    "$root/etc/default/grub"
  # grub.cfg on /boot (paths relative to that filesystem), as
  # grub-mkconfig would write it.
  mkdir -p "$root/boot/grub/x86_64-efi"
  cp "$root"/usr/lib/grub/x86_64-efi/*.mod "$root"/usr/lib/grub/x86_64-efi/*.lst \
    "$root/boot/grub/x86_64-efi/"
  cat >"$root/boot/grub/grub.cfg" <<EOF
#
# DO NOT EDIT THIS FILE
#
# It is automatically generated by grub-mkconfig using templates
# from /etc/grub.d and settings from /etc/default/grub
#
set default="0"
set timeout=1
serial --speed=115200
terminal_input console serial
terminal_output console serial
insmod part_gpt
insmod ext2
search --no-floppy --fs-uuid --set=root $boot_uuid
menuentry 'Debian GNU/Linux' --class debian --class gnu-linux --class gnu --class os \$menuentry_id_option 'gnulinux-simple-$boot_uuid' {
	insmod part_gpt
	insmod ext2
	search --no-floppy --fs-uuid --set=root $boot_uuid
	echo	'Loading Linux $kver ...'
	linux	/vmlinuz-$kver root=/dev/mapper/vg0-root ro resume=/dev/nvme0n1p3 console=tty0 console=ttyS0,115200 earlyprintk=ttyS0,115200
	echo	'Loading initial ramdisk ...'
	initrd	/initrd.img-$kver
}
EOF
  printf 'search.fs_uuid %s root\nset prefix=($root)/grub\n' "$boot_uuid" >"$root/tmp/early.cfg"
  # The ESP's EFI/debian/grub.cfg, as Debian's grub-install writes it: a
  # stub that hands over to /boot's grub.cfg.  virt-v2v (2.2) looks for
  # the grub.cfg of a UEFI guest only under /boot/efi/EFI.
  printf 'search.fs_uuid %s root\nset prefix=($root)'"'"'/grub'"'"'\nconfigfile $prefix/grub.cfg\n' \
    "$boot_uuid" >"$work/esp-grub.cfg"
  chroot "$root" grub-mkimage -O x86_64-efi -d /usr/lib/grub/x86_64-efi -c /tmp/early.cfg \
    -p /grub -o /tmp/BOOTX64.EFI part_gpt ext2 search_fs_uuid ||
    die "grub-mkimage -O x86_64-efi failed in the rootfs"
  mv "$root/tmp/BOOTX64.EFI" "$work/BOOTX64.EFI"
  rm -f "$root/tmp/early.cfg"
  echo "pallet data volume" >"$work/data-marker"

  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
         "$root"/var/cache/debconf/*-old \
         "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/usr/share/doc/*/changelog*
  umount "$root/var/cache/apt/archives" "$root/dev/pts" "$root/sys" "$root/proc"
  tar -C "$root" --numeric-owner -cf "$work/rootfs.tar" .

  log "assemble the disks with guestfish (GPT, ESP, /boot, swap, LVM+XFS root; data disk)"
  truncate -s "$disk_size" "$disk0"
  truncate -s 1G "$disk1"
  # Sectors: ESP 64 MiB, /boot 256 MiB, swap 128 MiB, the rest LVM.
  # KVM aborts at start on some hosts (MSR 0x10a); the appliance is small.
  LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct} \
  LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg} \
  guestfish -a "$disk0" -a "$disk1" >"$work/guestfish.log" 2>&1 <<EOF ||
run
part-init /dev/sda gpt
part-add /dev/sda p 2048 133119
part-add /dev/sda p 133120 657407
part-add /dev/sda p 657408 919551
part-add /dev/sda p 919552 -34
part-set-gpt-type /dev/sda 1 C12A7328-F81F-11D2-BA4B-00A0C93EC93B
part-set-gpt-type /dev/sda 3 0657FD6D-A4AB-43C4-84E5-0933C84B4F4F
part-set-gpt-type /dev/sda 4 E6D6D379-F507-44C2-A23C-238F2A3DF928
mkfs vfat /dev/sda1
mkfs ext4 /dev/sda2 label:boot
set-uuid /dev/sda2 $boot_uuid
mkswap /dev/sda3 label:swap
pvcreate /dev/sda4
vgcreate vg0 /dev/sda4
lvcreate-free root vg0 100
mkfs xfs /dev/vg0/root
part-init /dev/sdb gpt
part-add /dev/sdb p 2048 -34
mkfs ext4 /dev/sdb1 label:data
mount /dev/vg0/root /
mkdir /boot
mount /dev/sda2 /boot
mkdir /boot/efi
mount /dev/sda1 /boot/efi
tar-in $work/rootfs.tar /
mkdir-p /boot/efi/EFI/BOOT
upload $work/BOOTX64.EFI /boot/efi/EFI/BOOT/BOOTX64.EFI
mkdir-p /boot/efi/EFI/debian
upload $work/BOOTX64.EFI /boot/efi/EFI/debian/grubx64.efi
upload $work/esp-grub.cfg /boot/efi/EFI/debian/grub.cfg
mkdir-p /data
mount /dev/sdb1 /data
upload $work/data-marker /data/PALLET-DATA
umount-all
EOF
    { tail -n 20 "$work/guestfish.log" >&2; die "assembling the disks with guestfish failed (log above)"; }
  mv -f "$disk1" "${outputs[1]}"
  mv -f "$disk0" "${outputs[0]}"
  log "done: ${outputs[*]} ($(( $(du -k "${outputs[0]}" | cut -f1) / 1024 )) MiB allocated)"
  printf '%s\n' "${outputs[@]}"
  exit 0
}
[ "$layout" = bios ] || build_uefi_lvm

# GRUB, as grub-install would lay it out, plus a grub.cfg in the
# grub-mkconfig layout (virt-v2v looks for /boot/grub/grub.cfg).
mkdir -p "$root/boot/grub/i386-pc"
cp "$root"/usr/lib/grub/i386-pc/*.mod "$root"/usr/lib/grub/i386-pc/*.lst "$root/boot/grub/i386-pc/"
cat >"$root/boot/grub/grub.cfg" <<EOF
#
# DO NOT EDIT THIS FILE
#
# It is automatically generated by grub-mkconfig using templates
# from /etc/grub.d and settings from /etc/default/grub
#
set default="0"
set timeout=1
serial --speed=115200
terminal_input console serial
terminal_output console serial
insmod part_msdos
insmod ext2
search --no-floppy --fs-uuid --set=root $uuid
menuentry 'Debian GNU/Linux' --class debian --class gnu-linux --class gnu --class os \$menuentry_id_option 'gnulinux-simple-$uuid' {
	insmod part_msdos
	insmod ext2
	search --no-floppy --fs-uuid --set=root $uuid
	echo	'Loading Linux $kver ...'
	linux	/boot/vmlinuz-$kver root=UUID=$uuid ro console=tty0 console=ttyS0,115200 earlyprintk=ttyS0,115200
	echo	'Loading initial ramdisk ...'
	initrd	/boot/initrd.img-$kver
}
EOF
printf 'search.fs_uuid %s root\nset prefix=($root)/boot/grub\n' "$uuid" >"$work/early.cfg"
cp "$work/early.cfg" "$root/tmp/early.cfg"
chroot "$root" grub-mkimage -O i386-pc -d /usr/lib/grub/i386-pc -c /tmp/early.cfg \
  -p /boot/grub -o /tmp/core.img biosdisk part_msdos ext2 search_fs_uuid ||
  die "grub-mkimage failed in the rootfs"
mv "$root/tmp/core.img" "$work/core.img"
cp "$root/usr/lib/grub/i386-pc/boot.img" "$work/boot.img"
rm -f "$root/tmp/early.cfg"

# Slim down before the copy into the filesystem.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
       "$root"/var/cache/debconf/*-old \
       "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/usr/share/doc/*/changelog*
umount "$root/var/cache/apt/archives" "$root/dev/pts" "$root/sys" "$root/proc"

log "make the disk image ($disk_size, ext4 at sector $part_start_sector)"
tmpimg="$work/disk.img"
truncate -s "$disk_size" "$tmpimg"
printf 'label: dos\nstart=%s, type=83, bootable\n' "$part_start_sector" |
  sfdisk --quiet "$tmpimg" >/dev/null
disk_bytes=$(stat -c %s "$tmpimg")
offset=$((part_start_sector * 512))
part_kib=$(( (disk_bytes - offset) / 1024 ))
# The image starts as one hole, so the inode tables and journal need no
# zeroing (lazy_*_init): they stay unallocated.
mkfs.ext4 -q -F -L cloudimg-rootfs -U "$uuid" -d "$root" \
  -E "offset=$offset,lazy_itable_init=1,lazy_journal_init=1,nodiscard" \
  "$tmpimg" "${part_kib}k" ||
  die "mkfs.ext4 -d into $tmpimg failed"

core_bytes=$(stat -c %s "$work/core.img")
[ "$core_bytes" -lt $(( (part_start_sector - 1) * 512 )) ] ||
  die "core.img ($core_bytes bytes) does not fit before the first partition"
# boot.img code (not the partition table) into the MBR; NOP the drive check
# at 0x66 as grub-setup does for hard disks; core.img from sector 1.
dd if="$work/boot.img" of="$tmpimg" bs=440 count=1 conv=notrunc status=none
printf '\x90\x90' | dd of="$tmpimg" bs=1 seek=$((0x66)) conv=notrunc status=none
dd if="$work/core.img" of="$tmpimg" bs=512 seek=1 conv=notrunc status=none

mv -f "$tmpimg" "$img"
alloc=$(du -k "$img" | cut -f1)
log "done: $img ($disk_size virtual, $((alloc / 1024)) MiB allocated)"
echo "$img"
