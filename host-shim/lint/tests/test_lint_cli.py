#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Tests of `pallet lint-manifests`: the pallet of a build tree finds the
validator of its source tree; a pallet elsewhere looks for the installed
one (and says how to fix it when it is missing); `cmake --install` lays
out a validator that finds its installed schemas; exit statuses and
messages go through unchanged.  No kubectl (PATH has none).

Environment (set by CMake): PALLET, PALLET_BUILD_DIR, PALLET_LINT_INSTALL_PREFIX,
PALLET_TEST_TMP."""
import json
import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PALLET = os.environ["PALLET"]
BUILD = os.environ["PALLET_BUILD_DIR"]
PREFIX = os.environ["PALLET_LINT_INSTALL_PREFIX"]
TMP = os.environ["PALLET_TEST_TMP"]
EXAMPLES = os.path.join(HERE, "examples")
ENV = {"PATH": "/nonexistent", "LC_ALL": "C.UTF-8"}


def run(argv, env=None, timeout=120):
    return subprocess.run(argv, env=dict(ENV, **(env or {})), capture_output=True,
                          text=True, timeout=timeout)


class LintCli(unittest.TestCase):
    def setUp(self):
        self.tmp = os.path.join(TMP, "cli-" + self.id().rsplit(".", 1)[-1])
        shutil.rmtree(self.tmp, ignore_errors=True)
        os.makedirs(self.tmp)

    def test_build_tree_pallet_uses_source_validator(self):
        r = run([PALLET, "lint-manifests", "--strict", EXAMPLES + "/vm.yaml", EXAMPLES + "/pvc.json"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("OK   %s/vm.yaml#0: kubevirt.io/v1 VirtualMachine" % EXAMPLES, r.stdout)

    def test_invalid_and_unvalidatable(self):
        r = run([PALLET, "lint-manifests", "--strict", EXAMPLES + "/invalid-vm.yaml"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown field 'runing' (v1.VirtualMachineSpec); did you mean 'running'?", r.stderr)
        p = os.path.join(self.tmp, "vm.json")
        with open(p, "w") as fh:
            json.dump({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineX", "metadata": {}}, fh)
        r = run([PALLET, "lint-manifests", p])
        self.assertEqual(r.returncode, 2)
        self.assertIn("no schema for apiVersion=kubevirt.io/v1 kind=VirtualMachineX", r.stderr)
        r = run([PALLET, "lint-manifests", "--strict", "--schema-dir", self.tmp, p])
        self.assertEqual(r.returncode, 2)
        self.assertIn("kubevirt.json, core-v1.json, cdi.json missing from " + self.tmp, r.stderr)
        r = run([PALLET, "lint-manifests", "--no-such-option", p])
        self.assertEqual(r.returncode, 2)
        self.assertIn("unrecognized arguments: --no-such-option", r.stderr)

    def test_help(self):
        r = run([PALLET, "lint-manifests", "--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("Usage: pallet lint-manifests [--strict]", r.stdout)
        r = run([PALLET, "--help"])
        self.assertIn("lint-manifests [--strict] [--allow-null] [--list-kinds] [--schema-dir DIR]",
                      r.stdout)

    def test_copied_pallet_wants_the_installed_validator(self):
        copy = os.path.join(self.tmp, "pallet")
        shutil.copy(PALLET, copy)
        r = run([copy, "lint-manifests", EXAMPLES + "/vm.yaml"],
                env={"LD_LIBRARY_PATH": os.path.dirname(PALLET)})
        installed = os.path.join(PREFIX, "libexec", "pallet", "pallet-lint-manifests")
        if os.path.exists(installed):
            self.assertEqual(r.returncode, 0, r.stderr)
        else:
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("the validator %s: No such file or directory; fix: reinstall pallet" % installed,
                          r.stderr)
        r = run([copy, "lint-manifests", EXAMPLES + "/vm.yaml"],
                env={"LD_LIBRARY_PATH": os.path.dirname(PALLET),
                     "PALLET_LINT_MANIFESTS": os.path.join(self.tmp, "absent")})
        self.assertEqual(r.returncode, 2)
        self.assertIn("the validator %s/absent: No such file or directory" % self.tmp, r.stderr)

    def test_installed_layout(self):
        dest = os.path.join(self.tmp, "destdir")
        r = subprocess.run(["cmake", "--install", BUILD], env=dict(os.environ, DESTDIR=dest),
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        root = dest + PREFIX
        validator = os.path.join(root, "libexec", "pallet", "pallet-lint-manifests")
        schemas = os.path.join(root, "share", "pallet", "kubernetes-schemas")
        for f in ("kubevirt.json", "core-v1.json", "cdi.json", "LICENSE", "README.md"):
            self.assertTrue(os.path.isfile(os.path.join(schemas, f)), f)
        self.assertTrue(os.access(validator, os.X_OK))
        # It looks in PREFIX's data dir (not the source tree): under DESTDIR
        # that is absent, so it names the directory it wanted ...
        r = run(["/usr/bin/python3", validator, EXAMPLES + "/vm.yaml"])
        if not os.path.isdir(os.path.join(PREFIX, "share", "pallet", "kubernetes-schemas")):
            self.assertEqual(r.returncode, 2)
            self.assertIn("missing from %s/share/pallet/kubernetes-schemas" % PREFIX, r.stderr)
        # ... and with the staged schemas it validates.
        r = run(["/usr/bin/python3", validator, "--strict", "--schema-dir", schemas,
                 EXAMPLES + "/vm.yaml"])
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
