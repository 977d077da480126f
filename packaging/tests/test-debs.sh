#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The .debs work for a provider author who has nothing but them:
#   1. build them (packaging/build-deb.sh: dpkg-buildpackage -us -uc -b);
#   2. unpack them all into a scratch root with dpkg -x;
#   3. build examples/provider-null out of tree against the unpacked
#      headers with pkg-config only (Makefile.standalone), and again with
#      find_package(Pallet);
#   4. check it exports one symbol (nm -D), load it with the unpacked
#      `pallet providers --dump` (and a Pallet::host program);
#   5. run the unpacked pallet-conformance on it (last, so a provider that
#      breaks the contract does not hide a packaging fault).
#
#   test-debs.sh SRCDIR WORKDIR
set -eu
[ $# -eq 2 ] || { echo "usage: $0 SRCDIR WORKDIR" >&2; exit 2; }
src=$(cd "$1" && pwd)
mkdir -p "$2"; work=$(cd "$2" && pwd)
fail () { echo "FAIL: $*" >&2; exit 1; }
step () { echo; echo "== $* ($(( $(date +%s) - t0 )) s)"; }
for t in dpkg dpkg-deb nm pkg-config cmake make cc; do
  command -v "$t" >/dev/null 2>&1 || fail "$t not found: run scripts/install-deps.sh"
done
t0=$(date +%s)
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)

step "1. build the .debs"
rm -rf "$work/debs" "$work/root" "$work/oot" "$work/cmake"
"$src/packaging/build-deb.sh" "$work/debs" "$work/scratch"
tbuild=$(( $(date +%s) - t0 ))
# The source the packages were built from (build-deb.sh's copy).
pkgsrc=$work/scratch/src
# Exactly the six packages (plus their -dbgsym).
got=$(for d in "$work"/debs/*.deb; do dpkg-deb -f "$d" Package; done | grep -v -- '-dbgsym$' | sort | tr '\n' ' ')
want="libpallet-host1 pallet pallet-conformance pallet-dev pallet-provider-ec2 pallet-provider-v2v "
[ "$got" = "$want" ] || fail "built packages are '$got', expected '$want'"

step "2. unpack into $work/root"
root=$work/root; mkdir -p "$root"
for d in "$work"/debs/*.deb; do
  case $d in *-dbgsym_*) continue ;; esac
  dpkg -x "$d" "$root"
done
libdir=$root/usr/lib/$ma
for f in usr/include/pallet/provider.h usr/include/pallet/host.h usr/bin/pallet \
         usr/bin/pallet-conformance usr/share/pallet/pallet-provider.map \
         usr/lib/$ma/pkgconfig/pallet-provider.pc usr/lib/$ma/pkgconfig/pallet-host.pc \
         usr/lib/$ma/cmake/Pallet/PalletConfig.cmake usr/lib/$ma/libpallet-host.so \
         usr/lib/$ma/libpallet-host.so.1 usr/lib/$ma/pallet/providers/pallet-provider-ec2.so \
         usr/lib/$ma/pallet/providers/pallet-provider-vsphere.so \
         usr/share/man/man1/pallet.1.gz usr/libexec/pallet/pallet-lint-manifests \
         usr/share/pallet/kubernetes-schemas/kubevirt.json \
         usr/share/pallet/kubernetes-schemas/LICENSE; do
  [ -e "$root/$f" ] || fail "$f is in no package"
done
# The packaged validator works with the packaged schemas.
/usr/bin/python3 "$root/usr/libexec/pallet/pallet-lint-manifests" --strict \
  --schema-dir "$root/usr/share/pallet/kubernetes-schemas" \
  "$src/host-shim/lint/tests/examples/vm.yaml" ||
  fail "the packaged pallet-lint-manifests rejects host-shim/lint/tests/examples/vm.yaml"
# The -dev symlink resolves to the runtime library's SONAME.
[ "$(readlink "$libdir/libpallet-host.so")" = libpallet-host.so.1 ] ||
  fail "libpallet-host.so should point at libpallet-host.so.1, points at $(readlink "$libdir/libpallet-host.so")"

step "3a. out-of-tree build with pkg-config only"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
inc=$(pkg-config --variable=includedir pallet-provider) || fail "pkg-config cannot read pallet-provider.pc"
[ "$(cd "$inc" && pwd -P)" = "$(cd "$root/usr/include" && pwd -P)" ] ||
  fail "pallet-provider.pc is not relocatable: includedir=$inc, expected $root/usr/include"
echo "pallet-provider: $(pkg-config --cflags --libs pallet-provider)"
# The example pallet-dev ships is examples/provider-null.
for f in null.c Makefile.standalone; do
  cmp "$pkgsrc/examples/provider-null/$f" "$root/usr/share/doc/pallet-dev/examples/$f" ||
    fail "pallet-dev's examples/$f differs from examples/provider-null/$f"
done
mkdir -p "$work/oot"
(cd "$work/oot" && make -f "$root/usr/share/doc/pallet-dev/examples/Makefile.standalone" \
   CFLAGS="-O2 -g -MD -MF null.d") || fail "provider-null does not build out of tree"
so=$work/oot/pallet-provider-null.so
# It compiled against the unpacked header, not some other copy.
used=$(grep -o '[^ ]*/pallet/provider\.h' "$work/oot/null.d" | head -n 1)
[ -n "$used" ] && [ "$(realpath "$used")" = "$(realpath "$root/usr/include/pallet/provider.h")" ] ||
  fail "the out-of-tree build did not use $root/usr/include/pallet/provider.h (see $work/oot/null.d)"

step "4a. one export, providers --dump"
syms=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' |
       grep -v -E '^(_init|_fini|_edata|_end|__bss_start)$' || true)
