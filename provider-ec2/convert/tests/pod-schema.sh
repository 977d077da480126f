#!/bin/bash -
# SPDX-License-Identifier: Apache-2.0
# The conversion Pod manifests pallet-convert-tool prints pass the shared
# schema validator (--strict), and the validator rejects a broken one.
#   pod-schema.sh TOOL VALIDATE_PY
set -euo pipefail
tool=$1 validate=$2
py=/usr/bin/python3
tmp=$(mktemp -d /tmp/pallet-pod-schema.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

"$tool" pod "$tmp/tcg.json" --name pallet-convert-i-0abc --namespace target-ns \
  --zone us-east-1a --vm-id i-0123456789abcdef0 \
  --plan-uid 9d3c6b3e-1111-2222-3333-444455556666 \
  --migration-uid 0f0e0d0c-aaaa-bbbb-cccc-ddddeeeeffff --tcg \
  vm-boot vm-data-1 vm-data-2
"$tool" pod "$tmp/kvm.json" --name conv --namespace ns \
  --image registry.local/pallet/v2v:1.0 --cpu 500m --memory 3Gi vm-boot

for f in "$tmp/tcg.json" "$tmp/kvm.json"; do
  "$py" "$validate" --strict "$f"
done

# The check can fail: an unknown field in the container must be refused.
"$py" - "$tmp/tcg.json" "$tmp/broken.json" <<'PY'
import json, sys
pod = json.load(open(sys.argv[1]))
pod["spec"]["containers"][0]["volumeDevice"] = pod["spec"]["containers"][0].pop("volumeDevices")
json.dump(pod, open(sys.argv[2], "w"))
PY
if "$py" "$validate" --strict "$tmp/broken.json" >/dev/null 2>&1; then
  echo "pod-schema.sh: the validator accepted a broken Pod" >&2
  exit 1
fi

# Bad input: a clear error and a non-zero exit.
if "$tool" pod - --name Bad_Name --namespace ns c0 2>"$tmp/err"; then
  echo "pod-schema.sh: a bad name was accepted" >&2
  exit 1
fi
grep -q 'Bad_Name' "$tmp/err"
echo "pod-schema.sh: ok"
