# SPDX-License-Identifier: Apache-2.0
"""End to end: conversion-only plans (plan type "conversion") with
provider-ec2: the PVCs were made by someone else; the provider finds them
through the (local) Kubernetes API, creates nothing in AWS and emits the
conversion Pod and a VirtualMachine on the existing PVCs."""

import json
import os
import re
import unittest

from ec2_harness import EC2E2E, MUTATING

IID = "i-0c0e000000000000a"
VOLS = ["vol-0c0e0000000000a01", "vol-0c0e0000000000a02", "vol-0c0e0000000000a03"]
TOKEN = "pallet-kube-token-7f3a9c0e5b1d"
NS = "vms"


def seed(pvcs, tokens=(TOKEN,)):
    return {"instances": [{
        "id": IID, "name": "conv-a", "type": "m5.large", "az": "us-east-1a",
        "state": "running",
        "volumes": [{"id": VOLS[0], "device": "/dev/xvda", "sizeGiB": 8, "type": "gp3"},
                    {"id": VOLS[1], "device": "/dev/sdf", "sizeGiB": 4, "type": "io2",
                     "iops": 1000},
                    {"id": VOLS[2], "device": "/dev/sdg", "sizeGiB": 2, "type": "gp3",
                     "encrypted": True}]}],
        "kube": {"tokens": list(tokens), "pvcs": pvcs}}


def pvc(name, labels, annotations, mode="Block"):
    return {"metadata": {"name": name, "namespace": NS, "labels": labels,
                         "annotations": annotations},
            "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": mode,
                     "storageClassName": "ceph-rbd",
                     "resources": {"requests": {"storage": "8Gi"}}}}


DS = "forklift.konveyor.io/disk-source"
DI = "forklift.konveyor.io/disk-index"
# Names sort against disk order; one is found by vmUUID; one by its
# disk-index annotation (its disk-source is an importer's own name); two
# decoys: no disk-source annotation, and another VM's disk.
GOOD = [pvc("zz-root", {"vmID": IID}, {DS: VOLS[0]}),
        pvc("aa-data", {"vmUUID": IID}, {DS: VOLS[1]}),
        pvc("mm-logs", {"vmID": IID}, {DS: "imported/disk-2.raw", DI: "2"}),
        pvc("scratch", {"vmID": IID}, {}),
        pvc("other-vm-disk", {"vmID": "i-0c0e0000000000bbb"}, {DS: "vol-0c0e0000000000bb1"})]
ORDER = ["zz-root", "aa-data", "mm-logs"]


