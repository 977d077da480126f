#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/run.sh: pallet's benchmarks (`make bench`).  See bench/README.md.
#
#   bench/run.sh BUILD_DIR [--quick] [--slow] [--only 2,3]
#
# SLOW=1 in the environment (make bench SLOW=1) is --slow.  Prints a table
# and writes bench/results/<date>.json.  --quick runs every figure at a small
# size, once: a check that the harness works, not figures to quote.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "bench/run.sh: usage: bench/run.sh BUILD_DIR [--quick] [--slow] [--only N,..]" \
       "(BUILD_DIR: a configured and built build directory, e.g. build)" >&2
  exit 2
fi
build=$1; shift
args=()
if [ "${SLOW:-0}" != 0 ]; then args+=(--slow); fi
# Debian's python3 (botocore lives there), never the pyenv one on PATH.
exec /usr/bin/python3 "$here/bench.py" "$build" "${args[@]}" "$@"
