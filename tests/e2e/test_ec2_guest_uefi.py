# SPDX-License-Identifier: Apache-2.0
"""`pallet migrate` of a real EC2 Nitro-shaped guest, copy mode, against the
local endpoint: UEFI/GPT with an ESP, LVM root on XFS, separate /boot, swap,
a second volume mounted as /dev/nvme1n1p1, fstab and GRUB naming Nitro
devices, an initramfs without virtio (tests/guest/build-guest.sh --layout
uefi-lvm, cached).  One conversion: the device-name fix-up's rewrites are
in the state, virt-v2v-in-place converts, inspection says UEFI, the VM
manifest boots EFI, and both converted disks boot under QEMU (OVMF,
virtio-blk, virtio-net) to a login prompt with /data mounted.  Prints
"stage NAME: SECONDS s" lines."""

import glob
import json
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from ec2_harness import EC2E2E  # noqa: E402

GUEST = os.path.join(HERE, "..", "guest")
VM = "i-0ef1000000000000a"


def stage(name, t0):
    print("stage %s: %.0f s" % (name, time.time() - t0), flush=True)


class UefiLvmGuest(EC2E2E):

    def test_migrate_convert_boot(self):
        t = time.time()
        out = subprocess.run([os.path.join(GUEST, "build-guest.sh"), "--layout", "uefi-lvm"],
                             capture_output=True, text=True, timeout=1800)
        self.assertEqual(out.returncode, 0, out.stderr[-3000:])
        disk0, disk1 = out.stdout.split()
        stage("guest-build", t)

        self.start({"instances": [{
            "id": VM, "name": "nitro-uefi", "type": "m5.large", "az": "us-east-1a",
            "state": "running", "bootMode": "uefi",
            "volumes": [{"device": "/dev/xvda", "sizeGiB": 2, "type": "gp3", "image": disk0},
                        {"device": "/dev/sdf", "sizeGiB": 1, "type": "gp3", "image": disk1}]}]})
        disks = os.path.join(self.tmp, "disks")
        plan = self.write_plan([VM], settings={"transfer-mode": "copy", "copy-target-dir": disks,
                                               "force-tcg": "true"})
        sd = os.path.join(self.tmp, "state")
        t = time.time()
        r = self.pallet("migrate", plan, "--state-dir", sd, check=0, timeout=2400)
        stage("migrate", t)

        state = self.vm_state(sd)
        rw = state.get("deviceNameRewrites")
        self.assertTrue(rw, "no deviceNameRewrites in the state:\n" + r.stderr[-3000:])
        pairs = {(x["file"], x["from"]) for x in rw}
        for want in [("/etc/fstab", "/dev/nvme0n1p2"), ("/etc/fstab", "/dev/nvme0n1p1"),
                     ("/etc/fstab", "/dev/nvme0n1p3"), ("/etc/fstab", "/dev/nvme1n1p1"),
                     ("/etc/default/grub", "/dev/nvme0n1p3"),
                     ("/boot/grub/grub.cfg", "/dev/nvme0n1p3"),
                     ("/etc/initramfs-tools/conf.d/resume", "/dev/nvme0n1p3")]:
            self.assertIn(want, pairs, rw)
        for x in rw:
            self.assertRegex(x["to"], r"^(UUID|PARTUUID|LABEL)=\S+$", x)
        self.assertEqual(state["conversion"], "converted with virt-v2v-in-place")
        self.assertEqual(state["inspection"]["firmware"], "uefi", state["inspection"])
        self.assertTrue(state["inspection"]["esp"], state["inspection"])
        self.assertTrue(state["verification"]["ok"], state["verification"])
        vm = self.vm_manifest(sd)
        fw = vm["spec"]["template"]["spec"]["domain"]["firmware"]["bootloader"]
        self.assertEqual(fw, {"efi": {"secureBoot": False}}, fw)

        d0 = os.path.join(disks, "nitro-uefi-disk-0.raw")
        d1 = os.path.join(disks, "nitro-uefi-disk-1.raw")
        log = os.path.join(self.tmp, "serial.log")
        t = time.time()
        b = subprocess.run([os.path.join(GUEST, "boot-check.sh"), d0, "--uefi", "--disk", d1,
                            "--expect", "login:", "--timeout", "600", "--log", log],
                           capture_output=True, text=True, timeout=700)
        stage("boot", t)
        self.assertEqual(b.returncode, 0, b.stdout + b.stderr)
        with open(log, errors="replace") as f:
            serial = f.read()
        self.assertRegex(serial, r"PALLET-BOOT-OK kernel=\S+ root=/dev/mapper/vg0-root "
                                 r"data=/dev/vdb1", serial[-2000:])

    def vm_state(self, sd):
        for path in glob.glob(os.path.join(sd, "**", "*.json"), recursive=True):
            try:
                with open(path) as f:
                    doc = json.load(f)
            except (OSError, ValueError):
                continue
            found = self.find_key(doc, "deviceNameRewrites") or self.find_key(doc, "inspection")
            if found is not None:
                return found
        self.fail("no VM state with deviceNameRewrites or inspection under " + sd)

    def find_key(self, doc, key):
        if isinstance(doc, dict):
            if key in doc:
                return doc
            for v in doc.values():
                f = self.find_key(v, key)
                if f is not None:
                    return f
        elif isinstance(doc, list):
            for v in doc:
                f = self.find_key(v, key)
                if f is not None:
                    return f
        return None

    def vm_manifest(self, sd):
        for path in self.manifests(sd):
            try:
                with open(path) as f:
                    doc = json.load(f)
            except (OSError, ValueError):
                continue
            if isinstance(doc, dict) and doc.get("kind") == "VirtualMachine":
                return doc
        self.fail("no VirtualMachine manifest under " + sd)


if __name__ == "__main__":
    unittest.main()
