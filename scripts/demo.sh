#!/bin/sh
# Demo: a real end-to-end run of `pallet migrate` with the simulated
# provider-null on the Forklift plan in examples/demo-null/.
# Usage: scripts/demo.sh BUILD_DIR
set -eu
build=${1:?usage: scripts/demo.sh BUILD_DIR}
build=$(cd "$build" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
pallet=$build/host-shim/pallet
demo=$src/examples/demo-null
[ -x "$pallet" ] || { echo "demo: $pallet not built; run: make build" >&2; exit 1; }
export PALLET_PROVIDER_PATH=$build/providers
state=$build/demo-null-state
rm -rf "$state"

step() { printf '\n== %s\n$ pallet %s\n' "$1" "$(shift; echo "$@")"; }

step "the provider, as the host sees it" providers --dump null
"$pallet" providers --dump null

step "the source inventory, filtered" inventory instances -q "where cpus >= 2 order by memoryMiB desc" --provider null --config "$demo/config.json"
"$pallet" inventory instances -q "where cpus >= 2 order by memoryMiB desc" \
  --provider null --config "$demo/config.json"

step "validate the plan" validate "$demo/plan.yaml"
"$pallet" validate "$demo/plan.yaml"

step "migrate (3 VMs, 2 at a time; transfers report PENDING and are polled)" \
  migrate "$demo/plan.yaml" --max-in-flight 2 --state-dir "$state"
"$pallet" migrate "$demo/plan.yaml" --max-in-flight 2 --state-dir "$state"

step "status" status --state-dir "$state"
"$pallet" status --state-dir "$state"

step "a second run resumes and repeats nothing" migrate "$demo/plan.yaml" --state-dir "$state"
"$pallet" migrate "$demo/plan.yaml" --state-dir "$state"

printf '\ndemo: ok (state in %s)\n' "$state"
