# SPDX-License-Identifier: Apache-2.0
"""End to end: `pallet migrate` with provider-ec2 against the local endpoint."""

import json
import os
import signal
import time
import unittest

from ec2_harness import EC2E2E, SOURCE, TARGET, PLAN_UID

KMS = "arn:aws:kms:us-east-1:111111111111:key/0f1e2d3c-src"
TARGET_KMS = "arn:aws:kms:us-east-1:222222222222:key/9a8b7c6d-tgt"


def three_volume_instance(iid, name):
    return {"id": iid, "name": name, "type": "m5.large", "az": "us-east-1a",
            "state": "running", "tags": {"tier": "web"},
            "volumes": [
                {"device": "/dev/xvda", "sizeGiB": 8, "type": "gp3", "iops": 3000,
                 "throughput": 125},
                {"device": "/dev/sdf", "sizeGiB": 20, "type": "io2", "iops": 5000},
                {"device": "/dev/sdg", "sizeGiB": 10, "type": "gp3", "iops": 4000,
                 "throughput": 250, "encrypted": True, "kmsKeyId": KMS}]}


WEST_KMS = "arn:aws:kms:us-west-2:111111111111:key/w"
# The target keys exist (validate checks them with kms:DescribeKey); the
# source key exists because a volume uses it.
KEYS = [{"arn": TARGET_KMS}, {"arn": WEST_KMS}]
SEED = {"kmsKeys": KEYS,
        "instances": [three_volume_instance("i-0e2e000000000000a", "web-a"),
                      three_volume_instance("i-0e2e000000000000b", "web-b")]}
VMS = ["i-0e2e000000000000a", "i-0e2e000000000000b"]


