# SPDX-License-Identifier: Apache-2.0
"""Cluster mode (`pallet migrate --apply`) against pallet-kube-endpoint,
with the null provider's build_vm items standing in for a real
provider's (same labels, same stage contract): storage, then copy Pods
waited for, then the conversion Pod, then the VM started by patching its
runStrategy; a failing conversion Pod rolls everything back with its
exit code and log in the state; kill -9 during a wait resumes without
making anything twice; the preflight names what is wrong.  Every check
of the cluster is made with the real kubectl."""

import base64
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "kube-endpoint"))
from kube_fixture import KubeEndpoint, block_pvc, pod, storage_class, wait_until  # noqa: E402

PALLET = os.environ.get("PALLET_BIN", "pallet")
NS = "vms"
VM_ID = "vm-0001"
LABEL = "vmID=" + VM_ID


class Watch:
    """`kubectl get --watch` of one kind in NS: every ADDED/MODIFIED/DELETED
    the API server streamed, each with its resourceVersion (one counter
    for all kinds in the endpoint, as in etcd), so watches of several
    kinds merge into the cluster's own order."""

    def __init__(self, kube, kind):
        self.kind, self.events = kind, []
        env = dict(os.environ, KUBECONFIG=kube.kubeconfig, HOME=kube.tmp)
        before = len(kube.calls())
        self.proc = subprocess.Popen(["/usr/bin/kubectl", "get", "-n", NS, kind, "--watch",
                                      "--output-watch-events", "-o", "json"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        # Events from the moment the endpoint answered the watch on are in the stream.
        wait_until(lambda: any(c["method"] == "GET" and (c.get("query") or {}).get("watch")
                               in ("1", "true") and c["path"].endswith("/" + kind)
                               for c in kube.calls()[before:]), 30, "kubectl watching " + kind)

    def _read(self):
        dec, buf = json.JSONDecoder(), ""
        for line in self.proc.stdout:
            buf += line
            while buf.strip():
                try:
                    ev, end = dec.raw_decode(buf.lstrip())
                except ValueError:
                    break
                buf = buf.lstrip()[end:]
                self.events.append(ev)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)
        self.reader.join(30)
        self.proc.stderr.close()
        return self.events


def timeline(*watches):
    """(resourceVersion, type, kind, name, phase or runStrategy) in cluster order."""
    out = []
    for w in watches:
        for ev in w.stop():
            o = ev["object"]
            what = (o.get("status") or {}).get("phase") if o["kind"] == "Pod" else \
                (o.get("spec") or {}).get("runStrategy")
            out.append((int(o["metadata"]["resourceVersion"]), ev["type"], o["kind"],
                        o["metadata"]["name"], what))
    return sorted(out)


def first(tl, kind, name, etype=None, what=None):
    for i, (_, t, k, n, w) in enumerate(tl):
        if k == kind and n == name and (etype is None or t == etype) and \
                (what is None or w == what):
            return i
    raise AssertionError("no %s %s %s %s in %s" % (etype, kind, name, what, tl))


# The copy Pod writes a mark at the start of the disk after a pause; the
# conversion Pod refuses to run unless the mark is there and writes its
# own: a conversion started before the copy finished fails, and the
# disk's bytes say both ran, in order.
COPY = ("/bin/sh", "-c", "echo copying; sleep 1; printf COPIED | dd of=/dev/block0 "
        "conv=notrunc status=none; echo copied")
CONVERT = ["/bin/sh", "-c", "[ \"$(head -c 6 /dev/block0)\" = COPIED ] || "
           "{ echo 'the disk was not copied' >&2; exit 9; }; "
           "printf CONVERTED | dd of=/dev/block0 bs=512 seek=1 conv=notrunc status=none; "
           "echo converted"]


def stage(obj, name):
    obj["metadata"].setdefault("labels", {})["pallet.dev/stage"] = name
    obj["metadata"]["namespace"] = NS
    return obj


def manifests(convert_cmd, copy_cmd=COPY):
    pvc = stage(block_pvc("web-1-disk0", sc="local"), "storage")
    secret = stage({"apiVersion": "v1", "kind": "Secret",
                    # Temporary, as provider-ec2 marks the copy Pod's AWS
                    # keys: deleted with the finished Pods on success.
                    "metadata": {"name": "web-1-copy-creds",
                                 "labels": {"pallet.dev/temporary": "true"}},
                    "stringData": {"key": "not-a-real-secret"}}, "storage")
    dev = [{"name": "disk0", "devicePath": "/dev/block0"}]
    vols = [{"name": "disk0", "persistentVolumeClaim": {"claimName": "web-1-disk0"}}]
    copy = stage(pod("web-1-ebs-copy", list(copy_cmd), volumeDevices=dev, volumes=vols,
                     envFrom=[{"secretRef": {"name": "web-1-copy-creds"}}]), "copy")
    conv = stage(pod("web-1-convert", list(convert_cmd), volumeDevices=dev, volumes=vols),
                 "convert")
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-1-extra",
                                                                  "namespace": NS},
          "data": {"a": "b"}}
    vm = stage({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                "metadata": {"name": "web-1",
                             "annotations": {"pallet.dev/target-run-strategy": "Always",
                                             # No VMI appears here: a short boot wait.
                                             "pallet.dev/verify-boot-timeout": "2"}},
                "spec": {"runStrategy": "Halted", "template": {"spec": {
                    "domain": {"devices": {"disks": [{"name": "disk0",
                                                      "disk": {"bus": "virtio"}}]}},
                    "volumes": [{"name": "disk0",
                                 "persistentVolumeClaim": {"claimName": "web-1-disk0"}}]}}}},
               "vm")
    # Emitted out of order on purpose: the host orders by stage.
    return [vm, cm, conv, copy, pvc, secret]


