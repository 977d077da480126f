# SPDX-License-Identifier: Apache-2.0
"""pallet-kube-endpoint's wire, checked by the real kubectl: discovery,
apply/get/wait/logs/delete, patches, watches, auth and TLS, and Pods run
as sandboxed processes (block PVCs, Secrets as env, exit codes)."""

import base64
import json
import os
import subprocess
import tempfile
import time
import unittest

from kube_fixture import KubeEndpoint, block_pvc, pod, storage_class, wait_until

MIB = 1 << 20


class _Base(unittest.TestCase):
    ARGS = ("--image", "debian=host", "--readonly-token", "pallet-readonly-token")

    @classmethod
    def setUpClass(cls):
        cls.ep = KubeEndpoint(cls.ARGS)

    @classmethod
    def tearDownClass(cls):
        rc, err = cls.ep.stop()
        assert rc == 0, "the endpoint exited %s: %s" % (rc, err)

    def k(self, *args, **kw):
        return self.ep.kubectl(*args, **kw)


class Wire(_Base):
    def test_01_discovery(self):
        out = self.k("version", "-o", "json").stdout
        self.assertEqual(json.loads(out)["serverVersion"]["minor"], "32")
        res = self.k("api-resources", "-o", "name").stdout.split()
        for r in ("pods", "persistentvolumeclaims", "persistentvolumes", "secrets",
                  "configmaps", "events", "serviceaccounts", "namespaces",
                  "storageclasses.storage.k8s.io", "virtualmachines.kubevirt.io",
                  "virtualmachineinstances.kubevirt.io"):
            self.assertIn(r, res)
        # Short names come from discovery.
        self.assertIn("No resources found", self.k("get", "vm").stderr)

    def test_02_apply_is_validated_by_this_server(self):
        self.k("apply", "-f", "-", stdin=json.dumps(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"},
             "data": {"a": "1"}}))
        posts = [c for c in self.ep.calls() if c["method"] == "POST"]
        self.assertTrue(posts and posts[-1]["query"].get("fieldValidation") == "Strict",
                        posts)
        # kubectl asked the OpenAPI v3 documents for the fieldValidation
        # parameter, and needed no v2 for one object.
        paths = {c["path"] for c in self.ep.calls()}
        self.assertIn("/openapi/v3", paths)
        self.assertNotIn("/openapi/v2", paths)
        p = self.k("apply", "-f", "-", ok=False, stdin=json.dumps(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name"},
             "spec": {"containers": [{"name": "c", "image": "debian"}]}}))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("RFC 1123", p.stderr)
        p = self.k("apply", "-f", "-", ok=False, stdin=json.dumps(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c9"}, "dta": {}}))
        self.assertIn('unknown field "dta"', p.stderr)
        # kubectl's generators send protobuf, which is refused by name.
        p = self.k("create", "configmap", "gen", ok=False)
        self.assertIn("JSON request bodies only", p.stderr)
        # A `kind: List` file is validated on the client from /openapi/v2.
        self.ep.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c10"}}])
        self.assertIn("/openapi/v2", {c["path"] for c in self.ep.calls()})

    def test_03_update_paths(self):
        cm = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "c2", "labels": {"tier": "a"}}, "data": {"k": "v1"}}
        self.ep.apply([cm])
        self.assertIn("unchanged", self.ep.apply([cm]).stdout)
        cm["data"]["k"] = "v2"
        cm["metadata"]["labels"]["tier"] = "b"
        self.assertIn("configured", self.ep.apply([cm]).stdout)
        got = self.ep.json("cm/c2")
        self.assertEqual((got["data"], got["metadata"]["labels"]), ({"k": "v2"}, {"tier": "b"}))
        self.assertIn("kubectl.kubernetes.io/last-applied-configuration",
                      got["metadata"]["annotations"])
        self.k("patch", "cm/c2", "--type", "merge", "-p", '{"data":{"m":"x","k":null}}')
        self.assertEqual(self.ep.json("cm/c2")["data"], {"m": "x"})
        self.k("patch", "cm/c2", "--type", "json", "-p",
               '[{"op":"add","path":"/data/j","value":"y"}]')
        self.assertEqual(self.ep.json("cm/c2")["data"], {"m": "x", "j": "y"})
        self.k("label", "cm/c2", "extra=1")
        self.assertEqual(self.ep.json("cm/c2")["metadata"]["labels"], {"tier": "b", "extra": "1"})
        # Server-side apply.
        ssa = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c3"},
               "data": {"s": "1"}}
        self.assertIn("serverside-applied", self.ep.apply([ssa], "--server-side").stdout)
        self.assertEqual(self.ep.json("cm/c3")["data"], {"s": "1"})
        calls = [c for c in self.ep.calls() if c["method"] == "PATCH" and
                 c["path"].endswith("/configmaps/c3")]
        self.assertEqual(calls[-1]["contentType"], "application/apply-patch+yaml")
        # A stale resourceVersion is a conflict.
        old = self.ep.json("cm/c3")
        self.k("patch", "cm/c3", "--type", "merge", "-p", '{"data":{"s":"2"}}')
        p = self.k("replace", "-f", "-", ok=False, stdin=json.dumps(old))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("the object has been modified", p.stderr)
        rv1 = int(old["metadata"]["resourceVersion"])
        self.assertGreater(int(self.ep.json("cm/c3")["metadata"]["resourceVersion"]), rv1)

    def test_04_label_selectors_and_namespaces(self):
        self.ep.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}])
        objs = [{"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "sel-%d" % i, "namespace": "other",
                              "labels": {"n": str(i), "group": "even" if i % 2 == 0 else "odd"}}}
                for i in range(4)]
        self.ep.apply(objs)
        names = lambda *a: sorted(self.k("get", "cm", "-n", "other", "-o", "name",
                                         *a).stdout.split())
        self.assertEqual(names("-l", "group=even"), ["configmap/sel-0", "configmap/sel-2"])
        self.assertEqual(names("-l", "group!=even,n"), ["configmap/sel-1", "configmap/sel-3"])
        self.assertEqual(names("-l", "n in (1,2)"), ["configmap/sel-1", "configmap/sel-2"])
        self.assertEqual(names("--field-selector", "metadata.name=sel-3"), ["configmap/sel-3"])
        self.assertEqual(self.k("get", "cm", "-o", "name", "-l", "group").stdout, "")
        p = self.k("get", "cm", "-n", "nowhere-ns", "-o", "name", ok=False)
        self.assertEqual(p.stdout, "")
        p = self.k("apply", "-n", "nowhere-ns", "-f", "-", ok=False, stdin=json.dumps(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}))
        self.assertIn('namespaces "nowhere-ns" not found', p.stderr)
        # Each namespace gets its default ServiceAccount.
        wait_until(lambda: self.k("get", "sa/default", "-n", "other", ok=False).returncode == 0,
                   what="the default ServiceAccount")
        self.k("delete", "namespace", "other", "--timeout=60s")
        self.assertEqual(self.k("get", "ns", "other", ok=False).returncode, 1)

    def test_05_watch_stream(self):
        w = subprocess.Popen(["/usr/bin/kubectl", "get", "cm", "-w", "-o", "name",
                              "--request-timeout=0"], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, KUBECONFIG=self.ep.kubeconfig,
                                      HOME=self.ep.tmp))
        try:
            time.sleep(1.5)
            self.ep.apply([{"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "watched"}}])
            line = ""
            deadline = time.time() + 20
            while "watched" not in line and time.time() < deadline:
                line = w.stdout.readline()
            self.assertIn("configmap/watched", line)
        finally:
            w.kill()
            w.wait()
        self.k("delete", "cm/watched")
        self.k("wait", "--for=delete", "cm/watched", "--timeout=5s", ok=False)

    def test_06_virtual_machine(self):
        vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
              "metadata": {"name": "vm1"},
              "spec": {"runStrategy": "Halted", "template": {"spec": {"domain": {
                  "devices": {}}}}}}
        self.ep.apply([vm])
        self.k("patch", "vm/vm1", "--type", "merge", "-p", '{"spec":{"runStrategy":"Always"}}')
        self.assertEqual(self.ep.json("vm/vm1")["spec"]["runStrategy"], "Always")
        vm["spec"]["runStrategy"] = "Manual"
        self.ep.apply([vm])          # a custom resource: kubectl sends a merge patch
        self.assertEqual(self.ep.json("virtualmachine/vm1")["spec"]["runStrategy"], "Manual")
        self.k("delete", "vm/vm1")


class Auth(_Base):
    def _config(self, **user):
        cfg = json.loads(json.dumps(self.ep.config))
        cfg["users"][0]["user"] = user
        path = os.path.join(self.ep.tmp, "kc-%d.json" % len(os.listdir(self.ep.tmp)))
        with open(path, "w") as f:
            json.dump(cfg, f)
        return path

    def test_01_no_token_and_wrong_token(self):
        p = self.k("get", "pods", ok=False, kubeconfig=self._config(token="not-a-token"))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("You must be logged in to the server", p.stderr)
        # No token at all: kubectl would prompt for a password, so curl
        # asks (verifying the endpoint's CA).
        ca = os.path.join(self.ep.tmp, "ca.crt")
        with open(ca, "wb") as f:
            f.write(base64.b64decode(self.ep.config["clusters"][0]["cluster"][
                "certificate-authority-data"]))
        p = subprocess.run(["/usr/bin/curl", "-sS", "--cacert", ca, "-w", "\n%{http_code}",
                            self.ep.url + "/api/v1/namespaces/default/pods"],
                           capture_output=True, text=True, timeout=30)
        body, code = p.stdout.rsplit("\n", 1)
        self.assertEqual(code, "401")
        self.assertEqual(json.loads(body)["reason"], "Unauthorized")
        # The same kubectl with the right token works.
        self.k("get", "pods", kubeconfig=self._config(token=self.ep.config["users"][0]
                                                        ["user"]["token"]))

    def test_02_read_only_token(self):
        kc = self._config(token="pallet-readonly-token")
        self.k("get", "pods", kubeconfig=kc)
        p = self.k("create", "configmap", "nope", ok=False, kubeconfig=kc)
        self.assertIn("configmaps is forbidden", p.stderr)
        self.assertIn('cannot create resource "configmaps"', p.stderr)

    def test_03_tls_is_verified(self):
        # A kubeconfig trusting another CA: kubectl must refuse the server.
        other = tempfile.mkdtemp(dir=self.ep.tmp)
        key, crt = os.path.join(other, "k"), os.path.join(other, "c")
        subprocess.run(["/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                        "-days", "1", "-subj", "/CN=other-ca"], check=True,
                       capture_output=True)
        cfg = json.loads(json.dumps(self.ep.config))
        with open(crt, "rb") as f:
            cfg["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(
                f.read()).decode()
        path = os.path.join(other, "kc.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        p = self.k("get", "pods", ok=False, kubeconfig=path)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("certificate", p.stderr)


class Pods(_Base):
    def test_01_pod_writes_block_pvc_with_secret_env(self):
        payload = b"PALLET-KUBE-BLOCK\n"
        self.ep.apply([
            storage_class(),
            block_pvc("disk0", "16Mi"),
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
             "stringData": {"accessKeyId": "AKIAKUBETEST", "secret": "s3cr3t"}},
            pod("writer", ["sh", "-c",
                           'echo "key=$AWS_ACCESS_KEY_ID all=$CRED_secret"; '
                           'printf "%s" "$PAYLOAD" | dd of=/dev/xvdb bs=1M seek=3 '
                           'conv=notrunc status=none; test -b /dev/xvdb || echo file-backed; '
                           'blockdev_size=$(stat -c %s /dev/xvdb); echo size=$blockdev_size'],
                env=[{"name": "PAYLOAD", "value": payload.decode()},
                     {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {
                         "name": "creds", "key": "accessKeyId"}}}],
                envFrom=[{"secretRef": {"name": "creds"}, "prefix": "CRED_"}],
                volumeDevices=[{"name": "d", "devicePath": "/dev/xvdb"}],
                volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "disk0"}}])])
        p = self.ep.wait_phase("writer", "Succeeded")
        term = p["status"]["containerStatuses"][0]["state"]["terminated"]
        self.assertEqual((term["exitCode"], term["reason"]), (0, "Completed"))
        logs = self.k("logs", "writer").stdout
        self.assertIn("key=AKIAKUBETEST all=s3cr3t", logs)
        self.assertIn("size=%d" % (16 * MIB), logs)
        self.assertEqual(self.ep.json("pvc/disk0")["status"]["phase"], "Bound")
        path = self.ep.backing_file("disk0")
        st = os.stat(path)
        self.assertEqual(st.st_size, 16 * MIB)
        self.assertLess(st.st_blocks * 512, 2 * MIB, "the backing file is sparse")
        with open(path, "rb") as f:
            data = f.read()
        self.assertEqual(data[3 * MIB:3 * MIB + len(payload)], payload)
        self.assertEqual(data.count(b"\0"), len(data) - len(payload))
        # The secret's value never reaches the endpoint's stderr or call log.
        with open(os.path.join(self.ep.tmp, "calls.jsonl")) as f:
            self.assertNotIn("s3cr3t", f.read())
        self.k("delete", "pod/writer")
        self.k("delete", "pvc/disk0")
        wait_until(lambda: not os.path.exists(path), what="the backing file to go with the PV")

    def test_02_pod_fails_with_exit_code_and_reason(self):
        self.ep.apply([pod("failer", ["sh", "-c", "echo first; echo 'disk not found' >&2; "
                                      "exit 3"],
                           terminationMessagePolicy="FallbackToLogsOnError")])
        p = self.ep.wait_phase("failer", "Failed")
        term = p["status"]["containerStatuses"][0]["state"]["terminated"]
        self.assertEqual((term["exitCode"], term["reason"]), (3, "Error"))
        self.assertIn("disk not found", term["message"])
        table = self.k("get", "pod", "failer").stdout
        self.assertRegex(table, r"failer\s+0/1\s+Error\s+0")
        code = self.k("get", "pod", "failer", "-o",
                      "jsonpath={.status.containerStatuses[0].state.terminated.exitCode}").stdout
        self.assertEqual(code, "3")
        self.assertEqual(self.k("logs", "failer", "--tail=1").stdout, "disk not found\n")
        self.assertEqual(self.k("logs", "failer").stdout, "first\ndisk not found\n")
        self.k("delete", "pod/failer")

    def test_03_wait_ready_and_delete_kills_the_process_group(self):
        self.ep.apply([pod("sleeper", ["sh", "-c", "sleep 300 & sleep 300 & echo up; wait"],
                           terminationGracePeriodSeconds=1)])
        self.k("wait", "--for=condition=Ready", "pod/sleeper", "--timeout=30s")
        wait_until(lambda: "up" in self.k("logs", "sleeper").stdout, what="the Pod's output")
        cid = self.ep.json("pod/sleeper")["status"]["containerStatuses"][0]["containerID"]
        pid = int(cid.rsplit("-", 1)[1])
        pids = [pid] + _descendants(pid)
        self.assertGreaterEqual(len(pids), 4, "unshare, sh and two sleeps")
        t0 = time.time()
        self.k("delete", "pod/sleeper", "--timeout=30s")
        self.assertLess(time.time() - t0, 20)
        for x in pids:
            self.assertFalse(os.path.exists("/proc/%d" % x) and _state(x) != "Z",
                             "process %d survived the Pod's deletion" % x)
        self.assertEqual(self.k("get", "pod/sleeper", ok=False).returncode, 1)

    def test_04_missing_secret_then_created(self):
        self.ep.apply([pod("needs-secret", ["sh", "-c", "echo got=$TOKEN"],
                           env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {
                               "name": "late", "key": "token"}}}])])
        wait_until(lambda: "CreateContainerConfigError" in self.k(
            "get", "pod", "needs-secret").stdout, what="CreateContainerConfigError")
        msg = self.ep.json("pod/needs-secret")["status"]["containerStatuses"][0]["state"][
            "waiting"]["message"]
        self.assertEqual(msg, 'secret "late" not found')
        self.ep.apply([{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "late"},
                        "data": {"token": base64.b64encode(b"t0k").decode()}}])
        self.ep.wait_phase("needs-secret", "Succeeded")
        self.assertEqual(self.k("logs", "needs-secret").stdout, "got=t0k\n")
        self.k("delete", "pod/needs-secret")

    def test_05_unmapped_image_and_no_command(self):
        self.ep.apply([pod("unmapped", ["true"], image="quay.io/pallet/none:latest")])
        wait_until(lambda: "ErrImagePull" in json.dumps(self.ep.json("pod/unmapped")["status"])
                   or "ImagePullBackOff" in json.dumps(self.ep.json("pod/unmapped")["status"]),
                   what="ErrImagePull")
        self.assertEqual(self.ep.json("pod/unmapped")["status"]["phase"], "Pending")
        self.k("delete", "pod/unmapped", "--timeout=30s")
        self.ep.apply([pod("badexec", ["/no/such/program"])])
        p = self.ep.wait_phase("badexec", "Failed")
        term = p["status"]["containerStatuses"][0]["state"]["terminated"]
        self.assertEqual((term["exitCode"], term["reason"]), (128, "StartError"))
        self.assertIn("/no/such/program", term["message"])
        self.k("delete", "pod/badexec")

    def test_06_mounts_user_and_restart(self):
        self.ep.apply([
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "conf"},
             "data": {"greeting": "hi"}},
            pod("mounts", ["sh", "-c",
                           "cat /etc/conf/greeting; echo; id -u; echo x > /scratch/f && cat /scratch/f; "
                           "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; "
                           "hostname; touch /etc/conf/nope 2>/dev/null || echo ro"],
                securityContext={"runAsUser": 4242, "runAsGroup": 4242,
                                 "allowPrivilegeEscalation": False,
                                 "capabilities": {"drop": ["ALL"]}},
                volumeMounts=[{"name": "conf", "mountPath": "/etc/conf"},
                              {"name": "scratch", "mountPath": "/scratch"}],
                volumes=[{"name": "conf", "configMap": {"name": "conf"}},
                         {"name": "scratch", "emptyDir": {}}]),
            pod("retry", ["sh", "-c", "test -e /scratch/again && exit 0; "
                          "touch /scratch/again; exit 1"], restartPolicy="OnFailure",
                volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}],
                volumes=[{"name": "scratch", "emptyDir": {}}])])
        self.ep.wait_phase("mounts", "Succeeded")
        self.assertEqual(self.k("logs", "mounts").stdout.split(),
                         ["hi", "4242", "x", "default", "mounts", "ro"])
        p = self.ep.wait_phase("retry", "Succeeded")
        self.assertEqual(p["status"]["containerStatuses"][0]["restartCount"], 1)
        self.assertEqual(self.k("logs", "retry", "--previous").stdout, "")
        self.k("delete", "pod/mounts", "pod/retry")

    def test_07_wait_for_first_consumer_and_events(self):
        self.ep.apply([storage_class("late", "WaitForFirstConsumer"),
                       block_pvc("lazy", "4Mi", "late")])
        time.sleep(1)
        self.assertEqual(self.ep.json("pvc/lazy")["status"].get("phase", "Pending"), "Pending")
        self.ep.apply([pod("consumer", ["true"],
                           volumeDevices=[{"name": "d", "devicePath": "/dev/block0"}],
                           volumes=[{"name": "d", "persistentVolumeClaim": {
                               "claimName": "lazy"}}])])
        self.ep.wait_phase("consumer", "Succeeded")
        self.assertEqual(self.ep.json("pvc/lazy")["status"]["phase"], "Bound")
        ev = self.k("get", "events", "--field-selector", "involvedObject.name=consumer").stdout
        self.assertIn("Scheduled", ev)
        self.assertIn("Started", ev)
        self.k("delete", "pod/consumer", "pvc/lazy")

    def test_08_node_selector_unschedulable(self):
        self.ep.apply([pod("picky", ["true"], nodeSelector={"kubevirt.io/schedulable": "true"})])
        wait_until(lambda: any(c.get("reason") == "Unschedulable" for c in
                               self.ep.json("pod/picky")["status"].get("conditions", [])),
                   what="Unschedulable")
        self.k("delete", "pod/picky", "--timeout=30s")


def _descendants(pid):
    out = []
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                for c in f.read().split():
                    out += [int(c)] + _descendants(int(c))
    except OSError:
        pass
    return out


def _state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


if __name__ == "__main__":
    unittest.main()