class SameAccount(EC2E2E):
    def test_two_instances_three_volumes(self):
        self.start(SEED)
        plan = self.write_plan(VMS)
        sd = os.path.join(self.tmp, "state")
        r = self.pallet("migrate", plan, "--state-dir", sd, "--max-in-flight", "2", check=0)
        st = self.ep.state()
        vols = [v for v in st["volumes"] if v["tags"].get("forklift.konveyor.io/plan") == PLAN_UID]
        self.assertEqual(len(vols), 6, "one new volume per source volume")
        by_orig = {}
        for v in vols:
            self.assertEqual(v["az"], "us-east-1b", "re-created in target-az")
            self.assertEqual(v["state"], "available")
            with open(os.path.join(sd, "plan.json")) as f:
                uid = json.load(f)["migrationUID"]
            self.assertEqual(v["tags"]["forklift.konveyor.io/migration"], uid)
            by_orig[v["tags"]["forklift.konveyor.io/original-volume"]] = v
        src = {v["id"]: v for v in st["volumes"] if v.get("attachment")}
        for orig, new in by_orig.items():
            o = src[orig]
            self.assertEqual((new["type"], new["size"], new["iops"], new["throughput"],
                              new["encrypted"], new["kmsKeyId"]),
                             (o["type"], o["size"], o["iops"], o["throughput"],
                              o["encrypted"], o["kmsKeyId"]), "volume %s kept its shape" % orig)
        io2 = [v for v in vols if v["type"] == "io2"]
        self.assertTrue(io2 and all(v["iops"] == 5000 for v in io2), "io2 keeps its IOPS")
        mut = self.print_counts("same account", 2, 6)
        self.assertLessEqual(sum(mut.values()), 2 * 2 + 2 * 6)
        self.assertEqual(mut.get("DeleteSnapshot"), None, "zero copy keeps them until boot")
        self.assertEqual(mut.get("CreateSnapshots"), 2, "one crash-consistent CreateSnapshots per VM")
        for i in st["instances"]:
            self.assertEqual(i["state"], "stopped", "cold migration leaves the source stopped")
        self.assert_schema_valid(self.manifests(sd))
        self.assert_conversion_pods(sd)
        # keep-snapshots-until-boot (default for zero copy): the snapshots
        # outlive migrate, until `pallet cleanup` after the VMs booted.
        self.assert_retained_then_cleanup(plan, sd, r, 6)
        self.assertEqual(self.tagged("snapshots"), [], "snapshots deleted by pallet cleanup")
        self.assertEqual(len(self.tagged("volumes")), 6, "pallet cleanup keeps the VMs' disks")

    def assert_conversion_pods(self, sd):
        """Zero-copy: the guest is converted in the cluster, by a Pod applied
        before the VM, on the VM's own PVCs in disk order."""
        by_vm = {}
        for p in self.manifests(sd):
            with open(p) as f:
                by_vm.setdefault(os.path.dirname(p), []).append((os.path.basename(p), json.load(f)))
        self.assertEqual(len(by_vm), 2)
        for ms in by_vm.values():
            kinds = [m["kind"] for _, m in ms]
            self.assertEqual(kinds.count("Pod"), 1, "one conversion Pod per VM: %s" % kinds)
            self.assertEqual(kinds[-2:], ["Pod", "VirtualMachine"], "the Pod just before the VM")
            vm, pod = ms[-1][1], ms[-2][1]
            stages = [m["metadata"]["labels"]["pallet.dev/stage"] for _, m in ms]
            self.assertEqual(stages, ["storage"] * 6 + ["convert", "vm"],
                             "3 PVs and 3 PVCs, the conversion Pod, the VM")
            self.assertEqual(vm["spec"]["runStrategy"], "Halted")
            self.assertIn(vm["metadata"]["annotations"]["pallet.dev/target-run-strategy"],
                          ("Always", "Halted"))
            claims = [v["persistentVolumeClaim"]["claimName"]
                      for v in vm["spec"]["template"]["spec"]["volumes"]]
            byname = {v["name"]: v["persistentVolumeClaim"]["claimName"]
                      for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v}
            devs = [(d["devicePath"], byname[d["name"]])
                    for d in pod["spec"]["containers"][0]["volumeDevices"]]
            self.assertEqual(devs, [("/dev/block%d" % i, c) for i, c in enumerate(claims)])
            self.assertEqual(len(claims), 3)

    def test_rerun_of_finished_plan_makes_nothing(self):
        self.start(SEED)
        plan = self.write_plan(VMS[:1])
        sd = os.path.join(self.tmp, "state")
        self.pallet("migrate", plan, "--state-dir", sd, check=0)
        before = self.counts()
        self.pallet("migrate", plan, "--state-dir", sd, check=0)
        after = self.counts()
        for a in ("CreateSnapshots", "CreateVolume", "StopInstances", "DeleteSnapshot"):
            self.assertEqual(before[a], after[a], "a finished VM is not migrated again (%s)" % a)


class Validation(EC2E2E):
    def seed_store(self):
        return {"instances": [{"id": "i-0e2e00000000000d1", "name": "store", "type": "m5d.large",
                               "volumes": [{"sizeGiB": 8, "type": "gp3"}]}]}

    def test_instance_store_is_a_warning_by_default(self):
        self.start(self.seed_store())
        plan = self.write_plan(["i-0e2e00000000000d1"])
        r = self.pallet("validate", plan, "-o", "json", check=0)
        self.assertIn("InstanceStoreNotMigrated", r.stdout + r.stderr)
        self.assertIn("75 GB of instance store", r.stdout + r.stderr)

    def test_instance_store_error_when_plan_says_so(self):
        self.start(self.seed_store())
        plan = self.write_plan(["i-0e2e00000000000d1"], settings={"instance-store": "error"})
        r = self.pallet("validate", plan, "-o", "json", check=1)
        self.assertIn("InstanceStoreNotMigrated", r.stdout + r.stderr)

    def test_unmapped_storage_and_network(self):
        self.start(SEED)
        path = self.write_plan(VMS[:1], storage=("gp3",))
        r = self.pallet("validate", path, "-o", "json", check=1)
        self.assertIn("StorageNotMapped", r.stdout + r.stderr)
        self.assertIn("type io2", r.stdout + r.stderr)
        self.assertEqual(self.counts().get("StopInstances", 0), 0, "validate changes nothing")

    def test_missing_instance(self):
        self.start(SEED)
        path = self.write_plan(["i-0e2e0000000000404"])
        r = self.pallet("validate", path, "-o", "json", check=1)
        self.assertIn("InstanceNotFound", r.stdout + r.stderr)

    def test_bad_credentials_name_the_key_not_the_secret(self):
        self.start(SEED)
        path = self.write_plan(VMS[:1], secret_extra={"secretAccessKey": "wrong-secret-value-123"})
        r = self.pallet("validate", path, "--debug", check=1)
        text = r.stdout + r.stderr
        self.assertIn(SOURCE["key"], text)
        self.assertIn("us-east-1", text)
        self.assertNotIn("wrong-secret-value-123", text)


