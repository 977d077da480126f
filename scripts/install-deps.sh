#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages Pallet builds, tests, demos and converts
# with.  Does nothing (and quickly: one dpkg-query) when they are all
# present.  Installing needs root: it runs apt-get itself as root, or
# through sudo.
#
#   scripts/install-deps.sh          install what is missing
#   scripts/install-deps.sh --list   print the package list, one a line
#                                    (what tests/deps checks against)
#
# apt-get runs with --no-install-recommends: most Recommends of this list
# are desktop, documentation or hardware packages a conversion host does not
# use.  The Recommends a conversion needs are listed by name instead:
#   libguestfs0        -> libguestfs-xfs: XFS roots (Amazon Linux, RHEL and
#                         their clones) are the common EC2 case.  Not
#                         libguestfs-hfsplus / -reiserfs: no such EC2 guests.
#   qemu-system-x86    -> ovmf (UEFI guests: boot checks, virt-v2v's UEFI
#                         output) and qemu-utils (qemu-img).  Not
#                         qemu-system-gui (no display here) nor
#                         qemu-block-extra (nbdkit's plugins do the network
#                         block access).
#   linux-image-amd64  -> none (firmware-linux-free, apparmor): the
#                         libguestfs appliance boots it under QEMU with
#                         virtio devices only.
#   guestfs-tools      -> none (virt-p2v, gnupg).
# linux-image-amd64 is here for the appliance: supermin builds it from the
# host's newest /boot/vmlinuz-* and its /lib/modules, and a minimal or
# container Debian has no kernel at all ("supermin: failed to find a
# suitable kernel").  lvm2, xfsprogs and libguestfs-xfs let the appliance
# open LVM and XFS guests.  Windows guests need virtio-win and rhsrvany,
# which Debian does not package: not installed, and `pallet doctor` says so.
#
# kubectl: Debian's kubernetes-client, unless /usr/bin/kubectl already comes
# from another package (e.g. Google Cloud SDK's `kubectl`, whose file would
# make kubernetes-client fail to unpack) or from no package: that kubectl is
# kept and counts as the kubectl dependency.
set -eu

PKGS="
 build-essential g++ cmake pkg-config git clang clang-format libclang-rt-14-dev
 libcurl4-openssl-dev libjansson-dev libssl-dev libcunit1-dev libxml2-dev
 libyaml-dev libguestfs-dev libvirt-dev uuid-dev libarchive-dev
 linux-image-amd64 libguestfs-tools guestfs-tools virt-v2v libguestfs-xfs
 xfsprogs lvm2 qemu-utils qemu-system-x86 ovmf nbdkit libnbd-bin
 debootstrap fdisk dosfstools e2fsprogs grub-pc-bin
 python3 python3-botocore python3-yaml python3-jsonschema awscli valgrind
 libvirt-clients golang-go golang-github-vmware-govmomi-dev
 dpkg-dev debhelper rpm cpio file binutils
 curl ca-certificates openssl groff-base time"

# The package that provides /usr/bin/kubectl.
kubectl_pkg () {
  if [ -e /usr/bin/kubectl ] || [ -L /usr/bin/kubectl ]; then
    owner=$(dpkg-query -S /usr/bin/kubectl 2>/dev/null | sed -n '1s/:.*//p')
    # Empty when installed by hand: kept too, nothing to install for it.
    echo "$owner"
    return
  fi
  echo kubernetes-client
}

kpkg=$(kubectl_pkg)
PKGS="$PKGS $kpkg"

case ${1:-} in
  --list) for p in $PKGS; do echo "$p"; done; exit 0 ;;
  "") ;;
  *) echo "install-deps: unknown argument '$1' (use --list, or no argument)" >&2; exit 2 ;;
esac

# One dpkg-query for every package: those fully installed.
# shellcheck disable=SC2086
installed=" $(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' $PKGS 2>/dev/null |
             awk '$1 == "ii" { printf "%s ", $2 }')"
missing=""
for p in $PKGS; do
  case $installed in *" $p "*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing"
case $kpkg in
  kubernetes-client) ;;
  "") echo "install-deps: keeping /usr/bin/kubectl (installed by hand, by no package);" \
           "kubernetes-client is not installed (it would clash with it)" ;;
  *) echo "install-deps: keeping /usr/bin/kubectl from package '$kpkg';" \
          "kubernetes-client is not installed (it would clash with it)" ;;
esac
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 ||
    { echo "install-deps: installing packages needs root: rerun as root or install sudo" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
