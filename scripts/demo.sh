#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make demo: migrate a real (small) EC2-shaped guest from the bundled local
# EC2/EBS endpoint to raw disks + KubeVirt manifests.  See examples/demo/.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=${DEMO_OUT:-$PWD/demo-out}
PY=/usr/bin/python3
PALLET=$BUILD/host-shim/pallet
export PALLET_PROVIDER_PATH=$BUILD/providers
export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}
export LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}
for k in $(env | grep -o '^AWS_[A-Z_]*' || true); do unset "$k"; done

say() { printf '\n== %s\n' "$*"; }
[ -x "$PALLET" ] || { echo "demo: $PALLET is missing: run make first" >&2; exit 1; }

rm -rf "$OUT"; mkdir -p "$OUT/disks" "$OUT/images"
t0=$(date +%s)

say "1/5 guest image (cached after the first build)"
IMAGE=$("$TOP/tests/guest/build-guest.sh")
echo "guest image: $IMAGE ($(du -h --apparent-size "$IMAGE" | cut -f1) virtual, $(du -h "$IMAGE" | cut -f1) allocated)"
# The endpoint serves the volume's blocks from this file: give it its own
# copy (sparse), so the cache stays pristine.
cp --sparse=always "$IMAGE" "$OUT/images/root.raw"
# A small data volume with a little data in it.
truncate -s 1G "$OUT/images/data.raw"
printf 'pallet demo data volume\n' | dd of="$OUT/images/data.raw" bs=1M seek=3 conv=notrunc status=none
head -c 4M /dev/urandom | dd of="$OUT/images/data.raw" bs=1M seek=100 conv=notrunc status=none

say "2/5 local EC2/EBS/STS endpoint"
cat > "$OUT/seed.json" <<JSON
{"instances": [{"id": "i-0de300000000d3e00", "name": "demo-web", "type": "t3.medium",
  "az": "us-east-1a", "state": "running", "bootMode": "legacy-bios",
  "tags": {"app": "demo", "tier": "web"},
  "volumes": [{"device": "/dev/xvda", "type": "gp3", "sizeGiB": 2, "image": "$OUT/images/root.raw"},
              {"device": "/dev/sdf", "type": "gp3", "sizeGiB": 1, "image": "$OUT/images/data.raw"}]}]}
JSON
"$PY" "$TOP/tests/endpoint/pallet-endpoint.py" --port 0 --port-file "$OUT/port" \
  --seed "$OUT/seed.json" --call-log "$OUT/endpoint-calls.jsonl" \
  --stop-delay 1 --snapshot-delay 2 > "$OUT/endpoint.log" 2>&1 &
EP=$!
trap 'kill $EP 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$OUT/port" ] && break; sleep 0.1; done
PORT=$(cat "$OUT/port")
echo "endpoint on 127.0.0.1:$PORT (pid $EP)"

cat > "$OUT/config.json" <<JSON
{"provider": {"spec": {"type": "ec2", "url": "http://127.0.0.1:$PORT"}},
 "secret": {"region": "us-east-1", "accessKeyId": "AKIAPALLETSOURCE0001",
            "secretAccessKey": "pallet/source/secret/key/0000000000000001"}}
JSON
"$PALLET" inventory instances --provider ec2 --config "$OUT/config.json" \
  -q "where label.app = 'demo'"
SUBNET=$("$PALLET" inventory instances --provider ec2 --config "$OUT/config.json" -o json \
  | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["subnetId"])')

say "3/5 pallet migrate (copy mode, conversion with virt-v2v-in-place)"
SKIP=false; [ "${DEMO_SKIP_CONVERT:-0}" = 1 ] && SKIP=true
sed -e "s|@PORT@|$PORT|; s|@SUBNET@|$SUBNET|; s|@OUT@|$OUT|; s|@SKIP@|$SKIP|" \
  "$TOP/examples/demo/plan.yaml.in" > "$OUT/plan.yaml"
"$PALLET" validate "$OUT/plan.yaml"
"$PALLET" migrate "$OUT/plan.yaml" -v --state-dir "$OUT/state" --output-dir "$OUT/manifests"

say "4/5 manifests against the upstream KubeVirt and Kubernetes schemas"
"$PALLET" lint-manifests --strict "$OUT/manifests" | sed "s|$OUT/||"

say "5/5 summary"
"$PY" - "$OUT" "$t0" <<'PY'
import glob, json, os, sys, time
from datetime import datetime
out, t0 = sys.argv[1], int(sys.argv[2])
doc = json.load(open(glob.glob(os.path.join(out, "state", "vm-*.json"))[0]))
ts = doc["timestamps"]
def t(k):
    return datetime.fromisoformat(ts[k].replace("Z", "+00:00")).timestamp() if k in ts else None
print("VM %s: %s" % (doc["vm"].get("id"), doc["status"]))
print("%-16s %10s" % ("step", "seconds"))
for step in ("validate", "prepare_source", "transfer", "convert", "build_vm", "cleanup"):
    a, b = t(step + ".started"), t(step + ".finished")
    print("%-16s %10s" % (step, "%.1f" % (b - a) if a and b else "-"))
st = doc["state"]
disk = copied = 0
for v in st.get("volumes", []):
    size = v.get("sizeGiB", 0) << 30
    disk += size
    copied += v.get("copiedBytes", 0)
    print("volume %s (%s, %d GiB) -> %s: %d MiB copied"
          % (v.get("sourceVolumeId"), v.get("volumeType"), v.get("sizeGiB", 0),
             os.path.relpath(v.get("localPath", "-"), out) if v.get("localPath") else "-",
             v.get("copiedBytes", 0) >> 20))
if disk:
    print("bytes copied: %d MiB of %d MiB of disk (%.1f%%)" % (copied >> 20, disk >> 20, 100.0 * copied / disk))
print("conversion: %s" % st.get("conversion", "-"))
calls = [json.loads(l) for l in open(os.path.join(out, "endpoint-calls.jsonl"))]
mut = {}
for c in calls:
    if not c["action"].startswith(("Describe", "Get", "List")):
        mut[c["action"]] = mut.get(c["action"], 0) + 1
print("AWS calls: %d in all; changes: %s" % (len(calls), mut))
print("total: %ds; output in %s" % (time.time() - t0, out))
PY
