# SPDX-License-Identifier: Apache-2.0
"""Fast end-to-end tests of the v2v providers: `pallet` against the
simulated vCenter and ESXi (real libvirt ESX driver), with a stand-in for
virt-v2v (tests/fake-virt-v2v.sh) so every path runs in seconds; the one
real conversion is test_v2v_slow.py."""

import glob
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from v2v_harness import FAKE, PASSWORD, PROVIDERS, V2VE2E, guest_image, plan_docs  # noqa: E402

IMAGE = guest_image()


class Inventory(V2VE2E):
    def config(self, sim, insecure=True):
        spec = {"type": "vsphere", "url": "https://127.0.0.1:%d/sdk" % sim.info["port"],
                "settings": {"host-path": sim.info["hostPath"]} if sim.info["model"] == "vpx"
                else {"sdkEndpoint": "esxi"}}
        secret = {"user": "root", "password": PASSWORD}
        if insecure:
            secret["insecureSkipVerify"] = "true"
        p = os.path.join(self.tmp, "cfg.json")
        with open(p, "w") as f:
            json.dump({"provider": {"spec": spec}, "secret": secret}, f)
        return p

    def test_vms_with_query(self):
        s = self.sim(image=IMAGE)
        r = self.pallet("inventory", "vms", "--provider", "vsphere", "--config", self.config(s),
                        "-o", "json", "-q", "where powerState = 'Off' and memoryMiB >= 1024", check=0)
        vms = json.loads(r.stdout)
        self.assertEqual([v["name"] for v in vms], ["DC0_H0_VM0"])
        v = vms[0]
        self.assertEqual(v["uuid"], "42233d5e-7a1c-4b59-9a7e-0d1e2f3a4b5c")
        self.assertEqual(v["id"], s.info["vmMoref"])
        self.assertEqual(v["disks"][0]["datastore"], "LocalDS_0")
        self.assertEqual(v["disks"][0]["vmdk"], "DC0_H0_VM0/disk1.vmdk")
        self.assertEqual(v["nics"][0], {"mac": "00:50:56:aa:bb:01", "network": "VM Network", "model": "vmxnet3"})
        self.assertEqual(v["firmware"], "bios")
        r = self.pallet("inventory", "vms", "--provider", "vsphere", "--config", self.config(s),
                        "-o", "json", "-q", "where memoryMiB > 4Gi", check=0)
        self.assertEqual(json.loads(r.stdout), [])
        for kind, want in (("datastores", "LocalDS_0"), ("networks", "vSwitch0"), ("hosts", None)):
            r = self.pallet("inventory", kind, "--provider", "vsphere", "--config", self.config(s),
                            "-o", "json", check=0)
            items = json.loads(r.stdout)
            self.assertTrue(items, kind)
            if want:
                self.assertIn(want, [i["name"] for i in items])
        r = self.pallet("inventory", "instances", "--provider", "vsphere", "--config", self.config(s))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("known kinds: vms, hosts, datastores, networks", r.stderr)

    def test_unreadable_vm_named(self):
        """A VM whose .vmx the ESX driver cannot read (nothing staged): the
        error names the VM and carries libvirt's message intact (it was
        read after libvirt had freed it)."""
        s = self.sim()
        r = self.pallet("inventory", "vms", "--provider", "vsphere", "--config", self.config(s))
        self.assertNotEqual(r.returncode, 0)
        line = [l for l in r.stderr.splitlines() if "reading VM" in l]
        self.assertTrue(line, r.stderr)
        self.assertIn("reading VM DC0_H0_VM0: ", line[0])
        self.assertNotIn("\ufffd", line[0])
        self.assertTrue(line[0].isprintable(), repr(line[0]))

    def test_esxi(self):
        s = self.sim(model="esx", image=IMAGE)
        r = self.pallet("inventory", "vms", "--provider", "vsphere", "--config", self.config(s),
                        "-o", "json", check=0)
        self.assertEqual([v["name"] for v in json.loads(r.stdout)], ["ha-host_VM0"])

    def test_tls_verified_by_default(self):
        s = self.sim(image=IMAGE)
        r = self.pallet("inventory", "vms", "--provider", "vsphere", "--config", self.config(s, insecure=False))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("insecureSkipVerify", r.stderr)


