# SPDX-License-Identifier: Apache-2.0
"""Runtime swap, proven: one process (pallet-v2v-swap-test, swap.c, on
libpallet-host) loads provider-ec2 and pallet-provider-vsphere together,
migrates a plan with each at once, unloads one, loads it again and
migrates again, both ways round.  The program checks events, state dirs
and sessions from inside; this test checks from outside: the EC2 endpoint
saw one snapshot and one volume per EC2 run and nothing else, the stand-in
virt-v2v ran once per vSphere output dir with that run's settings, every
manifest passes --strict, and no state file holds a secret."""

import collections
import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "endpoint"))
from endpoint_fixture import Endpoint, SOURCE  # noqa: E402
from v2v_harness import PASSWORD, PROVIDERS, V2VE2E, guest_image  # noqa: E402

SWAP = os.environ.get("PALLET_V2V_SWAP")
EC2_PLAN_UID = "5a1d0000-0000-4000-8000-0000000005a9"
INSTANCE = {"id": "i-05a9000000000000a", "name": "swap-a", "type": "m5.large", "az": "us-east-1a",
            "state": "running",
            "volumes": [{"device": "/dev/xvda", "sizeGiB": 8, "type": "gp3", "iops": 3000,
                         "throughput": 125}]}


def ec2_plan(port, subnets):
    docs = [
        {"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Provider",
         "metadata": {"name": "ec2-src", "namespace": "mtv"},
         "spec": {"type": "ec2", "url": "http://127.0.0.1:%d" % port,
                  "secret": {"name": "ec2-creds", "namespace": "mtv"},
                  "settings": {"target-az": "us-east-1b"}}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ec2-creds", "namespace": "mtv"},
         "stringData": {"region": "us-east-1", "accessKeyId": SOURCE["key"],
                        "secretAccessKey": SOURCE["secret"]}},
        {"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "NetworkMap",
         "metadata": {"name": "net", "namespace": "mtv"},
         "spec": {"provider": {"source": {"name": "ec2-src", "namespace": "mtv"},
                               "destination": {"name": "host", "namespace": "mtv"}},
                  "map": [{"source": {"id": s}, "destination": {"type": "pod"}} for s in subnets]}},
        {"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "StorageMap",
         "metadata": {"name": "sto", "namespace": "mtv"},
         "spec": {"provider": {"source": {"name": "ec2-src", "namespace": "mtv"},
                               "destination": {"name": "host", "namespace": "mtv"}},
                  "map": [{"source": {"name": "gp3"}, "destination": {"storageClass": "ebs-gp3"}}]}},
        {"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Plan",
         "metadata": {"name": "swap-ec2", "namespace": "mtv", "uid": EC2_PLAN_UID},
         "spec": {"provider": {"source": {"name": "ec2-src", "namespace": "mtv"},
                               "destination": {"name": "host", "namespace": "mtv"}},
                  "map": {"network": {"name": "net", "namespace": "mtv"},
                          "storage": {"name": "sto", "namespace": "mtv"}},
                  "targetNamespace": "vms", "type": "cold", "vms": [{"id": INSTANCE["id"]}]}},
    ]
    return "".join("---\n" + json.dumps(d) + "\n" for d in docs)


