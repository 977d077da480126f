#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The Quick start plan in docs/ec2-user-guide.md is a plan `pallet` reads.

usage: check-plan-example.py PALLET EC2_USER_GUIDE.md PROVIDER.so WORKDIR

Extracts the first ```yaml block under '## Quick start' and runs
`pallet validate FILE --provider PROVIDER.so -o json`: the files must parse,
the references (providers, secret, maps) resolve, and every VM of the plan
reach the provider's validate.
"""
import json
import os
import re
import subprocess
import sys


def main():
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    pallet, guide, provider, work = [os.path.abspath(a) for a in sys.argv[1:]]
    with open(guide, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^## Quick start\s*$(.*?)^## ", text, re.M | re.S)
    b = m and re.search(r"^```yaml\s*\n(.*?)^```", m.group(1), re.M | re.S)
    if not b:
        raise SystemExit("FAIL: no ```yaml block under '## Quick start'")
    os.makedirs(work, exist_ok=True)
    plan = os.path.join(work, "plan.yaml")
    with open(plan, "w", encoding="utf-8") as f:
        f.write(b.group(1))
    vms = re.findall(r"^\s*- id: (\S+)", b.group(1), re.M)
    argv = [pallet, "validate", plan, "--provider", provider, "-o", "json"]
    print("+ " + " ".join(argv))
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=120, cwd=work)
    sys.stdout.write(r.stdout + r.stderr)
    if r.returncode != 0:
        raise SystemExit("FAIL: pallet validate exited %d on the guide's plan"
                         % r.returncode)
    seen = [json.loads(line)["vm"] for line in r.stdout.splitlines() if line.strip()]
    if not vms or seen != vms:
        raise SystemExit("FAIL: the plan lists VMs %s; validate saw %s" % (vms, seen))
    print("ok: the Quick start plan parses and its %d VM(s) validate" % len(vms))


if __name__ == "__main__":
    main()