class ConversionOnly(EC2E2E):
    def plan(self, settings=None, secret_extra=None, skip_conversion=False):
        settings = dict({"kube-api-url": self.ep.url}, **(settings or {}))
        settings = {k: v for k, v in settings.items() if v is not None}
        secret = {"kubeToken": TOKEN}
        secret.update(secret_extra or {})
        secret = {k: v for k, v in secret.items() if v is not None}
        path = self.write_plan([IID], settings=settings, secret_extra=secret,
                               skip_conversion=skip_conversion)
        with open(path) as f:
            text = f.read()
        text2 = text.replace('"type": "cold"', '"type": "conversion"')
        self.assertNotEqual(text, text2)
        with open(path, "w") as f:
            f.write(text2)
        return path

    def all_text(self, run, state_dir=None):
        text = run.stdout + run.stderr
        for root, _, files in os.walk(state_dir or self.tmp):
            for f in files:
                if f == "plan.yaml":
                    continue          # the input itself carries the Secret
                with open(os.path.join(root, f), errors="replace") as fh:
                    text += fh.read()
        return text

    def load(self, paths):
        out = []
        for p in paths:
            with open(p) as f:
                out.append((os.path.basename(p), json.load(f)))
        return out

    def test_conversion_only_success(self):
        self.start(seed(GOOD))
        sd = os.path.join(self.tmp, "state")
        r = self.pallet("migrate", self.plan(), "--state-dir", sd, check=0)
        paths = self.manifests(sd)
        self.assert_schema_valid(paths)
        ms = self.load(paths)
        kinds = [m["kind"] for _, m in ms]
        print("\n[conversion-only] manifests: %s" % [n for n, _ in ms])
        self.assertNotIn("PersistentVolume", kinds, "no PV for existing PVCs")
        self.assertNotIn("PersistentVolumeClaim", kinds, "no PVC for existing PVCs")
        self.assertEqual(kinds.count("Pod"), 1)
        self.assertEqual(kinds.count("VirtualMachine"), 1)
        self.assertLess(kinds.index("Pod"), kinds.index("VirtualMachine"),
                        "the conversion Pod is applied before the VM")
        names = [n for n, _ in ms]
        self.assertEqual(names, sorted(names), "file names carry the apply order")
        vm = [m for _, m in ms if m["kind"] == "VirtualMachine"][0]
        claims = [v["persistentVolumeClaim"]["claimName"]
                  for v in vm["spec"]["template"]["spec"]["volumes"]]
        self.assertEqual(claims, ORDER, "the VM uses the existing PVCs in disk order")
        disks = vm["spec"]["template"]["spec"]["domain"]["devices"]["disks"]
        self.assertEqual([d.get("serial") for d in disks], VOLS)
        self.assertEqual(disks[0].get("bootOrder"), 1)
        # Not booted while virt-v2v rewrites its disks; the wanted state is kept.
        self.assertEqual(vm["spec"]["runStrategy"], "Halted")
        self.assertEqual(vm["metadata"]["annotations"][
            "pallet.dev/target-run-strategy"], "Always")
        self.assertNotIn("running", vm["spec"])
        # The stage contract the host applies in order (docs/ops/build_vm.md).
        self.assertEqual([m["metadata"]["labels"]["pallet.dev/stage"] for _, m in ms],
                         ["convert", "vm"])
        pod = [m for _, m in ms if m["kind"] == "Pod"][0]
        ctr = pod["spec"]["containers"][0]
        byname = {v["name"]: v["persistentVolumeClaim"]["claimName"]
                  for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v}
        devs = [(d["devicePath"], byname[d["name"]]) for d in ctr["volumeDevices"]]
        self.assertEqual(devs, [("/dev/block%d" % i, c) for i, c in enumerate(ORDER)],
                         "the conversion Pod sees /dev/block0.. in disk order")
        self.assertEqual(pod["metadata"]["namespace"], NS)
        self.assertEqual(pod["spec"]["nodeSelector"]["topology.kubernetes.io/zone"],
                         "us-east-1b")
        c = self.counts()
        mut = {a: n for a, n in c.items() if a in MUTATING}
        print("[conversion-only] AWS calls: %s" % dict(sorted(c.items())))
        print("[conversion-only] mutating AWS calls: %s (total %d)" % (mut, sum(mut.values())))
        self.assertEqual(sum(mut.values()), 0, "a conversion-only plan changes nothing in AWS")
        self.assertGreaterEqual(c["ListPersistentVolumeClaims"], 2, "vmID and vmUUID lists")
        self.assertEqual(self.ep.state()["instances"][0]["state"], "running",
                         "the source instance is left alone")
        self.assertNotIn(TOKEN, self.all_text(r, sd), "the token is never written or printed")
        doc = self.vm_doc(sd)
        self.assertEqual(doc["status"], "succeeded")
        for step in ("prepare_source", "transfer"):
            self.assertTrue(doc["results"][step]["skipped"], "%s recorded as skipped" % step)
            self.assertIn("conversion-only", doc["results"][step]["reason"])
        st = doc["state"]
        self.assertTrue(st["prepareSource"].startswith("skipped"))
        self.assertTrue(st["transfer"].startswith("skipped"))
        self.assertTrue(st["conversion"].startswith("not run here"))
        self.assertTrue(st["cleaned"])
        self.assertNotIn("stopRequested", st)
        self.assertEqual([v["pvcName"] for v in sorted(st["volumes"], key=lambda v: v["diskIndex"])],
                         ORDER)

    def vm_doc(self, sd):
        docs = []
        for root, _, files in os.walk(sd):
            if "manifests" in root:
                continue
            for f in files:
                if f.endswith(".json") and f != "plan.json":
                    with open(os.path.join(root, f)) as fh:
                        d = json.load(fh)
                    if isinstance(d, dict) and "completed" in d:
                        docs.append(d)
        self.assertEqual(len(docs), 1, "one VM state document")
        return docs[0]

    def test_pvc_list_file(self):
        self.start(seed([]))
        lf = os.path.join(self.tmp, "pvcs.json")
        with open(lf, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "List", "items": GOOD}, f)
        sd = os.path.join(self.tmp, "state")
        plan = self.plan(settings={"kube-api-url": None, "pvc-list-file": lf},
                         secret_extra={"kubeToken": None})
        self.pallet("migrate", plan, "--state-dir", sd, check=0)
        vm = [m for _, m in self.load(self.manifests(sd)) if m["kind"] == "VirtualMachine"][0]
        self.assertEqual([v["persistentVolumeClaim"]["claimName"]
                          for v in vm["spec"]["template"]["spec"]["volumes"]], ORDER)
        self.assertEqual(self.counts().get("ListPersistentVolumeClaims", 0), 0,
                         "offline: no Kubernetes API call")

    def test_count_mismatch(self):
        self.start(seed(GOOD[:2] + GOOD[3:]))
        r = self.pallet("validate", self.plan(), "-o", "json", check=1)
        text = r.stdout + r.stderr
        print("\n[count mismatch] %s" % [l for l in text.splitlines()
                                          if "ConversionPVCCountMismatch" in l][:1])
        self.assertIn("ConversionPVCCountMismatch", text)
        self.assertIn("has 3 EBS volumes", text)
        self.assertIn("but 2 PVCs", text)
        self.assertIn("zz-root, aa-data", text)

    def test_wrong_token(self):
        self.start(seed(GOOD))
        wrong = "wrong-kube-token-c0ffee1234"
        sd = os.path.join(self.tmp, "state")
        r = self.pallet("migrate", self.plan(secret_extra={"kubeToken": wrong}),
                        "--state-dir", sd, "--debug", check=1)
        text = r.stdout + r.stderr
        self.assertIn("KubeCredentialsRejected", text)
        self.assertIn("kubeToken", text, "the error names the setting")
        self.assertIn("HTTP 401", text)
        self.assertNotIn(wrong, self.all_text(r, sd), "the token is never written or printed")
        self.assertEqual(sum(n for a, n in self.counts().items() if a in MUTATING), 0)

    def test_missing_token(self):
        self.start(seed(GOOD))
        r = self.pallet("validate", self.plan(secret_extra={"kubeToken": None}), check=1)
        text = r.stdout + r.stderr
        self.assertIn("KubeCredentialsRejected", text)
        self.assertIn("no token was sent; set the Secret's kubeToken", text)

    def test_no_pvc_source(self):
        self.start(seed(GOOD))
        r = self.pallet("validate", self.plan(settings={"kube-api-url": None}), check=1)
        self.assertIn("ConversionPVCSourceMissing", r.stdout + r.stderr)
        self.assertIn("kube-api-url", r.stdout + r.stderr)

    def test_filesystem_pvc_needs_block(self):
        bad = list(GOOD)
        bad[1] = pvc("aa-data", {"vmUUID": IID}, {DS: VOLS[1]}, mode="Filesystem")
        self.start(seed(bad))
        r = self.pallet("validate", self.plan(), check=1)
        self.assertIn("ConversionPVCNotBlock", r.stdout + r.stderr)
        # Without conversion the VM can use a Filesystem PVC.
        self.pallet("validate", self.plan(skip_conversion=True), check=0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
