#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""A provider the ABI must keep working (built from the frozen 1.0 header,
or written in C++) through the real pallet CLI and libpallet-host: --dump,
inventory, validate, and the ABI 1.1 settings check (a described provider's
unknown setting is refused with a suggestion; an undescribed one's is not
checked).

usage: test-real-host.py PALLET NAME PROVIDER_SO"""
import json
import os
import subprocess
import sys
import tempfile

PALLET, NAME, SO = sys.argv[1:4]
failures = []


def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failures.append(what)


def run(*args):
    p = subprocess.run([PALLET] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    print("$ pallet", " ".join(args), "->", p.returncode)
    sys.stdout.write(p.stdout)
    sys.stderr.write(p.stderr)
    return p


tmp = tempfile.mkdtemp(prefix="pallet-abi-")


def write(name, obj):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        json.dump(obj, f)
    return path


p = run("providers", "--dump", SO)
kv = dict(l.split("=", 1) for l in p.stdout.splitlines() if "=" in l)
check(p.returncode == 0, "--dump exits 0")
want = {"abi10": ("0", "128", "undescribed"), "cxx": ("1", "152", "described")}[NAME]
check((kv.get("abi_minor"), kv.get("struct_size"), kv.get("settings")) == want,
      "--dump: abi_minor, struct_size, settings = %r, want %r"
      % ((kv.get("abi_minor"), kv.get("struct_size"), kv.get("settings")), want))
check(kv.get("has_load") == "0" and kv.get("has_unload") == "0",
      "--dump: no load/unload hooks")

good = write("good.json", {"provider": {"metadata": {"name": "src"}},
                           "secret": {}, "settings": {}})
# With a query: without one the CLI sends "query": null (a separate bug).
p = run("inventory", "instances", "--provider", SO, "--config", good,
        "-q", "order by name", "-o", "json")
check(p.returncode == 0 and '"vm-1"' in p.stdout, "inventory lists vm-1")

plan = write("plan.json", {
    "name": "p", "namespace": "ns", "uid": "uid-p", "type": "cold",
    "targetNamespace": "ns", "targetPowerState": None,
    "skipGuestConversion": False, "spec": {},
    "vms": [{"id": "vm-1", "name": "v1", "index": 0}],
    "networkMap": [], "storageMap": [],
    "source": {"name": "src", "type": NAME, "url": "", "settings": {}},
    "destination": {"name": "host", "type": "openshift", "url": "",
                    "settings": {}}})
p = run("validate", "--normalized", plan, "--provider", SO, "--config", good)
check(p.returncode == 0, "validate of a one-VM plan exits 0")

typo = write("typo.json", {"provider": {"metadata": {"name": "src"},
                                        "spec": {"settings": {}}},
                           "secret": {}, "settings": {"regoin": "x"}})
p = run("inventory", "instances", "--provider", SO, "--config", typo,
        "-q", "order by name")
if NAME == "cxx":
    check(p.returncode != 0, "an unknown setting fails the session")
    check("unknown setting 'regoin' for provider cxx; did you mean 'region'?"
          in p.stderr, "the error names the setting and suggests 'region'")
    wrong = write("wrong.json", {"settings": {"region": 5}})
    p = run("inventory", "instances", "--provider", SO, "--config", wrong,
            "-q", "order by name")
    check(p.returncode != 0 and "setting 'region' for provider cxx" in p.stderr
          and "must be a string" in p.stderr, "a wrong type is refused")
    # The same typo in a Forklift Provider's spec.settings, read by pallet
    # from the YAML a user would kubectl apply.
    yaml = os.path.join(tmp, "plan.yaml")
    with open(yaml, "w") as f:
        f.write("""apiVersion: forklift.konveyor.io/v1beta1
kind: Provider
metadata: {name: src, namespace: ns}
spec:
  type: cxx
  url: ""
  settings: {regoin: eu-1}
---
apiVersion: forklift.konveyor.io/v1beta1
kind: NetworkMap
metadata: {name: net, namespace: ns}
spec:
  provider: {source: {name: src, namespace: ns}}
  map: []
---
apiVersion: forklift.konveyor.io/v1beta1
kind: StorageMap
metadata: {name: sto, namespace: ns}
spec:
  provider: {source: {name: src, namespace: ns}}
  map: []
---
apiVersion: forklift.konveyor.io/v1beta1
kind: Plan
metadata: {name: p, namespace: ns, uid: 00000000-0000-4000-8000-0000000000aa}
spec:
  provider: {source: {name: src, namespace: ns}, destination: {name: host, namespace: ns}}
  targetNamespace: ns
  map: {network: {name: net, namespace: ns}, storage: {name: sto, namespace: ns}}
  vms: [{id: vm-1, name: v1}]
""")
    p = run("validate", yaml, "--provider", SO)
    check(p.returncode == 5 and "unknown setting 'regoin' for provider cxx; "
          "did you mean 'region'? (in the Provider's spec.settings" in p.stderr,
          "a typo in the Provider's spec.settings is named, exit 5")
else:
    check(p.returncode == 0, "an ABI 1.0 provider's settings are not checked")

sys.exit(1 if failures else 0)
