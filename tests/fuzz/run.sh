#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer targets with clang straight from the sources and runs
# each one: first every regression input (must not crash), then a fuzzing
# run of SECONDS seconds from the seed corpus.
#   tests/fuzz/run.sh [-o OUTDIR] [-t SECONDS] [-j JOBS] [TARGET...]
# A crash leaves the input in OUTDIR/crashes/TARGET/; copy it into
# regressions/TARGET/ once fixed so the smoke run replays it forever.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${PALLET_FUZZ_OUT:-$root/build-fuzz}
secs=20
while getopts "o:t:" opt; do
  case $opt in
    o) out=$OPTARG ;;
    t) secs=$OPTARG ;;
    *) echo "usage: $0 [-o OUTDIR] [-t SECONDS] [TARGET...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
all=(aws-xml ebs-json plan query sigv4)
targets=("${@:-${all[@]}}")

cc=${CLANG:-clang}
if ! command -v "$cc" >/dev/null; then
  echo "run.sh: $cc not found; install clang and libclang-rt-14-dev (scripts/install-deps.sh)" >&2
  exit 1
fi
mkdir -p "$out"
cflags=(-std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -fno-omit-frame-pointer
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
pc() { pkg-config "$@"; }
aws=$root/provider-ec2/aws
plan=$root/host-shim/plan
query=$root/host-shim/query

build() {
  local t=$1 srcs=() inc=() libs=()
  case $t in
    aws-xml)  srcs=("$aws/xml.c" "$aws/util.c"); inc=(-I"$aws" -I"$root/abi")
              libs=($(pc --cflags --libs libxml-2.0 jansson libcrypto libcurl)) ;;
    ebs-json) srcs=("$aws/ebs.c" "$aws/query.c" "$aws/xml.c" "$aws/util.c"); inc=(-I"$aws" -I"$root/abi")
              libs=($(pc --cflags --libs libxml-2.0 jansson libcrypto libcurl)) ;;
    plan)     # plan.c checks every document against the embedded Forklift schema.
              cmake -DIN="$plan/schema/forklift-schema.json" -DOUT="$out/schema-text.c" \
                    -P "$plan/embed-schema.cmake" >/dev/null
              srcs=("$plan/read.c" "$plan/plan.c" "$plan/schema.c" "$plan/fields.c" "$out/schema-text.c")
              inc=(-I"$plan")
              libs=($(pc --cflags --libs jansson yaml-0.1 libcrypto)) ;;
    query)    srcs=("$query/query.c" "$query/eval.c" "$query/fields.c"); inc=(-I"$query")
              libs=($(pc --cflags --libs jansson) -lm) ;;
    sigv4)    srcs=("$aws/sigv4.c" "$aws/util.c"); inc=(-I"$aws" -I"$root/abi")
              libs=($(pc --cflags --libs libxml-2.0 jansson libcrypto libcurl)) ;;
    *) echo "run.sh: unknown target $t (known: ${all[*]})" >&2; return 1 ;;
  esac
  "$cc" "${cflags[@]}" "${inc[@]}" -o "$out/fuzz-$t" "$here/fuzz-$t.c" "${srcs[@]}" "${libs[@]}"
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fail=0
for t in "${targets[@]}"; do
  echo "== fuzz-$t: build"
  build "$t"
  # Regression inputs first: each one once.
  if compgen -G "$here/regressions/$t/*" >/dev/null; then
    echo "== fuzz-$t: replay $(ls "$here/regressions/$t" | wc -l) regression input(s)"
    "$out/fuzz-$t" -runs=0 "$here"/regressions/"$t"/* || { echo "FAIL: fuzz-$t regression" >&2; fail=1; continue; }
  fi
  echo "== fuzz-$t: fuzz ${secs}s"
  work=$out/corpus/$t crashes=$out/crashes/$t
  mkdir -p "$work" "$crashes"
  if ! "$out/fuzz-$t" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="$crashes/" -print_final_stats=1 \
       "$work" "$here/corpus/$t" 2>"$out/fuzz-$t.log"; then
    tail -60 "$out/fuzz-$t.log" >&2
    echo "FAIL: fuzz-$t found a crash: $(ls "$crashes")" >&2
    fail=1
  else
    grep -E "^stat::number_of_executed_units|^Done" "$out/fuzz-$t.log" || true
  fi
done
exit $fail
