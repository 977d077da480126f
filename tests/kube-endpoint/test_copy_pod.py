# SPDX-License-Identifier: Apache-2.0
"""The copy Pod provider-ec2 generates today (ec2_copy_pod), applied with
kubectl to pallet-kube-endpoint and run in the pallet-ebs-copy image's
root filesystem (packaging/images/build-rootfs.sh) against the local EC2
endpoint: the copy lands byte-exact on the PVCs' backing files.

The image is the default (localhost/pallet-ebs-copy:VERSION, what
packaging/images builds), the credentials a Secret the provider writes
in the target namespace."""

import json
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, HERE)
from ec2_harness import BUILD, EC2E2E, SOURCE  # noqa: E402
from kube_fixture import KubeEndpoint, wait_until  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from test_ec2_copy import GIB, MIB, same, sparse_image  # noqa: E402

BUILD_ROOTFS = os.path.join(HERE, "..", "..", "packaging", "images", "build-rootfs.sh")
IMAGE = "localhost/pallet-ebs-copy:0.1.0"  # the project version


def rootfs(image):
    r = subprocess.run([BUILD_ROOTFS, image, "--build-dir", BUILD], capture_output=True,
                       text=True, timeout=1800)
    if r.returncode != 0:
        raise AssertionError("build-rootfs.sh %s failed:\n%s" % (image, r.stderr))
    return r.stdout.strip()


class CopyPod(EC2E2E):
    def seed(self):
        self.img0 = os.path.join(self.tmp, "root.raw")
        self.img1 = os.path.join(self.tmp, "data.raw")
        sparse_image(self.img0, GIB, 24 * MIB, 21)
        sparse_image(self.img1, 2 * GIB, 8 * MIB, 22)
        return {"instances": [{
            "id": "i-0c0b00000000000cb", "name": "kube-copy", "type": "m5.large",
            "az": "us-east-1a", "state": "running",
            "volumes": [{"device": "/dev/xvda", "sizeGiB": 1, "type": "gp3",
                         "image": self.img0},
                        {"device": "/dev/sdf", "sizeGiB": 2, "type": "gp2",
                         "image": self.img1}]}]}

    def migrate(self, name, settings):
        """pallet migrate in copy mode (manifest mode): the snapshots the
        copy Pod reads are kept, for `pallet cleanup` after it succeeded."""
        disks = os.path.join(self.tmp, name + "-disks")
        self.plan = self.write_plan(["i-0c0b00000000000cb"],
                                    settings=dict({"transfer-mode": "copy",
                                                   "copy-target-dir": disks}, **settings),
                                    skip_conversion=True)
        self.sd = os.path.join(self.tmp, name + "-state")
        r = self.pallet("migrate", self.plan, "--state-dir", self.sd, check=0)
        self.migrate_run = r
        objs = []
        for path in self.manifests(self.sd):
            if path.endswith(".json"):
                with open(path) as f:
                    objs.append(json.load(f))
        self.assertTrue(objs, "pallet migrate wrote no manifests:\n%s%s" % (r.stdout, r.stderr))
        return objs

    def kube_apply(self, objs):
        return self.kube.kubectl("apply", "-f", "-", stdin="".join(
            "---\n" + json.dumps(o) + "\n" for o in objs))

    def copy_pod(self, objs):
        pods = [o for o in objs if o["kind"] == "Pod" and
                o["metadata"]["name"].endswith("-ebs-copy")]
        self.assertEqual(len(pods), 1, [o["kind"] for o in objs])
        return pods[0]

    def pod_state(self, ns, name):
        st = self.kube.json("-n", ns, "pod/" + name)["status"]
        cs = st.get("containerStatuses") or [{}]
        return st.get("phase"), cs[0].get("state", {}), cs[0].get("restartCount", 0)

    def user_objects(self, ns):
        """What the cluster has before Pallet comes: the namespace and the
        StorageClasses the StorageMap names (EBS CSI's provisioner)."""
        objs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}]
        for t in ("gp3", "gp2", "io1", "io2", "standard"):
            objs.append({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                         "metadata": {"name": "ebs-" + t}, "provisioner": "ebs.csi.aws.com",
                         "reclaimPolicy": "Delete"})
        self.kube_apply(objs)

    def test_copy_pod_lands_byte_exact(self):
        root = rootfs("pallet-ebs-copy")
        self.start(self.seed())
        self.kube = KubeEndpoint(("--image", "localhost/pallet-ebs-copy=" + root,
                                  "--max-restarts", "1"), tmp=os.path.join(self.tmp, "kube"))
        self.addCleanup(self.kube.stop)

        # migrate keeps the snapshots its copy Pod reads, and says until when.
        objs = self.migrate("run2", {})
        pod = self.copy_pod(objs)
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        self.assertEqual(self.counts()["DeleteSnapshot"], 0)
        named = sorted(c["command"][c["command"].index("--snapshot") + 1]
                       for c in pod["spec"]["containers"])
        self.assertEqual(self.aws_snapshots(), named, "the snapshots the Pod reads, kept")
        self.assertIn("the copy Pod %s/%s has succeeded" % (ns, name), self.migrate_run.stdout)
        # The default image is the one packaging/images builds.
        self.assertEqual({c["image"] for c in pod["spec"]["containers"]}, {IMAGE})
        # The credentials: a Secret of the migration in the Pod's namespace.
        secrets = [o for o in objs if o["kind"] == "Secret"]
        self.assertEqual([s_["metadata"]["namespace"] for s_ in secrets], [ns])
        self.user_objects(ns)
        self.kube_apply(objs)
        t0 = time.time()
        self.kube.wait_phase(name, "Succeeded", timeout=300, ns=ns)
        took = time.time() - t0
        # Each container printed pallet-ebs-copy's JSON result.
        pvcs = {}
        for c in pod["spec"]["containers"]:
            out = self.kube.kubectl("logs", "-n", ns, name, "-c", c["name"]).stdout
            res = json.loads(out.strip().splitlines()[-1])
            self.assertNotIn("error", res)
            self.assertGreater(res["blocksFetched"], 0)
            vol = c["volumeDevices"][0]["name"]
            claim = [v for v in pod["spec"]["volumes"] if v["name"] == vol][0][
                "persistentVolumeClaim"]["claimName"]
            pvcs[claim] = res
        # The copies, byte-exact on the PVCs' backing files, in disk order.
        claims = [o["metadata"]["name"] for o in objs if o["kind"] == "PersistentVolumeClaim"]
        self.assertEqual(sorted(claims), sorted(pvcs))
        got = [self.kube.backing_file(c, ns) for c in claims]
        self.assertTrue(same(self.img0, got[0]), "disk 0 differs from the source volume")
        self.assertTrue(same(self.img1, got[1]), "disk 1 differs from the source volume")
        self.assertEqual(self.kube.json("-n", ns, "pod/" + name)["spec"]["nodeName"],
                         "pallet-node-0")
        print("\ncopy Pod in the pallet-ebs-copy rootfs: %d disks in %.1fs" % (
            len(claims), took))
        # The Pod succeeded: the follow-up migrate printed deletes them.
        self.assert_retained_then_cleanup(self.plan, self.sd, self.migrate_run, 2,
                                          until="the copy Pod %s/%s has succeeded" % (ns, name))


if __name__ == "__main__":
    unittest.main()
