#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/inventory-rss.sh: peak RSS of `pallet inventory` at 1k, 10k and
# 100k items, from the test provider pallet-provider-stress (one thread,
# flat items), for each way the host applies a query:
#   stream    no query: items go from the provider's emit to the output
#   where     a where clause: matched and streamed, nothing kept
#   top10     order by ... limit 10: a bounded heap of 10
#   sorted    order by without limit: every item kept until the end
# Output is -o json to /dev/null (a streamed JSON array).
#
#   bench/inventory-rss.sh BUILD_DIR [SIZES...]     (default 1000 10000 100000)
#
# Peak RSS is GNU time's "Maximum resident set size" (package time): a
# small parent, because Linux counts the image a child had before exec.
set -euo pipefail
if [ $# -lt 1 ] || [ ! -x "$1/host-shim/pallet" ]; then
  echo "bench/inventory-rss.sh: usage: bench/inventory-rss.sh BUILD_DIR [SIZES...]" \
       "(BUILD_DIR: a built build directory, e.g. build)" >&2
  exit 2
fi
build=$(cd "$1" && pwd); shift
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000 100000)
pallet=$build/host-shim/pallet
export PALLET_PROVIDER_PATH=$build/providers
[ -e "$PALLET_PROVIDER_PATH/pallet-provider-stress.so" ] || {
  echo "bench/inventory-rss.sh: $PALLET_PROVIDER_PATH has no pallet-provider-stress.so:" \
       "build the tests (cmake --build $build)" >&2
  exit 2
}
[ -x /usr/bin/time ] || {
  echo "bench/inventory-rss.sh: needs GNU time (/usr/bin/time): apt-get install time" >&2
  exit 2
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

declare -A queries=(
  [stream]=""
  [where]="where n >= 0"
  [top10]="order by n desc limit 10"
  [sorted]="order by n desc"
)
printf '%-8s %10s %12s %10s\n' mode items peak_rss_kib seconds
for n in "${sizes[@]}"; do
  printf '{"settings": {"threads": 1, "items": %d}}\n' "$n" > "$tmp/cfg.json"
  for mode in stream where top10 sorted; do
    q=${queries[$mode]}
    args=(inventory things --provider stress --config "$tmp/cfg.json" -o json)
    [ -z "$q" ] || args+=(-q "$q")
    /usr/bin/time -f '%M %e' -o "$tmp/time" "$pallet" "${args[@]}" > /dev/null
    read -r rss secs < "$tmp/time"
    printf '%-8s %10d %12d %10s\n' "$mode" "$n" "$rss" "$secs"
  done
done