class Validation(V2VE2E):
    def types(self, r):
        out = []
        for e in self.findings(r):
            out += [f["type"] for f in e.get("findings", [])]
        return out

    def test_ok(self):
        s = self.sim(image=IMAGE)
        r = self.pallet("validate", self.vsphere_plan(s), "-o", "json", check=0)
        self.assertEqual(self.types(r), ["TargetNameSanitised"])

    def test_findings(self):
        s = self.sim(image=IMAGE)
        cases = [
            (dict(password="wrong"), "CredentialsRejected"),
            (dict(insecure=False), "TLSVerificationFailed"),
            (dict(vm="no-such-vm"), "VMNotFound"),
            (dict(network="other-net"), "NetworkNotMapped"),
            (dict(storage="other-ds"), "StorageNotMapped"),
            (dict(plan_extra={"skipGuestConversion": True}), "SkipGuestConversionNotSupported"),
            (dict(plan_extra={"type": "warm"}), "MigrationTypeNotSupported"),
        ]
        for kw, want in cases:
            r = self.pallet("validate", self.vsphere_plan(s, **kw), "-o", "json")
            self.assertEqual(r.returncode, 1, (kw, r.stdout, r.stderr))
            self.assertIn(want, self.types(r), (kw, r.stdout))
            self.assertNotIn("wrong", r.stdout + r.stderr.replace("wrong password", ""))

    def test_powered_on(self):
        s = self.sim(image=IMAGE, power="on")
        r = self.pallet("validate", self.vsphere_plan(s), "-o", "json", check=0)
        self.assertIn("VMWillBePoweredOff", self.types(r))
        r = self.pallet("validate", self.vsphere_plan(s, settings={"power-off": "false"}), "-o", "json")
        self.assertEqual(r.returncode, 1)
        self.assertIn("VMPoweredOn", self.types(r))

    def test_vddk_without_plugin(self):
        """Debian's nbdkit has no vddk plugin: a clear finding, not a
        virt-v2v failure halfway through."""
        s = self.sim(image=IMAGE)
        r = self.pallet("validate", self.vsphere_plan(s, settings={"transport": "vddk",
                        "vddk-libdir": self.tmp}), "-o", "json")
        self.assertEqual(r.returncode, 1)
        t = self.types(r)
        self.assertIn("VDDKPluginMissing", t)
        self.assertIn("VDDKLibdirMissing", t)
        self.assertIn("VDDKThumbprintMissing", t)
        msg = [f["message"] for e in self.findings(r) for f in e["findings"] if f["type"] == "VDDKPluginMissing"][0]
        self.assertIn("nbdkit-vddk-plugin", msg)

    def test_unknown_setting(self):
        s = self.sim(image=IMAGE)
        r = self.pallet("validate", self.vsphere_plan(s, settings={"hostpath": "x"}))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("unknown setting 'hostpath'", r.stderr)
        self.assertIn("host-path", r.stderr)


