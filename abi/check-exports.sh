#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Fails unless the shared object exports exactly pallet_provider_entry.
set -eu
so=$1
syms=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' \
       | grep -v -E '^(_init|_fini|_edata|_end|__bss_start)$' || true)
echo "exported by $so:"; echo "$syms"
[ "$syms" = "pallet_provider_entry" ] || { echo "FAIL: a provider must export only pallet_provider_entry"; exit 1; }
echo "ok: exactly one exported symbol"
