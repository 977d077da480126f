# SPDX-License-Identifier: Apache-2.0
"""`pallet inventory` on provider-ec2 against the local endpoint, as a
kubectl-mtv user writes it: the Forklift Provider and Secret (-f, no
config JSON), kubectl-mtv's kinds (ec2-instance, ec2-volume...) and the
AWS objects' field names (State.Name, InstanceType, Placement...,
Tags[*].Key) in TSL queries, Pallet's own names still working, and an
unknown field or kind failing with the nearest name."""

import json
import os
import unittest

import yaml

from ec2_harness import EC2E2E


class InventoryMtv(EC2E2E):
    def setUp(self):
        super().setUp()
        self.start({"instances": [
            {"id": "i-0aaa000000000aaa1", "name": "web-1", "type": "m5.large",
             "state": "running", "volumes": [{"sizeGiB": 8, "type": "gp3"},
                                             {"sizeGiB": 100, "type": "io1"}]},
            {"id": "i-0bbb000000000bbb2", "name": "db-1", "type": "t3.medium",
             "state": "stopped", "volumes": [{"sizeGiB": 20, "type": "gp2"}]}]})
        self.plan = self.write_plan(["i-0aaa000000000aaa1"])

    def inv(self, kind, *args, check=0):
        return self.pallet("inventory", kind, "-f", self.plan, *args, check=check)

    def names(self, kind, query):
        r = self.inv(kind, "-o", "json", "-q", query)
        return sorted(i["name"] for i in json.loads(r.stdout))

    def test_kinds_and_fields(self):
        items = json.loads(self.inv("ec2-instance", "-o", "json").stdout)
        self.assertEqual(sorted(i["name"] for i in items), ["db-1", "web-1"])
        web = [i for i in items if i["name"] == "web-1"][0]
        # kubectl-mtv's fields (the AWS object) next to Pallet's.
        self.assertEqual(web["InstanceType"], "m5.large")
        self.assertEqual(web["State"]["Name"], "running")
        self.assertEqual(web["InstanceId"], "i-0aaa000000000aaa1")
        self.assertEqual(web["type"], "m5.large")
        self.assertIn({"Key": "Name", "Value": "web-1"}, web["Tags"])
        self.assertIn("AvailabilityZone", web["Placement"])
        # Today's kind names are aliases.
        self.assertEqual(json.loads(self.inv("instances", "-o", "json").stdout), items)
        # The query language on both sets of names.
        self.assertEqual(self.names("ec2-instance", "where State.Name = 'running'"), ["web-1"])
        self.assertEqual(self.names("ec2-instance", "InstanceType in ['m5.large', 't3.medium']"
                                    " and powerState = 'Off'"), ["db-1"])
        self.assertEqual(self.names("ec2-instance", "any(Tags[*].Value ~= '^db')"), ["db-1"])
        self.assertEqual(self.names("ec2-instance", "len(disks) = 2"), ["web-1"])
        self.assertEqual(self.names("ec2-instance", "sum(disks[*].sizeGiB) > 100"), ["web-1"])
        self.assertEqual(self.names("ec2-instance", "label.Name = 'db-1'"), ["db-1"])
        self.assertEqual(self.names("ec2-instance", "PublicIpAddress is null"), ["db-1", "web-1"])
        r = self.inv("ec2-instance", "-o", "json", "-q",
                     "select name, InstanceType as t sort by t limit 1")
        self.assertEqual(json.loads(r.stdout), [{"name": "web-1", "t": "m5.large"}])
        # Volumes, networks, volume types.
        vols = json.loads(self.inv("ec2-volume", "-o", "json").stdout)
        self.assertEqual(sorted(v["Size"] for v in vols), [8, 20, 100])
        self.assertEqual(self.names("ec2-volume", "VolumeType = 'io1'"),
                         [v["name"] for v in vols if v["VolumeType"] == "io1"])
        nets = json.loads(self.inv("ec2-network", "-o", "json").stdout)
        self.assertEqual(sorted({n["networkType"] for n in nets}), ["subnet", "vpc"])
        self.assertTrue(all("CidrBlock" in n for n in nets), nets)
        self.assertTrue(len(json.loads(self.inv("ec2-volume-type", "-o", "json").stdout)) > 0)
        # YAML and the table show the same items.
        y = yaml.safe_load(self.inv("ec2-instance", "-o", "yaml").stdout)
        self.assertEqual(sorted(i["name"] for i in y), ["db-1", "web-1"])
        self.assertIn("web-1", self.inv("ec2-instance").stdout)

    def test_errors(self):
        r = self.inv("ec2-instance", "-q", "where State.Nmae = 'running'", check=2)
        self.assertIn("unknown field 'State.Nmae'", r.stderr)
        self.assertIn("did you mean 'State.Name'?", r.stderr)
        r = self.inv("ec2-instanse", check=1)
        self.assertIn("ec2-instance (instances)", r.stderr)
        self.assertNotIn("PALLET_E_", r.stderr)
        # The Secret's values never show.
        for r in (self.inv("ec2-instance", "-o", "json"), self.inv("ec2-instance", "-o", "yaml")):
            with open(self.plan) as f:
                secret = [json.loads(l) for l in f if '"Secret"' in l][0]["stringData"]
            self.assertNotIn(secret["secretAccessKey"], r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
