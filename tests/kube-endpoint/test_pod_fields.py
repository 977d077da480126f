# SPDX-License-Identifier: Apache-2.0
"""The Plan's Pod fields on the Pods provider-ec2 generates: convertorLabels,
convertorNodeSelector and convertorAffinity on the conversion Pod,
transferNetwork (Multus k8s.v1.cni.cncf.io/networks) and serviceAccount on
the copy and conversion Pods.  `pallet migrate` writes them (zero copy:
the conversion Pod; copy mode without conversion: the copy Pod), the
bundled core/v1 schema and kubectl (server dry run, then a real create)
accept them, and pallet-kube-endpoint's scheduler places the conversion
Pod by the merged node selector.  Bad values fail `pallet validate`
naming the field.  No Pod is run: the conversion itself is
run by e2e-ec2-apply-* (tests/e2e/test_ec2_apply.py)."""

import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, HERE)
from ec2_harness import EC2E2E  # noqa: E402
from kube_fixture import KubeEndpoint, wait_until  # noqa: E402

IID = "i-0c0d00000000000f1"
SEED = {"instances": [{"id": IID, "name": "fields", "type": "m5.large", "az": "us-east-1a",
                       "state": "running",
                       "volumes": [{"device": "/dev/xvda", "sizeGiB": 1, "type": "gp3"}]}]}
NET = "k8s.v1.cni.cncf.io/networks"
AFFINITY = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
    "weight": 100, "podAffinityTerm": {
        "topologyKey": "kubernetes.io/hostname",
        "labelSelector": {"matchExpressions": [
            {"key": "app", "operator": "In", "values": ["pallet-convert"]}]}}}]}}
FIELDS = {"convertorLabels": {"team": "blue", "example.com/tier": "gold"},
          "convertorNodeSelector": {"pallet.dev/convertor": "yes"},
          "convertorAffinity": AFFINITY,
          "transferNetwork": {"name": "transfer", "namespace": "net"},
          "serviceAccount": "migrator"}