class SameName(EC2E2E):
    """Two instances whose Name tags clean up to the same DNS-1123 label get
    distinct VirtualMachine and PVC names, and the advisory names both."""

    def test_same_name_tag_distinct_targets(self):
        seed = {"instances": [
            {"id": "i-0e2e0000000000a01", "name": "Web Server", "type": "m5.large",
             "az": "us-east-1a", "state": "stopped", "volumes": [{"sizeGiB": 8, "type": "gp3"}]},
            {"id": "i-0e2e0000000000a02", "name": "web-server", "type": "m5.large",
             "az": "us-east-1a", "state": "stopped", "volumes": [{"sizeGiB": 8, "type": "gp3"}]}]}
        self.start(seed)
        plan = self.write_plan(["i-0e2e0000000000a01", "i-0e2e0000000000a02"])
        sd = os.path.join(self.tmp, "state")
        r = self.pallet("migrate", plan, "--state-dir", sd, "--max-in-flight", "2", "-v", check=0)
        text = r.stdout + r.stderr
        self.assertIn("VMs i-0e2e0000000000a01 and i-0e2e0000000000a02 would both be named "
                      "\"web-server\"", text)
        self.assertIn("VMs i-0e2e0000000000a02 and i-0e2e0000000000a01 would both be named "
                      "\"web-server\"", text)
        names = {"VirtualMachine": [], "PersistentVolumeClaim": []}
        for p in self.manifests(sd):
            with open(p) as f:
                m = json.load(f)
            if m["kind"] in names:
                names[m["kind"]].append(m["metadata"]["name"])
        for kind, got in names.items():
            self.assertEqual(len(got), 2, kind)
            self.assertEqual(len(set(got)), 2, "%s names differ: %s" % (kind, got))
            self.assertTrue(all(n.startswith("web-server-") for n in got), got)
        # A resume keeps the names.
        before = sorted(names["VirtualMachine"])
        self.pallet("migrate", plan, "--state-dir", sd, check=0)
        again = []
        for p in self.manifests(sd):
            with open(p) as f:
                m = json.load(f)
            if m["kind"] == "VirtualMachine":
                again.append(m["metadata"]["name"])
        self.assertEqual(sorted(again), before)


def scripts_configmap(data):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "scripts", "namespace": "mtv"}, "data": data}


