#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The source a release tarball holds (export-source.sh: the committed HEAD)
# builds and passes its unit tests in a directory with nothing beside it:
# no sibling directory, no checkout, nothing of the tree it came from.
#
#   test-source-alone.sh SRCDIR WORKDIR
set -eu
[ $# -eq 2 ] || { echo "usage: $0 SRCDIR WORKDIR" >&2; exit 2; }
src=$(cd "$1" && pwd)
mkdir -p "$2"; work=$(cd "$2" && pwd)
fail () { echo "FAIL: $*" >&2; exit 1; }
jobs=${PALLET_ALONE_JOBS:-2}

rm -rf "$work/alone" "$work/pallet.tar.gz"
mkdir -p "$work/stage" "$work/alone"
rm -rf "$work/stage/pallet"
"$src/packaging/export-source.sh" "$src" "$work/stage/pallet"
tar -C "$work/stage" -czf "$work/pallet.tar.gz" pallet
rm -rf "$work/stage"
tar -C "$work/alone" -xzf "$work/pallet.tar.gz"
[ "$(ls -A "$work/alone")" = pallet ] || fail "$work/alone holds more than the unpacked tree"
tree=$work/alone/pallet
[ ! -e "$tree/.git" ] || fail "the exported tree has a .git"
echo "== $(du -sh "$work/pallet.tar.gz" | cut -f1) tarball, unpacked alone in $work/alone"

cmake -S "$tree" -B "$tree/build" -DPALLET_VALGRIND=OFF > "$work/configure.log" 2>&1 ||
  { tail -n 30 "$work/configure.log"; fail "cmake configure of the exported tree failed"; }
cmake --build "$tree/build" -j "$jobs" > "$work/build.log" 2>&1 ||
  { grep -E 'error|Error' "$work/build.log" | head -n 30; fail "the exported tree does not build"; }
ctest --test-dir "$tree/build" -L unit -j "$jobs" --output-on-failure > "$work/ctest.log" 2>&1 ||
  { tail -n 60 "$work/ctest.log"; fail "unit tests of the exported tree fail"; }
grep -E 'tests passed' "$work/ctest.log"
n=$(sed -n 's/.* out of \([0-9]*\)$/\1/p' "$work/ctest.log")
[ "${n:-0}" -gt 0 ] || fail "no unit test ran"
rm -rf "$work/alone" "$work/pallet.tar.gz"
echo "PASS: the exported tree builds and its $n unit tests pass with nothing beside it"
