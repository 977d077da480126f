# SPDX-License-Identifier: Apache-2.0
"""provider-ec2 chooses the transfer mode from facts, never from a name:
the provisioner of the StorageMap's classes, read from a Kubernetes API
(pallet-kube-endpoint, over verified TLS with a bearer token), else the
transfer-mode setting, else zero copy.  `pallet validate` says, per VM,
which mode and why; a bad setting is an error with a did-you-mean; an
unreachable cluster falls back to zero copy with the reason."""

import base64
import os
import socket
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, HERE)
from ec2_harness import EC2E2E  # noqa: E402
from kube_fixture import KubeEndpoint  # noqa: E402

IID = "i-0c0d00000000000ab"
SEED = {"instances": [{"id": IID, "name": "mode-a", "type": "m5.large", "az": "us-east-1a",
                       "state": "running",
                       "volumes": [{"device": "/dev/xvda", "sizeGiB": 1, "type": "gp3"}]}]}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class TransferMode(EC2E2E):
    def setUp(self):
        super().setUp()
        self.start(SEED)
        self.kube = KubeEndpoint(tmp=os.path.join(self.tmp, "kube"))
        self.addCleanup(self.kube.stop)
        cfg = self.kube.config
        self.ca = base64.b64decode(
            cfg["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
        self.token = cfg["users"][0]["user"]["token"]

    def storage_class(self, provisioner, name="ebs-gp3"):
        self.kube.apply([{"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                          "metadata": {"name": name}, "provisioner": provisioner}])

    def validate(self, settings, cluster=True, check=0):
        secret = {"kubeToken": self.token, "kube-ca.crt": self.ca} if cluster else {}
        if cluster and "kube-api-url" not in settings:
            settings = dict(settings, **{"kube-api-url": self.kube.url})
        plan = self.write_plan([IID], storage=("gp3",), settings=settings, secret_extra=secret)
        r = self.pallet("validate", plan, check=check)
        return r.stdout + r.stderr

    def test_ebs_csi_class_is_zero_copy(self):
        self.storage_class("ebs.csi.aws.com")
        out = self.validate({})
        self.assertIn("transfer mode zero copy: the cluster's StorageClass ebs-gp3 has "
                      "provisioner ebs.csi.aws.com", out)
        self.assertNotIn(self.token, out)

    def test_name_with_ebs_but_other_provisioner_is_copy(self):
        # The old rule looked at the name ("ebs" in it: zero copy); the
        # provisioner says the volumes are Ceph's.
        self.storage_class("rbd.csi.ceph.com")
        out = self.validate({})
        self.assertIn("transfer mode copy: the cluster's StorageClass ebs-gp3 has provisioner "
                      "rbd.csi.ceph.com, not ebs.csi.aws.com", out)
        sc = [c for c in self.kube.calls() if "storageclasses/ebs-gp3" in c.get("path", "")]
        self.assertTrue(sc and all(c["method"] == "GET" for c in sc), sc)

    def test_the_hosts_cluster_is_asked_without_settings(self):
        # `pallet validate --kubeconfig` (and migrate --apply): the cluster the
        # host applies to answers, through get_param cluster.*, with no
        # kube-api-url or token in the Provider.
        self.kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "vms"}}])
        self.storage_class("rbd.csi.ceph.com")
        plan = self.write_plan([IID], storage=("gp3",), settings={})
        before = len(self.kube.calls())
        r = self.pallet("validate", plan, "--kubeconfig", self.kube.kubeconfig, check=0)
        out = r.stdout + r.stderr
        self.assertIn("transfer mode copy: the cluster's StorageClass ebs-gp3 has provisioner "
                      "rbd.csi.ceph.com, not ebs.csi.aws.com", out)
        self.assertNotIn(self.token, out)
        sc = [c for c in self.kube.calls()[before:]
              if c.get("path", "").endswith("storageclasses/ebs-gp3")]
        self.assertTrue(sc and all(c["method"] == "GET" and c["code"] == 200 for c in sc), sc)
        # Without --kubeconfig the provider has no cluster to ask.
        r = self.pallet("validate", plan, check=0)
        self.assertIn("transfer mode zero copy: no transfer-mode setting and no cluster",
                      r.stdout + r.stderr)

    def test_setting_wins_over_the_cluster(self):
        self.storage_class("ebs.csi.aws.com")
        out = self.validate({"transfer-mode": "copy"})
        self.assertIn("transfer mode copy: the setting transfer-mode", out)

    def test_missing_class_falls_back_with_the_reason(self):
        out = self.validate({})
        self.assertIn("transfer mode zero copy: the StorageClass ebs-gp3 could not be read "
                      "from the cluster", out)
        self.assertIn("set transfer-mode to copy or zero-copy", out)

    def test_unreachable_cluster_falls_back_with_the_reason(self):
        url = "https://127.0.0.1:%d" % free_port()
        out = self.validate({"kube-api-url": url})
        self.assertIn("transfer mode zero copy: the StorageClass ebs-gp3 could not be read "
                      "from the cluster", out)
        self.assertIn("127.0.0.1", out)
        self.assertIn("Forklift's default", out)

    def test_no_cluster_no_setting_is_zero_copy(self):
        out = self.validate({}, cluster=False)
        self.assertIn("transfer mode zero copy: no transfer-mode setting and no cluster", out)

    def test_bad_value_did_you_mean(self):
        out = self.validate({"transfer-mode": "zero_copy"}, cluster=False, check=1)
        self.assertIn('setting transfer-mode is "zero_copy"; use "copy" or "zero-copy" '
                      '(did you mean "zero-copy"?)', out)
        self.assertIn("TransferModeInvalid", out)
        out = self.validate({"transfer-mode": "coppy"}, cluster=False, check=1)
        self.assertIn('(did you mean "copy"?)', out)
        out = self.validate({"transfer-mode": "rsync"}, cluster=False, check=1)
        self.assertNotIn("did you mean", out)


if __name__ == "__main__":
    unittest.main()
