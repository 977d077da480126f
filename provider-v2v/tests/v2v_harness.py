# SPDX-License-Identifier: Apache-2.0
"""End-to-end runs of `pallet migrate` with the v2v providers against
govmomi's simulator (tests/vsphere-sim) with the test guest staged."""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("PALLET_BUILD_DIR", os.path.join(SRC, "build"))
PALLET = os.environ.get("PALLET_BIN", os.path.join(BUILD, "host-shim", "pallet"))
PROVIDERS = os.environ.get("PALLET_PROVIDER_PATH", os.path.join(BUILD, "providers"))
SIM = os.environ.get("PALLET_VSPHERE_SIM", os.path.join(BUILD, "tests", "vsphere-sim", "vsphere-sim"))
VALIDATE = os.environ.get("PALLET_LINT_MANIFESTS",
                          os.path.join(SRC, "host-shim", "lint", "pallet-lint-manifests"))
FAKE = os.path.join(HERE, "fake-virt-v2v.sh")
PLAN_UID = "5a1d0000-0000-4000-8000-000000000a20"
PASSWORD = "pallet-sim-pw"


def guest_image():
    return subprocess.run([os.path.join(SRC, "tests", "guest", "build-guest.sh")], check=True,
                          capture_output=True, text=True).stdout.strip()


class Sim:
    """One simulator process; stopped by closing its stdin."""

    def __init__(self, model="vpx", power="off", image=None):
        self.proc = subprocess.Popen(
            [SIM, "-model", model, "-power", power, "-lifetime", "900", "-password", PASSWORD,
             "-uuid", "42233d5e-7a1c-4b59-9a7e-0d1e2f3a4b5c"] + (["-guest-disk", image] if image else []),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = json.loads(self.proc.stdout.readline())

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


def plan_docs(url, vm, settings, secret, storage="LocalDS_0", network="VM Network", ptype="vsphere",
              plan_extra=None):
    docs = [
        {"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Provider",
         "metadata": {"name": "src", "namespace": "mtv"},
         "spec": {"type": ptype, "url": url, "secret": {"name": "creds", "namespace": "mtv"},
                  "settings": settings}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "mtv"},
         "stringData": secret},
        {"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "NetworkMap",
         "metadata": {"name": "net", "namespace": "mtv"},
         "spec": {"provider": {"source": {"name": "src", "namespace": "mtv"},
                               "destination": {"name": "host", "namespace": "mtv"}},
                  "map": [{"source": {"name": network}, "destination": {"type": "pod"}}]}},
        {"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "StorageMap",
         "metadata": {"name": "sto", "namespace": "mtv"},
         "spec": {"provider": {"source": {"name": "src", "namespace": "mtv"},
                               "destination": {"name": "host", "namespace": "mtv"}},
                  "map": [{"source": {"name": storage}, "destination": {"storageClass": "local-path"}}]}},
        {"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Plan",
         "metadata": {"name": "v2v", "namespace": "mtv", "uid": PLAN_UID},
         "spec": dict({"provider": {"source": {"name": "src", "namespace": "mtv"},
                                    "destination": {"name": "host", "namespace": "mtv"}},
                       "map": {"network": {"name": "net", "namespace": "mtv"},
                               "storage": {"name": "sto", "namespace": "mtv"}},
                       "targetNamespace": "vms", "type": "cold", "vms": [{"name": vm}]},
                      **(plan_extra or {}))},
    ]
    return "".join("---\n" + json.dumps(d) + "\n" for d in docs)


class V2VE2E(unittest.TestCase):
    def setUp(self):
        self.tmpdir = tempfile.TemporaryDirectory(prefix="pallet-v2v-e2e-")
        self.tmp = self.tmpdir.name
        self.out = os.path.join(self.tmp, "out")
        self.calls = os.path.join(self.tmp, "v2v-calls")
        self.sims = []

    def tearDown(self):
        for s in self.sims:
            s.stop()
        self.tmpdir.cleanup()

    def sim(self, **kw):
        s = Sim(**kw)
        self.sims.append(s)
        return s

    def vsphere_plan(self, sim, vm=None, insecure=True, password=PASSWORD, settings=None, **kw):
        st = dict({"host-path": sim.info["hostPath"], "output-dir": self.out, "virt-v2v": FAKE},
                  **(settings or {}))
        if sim.info["model"] == "esx":
            st.pop("host-path")
            st["sdkEndpoint"] = "esxi"
        secret = {"user": "root", "password": password}
        if insecure:
            secret["insecureSkipVerify"] = "true"
        path = os.path.join(self.tmp, "plan.yaml")
        with open(path, "w") as f:
            f.write(plan_docs("https://127.0.0.1:%d/sdk" % sim.info["port"], vm or sim.info["vm"],
                              st, secret, **kw))
        return path

    def env(self, **extra):
        env = dict(os.environ)
        env["PALLET_PROVIDER_PATH"] = PROVIDERS
        env["FAKE_V2V_CALLS"] = self.calls
        env.update(extra)
        return env

    def pallet(self, *args, check=None, timeout=600, **env):
        r = subprocess.run([PALLET] + list(args), capture_output=True, text=True,
                           env=self.env(**env), timeout=timeout, cwd=self.tmp)
        if check is not None and r.returncode != check:
            raise AssertionError("pallet %s exited %d, expected %d\nstdout:\n%s\nstderr:\n%s"
                                 % (" ".join(args), r.returncode, check, r.stdout, r.stderr))
        return r

    def findings(self, r):
        return [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]

    def manifests(self, out_dir):
        paths = []
        for root, _, files in os.walk(out_dir):
            paths += [os.path.join(root, f) for f in sorted(files)]
        return paths

    def assert_strict(self, paths):
        self.assertTrue(paths, "no manifests were written")
        for p in paths:
            r = subprocess.run(["/usr/bin/python3", VALIDATE, "--strict", p],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, "%s failed pallet-lint-manifests --strict:\n%s%s"
                             % (p, r.stdout, r.stderr))

    def v2v_calls(self):
        try:
            with open(self.calls) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []
