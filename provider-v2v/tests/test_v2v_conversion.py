# SPDX-License-Identifier: Apache-2.0
"""Conversion-only plans (plan type "conversion") with the vsphere module:
the VM's facts and domain XML from govmomi's simulated vCenter (real
libvirt ESX driver), the PVCs from tests/kube-endpoint (a local Kubernetes
API, checked with the real kubectl), each PVC's device a file standing in
for the block device.  The fast tests use a stand-in virt-v2v-in-place
(fake-virt-v2v-in-place.sh); ConvertReal runs the real one and boots the
converted disk."""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "kube-endpoint"))
from v2v_harness import V2VE2E, guest_image  # noqa: E402
from kube_fixture import KubeEndpoint  # noqa: E402

FAKE_IN_PLACE = os.path.join(HERE, "fake-virt-v2v-in-place.sh")
IMAGE = guest_image()
NS = "vms"
UUID = "42233d5e-7a1c-4b59-9a7e-0d1e2f3a4b5c"
DS = "forklift.konveyor.io/disk-source"
DISK = "[LocalDS_0] DC0_H0_VM0/disk1.vmdk"


def pvc(name, labels, annotations, size="2Gi"):
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": NS, "labels": labels,
                         "annotations": annotations},
            "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Block",
                     "storageClassName": "local-path",
                     "resources": {"requests": {"storage": size}}}}


class Base(V2VE2E):
    def setUp(self):
        super().setUp()
        self.sim_ = self.sim(image=IMAGE)
        self.moref = None
        self.ep = KubeEndpoint(tmp=os.path.join(self.tmp, "kube"))
        self.ep.apply([
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
            {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
             "metadata": {"name": "local-path"}, "provisioner": "pallet.dev/sparse-file",
             "volumeBindingMode": "Immediate"}])
        cfg = self.ep.config
        self.token = cfg["users"][0]["user"]["token"]
        self.ca = base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
        self.devdir = os.path.join(self.tmp, "devices")
        os.mkdir(self.devdir)

    def tearDown(self):
        self.ep.stop()
        super().tearDown()

    def vm_moref(self):
        if not self.moref:
            r = self.pallet("validate", self.plan({}), "-o", "json")
            m = re.search(r"vmID=(vm-[0-9]+)", r.stdout + r.stderr)
            self.assertTrue(m, "the count finding names the VM's moref: " + r.stdout + r.stderr)
            self.moref = m.group(1)
        return self.moref

    def plan(self, settings=None, secret=None, in_place=FAKE_IN_PLACE):
        st = {"kube-api-url": self.ep.url, "pvc-device-dir": self.devdir,
              "virt-v2v-in-place": in_place}
        st.update(settings or {})
        st = {k: v for k, v in st.items() if v is not None}
        path = self.vsphere_plan(self.sim_, settings=st, plan_extra={"type": "conversion"})
        with open(path) as f:
            text = f.read()
        sec = {"kubeToken": self.token, "kube-ca.crt": self.ca}
        sec.update(secret or {})
        sec = {k: v for k, v in sec.items() if v is not None}
        docs = [json.loads(d) for d in text.split("---\n") if d.strip()]
        for d in docs:
            if d["kind"] == "Secret":
                d["stringData"].update(sec)
        with open(path, "w") as f:
            f.write("".join("---\n" + json.dumps(d) + "\n" for d in docs))
        return path

    def put_pvcs(self, objs):
        self.ep.kubectl("delete", "pvc", "-n", NS, "--all", "--wait=false")
        if objs:
            self.ep.apply(objs)
            for o in objs:
                name = o["metadata"]["name"]
                dev = os.path.join(self.devdir, name)
                if not os.path.lexists(dev):
                    os.symlink(self.ep.backing_file(name, ns=NS), dev)

    def good(self):
        m = self.vm_moref()
        return [pvc("root-disk", {"vmID": m}, {DS: DISK}),
                # decoys: another VM's PVC, an unrelated one
                pvc("other-vm", {"vmID": "vm-999"}, {DS: "[LocalDS_0] X/disk1.vmdk"}),
                pvc("scratch", {}, {})]

    def all_findings(self, r):
        return [f for e in self.findings(r) for f in e.get("findings", [])]

    def types(self, r):
        return [f.get("type") for f in self.all_findings(r)]


