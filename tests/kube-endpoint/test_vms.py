# SPDX-License-Identifier: Apache-2.0
"""VirtualMachines run by pallet-kube-endpoint (kube_vms.py), checked with
the real kubectl: VMI and virt-launcher Pod as KubeVirt makes them, QEMU
on the PVCs' backing files, the serial console as the guest-console-log
container's log, stop/delete/shutdown leaving no QEMU behind, and
ebs.csi.aws.com PVs backed by a real pallet-endpoint.py's volumes.

VmFast boots nothing (blank sparse disks: QEMU runs, the guest does not);
VmBoot (slow) boots the demo guest once under TCG."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "endpoint"))
from kube_fixture import KubeEndpoint, block_pvc, pod, storage_class, wait_until  # noqa: E402

TOP = os.path.normpath(os.path.join(HERE, "..", ".."))
MIB = 1 << 20


def qemu_procs(tag):
    """PIDs of live qemu-system processes whose command line names tag
    (the endpoint's state directory): a process scan, not our bookkeeping."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/stat" % d) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if argv and argv[0].endswith(b"qemu-system-x86_64") and tag.encode() in b" ".join(
                argv) and state != "Z":
            out.append(int(d))
    return out


def vm(name, volumes, disks, strategy="Always", domain=None):
    dom = {"memory": {"guest": "128Mi"}, "devices": {"disks": disks}}
    dom.update(domain or {})
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": name},
            "spec": {"runStrategy": strategy, "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"domain": dom, "volumes": volumes}}}}


def pvc_vol(name, claim):
    return {"name": name, "persistentVolumeClaim": {"claimName": claim}}


def disk(name, bus="virtio", boot=None):
    d = {"name": name, "disk": {"bus": bus}}
    if boot:
        d["bootOrder"] = boot
    return d


class _VmBase(unittest.TestCase):
    ARGS = ()

    @classmethod
    def setUpClass(cls):
        cls.ep = KubeEndpoint(cls.ARGS)
        cls.ep.apply([storage_class()])

    @classmethod
    def tearDownClass(cls):
        rc, err = cls.ep.stop()
        left = qemu_procs(cls.ep.state)
        for p in left:
            os.kill(p, signal.SIGKILL)
        assert rc == 0, "the endpoint exited %s: %s" % (rc, err)
        assert not left, "QEMU survived the endpoint: %s" % left

    def k(self, *a, **kw):
        return self.ep.kubectl(*a, **kw)

    def vmi(self, name):
        p = self.k("get", "-o", "json", "vmi/" + name, ok=False)
        return json.loads(p.stdout) if p.returncode == 0 else None

    def launcher(self, name):
        items = self.ep.json("pods", "-l", "kubevirt.io=virt-launcher,vm.kubevirt.io/name="
                             + name)["items"]
        return items[0] if len(items) == 1 else None

    def events(self, name):
        return [(e["reason"], e["message"]) for e in self.ep.json(
            "events", "--field-selector", "involvedObject.name=" + name)["items"]]

    def cond(self, obj, ctype):
        return next((c for c in (obj.get("status") or {}).get("conditions") or []
                     if c["type"] == ctype), None)

    def wait_ready(self, name, timeout=60):
        wait_until(lambda: self.vmi(name), what="VMI %s to exist" % name)
        self.k("wait", "--for=condition=Ready", "vmi/" + name, "--timeout=%ds" % timeout,
               timeout=timeout + 30)
        return self.vmi(name)

    def halt_and_check_gone(self, name):
        pod_name = self.launcher(name)["metadata"]["name"]
        self.k("patch", "vm/" + name, "--type", "merge", "-p",
               '{"spec":{"runStrategy":"Halted"}}')
        self.k("wait", "--for=delete", "vmi/" + name, "pod/" + pod_name, "--timeout=60s",
               timeout=90)
        wait_until(lambda: self.ep.json("vm/" + name)["status"].get("printableStatus") ==
                   "Stopped", what="the VM to show Stopped")
        self.assertEqual(qemu_procs(self.ep.state), [])


class VmFast(_VmBase):
    """No guest boots: blank sparse disks."""

    @classmethod
    def setUpClass(cls):
        from endpoint_fixture import Endpoint, make_image
        cls.tmp = tempfile.mkdtemp(prefix="pallet-vm-test-")
        cls.image = make_image(os.path.join(cls.tmp, "seed.raw"), 8 * MIB, [
            (0, os.urandom(4096)), (3 * MIB + 7, b"pallet-csi" * 1000)])
        cls.aws = Endpoint(("--snapshot-delay", "0.2", "--volume-delay", "0.1"), {"volumes": [
            {"id": "vol-0c5100000000000a1", "account": "111111111111", "region": "us-east-1",
             "az": "us-east-1a", "sizeGiB": 1, "type": "gp3", "image": cls.image}]}, cls.tmp)
        cls.ARGS = ("--image", "debian=host", "--csi-ebs", cls.aws.url,
                    "--vm-max-memory", "256")
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.aws.stop()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_01_unsupported_volume_fails_the_vmi(self):
        self.ep.apply([vm("cinit", [pvc_vol("root", "nothing"), {
            "name": "cloudinit", "cloudInitNoCloud": {"userData": "#cloud-config\n"}}],
            [disk("root"), disk("cloudinit")])])
        wait_until(lambda: (self.vmi("cinit") or {}).get("status", {}).get("phase") == "Failed",
                   what="the VMI to fail")
        v = self.vmi("cinit")
        sync = self.cond(v, "Synchronized")
        self.assertEqual(sync["status"], "False")
        self.assertIn("cloudInitNoCloud", sync["message"])
        self.assertTrue(any("cloudInitNoCloud" in m for _, m in self.events("cinit")))
        self.assertIsNone(self.launcher("cinit"))
        # Not retried: the spec cannot run until it is edited.
        time.sleep(2)
        self.assertEqual(self.vmi("cinit")["metadata"]["uid"], v["metadata"]["uid"])
        st = self.ep.json("vm/cinit")["status"]
        self.assertEqual(st["printableStatus"], "CrashLoopBackOff")
        self.assertIn("cloudInitNoCloud", self.cond({"status": st}, "Failure")["message"])
        self.assertEqual(qemu_procs(self.ep.state), [])
        self.k("delete", "vm/cinit")
        self.k("wait", "--for=delete", "vmi/cinit", "--timeout=30s", ok=False)
        self.assertIsNone(self.vmi("cinit"))
        # An unknown runStrategy is named, and nothing runs.
        self.ep.apply([vm("odd", [], [], strategy="Sometimes")])
        wait_until(lambda: self.cond(self.ep.json("vm/odd"), "Failure"),
                   what="a Failure condition")
        self.assertIn("'Sometimes'", self.cond(self.ep.json("vm/odd"), "Failure")["message"])
        self.assertIsNone(self.vmi("odd"))
        self.k("delete", "vm/odd")

    def test_02_missing_claim_waits_then_runs(self):
        self.ep.apply([vm("late", [pvc_vol("root", "late-disk")], [disk("root", boot=1)],
                          domain={"cpu": {"cores": 2}})])
        wait_until(lambda: self.cond(self.vmi("late") or {}, "Synchronized"),
                   what="the VMI to report the claim")
        v = self.vmi("late")
        self.assertEqual(v["status"]["phase"], "Pending")
        self.assertIn("late-disk", self.cond(v, "Synchronized")["message"])
        self.assertIn(("FailedPvcNotFound", "PVC default/late-disk does not exist, waiting "
                       "for it to appear"), self.events("late"))
        wait_until(lambda: self.ep.json("vm/late")["status"].get("printableStatus") ==
                   "ErrorPvcNotFound", what="VM status ErrorPvcNotFound")
        self.assertEqual(self.vmi("late")["metadata"]["ownerReferences"][0]["kind"],
                         "VirtualMachine")
        self.ep.apply([block_pvc("late-disk", "64Mi")])
        v = self.wait_ready("late")
        self.assertEqual(v["status"]["phase"], "Running")
        self.assertEqual(v["status"]["nodeName"], "pallet-node-0")
        self.assertIsNone(self.cond(v, "Synchronized"))
        self.assertEqual(v["metadata"]["labels"]["kubevirt.io/vm"], "late")
        p = self.launcher("late")
        self.assertRegex(p["metadata"]["name"], r"^virt-launcher-late-[a-z0-9]{5}$")
        self.assertEqual(p["metadata"]["labels"]["kubevirt.io"], "virt-launcher")
        self.assertEqual(p["metadata"]["labels"]["kubevirt.io/created-by"],
                         v["metadata"]["uid"])
        self.assertEqual([c["name"] for c in p["spec"]["containers"]],
                         ["compute", "guest-console-log"])
        self.assertEqual(p["status"]["phase"], "Running")
        self.assertEqual(list(v["status"]["activePods"]), [p["metadata"]["uid"]])
        self.assertEqual(len(qemu_procs(self.ep.state)), 1)
        # The domain runs, the blank disk boots nothing: no agent answers.
        time.sleep(2)
        self.assertIsNone(self.cond(self.vmi("late"), "AgentConnected"))
        compute = self.k("logs", p["metadata"]["name"], "-c", "compute").stdout
        self.assertIn("-smp 2,sockets=1,cores=2,threads=1", compute)
        self.assertIn("virtio-blk-pci,drive=drive-root,id=ua-root,bootindex=1", compute)
        self.assertIn("restrict=on", compute)
        st = self.ep.json("vm/late")["status"]
        self.assertEqual((st["printableStatus"], st["ready"], st["created"]),
                         ("Running", True, True))
        self.assertIn("Running", self.k("get", "vm/late").stdout)
        # Deleting the VMI of an Always VM: QEMU stops, a new VMI starts.
        old = v["metadata"]["uid"]
        self.k("delete", "vmi/late")
        wait_until(lambda: (self.vmi("late") or {"metadata": {"uid": old}})["metadata"][
            "uid"] != old, what="a new VMI")
        self.wait_ready("late")
        self.assertEqual(len(qemu_procs(self.ep.state)), 1)
        self.halt_and_check_gone("late")
        self.k("delete", "vm/late", "pvc/late-disk")

    def test_03_firmware_buses_memory_cap(self):
        fs = block_pvc("fw-c", "16Mi")
        fs["spec"]["volumeMode"] = "Filesystem"
        self.ep.apply([block_pvc("fw-a", "16Mi"), block_pvc("fw-b", "16Mi"), fs])
        wait_until(lambda: self.ep.json("pvc/fw-c")["status"].get("phase") == "Bound",
                   what="the claim to bind")
        # KubeVirt's Filesystem PVC disk is disk.img inside the volume.
        img = os.path.join(self.ep.backing_file("fw-c"), "disk.img")
        with open(img, "wb") as f:
            f.truncate(8 * MIB)
        disks = [disk("a", "sata", boot=1), disk("b", "scsi"), disk("c")]
        v = vm("fw", [pvc_vol("a", "fw-a"), {"name": "b", "dataVolume": {"name": "fw-b"}},
                      pvc_vol("c", "fw-c")], disks, domain={
            "memory": {"guest": "4Gi"},
            "firmware": {"bootloader": {"efi": {"secureBoot": False}}},
            "devices": {"disks": disks, "interfaces": [{"name": "n1", "model": "e1000"}]}})
        del v["spec"]["runStrategy"]
        v["spec"]["running"] = True                 # the legacy field
        self.ep.apply([v])
        self.wait_ready("fw")
        compute = self.k("logs", self.launcher("fw")["metadata"]["name"], "-c",
                         "compute").stdout
        for want in ("OVMF_CODE_4M.fd", "-machine q35", "ide-hd,bus=ide.0,drive=drive-a",
                     "virtio-scsi-pci", "scsi-hd,bus=scsi0.0,drive=drive-b", " -m 256 ",
                     "file=%s,format=raw" % img, "virtio-blk-pci,drive=drive-c",
                     "e1000,netdev=net0", "name=org.qemu.guest_agent.0"):
            self.assertIn(want, compute)
        self.assertTrue(any(r == "MemoryCapped" for r, _ in self.events("fw")))
        self.halt_and_check_gone("fw")
        self.k("delete", "vm/fw", "pvc/fw-a", "pvc/fw-b", "pvc/fw-c")

    def test_06_qemu_exit_restarts_always(self):
        self.ep.apply([block_pvc("crash-disk", "16Mi"),
                       vm("crash", [pvc_vol("root", "crash-disk")], [disk("root")])])
        v = self.wait_ready("crash")
        self.assertRegex(self.k("get", "vmi/crash").stdout,
                         r"crash\s+\S+\s+Running\s+127.0.0.1\s+pallet-node-0\s+True")
        pod_name = self.launcher("crash")["metadata"]["name"]
        [pid] = qemu_procs(self.ep.state)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: any(r == "Stopped" and "QEMU exited with code 137" in m
                               for r, m in self.events("crash")), what="a Stopped event")
        # Always: a new VMI (after the back-off), the old one and its Pod gone.
        wait_until(lambda: (self.vmi("crash") or v)["metadata"]["uid"] != v["metadata"]["uid"],
                   timeout=30, what="a new VMI")
        self.wait_ready("crash")
        self.assertNotEqual(self.launcher("crash")["metadata"]["name"], pod_name)
        self.assertNotEqual(qemu_procs(self.ep.state), [pid])
        # Deleting the launcher Pod kills the domain too.
        v = self.vmi("crash")
        [pid] = qemu_procs(self.ep.state)
        self.k("delete", "pod/" + self.launcher("crash")["metadata"]["name"])
        wait_until(lambda: pid not in qemu_procs(self.ep.state), what="QEMU to stop")
        wait_until(lambda: (self.vmi("crash") or v)["metadata"]["uid"] != v["metadata"]["uid"],
                   timeout=30, what="a new VMI")
        self.wait_ready("crash")
        self.halt_and_check_gone("crash")
        self.k("delete", "vm/crash", "pvc/crash-disk")

    def test_08_unbound_claim(self):
        c = block_pvc("nobind", "16Mi", sc="no-such-class")
        self.ep.apply([c, vm("unbound", [pvc_vol("root", "nobind")], [disk("root")])])
        wait_until(lambda: self.ep.json("vm/unbound")["status"].get("printableStatus") ==
                   "WaitingForVolumeBinding", what="VM status WaitingForVolumeBinding")
        sync = self.cond(self.vmi("unbound"), "Synchronized")
        self.assertEqual((sync["status"], sync["reason"]), ("False", "FailedPvcNotBound"))
        self.assertIn("default/nobind", sync["message"])
        self.assertEqual(qemu_procs(self.ep.state), [])
        # Bound later (its class appears): it starts.
        self.ep.apply([storage_class("no-such-class")])
        self.wait_ready("unbound")
        self.halt_and_check_gone("unbound")
        self.k("delete", "vm/unbound", "pvc/nobind", "storageclass/no-such-class")

    def test_07_secure_boot_console(self):
        """efi: {} means secureBoot (KubeVirt's default): OVMF's secboot
        build with SMM refuses the unsigned EFI shell, and says so on the
        serial console, which is the guest-console-log container's log."""
        self.ep.apply([block_pvc("sb-disk", "16Mi"), vm(
            "sb", [pvc_vol("root", "sb-disk")], [disk("root")],
            domain={"firmware": {"bootloader": {"efi": {}}},
                    # No NIC: OVMF's own PXE would take minutes first.
                    "devices": {"disks": [disk("root")], "autoattachPodInterface": False}})])
        self.wait_ready("sb")
        name = self.launcher("sb")["metadata"]["name"]
        compute = self.k("logs", name, "-c", "compute").stdout
        for want in ("OVMF_CODE_4M.secboot.fd", "-machine q35,smm=on",
                     "driver=cfi.pflash01,property=secure,value=on"):
            self.assertIn(want, compute)
        self.assertNotIn("-netdev", compute)
        # kubectl logs -f streams the console as it comes.
        env = dict(os.environ, KUBECONFIG=self.ep.kubeconfig, HOME=self.ep.tmp)
        f = subprocess.Popen(["/usr/bin/kubectl", "logs", "-f", name, "-c", "guest-console-log"],
                             stdout=subprocess.PIPE, env=env)
        import threading
        killer = threading.Timer(90, f.kill)     # a readline cannot hang the test
        killer.start()
        try:
            deadline, seen = time.time() + 90, b""
            while b"Security Violation" not in seen and time.time() < deadline:
                ln = f.stdout.readline()
                if not ln:
                    break
                seen += ln
            self.assertIn(b"Security Violation", seen)
        finally:
            killer.cancel()
            f.kill()
            f.wait()
            f.stdout.close()
        self.halt_and_check_gone("sb")
        self.k("delete", "vm/sb", "pvc/sb-disk")

    @staticmethod
    def _csi_pv(name, vid, claim):
        return [{"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
                 "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                          "volumeMode": "Block", "persistentVolumeReclaimPolicy": "Retain",
                          "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": vid}}},
                {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                 "metadata": {"name": claim},
                 "spec": {"volumeName": name, "volumeMode": "Block", "storageClassName": "",
                          "accessModes": ["ReadWriteOnce"],
                          "resources": {"requests": {"storage": "1Gi"}}}}]

    def test_04_csi_ebs_volume_read_by_a_pod(self):
        vid = "vol-0c5100000000000a1"
        snap = self.aws.aws("ec2", "create-snapshot", "--volume-id", vid)["SnapshotId"]
        self.aws.wait(lambda: self.aws.aws("ec2", "describe-snapshots", "--snapshot-ids", snap)[
            "Snapshots"][0]["State"] == "completed", what="the snapshot")
        self.ep.apply(self._csi_pv("pv-ebs", vid, "ebs-claim"))
        wait_until(lambda: self.ep.json("pvc/ebs-claim")["status"].get("phase") == "Bound",
                   what="the claim to bind")
        self.ep.apply([pod("ebs-read", ["sh", "-c", "sha256sum </dev/block0 && printf "
                                        "PALLET-WROTE | dd of=/dev/block0 conv=notrunc "
                                        "status=none"],
                           volumes=[{"name": "d", "persistentVolumeClaim": {
                               "claimName": "ebs-claim"}}],
                           volumeDevices=[{"name": "d", "devicePath": "/dev/block0"}])])
        self.ep.wait_phase("ebs-read", "Succeeded")
        h = hashlib.sha256()
        with open(self.image, "rb") as f:
            h.update(f.read())
        h.update(bytes((1 << 30) - 8 * MIB))
        self.assertEqual(self.k("logs", "ebs-read").stdout.split()[0], h.hexdigest())
        state = self.aws.state()
        vol = next(v for v in state["volumes"] if v["id"] == vid)
        sdata = next(s for s in state["snapshots"] if s["id"] == snap)["data"]
        with open(vol["data"], "rb") as f:
            self.assertEqual(f.read(12), b"PALLET-WROTE")
        # The write went to the volume's own file: the snapshot and the
        # seed image it shared are untouched.
        self.assertNotEqual(vol["data"], sdata)
        for path in (sdata, self.image):
            with open(path, "rb") as f, open(self.image, "rb") as g:
                self.assertEqual(f.read(8 * MIB), g.read())
        self.k("delete", "pod/ebs-read", "pvc/ebs-claim", "pv/pv-ebs")

    def test_05_csi_unknown_volume(self):
        self.ep.apply(self._csi_pv("pv-gone", "vol-0000000000000dead", "gone-claim"))
        self.ep.apply([pod("gone-read", ["true"], volumes=[{"name": "d", "persistentVolumeClaim": {
            "claimName": "gone-claim"}}], volumeDevices=[{"name": "d", "devicePath": "/dev/b"}])])
        wait_until(lambda: any(r == "FailedMount" and "vol-0000000000000dead" in m
                               for r, m in self.events("gone-read")),
                   what="a FailedMount event naming the volume")
        self.assertEqual(self.ep.json("pod/gone-read")["status"]["phase"], "Pending")
        self.ep.apply([vm("gone", [pvc_vol("root", "gone-claim")], [disk("root")])])
        wait_until(lambda: any(r == "FailedAttachVolume" and "vol-0000000000000dead" in m
                               for r, m in self.events("gone")),
                   what="a FailedAttachVolume event on the VMI")
        self.assertEqual(self.vmi("gone")["status"]["phase"], "Pending")
        self.assertEqual(qemu_procs(self.ep.state), [])
        self.k("delete", "vm/gone", "pod/gone-read", "pvc/gone-claim", "pv/pv-gone")
        self.k("wait", "--for=delete", "vmi/gone", "--timeout=30s", ok=False)


