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
import re
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "kube-endpoint"))
from ec2_harness import BUILD, EC2E2E, PALLET, PLAN_UID, plan_yaml  # noqa: E402
from endpoint_fixture import SOURCE  # noqa: E402
from kube_fixture import KubeEndpoint, wait_until  # noqa: E402

TOP = os.path.normpath(os.path.join(HERE, "..", ".."))
GUEST = os.path.join(TOP, "tests", "guest")
NS = "vms"
ZC, CP = "i-0a991000000000001", "i-0a991000000000002"
CSI = os.environ.get("PALLET_TEST_NO_CSI") is None
TOOL = os.path.join(BUILD, "provider-ec2", "convert", "pallet-convert-tool")
TCG = {"LIBGUESTFS_BACKEND": "direct", "LIBGUESTFS_BACKEND_SETTINGS": "force_tcg"}


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
        if any(v[3:] == ("nitro",) for v in vms):
            self.nitro = build([os.path.join(GUEST, "build-guest.sh"), "--layout", "uefi-lvm"],
                               3600).split()
        instances = [self.instance(*v) for v in vms]
        roots = {}
        if images:
            for img in ("pallet-convert", "pallet-ebs-copy"):
                roots[img] = build([os.path.join(TOP, "packaging", "images", "build-rootfs.sh"),
                                    img, "--build-dir", BUILD], 1800)
        stage("images", t)
        self.start({"instances": instances})
        self.roots = roots
        self.start_kube()

    def start_kube(self):
        args = ["--csi-ebs", "http://127.0.0.1:%d" % self.ep.port] if CSI else []
        # The one node is in the target zone, schedulable for VMs, as the
        # conversion Pod's node selector asks.
        args += ["--node-label", "topology.kubernetes.io/zone=us-east-1b",
                 "--node-label", "kubevirt.io/schedulable=true"]
        for img, root in self.roots.items():
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

    def plan_for(self, iid):
        vtype, name = {ZC: ("gp3", "zc"), CP: ("gp2", "cp")}[iid]
        path = os.path.join(self.tmp, "plan-%s.yaml" % name)
        text = plan_yaml(self.ep.port, [iid], self.subnets(), (vtype,), plan_name="web-" + name,
                         settings={"force-tcg": "true",
                                   "conversion-image": "localhost/pallet-convert:test",
                                   "copy-image": "localhost/pallet-ebs-copy:test"},
                         power="on")
        text = text.replace(PLAN_UID, PLAN_UIDS[iid])
        text = text.replace('"storageClass": "ebs-gp2"', '"storageClass": "local-gp2"')
        with open(path, "w") as f:
            f.write(text)
        return path, os.path.join(self.tmp, "state-" + name)

    def pod_creates(self):
        """Pods created through the API (not dry runs; the endpoint makes
        the virt-launcher Pods itself)."""
        return sum(1 for c in self.kube.calls() if c["method"] == "POST"
                   and c["path"] == "/api/v1/namespaces/%s/pods" % NS
                   and c.get("code") == 201 and "dryRun" not in (c.get("query") or {}))

    def run_bg(self, plan, sd, n):
        """pallet migrate --apply in the background, its output in a file."""
        out = open(os.path.join(self.tmp, "run-%s-%d.out" % (os.path.basename(sd), n)), "w+")
        proc = subprocess.Popen([PALLET] + self.apply_argv(plan, sd), stdout=out,
                                stderr=subprocess.STDOUT, text=True, env=self.env(),
                                start_new_session=True)
        proc.out = out
        return proc

    def output(self, proc):
        proc.out.seek(0)
        return proc.out.read()

    def kill_when(self, proc, cond, what, timeout=900):
        wait_until(lambda: cond() or proc.poll() is not None, timeout, what)
        self.assertIsNone(proc.poll(), "pallet ended before %s:\n%s" % (what, self.output(proc)))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        self.earlier.append(self.output(proc))
        last = [ln for ln in self.output(proc).splitlines() if ln.startswith("{")][-1:]
        print("killed pallet (-9) during %s; its last event: %s" % (what, last), flush=True)
        proc.out.close()

    def instance(self, iid, name, vtype, with_guest=True):
        if with_guest == "nitro":
            # tests/guest's uefi-lvm layout (cached): fstab, GRUB and the
            # initramfs name /dev/nvme0n1p* and /dev/nvme1n1p1, the data
            # volume attached as /dev/sdf.
            return {"id": iid, "name": name, "type": "m5.large", "az": "us-east-1a",
                    "state": "running", "bootMode": "uefi",
                    "volumes": [{"device": "/dev/xvda", "sizeGiB": 2, "type": vtype,
                                 "image": self.nitro[0]},
                                {"device": "/dev/sdf", "sizeGiB": 1, "type": vtype,
                                 "image": self.nitro[1]}]}
        vol = {"device": "/dev/xvda", "sizeGiB": 2, "type": vtype}
        if with_guest:
            vol["image"] = self.guest
        return {"id": iid, "name": name, "type": "t3.medium", "az": "us-east-1a",
                "state": "running", "volumes": [vol]}

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