class ConversionOnly(Base):
    def test_migrate(self):
        self.put_pvcs(self.good())
        sd, md = os.path.join(self.tmp, "state"), os.path.join(self.tmp, "manifests")
        r = self.pallet("migrate", self.plan(), "--state-dir", sd, "--output-dir", md, "-v",
                        check=0)
        calls = self.v2v_calls()
        self.assertEqual(len(calls), 1, calls)
        argv = calls[0].split()
        self.assertEqual(argv[:3], ["-i", "libvirtxml", "--machine-readable"])
        with open(argv[3]) as f:
            xml = f.read()
        dev = os.path.join(self.devdir, "root-disk")
        self.assertIn('<source file="%s"/>' % dev, xml)
        self.assertNotIn("LocalDS_0", xml, "no datastore path is left for virt-v2v-in-place")
        self.assertIn("<name>DC0_H0_VM0</name>", xml)
        ms = self.manifests(md)
        self.assert_strict(ms)
        docs = []
        for p in ms:
            with open(p) as f:
                docs.append(json.load(f))
        self.assertEqual([d["kind"] for d in docs], ["VirtualMachine"], "no PVC is made")
        vm = docs[0]
        spec = vm["spec"]["template"]["spec"]
        self.assertEqual([v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"]],
                         ["root-disk"])
        self.assertEqual(spec["domain"]["memory"]["guest"], "1024Mi")
        self.assertEqual(spec["domain"]["devices"]["interfaces"][0]["macAddress"],
                         "00:50:56:aa:bb:01")
        # The real kubectl takes it, and the API keeps it.
        self.ep.kubectl("apply", "-f", ms[0])
        got = self.ep.json("-n", NS, "virtualmachine/" + vm["metadata"]["name"])
        self.assertEqual(got["spec"]["template"]["spec"]["volumes"], spec["volumes"])
        text = r.stdout + r.stderr
        self.assertIn("conversion-only plan", text)
        self.assertNotIn(self.token, text + json.dumps(docs))
        # A second run adopts the finished conversion: no second in-place run.
        self.pallet("migrate", self.plan(), "--state-dir", sd, "--output-dir", md, check=0)
        self.assertEqual(len(self.v2v_calls()), 1, "converted once")

    def test_running_vm_left_alone(self):
        self.sim_ = self.sim(image=IMAGE, power="on")
        self.moref = None
        self.put_pvcs(self.good())
        md = os.path.join(self.tmp, "manifests")
        r = self.pallet("migrate", self.plan(), "--state-dir", os.path.join(self.tmp, "state"),
                        "--output-dir", md, "-v", check=0)
        self.assertNotIn("powering the VM off", r.stdout + r.stderr)
        with open(self.manifests(md)[0]) as f:
            vm = json.load(f)
        self.assertEqual(vm["spec"]["runStrategy"], "Always", "follows the source, still on")

    def test_pvc_list_file(self):
        self.put_pvcs(self.good())
        lf = os.path.join(self.tmp, "pvcs.json")
        with open(lf, "w") as f:
            f.write(self.ep.kubectl("get", "pvc", "-n", NS, "-o", "json").stdout)
        plan = self.plan(settings={"kube-api-url": None, "pvc-list-file": lf},
                         secret={"kubeToken": None, "kube-ca.crt": None})
        self.pallet("validate", plan, check=0)

    def test_conversion_fails(self):
        self.put_pvcs(self.good())
        sd = os.path.join(self.tmp, "state")
        r = self.pallet("migrate", self.plan(), "--state-dir", sd, check=1, FAKE_V2V_MODE="fail")
        text = r.stdout + r.stderr
        self.assertIn("virt-v2v-in-place failed (exit 1)", text)
        self.assertIn("virt-v2v-in-place.log", text)

    def assert_finding(self, plan, ftype, *words):
        r = self.pallet("validate", plan, "-o", "json", check=1)
        self.assertIn(ftype, self.types(r), r.stdout + r.stderr)
        msg = [f["message"] for f in self.all_findings(r) if f.get("type") == ftype][0]
        for w in words:
            self.assertIn(w, msg)
        print("\n[%s] %s" % (ftype, msg))

    def test_findings(self):
        m = self.vm_moref()
        cases = [
            ("ConversionPVCCountMismatch", [pvc("scratch", {}, {})],
             ["has 1 disk but 0 PVCs", DISK]),
            ("ConversionPVCAnnotationMissing", [pvc("root-disk", {"vmID": m}, {})],
             ["root-disk", "no " + DS]),
            ("ConversionPVCUnknownDisk", [pvc("root-disk", {"vmUUID": UUID},
                                              {DS: "[LocalDS_0] DC0_H0_VM0/disk9.vmdk"})],
             ["disk9.vmdk", "is not a disk of VM DC0_H0_VM0"]),
            ("ConversionPVCDuplicate", [pvc("a-disk", {"vmID": m}, {DS: DISK}),
                                        pvc("b-disk", {"vmUUID": UUID}, {DS: "disk1.vmdk"})],
             ["a-disk and b-disk"]),
            ("ConversionPVCLabelMissing", [pvc("root-disk", {}, {DS: DISK})],
             ["kubectl label pvc -n vms root-disk vmID=%s" % m]),
        ]
        for ftype, objs, words in cases:
            with self.subTest(ftype):
                self.put_pvcs(objs)
                self.assert_finding(self.plan(), ftype, *words)
        self.put_pvcs(self.good())
        self.assert_finding(self.plan(settings={"kube-api-url": None}),
                            "ConversionPVCSourceMissing", "pvc-list-file")
        self.assert_finding(self.plan(secret={"kubeToken": "wrong-token-0123"}),
                            "KubeCredentialsRejected", "kubeToken")
        self.assert_finding(self.plan(settings={"pvc-device-dir": None}),
                            "ConversionPVCDeviceDirMissing", "pvc-device-dir")
        os.unlink(os.path.join(self.devdir, "root-disk"))
        self.assert_finding(self.plan(), "ConversionPVCDeviceMissing",
                            os.path.join(self.devdir, "root-disk"))


class ConvertReal(Base):
    """The real virt-v2v-in-place on a copy of the test guest as the PVC's
    device; the converted disk then boots under QEMU."""

    def test_real_conversion_boots(self):
        import time
        self.put_pvcs(self.good())
        dev = os.path.join(self.devdir, "root-disk")
        back = os.path.realpath(dev)
        subprocess.run(["cp", "--sparse=always", IMAGE, back], check=True)
        sd, md = os.path.join(self.tmp, "state"), os.path.join(self.tmp, "manifests")
        t0 = time.time()
        r = self.pallet("migrate", self.plan(in_place="virt-v2v-in-place"), "--state-dir", sd,
                        "--output-dir", md, "-v", timeout=1400)
        print("\n[conversion-only] pallet migrate rc %d in %.0f s" % (r.returncode, time.time() - t0))
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-6000:])
        self.assert_strict(self.manifests(md))
        b = subprocess.run([os.path.join(HERE, "..", "..", "tests", "guest", "boot-check.sh"),
                            back, "--timeout", "400"], capture_output=True, text=True, timeout=500)
        print(b.stdout.strip())
        self.assertEqual(b.returncode, 0, b.stdout + b.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
