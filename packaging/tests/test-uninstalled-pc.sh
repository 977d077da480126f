#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds examples/provider-hello and a tiny host against the build tree
# with nothing but the uninstalled pkg-config files, then checks the
# provider's exports, runs pallet-conformance on it and loads it.
# usage: test-uninstalled-pc.sh SRCDIR PCDIR PALLET_CONFORMANCE CC WORKDIR
set -eu
src=$1 pcdir=$2 conformance=$3 cc=$4 work=$5
fail () { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work"
export PKG_CONFIG_PATH="$pcdir"
unset PKG_CONFIG_LIBDIR || true

echo "pallet-provider: $(pkg-config --cflags --libs pallet-provider)"
pkg-config --cflags pallet-provider | grep -q -- "-I$src/abi" ||
  fail "pallet-provider.pc does not point at the source tree's abi/"
pkg-config --cflags pallet-provider | grep -q -- "-D_GNU_SOURCE" ||
  fail "pallet-provider.pc Cflags lack -D_GNU_SOURCE"
# shellcheck disable=SC2046 # pkg-config output is a list of flags
"$cc" -std=c11 -Wall -Wextra -Werror -fPIC -shared -Wl,--no-undefined \
  -o "$work/pallet-provider-hello.so" "$src/examples/provider-hello/hello.c" \
  $(pkg-config --cflags --libs pallet-provider jansson) ||
  fail "provider-hello does not build with the uninstalled pallet-provider.pc"
"$src/abi/check-exports.sh" "$work/pallet-provider-hello.so"
"$conformance" "$work/pallet-provider-hello.so" \
  --fixture "$src/examples/provider-hello/fixture.json" ||
  fail "pallet-conformance rejects the pkg-config-built provider-hello"

echo "pallet-host: $(pkg-config --cflags --libs pallet-host)"
# shellcheck disable=SC2046
"$cc" -std=c11 -Wall -Wextra -Werror -o "$work/host-load" \
  "$src/packaging/tests/find-package/host-load.c" \
  $(pkg-config --cflags --libs pallet-host) ||
  fail "a host does not build with the uninstalled pallet-host.pc"
"$work/host-load" "$work/pallet-provider-hello.so" | grep -qx "name=hello" ||
  fail "host-load (pallet-host.pc, rpath to the build tree) could not load provider-hello"
"$work/host-load" "$work/pallet-provider-hello.so" | grep -qx "setting.vm-count.default=2" ||
  fail "the dump lacks provider-hello's settings"
echo "ok: the uninstalled .pc files build and load a provider"
