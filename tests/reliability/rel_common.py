# SPDX-License-Identifier: Apache-2.0
"""Shared bits of the reliability tests: seeds, the endpoint control API and
a few checks.  Builds on tests/e2e/ec2_harness.py (imported, not edited)."""

import json
import os
import random
import re
import subprocess
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from ec2_harness import EC2E2E, PLAN_UID, SOURCE, TARGET, VALIDATE, plan_yaml  # noqa: E402,F401

TYPES = [("gp3", {"iops": 3000, "throughput": 125}), ("gp2", {}), ("io2", {"iops": 4000}),
         ("standard", {})]


def fleet(n, rng_seed=10, prefix="i-0f1ee7", name=lambda i: "vm-%02d" % i):
    """n instances, each with 1-3 volumes of assorted types; deterministic."""
    rng = random.Random(rng_seed)
    out = []
    devs = ["/dev/xvda", "/dev/sdf", "/dev/sdg"]
    for i in range(n):
        vols = []
        for d in range(rng.randint(1, 3)):
            t, extra = TYPES[rng.randrange(len(TYPES))]
            vols.append(dict({"device": devs[d], "sizeGiB": rng.randint(4, 20), "type": t},
                             **extra))
        # EC2 ids: i- and 17 hex digits.
        iid = prefix + "%0*x" % (19 - len(prefix), i)
        out.append({"id": iid, "name": name(i), "type": "m5.large",
                    "az": "us-east-1a", "state": "running", "tags": {"n": str(i)},
                    "volumes": vols})
    return out


def control(ep, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(ep.url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"{}")


def validate(path):
    return subprocess.run(["/usr/bin/python3", VALIDATE, "--strict", path],
                          capture_output=True, text=True)


# Kubernetes name: DNS-1123 label (VM names) -- what "sanitised" means.
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
