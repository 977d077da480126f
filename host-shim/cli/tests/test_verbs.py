#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""kubectl-mtv's verbs in the pallet CLI: get, describe, create --dry-run,
inventory -f, archive/delete without a cluster, and every failure path
(unknown verb, resource, option, kind, field) with its did-you-mean.
Runs provider-null (examples/demo-null/plan.yaml); no endpoint, no cluster.

Usage: test_verbs.py   (environment: PALLET, PALLET_PROVIDER_PATH,
PALLET_TEST_TMP; set by CMake)."""
import json
import os
import shutil
import subprocess
import sys
import unittest

import yaml

PALLET = os.environ["PALLET"]
HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "..", "..", "..", "examples", "demo-null", "plan.yaml")
TMP_ROOT = os.environ.get("PALLET_TEST_TMP", "/tmp/pallet-test-verbs")


class Verbs(unittest.TestCase):
    def setUp(self):
        self.dir = os.path.join(TMP_ROOT, self.id().rsplit(".", 1)[-1])
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)

    def run_p(self, *args, rc=0):
        # No cluster: no kubeconfig, no service account.
        env = dict(os.environ, HOME=self.dir)
        for k in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
            env.pop(k, None)
        p = subprocess.run([PALLET] + list(args), capture_output=True, text=True,
                           cwd=self.dir, env=env, timeout=120)
        self.assertEqual(p.returncode, rc, "pallet %s exited %d, expected %d\n%s\n%s"
                         % (" ".join(args), p.returncode, rc, p.stdout, p.stderr))
        return p

    # ---- get ----

    def test_get_plan_provider_mapping(self):
        p = self.run_p("get", "plan", "-f", DEMO)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "NAMESPACE", "SOURCE", "TARGET-NAMESPACE",
                                            "TYPE", "VMS", "STATUS"])
        self.assertEqual(lines[1].split(), ["demo-null", "demo", "null-source", "demo", "cold",
                                            "3", "not", "started"])
        p = self.run_p("get", "provider", "-f", DEMO)
        self.assertEqual(p.stdout.splitlines()[1].split(),
                         ["null-source", "demo", "null", "", "null-credentials"][:2]
                         + ["null", "null-credentials"])
        p = self.run_p("get", "mappings", "-f", DEMO, "-o", "json")
        # -o json: a v1 List, as kubectl prints it; -o yaml: one document
        # per object; the same objects.
        lst = json.loads(p.stdout)
        self.assertEqual((lst["apiVersion"], lst["kind"]), ("v1", "List"))
        kinds = sorted(o["kind"] for o in lst["items"])
        self.assertEqual(kinds, ["NetworkMap", "StorageMap"])
        y = list(yaml.safe_load_all(self.run_p("get", "mapping", "-f", DEMO, "-o", "yaml").stdout))
        self.assertEqual(y, lst["items"])
        # -n filters by namespace; NAME picks one.
        self.assertEqual(len(self.run_p("get", "plan", "-f", DEMO, "-n", "other").stdout
                             .splitlines()), 1)
        self.run_p("get", "plan", "nosuch", "-f", DEMO, rc=5)

    def test_get_plan_from_state(self):
        self.run_p("migrate", DEMO)
        p = self.run_p("get", "plan")
        self.assertEqual(p.stdout.splitlines()[0].split(),
                         ["NAME", "PROVIDER", "VMS", "STATUS", "LAST-RUN"])
        self.assertEqual(p.stdout.splitlines()[1].split()[:5],
                         ["demo-null", "null", "3", "3", "succeeded"])
        j = json.loads(self.run_p("get", "plan", "-o", "json").stdout)
        self.assertEqual([d["plan"]["name"] for d in j], ["demo-null"])
        p = self.run_p("get", "plan", "-f", DEMO)
        self.assertIn("3 succeeded", p.stdout)

    # ---- describe ----

    def test_describe(self):
        self.run_p("migrate", DEMO)
        p = self.run_p("describe", "plan", "demo-null", "-f", DEMO)
        self.assertIn("Source:            null-source (null )", p.stdout)
        self.assertIn("Status:            3 succeeded", p.stdout)
        self.assertRegex(p.stdout, r"vm-0002 +- +done +succeeded")
        d = json.loads(self.run_p("describe", "plan", "demo-null", "-f", DEMO, "-o",
                                  "json").stdout)
        self.assertEqual(d["plan"]["metadata"]["name"], "demo-null")
        self.assertEqual(len(d["state"]["vms"]), 3)
        p = self.run_p("describe", "provider", "null-source", "-f", DEMO)
        self.assertIn("Secret keys:       password", p.stdout)
        # The Secret's values never show.
        for fmt in ("text", "json", "yaml"):
            out = self.run_p("describe", "provider", "null-source", "-f", DEMO, "-o", fmt)
            self.assertNotIn("not-a-real-password", out.stdout + out.stderr)
        p = self.run_p("describe", "mapping", "demo-storagemap", "-f", DEMO)
        self.assertRegex(p.stdout, r"standard +standard-csi")
        p = self.run_p("describe", "vm", "vm-0002", "-f", DEMO)
        self.assertIn("Target name:       web-2-migrated", p.stdout)
        self.assertIn("Status:            succeeded", p.stdout)
        p = self.run_p("describe", "vm", "db-1", "-f", DEMO, "-o", "json")
        self.assertEqual(json.loads(p.stdout)["state"]["status"], "succeeded")
        p = self.run_p("describe", "plan", "demo-nul", "-f", DEMO, rc=5)
        self.assertIn("did you mean 'demo-null'?", p.stderr)
        p = self.run_p("describe", "vm", "vm-9", "-f", DEMO, rc=5)
        self.assertIn("no VM 'vm-9'", p.stderr)
        p = self.run_p("describe", "plan", "-f", DEMO, rc=2)
        self.assertIn("give the plan's NAME", p.stderr)
        p = self.run_p("describe", "plan", "demo-null", rc=2)
        self.assertIn("give the Forklift YAML with -f FILE", p.stderr)

    # ---- inventory -f ----

    def test_inventory_from_provider_yaml(self):
        p = self.run_p("inventory", "instances", "-f", DEMO, "-o", "json")
        self.assertEqual([i["id"] for i in json.loads(p.stdout)],
                         ["vm-0001", "vm-0002", "vm-0003"])
        p = self.run_p("get", "inventory", "instances", "-f", DEMO, "-o", "json",
                       "-q", "select name, cpus as c where cpus > 2 or name in ['web-1']"
                       " sort by c desc")
        self.assertEqual(json.loads(p.stdout), [{"name": "db-1", "c": 4},
                                                {"name": "web-1", "c": 2}])
        # A bare filter, as kubectl-mtv takes it.
        p = self.run_p("inventory", "instances", "-f", DEMO, "-o", "json", "-q",
                       "state = 'stopped'")
        self.assertEqual([i["name"] for i in json.loads(p.stdout)], ["db-1"])
        # The same for -o yaml.
        p = self.run_p("inventory", "instances", "-f", DEMO, "-o", "yaml", "-q", "cpus = 2")
        self.assertEqual([i["id"] for i in yaml.safe_load(p.stdout)], ["vm-0001", "vm-0002"])
        # An unknown field is an error with the nearest one, not an empty result.
        p = self.run_p("inventory", "instances", "-f", DEMO, "-q", "where nmae = 'web-1'", rc=2)
        self.assertIn("unknown field 'nmae'", p.stderr)
        self.assertIn("did you mean 'name'?", p.stderr)
        self.assertNotIn("PALLET_E_", p.stderr)
        p = self.run_p("inventory", "instances", "-f", DEMO, "-q", "where cpus >", rc=2)
        self.assertIn("query: column", p.stderr)
        # The Provider's secret never shows.
        self.assertNotIn("not-a-real-password", p.stdout + p.stderr)

    def test_inventory_failures(self):
        p = self.run_p("inventory", "instances", rc=2)
        self.assertIn("-f FILE, or --provider MODULE and --config FILE", p.stderr)
        p = self.run_p("inventory", "instances", "-f", DEMO, "--config", "x.json", rc=2)
        self.assertIn("not both", p.stderr)
        p = self.run_p("inventory", "instances", "-f", DEMO, "--provider", "nosuch", rc=5)
        self.assertIn("no Provider named 'nosuch' in the -f files; there: null-source", p.stderr)
        two = os.path.join(self.dir, "two.yaml")
        with open(DEMO) as f, open(two, "w") as g:
            text = f.read()
            g.write(text + "\n---\n" + text.split("---")[0].replace("null-source", "other"))
        p = self.run_p("inventory", "instances", "-f", two, rc=5)
        self.assertIn("pick one with --provider NAME", p.stderr)
        p = self.run_p("inventory", "instances", "-f", two, "--provider", "other", "-o", "json")
        self.assertEqual(len(json.loads(p.stdout)), 3)
        p = self.run_p("inventory", "instances", "-f", DEMO, "--qurey", "x", rc=2)
        self.assertIn("unknown option '--qurey'; did you mean '--query'?", p.stderr)
        p = self.run_p("inventory", "instances", "-f", DEMO, "-o", "xml", rc=2)
        self.assertIn("expected json, yaml, table", p.stderr)
        p = self.run_p("inventory", "disks", "-f", DEMO, rc=1)
        self.assertNotIn("PALLET_E_", p.stderr)

    # ---- create ----

    def test_create_dry_run(self):
        p = self.run_p("create", "provider", "aws1", "--type", "ec2", "--ec2-region",
                       "eu-west-1", "--username", "AKIAEXAMPLE", "--password", "s3cr3t",
                       "--dry-run", "-n", "mtv")
        docs = list(yaml.safe_load_all(p.stdout))
        self.assertEqual([d["kind"] for d in docs], ["Secret", "Provider"])
        prov = docs[1]
        self.assertEqual(prov["spec"]["url"], "https://ec2.eu-west-1.amazonaws.com")
        self.assertEqual(prov["spec"]["secret"], {"name": "aws1-ec2-credentials",
                                                  "namespace": "mtv"})
        self.assertEqual(prov["spec"]["settings"], {"target-region": "eu-west-1",
                                                    "target-az": "eu-west-1a"})
        self.assertEqual(docs[0]["stringData"]["accessKeyId"], "AKIAEXAMPLE")
        provider_yaml = os.path.join(self.dir, "provider.yaml")
        with open(provider_yaml, "w") as f:
            f.write(p.stdout)
        # Pallet reads what it wrote: get and describe show it.
        self.assertIn("aws1", self.run_p("get", "provider", "-f", provider_yaml).stdout)
        # An existing Secret: no Secret object.
        p = self.run_p("create", "provider", "aws2", "--type", "ec2", "--ec2-region",
                       "us-east-1", "--secret", "creds", "--dry-run", "-o", "json")
        self.assertEqual([o["kind"] for o in json.loads(p.stdout)["items"]], ["Provider"])
        # A plan against it checks out although the Secret is in the cluster only.
        aws2 = os.path.join(self.dir, "aws2.json")
        with open(aws2, "w") as f:
            f.write(p.stdout)
        p = self.run_p("create", "plan", "p2", "--source", "aws2", "--vms", "i-1",
                       "--network-pairs", "subnet-1:pod", "--storage-pairs", "gp3:c",
                       "--dry-run", "-f", aws2)
        self.assertNotIn("Secret", p.stdout)
        p = self.run_p("create", "mapping", "network", "net1", "--source", "aws1",
                       "--network-pairs", "subnet-0a:pod,subnet-0b:mtv/nad1,subnet-0c:ignored",
                       "--dry-run", "-n", "mtv")
        m = yaml.safe_load(p.stdout)["spec"]["map"]
        self.assertEqual(m, [{"source": {"id": "subnet-0a"}, "destination": {"type": "pod"}},
                             {"source": {"id": "subnet-0b"},
                              "destination": {"type": "multus", "namespace": "mtv",
                                              "name": "nad1"}},
                             {"source": {"id": "subnet-0c"},
                              "destination": {"type": "ignored"}}])
        p = self.run_p("create", "plan", "p1", "--source", "aws1", "--vms", "i-0aaa,i-0bbb",
                       "--network-pairs", "subnet-0a:pod", "--storage-pairs",
                       "gp3:ebs-gp3;volumeMode=Block", "--target-namespace", "vms",
                       "--dry-run", "-n", "mtv", "-f", provider_yaml)
        docs = list(yaml.safe_load_all(p.stdout))
        self.assertEqual([d["kind"] for d in docs], ["NetworkMap", "StorageMap", "Plan"])
        self.assertEqual(docs[2]["spec"]["vms"], [{"id": "i-0aaa"}, {"id": "i-0bbb"}])
        self.assertEqual(docs[1]["spec"]["map"][0]["destination"],
                         {"storageClass": "ebs-gp3", "volumeMode": "Block"})
        # The generated files make a whole plan that pallet validates as a set.
        plan_yaml = os.path.join(self.dir, "plan.yaml")
        with open(plan_yaml, "w") as f:
            f.write(p.stdout)
        p = self.run_p("describe", "plan", "p1", "-f", provider_yaml, "-f", plan_yaml)
        self.assertIn("Source:            aws1 (ec2 https://ec2.eu-west-1.amazonaws.com)",
                      p.stdout)

    def test_create_failures(self):
        p = self.run_p("create", "plan", "p1", "--source", "aws9", "--vms", "i-1",
                       "--network-pairs", "a:pod", "--storage-pairs", "gp3:x", "--dry-run",
                       "-f", DEMO, rc=5)
        self.assertIn('Provider "aws9"', p.stderr)
        p = self.run_p("create", "provider", "x", "--type", "ec2", "--dry-run", rc=2)
        self.assertIn("--ec2-region", p.stderr)
        p = self.run_p("create", "provider", "x", "--type", "ec2", "--ec2-region", "r",
                       "--secret", "s", "--username", "u", "--password", "p", "--dry-run", rc=2)
        self.assertIn("not both", p.stderr)
        p = self.run_p("create", "provdier", "x", rc=2)
        self.assertIn("did you mean 'provider'?", p.stderr)
        p = self.run_p("create", "mapping", "netwrk", "n", "--source", "a", "--dry-run", rc=2)
        self.assertIn("'create mapping network NAME'", p.stderr)
        p = self.run_p("create", "mapping", "storage", "s", "--source", "a", "--storage-pairs",
                       "gp3", "--dry-run", rc=2)
        self.assertIn("write SOURCE:DESTINATION", p.stderr)
        p = self.run_p("create", "mapping", "storage", "s", "--source", "a", "--storage-pairs",
                       "gp3:x;mode=Block", "--dry-run", rc=2)
        self.assertIn("volumeMode=Block|Filesystem", p.stderr)
        p = self.run_p("create", "plan", "p", "--source", "a", "--vms", "i-1",
                       "--network-mapping", "n", "--storage-mapping", "s", rc=2)
        self.assertIn("add --dry-run", p.stderr)
        p = self.run_p("create", "plan", "p", "--source", "a", "--vms", "i-1", "--dry-run",
                       "--dryrun", rc=2)
        self.assertIn("did you mean '--dry-run'?", p.stderr)
        p = self.run_p("create", "plan", "p", "-o", "table", "--dry-run", rc=2)
        self.assertIn("expected json, yaml", p.stderr)

    # ---- no cluster, typos ----

    def test_cluster_verbs_and_typos(self):
        # Without a cluster (test_cluster_verbs.py has one).
        for verb in ("archive", "delete"):
            p = self.run_p(verb, "plan", "p1", "-n", "mtv", rc=2)
            self.assertIn("pallet %s: needs a cluster" % verb, p.stderr)
        p = self.run_p("gte", "plan", rc=2)
        self.assertIn("unknown verb 'gte'; did you mean 'get'?", p.stderr)
        p = self.run_p("get", "plna", rc=2)
        self.assertIn("unknown resource 'plna'; did you mean 'plan'?", p.stderr)
        p = self.run_p("describe", "vmm", "x", rc=2)
        self.assertIn("did you mean 'vm'?", p.stderr)
        p = self.run_p("get", "plan", "--namspace", "x", rc=2)
        self.assertIn("did you mean '--namespace'?", p.stderr)
        p = self.run_p("get", "provider", rc=2)
        self.assertIn("give the Forklift YAML with -f FILE", p.stderr)
        p = self.run_p("get", "provider", "--kubeconfig", "k", rc=5)
        self.assertIn("pallet get: needs a cluster", p.stderr)
        p = self.run_p("get", "plan", "-o", rc=2)
        self.assertIn("needs a value", p.stderr)
        for verb in ("get", "describe", "inventory", "create", "archive", "delete"):
            p = self.run_p(verb, "--help")
            self.assertIn("Usage: pallet " + verb, p.stdout)

    def test_missing_provider_says_what_is_installed(self):
        plan = os.path.join(self.dir, "hv.yaml")
        with open(DEMO) as f, open(plan, "w") as g:
            g.write(f.read().replace('type: "null"', "type: hyperv"))
        for args in (("validate", plan), ("inventory", "vms", "-f", plan)):
            p = self.run_p(*args, rc=3)
            self.assertIn("provider 'hyperv' not found", p.stderr)
            self.assertRegex(p.stderr, r"installed providers: .*\bnull\b")
            self.assertIn("install its module pallet-provider-hyperv.so", p.stderr)

    def test_text_output_has_no_internal_names(self):
        # validate of a VM the null provider refuses: its words, not PALLET_E_*.
        bad = os.path.join(self.dir, "bad.yaml")
        with open(DEMO) as f:
            text = f.read()
        with open(bad, "w") as f:
            f.write(text.replace("- {name: db-1}", "- {id: vm-0404}"))
        p = self.run_p("validate", bad, rc=1)
        self.assertNotIn("PALLET_E_", p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
