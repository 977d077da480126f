#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""pallet-endpoint: a local EC2 + EBS direct + STS compatible endpoint.

One HTTP port on 127.0.0.1 serves all three services, routed by the SigV4
credential scope.  Every request's signature is recomputed with botocore's
signer.  See README.md next to this file for flags, seed format and the
/_pallet/ control API.
"""

import argparse
import base64
import calendar
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pallet_awsproto as proto  # noqa: E402
import pallet_ec2  # noqa: E402
import pallet_kms  # noqa: E402
import pallet_creds  # noqa: E402
from pallet_kube import Kube  # noqa: E402
from pallet_awsproto import ApiError  # noqa: E402
from pallet_world import World, BLOCK, GIB, read_block  # noqa: E402

EC2_STATUS = {"AuthFailure": 401, "SignatureDoesNotMatch": 403, "UnauthorizedOperation": 403,
              "RequestLimitExceeded": 503, "InternalError": 500, "ServiceUnavailable": 503,
              "DryRunOperation": 412, "RequestExpired": 400}
FAULT_KINDS = ("reset", "throttle", "error", "bad_checksum")
XML = "text/xml;charset=UTF-8"
PAGE_RID = b"00000000-pallet-page-cache-requestid"


# ------------------------------------------------------------------ faults

class Faults:
    """Per-action fault rules, drawn from one seeded RNG so a run repeats."""

    def __init__(self, seed):
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.rules = {}

    def set(self, rules, replace=False):
        with self.lock:
            if replace:
                self.rules = {}
            for k, v in rules.items():
                if v is None:
                    self.rules.pop(k, None)
                else:
                    self.rules[k] = dict(v)

    def rule(self, service, action):
        for k in ("%s:%s" % (service, action), action, "%s:*" % service, "*"):
            if k in self.rules:
                return k, self.rules[k]
        return None, None

    def draw(self, service, action):
        """Which faults hit this call: {"latency_ms": n, kind: True...}."""
        with self.lock:
            _, r = self.rule(service, action)
            if not r:
                return {}
            hit = {"latency_ms": float(r.get("latency_ms", 0)), "code": r.get("code")}
            for kind in FAULT_KINDS:
                n = r.get(kind + "_count", 0)
                if n > 0:
                    r[kind + "_count"] = n - 1
                    hit[kind] = True
                elif r.get(kind, 0) > 0 and self.rng.random() < float(r[kind]):
                    hit[kind] = True
            return hit


def parse_fault_flag(text):
    """'ec2:CreateSnapshot=throttle:0.5,latency_ms:100' -> (key, rule)."""
    key, _, spec = text.partition("=")
    if not key or not spec:
        raise ValueError("--fault %r: expected ACTION=kind:value[,kind:value]" % text)
    rule = {}
    for part in spec.split(","):
        k, _, v = part.partition(":")
        if k not in ("latency_ms",) + FAULT_KINDS + tuple(x + "_count" for x in FAULT_KINDS) \
                and k != "code":
            raise ValueError("--fault %r: unknown kind %r" % (text, k))
        rule[k] = v if k == "code" else float(v) if "." in v or k == "latency_ms" else int(v)
    return key, rule


# ------------------------------------------------------------------ call log

class CallLog:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.calls = []
        self.f = open(path, "a", buffering=1) if path else None
        if path:
            os.chmod(path, 0o600)

    def add(self, entry):
        with self.lock:
            self.calls.append(entry)
            if self.f:
                self.f.write(json.dumps(entry) + "\n")

    def reset(self):
        with self.lock:
            self.calls = []

    def query(self, q):
        with self.lock:
            out = [c for c in self.calls
                   if all(str(c.get(k)) == v for k, v in q.items() if k in c)]
        counts = {}
        for c in out:
            for k in ("action", "outcome", "account", "region", "service"):
                counts.setdefault(k, {})
                counts[k][c[k]] = counts[k].get(c[k], 0) + 1
        return {"count": len(out), "counts": counts, "calls": out}


# ------------------------------------------------------------------ server

class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AmazonEC2"
    sys_version = ""

    def log_message(self, fmt, *args):
        if self.server.app.verbose:
            sys.stderr.write("pallet-endpoint: " + (fmt % args) + "\n")

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_PUT(self):
        self.handle_any()

    def do_DELETE(self):
        self.handle_any()

    def do_HEAD(self):
        self.handle_any()

    # -------------------------------------------------------------- plumbing

    def send(self, status, body, ctype, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reset_connection(self):
        """Close with RST and no response, like a dropped connection."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    def handle_any(self):
        app = self.server.app
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return self.send(400, b"bad Content-Length\n", "text/plain")
        body = self.rfile.read(n) if n > 0 else b""
        path, _, query = self.path.partition("?")
        if path.startswith("/_pallet/") or path == "/_pallet":
            return self.control(path, query, body)
        if path.startswith("/api/") or path == "/api":
            return app.handle_kube(self, path, query)
        if app.handle_credentials(self, path, query):
            return
        app.handle_aws(self, path, query, body)

    # -------------------------------------------------------------- control

    def control(self, path, query, body):
        app = self.server.app
        if self.client_address[0] not in ("127.0.0.1", "::1"):
            return self.send(403, b'{"error":"control API is localhost only"}', "application/json")
        try:
            req = json.loads(body) if body else {}
            status, out = app.control(self.command, path, dict(urllib.parse.parse_qsl(query)), req)
        except ApiError as e:
            status, out = e.status, {"error": e.code, "message": e.message}
        except (ValueError, KeyError, TypeError) as e:
            status, out = 400, {"error": "BadRequest", "message": "%s: %s" % (
                type(e).__name__, e)}
        except Exception as e:  # never die on a bad control call
            status, out = 500, {"error": "InternalError", "message": "%s: %s" % (
                type(e).__name__, e)}
        self.send(status, json.dumps(out, default=list).encode() + b"\n", "application/json")


