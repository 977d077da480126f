#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Build Pallet's .debs with dpkg-buildpackage -us -uc -b.
#
#   packaging/build-deb.sh OUTDIR [SCRATCH]
#
# dpkg-buildpackage wants debian/ at the source root; ours lives in
# packaging/debian.  So: copy the source tree (the committed HEAD, or with
# PALLET_PKG_SOURCE=worktree the tracked files as they are now: see
# export-source.sh) into SCRATCH/src, put packaging/debian at its root,
# build there, and move the .debs and .buildinfo/.changes into OUTDIR.
# Tests do not run in the package build (nocheck); CI runs them on its own
# build with ctest.
set -eu

[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [SCRATCH]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
mkdir -p "$1"; out=$(cd "$1" && pwd)
scratch=${2:-$out/scratch}
for t in git dpkg-buildpackage dh tar; do
  command -v "$t" >/dev/null 2>&1 ||
    { echo "build-deb: $t not found: run scripts/install-deps.sh" >&2; exit 1; }
done

rm -rf "$scratch"; mkdir -p "$scratch/src"; scratch=$(cd "$scratch" && pwd)
src=$scratch/src
"$here/export-source.sh" "$top" "$src"
[ -f "$src/packaging/debian/control" ] ||
  { echo "build-deb: $src/packaging/debian/control missing: is packaging/debian committed (or PALLET_PKG_SOURCE=worktree and tracked)?" >&2; exit 1; }
rm -rf "$src/debian"
cp -a "$src/packaging/debian" "$src/debian"

# The changelog's upstream version must be the project's.
want=$(sed -n 's/^project(pallet VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
have=$(cd "$src" && dpkg-parsechangelog -S Version | sed 's/-[^-]*$//')
[ "$want" = "$have" ] || {
  echo "build-deb: packaging/debian/changelog says $have but CMakeLists.txt says $want: add a changelog entry (dch -v $want-1)" >&2
  exit 1; }

jobs=${PALLET_DEB_JOBS:-$(nproc)}
export DEB_BUILD_OPTIONS="nocheck parallel=$jobs ${DEB_BUILD_OPTIONS:-}"
start=$(date +%s)
(cd "$src" && dpkg-buildpackage -us -uc -b) > "$scratch/build.log" 2>&1 || {
  tail -n 60 "$scratch/build.log" >&2
  echo "build-deb: dpkg-buildpackage failed; full log: $scratch/build.log" >&2
  exit 1; }
end=$(date +%s)
mv "$scratch"/*.deb "$scratch"/*.changes "$scratch"/*.buildinfo "$out"/
echo "build-deb: built in $((end - start)) s (jobs=$jobs); log: $scratch/build.log"
ls -1 "$out"/*.deb