class GuestOptions(EC2E2E):
    """validate checks verify-boot, verify-boot-timeout, firstboot-scripts,
    the customizationScripts ConfigMap's key names and the Plan's pallet.dev/
    annotations before anything moves, and says when they would not take
    effect."""

    def validate(self, check, **kw):
        if not getattr(self, "ep", None):
            self.start(SEED)
        plan = self.write_plan(VMS[:1], **kw)
        r = self.pallet("validate", plan, "-o", "json", check=check)
        return r.stdout + r.stderr

    def test_bad_values_fail_naming_them(self):
        out = self.validate(1, settings={"verify-boot": "maybe"},
                            spec_extra={"customizationScripts": {"name": "scripts"}},
                            extra_docs=[scripts_configmap({"10_win_firstboot_x.ps1": "x"})])
        self.assertIn('VerifyBootInvalid', out)
        self.assertIn('verify-boot is \\"maybe\\"; use true, false or warn', out)
        self.assertIn('CustomizationScriptsInvalid', out)
        self.assertIn('\\"10_win_firstboot_x.ps1\\" is not a Linux script name', out)
        self.assertIn("Windows scripts need a Windows converter", out)
        self.assertEqual(self.counts().get("StopInstances", 0), 0, "validate changes nothing")

    def test_annotation_overrides_setting_and_missing_script(self):
        out = self.validate(1, settings={"verify-boot": "true", "verify-boot-timeout": "60",
                                         "firstboot-scripts": "/nonexistent/10-a.sh"},
                            annotations={"pallet.dev/verify-boot-timeout": "-5"})
        self.assertIn('verify-boot-timeout is \\"-5\\"; give seconds, 1 to 86400', out)
        self.assertIn('firstboot-scripts: \\"/nonexistent/10-a.sh\\" is not a readable file '
                      '(No such file or directory)', out)

    def test_unknown_pallet_annotation_refused(self):
        out = self.validate(1, annotations={"pallet.dev/verify-boot-timout": "60",
                                            "example.com/owner": "web-team"})
        self.assertIn("PlanAnnotationUnknown", out)
        self.assertIn('the Plan\'s annotation \\"pallet.dev/verify-boot-timout\\" is not one '
                      'provider ec2 reads (did you mean \\"pallet.dev/verify-boot-timeout\\"?); '
                      'fix: ', out)
        self.assertNotIn("example.com/owner", out)
        out = self.validate(1, annotations={"pallet.dev/target-az": "us-east-1c"})
        self.assertIn('annotation \\"pallet.dev/target-az\\" is not one provider ec2 reads; '
                      'fix: rename or remove it', out)
        self.assertIn("other settings go in the Provider's spec.settings", out)
        out = self.validate(1, annotations={"palet.dev/verify-boot": "true"})
        self.assertIn('did you mean \\"pallet.dev/verify-boot\\"?', out)

    def test_good_values_warn_where_they_do_not_apply(self):
        script = os.path.join(self.tmp, "20-b.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\ntrue\n")
        out = self.validate(0, settings={"verify-boot": "warn", "firstboot-scripts": script},
                            skip_conversion=True,
                            annotations={"pallet.dev/verify-boot-timeout": "120",
                                         "example.com/owner": "web-team"},
                            spec_extra={"customizationScripts": {"name": "scripts"}},
                            extra_docs=[scripts_configmap({"10_linux_firstboot_a.sh": "true\n",
                                                           "05_linux_run_b.sh": "true\n"})])
        self.assertNotIn("Invalid", out)
        self.assertNotIn("PlanAnnotationUnknown", out)
        self.assertIn("its 3 customization scripts will not be installed", out)
        self.assertIn("GuestOptionsNeedCopyMode", out)
        self.assertIn("in zero copy mode the conversion runs in the cluster without them", out)


