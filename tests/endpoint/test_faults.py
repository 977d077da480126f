#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""(c) Fault injection is observable: throttles, 5xx, latency, connection
resets and bad EBS checksums, per action, deterministic with --fault-seed."""

import base64
import hashlib
import json
import os
import subprocess
import time
import unittest

import botocore.exceptions

from endpoint_fixture import EndpointTest, Endpoint, SOURCE, PYTHON, ENDPOINT


class FaultTest(EndpointTest):

    def setUp(self):
        self.ep.control("DELETE", "faults")
        self.ep.control("POST", "calls/reset")

    def code(self, fn, **kw):
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            fn(**kw)
        return cm.exception.response

    def test_throttle_each_service(self):
        self.ep.control("POST", "faults", {"faults": {
            "ec2:DescribeVolumes": {"throttle_count": 1},
            "sts:GetCallerIdentity": {"throttle_count": 1},
            "ebs:ListSnapshotBlocks": {"throttle_count": 1}}})
        r = self.code(self.ep.client("ec2").describe_volumes)
        self.assertEqual(r["Error"]["Code"], "RequestLimitExceeded")
        self.assertEqual(r["ResponseMetadata"]["HTTPStatusCode"], 503)
        r = self.code(self.ep.client("sts").get_caller_identity)
        self.assertEqual(r["Error"]["Code"], "Throttling")
        r = self.code(self.ep.client("ebs").list_snapshot_blocks,
                      SnapshotId="snap-0123456789abcdef0")
        self.assertEqual(r["Error"]["Code"], "ThrottlingException")
        # Counts are used up: the next calls pass.
        self.ep.client("ec2").describe_volumes()
        self.ep.client("sts").get_caller_identity()
        self.ep.control("POST", "faults", {"faults": {"ebs:ListSnapshotBlocks": {
            "throttle_count": 1, "code": "RequestThrottledException"}}})
        r = self.code(self.ep.client("ebs").list_snapshot_blocks,
                      SnapshotId="snap-0123456789abcdef0")
        self.assertEqual(r["Error"]["Code"], "RequestThrottledException")
        calls = self.ep.calls()
        self.assertEqual(calls["counts"]["outcome"].get("RequestLimitExceeded"), 1)
        self.assertEqual(calls["counts"]["outcome"].get("Throttling"), 1)
        self.assertEqual(calls["counts"]["outcome"].get("ThrottlingException"), 1)
        self.assertEqual(calls["counts"]["outcome"].get("ok"), 2)

    def test_retrying_client_recovers(self):
        self.ep.control("POST", "faults", {"faults": {"DescribeInstances": {"throttle_count": 2}}})
        c = self.ep.client("ec2", retries=4)
        self.assertEqual(len(c.describe_instances()["Reservations"]), 2)
        calls = self.ep.calls(action="DescribeInstances")
        self.assertEqual([x["outcome"] for x in calls["calls"]],
                         ["RequestLimitExceeded", "RequestLimitExceeded", "ok"])

    def test_server_error_and_latency(self):
        self.ep.control("POST", "faults", {"faults": {
            "ec2:DescribeSubnets": {"error_count": 1, "latency_ms": 300}}})
        t0 = time.time()
        r = self.code(self.ep.client("ec2").describe_subnets)
        self.assertEqual(r["Error"]["Code"], "InternalError")
        self.assertEqual(r["ResponseMetadata"]["HTTPStatusCode"], 500)
        t1 = time.time()
        self.ep.client("ec2").describe_subnets()
        t2 = time.time()
        self.assertGreaterEqual(t1 - t0, 0.3)
        self.assertGreaterEqual(t2 - t1, 0.3)
        lat = [c["latencyMs"] for c in self.ep.calls(action="DescribeSubnets")["calls"]]
        self.assertTrue(all(x >= 300 for x in lat), lat)

    def test_connection_reset(self):
        self.ep.control("POST", "faults", {"faults": {"ec2:DescribeVpcs": {"reset_count": 1}}})
        with self.assertRaises(botocore.exceptions.ConnectionClosedError):
            self.ep.client("ec2").describe_vpcs()
        self.assertTrue(self.ep.client("ec2").describe_vpcs()["Vpcs"])
        outs = [c["outcome"] for c in self.ep.calls(action="DescribeVpcs")["calls"]]
        self.assertEqual(outs, ["reset", "ok"])

    def test_bad_checksum(self):
        web = self.instance_by_name("web-1")
        root = web["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
        c = self.ep.client("ec2")
        sid = c.create_snapshot(VolumeId=root)["SnapshotId"]
        self.ep.wait(lambda: c.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]["State"]
                     == "completed")
        ebs = self.ep.client("ebs")
        b = ebs.list_snapshot_blocks(SnapshotId=sid)["Blocks"][0]
        self.ep.control("POST", "faults", {"faults": {"ebs:GetSnapshotBlock":
                                                      {"bad_checksum_count": 1}}})
        for bad in (True, False):
            r = ebs.get_snapshot_block(SnapshotId=sid, BlockIndex=b["BlockIndex"],
                                       BlockToken=b["BlockToken"])
            data = r["BlockData"].read()
            good = base64.b64encode(hashlib.sha256(data).digest()).decode()
            if bad:
                self.assertNotEqual(r["Checksum"], good)
            else:
                self.assertEqual(r["Checksum"], good)

    def test_rates_deterministic_with_seed(self):
        # Same seed, same rule, same sequence of outcomes.
        def run(seed):
            self.ep.control("POST", "faults", {"seed": seed, "replace": True, "faults": {
                "ec2:DescribeRegions": {"throttle": 0.5}}})
            self.ep.control("POST", "calls/reset")
            c = self.ep.client("ec2")
            for _ in range(16):
                try:
                    c.describe_regions()
                except botocore.exceptions.ClientError:
                    pass
            return [x["outcome"] for x in self.ep.calls(action="DescribeRegions")["calls"]]
        a, b = run(7), run(7)
        self.assertEqual(a, b)
        self.assertIn("ok", a)
        self.assertIn("RequestLimitExceeded", a)
        self.assertNotEqual(run(8), a)

    def test_rules_do_not_leak_to_other_actions(self):
        self.ep.control("POST", "faults", {"faults": {"ec2:DescribeVolumes": {"error": 1.0}}})
        self.ep.client("ec2").describe_vpcs()
        self.ep.client("sts").get_caller_identity()


class FaultFlagTest(unittest.TestCase):
    def test_cli_flags_and_call_log_file(self):
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            ep = Endpoint(("--fault", "sts:GetCallerIdentity=throttle_count:1",
                           "--fault", "ec2:*=latency_ms:50", "--fault-seed", "3"), None, tmp)
            try:
                with self.assertRaises(botocore.exceptions.ClientError):
                    ep.client("sts").get_caller_identity()
                ep.client("sts").get_caller_identity()
                ep.client("ec2").describe_regions()
            finally:
                ep.stop()
            with open(os.path.join(tmp, "calls.jsonl")) as f:
                lines = [json.loads(x) for x in f]
            self.assertEqual([(x["service"], x["action"], x["outcome"]) for x in lines],
                             [("sts", "GetCallerIdentity", "Throttling"),
                              ("sts", "GetCallerIdentity", "ok"),
                              ("ec2", "DescribeRegions", "ok")])
            self.assertGreaterEqual(lines[2]["latencyMs"], 50)
            self.assertEqual(lines[0]["account"], SOURCE["id"])
            self.assertEqual(lines[0]["region"], "us-east-1")

    def test_bad_flag_is_reported(self):
        r = subprocess.run([PYTHON, ENDPOINT, "--fault", "nonsense"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--fault", r.stderr)


if __name__ == "__main__":
    unittest.main()