class PodFields(EC2E2E):
    def setUp(self):
        super().setUp()
        self.start(SEED)

    def migrate(self, name, spec, **kw):
        plan = self.write_plan([IID], storage=("gp3",), spec_extra=spec, **kw)
        sd = os.path.join(self.tmp, name)
        self.pallet("migrate", plan, "--state-dir", sd, check=0)
        paths = self.manifests(sd)
        self.assert_schema_valid(paths)   # the bundled core/v1 schema, --strict
        objs = []
        for p in paths:
            with open(p) as f:
                objs.append(json.load(f))
        return objs

    def pod(self, objs, suffix):
        pods = [o for o in objs if o["kind"] == "Pod" and o["metadata"]["name"].endswith(suffix)]
        self.assertEqual(len(pods), 1, [(o["kind"], o["metadata"]["name"]) for o in objs])
        return pods[0]

    def kube(self, *node_labels):
        args = []
        for lab in node_labels:
            args += ["--node-label", lab]
        k = KubeEndpoint(tuple(args), tmp=os.path.join(self.tmp, "kube"))
        self.addCleanup(k.stop)
        k.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "vms"}},
                 {"apiVersion": "v1", "kind": "ServiceAccount",
                  "metadata": {"name": "migrator", "namespace": "vms"}}])
        return k

    def kubectl_accepts(self, k, pod):
        """kubectl sends it (strict field validation, server dry run), then
        creates it; what the API stores keeps every field."""
        doc = json.dumps(pod)
        out = k.kubectl("create", "--dry-run=server", "--validate=strict", "-o", "json", "-f",
                        "-", stdin=doc).stdout
        self.assertEqual(json.loads(out)["spec"].get("serviceAccountName"), "migrator")
        k.kubectl("create", "--validate=strict", "-f", "-", stdin=doc)
        return k.json("-n", "vms", "pod/" + pod["metadata"]["name"])

    def test_conversion_pod(self):
        objs = self.migrate("conv", FIELDS)
        pod = self.pod(objs, "-v2v")
        md, spec = pod["metadata"], pod["spec"]
        self.assertEqual(md["labels"]["team"], "blue")
        self.assertEqual(md["labels"]["example.com/tier"], "gold")
        self.assertEqual(md["labels"]["pallet.dev/stage"], "convert")
        # The user's selector merged with the volumes' zone and KVM's.
        self.assertEqual(spec["nodeSelector"], {"pallet.dev/convertor": "yes",
                                                "topology.kubernetes.io/zone": "us-east-1b",
                                                "kubevirt.io/schedulable": "true"})
        self.assertEqual(spec["affinity"], AFFINITY)
        self.assertEqual(json.loads(md["annotations"][NET]),
                         [{"name": "transfer", "namespace": "net"}])
        self.assertEqual(spec["serviceAccountName"], "migrator")
        # No token in the Pod for all the service account.
        self.assertIs(spec["automountServiceAccountToken"], False)

        k = self.kube("topology.kubernetes.io/zone=us-east-1b", "kubevirt.io/schedulable=true",
                      "pallet.dev/convertor=yes")
        got = self.kubectl_accepts(k, pod)
        for key in ("nodeSelector", "affinity", "serviceAccountName"):
            self.assertEqual(got["spec"][key], spec[key], key)
        self.assertEqual(got["metadata"]["annotations"][NET], md["annotations"][NET])
        self.assertEqual(got["metadata"]["labels"], md["labels"])
        # Scheduled by the merged selector onto the one node that has it.
        name = md["name"]
        wait_until(lambda: k.json("-n", "vms", "pod/" + name)["spec"].get("nodeName"),
                   what="the conversion Pod to be scheduled")
        # Found by the user's label like any other.
        sel = k.kubectl("get", "pods", "-n", "vms", "-l", "team=blue", "-o", "name").stdout
        self.assertEqual(sel.split(), ["pod/" + name])

    def test_unmatched_convertor_selector_is_unschedulable(self):
        pod = self.pod(self.migrate("conv2", FIELDS), "-v2v")
        k = self.kube("topology.kubernetes.io/zone=us-east-1b", "kubevirt.io/schedulable=true")
        self.kubectl_accepts(k, pod)
        name = pod["metadata"]["name"]

        def reason():
            conds = k.json("-n", "vms", "pod/" + name)["status"].get("conditions") or []
            return [c.get("message", "") for c in conds if c.get("reason") == "Unschedulable"]
        wait_until(reason, what="the Pod to be Unschedulable")
        self.assertIn("pallet.dev/convertor=yes", reason()[0])

    def test_copy_pod(self):
        disks = os.path.join(self.tmp, "copy-disks")
        objs = self.migrate("copy", FIELDS, skip_conversion=True,
                            settings={"transfer-mode": "copy", "copy-target-dir": disks})
        self.assertEqual([o for o in objs if o["kind"] == "Pod" and
                          o["metadata"]["name"].endswith("-v2v")], [])
        pod = self.pod(objs, "-ebs-copy")
        md, spec = pod["metadata"], pod["spec"]
        self.assertEqual(json.loads(md["annotations"][NET]),
                         [{"name": "transfer", "namespace": "net"}])
        self.assertEqual(spec["serviceAccountName"], "migrator")
        # As Forklift: the convertor* fields are the conversion Pod's only.
        self.assertNotIn("team", md["labels"])
        self.assertNotIn("affinity", spec)
        self.assertNotIn("pallet.dev/convertor", spec.get("nodeSelector", {}))
        k = self.kube()
        got = self.kubectl_accepts(k, pod)
        self.assertEqual(got["metadata"]["annotations"][NET], md["annotations"][NET])

    def validate_fails(self, spec, *want):
        plan = self.write_plan([IID], storage=("gp3",), spec_extra=spec)
        r = self.pallet("validate", plan)
        self.assertNotEqual(r.returncode, 0)
        for w in want:
            self.assertIn(w, r.stdout + r.stderr)

    def test_bad_values_fail_validate(self):
        self.validate_fails({"convertorLabels": {"team": "a b"}}, "PodFieldsInvalid",
                            'plan.spec.convertorLabels.team: "a b" is not a valid label value')
        self.validate_fails({"convertorNodeSelector": {"topology.kubernetes.io/zone":
                                                       "us-east-1a"}},
                            "puts the conversion Pod in zone us-east-1a but the VM's volumes "
                            "are in us-east-1b")
        self.validate_fails({"transferNetwork": {"namespace": "net"}},
                            "plan.spec.transferNetwork.name: missing")
        self.validate_fails({"serviceAccount": "Mig_rator"},
                            'plan.spec.serviceAccount: "Mig_rator" is not a ServiceAccount name')
        # Affinity is checked against the CRD's core/v1 Affinity when the
        # plan is read: a misspelt field is named with the right one.
        self.validate_fails({"convertorAffinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerm": []}}}},
            "spec.convertorAffinity.nodeAffinity.requiredDuringSchedulingIgnoredDuring"
            "Execution.nodeSelectorTerm", "nodeSelectorTerms")


if __name__ == "__main__":
    unittest.main()
