#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A stand-in for virt-v2v-in-place in the fast conversion-only tests (the
# slow test runs the real one).  It appends its argv to $FAKE_V2V_CALLS,
# checks that every disk source of the libvirt XML it is given exists,
# and by $FAKE_V2V_MODE: ok (exit 0) or fail (virt-v2v's error form, 1).
set -u
printf '%s\n' "$*" >> "${FAKE_V2V_CALLS:-/dev/null}"
xml="${!#}"
[ -r "$xml" ] || { echo "virt-v2v-in-place: error: cannot read $xml" >&2; exit 1; }
for p in $(sed -n 's/.*<source \(file\|dev\)="\([^"]*\)".*/\2/p' "$xml"); do
  [ -e "$p" ] || { echo "virt-v2v-in-place: error: disk $p does not exist" >&2; exit 1; }
done
case "${FAKE_V2V_MODE:-ok}" in
  ok)
    echo '{ "message": "Setting up the source: -i libvirtxml", "timestamp": "2026-12-07T12:00:00+00:00", "type": "message" }'
    echo '{ "message": "Converting Debian GNU/Linux 12 (bookworm) to run on KVM", "timestamp": "2026-12-07T12:00:01+00:00", "type": "message" }'
    echo '{ "message": "Finishing off", "timestamp": "2026-12-07T12:00:02+00:00", "type": "message" }'
    exit 0 ;;
  *)
    echo '{ "message": "libguestfs error: inspection could not detect the source guest", "timestamp": "2026-12-07T12:00:01+00:00", "type": "error" }'
    exit 1 ;;
esac
