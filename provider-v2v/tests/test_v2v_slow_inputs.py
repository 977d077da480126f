# SPDX-License-Identifier: Apache-2.0
"""The slow v2v inputs beyond vCenter, each through `pallet migrate` with the
REAL virt-v2v and -o kubevirt, the VirtualMachine built from its YAML and
checked with pallet-lint-manifests --strict:

- ESXi: the simulated ESXi host (simulator.ESX(), esx://… over HTTPS,
  nbdkit-curl); the converted disk is booted under QEMU
  (tests/guest/boot-check.sh).
- OVA: a tar of an .ovf and a streamOptimized .vmdk made from the test
  guest with qemu-img (-i ova).
- Local disk: the test guest's raw image (-i disk).

One boot only: the three conversions run the same virt-v2v conversion code
on the same guest, and a boot costs minutes under TCG; the OVA and disk
outputs are checked as images (qemu-img) and through their manifests.
Each conversion prints its wall time."""

import json
import os
import subprocess
import sys
import tarfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from v2v_harness import SRC, V2VE2E, guest_image, plan_docs  # noqa: E402

REAL = {"virt-v2v": "virt-v2v", "v2v-timeout": "1200"}
OVF = """<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"
          xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
          xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
          xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
          xmlns:vmw="http://www.vmware.com/schema/ovf"
          xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
    <File ovf:href="{vmdk}" ovf:id="file1" ovf:size="{size}"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="{capacity}" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk1"
          ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="VM Network"><Description>The VM Network network</Description></Network>
  </NetworkSection>
  <VirtualSystem ovf:id="{name}">
    <Info>A virtual machine</Info>
    <Name>{name}</Name>
    <OperatingSystemSection ovf:id="96" vmw:osType="debian10_64Guest">
      <Info>The kind of installed guest operating system</Info>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>{name}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:ElementName>2 virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>2</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:ElementName>1536MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>1536</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>7</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>VM Network</rasd:Connection>
        <rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="bios"/>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"""


class SlowInputs(V2VE2E):
    """One class, three conversions in a fixed order (test names sort)."""

    @classmethod
    def setUpClass(cls):
        cls.image = guest_image()

    def migrate(self, plan, label):
        t0 = time.time()
        r = self.pallet("migrate", plan, "--state-dir", os.path.join(self.tmp, "state"),
                        "--output-dir", os.path.join(self.tmp, "manifests"), "-v", timeout=1400)
        print("\n[v2v-slow] %s: pallet migrate rc %d in %.0f s" % (label, r.returncode, time.time() - t0))
        sys.stdout.flush()
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-6000:])
        ms = self.manifests(os.path.join(self.tmp, "manifests"))
        self.assert_strict(ms)
        vm = pvc = None
        for m in ms:
            with open(m) as f:
                doc = json.load(f)
            if doc["kind"] == "VirtualMachine":
                vm = doc
            elif doc["kind"] == "PersistentVolumeClaim":
                pvc = doc
        self.assertIsNotNone(vm, ms)
        self.assertIsNotNone(pvc, ms)
        disk = pvc["metadata"]["annotations"]["pallet.konveyor.io/converted-disk"]
        self.assertTrue(os.path.exists(disk), disk)
        spec = vm["spec"]["template"]["spec"]
        self.assertEqual(spec["domain"]["devices"]["disks"][0]["disk"]["bus"], "virtio")
        return vm, pvc, disk

    def assert_image(self, disk):
        """What virt-v2v wrote is a whole disk image of the guest's size."""
        r = subprocess.run(["qemu-img", "info", "--output=json", disk], capture_output=True, text=True,
                           check=True)
        info = json.loads(r.stdout)
        src = json.loads(subprocess.run(["qemu-img", "info", "--output=json", self.image],
                                        capture_output=True, text=True, check=True).stdout)
        self.assertEqual(info["virtual-size"], src["virtual-size"])

    def file_plan(self, ptype, url, vm):
        path = os.path.join(self.tmp, "plan.yaml")
        with open(path, "w") as f:
            f.write(plan_docs(url, vm, dict(REAL, **{"output-dir": self.out}), {},
                              storage="default", ptype=ptype))
        return path

    def test_1_esxi_convert_boot(self):
        s = self.sim(model="esx", image=self.image)
        vm, pvc, disk = self.migrate(self.vsphere_plan(s, settings=REAL), "ESXi")
        self.assertEqual(pvc["metadata"]["annotations"]["forklift.konveyor.io/disk-source"],
                         "[LocalDS_0] ha-host_VM0/disk1.vmdk")
        self.assertEqual(vm["spec"]["template"]["spec"]["domain"]["memory"]["guest"], "1024Mi")
        self.assert_image(disk)
        t0 = time.time()
        b = subprocess.run([os.path.join(SRC, "tests", "guest", "boot-check.sh"), disk, "--timeout", "400"],
                           capture_output=True, text=True, timeout=500)
        print("[v2v-slow] ESXi: boot %s in %.0f s" % (b.stdout.strip(), time.time() - t0))
        self.assertEqual(b.returncode, 0, b.stdout + b.stderr)

    def test_2_ova(self):
        d = os.path.join(self.tmp, "ovas")
        os.makedirs(d)
        t0 = time.time()
        vmdk = os.path.join(self.tmp, "guest-disk1.vmdk")
        subprocess.run(["qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized",
                        self.image, vmdk], check=True, timeout=600)
        cap = json.loads(subprocess.run(["qemu-img", "info", "--output=json", self.image],
                                        capture_output=True, text=True, check=True).stdout)["virtual-size"]
        ovf = os.path.join(self.tmp, "guest.ovf")
        with open(ovf, "w") as f:
            f.write(OVF.format(vmdk="guest-disk1.vmdk", size=os.path.getsize(vmdk), capacity=cap,
                               name="guest"))
        with tarfile.open(os.path.join(d, "guest.ova"), "w", format=tarfile.USTAR_FORMAT) as t:
            t.add(ovf, "guest.ovf")
            t.add(vmdk, "guest-disk1.vmdk")
        os.unlink(vmdk)
        print("\n[v2v-slow] OVA: built in %.0f s (%d MiB)"
              % (time.time() - t0, os.path.getsize(os.path.join(d, "guest.ova")) >> 20))
        vm, pvc, disk = self.migrate(self.file_plan("ova", d, "guest"), "OVA")
        dom = vm["spec"]["template"]["spec"]["domain"]
        # The OVF's metadata, as virt-v2v read it and wrote it in its YAML.
        self.assertEqual(dom["memory"]["guest"], "1536Mi")
        self.assertEqual(dom["cpu"]["sockets"] * dom["cpu"]["cores"] * dom["cpu"]["threads"], 2)
        self.assert_image(disk)

    def test_3_disk(self):
        d = os.path.join(self.tmp, "disks")
        os.makedirs(d)
        os.symlink(self.image, os.path.join(d, "web.img"))
        vm, pvc, disk = self.migrate(self.file_plan("disk", d, "web"), "disk")
        self.assertEqual(vm["metadata"]["name"], "web")
        self.assert_image(disk)


if __name__ == "__main__":
    unittest.main()