class Migrate(V2VE2E):
    def migrate(self, plan, check=0, **env):
        return self.pallet("migrate", plan, "--state-dir", os.path.join(self.tmp, "state"),
                           "--output-dir", os.path.join(self.tmp, "manifests"), "-o", "json",
                           check=check, **env)

    def test_vcenter_pipeline(self):
        s = self.sim(image=IMAGE)
        plan = self.vsphere_plan(s)
        self.migrate(plan)
        calls = self.v2v_calls()
        self.assertEqual(len(calls), 1)
        want = ("-i libvirt -ic vpx://root@127.0.0.1:%d/DC0/DC0_H0?no_verify=1 -ip %s/dc0-h0-vm0/.pallet-v2v-pw-"
                % (s.info["port"], self.out))
        self.assertIn(want, calls[0])
        self.assertIn("-o kubevirt -os %s/dc0-h0-vm0 -on dc0-h0-vm0 -of raw -oa sparse --machine-readable -- DC0_H0_VM0"
                      % self.out, calls[0])
        # the password file is gone once virt-v2v ended, and never in state
        self.assertEqual(glob.glob(os.path.join(self.out, "*", ".pallet-v2v-pw-*")), [])
        for f in glob.glob(os.path.join(self.tmp, "state", "**"), recursive=True):
            if os.path.isfile(f):
                with open(f, errors="replace") as fh:
                    self.assertNotIn(PASSWORD, fh.read(), f)
        ms = self.manifests(os.path.join(self.tmp, "manifests"))
        self.assert_strict(ms)
        with open([m for m in ms if "VirtualMachine" in m][0]) as f:
            vm = json.load(f)
        dom = vm["spec"]["template"]["spec"]["domain"]
        self.assertEqual(dom["cpu"], {"sockets": 1, "cores": 1, "threads": 1})
        self.assertEqual(dom["devices"]["interfaces"][0]["macAddress"], "00:50:56:aa:bb:01")
        self.assertEqual(dom["firmware"]["uuid"], "42233d5e-7a1c-4b59-9a7e-0d1e2f3a4b5c")
        # A second run adopts the finished conversion: virt-v2v is not run again.
        self.pallet("cleanup", plan, "--state-dir", os.path.join(self.tmp, "state2"))
        self.pallet("migrate", plan, "--state-dir", os.path.join(self.tmp, "state2"),
                    "--output-dir", os.path.join(self.tmp, "manifests2"), check=0)
        self.assertEqual(len(self.v2v_calls()), 1)

    def power(self, sim):
        cfg = os.path.join(self.tmp, "cfg.json")
        with open(cfg, "w") as f:
            json.dump({"provider": {"spec": {"type": "vsphere", "url": "https://127.0.0.1:%d/sdk" % sim.info["port"],
                                             "settings": {"host-path": sim.info["hostPath"]}}},
                       "secret": {"user": "root", "password": PASSWORD, "insecureSkipVerify": "true"}}, f)
        r = self.pallet("inventory", "vms", "--provider", "vsphere", "--config", cfg, "-o", "json", check=0)
        return json.loads(r.stdout)[0]["powerState"]

    def test_powered_on_vm(self):
        """A running VM is powered off through the API for the copy, and on
        again when the migration rolls back."""
        s = self.sim(image=IMAGE, power="on")
        plan = self.vsphere_plan(s)
        self.assertEqual(self.power(s), "On")
        self.migrate(plan, check=1, FAKE_V2V_MODE="fail")
        self.assertEqual(len(self.v2v_calls()), 1)
        self.assertEqual(self.power(s), "On")
        self.pallet("migrate", plan, "--state-dir", os.path.join(self.tmp, "state2"),
                    "--output-dir", os.path.join(self.tmp, "m2"), check=0)
        self.assertEqual(self.power(s), "Off")
        vm = [m for m in self.manifests(os.path.join(self.tmp, "m2")) if "VirtualMachine" in m][0]
        with open(vm) as f:
            self.assertEqual(json.load(f)["spec"]["runStrategy"], "Always")   # the source ran

    def test_esxi_argv(self):
        s = self.sim(model="esx", image=IMAGE)
        self.migrate(self.vsphere_plan(s))
        self.assertIn("-ic esx://root@127.0.0.1:%d/?no_verify=1 -ip " % s.info["port"], self.v2v_calls()[0])

    def test_virt_v2v_fails(self):
        s = self.sim(image=IMAGE)
        r = self.migrate(self.vsphere_plan(s), check=1, FAKE_V2V_MODE="fail")
        self.assertIn("inspection could not detect the source guest", r.stdout + r.stderr)
        self.assertEqual(glob.glob(os.path.join(self.out, "*", ".pallet-v2v-pw-*")), [])
        self.assertFalse(os.path.exists(os.path.join(self.out, "dc0-h0-vm0")), "rollback left the output")

    def wait_file(self, path, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            if os.path.exists(path):
                with open(path) as f:
                    text = f.read().strip()
                if text:
                    return int(text)
            time.sleep(0.1)
        self.fail("%s never appeared" % path)

    def test_kill9_resume(self):
        """pallet killed with -9 mid-conversion leaves virt-v2v running; the
        rerun stops it, removes its partial disk and converts again."""
        s = self.sim(image=IMAGE)
        plan = self.vsphere_plan(s)
        pidf = os.path.join(self.tmp, "v2v.pid")
        p = subprocess.Popen([os.environ.get("PALLET_BIN", "pallet"), "migrate", plan, "--state-dir",
                              os.path.join(self.tmp, "state"), "--output-dir", os.path.join(self.tmp, "m")],
                             env=self.env(FAKE_V2V_MODE="hang", FAKE_V2V_PID=pidf), cwd=self.tmp,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        v2v = self.wait_file(pidf)
        p.kill()
        p.wait()
        os.kill(v2v, 0)                       # the orphan still runs
        self.migrate(plan)
        with self.assertRaises(ProcessLookupError):
            for _ in range(50):
                os.kill(v2v, 0)
                time.sleep(0.1)
        self.assertEqual(len(self.v2v_calls()), 2)
        self.assertEqual(os.path.getsize(os.path.join(self.out, "dc0-h0-vm0", "dc0-h0-vm0-sda")), 64 << 20)

    def test_cancel(self):
        s = self.sim(image=IMAGE)
        plan = self.vsphere_plan(s)
        pidf = os.path.join(self.tmp, "v2v.pid")
        p = subprocess.Popen([os.environ.get("PALLET_BIN", "pallet"), "migrate", plan, "--state-dir",
                              os.path.join(self.tmp, "state")],
                             env=self.env(FAKE_V2V_MODE="hang", FAKE_V2V_PID=pidf), cwd=self.tmp,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        v2v = self.wait_file(pidf)
        t0 = time.time()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 4, err)
        self.assertLess(time.time() - t0, 20)
        with self.assertRaises(ProcessLookupError):
            os.kill(v2v, 0)
        self.assertFalse(os.path.exists(os.path.join(self.out, "dc0-h0-vm0")))


class OvaAndDisk(V2VE2E):
    def file_plan(self, ptype, url, vm):
        path = os.path.join(self.tmp, "plan.yaml")
        with open(path, "w") as f:
            f.write(plan_docs(url, vm, {"output-dir": self.out, "virt-v2v": FAKE}, {},
                              storage="default", ptype=ptype))
        return path

    def make_ova(self, name, members):
        p = os.path.join(self.tmp, "ovas", name + ".ova")
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with tarfile.open(p, "w", format=tarfile.USTAR_FORMAT) as t:
            for m in members:
                info = tarfile.TarInfo(m)
                info.size = 4
                import io
                t.addfile(info, io.BytesIO(b"data"))
        return p

    def test_malicious_ova_refused_before_virt_v2v(self):
        for bad in ("../../etc/evil.vmdk", "/tmp/evil.vmdk"):
            self.make_ova("evil", ["evil.ovf", bad])
            plan = self.file_plan("ova", os.path.join(self.tmp, "ovas"), "evil")
            r = self.pallet("validate", plan, "-o", "json")
            self.assertEqual(r.returncode, 1)
            self.assertIn("OVAUnsafe", r.stdout)
            self.assertIn(bad, r.stdout)
            r = self.pallet("migrate", plan, "--state-dir", os.path.join(self.tmp, "st-" + bad[:2].strip("/.")))
            self.assertEqual(r.returncode, 1)
            self.assertEqual(self.v2v_calls(), [], "virt-v2v ran on a hostile OVA")

    def test_links_refused_before_virt_v2v(self):
        """A symlink or hard link member could make virt-v2v's tar write or
        read outside its directory: refused, naming the member."""
        import io
        for kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
            p = os.path.join(self.tmp, "ovas", "evil.ova")
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with tarfile.open(p, "w", format=tarfile.USTAR_FORMAT) as t:
                ovf = tarfile.TarInfo("evil.ovf")
                ovf.size = 4
                t.addfile(ovf, io.BytesIO(b"data"))
                link = tarfile.TarInfo("evil-disk1.vmdk")
                link.type = kind
                link.linkname = "/etc/shadow" if kind == tarfile.SYMTYPE else "evil.ovf"
                t.addfile(link)
            plan = self.file_plan("ova", os.path.join(self.tmp, "ovas"), "evil")
            r = self.pallet("validate", plan, "-o", "json")
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("OVAUnsafe", r.stdout)
            self.assertIn("'evil-disk1.vmdk' is a link", r.stdout)
            r = self.pallet("migrate", plan, "--state-dir", os.path.join(self.tmp, "st-link-%s" % kind.decode()))
            self.assertEqual(r.returncode, 1)
            self.assertEqual(self.v2v_calls(), [], "virt-v2v ran on a hostile OVA")

    def test_ova_migrates(self):
        self.make_ova("guest", ["guest.ovf", "guest.mf", "guest-disk1.vmdk"])
        plan = self.file_plan("ova", os.path.join(self.tmp, "ovas"), "guest")
        self.pallet("migrate", plan, "--state-dir", os.path.join(self.tmp, "st"),
                    "--output-dir", os.path.join(self.tmp, "man"), check=0)
        self.assertIn("-i ova -o kubevirt -os %s/guest -on guest" % self.out, self.v2v_calls()[0])
        self.assertTrue(self.v2v_calls()[0].endswith("-- %s/ovas/guest.ova" % self.tmp))
        self.assert_strict(self.manifests(os.path.join(self.tmp, "man")))

    def test_disk_migrates(self):
        d = os.path.join(self.tmp, "disks")
        os.makedirs(d)
        open(os.path.join(d, "web.img"), "w").close()
        plan = self.file_plan("disk", d, "web")
        self.pallet("migrate", plan, "--state-dir", os.path.join(self.tmp, "st"),
                    "--output-dir", os.path.join(self.tmp, "man"), check=0)
        self.assertIn("-i disk -o kubevirt -os %s/web -on web" % self.out, self.v2v_calls()[0])
        self.assertTrue(self.v2v_calls()[0].endswith("-- %s/web.img" % d))
        self.assert_strict(self.manifests(os.path.join(self.tmp, "man")))
        # a name that is a path is never looked up
        plan = self.file_plan("disk", d, "../etc/passwd")
        r = self.pallet("validate", plan, "-o", "json")
        self.assertEqual(r.returncode, 1)


class Xen(V2VE2E):
    def test_unreachable_dom0_is_a_finding(self):
        """No Xen here: the xen+ssh connection fails, validate says so."""
        path = os.path.join(self.tmp, "plan.yaml")
        with open(path, "w") as f:
            f.write(plan_docs("xen+ssh://root@127.0.0.1:1", "rhel7", {"output-dir": self.out},
                              {"password": "x"}, ptype="xen"))
        r = self.pallet("validate", path, "-o", "json", timeout=120)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("xen+ssh://root@127.0.0.1:1", r.stdout + r.stderr)


class Conformance(V2VE2E):
    """pallet-conformance's whole contract on the disk and vsphere modules
    (a stand-in virt-v2v; the simulator for vsphere).  The counter counts
    the files the provider left in its output directory."""

    def run_conformance(self, module, config, vm, storage):
        counter = ["/usr/bin/python3", "-c",
                   "import os,sys; print(sum(len(f) for _,_,f in os.walk(sys.argv[1])))", self.out]
        fixture = {"config": config,
                   "plan": {"name": "conformance", "uid": "c0f0c0f0-0000-4000-8000-0000000000a2",
                            "type": "cold", "targetNamespace": "vms",
                            "vms": [{"name": vm, "id": None, "index": 0}],
                            "networkMap": [{"source": {"name": "VM Network"}, "destination": {"type": "pod"}}],
                            "storageMap": [{"source": {"name": storage},
                                            "destination": {"storageClass": "local"}}]},
                   "inventory_kinds": ["vms"], "count_command": counter}
        fx = os.path.join(self.tmp, "fixture.json")
        with open(fx, "w") as f:
            json.dump(fixture, f)
        r = subprocess.run([os.environ["PALLET_CONFORMANCE"], os.path.join(PROVIDERS,
                            "pallet-provider-%s.so" % module), "--fixture", fx],
                           capture_output=True, text=True, timeout=900, env=self.env())
        print("\n".join(l for l in r.stdout.splitlines() if l.startswith("RESULT")))
        self.assertEqual(r.returncode, 0, r.stdout[-4000:] + r.stderr[-2000:])

    def test_disk(self):
        d = os.path.join(self.tmp, "disks")
        os.makedirs(d)
        open(os.path.join(d, "web.img"), "w").close()
        self.run_conformance("disk", {"provider": {"spec": {"type": "disk", "url": d}}, "secret": {},
                                      "settings": {"output-dir": self.out, "virt-v2v": FAKE}}, "web", "default")

    def test_vsphere(self):
        s = self.sim(image=IMAGE)
        self.run_conformance("vsphere", {
            "provider": {"spec": {"type": "vsphere", "url": "https://127.0.0.1:%d/sdk" % s.info["port"]}},
            "secret": {"user": "root", "password": PASSWORD, "insecureSkipVerify": "true"},
            "settings": {"output-dir": self.out, "virt-v2v": FAKE, "host-path": s.info["hostPath"]}},
            s.info["vm"], "LocalDS_0")


if __name__ == "__main__":
    unittest.main()