def manifests_with(vm):
    """manifests() with this VirtualMachine instead of its own."""
    return [vm if o["kind"] == "VirtualMachine" else o for o in manifests(CONVERT)]


def boot_sector_cmd(text):
    """A conversion Pod command that makes the disk a guest: a boot
    sector whose code writes text to the serial port (COM1) and halts."""
    msg = text.encode().decode("unicode_escape").encode("latin-1") + b"\0"
    code = bytes.fromhex("31c08ed8fc" "baf803" "be167c" "ac" "84c0" "7403" "ee" "ebf8" "f4" "ebfd")
    assert len(code) == 22 and len(code) + len(msg) <= 510
    sector = (code + msg).ljust(510, b"\0") + b"\x55\xaa"
    return ["/bin/sh", "-c", "printf '%s' | dd of=/dev/block0 conv=notrunc status=none; echo booted"
            % "".join("\\%03o" % b for b in sector)]


class ClusterApply(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kube = KubeEndpoint(("--image", "debian=host", "--readonly-token", "ro-token-1"))
        cls.kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
                        storage_class("local")])

    @classmethod
    def tearDownClass(cls):
        cls.kube.stop()

    def tearDown(self):
        sys.stderr.write("(%.1f s) " % (time.time() - self.t0))
        # Each test starts from an empty namespace, whatever the last one left.
        self.kube.kubectl("delete", "-n", NS, "--all", "--wait=true",
                          "pods,pvc,secrets,configmaps,virtualmachines", timeout=180)
        self.kube.kubectl("delete", "--all", "pv", timeout=180)

    def setUp(self):
        self.t0 = time.time()
        self.tmp = tempfile.mkdtemp(prefix="pallet-cluster-test-", dir=self.kube.tmp)
        self.cleanup_log = os.path.join(self.tmp, "cleanup.jsonl")

    def write_plan(self, objs, name="web"):
        plan = {"name": name, "uid": "00000000-0000-4000-8000-00000000000%d" % len(name),
                "type": "cold", "targetNamespace": NS, "targetPowerState": "on",
                "spec": {}, "vms": [{"id": VM_ID, "name": "web-1", "index": 0}],
                "networkMap": [], "storageMap": [],
                "source": {"name": "null-source", "type": "null", "url": "", "settings": {}},
                "destination": {"name": "host", "type": "openshift", "url": "",
                                "settings": {}}}
        config = {"provider": {"metadata": {"name": "null-source"}, "spec": {"type": "null"}},
                  "secret": {}, "settings": {"manifests": objs,
                                             "cleanup_input_file": self.cleanup_log}}
        p, c = os.path.join(self.tmp, "plan.json"), os.path.join(self.tmp, "config.json")
        with open(p, "w") as f:
            json.dump(plan, f)
        with open(c, "w") as f:
            json.dump(config, f)
        return p, c

    def argv(self, verb, plan, config, *extra):
        return [PALLET, verb, "--normalized", plan, "--provider", "null", "--config", config,
                "--state-dir", os.path.join(self.tmp, "state"), "-o", "json",
                "--kubeconfig", self.kube.kubeconfig] + list(extra)

    def run_pallet(self, *args, timeout=180):
        return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)

    def events(self, out):
        return [json.loads(x) for x in out.splitlines() if x.startswith("{")]

    def state_path(self):
        found = glob.glob(os.path.join(self.tmp, "state", "vm-%s-*.json" % VM_ID))
        return found[0] if found else None

    def state(self):
        with open(self.state_path()) as f:
            return json.load(f)

    def left(self, uid):
        """Every object of the migration, by label, as kubectl sees them."""
        found = []
        for kind in ("pods", "pvc", "pv", "secrets", "configmaps", "virtualmachines"):
            items = self.kube.json("-A", kind, "-l", "migration=%s,%s" % (uid, LABEL))["items"]
            found += ["%s/%s" % (kind, i["metadata"]["name"]) for i in items]
        return found

    def cleanup_inputs(self):
        with open(self.cleanup_log) as f:
            return [json.loads(x) for x in f]

    def post_order(self):
        names = []
        for c in self.kube.calls():
            if (c["method"] == "POST" and c["code"] == 201 and "/namespaces/" + NS in c["path"]
                    and "dryRun" not in (c.get("query") or {})):
                names.append(c["path"].rsplit("/", 1)[-1])
        return names

    def test_1_apply_in_stage_order_and_start(self):
        plan, config = self.write_plan(manifests(CONVERT))
        watches = [Watch(self.kube, k) for k in ("persistentvolumeclaims", "pods",
                                                 "virtualmachines")]
        t0 = time.time()
        r = self.run_pallet(*self.argv("migrate", plan, config, "--apply"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        tl = timeline(*watches)
        st = self.state()
        self.assertEqual(st["status"], "succeeded")
        self.assertIn("apply", st["completed"])
        self.assertTrue(st["cluster"]["podsSucceeded"])
        uid = st["migrationUID"]
        # As the cluster saw it (kubectl's watches): the claim, then the copy
        # Pod, which ran to Succeeded before the conversion Pod was created,
        # which ran to Succeeded before the VM was created, Halted, then
        # patched to its target run strategy.
        order = [first(tl, "PersistentVolumeClaim", "web-1-disk0", "ADDED"),
                 first(tl, "Pod", "web-1-ebs-copy", "ADDED"),
                 first(tl, "Pod", "web-1-ebs-copy", what="Running"),
                 first(tl, "Pod", "web-1-ebs-copy", what="Succeeded"),
                 first(tl, "Pod", "web-1-convert", "ADDED"),
                 first(tl, "Pod", "web-1-convert", what="Succeeded"),
                 first(tl, "VirtualMachine", "web-1", "ADDED", "Halted"),
                 first(tl, "VirtualMachine", "web-1", "MODIFIED", "Always")]
        self.assertEqual(order, sorted(order), tl)
        self.assertEqual([x for x in tl if x[2] == "VirtualMachine" and x[1] == "ADDED"][0][4],
                         "Halted", tl)
        # Within the storage stage, the provider's order; the ConfigMap
        # (stage vm) before the VirtualMachine.
        self.assertEqual(self.post_order()[-6:], ["persistentvolumeclaims", "secrets", "pods",
                                                  "pods", "configmaps", "virtualmachines"])
        ev = self.events(r.stdout)
        waits = [e for e in ev if e.get("event") == "wait"]
        self.assertTrue(any(e.get("pod") == "web-1-ebs-copy" and e.get("phase") == "Succeeded"
                            for e in waits), waits)
        self.assertTrue(any(e.get("pod") == "web-1-convert" and e.get("phase") == "Succeeded"
                            for e in waits), waits)
        # The disk, read through the PV kubectl names: both Pods wrote it.
        with open(self.kube.backing_file("web-1-disk0", ns=NS), "rb") as f:
            head = f.read(1024)
        self.assertEqual(head[:6], b"COPIED")
        self.assertEqual(head[512:521], b"CONVERTED")
        # The VM started; the finished Pods gone (the running VM has its
        # virt-launcher Pod, labelled kubevirt.io); storage and VM stay.
        vm = self.kube.json("-n", NS, "virtualmachine/web-1")
        self.assertEqual(vm["spec"]["runStrategy"], "Always")
        self.assertEqual(vm["metadata"]["labels"]["migration"], uid)
        self.assertEqual(self.kube.json("-n", NS, "pods", "-l", "!kubevirt.io")["items"], [])
        left = self.left(uid)
        self.assertIn("pvc/web-1-disk0", left)
        self.assertIn("virtualmachines/web-1", left)
        self.assertNotIn("secrets/web-1-copy-creds", left)
        self.assertIn("Secret web-1-copy-creds deleted (its work is done)", r.stdout)
        # The state records what was applied, with the cluster's uids.
        objs = {o["name"]: o for o in st["cluster"]["objects"]}
        self.assertEqual(objs["web-1"]["uid"], vm["metadata"]["uid"])
        self.assertEqual(objs["web-1-ebs-copy"]["stage"], "copy")
        self.assertEqual(objs["web-1-convert"]["stage"], "convert")
        # cleanup learnt that the Pods ran.
        self.assertEqual(self.cleanup_inputs()[-1],
                         {"cluster": {"mode": "apply", "podsSucceeded": True, "vmBooted": False},
                          "rollback": False})
        print("apply run: %.1f s" % (time.time() - t0))
        # Resume of a finished plan: nothing applied again.
        n = len(self.kube.calls())
        r = self.run_pallet(*self.argv("migrate", plan, config, "--apply"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertFalse([c for c in self.kube.calls()[n:] if c["method"] != "GET"
                          and "dryRun" not in (c.get("query") or {})])
        self.assertEqual(self.kube.json("-n", NS, "virtualmachine/web-1")["metadata"]["uid"],
                         vm["metadata"]["uid"])

    def test_2_failing_conversion_rolls_back(self):
        plan, config = self.write_plan(manifests(
            ["/bin/sh", "-c", "echo inspecting; echo 'virt-v2v-in-place: error: no root device found' >&2; exit 3"]),
            name="fail")
        r = self.run_pallet(*self.argv("migrate", plan, config, "--apply"))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        st = self.state()
        self.assertEqual(st["status"], "failed")
        self.assertEqual(st["failedStep"], "apply")
        msg = st["error"]["message"]
        self.assertIn("convert Pod web-1-convert failed: phase Failed", msg)
        self.assertIn("exit code 3", msg)
        self.assertIn("reason Error", msg)
        self.assertIn("no root device found", msg)
        f = st["cluster"]["failure"]
        self.assertEqual((f["pod"], f["phase"], f["exitCode"], f["reason"]),
                         ("web-1-convert", "Failed", 3, "Error"))
        self.assertIn("inspecting", f["logTail"])
        self.assertTrue(st["rolledBack"])
        self.assertTrue(st["cluster"]["rolledBack"])
        self.assertIn("no root device found", f["logTail"])
        self.assertEqual(f["stage"], "convert")
        self.assertTrue(st["cluster"]["podsSucceeded"] is False)
        # kubectl: nothing of the migration is left, not even the claim's
        # provisioned volume, and the VM was never created.
        self.assertEqual(self.left(st["migrationUID"]), [])
        self.assertEqual(self.kube.json("-n", NS, "pods", "-l", "!kubevirt.io")["items"], [])
        self.assertEqual(self.kube.json("-n", NS, "pvc")["items"], [])
        self.assertEqual(self.kube.json("pv")["items"], [])
        self.assertEqual(self.kube.json("-n", NS, "virtualmachines")["items"], [])
        deleted = [e["message"] for e in self.events(r.stdout) if e.get("event") == "rollback"
                   and e.get("status") == "deleted"]
        for what in ("Pod web-1-ebs-copy", "Pod web-1-convert", "PersistentVolumeClaim web-1-disk0",
                     "Secret web-1-copy-creds"):
            self.assertIn(what + " deleted", deleted)
        self.assertLess(deleted.index("Pod web-1-convert deleted"),
                        deleted.index("PersistentVolumeClaim web-1-disk0 deleted"))
        # The provider's rollback ran after the cluster's, told the Pods did not all succeed.
        self.assertEqual(self.cleanup_inputs()[-1],
                         {"cluster": {"mode": "apply", "podsSucceeded": False, "vmBooted": False},
                          "rollback": True})

    def kill_during_wait(self, name, pod_name, copy_cmd=COPY, convert_cmd=CONVERT):
        """Starts migrate --apply, kills it (SIGKILL, whole group) while it
        waits for pod_name to finish, and returns the plan and the Pod's uid."""
        plan, config = self.write_plan(manifests(convert_cmd, copy_cmd=copy_cmd), name=name)
        p = subprocess.Popen(self.argv("migrate", plan, config, "--apply"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        try:
            wait_until(lambda: self.kube.kubectl("get", "-n", NS, "pod/" + pod_name, "-o",
                                                 "jsonpath={.status.phase}", ok=False)
                       .stdout == "Running", 60, "Pod %s running" % pod_name)
            os.killpg(p.pid, signal.SIGKILL)
        finally:
            p.communicate(timeout=60)
        self.assertEqual(p.returncode, -signal.SIGKILL)
        self.assertEqual(self.state()["step"], "apply")
        self.assertEqual(self.state()["status"], "running")
        return plan, config, self.kube.json("-n", NS, "pod/" + pod_name)["metadata"]["uid"]

    def resume_finds(self, plan, config, found, made_pods):
        n = len(self.kube.calls())
        r = self.run_pallet(*self.argv("migrate", plan, config, "--apply"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        ev = self.events(r.stdout)
        for what in found:
            self.assertTrue(any(e.get("event") == "apply" and what + " found" in
                                e.get("message", "") for e in ev), (what, ev))
        # Nothing made twice: what an earlier run made was found, not recreated.
        created = [c["path"] for c in self.kube.calls()[n:]
                   if c["method"] == "POST" and c["code"] == 201
                   and "dryRun" not in (c.get("query") or {})]
        self.assertEqual(len([x for x in created if x.endswith("/pods")]), made_pods, created)
        self.assertFalse([x for x in created if x.endswith("/persistentvolumeclaims")
                          or x.endswith("/secrets")], created)
        self.assertEqual(self.kube.json("-n", NS, "virtualmachine/web-1")["spec"]["runStrategy"],
                         "Always")
        with open(self.kube.backing_file("web-1-disk0", ns=NS), "rb") as f:
            head = f.read(1024)
        self.assertEqual((head[:6], head[512:521]), (b"COPIED", b"CONVERTED"))
        self.assertEqual(self.kube.json("-n", NS, "pods", "-l", "!kubevirt.io")["items"], [])
        return self.state()

    def test_3_kill_during_copy_wait_resumes(self):
        plan, config, uid_before = self.kill_during_wait(
            "resume", "web-1-ebs-copy",
            copy_cmd=("/bin/sh", "-c", "echo copying; sleep 4; printf COPIED | "
                      "dd of=/dev/block0 conv=notrunc status=none"))
        # The conversion Pod was not created while the copy ran.
        self.assertEqual(self.kube.kubectl("get", "-n", NS, "pod/web-1-convert",
                                           ok=False).returncode, 1)
        # The storage stage was done: not even looked at again.
        st = self.resume_finds(plan, config, ["Pod web-1-ebs-copy"], made_pods=1)
        objs = {o["name"]: o["uid"] for o in st["cluster"]["objects"]}
        self.assertEqual(objs["web-1-ebs-copy"], uid_before)

    def test_3b_kill_during_convert_wait_resumes(self):
        plan, config, uid_before = self.kill_during_wait(
            "resume2", "web-1-convert", convert_cmd=["/bin/sh", "-c", "sleep 4; " + CONVERT[2]])
        st = self.resume_finds(plan, config, ["Pod web-1-convert"], made_pods=0)
        self.assertIn("2-copy", st["cluster"]["stagesDone"])
        objs = {o["name"]: o["uid"] for o in st["cluster"]["objects"]}
        self.assertEqual(objs["web-1-convert"], uid_before)

    def test_3c_killed_run_rolled_back_by_labels(self):
        # Killed while the conversion ran, and (as if killed between a
        # create and the state write) the state lost its record of the
        # objects: `pallet cleanup` finds them by their labels.
        plan, config, _ = self.kill_during_wait(
            "lost", "web-1-convert", convert_cmd=["/bin/sh", "-c", "trap 'exit 143' TERM; sleep 60 & wait $!"])
        path = self.state_path()
        st = self.state()
        st["cluster"]["objects"] = []
        with open(path, "w") as f:
            json.dump(st, f)
        uid = st["migrationUID"]
        self.assertEqual(len(self.left(uid)), 4, self.left(uid))
        r = self.run_pallet(*self.argv("cleanup", plan, config))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.left(uid), [])
        self.assertEqual(self.kube.json("-n", NS, "pods", "-l", "!kubevirt.io")["items"], [])
        self.assertEqual(self.kube.json("pv")["items"], [])
        st = self.state()
        self.assertTrue(st["rolledBack"])
        found = {o["name"]: o["stage"] for o in st["cluster"]["objects"]}
        self.assertEqual(found.get("web-1-convert"), "found by label", found)
        self.assertEqual(self.cleanup_inputs()[-1],
                         {"cluster": {"mode": "apply", "podsSucceeded": False, "vmBooted": False},
                          "rollback": True})

    def test_4_manifest_mode_orders_files(self):
        plan, config = self.write_plan(manifests(["/bin/sh", "-c", "true"]), name="files")
        argv = self.argv("migrate", plan, config)
        argv = argv[:argv.index("--kubeconfig")]
        r = self.run_pallet(*argv)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        files = sorted(os.listdir(os.path.join(self.tmp, "state", "manifests", VM_ID)))
        self.assertEqual([f.split("-", 2)[1] for f in files],
                         ["storage", "storage", "copy", "convert", "vm", "vm"], files)
        self.assertTrue(files[-1].startswith("5-vm-") and "VirtualMachine" in files[-1])
        self.assertTrue(files[-2].startswith("4-vm-") and "ConfigMap" in files[-2])
        self.assertEqual(self.cleanup_inputs()[-1],
                         {"cluster": {"mode": "manifests"}, "rollback": False})
        # An unknown stage is an error naming it.
        objs = manifests(["/bin/sh", "-c", "true"])
        objs[0]["metadata"]["labels"]["pallet.dev/stage"] = "boot"
        plan, config = self.write_plan(objs, name="badstage")
        argv = self.argv("migrate", plan, config)
        argv = argv[:argv.index("--kubeconfig")]
        argv[argv.index("--state-dir") + 1] += "2"
        r = self.run_pallet(*argv)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("pallet.dev/stage=boot is not a stage", r.stdout + r.stderr)

    def kubeconfig_with(self, **change):
        with open(self.kube.kubeconfig) as f:
            kc = json.load(f)
        if "token" in change:
            kc["users"][0]["user"]["token"] = change["token"]
        if "server" in change:
            kc["clusters"][0]["cluster"]["server"] = change["server"]
        p = os.path.join(self.tmp, "kc-%d.json" % len(os.listdir(self.tmp)))
        with open(p, "w") as f:
            json.dump(kc, f)
        return p

    def validate(self, plan, config, kubeconfig, *extra):
        argv = self.argv("validate", plan, config, *extra)
        argv[argv.index("--kubeconfig") + 1] = kubeconfig
        return self.run_pallet(*argv)

    def test_5_preflight_findings(self):
        plan, config = self.write_plan(manifests(["/bin/sh", "-c", "true"]), name="pre")
        r = self.validate(plan, config, self.kube.kubeconfig)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        cases = [
            (self.kubeconfig_with(token="ro-token-1"), (), "ClusterUnauthorized",
             "forbidden to create pods in namespace vms"),
            (self.kubeconfig_with(token="wrong-token-x9"), (), "ClusterUnauthorized",
             "unauthorised to get namespaces"),
            (self.kubeconfig_with(server="https://127.0.0.1:9"), (), "ClusterUnreachable",
             "cannot connect"),
            (self.kube.kubeconfig, ("-n", "other"), "ClusterConfigInvalid",
             "-n other, but the plan's targetNamespace is vms"),
        ]
        for kc, extra, typ, text in cases:
            r = self.validate(plan, config, kc, *extra)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            found = [f for e in self.events(r.stdout) if e.get("event") == "validated"
                     for f in e["findings"] if f.get("type") == typ]
            self.assertTrue(found, r.stdout + r.stderr)
            self.assertIn(text, found[0]["message"])
            self.assertNotIn("x9", r.stdout + r.stderr)
            self.assertNotIn("ro-token-1", r.stdout + r.stderr)
        # A missing namespace, and migrate --apply stops before any VM moves.
        with open(plan) as f:
            p = json.load(f)
        p["targetNamespace"] = "nowhere"
        with open(plan, "w") as f:
            json.dump(p, f)
        r = self.run_pallet(*self.argv("migrate", plan, config, "--apply"))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("NamespaceNotFound", r.stdout + r.stderr)
        self.assertIn("namespace nowhere does not exist", r.stdout + r.stderr)
        self.assertIsNone(self.state_path())

    def remote_plan(self, token, name):
        """A Forklift plan whose destination Provider is the endpoint by
        spec.url, with its token and CA in the Provider's Secret."""
        kc = self.kube.config
        ca = base64.b64decode(kc["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
        docs = [
            {"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Provider",
             "metadata": {"name": "null-source", "namespace": "mtv"},
             "spec": {"type": "null", "url": "",
                      "settings": {"vms": [{"id": VM_ID, "name": "web-1", "cpus": 1,
                                            "memoryMiB": 512, "state": "stopped"}],
                                   "manifests": manifests(CONVERT),
                                   "cleanup_input_file": self.cleanup_log}}},
            {"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Provider",
             "metadata": {"name": "remote", "namespace": "mtv"},
             "spec": {"type": "openshift", "url": self.kube.url,
                      "secret": {"name": "remote-token", "namespace": "mtv"}}},
            {"apiVersion": "v1", "kind": "Secret",
             "metadata": {"name": "remote-token", "namespace": "mtv"},
             "stringData": {"token": token, "cacert": ca}},
            {"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Plan",
             "metadata": {"name": name, "namespace": "mtv"},
             "spec": {"targetNamespace": NS, "targetPowerState": "on",
                      "provider": {"source": {"name": "null-source", "namespace": "mtv"},
                                   "destination": {"name": "remote", "namespace": "mtv"}},
                      "vms": [{"id": VM_ID}]}},
        ]
        p = os.path.join(self.tmp, name + ".yaml")
        with open(p, "w") as f:
            f.write("\n---\n".join(json.dumps(d) for d in docs) + "\n")
        return p

    def run_remote(self, verb, plan, *extra):
        # No kubeconfig anywhere: only the destination Provider says where.
        env = dict(os.environ, HOME=self.tmp, KUBECONFIG=os.path.join(self.tmp, "none"))
        env.pop("KUBERNETES_SERVICE_HOST", None)
        return subprocess.run([PALLET, verb, plan, "--provider", "null", "--state-dir",
                               os.path.join(self.tmp, "state"), "-o", "json"] + list(extra),
                              capture_output=True, text=True, timeout=180, env=env)

    def test_5b_context_picks_the_cluster(self):
        # A kubeconfig whose current context is a cluster that is down, and
        # a second context for this endpoint: --context chooses, as kubectl's.
        with open(self.kube.kubeconfig) as f:
            kc = json.load(f)
        good = kc["contexts"][0]["name"]
        down = json.loads(json.dumps(kc["clusters"][0]))
        down["name"] = "down"
        down["cluster"]["server"] = "https://127.0.0.1:9"
        kc["clusters"].append(down)
        kc["contexts"].append({"name": "stale", "context": {
            "cluster": "down", "user": kc["contexts"][0]["context"]["user"]}})
        kc["current-context"] = "stale"
        path = os.path.join(self.tmp, "two-contexts.json")
        with open(path, "w") as f:
            json.dump(kc, f)
        plan, config = self.write_plan(manifests(["/bin/sh", "-c", "true"]), name="ctx")
        for extra, rc, typ, text in (((), 1, "ClusterUnreachable", "cannot connect"),
                                     (("--context", good), 0, None, None),
                                     (("--context", "nope"), 1, "ClusterConfigInvalid", "nope")):
            r = self.validate(plan, config, path, *extra)
            self.assertEqual(r.returncode, rc, r.stdout + r.stderr)
            if typ:
                found = [f for e in self.events(r.stdout) if e.get("event") == "validated"
                         for f in e["findings"] if f.get("type") == typ]
                self.assertTrue(found, r.stdout + r.stderr)
                self.assertIn(text, found[0]["message"])
        # And migrate --apply with --context goes to that cluster.
        argv = self.argv("migrate", plan, config, "--apply", "--context", good)
        argv[argv.index("--kubeconfig") + 1] = path
        r = self.run_pallet(*argv)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.kube.json("-n", NS, "virtualmachine/web-1")["metadata"]["labels"]
                         ["migration"], self.state()["migrationUID"])

    def test_6_remote_destination_provider(self):
        bad = self.remote_plan("wrong-token-x9", "remote-bad")
        r = self.run_remote("validate", bad)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        found = [f for e in self.events(r.stdout) if e.get("event") == "validated"
                 for f in e["findings"] if f.get("type") == "ClusterUnauthorized"]
        self.assertTrue(found, r.stdout + r.stderr)
        self.assertIn("the destination Provider remote", found[0]["message"])
        self.assertNotIn("x9", r.stdout + r.stderr)
        good = self.remote_plan(self.kube.config["users"][0]["user"]["token"], "remote-good")
        r = self.run_remote("validate", good)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.run_remote("migrate", good, "--apply")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        vm = self.kube.json("-n", NS, "virtualmachine/web-1")
        self.assertEqual(vm["spec"]["runStrategy"], "Always")
        self.assertEqual(vm["metadata"]["labels"]["migration"], self.state()["migrationUID"])

    # --- the boot stage ---------------------------------------------------
    # The endpoint runs a started VM as QEMU (TCG) on its claim's file,
    # as KubeVirt would: a VMI, Running and Ready while QEMU runs, and a
    # virt-launcher Pod whose guest-console-log log is the serial console.

    def boot_plan(self, name, convert_cmd=CONVERT, **ann):
        objs = manifests(convert_cmd)
        vm = [o for o in objs if o["kind"] == "VirtualMachine"][0]
        vm["metadata"]["annotations"].update(ann)
        return self.write_plan(objs, name=name), vm

    def boot_events(self, out):
        ev = self.events(out)
        return ([e for e in ev if e.get("event") == "wait" and e.get("status") == "boot"],
                [e for e in ev if e.get("event") == "boot"])

    def assert_nothing_left(self, st):
        self.assertTrue(st["rolledBack"])
        self.assertEqual(self.left(st["migrationUID"]), [])
        self.assertEqual(self.kube.json("-n", NS, "virtualmachines")["items"], [])
        self.assertEqual(self.kube.json("-n", NS, "virtualmachineinstances")["items"], [])
        self.assertEqual(self.kube.json("-n", NS, "pods")["items"], [], "no launcher Pod")
        self.assertEqual(self.kube.json("-n", NS, "pvc")["items"], [])
        self.assertEqual(self.kube.json("pv")["items"], [])

    def test_7_no_boot_is_a_timeout_not_a_failure(self):
        # The disk holds no guest: QEMU runs (Ready), nothing boots.
        # Without verify-boot the VM succeeds; the provider hears it did not boot.
        (plan, config), _ = self.boot_plan("noboot")
        r = self.run_pallet(*self.argv("migrate", plan, config, "--apply"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        st = self.state()
        boot = st["cluster"]["boot"]
        self.assertEqual((boot["result"], boot["verifyBoot"]), ("timeout", "false"), boot)
        self.assertGreaterEqual(boot["waitedSeconds"], 2)
        self.assertIn("6-boot", st["cluster"]["stagesDone"])
        self.assertEqual(st["status"], "succeeded")
        waits, outcome = self.boot_events(r.stdout)
        self.assertTrue(waits and all(w["vmi"] == "web-1" for w in waits), waits)
        self.assertEqual([e["status"] for e in outcome], ["timeout"])
        self.assertIn("VirtualMachine vms/web-1 did not boot", outcome[0]["message"])
        self.assertEqual(self.cleanup_inputs()[-1]["cluster"]["vmBooted"], False)
        # pallet status -o json shows it.
        s = subprocess.run([PALLET, "status", "--state-dir", os.path.join(self.tmp, "state"),
                            "-o", "json"], capture_output=True, text=True, timeout=60)
        self.assertEqual(s.returncode, 0, s.stderr)
        self.assertEqual(json.loads(s.stdout)["vms"][0]["cluster"]["boot"]["result"], "timeout")
        s = subprocess.run([PALLET, "status", "--state-dir", os.path.join(self.tmp, "state")],
                           capture_output=True, text=True, timeout=60)
        self.assertIn("  boot: timeout, ", s.stdout)

    def test_7b_verify_boot_true_fails_and_rolls_back(self):
        (plan, config), _ = self.boot_plan("bootfail", **{"pallet.dev/verify-boot": "true",
                                                          "pallet.dev/verify-boot-timeout": "8"})
        r = self.run_pallet(*self.argv("migrate", plan, config, "--apply"))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        st = self.state()
        self.assertEqual((st["status"], st["failedStep"]), ("failed", "apply"))
        msg = st["error"]["message"]
        self.assertIn("VirtualMachine vms/web-1 did not boot", msg)
        self.assertIn("VirtualMachineInstance phase Running", msg)
        self.assertIn("Ready=True", msg)
        self.assertIn("last console line: ", msg)
        self.assertIn("verify-boot: true", msg)
        boot = st["cluster"]["boot"]
        self.assertEqual((boot["result"], boot["phase"]), ("timeout", "Running"))
        # SeaBIOS says nothing on the serial console; nothing else ran.
        self.assertEqual(boot["consoleTail"], [])
        self.assertIn("last console line: (none)", msg)
        self.assert_nothing_left(st)
        self.assertEqual(self.cleanup_inputs()[-1],
                         {"cluster": {"mode": "apply", "podsSucceeded": True, "vmBooted": False},
                          "rollback": True})

    def test_7c_warn_succeeds_with_a_warning(self):
        (plan, config), _ = self.boot_plan("bootwarn", **{"pallet.dev/verify-boot": "warn"})
        r = self.run_pallet(*self.argv("migrate", plan, config, "--apply"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.state()["status"], "succeeded")
        warn = [x for x in r.stderr.splitlines() if x.startswith("pallet: warning: web-1: ")
                and "did not boot" in x]
        self.assertTrue(warn, r.stdout + r.stderr)
        self.assertIn("verify-boot: warn, so the migration goes on", warn[0])
        self.assertEqual(self.cleanup_inputs()[-1]["cluster"]["vmBooted"], False)

    def test_7d_console_line_is_the_evidence(self):
        # A guest that boots: a boot sector printing a login prompt.
        (plan, config), _ = self.boot_plan(
            "bootcons", convert_cmd=boot_sector_cmd("Pallet test guest\r\nweb-1 login: "),
            **{"pallet.dev/verify-boot": "true", "pallet.dev/verify-boot-timeout": "120"})
        t0 = time.time()
        r = self.run_pallet(*self.argv("migrate", plan, config, "--apply"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        boot = self.state()["cluster"]["boot"]
        self.assertEqual((boot["result"], boot["evidence"], boot["line"]),
                         ("booted", "console", "web-1 login:"), boot)
        self.assertIn("Pallet test guest", boot["consoleTail"])
        self.assertLess(time.time() - t0, 100, "booted before the timeout")
        self.assertEqual(self.cleanup_inputs()[-1]["cluster"],
                         {"mode": "apply", "podsSucceeded": True, "vmBooted": True})
        _, outcome = self.boot_events(r.stdout)
        self.assertEqual([(e["status"], e["evidence"]) for e in outcome], [("booted", "console")])

    def test_7e_the_providers_boot_pattern(self):
        (plan, config), _ = self.boot_plan(
            "bootpat", convert_cmd=boot_sector_cmd("login: is not it\r\nREADY 42\r\n"),
            **{"pallet.dev/verify-boot": "true", "pallet.dev/verify-boot-timeout": "120",
               "pallet.dev/boot-pattern": "^READY [0-9]+$"})
        r = self.run_pallet(*self.argv("migrate", plan, config, "--apply"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        boot = self.state()["cluster"]["boot"]
        self.assertEqual((boot["line"], boot["pattern"]), ("READY 42", "^READY [0-9]+$"))

    def test_7f_failed_vmi_fails_at_once(self):
        # A volume kind the endpoint (like a KubeVirt without it) cannot
        # run: the VMI goes Failed, and the wait ends then.
        (plan, config), vm = self.boot_plan("bootvmifail", **{
            "pallet.dev/verify-boot": "true", "pallet.dev/verify-boot-timeout": "120"})
        vm["spec"]["template"]["spec"]["volumes"].append(
            {"name": "cloudinit", "cloudInitNoCloud": {"userData": "#cloud-config\n"}})
        plan, config = self.write_plan(manifests_with(vm), name="bootvmifail")
        t0 = time.time()
        r = self.run_pallet(*self.argv("migrate", plan, config, "--apply"))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertLess(time.time() - t0, 90, "not the 120 s timeout")
        st = self.state()
        self.assertEqual((st["cluster"]["boot"]["result"], st["cluster"]["boot"]["phase"]),
                         ("failed", "Failed"))
        self.assertIn("failed to boot: VirtualMachineInstance phase Failed", st["error"]["message"])
        self.assert_nothing_left(st)

    def test_7g_bad_annotations_are_errors(self):
        for ann, text in ((("pallet.dev/verify-boot", "yes"),
                           'annotation pallet.dev/verify-boot is "yes"; use true, false or warn'),
                          (("pallet.dev/verify-boot-timeout", "0"),
                           'pallet.dev/verify-boot-timeout is "0"; give seconds'),
                          (("pallet.dev/boot-pattern", "login:("),
                           'pallet.dev/boot-pattern "login:(" is not an extended regular')):
            (plan, config), _ = self.boot_plan("badann" + ann[1][:1], **{ann[0]: ann[1]})
            sd = os.path.join(self.tmp, "state")
            r = self.run_pallet(*self.argv("migrate", plan, config, "--apply"))
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn(text, self.state()["error"]["message"])
            self.assertEqual(self.left(self.state()["migrationUID"]), [])
            subprocess.run(["rm", "-rf", sd], check=True)

    def test_7h_kill_during_boot_wait_resumes_at_boot(self):
        (plan, config), _ = self.boot_plan("bootkill", **{"pallet.dev/verify-boot-timeout": "6"})
        p = subprocess.Popen(self.argv("migrate", plan, config, "--apply"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        try:
            wait_until(lambda: self.state_path() and
                       self.state().get("cluster", {}).get("stage") == "boot", 60, "boot wait")
            os.killpg(p.pid, signal.SIGKILL)
        finally:
            p.communicate(timeout=60)
        self.assertNotIn("6-boot", self.state()["cluster"]["stagesDone"])
        vm_uid = self.kube.json("-n", NS, "virtualmachine/web-1")["metadata"]["uid"]
        n = len(self.kube.calls())
        r = self.run_pallet(*self.argv("migrate", plan, config, "--apply"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        created = [c["path"] for c in self.kube.calls()[n:] if c["method"] == "POST"
                   and c["code"] == 201 and "dryRun" not in (c.get("query") or {})]
        self.assertEqual(created, [], "nothing made again")
        waits, outcome = self.boot_events(r.stdout)
        self.assertTrue(waits, r.stdout)
        self.assertEqual([e["status"] for e in outcome], ["timeout"])
        self.assertGreaterEqual(self.state()["cluster"]["boot"]["waitedSeconds"], 6,
                                "the wait started over")
        self.assertEqual(self.kube.json("-n", NS, "virtualmachine/web-1")["metadata"]["uid"],
                         vm_uid)

    def test_7h2_cancel_during_boot_wait_rolls_back(self):
        (plan, config), _ = self.boot_plan("bootcancel", **{"pallet.dev/verify-boot-timeout": "60"})
        sd = os.path.join(self.tmp, "state")
        p = subprocess.Popen(self.argv("migrate", plan, config, "--apply"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: self.state_path() and
                       self.state().get("cluster", {}).get("stage") == "boot", 60, "boot wait")
            c = self.run_pallet(PALLET, "cancel", "--state-dir", sd)
            self.assertEqual(c.returncode, 0, c.stdout + c.stderr)
            out, err = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate(timeout=60)
        self.assertNotEqual(p.returncode, 0, out + err)
        st = self.state()
        self.assertEqual(st["status"], "cancelled", out + err)
        self.assertNotIn("boot", st["cluster"], "no outcome recorded for a cancelled wait")
        self.assert_nothing_left(st)

    def test_7i_halted_vm_is_not_started(self):
        objs = manifests(CONVERT)
        vm = [o for o in objs if o["kind"] == "VirtualMachine"][0]
        vm["metadata"]["annotations"]["pallet.dev/target-run-strategy"] = "Halted"
        plan, config = self.write_plan(objs, name="halted")
        r = self.run_pallet(*self.argv("migrate", plan, config, "--apply"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.state()["cluster"]["boot"]["result"], "not-started")
        self.assertEqual(self.boot_events(r.stdout)[0], [], "no wait")


if __name__ == "__main__":
    unittest.main(verbosity=2)