class App:
    def __init__(self, args):
        self.args = args
        self.verbose = args.verbose
        self.own_state_dir = not args.state_dir
        self.state_dir = args.state_dir or tempfile.mkdtemp(prefix="pallet-endpoint-")
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        delays = {}
        for k in ("start", "stop", "snapshot", "volume"):
            v = getattr(args, k + "_delay")
            if v is not None:
                delays[k] = v
        self.world = World(self.state_dir, delays)
        if args.seed:
            with open(args.seed) as f:
                self.seed_spec = json.load(f)
            self.world.seed(self.seed_spec)
            if delays:
                self.world.delays.update(delays)
        if args.synthetic_instances:
            self.world.synthetic(args.synthetic_instances, args.synthetic_account,
                                 args.synthetic_region)
        self.faults = Faults(args.fault_seed)
        for f in args.fault or []:
            k, r = parse_fault_flag(f)
            self.faults.set({k: r})
        self.kube = Kube()
        self.creds = pallet_creds.Creds(self.world)
        if args.seed:
            self.kube.seed(self.seed_spec.get("kube", {}))
        self.log = CallLog(args.call_log)
        self.skew = args.max_clock_skew
        self.page_cache = {}

    # -------------------------------------------------------------- credentials

    def handle_credentials(self, h, path, query):
        """IMDS, the container endpoint and SSO (plain HTTP, unsigned)."""
        headers = {k.lower(): v for k, v in h.headers.items()}
        if path.startswith("/latest/"):
            status, body, ctype = self.creds.imds(h.command, path, headers)
            extra = {}
        elif path in ("/v1/credentials", "/v2/credentials", "/pod-identity/credentials"):
            status, body, ctype = self.creds.container(headers)
            extra = {}
        elif path == "/federation/credentials" and h.command == "GET":
            status, body, ctype, extra = self.creds.sso(
                dict(urllib.parse.parse_qsl(query)), headers)
        else:
            return False
        self.log.add({"time": round(time.time(), 3), "service": "credentials",
                      "action": path, "account": None, "region": None, "status": status,
                      "outcome": "ok" if status == 200 else "error"})
        h.send(status, body, ctype, extra)
        return True

    # -------------------------------------------------------------- Kubernetes

    def handle_kube(self, h, path, query):
        t0 = time.time()
        headers = {k.lower(): v for k, v in h.headers.items()}
        q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        entry = {"time": round(t0, 3), "requestId": str(uuid.uuid4()), "service": "kube",
                 "action": "GetPersistentVolumeClaim" if path.count("/") > 5
                 else "ListPersistentVolumeClaims", "account": None, "region": None,
                 "status": None, "outcome": None, "fault": None}
        try:
            status, out = self.kube.handle(h.command, path, q, headers)
        except Exception as e:  # never crash on bad input
            status, out = 500, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                "message": "pallet-endpoint bug: %s" % e,
                                "reason": "InternalError", "code": 500}
        entry.update(status=status, outcome="ok" if status == 200 else out.get("reason"))
        entry["latencyMs"] = round((time.time() - t0) * 1000, 2)
        self.log.add(entry)
        try:
            h.send(status, json.dumps(out).encode(), "application/json")
        except OSError:
            pass

    # -------------------------------------------------------------- AWS

    def handle_aws(self, h, path, query, body):
        t0 = time.time()
        rid = str(uuid.uuid4())
        headers = {k.lower(): v for k, v in h.headers.items()}
        entry = {"time": round(t0, 3), "requestId": rid, "service": None, "action": None,
                 "account": None, "region": None, "status": None, "outcome": None,
                 "fault": None}
        logged = False

        def log_entry():
            # Before the response goes out: a client that reads the call
            # log right after its call must find the call in it.
            entry["latencyMs"] = round((time.time() - t0) * 1000, 2)
            self.log.add(entry)
            return True
        auth = proto.parse_authorization(headers.get("authorization"))
        service = auth["service"] if auth else self.guess_service(path, body)
        entry["service"] = service
        entry["region"] = auth["region"] if auth else None
        params = {}
        if service in ("ec2", "sts"):
            params = proto.form_params(query, body, headers.get("content-type"))
            entry["action"] = params.get("Action")
        elif service == "ebs":
            entry["action"] = self.ebs_action(h.command, path)
        elif service == "kms":
            entry["action"] = headers.get("x-amz-target", "").partition(".")[2] or None
        try:
            if service not in ("ec2", "sts", "ebs", "kms"):
                raise ApiError("UnknownService",
                               "Service %r in the credential scope is not served here; "
                               "use ec2, ebs, sts or kms" % service, 400)
            if (service == "sts" and auth is None
                    and params.get("Action") == "AssumeRoleWithWebIdentity"):
                account = {"id": None}  # unsigned: the token is the proof
            else:
                account = self.authenticate(service, auth, h.command, h.path, headers, body)
            entry["account"] = account["id"]
            hit = self.faults.draw(service, entry["action"] or "")
            if hit.get("latency_ms"):
                time.sleep(hit["latency_ms"] / 1000.0)
            if hit.get("reset"):
                entry.update(status=0, outcome="reset", fault="reset")
                h.reset_connection()
                return
            if hit.get("throttle"):
                entry["fault"] = "throttle"
                err = self.throttle_error(service)
                err.code = hit.get("code") or err.code
                raise err
            if hit.get("error"):
                entry["fault"] = "error"
                raise ApiError({"ec2": "InternalError", "sts": "InternalFailure",
                                "ebs": "InternalServerException",
                                "kms": "KMSInternalException"}[service],
                               "An internal error has occurred (injected fault)", 500)
            if service == "ebs":
                status, out_body, ctype, extra = self.ebs(account, auth["region"], h.command,
                                                          path, query, rid, hit)
            elif service == "kms":
                with self.world.lock:
                    status, out_body, ctype, extra = pallet_kms.handle(
                        self.world.kms, account["id"], auth["region"],
                        headers.get("x-amz-target"), body)
                extra["x-amzn-RequestId"] = rid
            else:
                status, out_body, ctype, extra = self.query_api(
                    service, account, auth["region"] if auth else None, params, rid)
            entry.update(status=status, outcome="ok")
            logged = log_entry()
            h.send(status, out_body, ctype, extra)
        except ApiError as e:
            entry.update(status=e.status, outcome=e.code)
            status, out_body, ctype, extra = self.error_body(service, e, rid)
            logged = log_entry()
            h.send(status, out_body, ctype, extra)
        except (BrokenPipeError, ConnectionResetError):
            entry.update(outcome="client-gone")
        except Exception as e:  # never crash on bad input; say what happened
            entry.update(status=500, outcome="InternalError")
            err = ApiError("InternalError", "pallet-endpoint bug: %s: %s"
                           % (type(e).__name__, e), 500)
            status, out_body, ctype, extra = self.error_body(service, err, rid)
            try:
                h.send(status, out_body, ctype, extra)
            except OSError:
                pass
            if self.verbose:
                import traceback
                traceback.print_exc()
        finally:
            if not logged:
                log_entry()

    @staticmethod
    def guess_service(path, body):
        if path.startswith("/snapshots"):
            return "ebs"
        if b"GetCallerIdentity" in body or b"AssumeRoleWithWebIdentity" in body:
            return "sts"
        return "ec2"

    @staticmethod
    def ebs_action(method, path):
        if re.fullmatch(r"/snapshots/[^/]+/blocks", path):
            return "ListSnapshotBlocks"
        if re.fullmatch(r"/snapshots/[^/]+/blocks/[^/]+", path):
            return "GetSnapshotBlock"
        if re.fullmatch(r"/snapshots/[^/]+/changedblocks", path):
            return "ListChangedBlocks"
        return None

    def throttle_error(self, service):
        if service == "ec2":
            return ApiError("RequestLimitExceeded", "Request limit exceeded.", 503)
        if service == "sts":
            return ApiError("Throttling", "Rate exceeded", 400)
        if service == "kms":
            return ApiError("ThrottlingException", "Rate exceeded", 400)
        return ApiError("ThrottlingException", "Rate exceeded", 400,
                        reason="ACCOUNT_THROTTLED")

    def authenticate(self, service, auth, method, raw_path, headers, body):
        unknown = {"ec2": ("AuthFailure", "AWS was not able to validate the provided "
                           "access credentials", 401),
                   "sts": ("InvalidClientTokenId", "The security token included in the "
                           "request is invalid.", 403),
                   "ebs": ("UnrecognizedClientException", "The security token included "
                           "in the request is invalid.", 403),
                   "kms": ("UnrecognizedClientException", "The security token included "
                           "in the request is invalid.", 400)}[service]
        badsig = ("InvalidSignatureException" if service in ("ebs", "kms")
                  else "SignatureDoesNotMatch",
                  "The request signature we calculated does not match the signature you "
                  "provided. Check your AWS Secret Access Key and signing method. Consult "
                  "the service documentation for details.", 403)
        if auth is None:
            code = "AuthFailure" if service == "ec2" else "MissingAuthenticationToken"
            raise ApiError(code, "Request is missing Authentication Token: send a SigV4 "
                           "Authorization header", 401 if service == "ec2" else 403)
        with self.world.lock:
            account = self.world.account_for_key(auth["access_key"])
            if account is None:
                raise ApiError(*unknown)
            secret = account["secretAccessKey"]
            self.creds.check_session(account, headers)
            region_ok = auth["region"] in self.world.regions
        if service != "sts" and not region_ok:
            raise ApiError(unknown[0], "Credential should be scoped to a valid region, not '%s'"
                           % auth["region"], unknown[2])
        amz = headers.get("x-amz-date", "")
        if not amz.startswith(auth["date"]):
            raise ApiError(badsig[0], "Date in Credential scope does not match YYYYMMDD "
                           "from ISO-8601 version of date from HTTP", 403)
        try:
            ts = calendar.timegm(time.strptime(amz, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            raise ApiError(badsig[0], "X-Amz-Date %r is not in the form YYYYMMDD'T'HHMMSS'Z'"
                           % amz, 403)
        if abs(time.time() - ts) > self.skew:
            code = "RequestExpired" if service == "ec2" else badsig[0]
            raise ApiError(code, "Signature expired: %s is now earlier than %s or later than "
                           "the server time" % (amz, "15 minutes"),
                           400 if service == "ec2" else 403)
        sha = headers.get("x-amz-content-sha256")
        if sha and sha != "UNSIGNED-PAYLOAD" and sha != proto.sha256_hex(body):
            raise ApiError("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' "
                           "header does not match what was computed.", 400)
        want = proto.expected_signature(auth, secret, method, raw_path, headers, body)
        if not proto.signatures_equal(want, auth["signature"]):
            raise ApiError(*badsig)
        return account

    def error_body(self, service, e, rid):
        if service == "kms":
            return pallet_kms.error_body(e, rid)
        if service == "ebs":
            status = e.status
            body = {"message": e.message}
            if e.reason:
                body["Reason"] = e.reason
            return (status, json.dumps(body).encode(), "application/json",
                    {"x-amzn-ErrorType": e.code, "x-amzn-RequestId": rid})
        if service == "sts":
            return (e.status if e.status != 400 or e.code not in ("InternalFailure",) else 500,
                    proto.sts_error(e.code, e.message, rid, e.status < 500),
                    "text/xml", {"x-amzn-RequestId": rid})
        status = EC2_STATUS.get(e.code, e.status)
        return status, proto.ec2_error(e.code, e.message, rid), "text/xml;charset=UTF-8", {}

    def query_api(self, service, account, region, params, rid):
        if service == "sts":
            op, data = proto.parse_query("sts", params)
            if op.name == "AssumeRole":
                out = self.creds.assume_role(account, data)
            elif op.name == "AssumeRoleWithWebIdentity":
                out = self.creds.assume_role_web_identity(data)
            elif op.name != "GetCallerIdentity":
                raise ApiError("InvalidAction", "Only GetCallerIdentity, AssumeRole and "
                               "AssumeRoleWithWebIdentity are served here, not %s" % op.name)
            else:
                out = {"UserId": "AIDA" + hashlib.sha256(
                    account["id"].encode()).hexdigest()[:17].upper(),
                    "Account": account["id"],
                    "Arn": account.get("arn") or "arn:aws:iam::%s:user/%s" % (
                        account["id"], account["name"])}
            return 200, proto.sts_response(op, out, rid), "text/xml", {"x-amzn-RequestId": rid}
        token = None
        if params.get("Action") == "CopySnapshot" and "ClientToken" in params:
            params = dict(params)
            token = params.pop("ClientToken")  # accepted for idempotency (see README)
        op, data = proto.parse_query("ec2", params)
        fn = pallet_ec2.ACTIONS.get(op.name)
        if fn is None:
            raise ApiError("InvalidAction", "The action %s is not valid for this web service "
                           "(pallet-endpoint serves: %s)" % (op.name, ", ".join(
                               sorted(pallet_ec2.ACTIONS))))
        if token:
            data["ClientToken"] = token
        with self.world.lock:
            self.world.tick()
            if op.name == "DescribeInstances" and not data.get("DryRun"):
                # Whole pages are cached until any instance changes.
                key = (account["id"], region, json.dumps(data, sort_keys=True, default=str))
                hit = self.page_cache.get(key)
                if hit and hit[0] == self.world.instances_version:
                    return 200, hit[1].replace(PAGE_RID, rid.encode(), 1), XML, {}
            ctx = pallet_ec2.Ctx(self.world, account["id"], region, rid, op)
            if data.get("DryRun"):
                raise ApiError("DryRunOperation",
                               "Request would have succeeded, but DryRun flag is set.", 412)
            out = fn(ctx, data)
            if op.name == "DescribeInstances":
                body = proto.ec2_response(op, out, PAGE_RID.decode(), ctx.fragments)
                if len(self.page_cache) > 4096:
                    self.page_cache.clear()
                self.page_cache[key] = (self.world.instances_version, body)
                body = body.replace(PAGE_RID, rid.encode(), 1)
            else:
                body = proto.ec2_response(op, out, rid, ctx.fragments)
        return 200, body, XML, {}

    # -------------------------------------------------------------- EBS

    def ebs(self, account, region, method, path, query, rid, hit):
        q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        parts = [urllib.parse.unquote(p) for p in path.split("/")[1:]]
        action = self.ebs_action(method, path)
        if method != "GET" or action is None:
            raise ApiError("UnknownOperationException",
                           "%s %s is not an EBS direct API operation served here" % (method, path),
                           404)
        headers = {"x-amzn-RequestId": rid}
        with self.world.lock:
            self.world.tick()
            snap = self.ebs_snapshot(account, region, parts[1])
            if action == "GetSnapshotBlock":
                try:
                    index = int(parts[3])
                except ValueError:
                    raise ApiError("ValidationException", "Block index %r is not an integer"
                                   % parts[3], 400, "INVALID_BLOCK")
                if index < 0 or index >= snap["size"] * GIB // BLOCK:
                    raise ApiError("ValidationException", "Block index %d is outside snapshot "
                                   "%s" % (index, snap["id"]), 400, "INVALID_BLOCK")
                if not self.world.check_block_token(snap["id"], index, q.get("blockToken")):
                    raise ApiError("ValidationException", "The block token is not valid for "
                                   "block %d of snapshot %s" % (index, snap["id"]), 400,
                                   "INVALID_BLOCK_TOKEN")
                data_path = snap["data"]
            else:
                out = self.ebs_list(action, account, region, snap, q)
        if action != "GetSnapshotBlock":
            return 200, json.dumps(out).encode(), "application/json", headers
        data = read_block(data_path, index)
        digest = hashlib.sha256(data).digest()
        if hit.get("bad_checksum"):
            digest = hashlib.sha256(data + b"x").digest()
        headers.update({"x-amz-Data-Length": str(len(data)),
                        "x-amz-Checksum": base64.b64encode(digest).decode(),
                        "x-amz-Checksum-Algorithm": "SHA256"})
        return 200, data, "application/octet-stream", headers

    def ebs_snapshot(self, account, region, sid):
        s = self.world.snapshots.get(sid)
        if not s or not pallet_ec2.snap_visible(s, account["id"], region):
            raise ApiError("ResourceNotFoundException", "The snapshot %s does not exist." % sid,
                           404, "SNAPSHOT_NOT_FOUND")
        if s["state"] != "completed":
            raise ApiError("ValidationException", "The snapshot %s is %s, not completed; wait "
                           "for DescribeSnapshots to report completed" % (sid, s["state"]),
                           400, "INVALID_SNAPSHOT_ID")
        return s

    def ebs_list(self, action, account, region, snap, q):
        w = self.world
        try:
            maxr = int(q.get("maxResults", 10000))
            start = int(q.get("startingBlockIndex", 0))
        except ValueError:
            raise ApiError("ValidationException", "maxResults and startingBlockIndex must be "
                           "integers", 400, "INVALID_PARAMETER_VALUE")
        if not 100 <= maxr <= 10000:
            raise ApiError("ValidationException", "maxResults must be between 100 and 10000",
                           400, "INVALID_PARAMETER_VALUE")
        tok = q.get("pageToken")
        if tok:
            try:
                t = json.loads(base64.urlsafe_b64decode(tok.encode()))
                if t["s"] != snap["id"]:
                    raise ValueError()
                start = max(start, int(t["n"]))
            except Exception:
                raise ApiError("ValidationException", "The pagination token is not valid",
                               400, "INVALID_PAGE_TOKEN")
        first = None
        if action == "ListChangedBlocks" and q.get("firstSnapshotId"):
            first = self.ebs_snapshot(account, region, q["firstSnapshotId"])
        if action == "ListSnapshotBlocks":
            idx = [i for i in w.snapshot_blocks(snap) if i >= start]
        else:
            idx = [i for i in w.changed_blocks(first, snap) if i >= start]
        page, more = idx[:maxr], len(idx) > maxr
        out = {"ExpiryTime": time.time() + 7 * 86400, "VolumeSize": snap["size"],
               "BlockSize": BLOCK}
        if action == "ListSnapshotBlocks":
            out["Blocks"] = [{"BlockIndex": i, "BlockToken": w.block_token(snap["id"], i)}
                             for i in page]
        else:
            if first is not None:
                w.snapshot_blocks(first)
            w.snapshot_blocks(snap)
            blocks = []
            for i in page:
                b = {"BlockIndex": i}
                if first is not None and i in first["block_set"]:
                    b["FirstBlockToken"] = w.block_token(first["id"], i)
                if i in snap["block_set"]:
                    b["SecondBlockToken"] = w.block_token(snap["id"], i)
                blocks.append(b)
            out["ChangedBlocks"] = blocks
        if more:
            out["NextToken"] = base64.urlsafe_b64encode(json.dumps(
                {"s": snap["id"], "n": page[-1] + 1}).encode()).decode()
        return out

    # -------------------------------------------------------------- control

    def control(self, method, path, q, req):
        w = self.world
        p = path[len("/_pallet/"):].strip("/").split("/")
        if p == ["health"]:
            return 200, {"ok": True}
        if p == ["state"] and method == "GET":
            with w.lock:
                w.tick()
                return 200, w.dump()
        if p == ["calls"] and method == "GET":
            return 200, self.log.query(q)
        if (p == ["calls", "reset"] and method == "POST") or (p == ["calls"] and method == "DELETE"):
            self.log.reset()
            return 200, {"ok": True}
        if p == ["faults"]:
            if method == "GET":
                return 200, {"faults": self.faults.rules}
            if method == "DELETE":
                self.faults.set({}, replace=True)
                return 200, {"faults": {}}
            if "seed" in req:
                self.faults.rng.seed(req["seed"])
            self.faults.set(req.get("faults", {}), replace=bool(req.get("replace")))
            return 200, {"faults": self.faults.rules}
        if p == ["kms", "keys"] and method == "POST":
            with w.lock:
                keys = [w.kms.add(k) for k in req.get("keys", [])]
                return 200, {"keys": [dict(k, arn=w.kms.arn(k)) for k in keys]}
        if p == ["kube", "pvcs"] and method == "POST":
            n = self.kube.set_pvcs(req.get("pvcs", []), bool(req.get("replace")),
                                   req.get("namespace"))
            return 200, {"pvcs": n}
        if p == ["kube", "tokens"] and method == "POST":
            self.kube.set_tokens(req.get("tokens", []), bool(req.get("replace")))
            return 200, {"ok": True}
        if p == ["credentials"] and method == "POST":
            return 200, self.creds.configure(req)
        if p == ["credentials", "expire"] and method == "POST":
            return 200, self.creds.expire(req["accessKeyId"])
        if p == ["delays"] and method == "POST":
            with w.lock:
                for k, v in req.items():
                    if k not in w.delays:
                        raise ValueError("unknown delay %r (known: %s)" % (k, ", ".join(w.delays)))
                    w.delays[k] = float(v)
                return 200, {"delays": w.delays}
        with w.lock:
            w.tick()
            if len(p) == 3 and p[0] == "snapshots" and method == "POST":
                s = w.snapshots.get(p[1])
                if not s:
                    raise ApiError("NotFound", "no snapshot %s" % p[1], 404)
                if p[2] == "fail":
                    s["progress_at_error"] = w.progress(s)
                    s["state"] = "error"
                    s["message"] = req.get("message", "Snapshot failed (injected by test)")
                    return 200, {"snapshotId": s["id"], "state": "error"}
                if p[2] == "complete":
                    s["state"] = "completed"
                    return 200, {"snapshotId": s["id"], "state": "completed"}
            if len(p) == 3 and p[0] == "volumes" and method == "POST":
                v = w.volumes.get(p[1])
                if not v:
                    raise ApiError("NotFound", "no volume %s" % p[1], 404)
                if p[2] == "fail-snapshots":
                    v["snapshot_error"] = req.get("message")
                    return 200, {"volumeId": v["id"], "snapshotError": v["snapshot_error"]}
                if p[2] == "write":
                    return 200, self.control_write(v, req)
                if p[2] == "attach-file":
                    # A consumer writes the file directly: make it the
                    # volume's own so no snapshot shares it, and keep
                    # later snapshots off it (pallet_ec2.create_snapshot).
                    w._own_data(v)
                    v["file_attached"] = True
                    return 200, {"volumeId": v["id"], "path": v["data"],
                                 "size": v["size"] * GIB}
            if len(p) == 3 and p[0] == "instances" and p[2] == "state" and method == "POST":
                i = w.instances.get(p[1])
                if not i:
                    raise ApiError("NotFound", "no instance %s" % p[1], 404)
                if req.get("state") not in ("running", "stopped"):
                    raise ValueError("state must be running or stopped")
                i["state"] = req["state"]
                w.touch(i)
                return 200, {"instanceId": i["id"], "state": i["state"]}
        raise ApiError("NotFound", "no control endpoint %s %s; see tests/endpoint/README.md"
                       % (method, path), 404)

    def control_write(self, v, req):
        w = self.world
        for wr in req.get("writes", []):
            off = int(wr["offset"])
            if "data" in wr:
                w.write_volume(v, off, data=base64.b64decode(wr["data"]))
            elif "zero" in wr:
                w.write_volume(v, off, zero=int(wr["zero"]))
            elif "discard" in wr:
                w.discard_volume(v, off, int(wr["discard"]))
            elif "fill" in wr:
                w.write_volume(v, off, data=bytes([int(wr["fill"]) & 255]) * int(wr["length"]))
            else:
                raise ValueError("each write needs data (base64), zero (length), discard (length, whole blocks) or fill+length")
        out = {"volumeId": v["id"], "dirtyBlocks": sorted(v["dirty"])}
        if req.get("snapshot"):
            sn = req["snapshot"] if isinstance(req["snapshot"], dict) else {}
            ctx = pallet_ec2.Ctx(w, v["account"], v["region"], "control", None)
            s = pallet_ec2.new_snapshot(ctx, v, sn.get("description", ""), dict(sn.get("tags", {})))
            out["snapshotId"] = s["id"]
        return out

    def close(self):
        if self.own_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Local EC2 + EBS direct + STS endpoint for Pallet tests")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = pick a free one)")
    ap.add_argument("--port-file", help="write the port number here (atomically) once listening")
    ap.add_argument("--seed", help="seed JSON file (see README.md)")
    ap.add_argument("--state-dir", help="where copied block data lives (default: a temp dir, removed at exit)")
    ap.add_argument("--synthetic-instances", type=int, default=0, metavar="N")
    ap.add_argument("--synthetic-account", default="111111111111")
    ap.add_argument("--synthetic-region", default="us-east-1")
    ap.add_argument("--start-delay", type=float, help="seconds pending -> running (default 1)")
    ap.add_argument("--stop-delay", type=float, help="seconds stopping -> stopped (default 1)")
    ap.add_argument("--snapshot-delay", type=float, help="seconds pending -> completed (default 2)")
    ap.add_argument("--volume-delay", type=float, help="seconds creating -> available (default 0.5)")
    ap.add_argument("--fault", action="append", metavar="ACTION=KIND:VALUE[,...]",
                    help="e.g. ec2:CreateSnapshot=throttle:0.5,latency_ms:100 (repeatable)")
    ap.add_argument("--fault-seed", type=int, default=1)
    ap.add_argument("--call-log", help="append one JSON line per AWS call here")
    ap.add_argument("--max-clock-skew", type=float, default=900.0)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    try:
        app = App(args)
    except (OSError, ValueError, KeyError) as e:
        sys.stderr.write("pallet-endpoint: cannot start: %s\n" % e)
        return 2
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.app = app
    port = srv.server_address[1]

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print("PORT=%d" % port, flush=True)
    # Load the service models and render instances now, not on first use.
    threading.Thread(target=lambda: ([proto.service_model(n) for n in ("ec2", "sts", "ebs")],
                                     pallet_ec2.prerender(app.world)),
                     daemon=True).start()
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
