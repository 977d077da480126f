# SPDX-License-Identifier: Apache-2.0
"""Credential services of the local endpoint: STS AssumeRole (SigV4-signed,
checked like every other call) and AssumeRoleWithWebIdentity (unsigned, the
token is the proof), EC2 instance metadata (IMDSv2: PUT a token, GET the
role, GET its credentials), the container credentials endpoint (EKS Pod
Identity / ECS: an Authorization header) and the SSO portal's
GetRoleCredentials.  Every credential it hands out is a temporary key
(ASIA...) with a session token and an expiry that the endpoint then
enforces on every signed call."""

import base64
import json
import secrets
import threading
import time

from pallet_awsproto import ApiError, iso

ROLE_DEFAULTS = [
    # name, trusts (account ids), web identity allowed, external id
    ("pallet-migrator", ["111111111111", "222222222222"], False, None),
    ("pallet-external", ["111111111111", "222222222222"], False, "pallet-ext-0001"),
    ("pallet-denied", [], False, None),
    ("pallet-irsa", [], True, None),
    ("pallet-instance", [], False, None),
]
SSO_TOKEN = "pallet-sso-access-token-0001"
CONTAINER_TOKEN = "pallet-pod-identity-token-0001"


class Creds:
    def __init__(self, world):
        self.world = world
        self.lock = threading.Lock()
        self.roles = {}
        for acct in ("111111111111", "222222222222"):
            for name, trust, web, ext in ROLE_DEFAULTS:
                arn = "arn:aws:iam::%s:role/%s" % (acct, name)
                self.roles[arn] = {"account": acct, "name": name, "trust": trust,
                                   "web": web, "externalId": ext}
        self.imds_tokens = {}
        # Test knobs (POST /_pallet/credentials): what IMDS and the
        # container endpoint answer.
        self.cfg = {"imdsRole": "arn:aws:iam::111111111111:role/pallet-instance",
                    "imdsMode": "ok", "containerRole": "arn:aws:iam::111111111111:role/pallet-migrator",
                    "containerToken": CONTAINER_TOKEN, "containerMode": "ok",
                    "duration": 3600, "ssoToken": SSO_TOKEN}

    def configure(self, req):
        for k, v in req.items():
            if k not in self.cfg:
                raise ValueError("unknown credentials setting %r (known: %s)"
                                 % (k, ", ".join(sorted(self.cfg))))
            self.cfg[k] = v
        return dict(self.cfg)

    def expire(self, key):
        with self.world.lock:
            acct = self.world.keys.get(key)
            if acct is None or "expires" not in acct:
                raise ApiError("NotFound", "no temporary key %s" % key, 404)
            acct["expires"] = int(time.time()) - 1
        return {"accessKeyId": key, "expired": True}

    # ------------------------------------------------------------ issuing

    def issue(self, role_arn, session, duration):
        """A temporary key for role_arn, registered so that signed calls
        with it authenticate (as the role's account) until it expires."""
        role = self.roles[role_arn]
        key = "ASIA" + secrets.token_hex(8).upper()
        secret = secrets.token_urlsafe(30)
        token = "IQoJpallet" + secrets.token_urlsafe(600)
        expires = int(time.time()) + int(duration)
        acct = dict(self.world.accounts[role["account"]])
        acct.update(accessKeyId=key, secretAccessKey=secret, sessionToken=token,
                    expires=expires,
                    arn="arn:aws:sts::%s:assumed-role/%s/%s" % (role["account"], role["name"],
                                                                 session))
        with self.world.lock:
            self.world.keys[key] = acct
        return {"AccessKeyId": key, "SecretAccessKey": secret, "SessionToken": token,
                "Expiration": expires}

    # ------------------------------------------------------------ STS

    def check_session(self, account, headers):
        """For a temporary key: the session token must be sent and valid."""
        tok = account.get("sessionToken")
        if tok is None:
            return
        if headers.get("x-amz-security-token") != tok:
            raise ApiError("InvalidClientTokenId",
                           "The security token included in the request is invalid.", 403)
        if time.time() >= account["expires"]:
            raise ApiError("ExpiredToken", "The security token included in the request is "
                           "expired", 400)

    def duration(self, data):
        d = int(data.get("DurationSeconds") or self.cfg["duration"])
        if not 900 <= d <= 43200:
            raise ApiError("ValidationError", "1 validation error detected: Value '%d' at "
                           "'durationSeconds' failed to satisfy constraint: Member must have "
                           "value between 900 and 43200" % d)
        return d

    def role(self, arn):
        r = self.roles.get(arn)
        if r is None:
            raise ApiError("AccessDenied", "Not authorized to perform sts:AssumeRole on %s "
                           "(no such role)" % arn, 403)
        return r

    def assume_role(self, caller, data):
        arn = data["RoleArn"]
        r = self.role(arn)
        if caller["id"] not in r["trust"]:
            raise ApiError("AccessDenied", "User: %s is not authorized to perform: "
                           "sts:AssumeRole on resource: %s"
                           % (caller.get("arn") or "arn:aws:iam::%s:user/%s"
                              % (caller["id"], caller["name"]), arn), 403)
        if r["externalId"] and data.get("ExternalId") != r["externalId"]:
            raise ApiError("AccessDenied", "User is not authorized to perform: sts:AssumeRole "
                           "on resource: %s (ExternalId does not match)" % arn, 403)
        if data.get("SerialNumber") or data.get("TokenCode"):
            raise ApiError("AccessDenied", "MFA is not configured for this role", 403)
        return self.result(arn, data["RoleSessionName"], self.duration(data))

    def assume_role_web_identity(self, data):
        arn = data["RoleArn"]
        tok = data["WebIdentityToken"]
        try:
            payload = json.loads(base64.urlsafe_b64decode(tok.split(".")[1] + "=="))
        except (IndexError, ValueError):
            raise ApiError("InvalidIdentityToken", "Couldn't retrieve verification key from "
                           "your identity provider (not a JWT)")
        if payload.get("aud") != "sts.amazonaws.com" or not payload.get("sub"):
            raise ApiError("InvalidIdentityToken", "Incorrect token audience")
        if payload.get("exp", 0) <= time.time():
            raise ApiError("ExpiredTokenException", "Token is expired")
        r = self.role(arn)
        if not r["web"]:
            raise ApiError("AccessDenied", "Not authorized to perform "
                           "sts:AssumeRoleWithWebIdentity", 403)
        out = self.result(arn, data["RoleSessionName"], self.duration(data))
        out["SubjectFromWebIdentityToken"] = payload["sub"]
        out["Audience"] = payload["aud"]
        return out

    def result(self, arn, session, duration):
        c = self.issue(arn, session, duration)
        c["Expiration"] = iso(c["Expiration"])
        r = self.roles[arn]
        return {"Credentials": c,
                "AssumedRoleUser": {"AssumedRoleId": "AROAPALLET%s:%s" % (r["name"].upper()[:8],
                                                                          session),
                                    "Arn": "arn:aws:sts::%s:assumed-role/%s/%s"
                                    % (r["account"], r["name"], session)},
                "PackedPolicySize": 0}

    # ------------------------------------------------------------ plain HTTP

    def http_creds(self, role_arn, session):
        c = self.issue(role_arn, session, self.cfg["duration"])
        return {"Code": "Success", "LastUpdated": iso(time.time()), "Type": "AWS-HMAC",
                "AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
                "Token": c["SessionToken"], "Expiration": iso(c["Expiration"])}

    def mode_body(self, mode, body):
        if mode == "malformed":
            return 200, b'{"AccessKeyId": "ASIA', "application/json"
        if mode == "expired":
            body["Expiration"] = iso(time.time() - 60)
        return 200, json.dumps(body).encode(), "application/json"

    def imds(self, method, path, headers):
        """(status, body, content type)."""
        mode = self.cfg["imdsMode"]
        if mode == "down":
            return 503, b"", "text/plain"
        if path == "/latest/api/token":
            if method != "PUT":
                return 405, b"", "text/plain"
            ttl = headers.get("x-aws-ec2-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return 400, b"", "text/plain"
            tok = secrets.token_urlsafe(40)
            with self.lock:
                self.imds_tokens[tok] = time.time() + int(ttl)
            return 200, tok.encode(), "text/plain"
        tok = headers.get("x-aws-ec2-metadata-token")
        with self.lock:
            ok = tok is not None and self.imds_tokens.get(tok, 0) > time.time()
        if not ok:  # IMDSv2 only (HttpTokens=required)
            return 401, b"", "text/plain"
        base = "/latest/meta-data/iam/security-credentials/"
        role = self.cfg["imdsRole"]
        name = role.rsplit("/", 1)[1] if role else None
        if path == base:
            return (200, name.encode(), "text/plain") if name else (404, b"", "text/plain")
        if name and path == base + name:
            return self.mode_body(mode, self.http_creds(role, "i-0pallet"))
        return 404, b"", "text/plain"

    def container(self, headers):
        mode = self.cfg["containerMode"]
        want = self.cfg["containerToken"]
        if want and headers.get("authorization") != want:
            return 401, b'{"Message":"invalid authorization token"}', "application/json"
        if mode == "denied":
            return 403, b'{"Message":"no Pod Identity association"}', "application/json"
        body = self.http_creds(self.cfg["containerRole"], "eks-pod-identity")
        del body["Code"], body["LastUpdated"], body["Type"]
        body["AccountId"] = self.roles[self.cfg["containerRole"]]["account"]
        return self.mode_body(mode, body)

    def sso(self, query, headers):
        if headers.get("x-amz-sso_bearer_token") != self.cfg["ssoToken"]:
            return (401, json.dumps({"message": "Session token not found or invalid"}).encode(),
                    "application/json", {"x-amzn-ErrorType": "UnauthorizedException"})
        arn = "arn:aws:iam::%s:role/%s" % (query.get("account_id"), query.get("role_name"))
        if arn not in self.roles or self.roles[arn]["name"] == "pallet-denied":
            return (403, json.dumps({"message": "No access"}).encode(), "application/json",
                    {"x-amzn-ErrorType": "ForbiddenException"})
        c = self.issue(arn, "sso", self.cfg["duration"])
        body = {"roleCredentials": {"accessKeyId": c["AccessKeyId"],
                                    "secretAccessKey": c["SecretAccessKey"],
                                    "sessionToken": c["SessionToken"],
                                    "expiration": c["Expiration"] * 1000}}
        return 200, json.dumps(body).encode(), "application/json", {}
