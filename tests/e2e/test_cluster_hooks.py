# SPDX-License-Identifier: Apache-2.0
"""Forklift Hooks with the null provider: in cluster mode the PreHook Pod
runs (and is waited for) before prepare_source, the PostHook Pod after
the VM was made; a failing PreHook stops the VM before prepare_source
with the hook's log tail, a failing PostHook fails the VM without
rolling it back; kill -9 during a hook and the rerun neither makes it
twice nor reruns one that succeeded.  Without --apply the hooks are
written with the manifests and not run, or run as local processes with
--run-hooks-locally.  The plan side (a missing Hook, an unknown field)
through `pallet validate` on Forklift YAML.  The hook image is a tiny
root filesystem: dash, an /bin/entrypoint that execs its arguments and
an ansible-runner that runs the playbook with sh (the playbooks here
are shell scripts that are also YAML scalars)."""

import base64
import glob
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
sys.path.insert(0, os.path.join(HERE, "..", "kube-endpoint"))
from kube_fixture import KubeEndpoint, storage_class, wait_until  # noqa: E402
from test_cluster_apply import CONVERT, NS, VM_ID, manifests  # noqa: E402

PALLET = os.environ.get("PALLET_BIN", "pallet")
IMAGE = "localhost/hook-runner:test"

RUNNER = """#!/bin/sh
# ansible-runner run DIR -p PLAYBOOK, the playbook being a shell script.
while [ $# -gt 0 ]; do [ "$1" = -p ] && exec /bin/sh "$2"; shift; done
echo "fatal: no playbook" >&2; exit 2
"""