@unittest.skipUnless(SWAP, "PALLET_V2V_SWAP (the pallet-v2v-swap-test program) is not set")
class Swap(V2VE2E):
    def test_ec2_and_vsphere_in_one_process(self):
        ep = Endpoint(("--start-delay", "0.1", "--stop-delay", "0.1", "--snapshot-delay", "0.2",
                       "--volume-delay", "0.1"), {"instances": [INSTANCE]}, self.tmp)
        self.addCleanup(ep.stop)
        subnets = [s["SubnetId"] for s in ep.client("ec2", SOURCE, "us-east-1").describe_subnets()["Subnets"]]
        s = self.sim(image=guest_image())
        plans = {}
        with open(os.path.join(self.tmp, "ec2.yaml"), "w") as f:
            f.write(ec2_plan(ep.port, subnets))
        for n in ("1", "2"):
            p = self.vsphere_plan(s, settings={"output-dir": os.path.join(self.tmp, "v2v-out" + n)})
            plans[n] = os.path.join(self.tmp, "vsphere%s.yaml" % n)
            os.rename(p, plans[n])
        work = os.path.join(self.tmp, "work")
        env = self.env(HOME=self.tmp)
        for k in [k for k in env if k.startswith("AWS_")]:
            del env[k]
        r = subprocess.run([SWAP, os.path.join(self.tmp, "ec2.yaml"), plans["1"], plans["2"], work],
                           capture_output=True, text=True, env=env, timeout=500)
        print(r.stdout + r.stderr[-4000:])
        self.assertEqual(r.returncode, 0, r.stderr[-6000:])
        runs = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
        self.assertEqual([x["run"] for x in runs],
                         ["ec2-1", "vsphere-1", "ec2-2", "vsphere-2", "vsphere-3", "ec2-3"])
        by = {x["run"]: x for x in runs}
        self.assertTrue(all(x["rc"] == 0 and x["summary"] == 0 for x in runs), runs)
        self.assertTrue(by["ec2-1"]["module"].endswith("/pallet-provider-ec2.so"))
        self.assertTrue(by["vsphere-2"]["module"].endswith("/pallet-provider-vsphere.so"))

        # The cloud saw exactly the three EC2 runs (one snapshot and one
        # volume each) and no call of the vSphere runs.
        c = collections.Counter(x["action"] for x in ep.calls().get("calls", [])
                                if x.get("outcome") == "ok")
        self.assertEqual(c["CreateSnapshots"] + c["CreateSnapshot"], 3, c)
        self.assertEqual(c["CreateVolume"], 3, c)
        vols = [v for v in ep.state()["volumes"]
                if v.get("tags", {}).get("forklift.konveyor.io/plan") == EC2_PLAN_UID]
        self.assertEqual(len({v["tags"]["forklift.konveyor.io/migration"] for v in vols}), 3)

        # virt-v2v ran for vsphere-1 (output dir 1) and vsphere-2 (output
        # dir 2: the reloaded module took the second plan's settings, not
        # the first's); vsphere-3 adopted run 1's finished conversion.
        calls = self.v2v_calls()
        self.assertEqual(len(calls), 2, calls)
        self.assertIn("-os %s/" % os.path.join(self.tmp, "v2v-out1"), calls[0])
        self.assertIn("-os %s/" % os.path.join(self.tmp, "v2v-out2"), calls[1])
        self.assertTrue(all("vpx://root@127.0.0.1:%d/" % s.info["port"] in c for c in calls))

        for x in runs:
            ms = self.manifests(x["outputDir"])
            self.assert_strict(ms)
            kinds = collections.Counter()
            for m in ms:
                with open(m) as f:
                    doc = json.load(f)
                kinds[doc["kind"]] += 1
                text = json.dumps(doc)
                if x["plan"] == "ec2":
                    self.assertNotIn(".vmdk", text, m)
                    self.assertNotIn("DC0_H0_VM0", text, m)
                    self.assertIn(INSTANCE["id"], text, m)
                else:
                    self.assertNotIn(INSTANCE["id"], text, m)
                    self.assertNotIn("vol-", text, m)
                    self.assertIn("DC0_H0_VM0", text, m)
            self.assertEqual(kinds["VirtualMachine"], 1, (x["run"], kinds))
        for root, _, files in os.walk(work):
            for f in files:
                with open(os.path.join(root, f), errors="replace") as fh:
                    text = fh.read()
                for secret in (PASSWORD, SOURCE["secret"]):
                    self.assertNotIn(secret, text, os.path.join(root, f))


if __name__ == "__main__":
    unittest.main()
