# SPDX-License-Identifier: Apache-2.0
"""The one slow v2v test: `pallet migrate` from the simulated vCenter with
the real virt-v2v (-i libvirt -ic vpx://… over HTTPS, nbdkit-curl,
-o kubevirt), the VirtualMachine built from virt-v2v's YAML and checked
with pallet-lint-manifests --strict, and the converted disk booted under QEMU to the
guest's boot marker (tests/guest/boot-check.sh)."""

import glob
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from v2v_harness import SRC, V2VE2E, guest_image  # noqa: E402


class VCenterConvertBoot(V2VE2E):
    def test_migrate_convert_boot(self):
        s = self.sim(image=guest_image())
        plan = self.vsphere_plan(s, settings={"virt-v2v": "virt-v2v", "v2v-timeout": "1200"})
        t0 = time.time()
        r = self.pallet("migrate", plan, "--state-dir", os.path.join(self.tmp, "state"),
                        "--output-dir", os.path.join(self.tmp, "manifests"), "-v", timeout=1400)
        print("\n[v2v] pallet migrate rc %d in %.0f s" % (r.returncode, time.time() - t0))
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-6000:])
        ms = self.manifests(os.path.join(self.tmp, "manifests"))
        self.assert_strict(ms)
        with open([m for m in ms if "VirtualMachine" in m][0]) as f:
            vm = json.load(f)
        spec = vm["spec"]["template"]["spec"]
        self.assertEqual(spec["domain"]["devices"]["disks"][0]["disk"]["bus"], "virtio")
        self.assertEqual(spec["domain"]["memory"]["guest"], "1024Mi")
        self.assertIn("bios", spec["domain"]["firmware"]["bootloader"])
        with open([m for m in ms if "PersistentVolumeClaim" in m][0]) as f:
            pvc = json.load(f)
        disk = pvc["metadata"]["annotations"]["pallet.konveyor.io/converted-disk"]
        self.assertEqual(pvc["metadata"]["annotations"]["forklift.konveyor.io/disk-source"],
                         "[LocalDS_0] DC0_H0_VM0/disk1.vmdk")
        self.assertTrue(os.path.exists(disk), disk)
        self.assertEqual(glob.glob(os.path.join(self.out, "*", ".pallet-v2v-pw-*")), [])
        # The disk virt-v2v wrote boots on virtio, as KubeVirt would give it.
        b = subprocess.run([os.path.join(SRC, "tests", "guest", "boot-check.sh"), disk, "--timeout", "400"],
                           capture_output=True, text=True, timeout=500)
        print(b.stdout.strip())
        self.assertEqual(b.returncode, 0, b.stdout + b.stderr)


if __name__ == "__main__":
    unittest.main()