class Kms(EC2E2E):
    """validate asks KMS (DescribeKey, target credentials and region) about
    the key each encrypted target volume will use."""

    def test_good_key_passes(self):
        self.start(SEED)
        plan = self.write_plan(VMS[:1])
        self.pallet("validate", plan, check=0)
        self.assertEqual(self.counts()["DescribeKey"], 1, "the source key, checked once")

    def test_disabled_key(self):
        seed = dict(SEED, kmsKeys=KEYS + [{"arn": KMS, "state": "Disabled"}])
        self.start(seed)
        r = self.pallet("validate", self.write_plan(VMS[:1]), check=1)
        self.assertIn("KMSKeyDisabled", r.stdout + r.stderr)
        self.assertIn(KMS, r.stdout + r.stderr)

    def test_pending_deletion_key(self):
        seed = dict(SEED, kmsKeys=KEYS + [{"arn": KMS, "state": "PendingDeletion"}])
        self.start(seed)
        r = self.pallet("validate", self.write_plan(VMS[:1]), check=1)
        self.assertIn("KMSKeyNotUsable", r.stdout + r.stderr)
        self.assertIn("PendingDeletion", r.stdout + r.stderr)

    def test_missing_key(self):
        self.start(SEED)
        missing = "arn:aws:kms:us-east-1:111111111111:key/does-not-exist"
        r = self.pallet("validate", self.write_plan(VMS[:1], settings={
            "target-kms-key-id": missing}), check=1)
        self.assertIn("KMSKeyNotFound", r.stdout + r.stderr)
        self.assertIn(missing, r.stdout + r.stderr)

    def test_key_in_another_region(self):
        self.start(SEED)
        r = self.pallet("validate", self.write_plan(VMS[:1], settings={
            "target-kms-key-id": WEST_KMS}), check=1)
        self.assertIn("KMSKeyWrongRegion", r.stdout + r.stderr)

    def test_cross_account_key_not_shared(self):
        seed = dict(SEED, kmsKeys=KEYS + [{"arn": "arn:aws:kms:us-east-1:111111111111:key/s"}])
        self.start(seed)
        r = self.pallet("validate", self.write_plan(VMS[:1], secret_extra={
            "targetAccessKeyId": TARGET["key"], "targetSecretAccessKey": TARGET["secret"]},
            settings={"target-kms-key-id": "arn:aws:kms:us-east-1:111111111111:key/s"}), check=1)
        self.assertIn("KMSKeyOtherAccount", r.stdout + r.stderr)
        self.assertIn("KMSKeyAccessDenied", r.stdout + r.stderr)


class Failures(EC2E2E):
    def test_snapshot_error_fails_vm_and_leaves_nothing(self):
        seed = {"instances": [three_volume_instance("i-0e2e00000000000f1", "bad")]}
        seed["instances"][0]["volumes"][1]["snapshotError"] = "Internal error (injected)"
        self.start(seed)
        plan = self.write_plan(["i-0e2e00000000000f1"])
        sd = os.path.join(self.tmp, "state")
        r = self.pallet("migrate", plan, "--state-dir", sd, check=1)
        self.assertIn("Internal error (injected)", r.stdout + r.stderr)
        self.assertEqual(self.tagged("snapshots"), [], "no plan-tagged snapshot left")
        self.assertEqual(self.tagged("volumes"), [], "no plan-tagged volume left")
        self.ep.wait(lambda: self.ep.state()["instances"][0]["state"] == "running", 30,
                     "the source running again after the rollback")
        print("\n[snapshot error] plan-tagged snapshots: 0, volumes: 0; instance running")

    def test_cancel_during_snapshots_rolls_back(self):
        self.ep_args = ("--stop-delay", "0.2", "--snapshot-delay", "30", "--volume-delay", "0.2")
        self.start({"instances": [three_volume_instance("i-0e2e00000000000c1", "cancel-me")]})
        plan = self.write_plan(["i-0e2e00000000000c1"])
        sd = os.path.join(self.tmp, "state")
        p = self.spawn("migrate", plan, "--state-dir", sd)
        self.wait_call("CreateSnapshots")
        time.sleep(0.5)
        os.killpg(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 4, "exit code 4 = cancelled\n" + out + err)
        self.assertEqual(self.tagged("snapshots"), [], "snapshots deleted by the rollback")
        self.assertEqual(self.tagged("volumes"), [])
        self.ep.wait(lambda: self.ep.state()["instances"][0]["state"] == "running", 30,
                     "the instance running again")


