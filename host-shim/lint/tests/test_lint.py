#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Tests of pallet-lint-manifests: the bundled examples, every way a
manifest can fail (unknown field, wrong type, wrong kind, duplicate key,
parse error), a missing or broken schema directory, directories, and the
installed copy finding its schemas.  No kubectl and no cluster: the
validator needs neither, so the tests run with a PATH that has no kubectl.

Environment (set by CMake): PALLET_LINT_MANIFESTS, PALLET_LINT_INSTALLED,
PALLET_TEST_TMP."""
import json
import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
LINT = os.environ.get("PALLET_LINT_MANIFESTS", os.path.join(HERE, "..", "pallet-lint-manifests"))
INSTALLED = os.environ.get("PALLET_LINT_INSTALLED")
TMP = os.environ.get("PALLET_TEST_TMP", "/tmp/pallet-lint-test")
EXAMPLES = os.path.join(HERE, "examples")
SCHEMAS = os.path.join(os.path.dirname(os.path.abspath(LINT)), "schemas")
# No kubectl (nor anything else) reachable: /usr/bin/python3 is run by path.
ENV = {"PATH": "/nonexistent", "LC_ALL": "C.UTF-8"}


def lint(*args, prog=LINT):
    return subprocess.run(["/usr/bin/python3", prog] + list(args), env=ENV,
                          capture_output=True, text=True, timeout=60)


VM = {
    "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
    "metadata": {"name": "vm1", "namespace": "ns"},
    "spec": {"runStrategy": "Halted", "template": {"spec": {
        "domain": {"devices": {"disks": [{"name": "root", "disk": {"bus": "virtio"}}]},
                   "resources": {"requests": {"memory": "1Gi"}}},
        "volumes": [{"name": "root", "persistentVolumeClaim": {"claimName": "vm1-root"}}]}}}}


class Lint(unittest.TestCase):
    def setUp(self):
        self.tmp = os.path.join(TMP, self.id().rsplit(".", 1)[-1])
        shutil.rmtree(self.tmp, ignore_errors=True)
        os.makedirs(self.tmp)

    def write(self, name, doc):
        path = os.path.join(self.tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    def test_examples(self):
        for name in sorted(os.listdir(EXAMPLES)):
            want = 1 if name.startswith("invalid-") else 0
            r = lint("--strict", os.path.join(EXAMPLES, name))
            self.assertEqual(r.returncode, want, "%s: %s%s" % (name, r.stdout, r.stderr))
            if want:
                self.assertIn("FAIL", r.stderr)
            else:
                self.assertTrue(r.stdout.startswith("OK "), r.stdout)

    def test_unknown_field_named_with_suggestion(self):
        doc = json.loads(json.dumps(VM))
        doc["spec"]["runStrategyy"] = "Always"
        p = self.write("vm.json", doc)
        r = lint("--strict", p)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("$.spec.runStrategyy: unknown field 'runStrategyy'", r.stderr)
        self.assertIn("did you mean 'runStrategy'?", r.stderr)
        # Without --strict unknown fields are let through (and nothing else is wrong).
        self.assertEqual(lint(p).returncode, 0)

    def test_wrong_type(self):
        doc = json.loads(json.dumps(VM))
        doc["spec"]["template"]["spec"]["domain"]["resources"]["requests"]["memory"] = "1 GB"
        r = lint("--strict", self.write("vm.json", doc))
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a valid Kubernetes quantity", r.stderr)

    def test_wrong_kind_cannot_validate(self):
        doc = dict(VM, kind="VirtualMachin")
        r = lint("--strict", self.write("vm.json", doc))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("no schema for apiVersion=kubevirt.io/v1 kind=VirtualMachin", r.stderr)
        r = lint("--strict", self.write("novk.json", {"metadata": {}}))
        self.assertEqual(r.returncode, 2)
        self.assertIn("apiVersion and kind must both be non-empty strings", r.stderr)

    def test_duplicate_key_and_parse_error(self):
        r = lint("--strict", self.write("dup.json", '{"apiVersion": "v1", "apiVersion": "v1", "kind": "Pod"}'))
        self.assertEqual(r.returncode, 1)
        self.assertIn("duplicate key 'apiVersion'", r.stderr)
        r = lint("--strict", self.write("bad.json", '{"apiVersion": '))
        self.assertEqual(r.returncode, 2)
        self.assertIn("JSON parse error", r.stderr)
        r = lint("--strict", os.path.join(self.tmp, "absent.yaml"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("absent.yaml", r.stderr)

    def test_missing_schema_file(self):
        d = os.path.join(self.tmp, "schemas")
        os.makedirs(d)
        for f in ("kubevirt.json", "cdi.json"):
            shutil.copy(os.path.join(SCHEMAS, f), d)
        r = lint("--strict", "--schema-dir", d, os.path.join(EXAMPLES, "vm.yaml"))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("core-v1.json missing from " + d, r.stderr)
        self.assertIn("fix: ", r.stderr)
        with open(os.path.join(d, "core-v1.json"), "w") as fh:
            fh.write("[]")
        r = lint("--schema-dir", d, os.path.join(EXAMPLES, "vm.yaml"))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("not an OpenAPI v2 file", r.stderr)

    def test_directories(self):
        good = self.write("out/i-1/vm.json", VM)
        self.write("out/i-1/notes.txt", "not a manifest: skipped")
        with open(os.path.join(EXAMPLES, "pvc.json")) as fh:
            self.write("out/i-2/pvc.yaml", fh.read())
        r = lint("--strict", os.path.join(self.tmp, "out"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.count("OK "), 2, r.stdout)
        self.assertIn(good, r.stdout)
        # One bad file anywhere below fails the whole directory.
        shutil.copy(os.path.join(EXAMPLES, "invalid-vm.yaml"), os.path.join(self.tmp, "out", "i-2"))
        r = lint("--strict", "-q", os.path.join(self.tmp, "out"))
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertIn("invalid-vm.yaml", r.stderr)
        os.makedirs(os.path.join(self.tmp, "empty"))
        r = lint(os.path.join(self.tmp, "empty"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("directory holds no manifest", r.stderr)

    def test_usage(self):
        r = lint()
        self.assertEqual(r.returncode, 2)
        self.assertIn("no MANIFEST or DIR given", r.stderr)
        r = lint("--list-kinds")
        self.assertEqual(r.returncode, 0)
        for kind in ("VirtualMachine", "PersistentVolumeClaim", "DataVolume", "Pod"):
            self.assertIn(kind, r.stdout)

    def test_installed_copy_uses_installed_schema_dir(self):
        self.assertTrue(INSTALLED, "PALLET_LINT_INSTALLED is not set: run this through ctest")
        # The installed copy looks only in the configured data dir: a copy
        # of it beside the schemas of the source tree must not find them.
        r = lint("--help", prog=INSTALLED)
        self.assertEqual(r.returncode, 0)
        self.assertIn("/pallet/kubernetes-schemas", r.stdout)
        self.assertNotIn(SCHEMAS, r.stdout)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
