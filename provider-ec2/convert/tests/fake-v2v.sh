#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A stand-in for virt-v2v-in-place for the unit tests: replays captured
# output and writes into the overlay it is given, as the real tool would.
# FAKE_V2V_MODE: ok | noos | hang | xml;  FAKE_V2V_FIXTURES: fixtures dir;
# FAKE_V2V_PIDFILE: where "hang" writes its background child's pid;
# FAKE_V2V_XML_COPY: where "xml" copies the domain XML it was given.
set -eu
for last in "$@"; do :; done
f=$FAKE_V2V_FIXTURES
scribble () {   # what a conversion does: write into the disk it was given
  qemu-io -f qcow2 -c 'write -P 0xab 0 4096' "$1" >/dev/null
}
case "$FAKE_V2V_MODE" in
  ok)
    # The real log, with \r\n endings and a final line without a newline.
    sed 's/$/\r/' "$f/inplace-debian12-ok.stdout"
    printf 'virt-v2v-in-place: warning: a last warning without newline'
    scribble "$last"
    exit 0 ;;
  noos)
    scribble "$last"
    cat "$f/inplace-blank-noos.stdout"
    cat "$f/inplace-blank-noos.stderr" >&2
    exit 1 ;;
  hang)
    sleep 300 &
    echo $! >"$FAKE_V2V_PIDFILE"
    echo '[   0.0] Setting up the source: -i disk x'
    echo '[   1.1] Opening the source'
    wait ;;
  xml)
    cp "$last" "$FAKE_V2V_XML_COPY"
    for ov in $(sed -n "s/.*<source file=\"\([^\"]*\)\".*/\1/p" "$last"); do
      scribble "$ov"
    done
    echo '[   0.0] Setting up the source: -i libvirtxml'
    exit 0 ;;
  *) echo "fake-v2v: unknown FAKE_V2V_MODE '$FAKE_V2V_MODE'" >&2; exit 3 ;;
esac
