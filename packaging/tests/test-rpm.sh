#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The RPM spec parses and builds: rpmspec -P, rpmbuild -bs, then a full
# rpmbuild -bb (with --nodeps: on Debian the rpm database knows none of
# the BuildRequires, which are installed as .debs), and the five binary
# RPMs hold the right files.
#
#   test-rpm.sh SRCDIR WORKDIR PROJECT_VERSION
set -eu
[ $# -eq 3 ] || { echo "usage: $0 SRCDIR WORKDIR PROJECT_VERSION" >&2; exit 2; }
src=$(cd "$1" && pwd)
mkdir -p "$2"; work=$(cd "$2" && pwd)
version=$3
fail () { echo "FAIL: $*" >&2; exit 1; }
for t in rpmspec rpmbuild rpm rpm2cpio cpio git; do
  command -v "$t" >/dev/null 2>&1 || fail "$t not found: run scripts/install-deps.sh (package rpm)"
done
t0=$(date +%s)
top=$work/rpmbuild
rm -rf "$top" "$work/root"; mkdir -p "$top/SOURCES" "$top/SPECS"

echo "== source tarball (see export-source.sh: HEAD by default)"
stage=$work/stage; rm -rf "$stage"
"$src/packaging/export-source.sh" "$src" "$stage/pallet-$version"
tar -C "$stage" -czf "$top/SOURCES/pallet-$version.tar.gz" "pallet-$version"
spec=$stage/pallet-$version/packaging/rpm/pallet.spec
cp "$spec" "$top/SPECS/"

echo "== rpmspec -P"
rpmspec -P "$spec" > "$work/spec.parsed" || fail "rpmspec cannot parse $spec"
have=$(rpmspec -q --srpm --qf '%{VERSION}' "$spec")
[ "$have" = "$version" ] ||
  fail "pallet.spec says Version: $have but CMakeLists.txt says $version: update the spec and its %changelog"


rb () { rpmbuild --define "_topdir $top" --define "debug_package %{nil}" \
          --define "_smp_mflags -j${PALLET_RPM_JOBS:-$(nproc)}" --nodeps "$@"; }
echo "== rpmbuild -bs"
rb -bs "$top/SPECS/pallet.spec" > "$work/bs.log" 2>&1 || { tail -n 40 "$work/bs.log"; fail "rpmbuild -bs failed"; }
ls "$top"/SRPMS/pallet-"$version"-1*.src.rpm

echo "== rpmbuild -bb"
rb -bb "$top/SPECS/pallet.spec" > "$work/bb.log" 2>&1 || { tail -n 60 "$work/bb.log"; fail "rpmbuild -bb failed; log: $work/bb.log"; }
got=$(for r in "$top"/RPMS/*/*.rpm; do rpm -qp --qf '%{NAME}\n' "$r"; done | sort | tr '\n' ' ')
want="libpallet-host pallet pallet-conformance pallet-devel pallet-provider-ec2 pallet-provider-v2v "
[ "$got" = "$want" ] || fail "built RPMs are '$got', expected '$want'"

echo "== contents"
mkdir -p "$work/root"
for r in "$top"/RPMS/*/*.rpm; do
  (cd "$work/root" && rpm2cpio "$r" | cpio -idm --quiet) || fail "cannot unpack $r"
done
lib=$(rpm --eval '%{_lib}')
for f in usr/bin/pallet usr/bin/pallet-conformance usr/include/pallet/provider.h \
         usr/include/pallet/host.h usr/$lib/libpallet-host.so.1 usr/$lib/libpallet-host.so \
         usr/$lib/pkgconfig/pallet-provider.pc usr/$lib/cmake/Pallet/PalletConfig.cmake \
         usr/$lib/pallet/providers/pallet-provider-ec2.so \
         usr/$lib/pallet/providers/pallet-provider-vsphere.so usr/share/pallet/pallet-provider.map \
         usr/share/pallet/schemas/result.schema.json usr/libexec/pallet/pallet-lint-manifests \
         usr/share/pallet/kubernetes-schemas/core-v1.json; do
  [ -e "$work/root/$f" ] || fail "$f is in no RPM"
done
# The unpacked CLI looks providers up in the RPM's libdir.
LD_LIBRARY_PATH="$work/root/usr/$lib" "$work/root/usr/bin/pallet" --help 2>&1 |
  grep -q "/usr/$lib/pallet/providers" || fail "the RPM's pallet does not look in /usr/$lib/pallet/providers"
rpm -qp --requires "$top"/RPMS/*/pallet-devel-*.rpm | grep -q '^libpallet-host' ||
  fail "pallet-devel does not require libpallet-host"
echo "ok: rpmspec -P, rpmbuild -bs and -bb in $(( $(date +%s) - t0 )) s"
