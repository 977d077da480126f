#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# run-mock.sh [--wrap CMD] [--no-fixture] [--live] [--only CHECK] SUITE PROVIDER EXPECT [RULE]
# Runs pallet-conformance against PROVIDER with a fixture whose "cloud" is
# a temporary file.  EXPECT is "none" (every check must pass, exit 0) or
# the one check that must fail (exit 1, that check FAIL, every other check
# PASS, and a FAIL line of that check naming a rule that contains RULE).
# --live: the fixture says "live_backend": true.
set -u
wrap="" fixture=1 only="" live=false
while [ $# -gt 0 ]; do
  case "$1" in
    --wrap) wrap=$2; shift 2 ;;
    --no-fixture) fixture=0; shift ;;
    --live) live=true; shift ;;
    --only) only=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 3 ] || { echo "usage: $0 [--wrap CMD] [--no-fixture] [--live] [--only C] SUITE PROVIDER EXPECT [RULE]" >&2; exit 2; }
suite=$1 provider=$2 expect=$3 rule=${4:-}
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
cloud=$tmp/cloud.json
printf '{"resources":[]}\n' >"$cloud"
cat >"$tmp/fixture.json" <<JSON
{
  "config": { "provider": {},
              "secret": { "accessKeyId": "AKIAMOCKCONFORMANCE1",
                          "secretAccessKey": "mock-secret-5ee2c0a1d3" },
              "settings": { "cloud": "$cloud" } },
  "plan": {
    "name": "mock-plan", "namespace": "default",
    "uid": "11111111-2222-4333-8444-555555555555", "type": "cold",
    "targetNamespace": "default", "targetPowerState": null,
    "skipGuestConversion": true, "spec": {},
    "vms": [ { "id": "vm-conformance-1", "name": "conformance-1", "index": 0 },
             { "id": "vm-conformance-2", "name": "conformance-2", "index": 1 } ],
    "networkMap": [], "storageMap": [],
    "source": { "name": "mock", "type": "mock", "url": "", "settings": {}, "secretRef": {} },
    "destination": { "name": "host", "type": "openshift", "url": "", "settings": {}, "secretRef": {} }
  },
  "count_command": ["cat", "$cloud"],
  "inventory_kinds": ["instances"],
  "cancel_at": 0,
  "live_backend": $live
}
JSON
set -- "$provider"
[ "$fixture" = 1 ] && set -- "$@" --fixture "$tmp/fixture.json"
[ -n "$only" ] && set -- "$@" --only "$only"
# $wrap is a command line on purpose: split it into words.
# shellcheck disable=SC2086
$wrap "$suite" "$@" >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/out" "$tmp/err"
echo "---- run-mock: exit status $rc; expecting: $expect"

fail() { echo "run-mock: FAILED: $*"; exit 1; }
# One line per check: "PASS|FAIL|SKIP NAME: ..."; a FAIL's further
# failures follow on lines indented with "     also".
results=$(grep -c -E '^(PASS|FAIL|SKIP) [a-z0-9-]+: ' "$tmp/out")
failed=$(awk '$1 == "FAIL" { sub(":", "", $2); print $2 }' "$tmp/out")
skipped=$(awk '$1 == "SKIP" { sub(":", "", $2); print $2 }' "$tmp/out")
if [ -n "$only" ]; then want=$(echo "$only" | tr ',' '\n' | wc -l)
else want=$("$suite" --list | wc -l); fi
[ "$results" -eq "$want" ] || fail "$results check lines, expected $want"
# The suite's own output (stdout; a crashing provider's sanitizer report
# goes to stderr).
grep -q -E 'CUnit|\.c:[0-9]+' "$tmp/out" && fail "CUnit's banner or a source path was printed"
if [ "$expect" = none ]; then
  [ "$rc" -eq 0 ] || fail "exit status $rc, expected 0"
  [ -z "$failed" ] || fail "checks failed: $failed"
  # Without a fixture some checks have nothing to look at; with one, all do.
  [ "$fixture" = 0 ] || [ -z "$skipped" ] || fail "checks skipped: $skipped"
  # The suite cleaned up after itself.
  if [ "$fixture" = 1 ]; then
    grep -q '"resources": *\[\]' "$cloud" || fail "resources left behind: $(cat "$cloud")"
  fi
else
  [ "$rc" -eq 1 ] || fail "exit status $rc, expected 1"
  [ "$failed" = "$expect" ] || fail "failed checks: '$(echo $failed)', expected exactly '$expect'"
  # The others passed, or were blocked by this very root cause.
  for s in $skipped; do
    grep -q "^SKIP $s: blocked by the root cause reported under $expect " "$tmp/out" \
      || fail "check $s skipped for another reason"
  done
  awk -v c="$expect" '$1 == "FAIL" && $2 == c ":" { on = 1; print; next }
                      on && /^     also / { print; next } { on = 0 }' "$tmp/out" \
    | grep -F -q -- "rule \"" || fail "no FAIL line of $expect names a rule"
  awk -v c="$expect" '$1 == "FAIL" && $2 == c ":" { on = 1; print; next }
                      on && /^     also / { print; next } { on = 0 }' "$tmp/out" \
    | grep -F -q -- "$rule" || fail "no FAIL line of $expect names the rule '$rule'"
fi
echo "run-mock: ok"
