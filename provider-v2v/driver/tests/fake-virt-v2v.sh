#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A stand-in for virt-v2v in the driver's unit tests (the real one is run
# by the e2e test): FAKE_MODE picks what it does.
#   ok:      prints virt-v2v 2.2.0's message forms and progress, exits 0
#   fail:    an error in both forms, exit 1
#   hang:    starts a child (its pid in FAKE_CHILD_PID), then sleeps
#   noisy:   a 20000-byte line without a newline, then exits 0
case "${FAKE_MODE:-ok}" in
  ok)
    echo '{ "message": "Opening the source", "timestamp": "2026-12-06T21:16:18+00:00", "type": "message" }'
    echo '[   1.1] Opening the source'
    echo '{ "message": "Copying disk 1/2", "timestamp": "2026-12-06T21:19:18+00:00", "type": "message" }'
    printf '0/100\r50/100\r100/100\n'
    echo '{ "message": "Copying disk 2/2", "timestamp": "2026-12-06T21:19:28+00:00", "type": "message" }'
    echo '{ "message": "a \"quoted\" warning", "timestamp": "2026-12-06T21:19:29+00:00", "type": "warning" }'
    echo 'virt-v2v: warning: a "quoted" warning' >&2
    echo '{ "message": "Finishing off", "timestamp": "2026-12-06T21:19:30+00:00", "type": "message" }'
    printf '%s\n' "$@" > "${FAKE_ARGV_OUT:-/dev/null}"
    exit 0 ;;
  fail)
    echo '{ "message": "Opening the source", "timestamp": "2026-12-06T21:16:18+00:00", "type": "message" }'
    echo '{ "message": "libvirt domain '"'"'nope'"'"' is not found", "timestamp": "2026-12-06T21:16:19+00:00", "type": "error" }'
    echo "virt-v2v: error: libvirt domain 'nope' is not found" >&2
    exit 1 ;;
  hang)
    sleep 300 &
    echo $! > "$FAKE_CHILD_PID"
    echo '[   0.0] Setting up the source'
    sleep 300
    exit 0 ;;
  noisy)
    head -c 20000 /dev/zero | tr '\0' x
    exit 0 ;;
esac