[ "$syms" = pallet_provider_entry ] || fail "$so exports '$syms', not exactly pallet_provider_entry"
echo "ok: exports only pallet_provider_entry"
export LD_LIBRARY_PATH="$libdir"
# The unpacked CLI runs on the unpacked library.
ldd "$root/usr/bin/pallet" | grep -q "$libdir/libpallet-host.so.1" ||
  fail "unpacked pallet does not use $libdir/libpallet-host.so.1: $(ldd "$root/usr/bin/pallet" | grep pallet)"
"$root/usr/bin/pallet" providers --dump "$so" > "$work/oot/dump.txt" ||
  fail "unpacked pallet providers --dump $so failed"
cat "$work/oot/dump.txt"
grep -qx "path=$so" "$work/oot/dump.txt" && grep -qx "name=null" "$work/oot/dump.txt" ||
  fail "providers --dump did not report the out-of-tree null provider"

step "3b. out-of-tree build with find_package(Pallet)"
cmake -S "$pkgsrc/packaging/tests/find-package" -B "$work/cmake" \
      -DCMAKE_PREFIX_PATH="$root/usr" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
      -DPALLET_NULL_SOURCE="$pkgsrc/examples/provider-null/null.c" > "$work/cmake.log" 2>&1 || {
  cat "$work/cmake.log"; fail "find_package(Pallet) project does not configure"; }
grep -q "Pallet_DIR=$libdir/cmake/Pallet" "$work/cmake.log" || {
  cat "$work/cmake.log"; fail "find_package(Pallet) did not find the unpacked package"; }
cmake --build "$work/cmake" || fail "find_package(Pallet) project does not build"

step "4b. the CMake-built provider: one export, loaded by a Pallet::host program"
"$pkgsrc/abi/check-exports.sh" "$work/cmake/pallet-provider-null.so" ||
  fail "the find_package(Pallet) provider exports more than pallet_provider_entry"
"$work/cmake/host-load" "$work/cmake/pallet-provider-null.so" | grep -qx "name=null" ||
  fail "host-load (Pallet::host) could not load the CMake-built provider"

# Last, so every packaging check above has run whatever the verdict.
step "5. the unpacked pallet-conformance on both out-of-tree providers"
bad=""
for p in "$so" "$work/cmake/pallet-provider-null.so"; do
  if "$root/usr/bin/pallet-conformance" "$p" > "$p.conformance.txt" 2>&1; then
    grep '^RESULT\|^pallet-conformance:' "$p.conformance.txt"
  else
    grep -v '^ *[0-9]*\. ' "$p.conformance.txt"; bad="$bad $p"
  fi
done
[ -z "$bad" ] || fail "the unpacked pallet-conformance rejects:$bad (reports: each .conformance.txt)"

echo
echo "ok: packages built in $tbuild s; all checks in $(( $(date +%s) - t0 )) s"
