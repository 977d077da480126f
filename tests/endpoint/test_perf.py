#!/usr/bin/python3
"""DescribeInstances over 10000 synthetic instances: pages are complete,
disjoint, and fast on the endpoint side (pre-rendered fragments)."""

import time
import unittest

from endpoint_fixture import EndpointTest


class SyntheticPagingTest(EndpointTest):
    seeded = False
    args = ("--synthetic-instances", "10000")

    def test_all_pages(self):
        c = self.ep.client("ec2")
        self.ep.control("POST", "calls/reset")
        seen, token, pages = [], None, 0
        while True:
            kw = {"MaxResults": 1000}
            if token:
                kw["NextToken"] = token
            r = c.describe_instances(**kw)
            seen += [i["InstanceId"] for res in r["Reservations"] for i in res["Instances"]]
            pages += 1
            token = r.get("NextToken")
            if not token:
                break
        self.assertEqual(pages, 10)
        self.assertEqual(len(seen), 10000)
        self.assertEqual(len(set(seen)), 10000)
        # Second pass hits the fragment cache.
        self.ep.control("POST", "calls/reset")
        token = None
        while True:
            kw = {"MaxResults": 1000}
            if token:
                kw["NextToken"] = token
            token = c.describe_instances(**kw).get("NextToken")
            if not token:
                break
        lat = [x["latencyMs"] for x in self.ep.calls(action="DescribeInstances")["calls"]]
        self.assertEqual(len(lat), 10)
        # Generous bound for a loaded 2-core CI box; typically ~20 ms.
        self.assertLess(max(lat), 1000, lat)
        # Filters over the whole set.
        r = c.describe_instances(Filters=[{"Name": "tag:group", "Values": ["g3"]},
                                          {"Name": "instance-state-name", "Values": ["stopped"]}])
        got = [i for res in r["Reservations"] for i in res["Instances"]]
        want = [n for n in range(10000) if n % 10 == 3 and n % 3 == 0]
        self.assertEqual(len(got), len(want))
        self.assertEqual(self.ep.state()["instances"][0]["tags"]["pallet/synthetic"], "true")
        # Bounds as AWS documents them.
        for bad in (4, 1001):
            with self.assertRaises(Exception) as cm:
                c.describe_instances(MaxResults=bad)
            self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidParameterValue")


if __name__ == "__main__":
    unittest.main()