def make_rootfs(root):
    for d in ("bin", "usr", "lib/x86_64-linux-gnu", "lib64", "tmp", "dev", "proc", "etc"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy("/bin/dash", os.path.join(root, "bin", "sh"))
    shutil.copy("/bin/sleep", os.path.join(root, "bin", "sleep"))
    for lib in ("/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"):
        shutil.copy(os.path.realpath(lib), os.path.join(root, lib.lstrip("/")))
    for name, text in (("entrypoint", '#!/bin/sh\nexec "$@"\n'), ("ansible-runner", RUNNER)):
        p = os.path.join(root, "bin", name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, 0o755)


def hook(step, script, deadline=0, name=None):
    return {"step": step, "hook": {"name": name or step.lower(), "namespace": NS},
            "image": IMAGE, "playbook": base64.b64encode(script.encode()).decode(),
            "playbookText": script, "deadline": deadline}


# Shows the files Forklift mounts are there; the workload names the VM.
PRE_OK = ("test -s /tmp/hook/plan.yml || exit 7\n"
          "while read -r l; do case $l in *%s*) echo \"prehook saw $l\";; esac; done"
          " < /tmp/hook/workload.yml\necho prehook-ran\n" % VM_ID)
PRE_FAIL = "echo checking the source\necho 'fatal: the source is not quiesced' >&2\nexit 3\n"
POST_FAIL = "echo post step one\necho 'error: smoke test of the VM failed'\nexit 4\n"


class ClusterHooks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="pallet-hook-rootfs-")
        make_rootfs(cls.root)
        cls.kube = KubeEndpoint(("--image", "debian=host", "--image", "%s=%s" % (IMAGE, cls.root)))
        cls.kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
                        storage_class("local")])

    @classmethod
    def tearDownClass(cls):
        cls.kube.stop()
        shutil.rmtree(cls.root, ignore_errors=True)

    def tearDown(self):
        self.kube.kubectl("delete", "-n", NS, "--all", "--wait=true",
                          "pods,pvc,secrets,configmaps,virtualmachines", timeout=180)
        self.kube.kubectl("delete", "--all", "pv", timeout=180)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pallet-hooks-test-", dir=self.kube.tmp)
        self.count = os.path.join(self.tmp, "calls.txt")

    def write_plan(self, hooks, convert=CONVERT):
        plan = {"name": "web", "uid": "00000000-0000-4000-8000-0000000000aa",
                "type": "cold", "targetNamespace": NS, "targetPowerState": "on",
                "spec": {"targetNamespace": NS},
                "vms": [{"id": VM_ID, "name": "web-1", "index": 0, "hooks": hooks}],
                "networkMap": [], "storageMap": [],
                "source": {"name": "null-source", "type": "null", "url": "", "settings": {}},
                "destination": {"name": "host", "type": "openshift", "url": "", "settings": {}}}
        config = {"provider": {"metadata": {"name": "null-source"}, "spec": {"type": "null"}},
                  "secret": {}, "settings": {"manifests": manifests(convert),
                                             "count_file": self.count}}
        p, c = os.path.join(self.tmp, "plan.json"), os.path.join(self.tmp, "config.json")
        with open(p, "w") as f:
            json.dump(plan, f)
        with open(c, "w") as f:
            json.dump(config, f)
        return p, c

    def argv(self, plan, config, *extra):
        return [PALLET, "migrate", "--normalized", plan, "--provider", "null", "--config", config,
                "--state-dir", os.path.join(self.tmp, "state"), "-o", "json"] + list(extra)

    def apply_argv(self, plan, config):
        return self.argv(plan, config, "--apply", "--kubeconfig", self.kube.kubeconfig)

    def run_pallet(self, argv, timeout=180):
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)

    def events(self, out):
        return [json.loads(x) for x in out.splitlines() if x.startswith("{")]

    def state(self):
        with open(glob.glob(os.path.join(self.tmp, "state", "vm-%s-*.json" % VM_ID))[0]) as f:
            return json.load(f)

    def calls(self):
        if not os.path.exists(self.count):
            return []
        with open(self.count) as f:
            return [ln.split()[1] for ln in f if "rollback" not in ln
                    and ln.split()[1] not in ("open", "close")]

    def index(self, evs, pred):
        for i, e in enumerate(evs):
            if pred(e):
                return i
        raise AssertionError("no such event in %s" % [(e.get("what"), e.get("step"),
                                                       e.get("status")) for e in evs])

    def test_1_prehook_before_prepare_source_posthook_after(self):
        plan, config = self.write_plan([hook("PreHook", PRE_OK),
                                        hook("PostHook", "echo posthook-ran\n", deadline=30)])
        r = self.run_pallet(self.apply_argv(plan, config))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        evs = self.events(r.stdout)
        pre = self.index(evs, lambda e: e.get("step") == "PreHook" and e.get("status") == "succeeded")
        prep = self.index(evs, lambda e: e.get("step") == "prepare_source"
                          and e.get("status") == "started")
        apply_done = self.index(evs, lambda e: e.get("step") == "apply" and e.get("status") == "done")
        post = self.index(evs, lambda e: e.get("step") == "PostHook"
                          and e.get("status") == "succeeded")
        self.assertLess(pre, prep)
        self.assertLess(apply_done, post)
        st = self.state()
        self.assertEqual(st["status"], "succeeded")
        self.assertEqual(st["hooks"]["PreHook"]["status"], "succeeded")
        self.assertEqual(st["hooks"]["PostHook"]["status"], "succeeded")
        # The Pod Forklift's hook runner makes, as written beside the manifests.
        pod_file = glob.glob(os.path.join(self.tmp, "state", "manifests", VM_ID, "hooks",
                                          "PostHook-Pod.json"))[0]
        with open(pod_file) as f:
            pod = json.load(f)
        c = pod["spec"]["containers"][0]
        self.assertEqual(c["name"], "hook")
        self.assertEqual(c["command"][:2], ["/bin/entrypoint", "ansible-runner"])
        self.assertEqual(c["volumeMounts"], [{"name": "hook", "mountPath": "/tmp/hook"}])
        self.assertEqual(pod["spec"]["activeDeadlineSeconds"], 30)
        self.assertEqual(pod["spec"]["restartPolicy"], "Never")
        self.assertEqual(pod["metadata"]["labels"]["step"], "PostHook")
        # Hook Pods and ConfigMaps are gone like the other finished Pods.
        left = self.kube.json("pods,configmaps", "-n", NS, "-l", "resource=hook-config")["items"]
        self.assertEqual(left, [])

    def test_2_failing_prehook_touches_nothing(self):
        plan, config = self.write_plan([hook("PreHook", PRE_FAIL)])
        r = self.run_pallet(self.apply_argv(plan, config))
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        st = self.state()
        self.assertEqual(st["status"], "failed")
        self.assertEqual(st["failedStep"], "prehook")
        self.assertIn("the source is not quiesced", st["error"]["message"])
        self.assertIn("exit code 3", st["error"]["message"])
        calls = self.calls()
        self.assertNotIn("prepare_source", calls)
        self.assertNotIn("transfer", calls)
        self.assertEqual([c for c in calls if c != "cleanup"], ["validate"])
        left = self.kube.json("pods,configmaps", "-n", NS, "-l", "resource=hook-config")["items"]
        self.assertEqual(left, [])

    def test_3_failing_posthook_keeps_the_vm(self):
        plan, config = self.write_plan([hook("PostHook", POST_FAIL)])
        r = self.run_pallet(self.apply_argv(plan, config))
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        st = self.state()
        self.assertEqual(st["status"], "failed")
        self.assertEqual(st["failedStep"], "posthook")
        msg = st["error"]["message"]
        self.assertIn("smoke test of the VM failed", msg)
        self.assertIn("post step one", msg)
        self.assertIn("not rolled back", msg)
        # The VM stays; nothing was rolled back.
        self.kube.json("virtualmachine", "-n", NS, "web-1")
        with open(self.count) as f:
            self.assertNotIn("rollback", f.read())
        # A rerun runs the PostHook again (and only it).
        n = len(self.calls())
        r = self.run_pallet(self.apply_argv(plan, config))
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(self.calls()[n:], [])
        self.assertIn("posthook", [e.get("step") for e in self.events(r.stdout)])

    def test_4_kill_during_prehook_then_resume_does_not_rerun(self):
        plan, config = self.write_plan([hook("PreHook", "sleep 3; echo slow-prehook\n"),
                                        hook("PostHook", "echo post\n")])
        p = subprocess.Popen(self.apply_argv(plan, config), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        wait_until(lambda: self.kube.json("pods", "-n", NS, "-l", "step=PreHook")["items"], 60,
                   "the PreHook Pod")
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=30)
        n = len(self.kube.calls())
        r = self.run_pallet(self.apply_argv(plan, config))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        made = [c for c in self.kube.calls()[n:] if c["method"] == "POST"
                and c["code"] == 201 and c["path"].endswith("/pods")
                and "dryRun" not in (c.get("query") or {})]
        # The rerun found the PreHook Pod (409, then waited for it): it
        # made the copy, conversion and PostHook Pods only.
        self.assertEqual(len(made), 3, made)
        self.assertEqual(self.calls().count("prepare_source"), 1)
        st = self.state()
        self.assertEqual(st["hooks"]["PreHook"]["status"], "succeeded")
        # A third run: everything done, no hook made again.
        n = len(self.kube.calls())
        r = self.run_pallet(self.apply_argv(plan, config))
        self.assertEqual(r.returncode, 0)
        self.assertEqual([c for c in self.kube.calls()[n:] if c["method"] == "POST"
                          and "dryRun" not in (c.get("query") or {})], [])

    def test_5_without_apply_written_not_run(self):
        plan, config = self.write_plan([hook("PreHook", PRE_FAIL)])
        r = self.run_pallet(self.argv(plan, config))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        st = self.state()
        self.assertEqual(st["hooks"]["PreHook"]["status"], "not run")
        self.assertIn("--run-hooks-locally", st["hooks"]["PreHook"]["message"])
        files = sorted(os.path.basename(f) for f in glob.glob(
            os.path.join(self.tmp, "state", "manifests", VM_ID, "hooks", "*.json")))
        self.assertEqual(files, ["PreHook-ConfigMap.json", "PreHook-Pod.json"])
        with open(os.path.join(self.tmp, "state", "manifests", VM_ID, "hooks",
                               "PreHook-ConfigMap.json")) as f:
            cm = json.load(f)
        self.assertEqual(sorted(cm["data"]), ["plan.yml", "playbook.yml", "workload.yml"])
        self.assertEqual(cm["data"]["playbook.yml"], PRE_FAIL)

    def test_6_run_hooks_locally(self):
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir)
        with open(os.path.join(bindir, "ansible-runner"), "w") as f:
            # Locally the playbook path is the temporary directory's.
            f.write(RUNNER.replace("/bin/sh \"$2\"", "/bin/sh \"$2\" \"$HOOK_DIR\""))
        os.chmod(os.path.join(bindir, "ansible-runner"), 0o755)
        env = dict(os.environ, PATH=bindir + ":" + os.environ["PATH"])
        marker = os.path.join(self.tmp, "marker")
        plan, config = self.write_plan([hook("PreHook", "test -s \"$1/workload.yml\" || exit 5\n"
                                             "echo ran > %s\n" % marker)])
        r = subprocess.run(self.argv(plan, config, "--run-hooks-locally"), capture_output=True,
                           text=True, timeout=120, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(marker) as f:
            self.assertEqual(f.read(), "ran\n")
        self.assertEqual(self.state()["hooks"]["PreHook"]["status"], "succeeded")
        # A failing one locally: the VM fails before prepare_source, with the log tail.
        shutil.rmtree(os.path.join(self.tmp, "state"))
        os.unlink(self.count)
        plan, config = self.write_plan([hook("PreHook", PRE_FAIL)])
        r = subprocess.run(self.argv(plan, config, "--run-hooks-locally"), capture_output=True,
                           text=True, timeout=120, env=env)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("the source is not quiesced", self.state()["error"]["message"])
        self.assertNotIn("prepare_source", self.calls())


class PlanHooks(unittest.TestCase):
    """The Forklift YAML side, through `pallet validate`."""

    YAML = """
apiVersion: forklift.konveyor.io/v1beta1
kind: Provider
metadata: {name: src, namespace: mtv}
spec: {type: "null", secret: {name: s, namespace: mtv}}
---
apiVersion: v1
kind: Secret
metadata: {name: s, namespace: mtv}
stringData: {a: b}
---
apiVersion: forklift.konveyor.io/v1beta1
kind: Hook
metadata: {name: check, namespace: mtv}
spec:
  image: quay.io/kubev2v/hook-runner
  %s: ZWNobyBoaQo=
---
apiVersion: forklift.konveyor.io/v1beta1
kind: Plan
metadata: {name: p, namespace: mtv}
spec:
  provider: {source: {name: src}}
  vms:
  - id: vm-1
    hooks:
    - {hook: {name: %s}, step: PreHook}
"""

    def validate(self, field, ref):
        d = tempfile.mkdtemp(prefix="pallet-hook-plan-")
        p = os.path.join(d, "plan.yaml")
        with open(p, "w") as f:
            f.write(self.YAML % (field, ref))
        r = subprocess.run([PALLET, "validate", p, "--provider", "null"], capture_output=True,
                           text=True, timeout=60)
        shutil.rmtree(d)
        return r

    def test_missing_hook_is_named(self):
        r = self.validate("playbook", "nope")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('spec.vms[0].hooks[0].hook: Hook "nope" in namespace "mtv" was not found',
                      r.stderr)

    def test_unknown_hook_field(self):
        r = self.validate("playbok", "check")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('unknown field "playbok"', r.stderr)
        self.assertIn("did you mean playbook?", r.stderr)

    def test_good_hook_validates(self):
        r = self.validate("playbook", "check")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
