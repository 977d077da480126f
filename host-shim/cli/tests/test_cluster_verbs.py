#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""pallet archive / delete on a cluster: the Forklift objects live in
pallet-kube-endpoint (tests/kube-endpoint) and are put there and checked
with the real kubectl; pallet finds the cluster through --kubeconfig or
$KUBECONFIG, as kubectl does.

Usage: test_cluster_verbs.py   (environment: PALLET, PALLET_TEST_TMP)."""
import json
import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tests", "kube-endpoint"))
from kube_fixture import KubeEndpoint  # noqa: E402

PALLET = os.environ["PALLET"]
TMP_ROOT = os.environ.get("PALLET_TEST_TMP", "/tmp/pallet-test-cluster-verbs")
API = "forklift.konveyor.io/v1beta1"


def obj(kind, name, spec):
    return {"apiVersion": API, "kind": kind, "metadata": {"name": name, "namespace": "mtv"},
            "spec": spec}


class ClusterVerbs(unittest.TestCase):
    def setUp(self):
        self.dir = os.path.join(TMP_ROOT, self.id().rsplit(".", 1)[-1])
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.ep = KubeEndpoint(tmp=os.path.join(self.dir, "kube"))
        self.ep.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mtv"}},
                       obj("Plan", "p1", {"targetNamespace": "vms", "vms": [{"id": "i-1"}]}),
                       obj("Provider", "aws", {"type": "ec2", "url": ""}),
                       obj("NetworkMap", "net", {"map": []}),
                       obj("StorageMap", "sto", {"map": []})])

    def tearDown(self):
        self.ep.stop()

    def run_p(self, *args, rc=0, env=None):
        e = dict(os.environ, HOME=self.dir)
        e.pop("KUBECONFIG", None)
        e.update(env or {})
        p = subprocess.run([PALLET] + list(args), capture_output=True, text=True,
                           cwd=self.dir, env=e, timeout=120)
        self.assertEqual(p.returncode, rc, "pallet %s exited %d, expected %d\n%s\n%s"
                         % (" ".join(args), p.returncode, rc, p.stdout, p.stderr))
        return p

    def get(self, what):
        p = self.ep.kubectl("get", "-n", "mtv", "-o", "json", what, ok=False)
        return json.loads(p.stdout) if p.returncode == 0 else None

    def test_archive_and_delete(self):
        kc = self.ep.kubeconfig
        p = self.run_p("archive", "plan", "p1", "-n", "mtv", "--kubeconfig", kc)
        self.assertEqual(p.stdout.strip(), "plan mtv/p1 archived")
        plan = self.get("plans.forklift.konveyor.io/p1")
        self.assertIs(plan["spec"]["archived"], True)
        self.assertEqual(plan["spec"]["vms"], [{"id": "i-1"}])  # a merge patch, not a replace
        # $KUBECONFIG, as kubectl reads it.
        self.run_p("delete", "plan", "p1", "-n", "mtv", env={"KUBECONFIG": kc})
        self.assertIsNone(self.get("plans.forklift.konveyor.io/p1"))
        self.run_p("delete", "provider", "aws", "-n", "mtv", "--kubeconfig", kc)
        self.assertIsNone(self.get("providers.forklift.konveyor.io/aws"))
        # A mapping is the NetworkMap or the StorageMap of that name.
        self.run_p("delete", "mapping", "sto", "-n", "mtv", "--kubeconfig", kc)
        self.assertIsNone(self.get("storagemaps.forklift.konveyor.io/sto"))
        self.assertIsNotNone(self.get("networkmaps.forklift.konveyor.io/net"))
        self.run_p("delete", "networkmap", "net", "-n", "mtv", "--kubeconfig", kc)
        self.assertIsNone(self.get("networkmaps.forklift.konveyor.io/net"))

    def test_get_and_describe_from_the_cluster(self):
        kc = self.ep.kubeconfig
        p = self.run_p("get", "plan", "--kubeconfig", kc, "-n", "mtv")
        self.assertEqual(p.stdout.splitlines()[1].split()[:6],
                         ["p1", "mtv", "-", "vms", "cold", "1"])
        lst = json.loads(self.run_p("get", "mapping", "--kubeconfig", kc, "-n", "mtv",
                                    "-o", "json").stdout)
        self.assertEqual(sorted(o["metadata"]["name"] for o in lst["items"]), ["net", "sto"])
        p = self.run_p("describe", "provider", "aws", "--kubeconfig", kc, "-n", "mtv")
        self.assertIn("Type:              ec2", p.stdout)
        p = self.run_p("describe", "plan", "p1", "--kubeconfig", kc, "-n", "mtv", "-o", "json")
        self.assertEqual(json.loads(p.stdout)["plan"]["spec"]["targetNamespace"], "vms")
        p = self.run_p("describe", "plan", "p9", "--kubeconfig", kc, "-n", "mtv", rc=5)
        self.assertIn("no Plan named 'p9' in namespace mtv in the cluster", p.stderr)
        # Another namespace has none.
        p = self.run_p("get", "provider", "--kubeconfig", kc, "-n", "default")
        self.assertEqual(len(p.stdout.splitlines()), 1)

    def test_failures(self):
        kc = self.ep.kubeconfig
        p = self.run_p("delete", "plan", "nosuch", "-n", "mtv", "--kubeconfig", kc, rc=5)
        self.assertIn("Plan mtv/nosuch: not found in the cluster", p.stderr)
        p = self.run_p("delete", "mapping", "nosuch", "-n", "mtv", "--kubeconfig", kc, rc=5)
        self.assertIn("no NetworkMap or StorageMap mtv/nosuch", p.stderr)
        p = self.run_p("archive", "plan", "p1", "-n", "other", "--kubeconfig", kc, rc=5)
        self.assertIn("Plan other/p1: not found", p.stderr)
        p = self.run_p("archive", "provider", "aws", "--kubeconfig", kc, rc=2)
        self.assertIn("write 'pallet archive plan NAME'", p.stderr)
        p = self.run_p("delete", "plna", "p1", "--kubeconfig", kc, rc=2)
        self.assertIn("did you mean 'plan'?", p.stderr)
        p = self.run_p("delete", "plan", "--kubeconfig", kc, rc=2)
        self.assertIn("give the plan's NAME", p.stderr)
        # No cluster anywhere: the message says where pallet looked.
        p = self.run_p("delete", "plan", "p1", rc=2)
        self.assertIn("needs a cluster", p.stderr)
        p = self.run_p("archive", "plan", "p1", "--kubeconfig",
                       os.path.join(self.dir, "missing.yaml"), rc=2)
        self.assertIn("missing.yaml", p.stderr)
        # Nothing was changed by the failures.
        self.assertNotIn("archived", self.get("plans.forklift.konveyor.io/p1")["spec"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