class VmNoCsi(_VmBase):
    ARGS = ("--image", "debian=host")

    def test_csi_without_flag_names_it(self):
        self.ep.apply(VmFast._csi_pv("pv-x", "vol-0123", "x-claim"))
        self.ep.apply([pod("x-read", ["true"], volumes=[{"name": "d", "persistentVolumeClaim": {
            "claimName": "x-claim"}}], volumeDevices=[{"name": "d", "devicePath": "/dev/b"}])])
        wait_until(lambda: any("--csi-ebs" in m and "vol-0123" in m
                               for r, m in self.events("x-read")),
                   what="an event naming --csi-ebs")

    def test_shutdown_kills_qemu(self):
        ep = KubeEndpoint(())
        try:
            ep.apply([storage_class(), block_pvc("d", "16Mi"),
                      vm("bye", [pvc_vol("root", "d")], [disk("root")])])
            wait_until(lambda: ep.kubectl("get", "vmi/bye", ok=False).returncode == 0,
                       what="the VMI")
            ep.kubectl("wait", "--for=condition=Ready", "vmi/bye", "--timeout=60s")
            self.assertEqual(len(qemu_procs(ep.state)), 1)
        finally:
            state = ep.state
            rc, err = ep.stop()
        self.assertEqual(rc, 0, err)
        self.assertEqual(qemu_procs(state), [])

    def test_killed_endpoint_leaves_no_qemu(self):
        ep = KubeEndpoint(())
        try:
            ep.apply([storage_class(), block_pvc("d", "16Mi"),
                      vm("orphan", [pvc_vol("root", "d")], [disk("root")])])
            wait_until(lambda: ep.kubectl("get", "vmi/orphan", ok=False).returncode == 0,
                       what="the VMI")
            ep.kubectl("wait", "--for=condition=Ready", "vmi/orphan", "--timeout=60s")
            self.assertEqual(len(qemu_procs(ep.state)), 1)
            ep.proc.kill()             # no SIGTERM handler runs
            ep.proc.wait()
            wait_until(lambda: not qemu_procs(ep.state), timeout=10,
                       what="QEMU to die with its endpoint (parent-death signal)")
        finally:
            for p in qemu_procs(ep.state):
                os.kill(p, signal.SIGKILL)
            ep.stop()