class Crashes(EC2E2E):
    """kill -9 at each step boundary and in the middle of each wait; a rerun
    completes and nothing is duplicated."""
    points = [("StopInstances", 1), ("CreateSnapshots", 1), ("DescribeSnapshots", 2),
              ("CreateVolume", 1), ("CreateVolume", 3), ("DescribeVolumes", 3)]

    def test_kill9_at_each_step_then_rerun(self):
        for action, n in self.points:
            with self.subTest(kill_after=(action, n)):
                self.setUp()
                try:
                    self.one_crash(action, n)
                finally:
                    self.tearDown()

    def one_crash(self, action, n):
        self.start({"instances": [three_volume_instance("i-0e2e00000000000c9", "crash")]})
        plan = self.write_plan(["i-0e2e00000000000c9"])
        sd = os.path.join(self.tmp, "state")
        p = self.spawn("migrate", plan, "--state-dir", sd)
        self.wait_call(action, n)
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        self.pallet("migrate", plan, "--state-dir", sd, check=0)
        c = self.counts()
        vols = self.tagged("volumes")
        print("\n[kill -9 after %s #%d] CreateSnapshots=%d CreateVolume=%d volumes=%d snapshots=%d"
              % (action, n, c["CreateSnapshots"], c["CreateVolume"], len(vols),
                 len(self.tagged("snapshots"))))
        self.assertEqual(c["CreateSnapshots"], 1, "snapshots taken once")
        self.assertEqual(len(vols), 3, "exactly one new volume per source volume")
        self.assertEqual(len({v["tags"]["forklift.konveyor.io/original-volume"] for v in vols}), 3)
        self.assertEqual(len(self.tagged("snapshots")), 3, "kept until the VM boots")
        self.assertEqual(c["StopInstances"], 1)

    def test_kill9_during_pallet_cleanup_then_rerun(self):
        """`pallet cleanup` is resumable: killed after its first
        DeleteSnapshot, a rerun deletes the rest, each snapshot once."""
        self.start({"instances": [three_volume_instance("i-0e2e00000000000ca", "crash")]})
        plan = self.write_plan(["i-0e2e00000000000ca"])
        sd = os.path.join(self.tmp, "state")
        self.pallet("migrate", plan, "--state-dir", sd, check=0)
        self.assertEqual(len(self.aws_snapshots()), 3)
        p = self.spawn("cleanup", plan, "--state-dir", sd)
        self.wait_call("DeleteSnapshot", 1)
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        self.pallet("cleanup", plan, "--state-dir", sd, check=0)
        self.assertEqual(self.aws_snapshots(), [])
        self.assertEqual(self.counts()["DeleteSnapshot"], 3, "each snapshot deleted once")
        self.assertEqual(len(self.tagged("volumes")), 3, "the VM's disks kept")


class SnapshotVolumeTag(EC2E2E):
    """Forklift's per-volume snapshot tag, opt-in (one CreateTags per
    snapshot on top of the 2+2V budget)."""

    def test_tag_snapshot_volumes(self):
        iid = "i-0e2e0000000000071"
        self.start({"kmsKeys": KEYS, "instances": [three_volume_instance(iid, "tagged")]})
        # Slow CreateVolume down so the snapshots can be looked at during
        # the migration.
        self.ep.control("POST", "faults", {"faults": {"ec2:CreateVolume": {"latency_ms": 3000}}})
        plan = self.write_plan([iid], settings={"tag-snapshot-volumes": "true"})
        sd = os.path.join(self.tmp, "state")
        p = self.spawn("migrate", plan, "--state-dir", sd)
        self.wait_call("CreateTags", 3)
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        snaps = self.tagged("snapshots")
        src = {v["id"] for v in self.ep.state()["volumes"]
               if (v.get("attachment") or {}).get("instance") == iid}
        self.assertEqual(len(snaps), 3)
        for sn in snaps:
            self.assertEqual(sn["tags"].get("forklift.konveyor.io/volume"), sn["volumeId"],
                             "snapshot %s is tagged with its own volume" % sn["id"])
        self.assertEqual({sn["volumeId"] for sn in snaps}, src)
        self.ep.control("DELETE", "faults")
        r = self.pallet("migrate", plan, "--state-dir", sd, check=0)
        c = self.counts()
        print("\n[tag-snapshot-volumes] CreateSnapshots=%d CreateTags=%d"
              % (c["CreateSnapshots"], c["CreateTags"]))
        self.assertEqual(c["CreateSnapshots"], 1)
        self.assertLessEqual(c["CreateTags"], 6, "a rerun tags at most the snapshots again")
        self.assert_retained_then_cleanup(plan, sd, r, 3)
        self.assertEqual(self.tagged("snapshots"), [], "snapshots deleted by pallet cleanup")

    def test_bad_value(self):
        iid = "i-0e2e0000000000072"
        self.start({"kmsKeys": KEYS, "instances": [three_volume_instance(iid, "tagged")]})
        plan = self.write_plan([iid], settings={"tag-snapshot-volumes": "yes"})
        r = self.pallet("migrate", plan, "--state-dir", os.path.join(self.tmp, "s"), check=1)
        self.assertIn("tag-snapshot-volumes", r.stdout + r.stderr)
        self.assertEqual(self.tagged("snapshots"), [], "rolled back")


