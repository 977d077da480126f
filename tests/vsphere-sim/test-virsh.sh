#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test-virsh.sh SIM BUILD_GUEST: libvirt's ESX driver (virsh) reads the
# simulated vCenter and ESXi, with the test guest staged: list --all,
# dumpxml (name, UUID, moref, disk, MAC), and a wrong password refused.
set -euo pipefail
sim=$1
img=$("$2")
work=$(mktemp -d "${TMPDIR:-/tmp}/vsphere-sim-test.XXXXXX")
pids=()
cleanup () {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail () { echo "FAIL: $*" >&2; exit 1; }

start () { # model -> sets info
  local model=$1
  mkfifo "$work/in-$model"
  "$sim" -model "$model" -guest-disk "$img" -lifetime 240 -uuid 42233d5e-7a1c-4b59-9a7e-0d1e2f3a4b5c \
    <"$work/in-$model" >"$work/info-$model" 2>"$work/err-$model" &
  pids+=($!)
  exec {fd}>"$work/in-$model"   # held open: closing it stops the simulator
  for _ in $(seq 100); do [ -s "$work/info-$model" ] && break; sleep 0.1; done
  [ -s "$work/info-$model" ] || { cat "$work/err-$model" >&2; fail "$model simulator did not start"; }
}
field () { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

printf '[credentials-sim]\nusername=root\npassword=pallet-sim-pw\n[auth-esx-127.0.0.1]\ncredentials=sim\n' >"$work/auth"
printf '[credentials-sim]\nusername=root\npassword=wrong\n[auth-esx-127.0.0.1]\ncredentials=sim\n' >"$work/badauth"
v () { LIBVIRT_AUTH_FILE="$work/${AUTH:-auth}" LIBVIRT_LOG_FILTERS=1:nothing timeout 30 virsh -q -c "$@" 2>"$work/virsh.err"; }

for model in vpx esx; do
  start $model
  info="$work/info-$model"
  port=$(field "$info" port); vm=$(field "$info" vm); moref=$(field "$info" vmMoref)
  if [ $model = vpx ]; then uri="vpx://root@127.0.0.1:$port/$(field "$info" hostPath)?no_verify=1"
  else uri="esx://root@127.0.0.1:$port/?no_verify=1"; fi
  list=$(v "$uri" list --all) || { cat "$work/virsh.err" >&2; fail "$model: virsh list"; }
  echo "$model list: $list"
  grep -Eq "^ *- +$vm +shut off\$" <<<"$list" || fail "$model: $vm is not listed shut off"
  xml=$(v "$uri" dumpxml "$vm") || { cat "$work/virsh.err" >&2; fail "$model: virsh dumpxml"; }
  grep -q "<name>$vm</name>" <<<"$xml" || fail "$model: name"
  grep -q "<uuid>42233d5e-7a1c-4b59-9a7e-0d1e2f3a4b5c</uuid>" <<<"$xml" || fail "$model: staged uuid.bios"
  grep -q "<vmware:moref>$moref</vmware:moref>" <<<"$xml" || fail "$model: moref $moref"
  grep -q "source file='\[LocalDS_0\] $vm/disk1.vmdk'" <<<"$xml" || fail "$model: disk"
  grep -q "mac address='00:50:56:aa:bb:01'" <<<"$xml" || fail "$model: MAC"
  grep -q "<memory unit='KiB'>1048576</memory>" <<<"$xml" || fail "$model: memory"
  # The datastore file service serves the staged disk (what nbdkit-curl reads).
  dc=$(field "$info" datacenter)
  got=$(curl -sk -r 510-511 "https://127.0.0.1:$port/folder/$vm/disk1-flat.vmdk?dcPath=$dc&dsName=LocalDS_0" | od -An -tx1 | tr -d ' ')
  [ "$got" = 55aa ] || fail "$model: /folder did not serve the boot sector (got '$got')"
  if AUTH=badauth v "$uri" list --all >/dev/null; then fail "$model: a wrong password was accepted"; fi
  grep -q "Login failure" "$work/virsh.err" || { cat "$work/virsh.err" >&2; fail "$model: wrong password: no Login failure"; }
  echo "$model: ok"
done
echo "PASS"
