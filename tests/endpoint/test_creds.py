#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The endpoint's credential services, checked by Debian's /usr/bin/aws:
STS AssumeRole (signed) and AssumeRoleWithWebIdentity (unsigned), IMDSv2,
the container credentials endpoint and SSO GetRoleCredentials; and the
temporary keys they hand out working (and expiring) on signed calls."""

import base64
import json
import time
import urllib.request

from endpoint_fixture import EndpointTest, SOURCE, TARGET

MIGRATOR = "arn:aws:iam::111111111111:role/pallet-migrator"


def jwt(sub="system:serviceaccount:pallet:migrator", aud="sts.amazonaws.com", exp=None):
    def b64(o):
        return base64.urlsafe_b64encode(json.dumps(o).encode()).decode().rstrip("=")
    return "%s.%s.c2ln" % (b64({"alg": "RS256"}), b64(
        {"sub": sub, "aud": aud, "exp": exp or int(time.time()) + 3600}))


def temp(creds):
    return {"key": creds["AccessKeyId"], "secret": creds["SecretAccessKey"],
            "token": creds["SessionToken"]}


class CredsTest(EndpointTest):
    seeded = False

    def setUp(self):
        self.ep.control("POST", "credentials", {
            "imdsMode": "ok", "containerMode": "ok", "duration": 3600,
            "imdsRole": "arn:aws:iam::111111111111:role/pallet-instance"})

    def err(self, *args, **kw):
        r = self.ep.aws(*args, check=False, **kw)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        return r.stderr

    def test_assume_role(self):
        out = self.ep.aws("sts", "assume-role", "--role-arn", MIGRATOR,
                          "--role-session-name", "t1", who=TARGET)
        c = out["Credentials"]
        self.assertTrue(c["AccessKeyId"].startswith("ASIA"))
        self.assertEqual(out["AssumedRoleUser"]["Arn"],
                         "arn:aws:sts::111111111111:assumed-role/pallet-migrator/t1")
        me = self.ep.aws("sts", "get-caller-identity", who=temp(c))
        self.assertEqual(me["Account"], "111111111111")
        self.assertIn("assumed-role/pallet-migrator/t1", me["Arn"])
        # The session token is part of the key: without it the key is refused.
        self.assertIn("InvalidClientTokenId",
                      self.err("sts", "get-caller-identity", who=dict(temp(c), token=None)))
        # A wrong secret fails the (real) signature check.
        self.assertIn("SignatureDoesNotMatch", self.err(
            "sts", "assume-role", "--role-arn", MIGRATOR, "--role-session-name", "xx",
            who=dict(SOURCE, secret="wrong")))

    def test_assume_role_refused(self):
        self.assertIn("AccessDenied", self.err(
            "sts", "assume-role", "--role-arn", "arn:aws:iam::111111111111:role/pallet-denied",
            "--role-session-name", "xx"))
        ext = "arn:aws:iam::222222222222:role/pallet-external"
        self.assertIn("ExternalId", self.err("sts", "assume-role", "--role-arn", ext,
                                             "--role-session-name", "xx"))
        out = self.ep.aws("sts", "assume-role", "--role-arn", ext, "--role-session-name", "xx",
                          "--external-id", "pallet-ext-0001")
        self.assertIn("Credentials", out)

    def test_expired_token(self):
        # Issue a key, then make the endpoint's clock pass its expiry.
        out = self.ep.aws("sts", "assume-role", "--role-arn", MIGRATOR,
                          "--role-session-name", "exp", "--duration-seconds", "900")
        c = temp(out["Credentials"])
        self.ep.control("POST", "credentials/expire", {"accessKeyId": c["key"]})
        self.assertIn("ExpiredToken", self.err("sts", "get-caller-identity", who=c))

    def test_web_identity(self):
        irsa = "arn:aws:iam::111111111111:role/pallet-irsa"
        out = self.ep.aws("sts", "assume-role-with-web-identity", "--role-arn", irsa,
                          "--role-session-name", "pod", "--web-identity-token", jwt(),
                          who=None)
        self.assertEqual(out["SubjectFromWebIdentityToken"],
                         "system:serviceaccount:pallet:migrator")
        calls = self.ep.calls(action="AssumeRoleWithWebIdentity")["calls"]
        self.assertTrue(calls and calls[-1]["account"] is None, calls)  # unsigned
        me = self.ep.aws("sts", "get-caller-identity", who=temp(out["Credentials"]))
        self.assertIn("assumed-role/pallet-irsa/pod", me["Arn"])
        for tok, code in ((jwt(aud="other"), "InvalidIdentityToken"),
                          ("not-a-jwt", "InvalidIdentityToken"),
                          (jwt(exp=int(time.time()) - 10), "ExpiredTokenException")):
            self.assertIn(code, self.err("sts", "assume-role-with-web-identity", "--role-arn",
                                         irsa, "--role-session-name", "pod",
                                         "--web-identity-token", tok, who=None))
        self.assertIn("AccessDenied", self.err(
            "sts", "assume-role-with-web-identity", "--role-arn", MIGRATOR,
            "--role-session-name", "pod", "--web-identity-token", jwt(), who=None))

    def test_imds(self):
        env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": self.ep.url + "/"}
        me = self.ep.aws("sts", "get-caller-identity", who=None, extra_env=env)
        self.assertIn("assumed-role/pallet-instance/", me["Arn"])
        # IMDSv2 only: a GET without a session token is refused.
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(self.ep.url + "/latest/meta-data/iam/security-credentials/")
        self.assertEqual(e.exception.code, 401)
        self.ep.control("POST", "credentials", {"imdsRole": None})
        self.assertIn("Unable to locate credentials",
                      self.err("sts", "get-caller-identity", who=None, extra_env=env))

    def test_container(self):
        env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": self.ep.url + "/v1/credentials",
               "AWS_CONTAINER_AUTHORIZATION_TOKEN": "pallet-pod-identity-token-0001"}
        me = self.ep.aws("sts", "get-caller-identity", who=None, extra_env=env)
        self.assertIn("assumed-role/pallet-migrator/eks-pod-identity", me["Arn"])
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "wrong"
        self.err("sts", "get-caller-identity", who=None, extra_env=env)

    def test_sso(self):
        out = self.ep.aws("sso", "get-role-credentials", "--access-token",
                          "pallet-sso-access-token-0001", "--role-name", "pallet-migrator",
                          "--account-id", "111111111111", who=None)
        rc = out["roleCredentials"]
        self.assertGreater(rc["expiration"], time.time() * 1000)
        me = self.ep.aws("sts", "get-caller-identity", who={
            "key": rc["accessKeyId"], "secret": rc["secretAccessKey"],
            "token": rc["sessionToken"]})
        self.assertIn("assumed-role/pallet-migrator/sso", me["Arn"])
        self.assertIn("UnauthorizedException", self.err(
            "sso", "get-role-credentials", "--access-token", "bad", "--role-name",
            "pallet-migrator", "--account-id", "111111111111", who=None))