PLAN_UIDS = {ZC: "5a1d0000-0000-4000-8000-0000000000a1",
             CP: "5a1d0000-0000-4000-8000-0000000000a2"}


class ApplyBothModes(ApplyBase):
    """Both plans side by side (two conversions on two cores), each killed
    at its waits and resumed."""

    def test_zero_copy_and_copy_apply_convert_boot(self):
        """Killed: the copy plan in its copy and conversion waits, the
        zero-copy plan in its conversion and boot waits."""
        # The zero-copy instance is Nitro-shaped (UEFI, LVM, two volumes,
        # NVMe names in its configs): its conversion Pod must run the
        # device-name fix-up, or the guest cannot find /boot after it.
        self.start_world([(ZC, "web-zc", "gp3", "nitro"), (CP, "web-cp", "gp2")])
        pzc, szc = self.plan_for(ZC)
        pcp, scp = self.plan_for(CP)
        # The modes come from the cluster's StorageClasses, asked through the
        # host's cluster (no kube-api-url in the Provider).
        for plan, sc, prov in ((pzc, "ebs-gp3", "ebs.csi.aws.com"),
                               (pcp, "local-gp2", "pallet.dev/sparse-file")):
            r = self.pallet("validate", plan, "--kubeconfig", self.kube.kubeconfig, check=0)
            self.assertIn("the cluster's StorageClass %s has provisioner %s" % (sc, prov),
                          r.stdout + r.stderr)
        t = time.time()
        self.earlier = []   # the output of the runs killed
        zc, cp = self.run_bg(pzc, szc, 1), self.run_bg(pcp, scp, 1)
        # Copy plan: killed while it waits for the copy Pod, then for the
        # conversion Pod; zero-copy plan: killed while it waits for its
        # conversion Pod.  Each rerun finds its objects and waits again.
        self.kill_when(cp, lambda: '"pod":"web-cp-ebs-copy"' in self.output(cp),
                       "the copy Pod wait")
        cp = self.run_bg(pcp, scp, 2)
        self.kill_when(cp, lambda: '"pod":"web-cp-v2v","phase":"Running"' in self.output(cp),
                       "the conversion Pod wait (copy plan)")
        cp = self.run_bg(pcp, scp, 3)
        self.kill_when(zc, lambda: '"pod":"web-zc-v2v","phase":"Running"' in self.output(zc),
                       "the conversion Pod wait (zero-copy plan)")
        zc = self.run_bg(pzc, szc, 2)
        # ... and again while it waits for the VM's guest to boot.  This
        # wait spans the UEFI/LVM guest's whole TCG conversion beside the
        # copy plan's: over 900 s in a loaded CI run (the test's limit is 2400).
        self.kill_when(zc, lambda: '"status":"boot"' in self.output(zc),
                       "the boot wait (zero-copy plan)", timeout=1800)
        zc = self.run_bg(pzc, szc, 3)
        outs = {}
        for name, proc in (("zc", zc), ("cp", cp)):
            proc.wait(2400)
            outs[name] = self.output(proc)
            proc.out.close()
            self.assertEqual(proc.returncode, 0, "%s plan:\n%s" % (name, outs[name][-6000:]))
        stage("migrate both (with four kill -9)", t)

        # Each Pod was made once, across the kills.
        self.assertEqual(self.pod_creates(), 3, "copy, and one conversion Pod per plan")
        # Zero copy: the PV is the EBS volume made from the snapshot.
        pvc = self.kj("pvc/web-zc-disk-0")
        pv = json.loads(self.k("get", "pv", pvc["spec"]["volumeName"], "-o", "json").stdout)
        self.assertEqual(pv["spec"]["csi"]["driver"], "ebs.csi.aws.com")
        vol = pv["spec"]["csi"]["volumeHandle"]
        vols = self.aws("ec2", "describe-volumes", "--volume-ids", vol)["Volumes"]
        self.assertEqual(vols[0]["AvailabilityZone"], "us-east-1b", vols)
        # Both VMs run: QEMU in the endpoint booted each PVC to its login
        # prompt, as the guest's serial console (the launcher Pod's
        # guest-console-log container) shows.
        for name in ("web-zc", "web-cp"):
            vm = self.kj("vm/" + name)
            self.assertEqual(vm["spec"]["runStrategy"], "Always", name)
            wait_until(lambda: self.kj("vm/" + name).get("status", {}).get("printableStatus")
                       == "Running", 120, name + " Running")
            launcher = self.kj("pods", "-l", "kubevirt.io=virt-launcher,vm.kubevirt.io/name="
                               + name)["items"][0]["metadata"]["name"]
            t = time.time()

            def console():
                return self.k("logs", "-n", NS, launcher, "-c", "guest-console-log").stdout
            # web-zc: its fstab's /boot, /boot/efi and /data mounted, by the
            # UUIDs the fix-up wrote (the data volume is the second disk).
            want = (r"PALLET-BOOT-OK kernel=\S+ root=/dev/mapper/vg0-root data=/dev/vdb1"
                    if name == "web-zc" else r"PALLET-BOOT-OK|login:")
            try:
                wait_until(lambda: re.search(want, console()), 600,
                           name + "'s boot on its serial console")
            except AssertionError:
                self.fail("%s did not boot:\n%s" % (name, console()[-3000:]))
            stage(name + " boot (after pallet ended)", t)
        # Only the launcher Pods are left; the copy and conversion Pods and
        # the copy Pod's credentials are gone.
        pods = [p["metadata"]["name"] for p in self.kj("pods")["items"]]
        self.assertEqual(sorted(p.rsplit("-", 1)[0] for p in pods),
                         ["virt-launcher-web-cp", "virt-launcher-web-zc"], pods)
        self.assertEqual(self.k("get", "-n", NS, "secrets", "-o", "name").stdout.strip(), "",
                         "the copy Pod's AWS keys (temporary) outlived the copy")
        # pallet saw each guest boot (the serial console's login prompt), so
        # the tidy-up deleted every snapshot: the copy Pod's once it had
        # succeeded, zero copy's (kept until boot) once the VM booted.
        for name, sd in (("zc", szc), ("cp", scp)):
            (doc,) = self.states(sd).values()
            boot = doc["cluster"]["boot"]
            print("%s: boot %s" % (name, json.dumps({k: boot.get(k) for k in (
                "result", "evidence", "line", "waitedSeconds")})), flush=True)
            self.assertEqual((boot["result"], boot["evidence"]), ("booted", "console"), boot)
            self.assertFalse(doc.get("retained"), doc.get("retained"))
            self.assertNotIn("run `pallet cleanup`", outs[name])
        # The zero-copy conversion Pod ran pallet-convert-tool with the
        # fix-up and the instance's block-device mapping, and its rewrites
        # (its termination message) are in the VM state beside the Pod.
        (doc,) = self.states(szc).values()
        (pod,) = [o for o in doc["cluster"]["objects"]
                  if o["kind"] == "Pod" and o["name"] == "web-zc-v2v"]
        self.assertEqual(pod["phase"], "Succeeded", pod)
        self.assertTrue(pod["result"]["ok"], pod)
        rw = pod["result"]["deviceNameRewrites"]
        print("web-zc: %d rewrites in the Pod: %s" % (len(rw), json.dumps(rw)[:600]), flush=True)
        pairs = {(x["file"], x["from"]) for x in rw}
        for want in [("/etc/fstab", "/dev/nvme0n1p2"), ("/etc/fstab", "/dev/nvme0n1p1"),
                     ("/etc/fstab", "/dev/nvme0n1p3"), ("/etc/fstab", "/dev/nvme1n1p1"),
                     ("/etc/default/grub", "/dev/nvme0n1p3"),
                     ("/boot/grub/grub.cfg", "/dev/nvme0n1p3")]:
            self.assertIn(want, pairs, rw)
        for x in rw:
            self.assertRegex(x["to"], r"^(UUID|PARTUUID|LABEL)=\S+$", x)
        (conv,) = glob.glob(os.path.join(szc, "manifests", "**", "*-Pod-web-zc-v2v.json"),
                            recursive=True)
        with open(conv) as f:
            cmd = json.load(f)["spec"]["containers"][0]["command"]
        self.assertEqual(cmd[:2], ["pallet-convert-tool", "convert"], cmd)
        for arg in ("--fix-device-names", "/dev/xvda=0", "/dev/sdf=1", "/dev/block1"):
            self.assertIn(arg, cmd)
        for uid in PLAN_UIDS.values():
            left = self.aws("ec2", "describe-snapshots", "--owner-ids", "self", "--filters",
                            "Name=tag:forklift.konveyor.io/plan,Values=" + uid)["Snapshots"]
            self.assertEqual(left, [], "snapshots left of plan " + uid)
        # The conversion Pod ran as the qemu user with no capabilities, as
        # its manifest says, and what it left passes pallet_convert_verify
        # (the copy plan's VM stopped first: its disk is then at rest).
        (conv,) = [p for p in glob.glob(os.path.join(scp, "manifests", "**", "*-Pod-web-cp-v2v.json"),
                                        recursive=True)]
        with open(conv) as f:
            pod = json.load(f)
        self.assertEqual(pod["spec"]["securityContext"]["runAsUser"], 107)
        self.assertEqual(pod["spec"]["containers"][0]["securityContext"]["capabilities"],
                         {"drop": ["ALL"]})
        self.k("patch", "-n", NS, "vm/web-cp", "--type", "merge", "-p",
               '{"spec":{"runStrategy":"Halted"}}')
        wait_until(lambda: "web-cp" not in [i["metadata"]["name"] for i in self.kj("vmi")["items"]],
                   180, "web-cp's VMI to go")
        disk = self.kube.backing_file("web-cp-disk-0", ns=NS)
        t = time.time()
        v = subprocess.run([TOOL, "verify", "--tcg", "--format", "raw", disk], capture_output=True,
                           text=True, timeout=1200, env=dict(os.environ, **TCG))
        stage("verify web-cp's converted disk", t)
        self.assertEqual(v.returncode, 0, v.stdout[-3000:] + v.stderr[-3000:])
        self.assertTrue(json.loads(v.stdout)["ok"], v.stdout)
        # The zero-copy VM's disk is the EBS volume; the copy plan made none.
        tagged = self.aws("ec2", "describe-volumes", "--filters",
                          "Name=tag:forklift.konveyor.io/plan,Values=" + PLAN_UIDS[CP])["Volumes"]
        self.assertEqual(tagged, [], "the copy plan created no EBS volume")


