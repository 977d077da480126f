#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""(a) Proof against AWS's own client: Debian's /usr/bin/aws drives every
action the endpoint serves, and its parsed JSON output is checked."""

import base64
import hashlib
import os
import unittest

import botocore.exceptions

from endpoint_fixture import EndpointTest, SOURCE, TARGET, BLOCK


class AwsCliTest(EndpointTest):

    # Polling and most negative checks go through botocore in-process; the
    # aws CLI costs a second or more per run and is kept for the proof.

    def wait_instance(self, iid, state, region="us-east-1"):
        c = self.ep.client("ec2", region=region)

        def f():
            r = c.describe_instances(InstanceIds=[iid])
            return r["Reservations"][0]["Instances"][0]["State"]["Name"] == state
        self.ep.wait(f, what="%s to be %s" % (iid, state))

    def wait_snapshot(self, sid, who=SOURCE, region="us-east-1"):
        c = self.ep.client("ec2", who, region)

        def f():
            s = c.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]
            return s if s["State"] == "completed" else None
        return self.ep.wait(f, what="snapshot %s to complete" % sid)

    def wait_volume(self, vid, who=SOURCE, region="us-east-1"):
        c = self.ep.client("ec2", who, region)

        def f():
            v = c.describe_volumes(VolumeIds=[vid])["Volumes"][0]
            return v if v["State"] == "available" else None
        return self.ep.wait(f, what="volume %s" % vid)

    def err(self, *args, **kw):
        r = self.ep.aws(*args, check=False, **kw)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        return r.stderr

    def code(self, service, method, who=SOURCE, region="us-east-1", **kw):
        """Error code botocore parsed from the endpoint's error response."""
        c = self.ep.client(service, who, region)
        try:
            getattr(c, method)(**kw)
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"]
        self.fail("%s %s succeeded" % (method, kw))

    # ------------------------------------------------------------ read-only

    def test_01_sts(self):
        r = self.ep.aws("sts", "get-caller-identity")
        self.assertEqual(r["Account"], SOURCE["id"])
        self.assertTrue(r["Arn"].startswith("arn:aws:iam::111111111111:"))
        self.assertTrue(r["UserId"])
        r = self.ep.aws("sts", "get-caller-identity", who=TARGET, region="us-west-2")
        self.assertEqual(r["Account"], TARGET["id"])

    def test_02_regions_zones(self):
        r = self.ep.client("ec2").describe_regions()
        self.assertEqual(sorted(x["RegionName"] for x in r["Regions"]), ["us-east-1", "us-west-2"])
        r = self.ep.aws("ec2", "describe-regions", "--filters", "Name=region-name,Values=*west*")
        self.assertEqual([x["RegionName"] for x in r["Regions"]], ["us-west-2"])
        r = self.ep.aws("ec2", "describe-availability-zones")
        self.assertEqual([z["ZoneName"] for z in r["AvailabilityZones"]],
                         ["us-east-1a", "us-east-1b", "us-east-1c"])
        self.assertTrue(all(z["State"] == "available" for z in r["AvailabilityZones"]))
        r = self.ep.aws("ec2", "describe-availability-zones", "--zone-names", "us-west-2b",
                        region="us-west-2")
        self.assertEqual([z["ZoneName"] for z in r["AvailabilityZones"]], ["us-west-2b"])
        self.assertEqual("InvalidParameterValue", self.code(
            "ec2", "describe_availability_zones", ZoneNames=["us-east-1z"]))

    def test_03_vpcs_subnets(self):
        vpcs = self.ep.aws("ec2", "describe-vpcs")["Vpcs"]
        self.assertEqual(len(vpcs), 1)
        self.assertEqual(vpcs[0]["OwnerId"], SOURCE["id"])
        subs = self.ep.aws("ec2", "describe-subnets", "--filters",
                           "Name=vpc-id,Values=%s" % vpcs[0]["VpcId"])["Subnets"]
        self.assertEqual(sorted(s["AvailabilityZone"] for s in subs),
                         ["us-east-1a", "us-east-1b", "us-east-1c"])
        one = self.ep.aws("ec2", "describe-subnets", "--filters",
                          "Name=availability-zone,Values=us-east-1b")["Subnets"]
        self.assertEqual(len(one), 1)
        got = self.ep.client("ec2").describe_subnets(SubnetIds=[one[0]["SubnetId"]])["Subnets"]
        self.assertEqual(got[0]["CidrBlock"], one[0]["CidrBlock"])
        self.assertIn("InvalidSubnetID.NotFound",
                      self.code("ec2", "describe_subnets", SubnetIds=["subnet-0000000000000dead"]))
        # Another account sees its own network, not ours.
        tv = self.ep.client("ec2", TARGET).describe_vpcs()["Vpcs"]
        self.assertNotEqual(tv[0]["VpcId"], vpcs[0]["VpcId"])

    def test_04_instance_types(self):
        r = self.ep.aws("ec2", "describe-instance-types", "--instance-types", "m5d.large",
                        "t2.micro", "m6g.large")
        t = {x["InstanceType"]: x for x in r["InstanceTypes"]}
        self.assertEqual(t["m5d.large"]["VCpuInfo"]["DefaultVCpus"], 2)
        self.assertEqual(t["m5d.large"]["MemoryInfo"]["SizeInMiB"], 8192)
        self.assertEqual(t["m5d.large"]["InstanceStorageInfo"]["TotalSizeInGB"], 75)
        self.assertEqual(t["m5d.large"]["InstanceStorageInfo"]["Disks"][0]["Count"], 1)
        self.assertTrue(t["m5d.large"]["InstanceStorageSupported"])
        self.assertEqual(t["t2.micro"]["SupportedBootModes"], ["legacy-bios"])
        self.assertFalse(t["t2.micro"]["InstanceStorageSupported"])
        self.assertEqual(t["m6g.large"]["SupportedBootModes"], ["uefi"])
        # Paging with the CLI's own paginator: page size 5, all types.
        full = self.ep.client("ec2").describe_instance_types()["InstanceTypes"]
        paged = self.ep.aws("ec2", "describe-instance-types", "--page-size", "5")["InstanceTypes"]
        self.assertGreater(len(full), 5)
        self.assertEqual([x["InstanceType"] for x in paged], [x["InstanceType"] for x in full])
        r = self.ep.client("ec2").describe_instance_types(
            Filters=[{"Name": "instance-storage-supported", "Values": ["true"]}])
        self.assertTrue(all(x["InstanceStorageSupported"] for x in r["InstanceTypes"]))
        self.assertIn("InvalidInstanceType",
                      self.code("ec2", "describe_instance_types", InstanceTypes=["x9.huge"]))

    def test_05_describe_instances(self):
        r = self.ep.aws("ec2", "describe-instances", "--filters", "Name=tag:Name,Values=web-1")
        insts = [i for res in r["Reservations"] for i in res["Instances"]]
        self.assertEqual(len(insts), 1)
        web = insts[0]
        self.assertEqual(web["BootMode"], "uefi")
        self.assertEqual(web["InstanceType"], "m5d.large")
        self.assertEqual(web["Placement"]["AvailabilityZone"], "us-east-1a")
        self.assertEqual([b["DeviceName"] for b in web["BlockDeviceMappings"]],
                         ["/dev/xvda", "/dev/sdf"])
        self.assertTrue(all(b["Ebs"]["VolumeId"].startswith("vol-")
                            for b in web["BlockDeviceMappings"]))
        self.assertEqual(len(web["NetworkInterfaces"]), 1)
        nic = web["NetworkInterfaces"][0]
        self.assertRegex(nic["MacAddress"], r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
        self.assertEqual(nic["PrivateIpAddress"], web["PrivateIpAddress"])
        self.assertNotIn("Platform", web)
        # state filter, wildcard, platform
        r = self.ep.aws("ec2", "describe-instances", "--filters",
                        "Name=instance-state-name,Values=stopped")
        win = [i for res in r["Reservations"] for i in res["Instances"]]
        self.assertEqual(len(win), 1)
        self.assertEqual(win[0]["Platform"], "windows")
        self.assertEqual(win[0]["BootMode"], "legacy-bios")
        self.assertEqual(len(win[0]["NetworkInterfaces"]), 2)
        self.assertIn("10.1.16.200", [n["PrivateIpAddress"] for n in win[0]["NetworkInterfaces"]])
        r = self.ep.aws("ec2", "describe-instances", "--filters", "Name=tag:Name,Values=w?b-*,win*")
        self.assertEqual(len(r["Reservations"]), 2)
        r = self.ep.client("ec2").describe_instances(Filters=[
            {"Name": "tag-key", "Values": ["app"]},
            {"Name": "availability-zone", "Values": ["us-east-1a"]}])
        self.assertEqual(len(r["Reservations"]), 1)
        # us-west-2 is a different world; the other account sees nothing.
        r = self.ep.client("ec2", region="us-west-2").describe_instances()
        self.assertEqual(len(r["Reservations"]), 1)
        self.assertEqual(self.ep.client("ec2", TARGET).describe_instances()["Reservations"], [])
        self.assertIn("InvalidInstanceID.NotFound",
                      self.err("ec2", "describe-instances", "--instance-ids", "i-0123456789abcdef0"))
        self.assertIn("InvalidInstanceID.Malformed",
                      self.code("ec2", "describe_instances", InstanceIds=["i-xyz"]))
        self.assertIn("InvalidParameterValue",
                      self.code("ec2", "describe_instances", Filters=[{"Name": "bogus", "Values": ["1"]}]))

    def test_06_volumes(self):
        web = self.instance_by_name("web-1")
        r = self.ep.aws("ec2", "describe-volumes", "--filters",
                        "Name=attachment.instance-id,Values=%s" % web["InstanceId"])
        vols = {v["Attachments"][0]["Device"]: v for v in r["Volumes"]}
        self.assertEqual(set(vols), {"/dev/xvda", "/dev/sdf"})
        self.assertEqual(vols["/dev/xvda"]["VolumeType"], "gp3")
        self.assertEqual(vols["/dev/xvda"]["Iops"], 3000)
        self.assertEqual(vols["/dev/xvda"]["Throughput"], 125)
        self.assertEqual(vols["/dev/xvda"]["Size"], 1)
        self.assertEqual(vols["/dev/xvda"]["State"], "in-use")
        self.assertEqual(vols["/dev/sdf"]["VolumeType"], "io1")
        self.assertEqual(vols["/dev/sdf"]["Iops"], 500)
        self.assertTrue(vols["/dev/sdf"]["Encrypted"])
        self.assertTrue(vols["/dev/sdf"]["KmsKeyId"].startswith("arn:aws:kms:us-east-1:"))
        r = self.ep.aws("ec2", "describe-volumes", "--filters", "Name=volume-type,Values=io*",
                        "Name=status,Values=in-use")
        self.assertEqual([v["VolumeId"] for v in r["Volumes"]], [vols["/dev/sdf"]["VolumeId"]])
        r = self.ep.client("ec2").describe_volumes(
            Filters=[{"Name": "tag:loose", "Values": ["yes"]}])
        self.assertEqual(r["Volumes"][0]["State"], "available")
        self.assertIn("InvalidVolume.NotFound",
                      self.code("ec2", "describe_volumes", VolumeIds=["vol-0123456789abcdef0"]))

    # ------------------------------------------------------------ mutating

    def test_07_stop_start_tags(self):
        web = self.instance_by_name("web-1")
        iid = web["InstanceId"]
        self.ep.control("POST", "delays", {"stop": 30})
        r = self.ep.aws("ec2", "stop-instances", "--instance-ids", iid)
        ch = r["StoppingInstances"][0]
        self.assertEqual((ch["PreviousState"]["Name"], ch["CurrentState"]["Name"]),
                         ("running", "stopping"))
        self.assertEqual(ch["CurrentState"]["Code"], 64)
        self.assertEqual("IncorrectInstanceState",
                         self.code("ec2", "start_instances", InstanceIds=[iid]))
        self.ep.control("POST", "delays", {"stop": 0.1})
        self.ep.control("POST", "instances/%s/state" % iid, {"state": "stopped"})
        self.wait_instance(iid, "stopped")
        r = self.ep.aws("ec2", "start-instances", "--instance-ids", iid)
        self.assertEqual(r["StartingInstances"][0]["CurrentState"]["Name"], "pending")
        self.wait_instance(iid, "running")
        self.ep.aws("ec2", "create-tags", "--resources", iid, "--tags", "Key=owner,Value=qa",
                    "Key=empty")
        got = self.instance_by_name("web-1")
        tags = {t["Key"]: t["Value"] for t in got["Tags"]}
        self.assertEqual(tags["owner"], "qa")
        self.assertEqual(tags["empty"], "")
        self.assertIn("InvalidInstanceID.NotFound",
                      self.code("ec2", "create_tags", Resources=["i-0123456789abcdef0"],
                                Tags=[{"Key": "a", "Value": "b"}]))

    def test_08_snapshots_volumes_sharing_copy(self):
        web = self.instance_by_name("web-1")
        iid = web["InstanceId"]
        root = web["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
        # CreateSnapshot with tags, as Forklift does.
        s = self.ep.aws("ec2", "create-snapshot", "--volume-id", root, "--description",
                        "Forklift migration snapshot for VM web-1 (%s)" % iid,
                        "--tag-specifications",
                        "ResourceType=snapshot,Tags=[{Key=forklift.konveyor.io/vmID,Value=%s}]" % iid)
        self.assertEqual(s["State"], "pending")
        self.assertEqual(s["VolumeId"], root)
        self.assertEqual(s["OwnerId"], SOURCE["id"])
        sid = s["SnapshotId"]
        done = self.wait_snapshot(sid)
        self.assertEqual(done["Progress"], "100%")
        self.assertEqual(done["VolumeSize"], 1)
        r = self.ep.aws("ec2", "describe-snapshots", "--filters",
                        "Name=tag:forklift.konveyor.io/vmID,Values=%s" % iid,
                        "Name=owner-id,Values=%s" % SOURCE["id"])
        self.assertEqual([x["SnapshotId"] for x in r["Snapshots"]], [sid])
        # CreateSnapshots: every volume of the instance, tags copied from volumes.
        r = self.ep.aws("ec2", "create-snapshots", "--instance-specification",
                        "InstanceId=%s" % iid, "--copy-tags-from-source", "volume",
                        "--tag-specifications", "ResourceType=snapshot,Tags=[{Key=batch,Value=b1}]",
                        "--description", "multi")
        self.assertEqual(len(r["Snapshots"]), 2)
        roles = {}
        for x in r["Snapshots"]:
            t = {k["Key"]: k["Value"] for k in x["Tags"]}
            self.assertEqual(t["batch"], "b1")
            roles[t["role"]] = x
        self.assertEqual(set(roles), {"root", "data"})
        self.assertTrue(roles["data"]["Encrypted"])
        r = self.ep.client("ec2").create_snapshots(
            InstanceSpecification={"InstanceId": iid, "ExcludeBootVolume": True})
        self.assertEqual([x["VolumeSize"] for x in r["Snapshots"]], [2])
        for x in r["Snapshots"]:
            self.wait_snapshot(x["SnapshotId"])
            self.ep.aws("ec2", "delete-snapshot", "--snapshot-id", x["SnapshotId"])
        # Owner filters.
        mine = self.ep.client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]
        self.assertIn(sid, [x["SnapshotId"] for x in mine])
        # Not shared yet: the target account cannot see or use it.
        self.assertIn("InvalidSnapshot.NotFound",
                      self.code("ec2", "describe_snapshots", TARGET, SnapshotIds=[sid]))
        self.assertEqual(self.ep.aws("ec2", "describe-snapshots", "--restorable-by-user-ids",
                                     "self", who=TARGET)["Snapshots"], [])
        # Share, structured form.
        self.ep.aws("ec2", "modify-snapshot-attribute", "--snapshot-id", sid,
                    "--create-volume-permission", "Add=[{UserId=%s}]" % TARGET["id"])
        a = self.ep.aws("ec2", "describe-snapshot-attribute", "--snapshot-id", sid,
                        "--attribute", "createVolumePermission")
        self.assertEqual(a["CreateVolumePermissions"], [{"UserId": TARGET["id"]}])
        seen = self.ep.aws("ec2", "describe-snapshots", "--restorable-by-user-ids", "self",
                           who=TARGET)["Snapshots"]
        self.assertEqual([x["SnapshotId"] for x in seen], [sid])
        self.assertEqual(seen[0]["OwnerId"], SOURCE["id"])
        seen = self.ep.client("ec2", TARGET).describe_snapshots(
            OwnerIds=[SOURCE["id"]])["Snapshots"]
        self.assertEqual([x["SnapshotId"] for x in seen], [sid])
        # Target creates a volume from it; ClientToken is idempotent.
        args = ("ec2", "create-volume", "--snapshot-id", sid, "--availability-zone", "us-east-1b",
                "--volume-type", "gp3", "--iops", "4000", "--throughput", "250", "--size", "2",
                "--client-token", "tok-1", "--tag-specifications",
                "ResourceType=volume,Tags=[{Key=forklift.konveyor.io/original-volume,Value=%s}]"
                % root)
        v1 = self.ep.aws(*args, who=TARGET)
        v2 = self.ep.aws(*args, who=TARGET)
        self.assertEqual(v1["VolumeId"], v2["VolumeId"])
        self.assertEqual((v1["Size"], v1["Iops"], v1["Throughput"], v1["SnapshotId"]),
                         (2, 4000, 250, sid))
        self.assertIn("IdempotentParameterMismatch",
                      self.err("ec2", "create-volume", "--snapshot-id", sid,
                               "--availability-zone", "us-east-1c", "--client-token", "tok-1",
                               who=TARGET))
        vol = self.wait_volume(v1["VolumeId"], who=TARGET)
        self.assertEqual(vol["AvailabilityZone"], "us-east-1b")

        for bad, code in [({"Size": 0}, "InvalidParameterValue"),
                          ({"AvailabilityZone": "us-east-1z"}, "InvalidZone.NotFound"),
                          ({"VolumeType": "io2", "Size": 10}, "MissingParameter"),
                          ({"KmsKeyId": "alias/x"}, "InvalidParameterDependency")]:
            kw = {"SnapshotId": sid, "AvailabilityZone": "us-east-1a"}
            kw.update(bad)
            self.assertEqual(code, self.code("ec2", "create_volume", TARGET, **kw), bad)
        # Encrypted volume with a KMS key, from nothing.
        ev = self.ep.aws("ec2", "create-volume", "--availability-zone", "us-east-1a", "--size",
                         "500", "--volume-type", "st1", "--encrypted", "--kms-key-id",
                         "arn:aws:kms:us-east-1:222222222222:key/abc")
        self.assertTrue(ev["Encrypted"])
        self.assertEqual(ev["KmsKeyId"], "arn:aws:kms:us-east-1:222222222222:key/abc")
        self.assertEqual(ev["State"], "creating")
        self.wait_volume(ev["VolumeId"])
        self.ep.aws("ec2", "delete-volume", "--volume-id", ev["VolumeId"])
        self.assertIn("InvalidVolume.NotFound",
                      self.code("ec2", "describe_volumes", VolumeIds=[ev["VolumeId"]]))
        self.assertIn("VolumeInUse", self.code("ec2", "delete_volume", VolumeId=root))
        # Unshare, legacy form; add and remove again.
        self.ep.aws("ec2", "modify-snapshot-attribute", "--snapshot-id", sid, "--attribute",
                    "createVolumePermission", "--operation-type", "remove", "--user-ids",
                    TARGET["id"])
        self.assertEqual(self.ep.aws("ec2", "describe-snapshots", "--restorable-by-user-ids",
                                     "self", who=TARGET)["Snapshots"], [])
        self.ep.aws("ec2", "modify-snapshot-attribute", "--snapshot-id", sid, "--attribute",
                    "createVolumePermission", "--operation-type", "add", "--user-ids", TARGET["id"])
        self.assertEqual(len(self.ep.client("ec2", TARGET).describe_snapshots(
            SnapshotIds=[sid])["Snapshots"]), 1)
        # The target cannot delete or re-share what it does not own.
        self.assertIn("UnauthorizedOperation",
                      self.code("ec2", "delete_snapshot", TARGET, SnapshotId=sid))
        # CopySnapshot into us-west-2 (request goes to the destination region).
        c = self.ep.aws("ec2", "copy-snapshot", "--source-region", "us-east-1",
                        "--source-snapshot-id", sid, "--description", "copy", region="us-west-2")
        csid = c["SnapshotId"]
        cs = self.wait_snapshot(csid, region="us-west-2")
        self.assertEqual(cs["VolumeId"], "vol-ffffffff")
        self.assertEqual(cs["VolumeSize"], 1)
        self.assertIn("InvalidSnapshot.NotFound",
                      self.code("ec2", "describe_snapshots", SnapshotIds=[csid]))
        self.ep.aws("ec2", "delete-snapshot", "--snapshot-id", csid, region="us-west-2")
        self.assertIn("InvalidSnapshot.NotFound",
                      self.code("ec2", "describe_snapshots", region="us-west-2",
                                SnapshotIds=[csid]))
        # The EBS direct API through the CLI, as the target account reading
        # the shared snapshot and as the owner.
        blocks = self.ep.aws("ebs", "list-snapshot-blocks", "--snapshot-id", sid)
        self.assertEqual(blocks["BlockSize"], BLOCK)
        self.assertEqual(blocks["VolumeSize"], 1)
        idx = [b["BlockIndex"] for b in blocks["Blocks"]]
        self.assertEqual(idx, [0, 3, 40, 41, 100, 127])  # from standard_seed()
        image = os.path.join(self.tmp, "root.raw")
        with open(image, "rb") as f:
            raw = f.read()
        for b in blocks["Blocks"][1:2] + blocks["Blocks"][-1:]:
            out = os.path.join(self.tmp, "block-%d" % b["BlockIndex"])
            meta = self.ep.aws("ebs", "get-snapshot-block", "--snapshot-id", sid,
                               "--block-index", str(b["BlockIndex"]), "--block-token",
                               b["BlockToken"], out)
            with open(out, "rb") as f:
                data = f.read()
            want = raw[b["BlockIndex"] * BLOCK:(b["BlockIndex"] + 1) * BLOCK]
            self.assertEqual(data, want.ljust(BLOCK, b"\0"))
            self.assertEqual(int(meta["DataLength"]), BLOCK)  # the CLI prints it as a string
            self.assertEqual(meta["ChecksumAlgorithm"], "SHA256")
            self.assertEqual(meta["Checksum"], base64.b64encode(hashlib.sha256(data).digest()).decode())
        paged = self.ep.aws("ebs", "list-snapshot-blocks", "--snapshot-id", sid,
                            who=TARGET)["Blocks"]
        self.assertEqual([b["BlockIndex"] for b in paged], idx)
        # Write to the volume, snapshot again, list changed blocks.
        w = self.ep.control("POST", "volumes/%s/write" % root, {
            "writes": [{"offset": 3 * BLOCK, "data": base64.b64encode(b"changed").decode()},
                       {"offset": 200 * BLOCK, "fill": 7, "length": 10}],
            "snapshot": {"description": "warm", "tags": {"pass": "2"}}})
        s2 = self.wait_snapshot(w["snapshotId"])
        ch = self.ep.aws("ebs", "list-changed-blocks", "--first-snapshot-id", sid,
                         "--second-snapshot-id", s2["SnapshotId"])
        self.assertEqual([b["BlockIndex"] for b in ch["ChangedBlocks"]], [3, 200])
        self.assertIn("FirstBlockToken", ch["ChangedBlocks"][0])
        self.assertNotIn("FirstBlockToken", ch["ChangedBlocks"][1])
        self.assertIn("SecondBlockToken", ch["ChangedBlocks"][1])
        out = os.path.join(self.tmp, "changed-200")
        self.ep.aws("ebs", "get-snapshot-block", "--snapshot-id", s2["SnapshotId"],
                    "--block-index", "200", "--block-token",
                    ch["ChangedBlocks"][1]["SecondBlockToken"], out)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"\x07" * 10 + bytes(BLOCK - 10))
        self.assertEqual("ValidationException", self.code(
            "ebs", "get_snapshot_block", SnapshotId=sid, BlockIndex=1,
            BlockToken=blocks["Blocks"][0]["BlockToken"]))
        self.assertIn("ResourceNotFoundException",
                      self.code("ebs", "list_snapshot_blocks",
                                SnapshotId="snap-0123456789abcdef0"))
        # Old snapshot still reads the original bytes (copy-on-write).
        old = self.ep.client("ebs").get_snapshot_block(
            SnapshotId=sid, BlockIndex=3, BlockToken=blocks["Blocks"][1]["BlockToken"])
        self.assertEqual(old["BlockData"].read(), raw[3 * BLOCK:4 * BLOCK])

    def test_10_kms_describe_key(self):
        """KMS (JSON 1.1, X-Amz-Target) through the real CLI: seeded keys,
        aliases, states, cross-account denial, other region, missing key."""
        self.ep.control("POST", "kms/keys", {"keys": [
            {"account": SOURCE["id"], "region": "us-east-1", "id": "cli-enabled",
             "aliases": ["alias/cli"], "description": "aws cli proof"},
            {"account": SOURCE["id"], "region": "us-east-1", "id": "cli-disabled",
             "state": "Disabled"},
            {"account": SOURCE["id"], "region": "us-east-1", "id": "cli-shared",
             "sharedWith": [TARGET["id"]]}]})
        arn = "arn:aws:kms:us-east-1:%s:key/cli-enabled" % SOURCE["id"]
        for kid in ("cli-enabled", arn, "alias/cli",
                    "arn:aws:kms:us-east-1:%s:alias/cli" % SOURCE["id"]):
            md = self.ep.aws("kms", "describe-key", "--key-id", kid)["KeyMetadata"]
            self.assertEqual((md["KeyId"], md["Arn"], md["KeyState"], md["Enabled"]),
                             ("cli-enabled", arn, "Enabled", True), kid)
            self.assertEqual((md["KeyUsage"], md["KeySpec"], md["AWSAccountId"]),
                             ("ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", SOURCE["id"]))
            self.assertEqual(md["Description"], "aws cli proof")
        md = self.ep.aws("kms", "describe-key", "--key-id", "cli-disabled")["KeyMetadata"]
        self.assertEqual((md["KeyState"], md["Enabled"]), ("Disabled", False))
        shared = "arn:aws:kms:us-east-1:%s:key/cli-shared" % SOURCE["id"]
        md = self.ep.aws("kms", "describe-key", "--key-id", shared, who=TARGET)["KeyMetadata"]
        self.assertEqual(md["AWSAccountId"], SOURCE["id"], "shared with the target account")
        self.assertIn("AccessDeniedException", self.err("kms", "describe-key", "--key-id", arn,
                                                        who=TARGET))
        self.assertIn("NotFoundException", self.err("kms", "describe-key", "--key-id", "nope"))
        self.assertIn("NotFoundException", self.err("kms", "describe-key", "--key-id", arn,
                                                    region="us-west-2"))
        calls = self.ep.calls(service="kms")
        self.assertGreaterEqual(calls["counts"]["action"]["DescribeKey"], 9)

    def test_09_pagination(self):
        # Enough volumes and snapshots for several pages of 5.
        made = []
        c = self.ep.client("ec2")
        for n in range(8):
            v = c.create_volume(AvailabilityZone="us-east-1c", Size=n + 1, TagSpecifications=[
                {"ResourceType": "volume", "Tags": [{"Key": "page", "Value": "p"}]}])
            made.append(v["VolumeId"])
        full = c.describe_volumes()["Volumes"]
        paged = self.ep.aws("ec2", "describe-volumes", "--page-size", "5")["Volumes"]
        self.assertGreaterEqual(len(full), 12)
        self.assertEqual([v["VolumeId"] for v in paged], [v["VolumeId"] for v in full])
        first = self.ep.aws("ec2", "describe-volumes", "--filters", "Name=tag:page,Values=p",
                            "--page-size", "5", "--max-items", "3")
        self.assertEqual(len(first["Volumes"]), 3)
        rest = self.ep.aws("ec2", "describe-volumes", "--filters", "Name=tag:page,Values=p",
                           "--page-size", "5", "--starting-token", first["NextToken"])
        self.assertEqual([v["VolumeId"] for v in first["Volumes"] + rest["Volumes"]], made)
        self.assertEqual("InvalidParameterCombination", self.code(
            "ec2", "describe_volumes", VolumeIds=[made[0]], MaxResults=5))
        snaps = []
        for vid in made[:6]:
            self.ep.control("POST", "delays", {"snapshot": 0.05})
            snaps.append(c.create_snapshot(VolumeId=vid)["SnapshotId"])
        allsnaps = self.ep.aws("ec2", "describe-snapshots", "--owner-ids", "self",
                               "--page-size", "5")["Snapshots"]
        got = [s["SnapshotId"] for s in allsnaps]
        self.assertEqual(got[-6:], snaps)
        self.assertEqual(len(set(got)), len(got))
        it = self.ep.aws("ec2", "describe-instances", "--page-size", "5", "--max-items", "1")
        self.assertEqual(len(it["Reservations"]), 1)
        self.assertIn("NextToken", it)
        it2 = self.ep.aws("ec2", "describe-instances", "--page-size", "5",
                          "--starting-token", it["NextToken"])
        self.assertEqual(len(it2["Reservations"]), 1)
        for vid in made:
            c.delete_volume(VolumeId=vid)


class AwsCliPagingTest(EndpointTest):
    """DescribeInstances paging through the CLI over synthetic instances."""
    seeded = False
    args = ("--synthetic-instances", "23")

    def test_paging(self):
        ids = []
        token = None
        pages = 0
        while True:
            a = ["ec2", "describe-instances", "--page-size", "5", "--max-items", "7"]
            if token:
                a += ["--starting-token", token]
            r = self.ep.aws(*a)
            ids += [i["InstanceId"] for res in r["Reservations"] for i in res["Instances"]]
            pages += 1
            token = r.get("NextToken")
            if not token:
                break
        self.assertEqual(pages, 4)
        self.assertEqual(len(ids), 23)
        self.assertEqual(len(set(ids)), 23)
        calls = self.ep.calls(action="DescribeInstances")
        self.assertGreaterEqual(calls["count"], 5)
        r = self.ep.aws("ec2", "describe-instances", "--filters",
                        "Name=tag:group,Values=g1", "Name=instance-state-name,Values=running",
                        "--page-size", "5")
        got = [i for res in r["Reservations"] for i in res["Instances"]]
        self.assertTrue(got)
        self.assertTrue(all(i["State"]["Name"] == "running" for i in got))


if __name__ == "__main__":
    unittest.main()