class KeepSnapshots(EC2E2E):
    """Setting keep-snapshots-until-boot: validated; never keeps anything
    on a failure (the rollback deletes what the run made)."""

    def test_bad_value_names_the_setting(self):
        iid = "i-0e2e0000000000081"
        self.start({"instances": [three_volume_instance(iid, "keep")]})
        plan = self.write_plan([iid], settings={"keep-snapshots-until-boot": "yes"})
        for verb in ("validate", "migrate"):
            r = self.pallet(verb, plan, "--state-dir", os.path.join(self.tmp, "s"))
            self.assertNotEqual(r.returncode, 0, verb)
            out = r.stdout + r.stderr
            self.assertIn("keep-snapshots-until-boot", out)
            self.assertIn("true or false", out)
        self.assertEqual(self.counts()["CreateSnapshots"], 0, "refused before anything was made")

    def test_false_deletes_in_migrate(self):
        iid = "i-0e2e0000000000082"
        self.start({"instances": [three_volume_instance(iid, "keep")]})
        plan = self.write_plan([iid], settings={"keep-snapshots-until-boot": "false"})
        sd = os.path.join(self.tmp, "state")
        r = self.pallet("migrate", plan, "--state-dir", sd, check=0)
        self.assertEqual(self.aws_snapshots(), [], "deleted by migrate's cleanup")
        self.assertNotIn("pallet cleanup", r.stdout)
        self.assertEqual(len(self.tagged("volumes")), 3)

    def test_cluster_mode_deletes_them_once_booted(self):
        # Cluster mode: the host tells cleanup whether the VM booted
        # (input.cluster.vmBooted); only then do the way-back snapshots go.
        iid = "i-0e2e0000000000084"
        self.start({"instances": [three_volume_instance(iid, "boot")]})
        plan = self.write_plan([iid])
        sd = os.path.join(self.tmp, "state")
        r = self.pallet("migrate", plan, "--state-dir", sd, check=0)
        kept = self.aws_snapshots()
        self.assertEqual(len(kept), 3, r.stdout + r.stderr)
        r = self.cleanup_as_cluster(plan, sd, pods=True, booted=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.aws_snapshots(), kept, "not booted: kept")
        self.assertIn("has booted", r.stdout)
        self.assertIn("run `pallet cleanup`", r.stdout)
        r = self.cleanup_as_cluster(plan, sd, pods=True, booted=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.aws_snapshots(), [], "booted: deleted by migrate's cleanup")
        self.assertNotIn("run `pallet cleanup`", r.stdout)
        with open([os.path.join(sd, f) for f in os.listdir(sd)
                   if f.startswith("vm-") and f.endswith(".json")][0]) as f:
            doc = json.load(f)
        self.assertEqual(doc["state"]["retained"], [])
        self.assertTrue(doc["state"]["cleaned"])
        self.assertEqual(len(self.tagged("volumes")), 3, "the VM's disks stay")

    def test_failure_after_the_volumes_deletes_everything(self):
        self.ep_args = ("--stop-delay", "0.2", "--snapshot-delay", "0.5", "--volume-delay", "3")
        iid = "i-0e2e0000000000083"
        self.start({"instances": [three_volume_instance(iid, "fail-late")]})
        plan = self.write_plan([iid], settings={"keep-snapshots-until-boot": "true",
                                                "max-attempts": "1"})
        sd = os.path.join(self.tmp, "state")
        p = self.spawn("migrate", plan, "--state-dir", sd, "--max-attempts", "1")
        self.wait_call("CreateVolume", 3)
        # The next look at the new volumes fails for good: transfer fails
        # after the snapshots and the volumes exist.
        self.ep.control("POST", "faults", {"faults": {"ec2:DescribeVolumes": {"error_count": 1}}})
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 1, out + err)
        self.assertEqual(self.counts()["CreateVolume"], 3)
        self.assertEqual(self.aws_snapshots(), [], "the rollback keeps no snapshot")
        self.assertEqual(self.tagged("volumes"), [], "nor any new volume")
        self.assertNotIn("pallet cleanup` with this plan", out)