class ApplyFailure(ApplyBase):
    """A copy plan whose instance's disk holds no operating system: the
    copy Pod succeeds, the conversion Pod (real virt-v2v-in-place) fails,
    and everything rolls back in both APIs, the Pod's own words in the
    state."""

    def test_failing_conversion_pod_rolls_back(self):
        self.start_world([(CP, "web-cp", "gp2", False)])   # 2 GiB of nothing
        pcp, scp = self.plan_for(CP)
        t = time.time()
        r = self.pallet(*self.apply_argv(pcp, scp), timeout=1800)
        stage("migrate (fails in the conversion Pod)", t)
        self.assertEqual(r.returncode, 1, r.stdout[-4000:] + r.stderr[-4000:])
        (doc,) = self.states(scp).values()
        self.assertEqual((doc["status"], doc["failedStep"]), ("failed", "apply"))
        f = doc["cluster"]["failure"]
        self.assertEqual((f["stage"], f["pod"], f["phase"], f["container"]),
                         ("convert", "web-cp-v2v", "Failed", "virt-v2v"), f)
        self.assertNotEqual(f["exitCode"], 0, f)
        # virt-v2v's own words, not a guess: the disk holds no guest.
        said = "\n".join(f.get("errorLines", []))
        self.assertRegex(said, r"virt-v2v-in-place: error: .*(inspection could not detect|"
                               r"no root device|no operating system)", f)
        self.assertIn("web-cp-v2v", doc["error"]["message"])
        # The last error line is pallet-convert-tool's, with virt-v2v's cause.
        self.assertRegex(doc["error"]["message"],
                         r"it said: pallet-convert-tool: error \([a-z-]+\): .*(?i:inspection "
                         r"could not detect|no root device|no operating system)")
        # Its result (the termination message) is recorded, not pasted.
        self.assertFalse(f["result"]["ok"], f)
        self.assertNotIn('{"', doc["error"]["message"].split("last log lines")[0])
        self.assertTrue(doc["rolledBack"], doc)
        # Nothing of the migration is left in the cluster (kubectl) ...
        for kind in ("pods", "pvc", "secrets", "virtualmachines"):
            self.assertEqual(self.k("get", "-n", NS, kind, "-o", "name").stdout.strip(), "",
                             kind)
        self.assertEqual(self.k("get", "pv", "-o", "name").stdout.strip(), "")
        # ... nor in AWS (/usr/bin/aws): no snapshot, no volume but the
        # source's, and the instance running again as it was.
        snaps = self.aws("ec2", "describe-snapshots", "--owner-ids", "self")["Snapshots"]
        self.assertEqual([x["SnapshotId"] for x in snaps
                          if x.get("State") != "deleted"], [], snaps)
        vols = self.aws("ec2", "describe-volumes")["Volumes"]
        self.assertEqual([v["Attachments"][0]["InstanceId"] for v in vols], [CP], vols)
        inst = self.aws("ec2", "describe-instances", "--instance-ids", CP)
        self.assertEqual(inst["Reservations"][0]["Instances"][0]["State"]["Name"], "running")


if __name__ == "__main__":
    unittest.main()
