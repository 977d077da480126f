#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""(b) Signatures: wrong secrets, unknown keys, tampered requests and
unsigned requests are rejected with each service's own error envelope."""

import datetime
import unittest
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

import botocore.exceptions
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from endpoint_fixture import EndpointTest, SOURCE, TARGET


def raw(url, method="POST", body=b"", headers=None):
    req = urllib.request.Request(url, data=body if method != "GET" else None, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def signed(url, service, region, key, secret, body, method="POST", path="/"):
    req = AWSRequest(method=method, url=url + path, data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(key, secret), service, region).add_auth(req)
    return req


class AuthTest(EndpointTest):
    seeded = False

    def err(self, service, method, who=SOURCE, secret=None, **kw):
        c = self.ep.client(service, who, secret=secret)
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            getattr(c, method)(**kw)
        return cm.exception.response

    def test_good_signature_accepted(self):
        self.assertEqual(self.ep.client("sts").get_caller_identity()["Account"], SOURCE["id"])
        self.assertEqual(self.ep.client("sts", TARGET).get_caller_identity()["Account"],
                         TARGET["id"])
        self.assertTrue(self.ep.client("ec2").describe_regions()["Regions"])

    def test_wrong_secret_each_service(self):
        r = self.err("ec2", "describe_instances", secret="wrong")
        self.assertEqual(r["Error"]["Code"], "SignatureDoesNotMatch")
        self.assertEqual(r["ResponseMetadata"]["HTTPStatusCode"], 403)
        self.assertTrue(r["ResponseMetadata"]["RequestId"])
        r = self.err("sts", "get_caller_identity", secret="wrong")
        self.assertEqual(r["Error"]["Code"], "SignatureDoesNotMatch")
        self.assertEqual(r["ResponseMetadata"]["HTTPStatusCode"], 403)
        r = self.err("ebs", "list_snapshot_blocks", secret="wrong",
                     SnapshotId="snap-0123456789abcdef0")
        self.assertEqual(r["Error"]["Code"], "InvalidSignatureException")
        self.assertEqual(r["ResponseMetadata"]["HTTPStatusCode"], 403)

    def test_unknown_access_key(self):
        nobody = {"key": "AKIANOBODY0000000000", "secret": "x"}
        r = self.err("ec2", "describe_volumes", who=nobody)
        self.assertEqual(r["Error"]["Code"], "AuthFailure")
        self.assertEqual(r["ResponseMetadata"]["HTTPStatusCode"], 401)
        r = self.err("sts", "get_caller_identity", who=nobody)
        self.assertEqual(r["Error"]["Code"], "InvalidClientTokenId")
        r = self.err("ebs", "list_snapshot_blocks", who=nobody, SnapshotId="snap-0123456789abcdef0")
        self.assertEqual(r["Error"]["Code"], "UnrecognizedClientException")

    def test_raw_envelopes(self):
        body = b"Action=DescribeRegions&Version=2016-11-15"
        req = signed(self.ep.url, "ec2", "us-east-1", SOURCE["key"], SOURCE["secret"], body)
        # Tamper with the body after signing.
        st, hdrs, out = raw(self.ep.url + "/", body=body + b"&DryRun=true",
                            headers=dict(req.headers.items()))
        self.assertEqual(st, 403)
        root = ET.fromstring(out)
        self.assertEqual(root.tag, "Response")
        self.assertEqual(root.find("Errors/Error/Code").text, "SignatureDoesNotMatch")
        self.assertTrue(root.find("Errors/Error/Message").text)
        self.assertTrue(root.find("RequestID").text)
        # The untampered request passes.
        st, hdrs, out = raw(self.ep.url + "/", body=body, headers=dict(req.headers.items()))
        self.assertEqual(st, 200, out)
        self.assertTrue(ET.fromstring(out).tag.endswith("DescribeRegionsResponse"))
        # STS: ErrorResponse envelope in the STS namespace.
        body = b"Action=GetCallerIdentity&Version=2011-06-15"
        req = signed(self.ep.url, "sts", "us-east-1", SOURCE["key"], "bad", body)
        st, hdrs, out = raw(self.ep.url + "/", body=body, headers=dict(req.headers.items()))
        self.assertEqual(st, 403)
        root = ET.fromstring(out)
        ns = "{https://sts.amazonaws.com/doc/2011-06-15/}"
        self.assertEqual(root.tag, ns + "ErrorResponse")
        self.assertEqual(root.find(ns + "Error/" + ns + "Code").text, "SignatureDoesNotMatch")
        self.assertEqual(root.find(ns + "Error/" + ns + "Type").text, "Sender")
        # EBS: JSON with x-amzn-ErrorType.
        req = signed(self.ep.url, "ebs", "us-east-1", SOURCE["key"], "bad", b"", method="GET",
                     path="/snapshots/snap-0123456789abcdef0/blocks")
        st, hdrs, out = raw(self.ep.url + "/snapshots/snap-0123456789abcdef0/blocks",
                            method="GET", headers=dict(req.headers.items()))
        self.assertEqual(st, 403)
        self.assertEqual({k.lower(): v for k, v in hdrs.items()}["x-amzn-errortype"],
                         "InvalidSignatureException")
        self.assertIn(b'"message"', out)
        # Signed for one service, sent with a header changed: rejected too.
        body = b"Action=DescribeRegions&Version=2016-11-15"
        req = signed(self.ep.url, "ec2", "us-east-1", SOURCE["key"], SOURCE["secret"], body)
        h = dict(req.headers.items())
        h["X-Amz-Date"] = (datetime.datetime.utcnow() - datetime.timedelta(seconds=5)).strftime(
            "%Y%m%dT%H%M%SZ")
        st, _, out = raw(self.ep.url + "/", body=body, headers=h)
        self.assertEqual(st, 403, out)

    def test_get_query_string_form(self):
        # EC2 also takes the parameters in a signed GET query string.
        url = self.ep.url + "/?Action=DescribeRegions&RegionName.1=us-west-2&Version=2016-11-15"
        req = AWSRequest(method="GET", url=url)
        SigV4Auth(Credentials(SOURCE["key"], SOURCE["secret"]), "ec2", "us-east-1").add_auth(req)
        st, _, out = raw(url, method="GET", headers=dict(req.headers.items()))
        self.assertEqual(st, 200, out)
        ns = "{http://ec2.amazonaws.com/doc/2016-11-15/}"
        names = [e.text for e in ET.fromstring(out).iter(ns + "regionName")]
        self.assertEqual(names, ["us-west-2"])
        # A value changed after signing: rejected.
        bad = url.replace("us-west-2", "us-east-1")
        st, _, out = raw(bad, method="GET", headers=dict(req.headers.items()))
        self.assertEqual(st, 403, out)

    def test_control_bad_input(self):
        base = self.ep.url + "/_pallet/"
        st, _, out = raw(base + "faults", body=b"{not json")
        self.assertEqual(st, 400, out)
        st, _, out = raw(base + "volumes/vol-0123456789abcdef0/write", body=b"{}")
        self.assertEqual(st, 404, out)
        st, _, out = raw(base + "nope", method="GET")
        self.assertEqual(st, 404, out)
        st, _, out = raw(self.ep.url + "/", body=b"\xff\x00garbage",
                         headers={"Authorization": "AWS4-HMAC-SHA256 nonsense"})
        self.assertIn(st, (401, 403))
        self.assertEqual(self.ep.control("GET", "health"), {"ok": True})

    def test_unsigned_and_expired(self):
        st, _, out = raw(self.ep.url + "/", body=b"Action=DescribeRegions&Version=2016-11-15",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 401)
        self.assertIn(b"AuthFailure", out)
        body = b"Action=DescribeRegions&Version=2016-11-15"
        req = AWSRequest(method="POST", url=self.ep.url + "/", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        signer = SigV4Auth(Credentials(SOURCE["key"], SOURCE["secret"]), "ec2", "us-east-1")
        old = datetime.datetime.utcnow() - datetime.timedelta(hours=1)
        req.context["timestamp"] = old.strftime("%Y%m%dT%H%M%SZ")
        # Sign "an hour ago" by hand: botocore stamps the current time in add_auth.
        req.headers["X-Amz-Date"] = req.context["timestamp"]
        req.headers["host"] = self.ep.url.split("//")[1]
        cr = signer.canonical_request(req)
        sig = signer.signature(signer.string_to_sign(req, cr), req)
        req.headers["Authorization"] = (
            "AWS4-HMAC-SHA256 Credential=%s/%s/us-east-1/ec2/aws4_request, "
            "SignedHeaders=%s, Signature=%s" % (SOURCE["key"], req.context["timestamp"][:8],
                                                signer.signed_headers(
                                                    signer.headers_to_sign(req)), sig))
        st, _, out = raw(self.ep.url + "/", body=body, headers=dict(req.headers.items()))
        self.assertEqual(st, 400, out)
        self.assertIn(b"RequestExpired", out)

    def test_rejections_logged(self):
        self.ep.control("POST", "calls/reset")
        self.err("ec2", "describe_vpcs", secret="nope")
        calls = self.ep.calls(action="DescribeVpcs")
        self.assertEqual(calls["count"], 1)
        self.assertEqual(calls["calls"][0]["outcome"], "SignatureDoesNotMatch")
        self.assertEqual(calls["calls"][0]["account"], None)

    def test_unknown_parameter_and_action(self):
        c = self.ep.client("ec2")
        body = b"Action=DescribeRegions&Version=2016-11-15&Bogus=1"
        req = signed(self.ep.url, "ec2", "us-east-1", SOURCE["key"], SOURCE["secret"], body)
        st, _, out = raw(self.ep.url + "/", body=body, headers=dict(req.headers.items()))
        self.assertEqual(st, 400)
        self.assertIn(b"UnknownParameter", out)
        body = b"Action=RunInstances&Version=2016-11-15&MinCount=1&MaxCount=1"
        req = signed(self.ep.url, "ec2", "us-east-1", SOURCE["key"], SOURCE["secret"], body)
        st, _, out = raw(self.ep.url + "/", body=body, headers=dict(req.headers.items()))
        self.assertEqual(st, 400)
        self.assertIn(b"InvalidAction", out)
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            c.describe_instances(DryRun=True)
        self.assertEqual(cm.exception.response["Error"]["Code"], "DryRunOperation")


class StartupTest(unittest.TestCase):
    def test_starts_fast_and_stops_on_sigterm(self):
        import tempfile
        from endpoint_fixture import Endpoint
        with tempfile.TemporaryDirectory() as tmp:
            pf = tmp + "/port"
            ep = Endpoint(("--port-file", pf), None, tmp)
            try:
                # Budget is 2 s on an idle machine; allow for a loaded CI box.
                self.assertLess(ep.startup_seconds, 6.0)
                with open(pf) as f:
                    self.assertEqual(int(f.read()), ep.port)
                self.assertEqual(ep.control("GET", "health"), {"ok": True})
            finally:
                rc = ep.stop()
            self.assertEqual(rc, 0)


if __name__ == "__main__":
    unittest.main()
