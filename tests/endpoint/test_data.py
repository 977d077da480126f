#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""(d) Sharing between accounts and (e) EBS direct block data: checksums
match, unlisted blocks are zero in the image, warm-migration deltas."""

import base64
import hashlib
import os
import unittest

import botocore.exceptions

from endpoint_fixture import EndpointTest, SOURCE, TARGET, BLOCK


class DataTest(EndpointTest):

    def snapshot(self, vid, who=SOURCE, **kw):
        c = self.ep.client("ec2", who)
        sid = c.create_snapshot(VolumeId=vid, **kw)["SnapshotId"]
        return self.completed(sid, who)

    def completed(self, sid, who=SOURCE, region="us-east-1"):
        c = self.ep.client("ec2", who, region)
        seen = []

        def f():
            s = c.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]
            seen.append(s["Progress"])
            return s if s["State"] == "completed" else None
        s = self.ep.wait(f, what=sid)
        for p in seen:
            self.assertRegex(p, r"^\d{1,3}%$")
        self.assertEqual([int(p[:-1]) for p in seen], sorted(int(p[:-1]) for p in seen))
        return s

    def code(self, fn, **kw):
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            fn(**kw)
        return cm.exception.response["Error"]["Code"]

    def all_blocks(self, ebs, sid, page=100):
        out, tok = [], None
        while True:
            kw = {"SnapshotId": sid, "MaxResults": page}
            if tok:
                kw["NextToken"] = tok
            r = ebs.list_snapshot_blocks(**kw)
            out += r["Blocks"]
            tok = r.get("NextToken")
            if not tok:
                return out, r

    def test_sharing(self):
        web = self.instance_by_name("web-1")
        data_vol = web["BlockDeviceMappings"][1]["Ebs"]["VolumeId"]
        s = self.snapshot(data_vol)
        sid = s["SnapshotId"]
        self.assertTrue(s["Encrypted"])
        tc, tebs = self.ep.client("ec2", TARGET), self.ep.client("ebs", TARGET)
        # Before sharing: invisible everywhere to the target.
        self.assertEqual(self.code(tc.describe_snapshots, SnapshotIds=[sid]),
                         "InvalidSnapshot.NotFound")
        self.assertEqual(self.code(tc.create_volume, SnapshotId=sid,
                                   AvailabilityZone="us-east-1a"), "InvalidSnapshot.NotFound")
        self.assertEqual(self.code(tebs.list_snapshot_blocks, SnapshotId=sid),
                         "ResourceNotFoundException")
        self.assertNotIn(sid, [x["SnapshotId"] for x in tc.describe_snapshots()["Snapshots"]])
        # The target cannot share it with itself.
        self.assertEqual(self.code(tc.modify_snapshot_attribute, SnapshotId=sid,
                                   Attribute="createVolumePermission", OperationType="add",
                                   UserIds=[TARGET["id"]]), "InvalidSnapshot.NotFound")
        # Share.
        self.ep.client("ec2").modify_snapshot_attribute(
            SnapshotId=sid, CreateVolumePermission={"Add": [{"UserId": TARGET["id"]}]})
        got = tc.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]
        self.assertEqual(got["OwnerId"], SOURCE["id"])
        self.assertIn(sid, [x["SnapshotId"] for x in tc.describe_snapshots()["Snapshots"]])
        self.assertEqual(tc.describe_snapshots(OwnerIds=["self"])["Snapshots"], [])
        # Other region: still invisible (snapshots are regional).
        self.assertEqual(self.code(self.ep.client("ec2", TARGET, "us-west-2").describe_snapshots,
                                   SnapshotIds=[sid]), "InvalidSnapshot.NotFound")
        v = tc.create_volume(SnapshotId=sid, AvailabilityZone="us-east-1a")
        self.assertTrue(v["Encrypted"])
        self.assertEqual(v["Size"], 2)
        self.assertEqual(self.ep.client("ec2").describe_volumes(
            Filters=[{"Name": "volume-id", "Values": [v["VolumeId"]]}])["Volumes"], [])
        src_blocks, _ = self.all_blocks(self.ep.client("ebs"), sid)
        tgt_blocks, _ = self.all_blocks(tebs, sid)
        self.assertEqual([b["BlockIndex"] for b in src_blocks], [b["BlockIndex"] for b in tgt_blocks])
        self.assertEqual([b["BlockIndex"] for b in src_blocks], [5])
        # Target copies the shared snapshot into its own account.
        cp = self.ep.client("ec2", TARGET, "us-west-2").copy_snapshot(
            SourceRegion="us-east-1", SourceSnapshotId=sid, Description="mine now")
        c2 = self.completed(cp["SnapshotId"], TARGET, "us-west-2")
        self.assertEqual(c2["OwnerId"], TARGET["id"])
        # Public sharing via the group, then unshare everything.
        self.ep.client("ec2").modify_snapshot_attribute(
            SnapshotId=sid, Attribute="createVolumePermission", OperationType="remove",
            UserIds=[TARGET["id"]])
        self.assertEqual(self.code(tc.describe_snapshots, SnapshotIds=[sid]),
                         "InvalidSnapshot.NotFound")
        self.ep.client("ec2").modify_snapshot_attribute(
            SnapshotId=sid, CreateVolumePermission={"Add": [{"Group": "all"}]})
        self.assertEqual(len(tc.describe_snapshots(SnapshotIds=[sid])["Snapshots"]), 1)
        self.ep.client("ec2").modify_snapshot_attribute(
            SnapshotId=sid, CreateVolumePermission={"Remove": [{"Group": "all"}]})
        self.assertEqual(self.code(self.ep.client("ec2").modify_snapshot_attribute,
                                   SnapshotId=sid, Attribute="createVolumePermission",
                                   OperationType="add", UserIds=["12345"]),
                         "InvalidParameterValue")
        state = self.ep.state()
        self.assertEqual([x["sharedWith"] for x in state["snapshots"] if x["id"] == sid], [[]])

    def test_blocks_match_image(self):
        web = self.instance_by_name("web-1")
        root = web["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
        sid = self.snapshot(root)["SnapshotId"]
        ebs = self.ep.client("ebs")
        blocks, last = self.all_blocks(ebs, sid)
        self.assertEqual(last["BlockSize"], BLOCK)
        self.assertEqual(last["VolumeSize"], 1)
        listed = {b["BlockIndex"] for b in blocks}
        self.assertEqual(len(listed), len(blocks))
        with open(os.path.join(self.tmp, "root.raw"), "rb") as f:
            image = f.read()
        nblocks = (1 << 30) // BLOCK
        for i in range(nblocks):
            chunk = image[i * BLOCK:(i + 1) * BLOCK]
            if i not in listed:
                self.assertEqual(chunk, bytes(len(chunk)), "unlisted block %d is not zero" % i)
        for b in blocks:
            r = ebs.get_snapshot_block(SnapshotId=sid, BlockIndex=b["BlockIndex"],
                                       BlockToken=b["BlockToken"])
            data = r["BlockData"].read()
            self.assertEqual(r["DataLength"], BLOCK)
            self.assertEqual(len(data), BLOCK)
            self.assertEqual(r["ChecksumAlgorithm"], "SHA256")
            self.assertEqual(base64.b64decode(r["Checksum"]), hashlib.sha256(data).digest())
            want = image[b["BlockIndex"] * BLOCK:(b["BlockIndex"] + 1) * BLOCK]
            self.assertEqual(data, want.ljust(BLOCK, b"\0"))
        # Paging with StartingBlockIndex.
        r = ebs.list_snapshot_blocks(SnapshotId=sid, StartingBlockIndex=41, MaxResults=100)
        self.assertEqual([b["BlockIndex"] for b in r["Blocks"]],
                         sorted(i for i in listed if i >= 41))
        # A token of one block does not open another.
        self.assertEqual(self.code(ebs.get_snapshot_block, SnapshotId=sid,
                                   BlockIndex=blocks[1]["BlockIndex"],
                                   BlockToken=blocks[0]["BlockToken"]), "ValidationException")

    def test_warm_deltas_and_failed_snapshot(self):
        vol = self.ep.client("ec2").create_volume(AvailabilityZone="us-east-1a", Size=1,
                                                  VolumeType="gp3")["VolumeId"]
        self.ep.wait(lambda: self.ep.client("ec2").describe_volumes(VolumeIds=[vol])
                     ["Volumes"][0]["State"] == "available")
        ebs = self.ep.client("ebs")
        base = self.snapshot(vol)["SnapshotId"]
        self.assertEqual(ebs.list_snapshot_blocks(SnapshotId=base)["Blocks"], [])
        w1 = self.ep.control("POST", "volumes/%s/write" % vol, {
            "writes": [{"offset": 0, "data": base64.b64encode(b"A" * 1000).decode()},
                       {"offset": 10 * BLOCK - 10, "fill": 66, "length": 20}],
            "snapshot": True})
        self.assertEqual(w1["dirtyBlocks"], [0, 9, 10])
        s1 = self.completed(w1["snapshotId"])["SnapshotId"]
        w2 = self.ep.control("POST", "volumes/%s/write" % vol, {
            "writes": [{"offset": 0, "zero": BLOCK}, {"offset": 50 * BLOCK, "fill": 1,
                                                      "length": 1}],
            "snapshot": {"description": "pass 2", "tags": {"pass": "2"}}})
        s2 = self.completed(w2["snapshotId"])["SnapshotId"]
        ch = ebs.list_changed_blocks(FirstSnapshotId=s1, SecondSnapshotId=s2)["ChangedBlocks"]
        self.assertEqual([b["BlockIndex"] for b in ch], [0, 50])
        ch = ebs.list_changed_blocks(FirstSnapshotId=base, SecondSnapshotId=s2)["ChangedBlocks"]
        self.assertEqual([b["BlockIndex"] for b in ch], [0, 9, 10, 50])
        ch = ebs.list_changed_blocks(SecondSnapshotId=s1)["ChangedBlocks"]
        self.assertEqual([b["BlockIndex"] for b in ch], [0, 9, 10])
        blk = [b for b in ebs.list_snapshot_blocks(SnapshotId=s2)["Blocks"] if b["BlockIndex"] == 0][0]
        d = ebs.get_snapshot_block(SnapshotId=s2, BlockIndex=0, BlockToken=blk["BlockToken"])
        self.assertEqual(d["BlockData"].read(), bytes(BLOCK))
        blk = [b for b in ebs.list_snapshot_blocks(SnapshotId=s1)["Blocks"] if b["BlockIndex"] == 0][0]
        d = ebs.get_snapshot_block(SnapshotId=s1, BlockIndex=0, BlockToken=blk["BlockToken"])
        self.assertEqual(d["BlockData"].read(), b"A" * 1000 + bytes(BLOCK - 1000))
        # Failure by control call, on a pending snapshot.
        self.ep.control("POST", "delays", {"snapshot": 30})
        c = self.ep.client("ec2")
        sid = c.create_snapshot(VolumeId=vol)["SnapshotId"]
        self.ep.control("POST", "snapshots/%s/fail" % sid, {"message": "disk on fire"})
        s = c.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]
        self.assertEqual((s["State"], s["StateMessage"]), ("error", "disk on fire"))
        self.assertEqual(self.code(c.create_volume, SnapshotId=sid, AvailabilityZone="us-east-1a"),
                         "IncorrectState")
        self.assertEqual(self.code(ebs.list_snapshot_blocks, SnapshotId=sid), "ValidationException")
        # Failure by volume flag: every later snapshot of it errors.
        self.ep.control("POST", "delays", {"snapshot": 0.4})
        self.ep.control("POST", "volumes/%s/fail-snapshots" % vol, {"message": "quota"})
        sid = c.create_snapshot(VolumeId=vol)["SnapshotId"]
        self.ep.wait(lambda: c.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]["State"]
                     == "error")
        self.ep.control("POST", "volumes/%s/fail-snapshots" % vol, {"message": None})
        c.delete_volume(VolumeId=vol)


    def test_attach_file(self):
        """A consumer writing the data file itself (attach-file): the seed
        image and an earlier snapshot keep their bytes, a later snapshot
        gets its own copy, and ListChangedBlocks compares data."""
        import urllib.error
        vid = next(v["id"] for v in self.ep.state()["volumes"]
                   if v["tags"].get("loose") == "yes")     # no other test reads it
        before = self.snapshot(vid)["SnapshotId"]
        vol = lambda: next(v for v in self.ep.state()["volumes"] if v["id"] == vid)  # noqa
        seed_file = vol()["data"]
        a = self.ep.control("POST", "volumes/%s/attach-file" % vid, {})
        self.assertEqual((a["volumeId"], a["size"]), (vid, 4 << 30))
        self.assertNotEqual(a["path"], seed_file)
        self.assertEqual(self.ep.control("POST", "volumes/%s/attach-file" % vid, {})["path"],
                         a["path"])
        with open(a["path"], "r+b") as f:
            f.seek(7 * BLOCK)
            f.write(b"A" * 100)
        mid = self.snapshot(vid)["SnapshotId"]
        with open(a["path"], "r+b") as f:
            f.seek(9 * BLOCK)
            f.write(b"B" * 100)      # after the snapshot: must not reach it
        ebs = self.ep.client("ebs")
        r = ebs.list_changed_blocks(FirstSnapshotId=before, SecondSnapshotId=mid)
        self.assertEqual([b["BlockIndex"] for b in r["ChangedBlocks"]], [7])
        snaps = {s["id"]: s for s in self.ep.state()["snapshots"]}
        self.assertEqual(snaps[before]["data"], seed_file)
        self.assertNotIn(snaps[mid]["data"], (seed_file, a["path"]))
        with self.assertRaises(urllib.error.HTTPError) as cm:
            self.ep.control("POST", "volumes/vol-0000000000000dead/attach-file", {})
        self.assertEqual(cm.exception.code, 404)


class SeedFlagTest(EndpointTest):
    """A volume seeded with snapshotError fails its snapshots."""
    seeded = False

    @classmethod
    def setUpClass(cls):
        import tempfile
        from endpoint_fixture import Endpoint
        cls.tmpdir = tempfile.TemporaryDirectory()
        cls.tmp = cls.tmpdir.name
        cls.ep = Endpoint(("--snapshot-delay", "0.3"), {
            "accounts": [{"id": "333333333333", "accessKeyId": "AKIATHIRD00000000003",
                          "secretAccessKey": "third"}],
            "regions": [{"name": "eu-west-1", "zones": ["eu-west-1a"]}],
            "instances": [{"account": "333333333333", "region": "eu-west-1", "name": "x",
                           "volumes": [{"sizeGiB": 1, "snapshotError": "internal error"}]}]},
            cls.tmp)

    def test_seeded_failure_and_extra_account_region(self):
        who = {"id": "333333333333", "key": "AKIATHIRD00000000003", "secret": "third"}
        c = self.ep.client("ec2", who, "eu-west-1")
        inst = c.describe_instances()["Reservations"][0]["Instances"][0]
        r = c.create_snapshots(InstanceSpecification={"InstanceId": inst["InstanceId"]})
        sid = r["Snapshots"][0]["SnapshotId"]
        s = self.ep.wait(lambda: [x for x in c.describe_snapshots(SnapshotIds=[sid])["Snapshots"]
                                  if x["State"] != "pending"])
        self.assertEqual(s[0]["State"], "error")
        self.assertEqual(s[0]["StateMessage"], "internal error")
        self.assertEqual(self.ep.client("sts", who, "eu-west-1").get_caller_identity()["Account"],
                         "333333333333")


if __name__ == "__main__":
    unittest.main()