class CrossAccountAndRegion(EC2E2E):
    def test_cross_account(self):
        self.start(SEED)
        plan = self.write_plan(VMS[:1], secret_extra={
            "targetAccessKeyId": TARGET["key"], "targetSecretAccessKey": TARGET["secret"]},
            settings={"target-kms-key-id": TARGET_KMS, "keep-snapshots-until-boot": False})
        sd = os.path.join(self.tmp, "state")
        self.pallet("migrate", plan, "--state-dir", sd, check=0)
        vols = self.tagged("volumes")
        self.assertEqual(len(vols), 3)
        for v in vols:
            self.assertEqual(v["account"], TARGET["id"], "volumes made in the target account")
        enc = [v for v in vols if v["encrypted"]]
        self.assertEqual([v["kmsKeyId"] for v in enc], [TARGET_KMS])
        c = self.counts()
        self.assertEqual(c["ModifySnapshotAttribute"], 3, "each snapshot shared once")
        self.assertEqual(self.tagged("snapshots"), [],
                         "keep-snapshots-until-boot: false deletes them in migrate")
        self.print_counts("cross account", 1, 3)

    def test_cross_account_same_account_refused(self):
        self.start(SEED)
        plan = self.write_plan(VMS[:1], secret_extra={
            "targetAccessKeyId": SOURCE["key"], "targetSecretAccessKey": SOURCE["secret"]})
        r = self.pallet("validate", plan, check=1)
        self.assertIn("TargetAccountIsSource", r.stdout + r.stderr)

    def test_cross_region(self):
        self.start(SEED)
        plan = self.write_plan(VMS[:1], settings={"target-region": "us-west-2",
                                                  "target-az": "us-west-2a",
                                                  "target-kms-key-id": WEST_KMS})
        sd = os.path.join(self.tmp, "state")
        r = self.pallet("migrate", plan, "--state-dir", sd, check=0)
        vols = self.tagged("volumes")
        self.assertEqual(len(vols), 3)
        for v in vols:
            self.assertEqual((v["region"], v["az"]), ("us-west-2", "us-west-2a"))
        self.assertEqual(self.counts()["CopySnapshot"], 3)
        # Kept until boot in both regions: the originals and their copies.
        self.assertEqual(len(self.aws_snapshots(region="us-west-2")), 3)
        self.assert_retained_then_cleanup(plan, sd, r, 3)
        self.assertEqual(self.aws_snapshots(region="us-west-2"), [], "the copies deleted too")
        self.assertEqual(self.tagged("snapshots"), [], "copies and originals deleted")
        self.print_counts("cross region", 1, 3)


if __name__ == "__main__":
    unittest.main(verbosity=2)
