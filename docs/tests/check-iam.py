#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Checks the IAM policy in docs/ec2-user-guide.md against AWS's service
models and against the actions the EC2 provider's source calls.

usage: check-iam.py EC2_USER_GUIDE.md PROVIDER_EC2_SOURCE_DIR

  - the first ```json block under '## IAM policy' is valid JSON, Version
    2012-10-17, every statement has Effect/Action/Resource;
  - every ec2:, ebs:, sts: and kms: action (wildcards expanded) is an
    operation in botocore's service model;
  - the ec2:, ebs: and sts: actions are exactly the operations the
    provider's C sources name (tests excluded): the guide lists what Pallet
    calls, no more, no less.
"""
import fnmatch
import glob
import json
import os
import re
import sys

MODELS = {"ec2": "ec2/2016-11-15", "ebs": "ebs/2019-11-02",
          "sts": "sts/2011-06-15", "kms": "kms/2014-11-01"}


def model_ops():
    try:
        import botocore
    except ImportError:
        raise SystemExit("FAIL: python3-botocore is missing; run "
                         "./scripts/install-deps.sh")
    base = os.path.join(os.path.dirname(botocore.__file__), "data")
    ops = {}
    for svc, rel in MODELS.items():
        path = os.path.join(base, rel, "service-2.json")
        if not os.path.exists(path):
            cands = sorted(glob.glob(os.path.join(base, svc, "*", "service-2.json")))
            if not cands:
                raise SystemExit("FAIL: no botocore model for %s" % svc)
            path = cands[-1]
        with open(path, encoding="utf-8") as f:
            ops[svc] = set(json.load(f)["operations"])
    return ops


def policy(guide):
    with open(guide, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^## IAM policy\s*$(.*?)^## ", text, re.M | re.S)
    b = m and re.search(r"^```json\s*\n(.*?)^```", m.group(1), re.M | re.S)
    if not b:
        raise SystemExit("FAIL: %s: no ```json block under '## IAM policy'" % guide)
    try:
        return json.loads(b.group(1))
    except ValueError as e:
        raise SystemExit("FAIL: the IAM policy is not JSON: %s" % e)


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    guide, srcdir = sys.argv[1:]
    ops = model_ops()
    pol = policy(guide)
    errors = []
    if pol.get("Version") != "2012-10-17":
        errors.append("policy Version must be \"2012-10-17\"")
    actions = set()
    for i, st in enumerate(pol.get("Statement", [])):
        for k in ("Effect", "Action", "Resource"):
            if k not in st:
                errors.append("statement %d (%s) has no %s" % (i, st.get("Sid"), k))
        a = st.get("Action", [])
        actions.update([a] if isinstance(a, str) else a)
    listed = {}
    for a in sorted(actions):
        svc, _, op = a.partition(":")
        if svc not in ops:
            errors.append("action %s: service %s is not one Pallet uses" % (a, svc))
            continue
        hits = fnmatch.filter(sorted(ops[svc]), op)
        if not hits:
            errors.append("action %s: no such operation in the %s API" % (a, svc))
        listed.setdefault(svc, set()).update(hits)
    if not os.path.isdir(srcdir):
        raise SystemExit("FAIL: provider source dir %s does not exist" % srcdir)
    called = {}
    for f in glob.glob(os.path.join(srcdir, "**", "*.[ch]"), recursive=True):
        if os.sep + "tests" + os.sep in f:
            continue
        with open(f, encoding="utf-8", errors="replace") as fh:
            for s in re.findall(r'"([A-Z][A-Za-z0-9]+)"', fh.read()):
                for svc in ("ec2", "ebs", "sts"):
                    if s in ops[svc]:
                        called.setdefault(svc, set()).add(s)
    if not called:
        errors.append("found no AWS operation names in %s" % srcdir)
    for svc in ("ec2", "ebs", "sts"):
        for op in sorted(called.get(svc, set()) - listed.get(svc, set())):
            errors.append("the provider calls %s:%s; the IAM policy in the "
                          "guide does not allow it" % (svc, op))
        for op in sorted(listed.get(svc, set()) - called.get(svc, set())):
            errors.append("the IAM policy allows %s:%s; the provider never "
                          "calls it" % (svc, op))
    for e in errors:
        print("FAIL: " + e)
    if errors:
        sys.exit(1)
    print("ok: the IAM policy allows exactly the %d EC2/EBS/STS actions the "
          "provider calls, plus %d KMS actions, all real"
          % (sum(len(v) for v in called.values()), len(listed.get("kms", ()))))


if __name__ == "__main__":
    main()
