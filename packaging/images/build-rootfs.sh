#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# build-rootfs.sh: build the root filesystem of one of Pallet's container
# images with debootstrap, for running its Pods where podman cannot.
#
#   packaging/images/build-rootfs.sh IMAGE [--build-dir DIR] [--force]
#
# IMAGE is a directory name under packaging/images (pallet-ebs-copy,
# pallet-convert).  Prints the rootfs directory on stdout; progress goes to
# stderr.  The recipe is the image's own: debootstrap minbase of Debian 12,
# then its setup.sh (apt-get install of packages.list) in a chroot, then
# every "COPY ${BUILD_DIR}/SRC DEST" line of its Containerfile, from the
# build tree (default: ./build).
#
# The Debian part is cached, keyed by a hash of this script and the
# image's packages.list and setup.sh, in
#   $PALLET_IMAGE_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/pallet/images)
# The project's binaries are copied in on every run (cheap, and a rebuilt
# tree must not run stale binaries).  Slow on a cache miss (minutes):
# run it under flock /tmp/pallet-slow.lock.
# Environment: PALLET_IMAGE_MIRROR overrides the Debian mirror.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self="$here/$(basename "${BASH_SOURCE[0]}")"
top=$(cd "$here/../.." && pwd)
cache=${PALLET_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pallet/images}
suite=bookworm

die () { echo "build-rootfs: error: $*" >&2; exit 1; }
log () { echo "build-rootfs: [$(( $(date +%s) - t0 ))s] $*" >&2; }
t0=$(date +%s)

args=("$@")
usage="usage: $0 IMAGE [--build-dir DIR] [--force]"
image="" build_dir="$top/build" force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1 ;;
    --build-dir) [ $# -ge 2 ] || die "--build-dir needs a directory; $usage"
                 build_dir=$(cd "$2" && pwd) || die "build directory '$2' not found"; shift ;;
    -*) die "unknown option '$1'; $usage" ;;
    *) [ -z "$image" ] || die "one IMAGE only, got '$image' and '$1'; $usage"; image=$1 ;;
  esac
  shift
done
[ -n "$image" ] || die "no IMAGE given; $usage"
dir="$here/$image"
if [ ! -r "$dir/Containerfile" ]; then
  known=$(cd "$here" && ls -d */ 2>/dev/null | tr -d / | tr '\n' ' ')
  die "no image '$image' (no $dir/Containerfile); known images: $known"
fi
for f in packages.list setup.sh; do
  [ -r "$dir/$f" ] || die "$dir/$f missing; restore it from git"
done

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap and chroot need it); rerun with sudo"
for tool in debootstrap unshare flock sha256sum chroot; do
  command -v "$tool" >/dev/null ||
    die "'$tool' not found; install it with ./scripts/install-deps.sh"
done

# The binaries: "COPY ${BUILD_DIR}/SRC DEST" lines of the Containerfile.
copies=()
while read -r src dst; do
  [ -f "$build_dir/$src" ] ||
    die "$build_dir/$src (COPY in $image/Containerfile) is not built; run cmake --build $build_dir"
  copies+=("$src" "$dst")
done < <(sed -n 's|^COPY \${BUILD_DIR}/\([^ ]*\) \([^ ]*\)$|\1 \2|p' "$dir/Containerfile")
[ ${#copies[@]} -gt 0 ] || die "$image/Containerfile has no 'COPY \${BUILD_DIR}/SRC DEST' line"

key=$(cat "$self" "$dir/packages.list" "$dir/setup.sh" | sha256sum | cut -c1-16)
root="$cache/$image-$key"

install_binaries () {
  local i
  for ((i = 0; i < ${#copies[@]}; i += 2)); do
    install -D -m 0755 "$build_dir/${copies[i]}" "$root${copies[i+1]}"
  done
  log "installed $(( ${#copies[@]} / 2 )) binaries from $build_dir"
}

if [ -z "${PALLET_ROOTFS_IN_NS:-}" ]; then
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  if [ "$force" -eq 0 ] && [ -e "$root/.pallet-rootfs-ready" ]; then
    install_binaries
    echo "$root"
    exit 0
  fi
  # A private mount namespace: the chroot's bind mounts vanish with the
  # process even if it is killed.
  PALLET_ROOTFS_IN_NS=1 unshare --mount --propagation private "$self" "${args[@]}" >/dev/null
  [ -e "$root/.pallet-rootfs-ready" ] || die "the rootfs of $image was not built"
  install_binaries
  echo "$root"
  exit 0
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
mirror=${PALLET_IMAGE_MIRROR:-$(find_mirror)}
[ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list*; set PALLET_IMAGE_MIRROR"

work=$(mktemp -d "$cache/work-$image-$key.XXXXXX")
new="$work/rootfs"
cleanup () {
  local m
  for m in var/cache/apt/archives dev/pts dev sys proc; do
    mountpoint -q "$new/$m" 2>/dev/null && umount -l "$new/$m"
  done
  # Never rm -rf through a bind mount (it would empty the host's directory).
  if grep -q " $new/" /proc/self/mounts; then
    echo "build-rootfs: warning: mounts left under $new; not removing $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

mkdir -p "$cache/debcache"
log "debootstrap $suite from $mirror for $image"
debootstrap --variant=minbase --cache-dir="$cache/debcache" "$suite" "$new" "$mirror" \
  >"$work/debootstrap.log" 2>&1 ||
  { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap of $suite from $mirror failed (log above); check the mirror"; }

cat >"$new/etc/dpkg/dpkg.cfg.d/01-pallet" <<'EOT'
force-unsafe-io
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOT
printf '#!/bin/sh\nexit 101\n' >"$new/usr/sbin/policy-rc.d"
chmod 755 "$new/usr/sbin/policy-rc.d"
echo "deb $mirror $suite main" >"$new/etc/apt/sources.list"

mount -t proc proc "$new/proc"
mount -t sysfs sysfs "$new/sys"
mount --bind /dev "$new/dev"
mount --bind /dev/pts "$new/dev/pts"
mount --bind "$cache/debcache" "$new/var/cache/apt/archives"
cp /etc/resolv.conf "$new/etc/resolv.conf" 2>/dev/null || true

mkdir -p "$new/tmp/pallet-image"
cp "$dir/packages.list" "$dir/setup.sh" "$new/tmp/pallet-image/"
log "setup.sh of $image (apt-get install $(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$dir/packages.list" | wc -l) packages)"
chroot "$new" sh /tmp/pallet-image/setup.sh >"$work/setup.log" 2>&1 ||
  { tail -n 30 "$work/setup.log" >&2; die "setup.sh of $image in the rootfs failed (log above)"; }
rm -rf "$new/tmp/pallet-image" "$new/usr/sbin/policy-rc.d"
: >"$new/etc/machine-id"

for m in var/cache/apt/archives dev/pts dev sys proc; do umount "$new/$m"; done
rm -rf "$root"
mv "$new" "$root"
touch "$root/.pallet-rootfs-ready"
log "rootfs of $image ready: $root ($(du -sh "$root" | cut -f1))"
echo "$root"
