# SPDX-License-Identifier: Apache-2.0
"""KMS for the local endpoint: DescribeKey (JSON 1.1 protocol,
X-Amz-Target TrentService.DescribeKey), on keys seeded per account and
region.  Request members are checked against botocore's kms model."""

import json
import time
import uuid

import pallet_awsproto as proto
from pallet_awsproto import ApiError

STATES = ("Creating", "Enabled", "Disabled", "PendingDeletion", "PendingImport",
          "PendingReplicaDeletion", "Unavailable", "Updating")


def parse_arn(text):
    """'arn:aws:kms:REGION:ACCOUNT:key/ID' -> (region, account, 'key'|'alias', rest)."""
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "kms":
        return None
    kind, _, rest = parts[5].partition("/")
    if kind not in ("key", "alias") or not rest:
        return None
    return parts[3], parts[4], kind, rest


class Kms:
    """Keys: {(account, region, key id): key}."""

    def __init__(self, world):
        self.world = world
        self.keys = {}

    def add(self, spec, account=None, region=None, replace=True):
        spec = dict(spec)
        if spec.get("arn"):
            p = parse_arn(spec["arn"])
            if not p or p[2] != "key":
                raise ValueError("kmsKeys: %r is not a key ARN "
                                 "(arn:aws:kms:REGION:ACCOUNT:key/ID)" % spec["arn"])
            region, account, _, kid = p
            spec["id"] = kid
        account = str(spec.get("account", account or "111111111111"))
        region = spec.get("region", region or "us-east-1")
        kid = spec.get("id") or str(uuid.uuid4())
        if spec.get("state", "Enabled") not in STATES:
            raise ValueError("kmsKeys: state %r is not one of %s" % (spec["state"], STATES))
        k = (account, region, kid)
        if k in self.keys and not replace:
            return self.keys[k]
        key = {"id": kid, "account": account, "region": region,
               "state": spec.get("state", "Enabled"),
               "aliases": list(spec.get("aliases", [])),
               "sharedWith": [str(a) for a in spec.get("sharedWith", [])],
               "usage": spec.get("usage", "ENCRYPT_DECRYPT"),
               "spec": spec.get("spec", "SYMMETRIC_DEFAULT"),
               "description": spec.get("description", ""),
               "created": spec.get("created", time.time())}
        self.keys[k] = key
        return key

    def ensure(self, arn):
        """A volume encrypted with a key implies that key exists."""
        p = parse_arn(arn or "")
        if p and p[2] == "key":
            self.add({"id": p[3]}, p[1], p[0], replace=False)

    def arn(self, key):
        return "arn:aws:kms:%s:%s:key/%s" % (key["region"], key["account"], key["id"])

    def dump(self):
        return [dict(k, arn=self.arn(k)) for k in self.keys.values()]

    def find(self, account, region, key_id):
        not_found = ApiError("NotFoundException", "Key '%s' does not exist" % key_id)
        owner, kind, rest = account, "key", key_id
        if key_id.startswith("arn:"):
            p = parse_arn(key_id)
            if not p:
                raise ApiError("InvalidArnException", "Invalid arn %s" % key_id)
            kreg, owner, kind, rest = p
            if kreg != region:
                raise ApiError("NotFoundException", "Invalid arn %s: the key's region "
                               "%s is not %s" % (key_id, kreg, region))
        elif key_id.startswith("alias/"):
            kind, rest = "alias", key_id[len("alias/"):]
        if kind == "alias":
            name = "alias/" + rest
            key = next((k for k in self.keys.values() if k["account"] == owner
                        and k["region"] == region and name in k["aliases"]), None)
            if key is None:
                raise ApiError("NotFoundException", "Alias %s is not found."
                               % ("arn:aws:kms:%s:%s:%s" % (region, owner, name)))
        else:
            key = self.keys.get((owner, region, rest))
            if key is None:
                raise not_found
        if owner != account and account not in key["sharedWith"] and "*" not in key["sharedWith"]:
            raise ApiError("AccessDeniedException", "User: arn:aws:iam::%s:user/x is not "
                           "authorized to perform: kms:DescribeKey on resource: %s because "
                           "no resource-based policy allows the kms:DescribeKey action"
                           % (account, self.arn(key)))
        return key

    def describe_key(self, account, region, data):
        key = self.find(account, region, data["KeyId"])
        md = {"AWSAccountId": key["account"], "KeyId": key["id"], "Arn": self.arn(key),
              "CreationDate": key["created"], "Enabled": key["state"] == "Enabled",
              "Description": key["description"], "KeyUsage": key["usage"],
              "KeyState": key["state"], "Origin": "AWS_KMS", "KeyManager": "CUSTOMER",
              "CustomerMasterKeySpec": key["spec"], "KeySpec": key["spec"],
              "MultiRegion": False}
        if key["usage"] == "ENCRYPT_DECRYPT":
            md["EncryptionAlgorithms"] = ["SYMMETRIC_DEFAULT"]
        if key["state"] == "PendingDeletion":
            md["DeletionDate"] = key["created"] + 7 * 86400
            md["PendingDeletionWindowInDays"] = 7
        return {"KeyMetadata": md}


ACTIONS = {"DescribeKey": "describe_key"}


def handle(kms, account, region, target, body):
    """One JSON 1.1 request: (status, body bytes, content type, headers)."""
    prefix, _, action = (target or "").partition(".")
    if prefix != "TrentService" or not action:
        raise ApiError("UnknownOperationException", "X-Amz-Target %r is not a KMS "
                       "operation (TrentService.<Action>)" % target)
    model = proto.service_model("kms")
    if action not in model.operation_names:
        raise ApiError("UnknownOperationException", "%s is not a KMS operation" % action)
    if action not in ACTIONS:
        raise ApiError("UnknownOperationException", "KMS %s is not served here (served: %s)"
                       % (action, ", ".join(sorted(ACTIONS))))
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise ApiError("SerializationException", "the request body is not JSON")
    if not isinstance(data, dict):
        raise ApiError("SerializationException", "the request body must be a JSON object")
    shape = model.operation_model(action).input_shape
    for k in data:
        if k not in shape.members:
            raise ApiError("SerializationException", "unknown member %r of %s" % (k, shape.name))
    for k in shape.required_members:
        if k not in data or not isinstance(data[k], str) or not data[k]:
            raise ApiError("ValidationException", "1 validation error detected: Value at "
                           "'%s' failed to satisfy constraint: Member must not be null" % k)
    out = getattr(kms, ACTIONS[action])(account, region, data)
    return 200, json.dumps(out).encode(), "application/x-amz-json-1.1", {}


def error_body(e, rid):
    return (e.status, json.dumps({"__type": e.code, "message": e.message}).encode(),
            "application/x-amz-json-1.1", {"x-amzn-RequestId": rid})