class VmBoot(_VmBase):
    """Slow: the demo guest boots once under TCG from its PVC."""

    def test_guest_boots_from_its_pvc(self):
        guest = subprocess.run([os.path.join(TOP, "tests", "guest", "build-guest.sh")],
                               capture_output=True, text=True, timeout=3600,
                               check=True).stdout.strip()
        size = os.path.getsize(guest)
        self.ep.apply([block_pvc("boot-root", str(size))])
        wait_until(lambda: self.ep.json("pvc/boot-root")["status"].get("phase") == "Bound",
                   what="the PVC to bind")
        subprocess.run(["cp", "--sparse=always", guest, self.ep.backing_file("boot-root")],
                       check=True, timeout=600)
        t0 = time.time()
        self.ep.apply([vm("guest", [pvc_vol("root", "boot-root")], [disk("root", boot=1)],
                          domain={"memory": {"guest": "1Gi"}})])
        v = self.wait_ready("guest")
        self.assertEqual(v["status"]["phase"], "Running")
        pod_name = self.launcher("guest")["metadata"]["name"]
        seen = []

        def booted():
            out = self.k("logs", pod_name, "-c", "guest-console-log").stdout
            seen[:] = [out]
            return "PALLET-BOOT-OK" in out or "login:" in out
        try:
            wait_until(booted, timeout=300, what="PALLET-BOOT-OK or login: on the console")
        except AssertionError:
            raise AssertionError("no boot marker; console tail:\n%s" % seen[0][-3000:])
        took = time.time() - t0
        self.assertIn("Running", self.k("get", "vm/guest").stdout)
        # No guest agent in the demo guest: the condition stays absent.
        self.assertIsNone(self.cond(self.vmi("guest"), "AgentConnected"))
        self.halt_and_check_gone("guest")
        print("\nguest booted to its marker in %.0fs under TCG" % took)


if __name__ == "__main__":
    unittest.main()
