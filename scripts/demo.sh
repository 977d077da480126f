#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make demo: migrate a real (small) EC2-shaped guest from the bundled local
# EC2/EBS endpoint to the bundled local Kubernetes API with `pallet migrate
# --apply`: the copy and conversion Pods run there (in the project's own
# image root filesystems), then the VM, booted from its PVCs.  See
# examples/demo/.
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

say "1/6 guest image (cached after the first build)"
IMAGE=$("$TOP/tests/guest/build-guest.sh")
echo "guest image: $IMAGE ($(du -h --apparent-size "$IMAGE" | cut -f1) virtual, $(du -h "$IMAGE" | cut -f1) allocated)"
# The endpoint serves the volume's blocks from this file: give it its own
# copy (sparse), so the cache stays pristine.
cp --sparse=always "$IMAGE" "$OUT/images/root.raw"
# A small data volume with a little data in it.
truncate -s 1G "$OUT/images/data.raw"
printf 'pallet demo data volume\n' | dd of="$OUT/images/data.raw" bs=1M seek=3 conv=notrunc status=none
head -c 4M /dev/urandom | dd of="$OUT/images/data.raw" bs=1M seek=100 conv=notrunc status=none

say "2/6 local EC2/EBS/STS endpoint"
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
KUBE=""
trap 'kill $EP $KUBE 2>/dev/null || true' EXIT
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

say "3/6 images of the copy and conversion Pods, and a local Kubernetes API"
# The Pods' images, built from packaging/images with this build's binaries
# (debootstrap, cached; podman cannot start containers on every machine,
# so the endpoint runs each container as a sandboxed process in them).
COPY_ROOT=$("$TOP/packaging/images/build-rootfs.sh" pallet-ebs-copy --build-dir "$BUILD")
CONVERT_ROOT=$("$TOP/packaging/images/build-rootfs.sh" pallet-convert --build-dir "$BUILD")
"$PY" "$TOP/tests/kube-endpoint/pallet-kube-endpoint.py" --port 0 --state-dir "$OUT/cluster" \
  --image "localhost/pallet-ebs-copy=$COPY_ROOT" --image "localhost/pallet-convert=$CONVERT_ROOT" \
  --node-label topology.kubernetes.io/zone=us-east-1b --node-label kubevirt.io/schedulable=true \
  --csi-ebs "http://127.0.0.1:$PORT" --call-log "$OUT/cluster-calls.jsonl" \
  > "$OUT/cluster.out" 2> "$OUT/cluster.log" &
KUBE=$!
for _ in $(seq 300); do grep -q '^KUBECONFIG=' "$OUT/cluster.out" 2>/dev/null && break; sleep 0.1; done
export KUBECONFIG=$(sed -n 's/^KUBECONFIG=//p' "$OUT/cluster.out")
[ -n "$KUBECONFIG" ] || { cat "$OUT/cluster.log" >&2; echo "demo: the Kubernetes API did not start" >&2; exit 1; }
echo "Kubernetes API on $(sed -n 's/^URL=//p' "$OUT/cluster.out") (pid $KUBE), KUBECONFIG=$KUBECONFIG"
kubectl apply -f "$TOP/examples/demo/cluster.yaml"

say "4/6 pallet migrate --apply (copy Pod, conversion Pod, the VM started and booted)"
SKIP=false; [ "${DEMO_SKIP_CONVERT:-0}" = 1 ] && SKIP=true
sed -e "s|@PORT@|$PORT|; s|@SUBNET@|$SUBNET|; s|@OUT@|$OUT|; s|@SKIP@|$SKIP|" \
  "$TOP/examples/demo/plan.yaml.in" > "$OUT/plan.yaml"
"$PALLET" validate "$OUT/plan.yaml" --kubeconfig "$KUBECONFIG"
"$PALLET" migrate "$OUT/plan.yaml" -v --apply --kubeconfig "$KUBECONFIG" \
  --state-dir "$OUT/state" --output-dir "$OUT/manifests"
kubectl get -n demo-vms vm,vmi,pods,pvc
LAUNCHER=$(kubectl get pods -n demo-vms -l kubevirt.io=virt-launcher,vm.kubevirt.io/name=demo-web \
  -o jsonpath='{.items[0].metadata.name}')
# The guest's serial console, as `kubectl logs` shows it on KubeVirt >= 1.1.
booted=0
for _ in $(seq 600); do
  if kubectl logs -n demo-vms "$LAUNCHER" -c guest-console-log 2>/dev/null |
       grep -aE 'PALLET-BOOT-OK|login:' | tail -n 2 | grep .; then booted=1; break; fi
  sleep 1
done
[ "$booted" = 1 ] || { echo "demo: the VM did not reach its login prompt in 600 s" >&2; exit 1; }

say "5/6 manifests against the upstream KubeVirt and Kubernetes schemas"
"$PALLET" lint-manifests --strict "$OUT/manifests" | sed "s|$OUT/||"

say "6/6 summary"
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
for step in ("validate", "prepare_source", "transfer", "convert", "build_vm", "apply", "cleanup"):
    a, b = t(step + ".started"), t(step + ".finished")
    print("%-16s %10s" % (step, "%.1f" % (b - a) if a and b else "-"))
st = doc["state"]
cl = doc.get("cluster") or st.get("cluster") or {}
for o in cl.get("objects", []):
    print("applied: %-10s %s %s/%s" % (o.get("stage"), o.get("kind"), o.get("namespace"), o.get("name")))
boot = cl.get("boot")
if boot:
    print("boot: %s (%s) after %ss: %s" % (boot.get("result"), boot.get("evidence"),
                                            boot.get("waitedSeconds"), boot.get("line")))
print("conversion: %s" % st.get("conversion", "-"))
calls = [json.loads(l) for l in open(os.path.join(out, "endpoint-calls.jsonl"))]
kcalls = [json.loads(l) for l in open(os.path.join(out, "cluster-calls.jsonl"))]
mut = {}
for c in calls:
    if not c["action"].startswith(("Describe", "Get", "List")):
        mut[c["action"]] = mut.get(c["action"], 0) + 1
print("AWS calls: %d in all; changes: %s" % (len(calls), mut))
kmut = {}
for c in kcalls:
    if c["method"] != "GET":
        kmut[c["method"]] = kmut.get(c["method"], 0) + 1
print("Kubernetes API calls: %d in all; changes: %s" % (len(kcalls), kmut))
print("total: %ds; output in %s" % (time.time() - t0, out))
PY
