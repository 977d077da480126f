#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Tests of check-deps.py: it must fail, naming the package, when
scripts/install-deps.sh loses a package the project needs at run time
(the appliance kernel above all), and when there is no kernel for
supermin.  Each case runs it against a modified copy of the script.

Usage: test_check_deps.py (environment: PALLET_TEST_TMP)."""
import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.normpath(os.path.join(HERE, "..", ".."))
CHECK = os.path.join(HERE, "check-deps.py")
SCRIPT = os.path.join(TOP, "scripts", "install-deps.sh")
TMP = os.environ.get("PALLET_TEST_TMP", "/tmp/pallet-check-deps-test")


def check(*args):
    env = {k: v for k, v in os.environ.items() if k != "SUPERMIN_KERNEL"}
    return subprocess.run(["/usr/bin/python3", CHECK] + list(args), capture_output=True,
                          text=True, env=env, timeout=120)


class CheckDeps(unittest.TestCase):
    def setUp(self):
        self.tmp = os.path.join(TMP, self.id().rsplit(".", 1)[-1])
        shutil.rmtree(self.tmp, ignore_errors=True)
        os.makedirs(self.tmp)

    def without(self, *pkgs):
        """A copy of install-deps.sh whose package list lacks pkgs."""
        with open(SCRIPT) as fh:
            text = fh.read()
        start, end = text.index('PKGS="'), text.index('"', text.index('PKGS="') + 6)
        words = text[start + 6:end].split()
        for p in pkgs:
            self.assertIn(p, words, "%s is not in install-deps.sh's PKGS any more" % p)
        kept = " ".join(w for w in words if w not in pkgs)
        path = os.path.join(self.tmp, "install-deps.sh")
        with open(path, "w") as fh:
            fh.write(text[:start + 6] + kept + text[end:])
        return path

    def test_unmodified_copy_passes(self):
        # The control: the copy mechanism itself breaks nothing.
        r = check("--install-deps", self.without())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_no_linux_image_amd64(self):
        r = check("--install-deps", self.without("linux-image-amd64"))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("FAIL appliance kernel (/boot/vmlinuz-", r.stdout)
        self.assertIn("fix: add linux-image-amd64", r.stdout)

    def test_no_awscli_no_ovmf_no_jsonschema(self):
        r = check("--install-deps", self.without("awscli", "ovmf", "python3-jsonschema"))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        for pkg in ("awscli", "ovmf", "python3-jsonschema"):
            self.assertIn("is in package %s, which scripts/install-deps.sh does not install" % pkg,
                          r.stdout)

    def test_no_kernel_for_supermin(self):
        boot = os.path.join(self.tmp, "boot")
        os.makedirs(boot)
        r = check("--boot-dir", boot)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("appliance kernel: no %s/vmlinuz-VERSION" % boot, r.stdout)
        # A kernel without its modules does not count either (supermin skips it).
        open(os.path.join(boot, "vmlinuz-9.9.9-test"), "w").close()
        r = check("--boot-dir", boot)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("appliance kernel: no", r.stdout)

    def test_program_missing_from_the_machine(self):
        # A package that is listed but not installed here is named.
        path = self.without()
        with open(path) as fh:
            text = fh.read()
        with open(path, "w") as fh:
            fh.write(text.replace('PKGS="', 'PKGS="pallet-no-such-package ', 1))
        r = check("--install-deps", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("package pallet-no-such-package, listed in", r.stdout)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
