#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Turns the vendored Forklift CRDs (forklift/*.yaml) and pallet's own
# ObjectMeta/Secret/ConfigMap/List schemas (core.json) into forklift-schema.json,
# the compact OpenAPI subset pallet_plan checks documents against.
# Run at vendoring time: /usr/bin/python3 gen-schema.py > forklift-schema.json
import json
import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CRDS = ["plans", "providers", "networkmaps", "storagemaps", "migrations", "hooks"]
KEEP = ("type", "properties", "items", "enum", "default", "required",
        "additionalProperties", "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-int-or-string", "format")


def strip(node):
    out = {}
    for key in KEEP:
        if key not in node:
            continue
        val = node[key]
        if key == "properties":
            val = {k: strip(v) for k, v in sorted(val.items())}
        elif key in ("items",) or (key == "additionalProperties" and isinstance(val, dict)):
            val = strip(val)
        out[key] = val
    return out


def main():
    core = json.load(open(os.path.join(HERE, "core.json")))
    kinds = {}
    for name in CRDS:
        crd = yaml.safe_load(open(os.path.join(HERE, "forklift", "forklift.konveyor.io_%s.yaml" % name)))
        kind = crd["spec"]["names"]["kind"]
        version = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"][0]
        schema = strip(version["schema"]["openAPIV3Schema"])
        # The CRDs say only "metadata: object"; the API server checks ObjectMeta.
        schema["properties"]["metadata"] = core["ObjectMeta"]
        if kind == "Provider":
            # Pallet's providers take structured settings (the null
            # provider's list of VMs): any value, where Forklift has strings.
            schema["properties"]["spec"]["properties"]["settings"] = {
                "type": "object", "x-kubernetes-preserve-unknown-fields": True}
        kinds[kind] = {"apiVersion": "forklift.konveyor.io/v1beta1", "schema": schema}
    for kind in ("Secret", "ConfigMap", "List"):
        schema = core[kind]
        schema["properties"]["metadata"] = core["ListMeta" if kind == "List" else "ObjectMeta"]
        kinds[kind] = {"apiVersion": "v1", "schema": schema}
    json.dump({"kinds": kinds}, sys.stdout, sort_keys=True, separators=(",", ":"))
    sys.stdout.write("\n")


main()
