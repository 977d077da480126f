# SPDX-License-Identifier: Apache-2.0
"""Cluster mode (`pallet migrate --apply`) against pallet-kube-endpoint,
with the null provider's build_vm items standing in for a real
provider's (same labels, same stage contract): storage, then copy Pods
waited for, then the conversion Pod, then the VM started by patching its
runStrategy; a failing conversion Pod rolls everything back with its
exit code and log in the state; kill -9 during a wait resumes without
making anything twice; the preflight names what is wrong.  Every check
of the cluster is made with the real kubectl."""

import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "kube-endpoint"))
from kube_fixture import KubeEndpoint, block_pvc, pod, storage_class, wait_until  # noqa: E402

PALLET = os.environ.get("PALLET_BIN", "pallet")
NS = "vms"
VM_ID = "vm-0001"
LABEL = "vmID=" + VM_ID


def stage(obj, name):
    obj["metadata"].setdefault("labels", {})["pallet.dev/stage"] = name
    obj["metadata"]["namespace"] = NS
    return obj


def manifests(convert_cmd, copy_cmd=("/bin/sh", "-c", "echo copying; echo copied")):
    pvc = stage(block_pvc("web-1-disk0", sc="local"), "storage")
    secret = stage({"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": "web-1-copy-creds"},
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
                             "annotations": {"pallet.dev/target-run-strategy": "Always"}},
                "spec": {"runStrategy": "Halted", "template": {"spec": {"volumes": [
                    {"name": "disk0", "persistentVolumeClaim": {"claimName": "web-1-disk0"}}
                ]}}}}, "vm")
    # Emitted out of order on purpose: the host orders by stage.
    return [vm, cm, conv, copy, pvc, secret]


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
        # Each test starts from an empty namespace, whatever the last one left.
        self.kube.kubectl("delete", "-n", NS, "--all", "--wait=true",
                          "pods,pvc,secrets,configmaps,virtualmachines", timeout=180)
        self.kube.kubectl("delete", "--all", "pv", timeout=180)

    def setUp(self):
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
        plan, config = self.write_plan(manifests(["/bin/sh", "-c", "echo converted"]))
        t0 = time.time()
        r = self.run_pallet(*self.argv("migrate", plan, config, "--apply"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        st = self.state()
        self.assertEqual(st["status"], "succeeded")
        self.assertIn("apply", st["completed"])
        self.assertTrue(st["cluster"]["podsSucceeded"])
        uid = st["migrationUID"]
        # Storage, copy Pod, conversion Pod, then the ConfigMap and the VM.
        # (Within a stage, the provider's order.)
        self.assertEqual(self.post_order()[-6:], ["persistentvolumeclaims", "secrets", "pods",
                                                  "pods", "configmaps", "virtualmachines"])
        ev = self.events(r.stdout)
        waits = [e for e in ev if e.get("event") == "wait"]
        self.assertTrue(any(e.get("pod") == "web-1-ebs-copy" and e.get("phase") == "Succeeded"
                            for e in waits), waits)
        conv_created = [i for i, e in enumerate(ev) if e.get("event") == "apply"
                        and "Pod web-1-convert created" in e.get("message", "")]
        copy_done = [i for i, e in enumerate(ev) if e.get("event") == "wait"
                     and e.get("pod") == "web-1-ebs-copy" and e.get("phase") == "Succeeded"]
        self.assertTrue(conv_created and copy_done and copy_done[0] < conv_created[0], ev)
        # The VM started; the finished Pods gone; storage and VM stay.
        vm = self.kube.json("-n", NS, "virtualmachine/web-1")
        self.assertEqual(vm["spec"]["runStrategy"], "Always")
        self.assertEqual(vm["metadata"]["labels"]["migration"], uid)
        left = self.left(uid)
        self.assertNotIn("pods/web-1-ebs-copy", left)
        self.assertNotIn("pods/web-1-convert", left)
        self.assertIn("pvc/web-1-disk0", left)
        self.assertIn("virtualmachines/web-1", left)
        # cleanup learnt that the Pods ran.
        self.assertEqual(self.cleanup_inputs()[-1],
                         {"cluster": {"mode": "apply", "podsSucceeded": True}, "rollback": False})
        print("apply run: %.1f s" % (time.time() - t0))
        # Resume of a finished plan: nothing applied again.
        n = len(self.kube.calls())
        r = self.run_pallet(*self.argv("migrate", plan, config, "--apply"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertFalse([c for c in self.kube.calls()[n:] if c["method"] != "GET"
                          and "dryRun" not in (c.get("query") or {})])
        for o in ("virtualmachine/web-1", "pvc/web-1-disk0", "secret/web-1-copy-creds",
                  "configmap/web-1-extra"):
            self.kube.kubectl("delete", "-n", NS, o)

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
        self.assertEqual(self.left(st["migrationUID"]), [])
        self.assertEqual(self.kube.json("-n", NS, "pods")["items"], [])
        # The provider's rollback ran after the cluster's, told the Pods did not all succeed.
        self.assertEqual(self.cleanup_inputs()[-1],
                         {"cluster": {"mode": "apply", "podsSucceeded": False}, "rollback": True})

    def test_3_kill_during_wait_resumes(self):
        plan, config = self.write_plan(manifests(
            ["/bin/sh", "-c", "echo converted"],
            copy_cmd=("/bin/sh", "-c", "echo copying; sleep 4; echo copied")), name="resume")
        p = subprocess.Popen(self.argv("migrate", plan, config, "--apply"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        try:
            wait_until(lambda: self.kube.kubectl("get", "-n", NS, "pod/web-1-ebs-copy", "-o",
                                                 "jsonpath={.status.phase}", ok=False)
                       .stdout == "Running", 60, "the copy Pod running")
            os.killpg(p.pid, signal.SIGKILL)
        finally:
            p.communicate(timeout=60)
        uid_before = self.kube.json("-n", NS, "pod/web-1-ebs-copy")["metadata"]["uid"]
        self.assertEqual(self.state()["step"], "apply")
        n = len(self.kube.calls())
        r = self.run_pallet(*self.argv("migrate", plan, config, "--apply"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        ev = self.events(r.stdout)
        self.assertTrue(any(e.get("event") == "apply" and "Pod web-1-ebs-copy found" in
                            e.get("message", "") for e in ev), ev)
        # Nothing made twice: the storage and the copy Pod were found, not recreated.
        created = [c["path"] for c in self.kube.calls()[n:]
                   if c["method"] == "POST" and c["code"] == 201
                   and "dryRun" not in (c.get("query") or {})]
        self.assertEqual(len([x for x in created if x.endswith("/pods")]), 1, created)  # convert
        self.assertFalse([x for x in created if x.endswith("/persistentvolumeclaims")])
        st = self.state()
        objs = {o["name"]: o["uid"] for o in st["cluster"]["objects"]}
        self.assertEqual(objs["web-1-ebs-copy"], uid_before)
        self.assertEqual(self.kube.json("-n", NS, "virtualmachine/web-1")["spec"]["runStrategy"],
                         "Always")
        # `pallet cleanup` of a succeeded VM removes no VM.
        for o in ("virtualmachine/web-1", "pvc/web-1-disk0", "secret/web-1-copy-creds",
                  "configmap/web-1-extra"):
            self.kube.kubectl("delete", "-n", NS, o)

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


if __name__ == "__main__":
    unittest.main(verbosity=2)
