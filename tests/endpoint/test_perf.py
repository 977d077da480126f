#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""DescribeInstances over 10000 synthetic instances: pages are complete,
disjoint, and fast on the endpoint side (pre-rendered fragments)."""

import unittest

from endpoint_fixture import EndpointTest

NS = "{http://ec2.amazonaws.com/doc/2016-11-15/}"


class SyntheticPagingTest(EndpointTest):
    seeded = False
    args = ("--synthetic-instances", "10000")

    def page_all(self):
        """All instance ids, 1000 a page, read with ElementTree (botocore's
        parser would make the test, not the endpoint, the bottleneck)."""
        seen, token, pages = [], None, 0
        while True:
            p = {"Action": "DescribeInstances", "MaxResults": "1000"}
            if token:
                p["NextToken"] = token
            st, root = self.ep.raw_ec2(p)
            self.assertEqual(st, 200)
            seen += [e.text for e in root.iter(NS + "instanceId")]
            pages += 1
            t = root.find(NS + "nextToken")
            token = t.text if t is not None else None
            if not token:
                return seen, pages

    def test_all_pages(self):
        self.ep.control("POST", "calls/reset")
        seen, pages = self.page_all()
        self.assertEqual(pages, 10)
        self.assertEqual(len(seen), 10000)
        self.assertEqual(len(set(seen)), 10000)
        # Second pass hits the fragment cache.
        self.ep.control("POST", "calls/reset")
        again, _ = self.page_all()
        self.assertEqual(again, seen)
        lat = [x["latencyMs"] for x in self.ep.calls(action="DescribeInstances")["calls"]]
        self.assertEqual(len(lat), 10)
        # Generous bound for a loaded 2-core CI box; typically tens of ms.
        self.assertLess(max(lat), 1500, lat)
        # botocore parses a full page.
        c = self.ep.client("ec2")
        r = c.describe_instances(MaxResults=1000)
        self.assertEqual(sum(len(x["Instances"]) for x in r["Reservations"]), 1000)
        self.assertIn("NextToken", r)
        # Filters over the whole set.
        r = c.describe_instances(Filters=[{"Name": "tag:group", "Values": ["g3"]},
                                          {"Name": "instance-state-name", "Values": ["stopped"]}])
        got = [i for res in r["Reservations"] for i in res["Instances"]]
        want = [n for n in range(10000) if n % 10 == 3 and n % 3 == 0]
        self.assertEqual(len(got), len(want))
        self.assertTrue(all(i["State"]["Name"] == "stopped" for i in got))
        # Bounds as AWS documents them.
        for bad in (4, 1001):
            with self.assertRaises(Exception) as cm:
                c.describe_instances(MaxResults=bad)
            self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidParameterValue")


if __name__ == "__main__":
    unittest.main()
