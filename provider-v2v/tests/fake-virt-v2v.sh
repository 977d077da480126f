#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A stand-in for virt-v2v in the fast end-to-end tests (the slow test runs
# the real one).  It parses the -os/-on that pallet passes, appends its
# argv to $FAKE_V2V_CALLS, and by $FAKE_V2V_MODE:
#   ok:    writes NAME.yaml (virt-v2v 2.2.0's real output, paths rewritten)
#          and a small NAME-sda, prints 2.2.0's message lines, exits 0
#   fail:  prints virt-v2v's error forms, exits 1
#   hang:  sleeps (for kill -9 and cancel tests), its pid in $FAKE_V2V_PID
set -u
here=$(cd "$(dirname "$0")" && pwd)
os=""; on=""; prev=""
for a in "$@"; do
  case "$prev" in -os) os=$a ;; -on) on=$a ;; esac
  prev=$a
done
printf '%s\n' "$*" >> "${FAKE_V2V_CALLS:-/dev/null}"
# The password file must exist while virt-v2v runs, mode 0600.
prev=""
for a in "$@"; do
  if [ "$prev" = -ip ]; then
    [ "$(stat -c %a "$a")" = 600 ] || { echo "virt-v2v: error: password file $a is not 0600" >&2; exit 1; }
  fi
  prev=$a
done
case "${FAKE_V2V_MODE:-ok}" in
  ok)
    echo '{ "message": "Opening the source", "timestamp": "2026-12-06T21:16:18+00:00", "type": "message" }'
    echo '{ "message": "Copying disk 1/1", "timestamp": "2026-12-06T21:19:18+00:00", "type": "message" }'
    truncate -s 64M "$os/$on-sda"
    sed -e "s|^  name: .*|  name: $on|" -e "s|path: .*|path: $os/$on-sda|" \
      "$here/../kubevirt/tests/fixtures/vpx-debian12.yaml" > "$os/$on.yaml"
    echo '{ "message": "Finishing off", "timestamp": "2026-12-06T21:19:30+00:00", "type": "message" }'
    exit 0 ;;
  fail)
    echo '{ "message": "Opening the source", "timestamp": "2026-12-06T21:16:18+00:00", "type": "message" }'
    echo '{ "message": "inspection could not detect the source guest (or physical machine)", "timestamp": "2026-12-06T21:16:19+00:00", "type": "error" }'
    echo "virt-v2v: error: inspection could not detect the source guest (or physical machine)" >&2
    exit 1 ;;
  hang)
    echo $$ > "${FAKE_V2V_PID:-/dev/null}"
    echo '{ "message": "Opening the source", "timestamp": "2026-12-06T21:16:18+00:00", "type": "message" }'
    truncate -s 1M "$os/$on-sda"       # a partial disk a rerun must remove
    exec sleep 600 ;;
esac
