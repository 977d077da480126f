# SPDX-License-Identifier: Apache-2.0
"""Test fixture: start pallet-kube-endpoint and drive it with the real
kubectl (/usr/bin/kubectl)."""

import json
import os
import shutil
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ENDPOINT = os.path.join(HERE, "pallet-kube-endpoint.py")
PYTHON = "/usr/bin/python3"
KUBECTL = "/usr/bin/kubectl"


class KubeEndpoint:
    def __init__(self, args=(), tmp=None):
        self.own_tmp = tmp is None
        self.tmp = tmp or tempfile.mkdtemp(prefix="pallet-kube-test-")
        self.state = os.path.join(self.tmp, "state")
        argv = [PYTHON, ENDPOINT, "--port", "0", "--state-dir", self.state,
                "--call-log", os.path.join(self.tmp, "calls.jsonl")] + list(args)
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        url = self.proc.stdout.readline().strip()
        kc = self.proc.stdout.readline().strip()
        if not url.startswith("URL=") or not kc.startswith("KUBECONFIG="):
            self.proc.kill()
            raise RuntimeError("pallet-kube-endpoint did not start: %r %r %s"
                               % (url, kc, self.proc.stderr.read()))
        self.url = url[4:]
        self.kubeconfig = kc[len("KUBECONFIG="):]
        with open(self.kubeconfig) as f:
            self.config = json.load(f)

    def kubectl(self, *args, ok=True, stdin=None, timeout=120, kubeconfig=None):
        env = dict(os.environ, KUBECONFIG=kubeconfig or self.kubeconfig, HOME=self.tmp)
        p = subprocess.run([KUBECTL] + list(args), input=stdin, capture_output=True, text=True,
                           errors="replace",  # a guest console (OVMF) is not UTF-8
                           timeout=timeout, env=env)
        if ok and p.returncode != 0:
            raise AssertionError("kubectl %s failed (%d): %s%s" % (
                " ".join(args), p.returncode, p.stdout, p.stderr))
        return p

    def json(self, *args):
        return json.loads(self.kubectl("get", "-o", "json", *args).stdout)

    def apply(self, objs, *extra):
        doc = json.dumps({"apiVersion": "v1", "kind": "List", "items": objs})
        return self.kubectl("apply", "-f", "-", *extra, stdin=doc)

    def wait_phase(self, pod, phase, timeout=60, ns="default"):
        self.kubectl("wait", "-n", ns, "--for=jsonpath={.status.phase}=%s" % phase,
                     "pod/" + pod, "--timeout=%ds" % timeout, timeout=timeout + 30)
        return self.json("-n", ns, "pod/" + pod)

    def backing_file(self, pvc, ns="default"):
        name = self.json("-n", ns, "pvc/" + pvc)["spec"]["volumeName"]
        return self.json("pv/" + name)["spec"]["hostPath"]["path"]

    def calls(self):
        with open(os.path.join(self.tmp, "calls.jsonl")) as f:
            return [json.loads(x) for x in f]

    def stop(self):
        if self.proc.stdout.closed:
            return self.proc.returncode, ""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        err = self.proc.stderr.read()
        self.proc.stderr.close()
        if self.own_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.proc.returncode, err


def wait_until(fn, timeout=30, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out after %ds waiting for %s" % (timeout, what))


def storage_class(name="local", mode=None, default=False):
    sc = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
          "metadata": {"name": name}, "provisioner": "pallet.dev/sparse-file",
          "reclaimPolicy": "Delete"}
    if mode:
        sc["volumeBindingMode"] = mode
    if default:
        sc["metadata"]["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
    return sc


def block_pvc(name, size="16Mi", sc="local"):
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"storageClassName": sc, "volumeMode": "Block",
                     "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": size}}}}


def pod(name, command, image="debian", **spec):
    c = {"name": spec.pop("container", "main"), "image": image, "command": command}
    for k in ("env", "envFrom", "volumeDevices", "volumeMounts", "terminationMessagePolicy",
              "securityContext"):
        if k in spec:
            c[k] = spec.pop(k)
    s = {"restartPolicy": spec.pop("restartPolicy", "Never"), "containers": [c]}
    s.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": s}
