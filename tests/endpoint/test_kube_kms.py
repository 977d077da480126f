#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The endpoint's Kubernetes PVC API (bearer token, label selectors,
limit/continue) and its KMS keys (seeded, implied by encrypted volumes,
control API), through botocore and plain HTTP."""

import json
import unittest
import urllib.error
import urllib.request

import botocore.exceptions

from endpoint_fixture import Endpoint, SOURCE, TARGET

TOKEN = "kube-test-token-0123"


def pvc(name, ns="vms", labels=None):
    return {"metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {"volumeMode": "Block"}}


class KubeKmsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        seed = {"kmsKeys": [{"arn": "arn:aws:kms:us-east-1:111111111111:key/seeded",
                             "state": "Disabled"}],
                "instances": [{"id": "i-0a0000000000000k1", "volumes": [
                    {"sizeGiB": 1, "encrypted": True,
                     "kmsKeyId": "arn:aws:kms:us-east-1:111111111111:key/from-volume"}]}],
                "kube": {"tokens": [TOKEN],
                         "pvcs": [pvc("p%02d" % i, labels={"vmID": "i-1", "n": str(i % 2)})
                                  for i in range(7)] + [pvc("other", "default", {"vmID": "i-1"})]}}
        cls.ep = Endpoint((), seed)

    @classmethod
    def tearDownClass(cls):
        assert cls.ep.stop() == 0

    def get(self, path, token=TOKEN):
        h = {"Authorization": "Bearer " + token} if token else {}
        req = urllib.request.Request(self.ep.url + path, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def test_auth(self):
        for tok in (None, "wrong"):
            st, body = self.get("/api/v1/namespaces/vms/persistentvolumeclaims", tok)
            self.assertEqual((st, body["kind"], body["reason"]), (401, "Status", "Unauthorized"))
        calls = self.ep.calls(service="kube")["calls"]
        self.assertFalse(any(TOKEN in json.dumps(c) or "wrong" in json.dumps(c) for c in calls),
                         "tokens are not logged")

    def test_list_select_page(self):
        names, cont, pages = [], None, 0
        while True:
            q = "?labelSelector=vmID%3Di-1,n%3D1&limit=2" + ("&continue=" + cont if cont else "")
            st, body = self.get("/api/v1/namespaces/vms/persistentvolumeclaims" + q)
            self.assertEqual(st, 200, body)
            self.assertEqual(body["kind"], "PersistentVolumeClaimList")
            names += [i["metadata"]["name"] for i in body["items"]]
            pages += 1
            cont = body["metadata"].get("continue")
            if not cont:
                break
        self.assertEqual(names, ["p01", "p03", "p05"])
        self.assertEqual(pages, 2)
        st, body = self.get("/api/v1/namespaces/vms/persistentvolumeclaims?continue=garbage")
        self.assertEqual(st, 400)
        st, body = self.get("/api/v1/namespaces/vms/persistentvolumeclaims/p00")
        self.assertEqual((st, body["metadata"]["name"]), (200, "p00"))
        st, _ = self.get("/api/v1/namespaces/vms/persistentvolumeclaims/nope")
        self.assertEqual(st, 404)

    def test_control_seeds_pvcs_and_tokens(self):
        self.ep.control("POST", "kube/tokens", {"tokens": ["second"]})
        self.ep.control("POST", "kube/pvcs", {"namespace": "ctl", "pvcs": [pvc("c1", ns=None)]})
        st, body = self.get("/api/v1/namespaces/ctl/persistentvolumeclaims", "second")
        self.assertEqual([i["metadata"]["name"] for i in body["items"]], ["c1"])

    def test_kms_keys(self):
        c = self.ep.client("kms")
        md = c.describe_key(KeyId="seeded")["KeyMetadata"]
        self.assertEqual(md["KeyState"], "Disabled")
        md = c.describe_key(KeyId="arn:aws:kms:us-east-1:111111111111:key/from-volume")
        self.assertEqual(md["KeyMetadata"]["KeyState"], "Enabled", "a volume's key exists")
        self.ep.control("POST", "kms/keys", {"keys": [
            {"arn": "arn:aws:kms:us-east-1:111111111111:key/from-volume",
             "state": "PendingDeletion"}]})
        md = c.describe_key(KeyId="from-volume")["KeyMetadata"]
        self.assertEqual((md["KeyState"], md["PendingDeletionWindowInDays"]), ("PendingDeletion", 7))
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.ep.client("kms", TARGET).describe_key(
                KeyId="arn:aws:kms:us-east-1:111111111111:key/seeded")
        self.assertEqual(e.exception.response["Error"]["Code"], "AccessDeniedException")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.ep.client("kms", SOURCE, secret="wrong-secret").describe_key(KeyId="seeded")
        self.assertEqual(e.exception.response["Error"]["Code"], "InvalidSignatureException")
        keys = {k["arn"]: k["state"] for k in self.ep.state()["kmsKeys"]}
        self.assertEqual(keys["arn:aws:kms:us-east-1:111111111111:key/seeded"], "Disabled")


if __name__ == "__main__":
    unittest.main(verbosity=2)
