# SPDX-License-Identifier: Apache-2.0
"""The conversion Pod (convert-pod.c, through `pallet-convert-tool pod`)
applied with kubectl to pallet-kube-endpoint and run once, under TCG, in
the pallet-convert image's root filesystem (packaging/images/
build-rootfs.sh): virt-v2v-in-place rewrites the demo guest on the PVC's
backing file at /dev/block0, as the qemu user with no capabilities.  The
result passes pallet_convert_verify (pallet-convert-tool verify) and boots
under QEMU on virtio (tests/guest/boot-check.sh).  Slow: one appliance
build, one conversion, one verification, one boot."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from kube_fixture import KubeEndpoint, block_pvc, storage_class, wait_until  # noqa: E402

TOP = os.path.normpath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("PALLET_BUILD_DIR", os.path.join(TOP, "build"))
TOOL = os.path.join(BUILD, "provider-ec2", "convert", "pallet-convert-tool")
IMAGE = "localhost/pallet-convert:test"
TCG = {"LIBGUESTFS_BACKEND": "direct", "LIBGUESTFS_BACKEND_SETTINGS": "force_tcg"}


def run(argv, timeout, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s%s" % (" ".join(argv), r.returncode,
                                                        r.stdout, r.stderr[-4000:]))
    return r.stdout


class ConvertPod(unittest.TestCase):
    def test_conversion_pod_converts_and_boots(self):
        root = run([os.path.join(TOP, "packaging", "images", "build-rootfs.sh"),
                    "pallet-convert", "--build-dir", BUILD], 1800).strip()
        guest = run([os.path.join(TOP, "tests", "guest", "build-guest.sh")], 3600).strip()
        tmp = tempfile.mkdtemp(prefix="pallet-kube-convert-")
        self.addCleanup(shutil.rmtree, tmp, True)     # runs after kube.stop
        kube = KubeEndpoint(("--image", "localhost/pallet-convert=" + root), tmp=tmp)
        self.addCleanup(kube.stop)
        size = os.path.getsize(guest)
        kube.apply([storage_class(), block_pvc("vm-disk-0", str(size))])
        wait_until(lambda: kube.json("pvc/vm-disk-0")["status"].get("phase") == "Bound",
                   what="the PVC to bind")
        disk = kube.backing_file("vm-disk-0")
        # The disk as a copy or zero-copy transfer would leave it.
        run(["cp", "--sparse=always", guest, disk], 600)
        manifest = json.loads(run([TOOL, "pod", "-", "--name", "convert-vm", "--namespace",
                                   "default", "--image", IMAGE, "--tcg", "vm-disk-0"], 60))
        ctr = manifest["spec"]["containers"][0]
        self.assertEqual(ctr["command"][0], "virt-v2v-in-place")
        self.assertEqual(ctr["volumeDevices"], [{"name": "disk0", "devicePath": "/dev/block0"}])
        kube.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
        t0 = time.time()
        wait_until(lambda: kube.json("pod/convert-vm")["status"].get("phase") in
                   ("Succeeded", "Failed"), timeout=3000, what="the conversion Pod to end")
        took = time.time() - t0
        pod = kube.json("pod/convert-vm")
        term = pod["status"]["containerStatuses"][0]["state"].get("terminated", {})
        logs = kube.kubectl("logs", "convert-vm", "--tail=40", ok=False).stdout
        self.assertEqual(term.get("exitCode"), 0, "the conversion Pod failed: %s\n%s"
                         % (term, logs))
        self.assertEqual(pod["status"]["phase"], "Succeeded")
        # It ran as the Pod says: the qemu user, not root.
        self.assertEqual(pod["spec"]["securityContext"]["runAsUser"], 107)
        verify = json.loads(run([TOOL, "verify", "--tcg", "--format", "raw", disk], 1800,
                                env=dict(os.environ, **TCG)))
        boot = run([os.path.join(TOP, "tests", "guest", "boot-check.sh"), disk,
                    "--bus", "virtio", "--timeout", "600"], 900)
        print("\nconversion Pod in the pallet-convert rootfs: %.0fs; verify %s; boot: %s"
              % (took, json.dumps(verify)[:200], boot.strip()[:120]))


if __name__ == "__main__":
    unittest.main()
