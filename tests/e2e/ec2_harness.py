# SPDX-License-Identifier: Apache-2.0
"""Harness for end-to-end runs of `pallet migrate` with provider-ec2 against
the local endpoint (tests/endpoint).  Real processes, real HTTP, real SigV4."""

import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "endpoint"))
from endpoint_fixture import Endpoint, SOURCE, TARGET  # noqa: E402

BUILD = os.environ.get("PALLET_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))
PALLET = os.environ.get("PALLET_BIN", os.path.join(BUILD, "host-shim", "pallet"))
PROVIDERS = os.environ.get("PALLET_PROVIDER_PATH", os.path.join(BUILD, "providers"))
VALIDATE = os.environ.get("PALLET_LINT_MANIFESTS",
                          os.path.join(HERE, "..", "..", "host-shim", "lint", "pallet-lint-manifests"))
MUTATING = ("StopInstances", "StartInstances", "CreateSnapshots", "CreateSnapshot",
            "CopySnapshot", "CreateVolume", "DeleteSnapshot", "DeleteVolume", "CreateTags",
            "ModifySnapshotAttribute")
PLAN_UID = "5a1d0000-0000-4000-8000-0000000000e2"


def plan_yaml(port, vms, subnets, storage, settings=None, secret_extra=None, plan_name="e2e",
              power=None, skip_conversion=False, annotations=None, spec_extra=None,
              extra_docs=()):
    settings = dict({"target-az": "us-east-1b"}, **(settings or {}))
    secret = dict({"region": "us-east-1", "accessKeyId": SOURCE["key"],
                   "secretAccessKey": SOURCE["secret"]}, **(secret_extra or {}))
    docs = [{
        "apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Provider",
        "metadata": {"name": "ec2-src", "namespace": "mtv"},
        "spec": {"type": "ec2", "url": "http://127.0.0.1:%d" % port,
                 "secret": {"name": "ec2-creds", "namespace": "mtv"}, "settings": settings}},
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "ec2-creds", "namespace": "mtv"}, "stringData": secret},
        {"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "NetworkMap",
         "metadata": {"name": "net", "namespace": "mtv"},
         "spec": {"provider": {"source": {"name": "ec2-src", "namespace": "mtv"},
                               "destination": {"name": "host", "namespace": "mtv"}},
                  "map": [{"source": {"id": s}, "destination": {"type": "pod"}}
                          for s in subnets]}},
        {"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "StorageMap",
         "metadata": {"name": "sto", "namespace": "mtv"},
         "spec": {"provider": {"source": {"name": "ec2-src", "namespace": "mtv"},
                               "destination": {"name": "host", "namespace": "mtv"}},
                  "map": [{"source": {"name": t}, "destination": {"storageClass": "ebs-" + t}}
                          for t in storage]}},
        {"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Plan",
         "metadata": dict({"name": plan_name, "namespace": "mtv", "uid": PLAN_UID},
                          **({"annotations": annotations} if annotations else {})),
         "spec": dict({"provider": {"source": {"name": "ec2-src", "namespace": "mtv"},
                                    "destination": {"name": "host", "namespace": "mtv"}},
                       "map": {"network": {"name": "net", "namespace": "mtv"},
                               "storage": {"name": "sto", "namespace": "mtv"}},
                       "targetNamespace": "vms", "type": "cold",
                       "vms": [{"id": v} for v in vms]},
                      **({"targetPowerState": power} if power else {}),
                      **({"skipGuestConversion": True} if skip_conversion else {}),
                      **(spec_extra or {}))},
    ] + list(extra_docs)
    # JSON is YAML: one document per line keeps it readable and exact.
    return "".join("---\n" + json.dumps(d) + "\n" for d in docs)


class Run:
    def __init__(self, proc, out, err):
        self.rc, self.out, self.err = proc, out, err


