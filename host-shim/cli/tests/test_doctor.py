#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Tests of `pallet doctor`: the all-good case in under 5 s, then every
failing case through an override: a fake empty kernel dir, a kernel
without modules, SUPERMIN_KERNEL at nothing, programs missing from PATH,
low free space (--min-free above what the file system has), a missing
--dir, no usable KVM (/dev/null bound over /dev/kvm in a private mount
namespace), a QEMU that dies under KVM, a bad LIBGUESTFS_BACKEND, -o
json, usage errors, and --deep naming libguestfs-test-tool's error.

Usage: test_doctor.py [CASE...] (environment: PALLET, PALLET_TEST_TMP)."""
import json
import os
import shutil
import subprocess
import sys
import time
import unittest

PALLET = os.environ["PALLET"]
TMP = os.environ["PALLET_TEST_TMP"]
SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BASE_ENV = {k: v for k, v in os.environ.items()
            if k not in ("SUPERMIN_KERNEL", "LIBGUESTFS_CACHEDIR", "LIBGUESTFS_BACKEND_SETTINGS")}


def doctor(*args, env=None, timeout=120):
    e = dict(BASE_ENV, PATH=SYS_PATH)
    e.update(env or {})
    t0 = time.monotonic()
    r = subprocess.run([PALLET, "doctor"] + list(args), env=e, capture_output=True, text=True,
                       timeout=timeout)
    r.seconds = time.monotonic() - t0
    return r


def lines(r, status, check):
    return [l for l in r.stdout.splitlines() if l.split()[:2] == [status, check]]


class Doctor(unittest.TestCase):
    def setUp(self):
        self.tmp = os.path.join(TMP, "doctor-" + self.id().rsplit(".", 1)[-1])
        shutil.rmtree(self.tmp, ignore_errors=True)
        os.makedirs(self.tmp)
        # The project's environment here: TCG forced (this machine's nested
        # KVM aborts QEMU; test_kvm covers the KVM verdicts).
        self.env = {"TMPDIR": self.tmp, "LIBGUESTFS_BACKEND": "direct",
                    "LIBGUESTFS_BACKEND_SETTINGS": "force_tcg"}

    def test_all_good_is_fast(self):
        r = doctor(env=self.env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertLess(r.seconds, 5.0, "doctor took %.1f s" % r.seconds)
        for check in ("kernel", "kvm", "backend", "supermin", "qemu-system-x86_64", "virt-v2v", "virt-v2v-in-place",
                      "nbdkit", "nbdkit-curl", "nbdkit-ssh", "space"):
            self.assertTrue(lines(r, "OK", check), "%s not OK:\n%s" % (check, r.stdout))
        self.assertRegex(r.stdout, r"OK   virt-v2v +virt-v2v \d+\.\d+")
        self.assertRegex(r.stdout, r"OK   virt-v2v-in-place +virt-v2v-in-place \d+\.\d+")
        # Debian's nbdkit has no VDDK plugin: a WARN that says what it means.
        self.assertIn("WARN nbdkit-vddk", r.stdout)
        self.assertIn("vSphere disks are read over HTTPS (curl) without it", r.stdout)
        self.assertRegex(r.stdout, r"doctor: 0 FAIL, \d+ WARN, \d+ OK")

    def test_fake_empty_kernel_dir(self):
        boot = os.path.join(self.tmp, "boot")
        os.makedirs(boot)
        r = doctor("--boot-dir", boot, env=self.env)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("FAIL kernel             no kernel for the libguestfs appliance: no %s/vmlinuz-VERSION"
                      % boot, r.stdout)
        self.assertIn("fix: apt-get install linux-image-amd64", r.stdout)
        self.assertRegex(r.stdout, r"doctor: 1 FAIL")

    def test_kernel_without_modules(self):
        boot, mods = os.path.join(self.tmp, "boot"), os.path.join(self.tmp, "modules")
        os.makedirs(boot)
        os.makedirs(os.path.join(mods, "6.1.0-1-amd64"))
        for v in ("6.1.0-1-amd64", "6.1.0-10-amd64"):
            with open(os.path.join(boot, "vmlinuz-" + v), "w") as fh:
                fh.write("not really a kernel")
        # The newest has no modules: the older one, which has, is picked.
        r = doctor("--boot-dir", boot, "--modules-dir", mods, env=self.env)
        self.assertIn("OK   kernel             appliance kernel %s/vmlinuz-6.1.0-1-amd64" % boot, r.stdout)
        shutil.rmtree(os.path.join(mods, "6.1.0-1-amd64"))
        r = doctor("--boot-dir", boot, "--modules-dir", mods, env=self.env)
        self.assertEqual(r.returncode, 1)
        self.assertTrue(lines(r, "FAIL", "kernel"), r.stdout)
        r = doctor(env=dict(self.env, SUPERMIN_KERNEL=os.path.join(self.tmp, "none")))
        self.assertEqual(r.returncode, 1)
        self.assertIn("SUPERMIN_KERNEL=%s/none: No such file or directory" % self.tmp, r.stdout)

    def fake_path(self, leave_out):
        d = os.path.join(self.tmp, "bin")
        os.makedirs(d, exist_ok=True)
        for prog in ("supermin", "qemu-system-x86_64", "virt-v2v", "virt-v2v-in-place", "nbdkit"):
            if prog not in leave_out:
                os.symlink(shutil.which(prog, path=SYS_PATH), os.path.join(d, prog))
        return d

    def test_missing_programs(self):
        r = doctor(env=dict(self.env, PATH=self.fake_path({"virt-v2v-in-place"})))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("FAIL virt-v2v-in-place  virt-v2v-in-place not found on PATH", r.stdout)
        self.assertIn("fix: apt-get install virt-v2v", r.stdout)
        self.assertTrue(lines(r, "OK", "virt-v2v"), r.stdout)
        shutil.rmtree(os.path.join(self.tmp, "bin"))
        r = doctor(env=dict(self.env, PATH=self.fake_path({"nbdkit", "supermin"})))
        self.assertEqual(r.returncode, 1)
        self.assertIn("FAIL nbdkit             nbdkit not found on PATH", r.stdout)
        self.assertIn("FAIL supermin           supermin not found on PATH", r.stdout)
        self.assertRegex(r.stdout, r"doctor: 2 FAIL")

    def test_low_free_space(self):
        r = doctor("--min-free", "1000000T", env=self.env)
        self.assertEqual(r.returncode, 1)
        self.assertIn("FAIL space              %s (TMPDIR: virt-v2v's overlays, the appliance)" % self.tmp,
                      r.stdout)
        self.assertIn("below the minimum", r.stdout)
        self.assertIn("fix: free space in %s, or point TMPDIR at a larger file system" % self.tmp,
                      r.stdout)
        # Between the minimum and 4 times it: a WARN, and no failure.
        st = os.statvfs(self.tmp)
        half = st.f_bavail * st.f_frsize // 2
        r = doctor("--min-free", str(half), env=self.env)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("WARN space              %s (TMPDIR" % self.tmp, r.stdout)
        r = doctor("--dir", os.path.join(self.tmp, "absent"), env=self.env)
        self.assertEqual(r.returncode, 1)
        self.assertIn("FAIL space              %s/absent (--dir: disks and manifests): No such file"
                      % self.tmp, r.stdout)
        r = doctor(env=dict(self.env, LIBGUESTFS_CACHEDIR=os.path.join(self.tmp, "nocache")))
        self.assertEqual(r.returncode, 1)
        self.assertIn("FAIL space              %s/nocache (LIBGUESTFS_CACHEDIR: the appliance)" % self.tmp,
                      r.stdout)

    def test_kvm(self):
        # No usable /dev/kvm (/dev/null bound over it): libguestfs falls back
        # to TCG, slower: a WARN that says how to force TCG.
        e = dict(BASE_ENV, PATH=SYS_PATH, TMPDIR=self.tmp)
        script = ("[ -e /dev/kvm ] || exec \"$0\" doctor; "
                  "mount --bind /dev/null /dev/kvm && exec \"$0\" doctor")
        r = subprocess.run(["unshare", "--mount", "sh", "-c", script, PALLET], env=e,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("WARN kvm ", r.stdout)
        self.assertIn("run under TCG", r.stdout)
        self.assertIn("force-tcg: \"true\", or LIBGUESTFS_BACKEND_SETTINGS=force_tcg", r.stdout)
        # A QEMU that dies at once under KVM (here /bin/false in its place):
        # libguestfs would not fall back, so a FAIL, unless TCG is forced.
        d = os.path.join(self.tmp, "bin")
        os.makedirs(d)
        os.symlink("/bin/false", os.path.join(d, "qemu-system-x86_64"))
        env = {k: v for k, v in self.env.items() if k != "LIBGUESTFS_BACKEND_SETTINGS"}
        env["PATH"] = d + ":" + SYS_PATH
        if os.path.exists("/dev/kvm"):
            r = doctor(env=env)
            self.assertIn("FAIL kvm                QEMU cannot run a KVM guest here", r.stdout)
            self.assertIn("fix: force TCG: set the Provider setting force-tcg: \"true\"", r.stdout)
        r = doctor(env=dict(env, LIBGUESTFS_BACKEND_SETTINGS="force_tcg"))
        self.assertIn("OK   kvm                TCG forced (LIBGUESTFS_BACKEND_SETTINGS=force_tcg)", r.stdout)

    def test_backend(self):
        r = doctor(env=dict(self.env, LIBGUESTFS_BACKEND="libvirt"))
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("WARN backend            LIBGUESTFS_BACKEND=libvirt: needs a running libvirtd", r.stdout)
        r = doctor(env=dict(self.env, LIBGUESTFS_BACKEND="bogus"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("FAIL backend            LIBGUESTFS_BACKEND=bogus is not a libguestfs backend", r.stdout)

    def test_json(self):
        boot = os.path.join(self.tmp, "boot")
        os.makedirs(boot)
        r = doctor("-o", "json", "--boot-dir", boot, env=self.env)
        self.assertEqual(r.returncode, 1)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["failed"], 1)
        self.assertFalse(doc["ok"])
        kernel = [c for c in doc["checks"] if c["check"] == "kernel"][0]
        self.assertEqual(kernel["status"], "FAIL")
        self.assertIn("linux-image-amd64", kernel["fix"])
        self.assertEqual({c["status"] for c in doc["checks"]} - {"OK", "WARN", "FAIL"}, set())

    def test_usage(self):
        for args, msg in ((["-o", "yaml"], "-o 'yaml': expected text or json"),
                          (["--min-free", "lots"], "--min-free 'lots': expected a size"),
                          (["extra"], "unexpected argument 'extra'"),
                          (["--bogus"], "unrecognized option")):
            r = doctor(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(msg, r.stderr)
        r = doctor("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("Usage: pallet doctor [--deep]", r.stdout)

    def test_deep_failure_names_the_error(self):
        # libguestfs-test-tool really runs and fails at once on a bad backend.
        r = doctor("--deep", env=dict(self.env, LIBGUESTFS_BACKEND="bogus"), timeout=300)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("FAIL appliance          libguestfs-test-tool failed: libguestfs: error: "
                      "invalid backend: bogus", r.stdout)


class DoctorDeep(unittest.TestCase):
    """The appliance really boots (slow: a minute or more under TCG)."""

    def test_deep_boots(self):
        r = doctor("--deep", env={"LIBGUESTFS_BACKEND": "direct",
                                  "LIBGUESTFS_BACKEND_SETTINGS": "force_tcg"}, timeout=900)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("OK   appliance          libguestfs-test-tool booted the appliance", r.stdout)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])
