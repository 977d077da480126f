# SPDX-License-Identifier: Apache-2.0
"""Cluster mode from inside the cluster: `pallet migrate --apply` run in a
Pod of pallet-kube-endpoint, with no kubeconfig anywhere, finds the API
through the Pod's service account (KUBERNETES_SERVICE_HOST/PORT, the
mounted token, ca.crt and namespace) as a controller deployed in the
cluster would, and applies the null provider's objects there; a Pod whose
token is not mounted fails the preflight with a message saying what was
tried.  Checked with the real kubectl."""

import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "kube-endpoint"))
from kube_fixture import KubeEndpoint, pod, wait_until  # noqa: E402

BUILD = os.environ.get("PALLET_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))
PALLET = os.environ.get("PALLET_BIN", os.path.join(BUILD, "host-shim", "pallet"))
PROVIDERS = os.environ.get("PALLET_PROVIDER_PATH", os.path.join(BUILD, "providers"))
NS = "vms"


def plan_and_config():
    vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
          "metadata": {"name": "web-1", "namespace": NS,
                       "labels": {"pallet.dev/stage": "vm"},
                       "annotations": {"pallet.dev/target-run-strategy": "Halted"}},
          "spec": {"runStrategy": "Halted", "template": {"spec": {"domain": {
              "devices": {}}}}}}
    plan = {"name": "inside", "uid": "00000000-0000-4000-8000-0000000000c1", "type": "cold",
            "targetNamespace": NS, "targetPowerState": "off", "spec": {},
            "vms": [{"id": "vm-0001", "name": "web-1", "index": 0}],
            "networkMap": [], "storageMap": [],
            "source": {"name": "null-source", "type": "null", "url": "", "settings": {}},
            "destination": {"name": "host", "type": "openshift", "url": "", "settings": {}}}
    config = {"provider": {"metadata": {"name": "null-source"}, "spec": {"type": "null"}},
              "secret": {}, "settings": {"manifests": [vm]}}
    return plan, config


class InCluster(unittest.TestCase):
    def setUp(self):
        bins = os.path.dirname(os.path.realpath(PALLET))
        self.kube = KubeEndpoint(("--image", "debian=host", "--host-path", bins,
                                  "--host-path", os.path.realpath(PROVIDERS),
                                  "--host-path", os.path.realpath(BUILD)))
        self.addCleanup(self.kube.stop)
        plan, config = plan_and_config()
        self.kube.apply([
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plan", "namespace": NS},
             "data": {"plan.json": json.dumps(plan), "config.json": json.dumps(config)}}])

    def run_in_pod(self, name, **spec):
        argv = [os.path.realpath(PALLET), "migrate", "--normalized", "/plan/plan.json",
                "--provider", "null", "--config", "/plan/config.json", "--apply",
                "--state-dir", "/tmp/state", "-o", "json"]
        p = pod(name, argv, volumeMounts=[{"name": "plan", "mountPath": "/plan"}],
                volumes=[{"name": "plan", "configMap": {"name": "plan"}}],
                env=[{"name": "PALLET_PROVIDER_PATH", "value": os.path.realpath(PROVIDERS)},
                     {"name": "HOME", "value": "/tmp"}], **spec)
        p["metadata"]["namespace"] = NS
        self.kube.apply([p])
        wait_until(lambda: (self.kube.json("-n", NS, "pod/" + name).get("status") or {})
                   .get("phase") in ("Succeeded", "Failed"), 180, "the Pod running pallet to end")
        log = self.kube.kubectl("logs", "-n", NS, name).stdout
        return self.kube.json("-n", NS, "pod/" + name)["status"]["phase"], log

    def test_service_account_of_the_pod(self):
        phase, log = self.run_in_pod("pallet-inside")
        self.assertEqual(phase, "Succeeded", log)
        self.assertIn('"succeeded":1', log.replace(" ", ""))
        vm = self.kube.json("-n", NS, "virtualmachine/web-1")
        self.assertEqual(vm["metadata"]["labels"]["vmID"], "vm-0001")
        # The API saw the Pod's own token: requests came with it, not as anonymous.
        writes = [c for c in self.kube.calls() if c["method"] == "POST"
                  and c["path"].endswith("/virtualmachines") and c.get("code") == 201]
        self.assertTrue(writes, "the VM was created through the API")

    def test_no_token_mounted_says_what_was_tried(self):
        phase, log = self.run_in_pod("pallet-no-token", automountServiceAccountToken=False)
        self.assertEqual(phase, "Failed", log)
        self.assertIn("ClusterConfigInvalid", log)
        self.assertIn("in-cluster service account: /var/run/secrets/kubernetes.io/"
                      "serviceaccount/token: cannot read", log)
        self.assertIn("mount the service account token (automountServiceAccountToken) or "
                      "pass --kubeconfig FILE; no VM was touched", log)
        self.assertEqual(self.kube.kubectl("get", "-n", NS, "virtualmachines", "-o",
                                           "name").stdout.strip(), "")


if __name__ == "__main__":
    unittest.main()