class EC2E2E(unittest.TestCase):
    """One endpoint per test (the world is stateful)."""
    ep_args = ("--start-delay", "0.2", "--stop-delay", "0.3", "--snapshot-delay", "0.8",
               "--volume-delay", "0.3")

    def setUp(self):
        self.tmpdir = tempfile.TemporaryDirectory(prefix="pallet-e2e-")
        self.tmp = self.tmpdir.name

    def tearDown(self):
        if getattr(self, "ep", None):
            self.ep.stop()
        self.tmpdir.cleanup()

    def start(self, seed, args=()):
        self.ep = Endpoint(tuple(self.ep_args) + tuple(args), seed, self.tmp)
        return self.ep

    def subnets(self, who=SOURCE, region="us-east-1"):
        r = self.ep.client("ec2", who, region).describe_subnets()
        return [s["SubnetId"] for s in r["Subnets"]]

    def write_plan(self, vms, storage=("gp3", "gp2", "io1", "io2", "standard"), **kw):
        path = os.path.join(self.tmp, "plan.yaml")
        with open(path, "w") as f:
            f.write(plan_yaml(self.ep.port, vms, self.subnets(), storage, **kw))
        return path

    def env(self):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("AWS_"):
                del env[k]
        env["PALLET_PROVIDER_PATH"] = PROVIDERS
        env["HOME"] = self.tmp
        return env

    def pallet(self, *args, check=None, timeout=300):
        argv = [PALLET] + list(args)
        r = subprocess.run(argv, capture_output=True, text=True, env=self.env(), timeout=timeout)
        if check is not None and r.returncode != check:
            raise AssertionError("pallet %s exited %d, expected %d\nstdout:\n%s\nstderr:\n%s"
                                 % (" ".join(args), r.returncode, check, r.stdout, r.stderr))
        return r

    def spawn(self, *args):
        return subprocess.Popen([PALLET] + list(args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env(),
                                start_new_session=True)

    def wait_call(self, action, count=1, timeout=60):
        def seen():
            n = sum(1 for c in self.ep.calls().get("calls", [])
                    if c.get("action") == action and c.get("outcome") == "ok")
            return n >= count
        self.ep.wait(seen, timeout, "%d %s call(s)" % (count, action))

    def counts(self, account=None):
        c = collections.Counter()
        for call in self.ep.calls().get("calls", []):
            if call.get("outcome") != "ok":
                continue
            if account and call.get("account") != account:
                continue
            c[call["action"]] += 1
        return c

    def tagged(self, kind):
        """This plan's snapshots or volumes still present, in any account/region."""
        st = self.ep.state()
        objs = st[kind] if isinstance(st[kind], list) else list(st[kind].values())
        return [o for o in objs if o.get("tags", {}).get("forklift.konveyor.io/plan") == PLAN_UID
                and o.get("state") not in ("deleted",)]

    def aws_snapshots(self, who=SOURCE, region="us-east-1"):
        """This plan's snapshot ids, as /usr/bin/aws describe-snapshots sees them."""
        r = self.ep.aws("ec2", "describe-snapshots", "--owner-ids", "self", "--filters",
                        "Name=tag:forklift.konveyor.io/plan,Values=" + PLAN_UID,
                        who=who, region=region)
        return sorted(s["SnapshotId"] for s in r["Snapshots"])

    def assert_retained_then_cleanup(self, plan, sd, r, n, until="has booted", **aws):
        """A successful migrate in manifest mode keeps its n snapshots, says
        so with the follow-up, and `pallet cleanup` deletes them."""
        kept = self.aws_snapshots(**aws)
        self.assertEqual(len(kept), n, "snapshots kept after migrate\n" + r.stdout + r.stderr)
        self.assertIn("run `pallet cleanup`", r.stdout, r.stdout + r.stderr)
        self.assertIn(until, r.stdout)
        for vm in [f for f in os.listdir(sd) if f.startswith("vm-") and f.endswith(".json")]:
            with open(os.path.join(sd, vm)) as f:
                doc = json.load(f)
            self.assertTrue(doc["retained"], doc)
            self.assertEqual(doc["state"]["retained"], doc["retained"])
            for it in doc["retained"]:
                self.assertEqual((it["kind"], it["action"]), ("snapshot", "kept"))
                self.assertIn(until, it["until"])
        print("\n[retained] " + "\n[retained] ".join(
            ln for ln in r.stdout.splitlines() if "kept" in ln)[:1500])
        c = self.pallet("cleanup", plan, "--state-dir", sd, check=0)
        print("[pallet cleanup] " + "\n[pallet cleanup] ".join(c.stdout.splitlines()[:8]))
        self.assertEqual(self.aws_snapshots(**aws), [], "pallet cleanup deleted them")
        for sid in kept:
            self.assertIn("snapshot %s" % sid, c.stdout, "each deletion reported")
        again = self.pallet("cleanup", plan, "--state-dir", sd, check=0)
        self.assertNotIn(": deleted", again.stdout, "a second cleanup has nothing to delete")
        return c

    def cleanup_as_cluster(self, plan, sd, pods, booted):
        """migrate's tidy-up again, with the cleanup input of cluster mode:
        each VM's state made what `pallet migrate --apply` leaves when it
        is killed after its apply step (the Pods' outcome, the boot stage's
        result), and migrate resumed, which runs the cleanup step only."""
        for vm in [f for f in os.listdir(sd) if f.startswith("vm-") and f.endswith(".json")]:
            path = os.path.join(sd, vm)
            with open(path) as f:
                doc = json.load(f)
            doc["completed"] = [x for x in doc["completed"] if x != "cleanup"] + ["apply"]
            doc.update(status="running", step="cleanup")
            doc.pop("retained", None)
            doc["cluster"] = {"mode": "apply", "objects": [], "stage": "done",
                              "stagesDone": ["1-storage", "2-copy", "3-convert", "4-vm", "5-vm",
                                             "6-boot"], "podsSucceeded": pods,
                              "boot": {"result": "booted" if booted else "timeout"}}
            with open(path, "w") as f:
                json.dump(doc, f)
        return self.pallet("migrate", plan, "--state-dir", sd, check=0)

    def print_counts(self, label, vms, volumes):
        c = self.counts()
        mut = {a: n for a, n in sorted(c.items()) if a in MUTATING}
        polls = {a: n for a, n in sorted(c.items()) if a not in MUTATING}
        print("\n[%s] EC2 calls for %d VM(s), %d volume(s):" % (label, vms, volumes))
        print("  mutating: %s (total %d; minimum 2+2V = %d)"
              % (mut, sum(mut.values()), 2 * vms + 2 * volumes))
        print("  describe/poll: %s" % polls)
        sys.stdout.flush()
        return mut

    def manifests(self, state_dir):
        out = []
        for root, _, files in os.walk(os.path.join(state_dir, "manifests")):
            for f in sorted(files):
                out.append(os.path.join(root, f))
        return out

    def assert_schema_valid(self, paths):
        self.assertTrue(paths, "no manifests were written")
        for p in paths:
            r = subprocess.run(["/usr/bin/python3", VALIDATE, "--strict", p],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, "%s failed pallet-lint-manifests --strict:\n%s%s"
                             % (p, r.stdout, r.stderr))
