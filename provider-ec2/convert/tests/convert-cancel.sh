#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Cancel during a REAL virt-v2v-in-place run: convert a copy of the cached
# guest through pallet-convert-tool, cancel it (SIGTERM to the tool, which
# cancels the run) once virt-v2v has printed its first progress line and
# the libguestfs appliance runs in its process group, then check that
#   - the whole process group of virt-v2v (nbdkit, the appliance's qemu...)
#     is gone within 5 s of the cancel (no process of that pgid remains),
#   - the tool reports "cancelled" (exit 10) naming the disk,
#   - the disk's SHA-256 is unchanged.
#   convert-cancel.sh TOOL GUESTDIR
set -euo pipefail
tool=$1
guestdir=$2
for t in virt-v2v-in-place qemu-img sha256sum ps /usr/bin/python3; do
  command -v "$t" >/dev/null || { echo "FAIL: $t missing; run scripts/install-deps.sh" >&2; exit 1; }
done
export LIBGUESTFS_BACKEND=direct
export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
work=$(mktemp -d /var/tmp/pallet-convert-cancel.XXXXXX)
tpid=""
cleanup () {
  [ -n "$tpid" ] && kill -KILL "$tpid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
now () { date +%s.%N; }
secs () { /usr/bin/python3 -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$2"; }
# Processes (not zombies) whose process group is $1.
group_members () { ps -eo pid=,pgid=,stat=,comm= | awk -v g="$1" '$2 == g && $3 !~ /^Z/'; }

t=$(now)
img=$("$guestdir/build-guest.sh")
echo "stage guest: $(secs "$t" "$(now)") s ($img)"

cp --sparse=always "$img" "$work/disk.img"
mkdir "$work/overlays"
before=$(sha256sum <"$work/disk.img" | cut -d' ' -f1)

t=$(now)
"$tool" convert --tcg --timeout 1000 --work-dir "$work/overlays" --log "$work/v2v.log" "$work/disk.img" \
  >"$work/result.json" 2>"$work/tool.err" &
tpid=$!

# Wait for virt-v2v's first "[   0.0] Setting up the source" line.
for _ in $(seq 1 3000); do
  grep -q '^pallet-convert-tool: step 1 at' "$work/tool.err" && break
  kill -0 "$tpid" 2>/dev/null || { cat "$work/tool.err" >&2; echo "FAIL: the tool exited before any progress" >&2; exit 1; }
  sleep 0.1
done
grep -q '^pallet-convert-tool: step 1 at' "$work/tool.err" ||
  { cat "$work/tool.err" >&2; echo "FAIL: no progress line within 300 s" >&2; exit 1; }
echo "stage first-progress: $(secs "$t" "$(now)") s"

# The tool's child is virt-v2v-in-place, leader of its own process group.
child=$(ps -o pid= --ppid "$tpid" | awk 'NR == 1 { print $1 }')
[ -n "$child" ] || { echo "FAIL: no child process of the tool" >&2; exit 1; }
pgid=$(ps -o pgid= -p "$child" | tr -d ' ')
[ "$pgid" = "$child" ] || { echo "FAIL: the child $child is not a process-group leader (pgid $pgid)" >&2; exit 1; }
# Let the libguestfs appliance (qemu-system) start in the group, so the
# cancel has nbdkit/qemu-nbd and a whole VM to take down, not just virt-v2v.
for _ in $(seq 1 3000); do
  group_members "$pgid" | grep -q 'qemu-system' && break
  kill -0 "$tpid" 2>/dev/null || break
  sleep 0.1
done
echo "stage appliance-up: $(secs "$t" "$(now)") s; last step: $(grep '^pallet-convert-tool: step' "$work/tool.err" | tail -n1)"
echo "process group $pgid before the cancel:"
group_members "$pgid" | sed 's/^/  /'
group_members "$pgid" | grep -q 'qemu-system' ||
  { echo "FAIL: the appliance's qemu never ran in group $pgid" >&2; exit 1; }

tc=$(now)
kill -TERM "$tpid"
gone=""
for _ in $(seq 1 50); do
  if [ -z "$(group_members "$pgid")" ]; then gone=$(now); break; fi
  sleep 0.1
done
if [ -z "$gone" ]; then
  echo "FAIL: process group $pgid still has processes 5 s after the cancel:" >&2
  group_members "$pgid" >&2
  exit 1
fi
echo "stage cancel: $(secs "$tc" "$gone") s (process group $pgid gone)"

rc=0
wait "$tpid" || rc=$?
tpid=""
cat "$work/tool.err"
[ "$rc" -eq 10 ] || { echo "FAIL: the tool exited $rc, want 10 (cancelled)" >&2; exit 1; }
grep -q 'error (cancelled)' "$work/tool.err" && grep -qF "$work/disk.img" "$work/tool.err" ||
  { echo "FAIL: no 'cancelled' error naming the disk" >&2; exit 1; }
after=$(sha256sum <"$work/disk.img" | cut -d' ' -f1)
[ "$before" = "$after" ] || { echo "FAIL: the disk changed: sha256 $before -> $after" >&2; exit 1; }
[ -z "$(find "$work/overlays" -mindepth 1 -print -quit)" ] ||
  { echo "FAIL: files left in the overlay dir:" >&2; ls -lR "$work/overlays" >&2; exit 1; }
echo "disk sha256 unchanged: $after"
echo PASS
